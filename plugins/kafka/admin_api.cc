#include "admin_api.h"

#include "cluster_config.h"
#include "consumer_protocol.h"
#include "sluice/cluster.pb.h"
#include "topic_configs.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>
#include <map>
#include <set>

namespace sluice::kafka {

namespace {

using json = nlohmann::json;
using sdk::http_request;
using sdk::http_response;
using sdk::task;

http_response ok(const json& j) { return http_response::json(200, j.dump()); }
http_response not_found(const std::string& what) { return http_response::error(404, what); }

std::optional<int32_t> parse_int32(const std::string& s) {
  int32_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

std::string topic_id_string(const topic_uuid& id) { return uuid_to_base64(id); }

json broker_json(broker& b) {
  json listeners = json::array();
  for (size_t i = 0; i < b.cfg.listeners.size(); ++i) {
    const auto [host, port] = b.advertised(i);
    listeners.push_back({{"name", b.cfg.listeners[i].name}, {"host", host}, {"port", port}});
  }
  json plugins = json::array();
  sdk::api().plugin_visit(
      sdk::host(), [](void* u, const sluice_plugin_view* p) { static_cast<json*>(u)->push_back(p->name); },
      &plugins);
  const uint64_t start_ms = sdk::api().start_time_ms(sdk::host());
  const uint64_t now_ms = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                    std::chrono::system_clock::now().time_since_epoch())
                                                    .count());
  json out = {{"node_id", b.node_id},
              {"host", listeners.empty() ? json("") : listeners[0]["host"]},
              {"port", listeners.empty() ? json(0) : listeners[0]["port"]},
              {"listeners", listeners},
              {"rack", b.cfg.rack.empty() ? json(nullptr) : json(b.cfg.rack)},
              {"shards", sdk::shard_count()},
              {"version", sdk::api().version(sdk::host())},
              {"uptime_ms", now_ms > start_ms ? now_ms - start_ms : 0},
              {"is_alive", true},
              {"is_controller", true},
              {"plugins", plugins}};
  return out;
}

// Per-partition state, gathered from the owning shards concurrently.
//
// Cluster mode: every partition of the image, whether or not this broker
// holds a replica of it: replicas as the controller assigned them, leader
// and leader epoch as the leaders table knows them (as Metadata answers),
// and, for the replicas held here, the local log (summary) and, on the
// leader, the followers' progress (the raft plugin's group state).
struct partition_row {
  std::string topic;
  int32_t partition = 0;
  partition_summary summary;
  bool local = true;  // this broker holds a replica (always on a single node)
  std::vector<int32_t> replicas;
  int32_t leader = -1;
  int32_t leader_epoch = -1;
  std::optional<cluster::GroupState> group;  // cluster mode, a replica held here
};

// Cluster mode: every partition group this broker holds, from each shard
// (the followers' match and lag are filled in on the leader only).
task<std::vector<cluster::GroupState>> raft_groups(broker& b) {
  std::vector<std::vector<cluster::GroupState>> per_shard(sdk::shard_count());
  std::vector<std::function<task<void>()>> work;
  for (uint32_t s = 0; s < sdk::shard_count(); ++s)
    work.push_back([&b, &per_shard, s]() -> task<void> {
      sdk::message m;
      m.type = cluster::PARTITION_LIST;
      m.bytes = cluster::ListRequest().SerializeAsString();
      const sdk::reply rep = co_await sdk::call(b.raft_partition, s, m);
      cluster::GroupList list;
      if (rep.status != 0 || !list.ParseFromString(rep.msg.bytes)) co_return;
      for (auto& g : *list.mutable_groups()) per_shard[s].push_back(std::move(g));
    });
  co_await run_all(std::move(work));
  std::vector<cluster::GroupState> out;
  for (auto& v : per_shard)
    for (auto& g : v) out.push_back(std::move(g));
  co_return out;
}

// with_groups: also the raft plugin's group states (cluster mode), for the
// leaders' view of their followers.
task<void> gather(broker& b, const metadata_image& img, std::vector<partition_row>& rows, bool with_groups = false) {
  std::map<std::pair<std::string, int32_t>, cluster::GroupState> groups;
  if (b.clustered() && with_groups) {
    std::vector<cluster::GroupState> list = co_await raft_groups(b);
    for (auto& g : list) {
      const topic_info* t = img.find(g.id().topic());
      if (t && t->revision == g.id().revision()) groups[{g.id().topic(), g.id().partition()}] = std::move(g);
    }
  }
  std::vector<std::function<task<void>()>> work;
  for (auto& r : rows) {
    const topic_info* t = img.find(r.topic);
    if (b.clustered() && t) {
      r.replicas = replicas_of(*t, r.partition, b.node_id);
      std::tie(r.leader, r.leader_epoch) = b.leader_of(r.topic, r.partition);
      r.local = std::find(r.replicas.begin(), r.replicas.end(), b.node_id) != r.replicas.end();
      if (auto it = groups.find({r.topic, r.partition}); it != groups.end()) r.group = it->second;
    }
    if (!r.local) {
      r.summary.error = error_code::not_leader_or_follower;  // nothing local to show
      continue;
    }
    work.push_back([&b, &r]() -> task<void> {
      co_await b.on_owner(r.topic, r.partition, [&](partition_table& pt) -> task<void> {
        r.summary = co_await pt.summary(r.topic, r.partition);
      });
    });
  }
  co_await run_all(std::move(work));
}

// Cluster mode, on the leader's broker: the voters not in sync (the raft
// plugin's in_sync, Kafka's ISR: not heard from within an election timeout,
// or not replicating), else nullopt (not known here).
std::optional<std::vector<int32_t>> replicas_behind(const partition_row& r) {
  if (!r.group || r.group->role() != "leader") return std::nullopt;
  const auto& isr = r.group->in_sync();
  std::vector<int32_t> out;
  for (int32_t id : r.group->replicas())
    if (std::find(isr.begin(), isr.end(), id) == isr.end()) out.push_back(id);
  return out;
}

json nullable(bool known, int64_t v) { return known ? json(v) : json(nullptr); }

json partition_json(broker& b, const partition_row& r) {
  const bool ok = r.local && r.summary.error == error_code::none;
  if (!b.clustered())
    return {{"topic", r.topic},
            {"partition", r.partition},
            {"leader", ok ? json(b.node_id) : json(-1)},
            {"leader_epoch", 0},
            {"replicas", json::array({b.node_id})},
            {"isr", json::array({b.node_id})},
            {"shard", shard_of(r.topic, r.partition, sdk::shard_count())},
            {"log_start_offset", r.summary.log_start_offset},
            {"high_watermark", r.summary.high_watermark},
            {"log_end_offset", r.summary.log_end_offset},
            {"size_bytes", r.summary.size_bytes},
            {"error", ok ? json(nullptr) : json(code(r.summary.error))}};
  // The ISR as the leader sees it; elsewhere as it last announced it (null
  // before an announcement of its term arrived).
  json isr = nullptr;
  const auto behind = replicas_behind(r);
  if (behind) {
    isr = json::array();
    for (int32_t id : r.replicas)
      if (std::find(behind->begin(), behind->end(), id) == behind->end()) isr.push_back(id);
  } else if (std::vector<int32_t> known = b.in_sync_of(r.topic, r.partition); !known.empty()) {
    isr = known;
  }
  json error = nullptr;
  if (r.leader < 0) error = code(error_code::leader_not_available);
  else if (r.local && !ok) error = code(r.summary.error);
  return {{"topic", r.topic},
          {"partition", r.partition},
          {"leader", r.leader},
          {"leader_epoch", r.leader_epoch},
          {"replicas", r.replicas},
          {"isr", isr},
          {"local", r.local},
          {"role", r.group ? json(r.group->role()) : json(nullptr)},
          {"shard", r.local ? json(shard_of(r.topic, r.partition, sdk::shard_count())) : json(nullptr)},
          {"log_start_offset", nullable(ok, r.summary.log_start_offset)},
          {"high_watermark", nullable(ok, r.summary.high_watermark)},
          {"log_end_offset", nullable(ok, r.summary.log_end_offset)},
          {"size_bytes", nullable(ok, r.summary.size_bytes)},
          {"under_replicated", behind ? json(!behind->empty()) : json(nullptr)},
          {"error", error}};
}

json topic_summary(broker& b, const topic_info& t, const std::vector<partition_row>& rows) {
  int64_t size = 0, messages = 0, local = 0;
  for (const auto& r : rows) {
    if (r.topic != t.name || !r.local || r.summary.error != error_code::none) continue;
    ++local;
    size += r.summary.size_bytes;
    messages += std::max<int64_t>(r.summary.high_watermark - r.summary.log_start_offset, 0);
  }
  json out = {{"name", t.name},
              {"topic_id", topic_id_string(t.id)},
              {"internal", t.name == offsets_topic},
              {"partition_count", t.partitions},
              {"replication_factor", t.replication_factor},
              {"size_bytes", size},
              {"messages", messages}};
  // Cluster mode: size and messages count the replicas this broker holds.
  if (b.clustered()) out["local_partitions"] = local;
  return out;
}

std::vector<partition_row> rows_of(const topic_info& t) {
  std::vector<partition_row> rows;
  for (int32_t p = 0; p < t.partitions; ++p) rows.push_back({t.name, p, {}});
  return rows;
}

// Every partition of every topic, with its state.
task<std::vector<partition_row>> all_rows(broker& b, const metadata_image& img) {
  std::vector<partition_row> rows;
  for (const auto& [_, t] : img.topics)
    for (auto& r : rows_of(t)) rows.push_back(std::move(r));
  co_await gather(b, img, rows, true);
  co_return rows;
}

task<http_response> get_topics(broker& b, http_request) {
  const image_ptr img = b.image();
  const std::vector<partition_row> rows = co_await all_rows(b, *img);
  json out = json::array();
  for (const auto& [_, t] : img->topics) out.push_back(topic_summary(b, t, rows));
  co_return ok(out);
}

task<http_response> get_topic(broker& b, http_request req) {
  const image_ptr img = b.image();
  const std::string& name = req.params["name"];
  const topic_info* t = img->find(name);
  if (!t) co_return not_found("no topic named '" + name + "'");
  std::vector<partition_row> rows = rows_of(*t);
  co_await gather(b, *img, rows, true);
  json out = topic_summary(b, *t, rows);
  json configs = json::array();
  const kafka_config& cfg = b.local().cfg;
  for (const auto& def : topic_config_defs()) {
    const bool set = t->configs.count(def.name) != 0;
    std::string source = "default";
    if (set) source = "topic";
    else if (def.broker_synonym) {
      // The broker-level setting behind this topic default, as a cluster_config key.
      std::string key = def.broker_synonym;
      std::replace(key.begin(), key.end(), '.', '_');
      if (key == "log_roll_ms") key = "log_segment_ms";
      if (img->cluster_config.count(key)) source = "cluster";
    }
    configs.push_back({{"name", def.name}, {"value", effective_topic_config(cfg, t->configs, def.name)}, {"source", source}});
  }
  out["configs"] = configs;
  json parts = json::array();
  for (const auto& r : rows) parts.push_back(partition_json(b, r));
  out["partitions"] = parts;
  co_return ok(out);
}

task<http_response> get_partition(broker& b, http_request req) {
  const image_ptr img = b.image();
  const std::string& name = req.params["topic"];
  const topic_info* t = img->find(name);
  if (!t) co_return not_found("no topic named '" + name + "'");
  const auto p = parse_int32(req.params["partition"]);
  if (!p) co_return http_response::error(400, "partition must be an integer, got '" + req.params["partition"] + "'");
  if (*p < 0 || *p >= t->partitions)
    co_return not_found("topic '" + name + "' has no partition " + std::to_string(*p) + " (it has " +
                        std::to_string(t->partitions) + ")");
  std::vector<partition_row> rows{{name, *p, {}}};
  co_await gather(b, *img, rows, true);
  co_return ok(partition_json(b, rows[0]));
}

// Cluster mode: a registered broker as the image knows it (this broker with
// its own details).
json cluster_broker_json(broker& b, const broker_info& bi) {
  json out = bi.id == b.node_id ? broker_json(b)
                                : json{{"node_id", bi.id}, {"host", bi.host}, {"port", bi.port},
                                       {"rack", bi.rack.empty() ? json(nullptr) : json(bi.rack)}};
  out["rpc_address"] = bi.rpc_address;
  out["maintenance"] = bi.maintenance;
  out["decommissioned"] = bi.decommissioned;
  out["is_controller"] = bi.id == b.controller_id;
  if (bi.id != b.node_id) out["is_alive"] = nullptr;  // not tracked for other brokers
  return out;
}

task<http_response> get_brokers(broker& b, http_request) {
  const image_ptr img = b.image();
  if (!b.clustered() || img->brokers.empty()) co_return ok(json::array({broker_json(b)}));
  json out = json::array();
  for (const auto& [_, bi] : img->brokers) out.push_back(cluster_broker_json(b, bi));
  co_return ok(out);
}

task<http_response> get_broker(broker& b, http_request req) {
  const auto id = parse_int32(req.params["id"]);
  if (!id) co_return http_response::error(400, "broker id must be an integer, got '" + req.params["id"] + "'");
  if (b.clustered()) {
    const image_ptr img = b.image();
    auto it = img->brokers.find(*id);
    if (it == img->brokers.end()) co_return not_found("no broker with id " + std::to_string(*id) + " is registered");
    co_return ok(cluster_broker_json(b, it->second));
  }
  if (*id != b.node_id) co_return not_found("no broker with id " + std::to_string(*id));
  co_return ok(broker_json(b));
}

// PUT (on) / DELETE (off) /v1/brokers/{id}/maintenance: the broker's
// leaderships are handed to other replicas and none comes back while on
// (before a restart). Committed through the controller.
task<http_response> set_maintenance(broker& b, http_request req) {
  const auto id = parse_int32(req.params["id"]);
  if (!id) co_return http_response::error(400, "broker id must be an integer, got '" + req.params["id"] + "'");
  if (!b.clustered()) co_return http_response::error(400, "maintenance mode needs a cluster (the raft plugin)");
  const bool on = req.method == "PUT";
  op_result r;
  co_await b.on_controller([&](topic_manager& tm) -> task<void> { r = co_await tm.set_maintenance(*id, on); });
  if (r.error == error_code::invalid_request) co_return not_found(r.message);
  if (r.error != error_code::none) co_return http_response::error(503, r.message);
  co_return ok({{"node_id", *id}, {"maintenance", on}});
}

// ---- replica moves (docs/CLUSTER.md, "Moving replicas") -------------------------

json move_json(const topic_info& t, int32_t p) {
  return {{"topic", t.name},
          {"partition", p},
          {"replicas", t.replicas[static_cast<size_t>(p)]},
          {"previous", previous_of(t, p)}};
}

http_response move_error(const op_result& r) {
  if (r.error == error_code::invalid_request || r.error == error_code::unknown_topic_or_partition)
    return not_found(r.message);
  if (r.error == error_code::invalid_replica_assignment) return http_response::error(400, r.message);
  return http_response::error(503, r.message);
}

// PUT (decommission) / DELETE (recommission) /v1/brokers/{id}/decommission.
task<http_response> set_decommission(broker& b, http_request req) {
  const auto id = parse_int32(req.params["id"]);
  if (!id) co_return http_response::error(400, "broker id must be an integer, got '" + req.params["id"] + "'");
  if (!b.clustered()) co_return http_response::error(400, "decommissioning needs a cluster (the raft plugin)");
  const bool on = req.method == "PUT";
  op_result r;
  int32_t moves = 0;
  co_await b.on_controller([&](topic_manager& tm) -> task<void> { r = co_await tm.set_decommissioned(*id, on, &moves); });
  if (r.error != error_code::none) co_return move_error(r);
  co_return ok({{"node_id", *id}, {"decommissioned", on}, {"moves_started", moves}});
}

// GET /v1/brokers/{id}/decommission: the replicas still on the broker.
task<http_response> get_decommission(broker& b, http_request req) {
  const auto id = parse_int32(req.params["id"]);
  if (!id) co_return http_response::error(400, "broker id must be an integer, got '" + req.params["id"] + "'");
  const image_ptr img = b.image();
  auto it = img->brokers.find(*id);
  if (!b.clustered() || it == img->brokers.end()) co_return not_found("no broker with id " + std::to_string(*id) + " is registered");
  json left = json::array();
  for (const auto& [_, t] : img->topics)
    for (int32_t p = 0; p < t.partitions; ++p) {
      const std::vector<int32_t> h = hosts_of(t, p, b.node_id);
      if (std::find(h.begin(), h.end(), *id) != h.end()) left.push_back(move_json(t, p));
    }
  co_return ok({{"node_id", *id},
                {"decommissioned", it->second.decommissioned},
                {"finished", it->second.decommissioned && left.empty()},
                {"replicas_left", left.size()},
                {"partitions", left}});
}

// POST /v1/partitions/{topic}/{partition}/replicas, body [1, 2, 4] or
// {"replicas": [1, 2, 4]}: moves the partition to those brokers.
task<http_response> move_partition(broker& b, http_request req) {
  if (!b.clustered()) co_return http_response::error(400, "moving replicas needs a cluster (the raft plugin)");
  const auto p = parse_int32(req.params["partition"]);
  if (!p) co_return http_response::error(400, "partition must be an integer, got '" + req.params["partition"] + "'");
  json body = json::parse(req.body, nullptr, false);
  if (body.is_object() && body.contains("replicas")) body = body["replicas"];
  std::vector<int32_t> replicas;
  if (!body.is_array()) co_return http_response::error(400, "the body must be a list of broker ids, or {\"replicas\": [...]}");
  for (const json& r : body) {
    if (!r.is_number_integer() || r.get<int64_t>() < 0 || r.get<int64_t>() > INT32_MAX)
      co_return http_response::error(400, "replica " + r.dump() + " is not a broker id");
    replicas.push_back(r.get<int32_t>());
  }
  op_result r;
  const std::string topic = req.params["topic"];
  co_await b.on_controller([&](topic_manager& tm) -> task<void> { r = co_await tm.move_partition(topic, *p, replicas); });
  if (r.error != error_code::none) co_return move_error(r);
  const image_ptr img = b.image();
  const topic_info* t = img->find(topic);
  if (!t || *p >= static_cast<int32_t>(t->replicas.size())) co_return not_found("no partition " + topic + "/" + std::to_string(*p));
  co_return ok(move_json(*t, *p));
}

// POST /v1/cluster/rebalance: evens out replica counts over the brokers.
task<http_response> post_rebalance(broker& b, http_request) {
  if (!b.clustered()) co_return http_response::error(400, "rebalancing needs a cluster (the raft plugin)");
  op_result r;
  int32_t moves = 0;
  co_await b.on_controller([&](topic_manager& tm) -> task<void> { r = co_await tm.rebalance(&moves); });
  if (r.error != error_code::none) co_return move_error(r);
  co_return ok({{"moves_started", moves}});
}

// GET /v1/cluster/moves: the partitions moving now.
task<http_response> get_moves(broker& b, http_request) {
  const image_ptr img = b.image();
  json out = json::array();
  for (const auto& [_, t] : img->topics)
    for (size_t p = 0; p < t.previous.size(); ++p)
      if (!t.previous[p].empty()) out.push_back(move_json(t, static_cast<int32_t>(p)));
  co_return ok(out);
}

task<http_response> get_health(broker& b, http_request) {
  const image_ptr img = b.image();
  const std::vector<partition_row> rows = co_await all_rows(b, *img);
  if (!b.clustered()) {
    json leaderless = json::array();
    for (const auto& r : rows)
      if (r.summary.error != error_code::none) leaderless.push_back({{"topic", r.topic}, {"partition", r.partition}});
    co_return ok({{"is_healthy", leaderless.empty()},
                  {"cluster_id", img->cluster_id},
                  {"controller_id", b.node_id},
                  {"all_nodes", json::array({b.node_id})},
                  {"nodes_down", json::array()},
                  {"leaderless_partitions", leaderless},
                  {"leaderless_count", leaderless.size()},
                  {"under_replicated_partitions", json::array()},
                  {"under_replicated_count", 0}});
  }
  // Cluster mode. Which brokers are up, as far as this broker can tell from
  // the groups it holds: a leader's followers heard from within an election
  // timeout (or not), the leaders its followers and its controller replica
  // follow. The controller's leader hears from every broker, so its answer
  // is complete; elsewhere a broker it shares no group with is neither.
  std::set<int32_t> alive{b.node_id}, silent;
  if (b.controller_id >= 0) alive.insert(b.controller_id);
  sdk::message status_req;
  status_req.type = cluster::CONTROLLER_STATUS;
  const sdk::reply status_rep = co_await sdk::call(b.raft_controller, 0, status_req);
  cluster::GroupState controller;
  if (status_rep.status == 0 && controller.ParseFromString(status_rep.msg.bytes) && controller.role() == "leader")
    for (const auto& f : controller.followers()) (f.active() ? alive : silent).insert(f.id());
  for (const auto& r : rows) {
    if (!r.group) continue;
    if (r.group->role() == "follower" && r.group->leader() >= 0) alive.insert(r.group->leader());
    if (r.group->role() != "leader") continue;
    for (const auto& f : r.group->followers()) (f.active() ? alive : silent).insert(f.id());
  }
  json all = json::array(), down = json::array(), unknown = json::array();
  std::set<int32_t> down_ids;
  for (const auto& [id, _] : img->brokers) {
    if (img->retired.count(id)) continue;  // decommissioned, holds nothing: not part of the cluster's health
    all.push_back(id);
    if (alive.count(id)) continue;
    if (silent.count(id)) {
      down.push_back(id);
      down_ids.insert(id);
    } else {
      unknown.push_back(id);
    }
  }
  // Leaderless: no leader known, or the one known is down (its entry stays
  // until a successor announces itself). Under-replicated: a replica the
  // leader does not count as caught up (known for the partitions led here).
  json leaderless = json::array(), under = json::array();
  for (const auto& r : rows) {
    if (r.leader < 0 || down_ids.count(r.leader))
      leaderless.push_back({{"topic", r.topic}, {"partition", r.partition}});
    const auto behind = replicas_behind(r);
    if (behind && !behind->empty())
      under.push_back({{"topic", r.topic}, {"partition", r.partition}, {"leader", r.leader}, {"replicas_behind", *behind}});
  }
  const bool healthy = b.controller_id >= 0 && down.empty() && leaderless.empty() && under.empty();
  co_return ok({{"is_healthy", healthy},
                {"cluster_id", img->cluster_id},
                {"controller_id", b.controller_id},
                {"all_nodes", all},
                {"nodes_down", down},
                {"nodes_unknown", unknown},
                {"leaderless_partitions", leaderless},
                {"leaderless_count", leaderless.size()},
                {"under_replicated_partitions", under},
                {"under_replicated_count", under.size()}});
}

// ---- groups ------------------------------------------------------------------

struct group_row {
  std::string group_id, protocol_type, state;
  size_t members = 0;
};

// Every group of every shard.
task<std::vector<group_row>> all_groups(broker& b) {
  std::vector<std::vector<group_row>> per_shard(sdk::shard_count());
  std::vector<std::function<task<void>()>> work;
  for (uint32_t s = 0; s < sdk::shard_count(); ++s)
    work.push_back([&b, &per_shard, s]() -> task<void> {
      (void)co_await b.invoker.run_on(s, [&]() -> task<void> {
        group_coordinator& gc = b.local().groups;
        for (auto& [id, type, state] : gc.list({})) {
          group_row r{id, type, state, 0};
          r.members = gc.describe(id).members.size();
          per_shard[s].push_back(std::move(r));
        }
        co_return;
      });
    });
  co_await run_all(std::move(work));
  std::vector<group_row> out;
  for (auto& v : per_shard)
    for (auto& r : v) out.push_back(std::move(r));
  std::sort(out.begin(), out.end(), [](const group_row& a, const group_row& b) { return a.group_id < b.group_id; });
  co_return out;
}

task<http_response> get_groups(broker& b, http_request) {
  json out = json::array();
  const std::vector<group_row> groups = co_await all_groups(b);
  for (const auto& g : groups)
    out.push_back({{"group_id", g.group_id},
                   {"state", g.state},
                   {"protocol_type", g.protocol_type},
                   {"member_count", g.members},
                   {"coordinator", b.node_id}});
  co_return ok(out);
}

struct group_view {
  group_description desc;
  std::map<offset_key, committed_offset> offsets;
  std::map<offset_key, partition_summary> ends;  // high watermarks of committed partitions
  bool loaded = true;
};

task<group_view> view_group(broker& b, const std::string& id) {
  group_view v;
  co_await b.on_group(id, [&](group_coordinator& gc) -> task<void> {
    v.loaded = gc.loaded();
    v.desc = gc.describe(id);
    v.offsets = gc.fetch(id);
    co_return;
  });
  // Assigned partitions without a commit are listed too (without a lag).
  std::vector<partition_row> rows;
  for (const auto& [k, _] : v.offsets) rows.push_back({k.first, k.second, {}});
  for (const auto& m : v.desc.members)
    if (auto parts = decode_consumer_assignment(m.assignment))
      for (const auto& [t, p] : *parts)
        if (!v.offsets.count({t, p})) rows.push_back({t, p, {}});
  const image_ptr img = b.image();
  std::erase_if(rows, [&](const partition_row& r) {
    const topic_info* t = img->find(r.topic);
    return !t || r.partition < 0 || r.partition >= t->partitions;
  });
  co_await gather(b, *img, rows);
  for (const auto& r : rows) v.ends[{r.topic, r.partition}] = r.summary;
  co_return v;
}

json group_json(broker& b, const std::string& id, const group_view& v) {
  json members = json::array();
  std::map<offset_key, std::string> owner;
  for (const auto& m : v.desc.members) {
    json assignments = json::array();
    if (auto parts = decode_consumer_assignment(m.assignment))
      for (const auto& [t, p] : *parts) {
        assignments.push_back({{"topic", t}, {"partition", p}});
        owner[{t, p}] = m.member_id;
      }
    members.push_back({{"member_id", m.member_id},
                       {"instance_id", m.instance_id ? json(*m.instance_id) : json(nullptr)},
                       {"client_id", m.client_id},
                       {"client_host", m.client_host},
                       {"assignments", assignments}});
  }
  json offsets = json::array();
  int64_t total_lag = 0;
  for (const auto& [key, end] : v.ends) {
    const auto c = v.offsets.find(key);
    const int64_t hw = end.error == error_code::none ? end.high_watermark : -1;
    json row = {{"topic", key.first}, {"partition", key.second}, {"high_watermark", hw}};
    if (c != v.offsets.end() && c->second.offset >= 0) {
      const int64_t lag = hw >= 0 ? std::max<int64_t>(hw - c->second.offset, 0) : 0;
      row["committed_offset"] = c->second.offset;
      row["metadata"] = c->second.metadata ? json(*c->second.metadata) : json(nullptr);
      row["lag"] = lag;
      total_lag += lag;
    } else {
      // Assigned, nothing committed: no lag, as kafka-consumer-groups.sh shows "-".
      row["committed_offset"] = nullptr;
      row["metadata"] = nullptr;
      row["lag"] = nullptr;
    }
    const auto o = owner.find(key);
    row["member_id"] = o == owner.end() ? json(nullptr) : json(o->second);
    offsets.push_back(std::move(row));
  }
  return {{"group_id", id},
          {"state", v.desc.state.empty() ? "Dead" : v.desc.state},
          {"protocol_type", v.desc.protocol_type},
          {"protocol", v.desc.protocol_data},
          {"coordinator", b.node_id},
          {"members", members},
          {"offsets", offsets},
          {"total_lag", total_lag}};
}

task<http_response> get_group(broker& b, http_request req) {
  const std::string& id = req.params["id"];
  group_view v = co_await view_group(b, id);
  if (!v.loaded) co_return http_response::error(503, "the coordinator of group '" + id + "' is still loading");
  if ((v.desc.state.empty() || v.desc.state == "Dead") && v.offsets.empty())
    co_return not_found("no group named '" + id + "'");
  co_return ok(group_json(b, id, v));
}

// ---- cluster_config --------------------------------------------------------------

task<http_response> get_cluster_config(broker& b, http_request) {
  co_return http_response::json(200, cluster_config_json(apply_cluster_config(b.yaml_cfg, b.image()->cluster_config)));
}

task<http_response> get_cluster_config_schema(broker&, http_request) {
  co_return http_response::json(200, cluster_config_schema_json());
}

task<http_response> put_cluster_config(broker& b, http_request req) {
  cluster_config_change change = validate_cluster_config_put(req.body, b.yaml_cfg, b.image()->cluster_config);
  if (!change.error.empty()) co_return http_response::error(400, change.error);
  if (!change.errors.empty()) {
    std::string message = "invalid cluster config:";
    for (const auto& [k, why] : change.errors) message += " " + k + ": " + why + ";";
    message.pop_back();
    co_return http_response::json(400, json{{"code", 400}, {"message", message}, {"errors", change.errors}}.dump());
  }
  json restart = json::array();
  for (const auto& [k, _] : change.upsert)
    if (find_cluster_setting(k)->needs_restart) restart.push_back(k);
  for (const auto& k : change.remove)
    if (find_cluster_setting(k)->needs_restart) restart.push_back(k);
  json applied = json::object();
  for (const auto& [k, v] : change.upsert) applied[k] = json::parse(setting_json(*find_cluster_setting(k), v));
  const bool dry_run = req.query.count("dry_run") && req.query["dry_run"] != "false";
  if (!dry_run) {
    op_result r;
    co_await b.on_controller([&](topic_manager& tm) -> task<void> {
      r = co_await tm.alter_cluster_config(change.upsert, change.remove);
    });
    if (r.error != error_code::none) co_return http_response::error(500, "cannot store the change: " + r.message);
    for (const auto& [k, v] : change.upsert) sdk::log_info("cluster_config: " + k + " = " + v);
    for (const auto& k : change.remove) sdk::log_info("cluster_config: " + k + " removed");
  }
  co_return ok({{"applied", applied}, {"removed", change.remove}, {"restart_required", restart}, {"dry_run", dry_run}});
}

// ---- metrics -------------------------------------------------------------------

std::string label_value(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

task<std::string> metrics(broker& b) {
  // Bytes and records per topic, summed over shards.
  std::map<std::string, topic_traffic> traffic;
  std::vector<std::map<std::string, topic_traffic>> per_shard(sdk::shard_count());
  std::vector<std::function<task<void>()>> work;
  for (uint32_t s = 0; s < sdk::shard_count(); ++s)
    work.push_back([&b, &per_shard, s]() -> task<void> {
      (void)co_await b.invoker.run_on(s, [&]() -> task<void> {
        for (const auto& [t, v] : b.local().traffic) per_shard[s][t] = v;
        co_return;
      });
    });
  co_await run_all(std::move(work));
  const image_ptr img = b.image();
  for (auto& m : per_shard)
    for (const auto& [t, v] : m) {
      if (!img->find(t)) continue;  // deleted topics drop out
      auto& sum = traffic[t];
      sum.bytes_in += v.bytes_in;
      sum.records_in += v.records_in;
      sum.bytes_out += v.bytes_out;
    }
  std::string out;
  auto family = [&](const char* name, const char* type, const char* help) {
    out += std::string("# HELP ") + name + " " + help + " (kafka)\n# TYPE " + name + " " + type + "\n";
  };
  family("sluice_kafka_topic_bytes_in_total", "counter", "Record batch bytes produced to a topic");
  for (const auto& [t, v] : traffic)
    out += "sluice_kafka_topic_bytes_in_total{topic=\"" + label_value(t) + "\"} " + std::to_string(v.bytes_in) + "\n";
  family("sluice_kafka_topic_records_in_total", "counter", "Records produced to a topic");
  for (const auto& [t, v] : traffic)
    out += "sluice_kafka_topic_records_in_total{topic=\"" + label_value(t) + "\"} " + std::to_string(v.records_in) + "\n";
  family("sluice_kafka_topic_bytes_out_total", "counter", "Record batch bytes fetched from a topic");
  for (const auto& [t, v] : traffic)
    out += "sluice_kafka_topic_bytes_out_total{topic=\"" + label_value(t) + "\"} " + std::to_string(v.bytes_out) + "\n";
  // Consumer-group lag per group and topic (sum over its partitions).
  family("sluice_kafka_group_lag", "gauge", "Records between a consumer group's committed offsets and the high watermarks");
  const std::vector<group_row> groups = co_await all_groups(b);
  for (const auto& g : groups) {
    const group_view v = co_await view_group(b, g.group_id);
    std::map<std::string, int64_t> lag;
    for (const auto& [key, end] : v.ends) {
      const auto c = v.offsets.find(key);
      if (c == v.offsets.end() || end.error != error_code::none || c->second.offset < 0) continue;
      lag[key.first] += std::max<int64_t>(end.high_watermark - c->second.offset, 0);
    }
    for (const auto& [t, l] : lag)
      out += "sluice_kafka_group_lag{group=\"" + label_value(g.group_id) + "\",topic=\"" + label_value(t) + "\"} " +
             std::to_string(l) + "\n";
  }
  co_return out;
}

}  // namespace

namespace {
// Whether every shard has started (admin_http may be listed, and so start,
// before kafka); the state then stays until the plugin is destroyed.
bool started(const broker& b) {
  for (uint32_t s = 0; s < sdk::shard_count(); ++s)
    if (!b.shards.has(s)) return false;
  return true;
}
}  // namespace

void register_admin_routes(broker& b, sdk::admin_routes& routes) {
  routes.init("kafka.admin");
  auto bind = [&b](task<http_response> (*fn)(broker&, http_request)) {
    return [&b, fn](http_request r) -> task<http_response> {
      if (!started(b)) co_return http_response::error(503, "the kafka plugin is starting");
      co_return co_await fn(b, std::move(r));
    };
  };
  routes.add("GET", "/v1/brokers", bind(&get_brokers));
  routes.add("GET", "/v1/brokers/{id}", bind(&get_broker));
  routes.add("PUT", "/v1/brokers/{id}/maintenance", bind(&set_maintenance));
  routes.add("DELETE", "/v1/brokers/{id}/maintenance", bind(&set_maintenance));
  routes.add("PUT", "/v1/brokers/{id}/decommission", bind(&set_decommission));
  routes.add("DELETE", "/v1/brokers/{id}/decommission", bind(&set_decommission));
  routes.add("GET", "/v1/brokers/{id}/decommission", bind(&get_decommission));
  routes.add("POST", "/v1/partitions/{topic}/{partition}/replicas", bind(&move_partition));
  routes.add("POST", "/v1/cluster/rebalance", bind(&post_rebalance));
  routes.add("GET", "/v1/cluster/moves", bind(&get_moves));
  routes.add("GET", "/v1/cluster/health", bind(&get_health));
  routes.add("GET", "/v1/topics", bind(&get_topics));
  routes.add("GET", "/v1/topics/{name}", bind(&get_topic));
  routes.add("GET", "/v1/partitions/{topic}/{partition}", bind(&get_partition));
  routes.add("GET", "/v1/groups", bind(&get_groups));
  routes.add("GET", "/v1/groups/{id}", bind(&get_group));
  routes.add("GET", "/v1/cluster_config", bind(&get_cluster_config));
  routes.add("GET", "/v1/cluster_config/schema", bind(&get_cluster_config_schema));
  routes.add("PUT", "/v1/cluster_config", bind(&put_cluster_config));
  routes.add_metrics([&b]() -> task<std::string> {
    if (!started(b)) co_return std::string();
    co_return co_await metrics(b);
  });
}

}  // namespace sluice::kafka
