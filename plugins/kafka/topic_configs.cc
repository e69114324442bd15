#include "topic_configs.h"

#include <charconv>

namespace sluice::kafka {
namespace {

bool parse_long(const std::string& s, int64_t& out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

std::string range_error(const std::string& name, const std::string& v, const char* what) {
  return "Invalid value " + v + " for configuration " + name + ": " + what;
}

}  // namespace

const std::vector<topic_config_def>& topic_config_defs() {
  static const std::vector<topic_config_def> defs = {
      {"cleanup.policy", config_type::list, "log.cleanup.policy", "delete or compact (compaction is not implemented yet: compacted topics keep every record)"},
      {"compression.type", config_type::string, "compression.type", "producer: keep the producer's codec"},
      {"max.message.bytes", config_type::int_, "message.max.bytes", "largest record batch accepted"},
      {"message.timestamp.type", config_type::string, "log.message.timestamp.type", "CreateTime or LogAppendTime"},
      {"min.insync.replicas", config_type::int_, "min.insync.replicas", "replicas that must acknowledge acks=all"},
      {"retention.bytes", config_type::long_, "log.retention.bytes", "per-partition size limit; -1: none"},
      {"retention.ms", config_type::long_, "log.retention.ms", "age limit; -1: none"},
      {"segment.bytes", config_type::int_, "log.segment.bytes", "segment file size"},
      {"segment.ms", config_type::long_, "log.roll.ms", "segment age before a roll"},
      {"unclean.leader.election.enable", config_type::boolean, "unclean.leader.election.enable", "always false: Raft never elects a stale leader"},
  };
  return defs;
}

const topic_config_def* find_topic_config(const std::string& name) {
  for (const auto& d : topic_config_defs())
    if (name == d.name) return &d;
  return nullptr;
}

std::string topic_config_default(const kafka_config& b, const topic_config_def& def) {
  const std::string n = def.name;
  if (n == "cleanup.policy") return b.log_cleanup_policy;
  if (n == "compression.type") return "producer";
  if (n == "max.message.bytes") return std::to_string(b.message_max_bytes);
  if (n == "message.timestamp.type") return b.log_message_timestamp_type;
  if (n == "min.insync.replicas") return "1";
  if (n == "retention.bytes") return std::to_string(b.log_retention_bytes);
  if (n == "retention.ms") return std::to_string(b.log_retention_ms);
  if (n == "segment.bytes") return std::to_string(b.log_segment_bytes);
  if (n == "segment.ms") return std::to_string(b.log_segment_ms);
  if (n == "unclean.leader.election.enable") return "false";
  return "";
}

std::string validate_topic_config(const std::string& name, const std::optional<std::string>& value) {
  const topic_config_def* def = find_topic_config(name);
  if (def == nullptr) return "Unknown topic config name: " + name;
  if (!value) return {};  // a null value removes the override
  const std::string& v = *value;
  int64_t x = 0;
  switch (def->type) {
    case config_type::long_:
    case config_type::int_:
      if (!parse_long(v, x)) return range_error(name, v, "not a number");
      if (def->type == config_type::int_ && (x < INT32_MIN || x > INT32_MAX))
        return range_error(name, v, "not a 32-bit integer");
      if (name == "retention.ms" || name == "retention.bytes") {
        if (x < -1) return range_error(name, v, "must be at least -1");
      } else if (name == "segment.bytes") {
        if (x < 65536) return range_error(name, v, "must be at least 65536 (the storage's smallest segment)");
      } else if (name == "segment.ms") {
        if (x < 1) return range_error(name, v, "must be at least 1");
      } else if (name == "max.message.bytes") {
        if (x < 0) return range_error(name, v, "must be at least 0");
      } else if (name == "min.insync.replicas") {
        if (x < 1) return range_error(name, v, "must be at least 1");
      }
      break;
    case config_type::boolean:
      if (v != "true" && v != "false") return range_error(name, v, "expected true or false");
      if (name == "unclean.leader.election.enable" && v == "true")
        return range_error(name, v, "Raft never elects a replica without every committed record");
      break;
    case config_type::list:
      if (name == "cleanup.policy") {
        size_t at = 0;
        while (at <= v.size()) {
          size_t comma = v.find(',', at);
          if (comma == std::string::npos) comma = v.size();
          std::string item = v.substr(at, comma - at);
          while (!item.empty() && item.front() == ' ') item.erase(0, 1);
          while (!item.empty() && item.back() == ' ') item.pop_back();
          if (item != "delete" && item != "compact") return range_error(name, v, "expected delete and/or compact");
          at = comma + 1;
        }
      }
      break;
    case config_type::string:
      if (name == "message.timestamp.type" && v != "CreateTime" && v != "LogAppendTime")
        return range_error(name, v, "expected CreateTime or LogAppendTime");
      if (name == "compression.type" && v != "producer" && v != "uncompressed" && v != "gzip" && v != "snappy" &&
          v != "lz4" && v != "zstd")
        return range_error(name, v, "expected producer, uncompressed, gzip, snappy, lz4 or zstd");
      if (name == "compression.type" && v != "producer")
        return range_error(name, v, "the broker keeps batches as producers send them; only producer is supported");
      break;
    default:
      break;
  }
  return {};
}

std::string effective_topic_config(const kafka_config& broker, const std::map<std::string, std::string>& overrides,
                                   const std::string& name) {
  auto it = overrides.find(name);
  if (it != overrides.end()) return it->second;
  const topic_config_def* def = find_topic_config(name);
  return def ? topic_config_default(broker, *def) : std::string();
}

log_settings effective_log_settings(const kafka_config& broker, const std::map<std::string, std::string>& o) {
  log_settings s;
  auto num = [&](const char* name) {
    int64_t v = 0;
    (void)parse_long(effective_topic_config(broker, o, name), v);
    return v;
  };
  s.retention_ms = num("retention.ms");
  s.retention_bytes = num("retention.bytes");
  s.segment_bytes = num("segment.bytes");
  s.segment_ms = num("segment.ms");
  s.max_message_bytes = static_cast<uint32_t>(std::max<int64_t>(num("max.message.bytes"), 0));
  s.log_append_time = effective_topic_config(broker, o, "message.timestamp.type") == "LogAppendTime";
  return s;
}

}  // namespace sluice::kafka
