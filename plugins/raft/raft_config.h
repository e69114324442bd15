// The raft plugin's settings (docs/CONFIG.md, "raft").
#pragma once

#include <sluice/sdk/config.h>

#include <cstdint>
#include <map>
#include <string>

namespace sluice::raft {

struct raft_config {
  std::string listen = "127.0.0.1:9093";  // inter-broker RPC, every shard (SO_REUSEPORT)
  std::string advertised_address;          // what other brokers dial; default: listen
  std::string cluster_id = "sluice";       // brokers of another cluster are refused
  std::map<uint64_t, std::string> seeds;   // the controller's voters: node id -> HOST:PORT
  uint32_t heartbeat_interval_ms = 100;    // one tick
  uint32_t election_timeout_ms = 1000;     // randomised in [T, 2T)
  uint64_t tail_cache_bytes = 4u << 20;    // recent entries kept per partition for followers
  uint64_t peer_queue_bytes_max = 32u << 20;
  uint32_t preferred_leader_check_ms = 5000;  // 0: leadership stays where elections put it
  uint64_t controller_snapshot_entries = 1000;  // compact the controller's log after this many entries
};

// Parses the `config:` subtree; throws sdk::config_error naming the key.
// node_id is node.id (must be >= 1 in a cluster).
raft_config parse_raft_config(sdk::config_map& cfg, int32_t node_id);

}  // namespace sluice::raft
