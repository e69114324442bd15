#include "raft_config.h"

#include <sluice/sdk/net.h>

namespace sluice::raft {
namespace {

bool valid_address(const std::string& s) { return sdk::parse_host_port(s).has_value(); }

}  // namespace

raft_config parse_raft_config(sdk::config_map& cfg, int32_t node_id) {
  raft_config c;
  c.listen = cfg.get_string("listen", c.listen);
  if (!valid_address(c.listen))
    cfg.fail(cfg.get_node("listen"), "listen", "expected HOST:PORT with a numeric IPv4 host, [IPv6]:PORT or localhost:PORT, got \"" + c.listen + "\"");
  c.advertised_address = cfg.get_string("advertised_address", c.listen);
  if (!valid_address(c.advertised_address) || sdk::parse_host_port(c.advertised_address)->port() == 0)
    cfg.fail(cfg.get_node("advertised_address"), "advertised_address",
             "expected the HOST:PORT other brokers dial (a numeric address and a port other than 0), got \"" +
                 c.advertised_address + "\"");
  c.cluster_id = cfg.get_string("cluster_id", c.cluster_id);
  if (c.cluster_id.empty() || c.cluster_id.size() > 255)
    cfg.fail(cfg.get_node("cluster_id"), "cluster_id", "expected 1 to 255 characters");
  c.heartbeat_interval_ms = static_cast<uint32_t>(cfg.get_uint("heartbeat_interval_ms", c.heartbeat_interval_ms, 10, 10'000));
  c.election_timeout_ms = static_cast<uint32_t>(cfg.get_uint("election_timeout_ms", c.election_timeout_ms, 50, 600'000));
  if (c.election_timeout_ms < 2 * c.heartbeat_interval_ms)
    cfg.fail(cfg.get_node("election_timeout_ms"), "election_timeout_ms",
             "must be at least twice heartbeat_interval_ms (" + std::to_string(c.heartbeat_interval_ms) + ")");
  c.tail_cache_bytes = cfg.get_uint("tail_cache_bytes", c.tail_cache_bytes, 64u << 10, 1ull << 32);
  c.peer_queue_bytes_max = cfg.get_uint("peer_queue_bytes_max", c.peer_queue_bytes_max, 1u << 20, 1ull << 32);
  c.preferred_leader_check_ms =
      static_cast<uint32_t>(cfg.get_uint("preferred_leader_check_ms", c.preferred_leader_check_ms, 0, 86'400'000));
  c.controller_snapshot_entries =
      cfg.get_uint("controller_snapshot_entries", c.controller_snapshot_entries, 10, 100'000'000);

  for (const YAML::Node& n : cfg.get_list("seeds")) {
    const std::string s = n.IsScalar() ? n.Scalar() : std::string();
    const auto at = s.find('@');
    uint64_t id = 0;
    bool ok = at != std::string::npos && at > 0 && at < 20;
    for (size_t i = 0; ok && i < at; ++i) {
      ok = s[i] >= '0' && s[i] <= '9';
      id = id * 10 + static_cast<uint64_t>(s[i] - '0');
    }
    const std::string addr = ok ? s.substr(at + 1) : std::string();
    if (!ok || id == 0 || id > INT32_MAX || !valid_address(addr))
      cfg.fail(n, "seeds", "expected NODE_ID@HOST:PORT (a node id >= 1 and the broker's raft address), got \"" + s + "\"");
    if (!c.seeds.emplace(id, addr).second)
      cfg.fail(n, "seeds", "node id " + std::to_string(id) + " is listed twice");
  }
  if (c.seeds.empty())
    cfg.fail(cfg.get_node("seeds"), "seeds",
             "list the controller's voters as NODE_ID@HOST:PORT (this broker alone: \"" + std::to_string(node_id) + "@" +
                 c.advertised_address + "\")");
  if (node_id < 1)
    throw sdk::config_error("node.id: a broker in a cluster needs a node id >= 1 (the raft plugin is loaded), got " +
                            std::to_string(node_id));
  if (auto it = c.seeds.find(static_cast<uint64_t>(node_id)); it != c.seeds.end() && it->second != c.advertised_address)
    cfg.fail(cfg.get_node("seeds"), "seeds",
             "lists this broker (" + std::to_string(node_id) + ") at " + it->second + " but it advertises " +
                 c.advertised_address + " (set advertised_address or fix the seed)");
  cfg.finish();
  return c;
}

}  // namespace sluice::raft
