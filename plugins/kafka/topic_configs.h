// Topic-level configs: the ones Kafka clients set and read (retention.ms,
// segment.bytes, cleanup.policy, ...), their types, defaults (from the
// broker's log_* settings) and validation. Used by CreateTopics,
// DescribeConfigs, AlterConfigs and IncrementalAlterConfigs, and mapped onto
// the storage's per-partition overrides.
#pragma once

#include "kafka_config.h"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace sluice::kafka {

// DescribeConfigs ConfigType values (KIP-569).
enum class config_type : int8_t { unknown = 0, boolean = 1, string = 2, int_ = 3, short_ = 4, long_ = 5, double_ = 6, list = 7 };

struct topic_config_def {
  const char* name;
  config_type type;
  const char* broker_synonym;  // e.g. "log.retention.ms", or nullptr
  const char* doc;
};

// Every topic config the broker knows, in DescribeConfigs order.
const std::vector<topic_config_def>& topic_config_defs();
const topic_config_def* find_topic_config(const std::string& name);

// The broker default of a topic config, as a string.
std::string topic_config_default(const kafka_config& broker, const topic_config_def& def);

// "" when value is acceptable for name, else a message for INVALID_CONFIG.
std::string validate_topic_config(const std::string& name, const std::optional<std::string>& value);

// The effective value (override or default).
std::string effective_topic_config(const kafka_config& broker, const std::map<std::string, std::string>& overrides,
                                   const std::string& name);

// Numeric settings the storage applies per partition.
struct log_settings {
  int64_t retention_ms = -1;
  int64_t retention_bytes = -1;
  int64_t segment_bytes = 0;
  int64_t segment_ms = 0;
  uint32_t max_message_bytes = 0;
  bool log_append_time = false;
};
log_settings effective_log_settings(const kafka_config& broker, const std::map<std::string, std::string>& overrides);

}  // namespace sluice::kafka
