#include "cluster_config.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>
#include <limits>

namespace sluice::kafka {

namespace {

using json = nlohmann::json;
constexpr int64_t int32_max = std::numeric_limits<int32_t>::max();
constexpr int64_t int64_max = std::numeric_limits<int64_t>::max();
constexpr int64_t day_ms = 24LL * 3600 * 1000;

// One place maps a setting's name to its member of kafka_config.
struct accessor {
  std::string (*get)(const kafka_config&);
  void (*set)(kafka_config&, const std::string&);
};

int64_t to_int(const std::string& v) {
  int64_t out = 0;
  std::from_chars(v.data(), v.data() + v.size(), out);
  return out;
}

#define SLUICE_INT_SETTING(member, type)                                              \
  accessor {                                                                          \
    [](const kafka_config& c) { return std::to_string(c.member); },                   \
        [](kafka_config& c, const std::string& v) { c.member = static_cast<type>(to_int(v)); } \
  }
#define SLUICE_BOOL_SETTING(member)                                                   \
  accessor {                                                                          \
    [](const kafka_config& c) { return std::string(c.member ? "true" : "false"); },   \
        [](kafka_config& c, const std::string& v) { c.member = v == "true"; }        \
  }
#define SLUICE_STRING_SETTING(member)                                                 \
  accessor {                                                                          \
    [](const kafka_config& c) { return c.member; }, [](kafka_config& c, const std::string& v) { c.member = v; } \
  }

struct entry {
  cluster_setting setting;
  accessor access;
};

const std::vector<entry>& entries() {
  static const std::vector<entry> all = {
      {{"auto_create_topics_enable", setting_type::boolean, 0, 0, {}, false,
        "Create a topic when a client produces to or asks metadata for one that does not exist"},
       SLUICE_BOOL_SETTING(auto_create_topics_enable)},
      {{"num_partitions", setting_type::integer, 1, 100000, {}, false,
        "Partitions of a topic created without a partition count (auto-created or CreateTopics with -1)"},
       SLUICE_INT_SETTING(num_partitions, int32_t)},
      {{"default_replication_factor", setting_type::integer, 1, 32767, {}, false,
        "Replication factor of a topic created without one"},
       SLUICE_INT_SETTING(default_replication_factor, int16_t)},
      {{"message_max_bytes", setting_type::integer, 1024, int32_max, {}, false,
        "Largest record batch a partition accepts (topic default of max.message.bytes)"},
       SLUICE_INT_SETTING(message_max_bytes, uint32_t)},
      {{"fetch_max_bytes", setting_type::integer, 1024, int32_max, {}, false, "Cap on the size of one Fetch response"},
       SLUICE_INT_SETTING(fetch_max_bytes, uint32_t)},
      {{"log_retention_ms", setting_type::integer, -1, int64_max, {}, false,
        "Topic default of retention.ms: how long records are kept (-1: forever)"},
       SLUICE_INT_SETTING(log_retention_ms, int64_t)},
      {{"log_retention_bytes", setting_type::integer, -1, int64_max, {}, false,
        "Topic default of retention.bytes: size kept per partition (-1: no limit)"},
       SLUICE_INT_SETTING(log_retention_bytes, int64_t)},
      {{"log_segment_bytes", setting_type::integer, 14, int32_max, {}, false,
        "Topic default of segment.bytes: size at which a segment is rolled"},
       SLUICE_INT_SETTING(log_segment_bytes, int64_t)},
      {{"log_segment_ms", setting_type::integer, 1, int64_max, {}, false,
        "Topic default of segment.ms: age at which a segment is rolled"},
       SLUICE_INT_SETTING(log_segment_ms, int64_t)},
      {{"log_cleanup_policy", setting_type::string, 0, 0, {"delete", "compact", "compact,delete", "delete,compact"}, false,
        "Topic default of cleanup.policy (compaction is not implemented yet)"},
       SLUICE_STRING_SETTING(log_cleanup_policy)},
      {{"log_message_timestamp_type", setting_type::string, 0, 0, {"CreateTime", "LogAppendTime"}, false,
        "Topic default of message.timestamp.type"},
       SLUICE_STRING_SETTING(log_message_timestamp_type)},
      {{"group_initial_rebalance_delay_ms", setting_type::integer, 0, 5 * 60 * 1000, {}, false,
        "How long the first rebalance of an empty group waits for more members"},
       SLUICE_INT_SETTING(group_initial_rebalance_delay_ms, uint64_t)},
      {{"group_min_session_timeout_ms", setting_type::integer, 1, day_ms, {}, false,
        "Smallest session timeout a group member may ask for"},
       SLUICE_INT_SETTING(group_min_session_timeout_ms, uint64_t)},
      {{"group_max_session_timeout_ms", setting_type::integer, 1, day_ms, {}, false,
        "Largest session timeout a group member may ask for"},
       SLUICE_INT_SETTING(group_max_session_timeout_ms, uint64_t)},
      {{"connections_max_idle_ms", setting_type::integer, 1000, 7 * day_ms, {}, true,
        "Kafka connections idle this long are closed"},
       SLUICE_INT_SETTING(connections_max_idle_ms, uint64_t)},
      {{"max_request_bytes", setting_type::integer, 1024, int32_max, {}, true,
        "Largest Kafka request frame (socket.request.max.bytes)"},
       SLUICE_INT_SETTING(max_request_bytes, uint64_t)},
      {{"max_incremental_fetch_session_cache_slots", setting_type::integer, 0, 1000000, {}, true,
        "Fetch sessions kept per broker (KIP-227)"},
       SLUICE_INT_SETTING(max_incremental_fetch_session_cache_slots, uint32_t)},
  };
  return all;
}

const entry* find_entry(std::string_view name) {
  for (const entry& e : entries())
    if (name == e.setting.name) return &e;
  return nullptr;
}

// The canonical string of a JSON value for s, or "" with why set.
std::string canonical(const cluster_setting& s, const json& v, std::string& why) {
  switch (s.type) {
    case setting_type::boolean:
      if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
      if (v.is_string() && (v == "true" || v == "false")) return v.get<std::string>();
      why = "expected true or false, got " + v.dump();
      return {};
    case setting_type::integer: {
      int64_t n = 0;
      if (v.is_number_integer()) {
        if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(int64_max)) {
          why = "must be between " + std::to_string(s.minimum) + " and " + std::to_string(s.maximum) + ", got " + v.dump();
          return {};
        }
        n = v.get<int64_t>();
      } else if (v.is_string()) {
        const std::string t = v.get<std::string>();
        const auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), n);
        if (t.empty() || ec != std::errc() || end != t.data() + t.size()) {
          why = "expected an integer, got " + v.dump();
          return {};
        }
      } else {
        why = "expected an integer, got " + v.dump();
        return {};
      }
      if (n < s.minimum || n > s.maximum) {
        why = "must be between " + std::to_string(s.minimum) + " and " + std::to_string(s.maximum) + ", got " +
              std::to_string(n);
        return {};
      }
      return std::to_string(n);
    }
    case setting_type::string: {
      if (!v.is_string()) {
        why = "expected a string, got " + v.dump();
        return {};
      }
      const std::string t = v.get<std::string>();
      if (!s.allowed.empty() && std::find(s.allowed.begin(), s.allowed.end(), t) == s.allowed.end()) {
        std::string list;
        for (const auto& a : s.allowed) list += (list.empty() ? "" : ", ") + a;
        why = "expected one of " + list + ", got \"" + t + "\"";
        return {};
      }
      return t;
    }
  }
  why = "unknown type";
  return {};
}

