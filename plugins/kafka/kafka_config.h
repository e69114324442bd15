// The kafka plugin's settings (the `config:` of its YAML entry). Names follow
// Kafka's broker settings with dots turned into underscores, so an operator
// who knows `auto.create.topics.enable` finds `auto_create_topics_enable`.
// docs/KAFKA.md lists every key.
#pragma once

#include <sluice/sdk/config.h>
#include <sluice/sdk/net.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace sluice::kafka {

struct listener_config {
  std::string name = "PLAINTEXT";
  sdk::socket_address address;     // where to listen
  std::string advertised_host;     // what Metadata tells clients
  int32_t advertised_port = 0;
};

struct kafka_config {
  std::vector<listener_config> listeners;
  std::string cluster_id;  // "" : generated once and kept in the data directory
  std::string rack;        // "" : none
  bool auto_create_topics_enable = true;
  int32_t num_partitions = 1;
  int16_t default_replication_factor = 1;
  uint64_t max_request_bytes = 100 * 1024 * 1024;  // socket.request.max.bytes
  uint64_t connections_max_idle_ms = 600'000;
  uint64_t backlog = 1024;
  uint32_t message_max_bytes = 1024 * 1024 + 12;  // largest record batch (message.max.bytes)
  uint32_t fetch_max_bytes = 55 * 1024 * 1024;    // cap on one Fetch response
  uint32_t max_incremental_fetch_session_cache_slots = 1000;
  // Consumer groups (Kafka's group.* and offsets.topic.* settings).
  int32_t offsets_topic_num_partitions = 16;
  uint64_t group_initial_rebalance_delay_ms = 3000;
  uint64_t group_min_session_timeout_ms = 6000;
  uint64_t group_max_session_timeout_ms = 1800000;
  // Topic config defaults (log.* broker settings), overridable per topic.
  int64_t log_retention_ms = 7LL * 24 * 3600 * 1000;
  int64_t log_retention_bytes = -1;
  int64_t log_segment_bytes = 1LL << 30;
  int64_t log_segment_ms = 7LL * 24 * 3600 * 1000;
  std::string log_cleanup_policy = "delete";
  std::string log_message_timestamp_type = "CreateTime";
};

// Reads cfg; throws sdk::config_error naming the key on a bad value.
kafka_config parse_kafka_config(sdk::config_map& cfg);

}  // namespace sluice::kafka
