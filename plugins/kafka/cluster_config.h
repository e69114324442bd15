// Cluster-wide settings an operator changes at run time
// (GET/PUT /v1/cluster_config, docs/ADMIN.md): a subset of the kafka
// plugin's settings (kafka_config.h), each with a type, bounds, its built-in
// default and whether it applies at once or at the next start.
//
// Where the values live: the YAML gives each setting's base value; values
// set through the API are overrides kept in the metadata image
// (metadata_image::cluster_config, persisted with it) and win over the YAML
// until removed. Every shard derives its effective kafka_config from the
// base and the overrides whenever a new image arrives (apply_cluster_config),
// so "live" settings take effect without a restart; the others are applied
// to the base at the next start.
#pragma once

#include "kafka_config.h"

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::kafka {

enum class setting_type { boolean, integer, string };

struct cluster_setting {
  const char* name;
  setting_type type;
  int64_t minimum;                   // integers
  int64_t maximum;
  std::vector<std::string> allowed;  // strings: the accepted values (empty: any)
  bool needs_restart;
  const char* description;
};

const std::vector<cluster_setting>& cluster_settings();
const cluster_setting* find_cluster_setting(std::string_view name);

// The setting's value in cfg, as its canonical string ("true", "42", "delete").
std::string setting_value(const kafka_config& cfg, const cluster_setting& s);
// A canonical value as JSON text of the setting's type (true, 42, "delete").
std::string setting_json(const cluster_setting& s, const std::string& canonical);

// cfg with the overrides of the chosen settings applied (overrides hold
// canonical strings that validate_cluster_config_put produced; unknown names
// are ignored). At start the broker applies the restart-only ones to the
// YAML's settings; each shard then applies the live ones to that whenever
// an image arrives, so removing a live override reverts to the YAML value.
enum class which_settings { all, live, restart_only };
kafka_config apply_cluster_config(kafka_config cfg, const std::map<std::string, std::string>& overrides,
                                  which_settings which = which_settings::all);
inline kafka_config apply_live_cluster_config(kafka_config cfg, const std::map<std::string, std::string>& overrides) {
  return apply_cluster_config(std::move(cfg), overrides, which_settings::live);
}

// JSON documents of GET /v1/cluster_config and /v1/cluster_config/schema.
std::string cluster_config_json(const kafka_config& effective);
std::string cluster_config_schema_json();

// A PUT body, {"upsert": {key: value}, "remove": [key]}, checked against the
// schema and against the current overrides (so cross-setting rules such as
// min <= max see the result). Values may be JSON-typed or strings.
struct cluster_config_change {
  std::string error;                          // the body itself is wrong ("" : see errors)
  std::map<std::string, std::string> errors;  // key -> reason
  std::map<std::string, std::string> upsert;  // key -> canonical value
  std::vector<std::string> remove;
  bool ok() const noexcept { return error.empty() && errors.empty(); }
};
cluster_config_change validate_cluster_config_put(std::string_view body, const kafka_config& base,
                                                  const std::map<std::string, std::string>& overrides);

}  // namespace sluice::kafka
