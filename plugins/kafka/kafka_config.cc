#include "kafka_config.h"

#include <sluice/sdk/server.h>

#include <yaml-cpp/yaml.h>

namespace sluice::kafka {
namespace {

// HOST:PORT where HOST may be a name (advertised addresses are not resolved).
bool split_host_port(const std::string& s, std::string& host, int32_t& port) {
  const size_t colon = s.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == s.size()) return false;
  host = s.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  const std::string p = s.substr(colon + 1);
  if (p.size() > 5) return false;
  int32_t v = 0;
  for (char c : p) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  if (v > 65535) return false;
  port = v;
  return true;
}

}  // namespace

kafka_config parse_kafka_config(sdk::config_map& cfg) {
  kafka_config c;
  auto listeners = cfg.get_list("listeners");
  for (size_t i = 0; i < listeners.size(); ++i) {
    const std::string key = "listeners[" + std::to_string(i) + "]";
    if (!listeners[i].IsMap()) cfg.fail(listeners[i], key, "expected a mapping with `address:`");
    sdk::config_map l(listeners[i], cfg.origin(), cfg.path().empty() ? key : cfg.path() + "." + key);
    listener_config lc;
    lc.name = l.get_string("name", "PLAINTEXT");
    lc.address = sdk::address_setting(l, "address", nullptr);
    const std::string adv = l.get_string("advertised_address", "");
    if (!adv.empty()) {
      if (!split_host_port(adv, lc.advertised_host, lc.advertised_port))
        l.fail(listeners[i]["advertised_address"], "advertised_address",
               "expected HOST:PORT, got \"" + adv + "\"");
    }
    for (const auto& other : c.listeners)
      if (other.name == lc.name)
        l.fail(listeners[i]["name"], "name", "listener \"" + lc.name + "\" is listed twice");
    l.finish();
    c.listeners.push_back(std::move(lc));
  }
  if (c.listeners.empty()) {
    listener_config lc;
    lc.address = *sdk::parse_host_port("127.0.0.1:9092");
    c.listeners.push_back(lc);
  }
  c.cluster_id = cfg.get_string("cluster_id", "");
  c.rack = cfg.get_string("rack", "");
  c.auto_create_topics_enable = cfg.get_bool("auto_create_topics_enable", c.auto_create_topics_enable);
  c.num_partitions = static_cast<int32_t>(cfg.get_uint("num_partitions", 1, 1, 100000));
  c.default_replication_factor =
      static_cast<int16_t>(cfg.get_uint("default_replication_factor", 1, 1, 32767));
  c.max_request_bytes = cfg.get_uint("socket_request_max_bytes", c.max_request_bytes, 1024, 1ull << 31);
  c.connections_max_idle_ms = cfg.get_uint("connections_max_idle_ms", c.connections_max_idle_ms, 100, 1ull << 40);
  c.backlog = cfg.get_uint("backlog", c.backlog, 1, 65535);
  c.message_max_bytes =
      static_cast<uint32_t>(cfg.get_uint("message_max_bytes", c.message_max_bytes, 128, 1u << 30));
  c.fetch_max_bytes = static_cast<uint32_t>(cfg.get_uint("fetch_max_bytes", c.fetch_max_bytes, 1024, 1u << 30));
  c.max_incremental_fetch_session_cache_slots = static_cast<uint32_t>(cfg.get_uint(
      "max_incremental_fetch_session_cache_slots", c.max_incremental_fetch_session_cache_slots, 0, 1u << 20));
  c.offsets_topic_num_partitions =
      static_cast<int32_t>(cfg.get_uint("offsets_topic_num_partitions", c.offsets_topic_num_partitions, 1, 1000));
  c.group_initial_rebalance_delay_ms =
      cfg.get_uint("group_initial_rebalance_delay_ms", c.group_initial_rebalance_delay_ms, 0, 300000);
  c.group_min_session_timeout_ms = cfg.get_uint("group_min_session_timeout_ms", c.group_min_session_timeout_ms, 1, 1ull << 31);
  c.group_max_session_timeout_ms = cfg.get_uint("group_max_session_timeout_ms", c.group_max_session_timeout_ms, 1, 1ull << 31);
  if (c.group_min_session_timeout_ms > c.group_max_session_timeout_ms)
    cfg.fail(cfg.get_node("group_min_session_timeout_ms"), "group_min_session_timeout_ms",
             "must not exceed group_max_session_timeout_ms");
  c.log_retention_ms = cfg.get_int("log_retention_ms", c.log_retention_ms, -1);
  c.log_retention_bytes = cfg.get_int("log_retention_bytes", c.log_retention_bytes, -1);
  c.log_segment_bytes = cfg.get_int("log_segment_bytes", c.log_segment_bytes, 65536);
  c.log_segment_ms = cfg.get_int("log_segment_ms", c.log_segment_ms, 1);
  c.log_cleanup_policy = cfg.get_enum("log_cleanup_policy", c.log_cleanup_policy, {"delete", "compact", "compact,delete"});
  c.log_message_timestamp_type =
      cfg.get_enum("log_message_timestamp_type", c.log_message_timestamp_type, {"CreateTime", "LogAppendTime"});
  return c;
}

}  // namespace sluice::kafka