json typed(const cluster_setting& s, const std::string& v) {
  switch (s.type) {
    case setting_type::boolean: return v == "true";
    case setting_type::integer: return to_int(v);
    case setting_type::string: return v;
  }
  return v;
}

}  // namespace

const std::vector<cluster_setting>& cluster_settings() {
  static const std::vector<cluster_setting> all = [] {
    std::vector<cluster_setting> out;
    for (const entry& e : entries()) out.push_back(e.setting);
    return out;
  }();
  return all;
}

const cluster_setting* find_cluster_setting(std::string_view name) {
  for (const cluster_setting& s : cluster_settings())
    if (name == s.name) return &s;
  return nullptr;
}

std::string setting_value(const kafka_config& cfg, const cluster_setting& s) {
  const entry* e = find_entry(s.name);
  return e ? e->access.get(cfg) : std::string();
}

std::string setting_json(const cluster_setting& s, const std::string& canonical) {
  return typed(s, canonical).dump();
}

kafka_config apply_cluster_config(kafka_config cfg, const std::map<std::string, std::string>& overrides,
                                  which_settings which) {
  for (const auto& [k, v] : overrides) {
    const entry* e = find_entry(k);
    if (!e) continue;
    const bool wanted = which == which_settings::all ||
                        (which == which_settings::live) == !e->setting.needs_restart;
    if (wanted) e->access.set(cfg, v);
  }
  return cfg;
}

