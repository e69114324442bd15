#pragma once
// Where the CLI connects, resolved in order: flags, environment, profile
// file, defaults (docs/CLI.md, "Addresses").

#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "args.h"

namespace sluice::cli {

inline constexpr const char* default_brokers = "127.0.0.1:9092";
inline constexpr const char* default_admin = "http://127.0.0.1:9644";
inline constexpr int default_timeout_ms = 15000;

struct settings {
  std::string brokers = default_brokers;
  std::string brokers_source = "default";  // "--brokers", "$SLUICE_BROKERS", "profile FILE", "default"
  std::string admin = default_admin;
  std::string admin_source = "default";
  std::string admin_token;  // bearer token (wins over user/password)
  std::string admin_user;
  std::string admin_password;
  int timeout_ms = default_timeout_ms;
  std::vector<std::pair<std::string, std::string>> kafka_properties;  // -X name=value, in order
  bool json = false;
  bool verbose = false;
};

using env_lookup = std::function<std::optional<std::string>(const char* name)>;

// The process environment (empty values count as unset).
std::optional<std::string> process_env(const char* name);

// The global options every command accepts (--brokers, --admin, --json, ...).
const std::vector<option_spec>& global_options();

// Resolves settings from parsed global options, the environment and the
// profile file: --profile, else $SLUICE_PROFILE, else
// $HOME/.config/sluice/profile.yaml when it exists. A profile named by
// --profile or $SLUICE_PROFILE must exist. Bad values are usage errors.
settings resolve_settings(const parsed_args& args, const env_lookup& env);

}  // namespace sluice::cli