std::string cluster_config_json(const kafka_config& effective) {
  json out = json::object();
  for (const entry& e : entries()) out[e.setting.name] = typed(e.setting, e.access.get(effective));
  return out.dump();
}

std::string cluster_config_schema_json() {
  const kafka_config defaults;
  json out = json::object();
  for (const entry& e : entries()) {
    const cluster_setting& s = e.setting;
    json d = {{"type", s.type == setting_type::boolean ? "boolean" : s.type == setting_type::integer ? "integer" : "string"},
              {"default", typed(s, e.access.get(defaults))},
              {"needs_restart", s.needs_restart},
              {"description", s.description}};
    if (s.type == setting_type::integer) {
      d["minimum"] = s.minimum;
      d["maximum"] = s.maximum;
    }
    if (!s.allowed.empty()) d["enum"] = s.allowed;
    out[s.name] = std::move(d);
  }
  return out.dump();
}

cluster_config_change validate_cluster_config_put(std::string_view body, const kafka_config& base,
                                                  const std::map<std::string, std::string>& overrides) {
  cluster_config_change out;
  const json j = json::parse(body.begin(), body.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    out.error = "the body must be a JSON object {\"upsert\": {key: value}, \"remove\": [key]}";
    return out;
  }
  for (const auto& [k, _] : j.items())
    if (k != "upsert" && k != "remove") {
      out.error = "unknown field \"" + k + "\" (expected \"upsert\" and \"remove\")";
      return out;
    }
  if (j.contains("upsert")) {
    if (!j["upsert"].is_object()) {
      out.error = "\"upsert\" must be an object of key: value";
      return out;
    }
    for (const auto& [k, v] : j["upsert"].items()) {
      const cluster_setting* s = find_cluster_setting(k);
      if (!s) {
        out.errors[k] = "unknown setting (GET /v1/cluster_config/schema lists them)";
        continue;
      }
      std::string why;
      std::string c = canonical(*s, v, why);
      if (!why.empty()) out.errors[k] = why;
      else out.upsert[k] = std::move(c);
    }
  }
  if (j.contains("remove")) {
    if (!j["remove"].is_array()) {
      out.error = "\"remove\" must be an array of keys";
      return out;
    }
    for (const json& k : j["remove"]) {
      if (!k.is_string()) {
        out.error = "\"remove\" must hold setting names, got " + k.dump();
        return out;
      }
      const std::string key = k.get<std::string>();
      if (!find_cluster_setting(key)) out.errors[key] = "unknown setting (GET /v1/cluster_config/schema lists them)";
      else if (out.upsert.count(key)) out.errors[key] = "both upserted and removed";
      else out.remove.push_back(key);
    }
  }
  if (!out.errors.empty()) return out;
  // Rules across settings, on the result.
  std::map<std::string, std::string> next = overrides;
  for (const auto& k : out.remove) next.erase(k);
  for (const auto& [k, v] : out.upsert) next[k] = v;
  const kafka_config eff = apply_cluster_config(base, next);
  if (eff.group_min_session_timeout_ms > eff.group_max_session_timeout_ms) {
    const std::string why = "group_min_session_timeout_ms (" + std::to_string(eff.group_min_session_timeout_ms) +
                            ") must not exceed group_max_session_timeout_ms (" +
                            std::to_string(eff.group_max_session_timeout_ms) + ")";
    out.errors[out.upsert.count("group_max_session_timeout_ms") ? "group_max_session_timeout_ms"
                                                                  : "group_min_session_timeout_ms"] = why;
  }
  return out;
}

}  // namespace sluice::kafka
