// The `raft` plugin: a controller Raft group for the cluster's metadata and
// one Raft group per partition whose log is the partition's Kafka log
// (docs/RAFT.md).
//
//   configure  parse the settings; register "raft.partition" (every shard),
//              "raft.controller" (shard 0) and the cross-shard invoker
//   start      every shard runs an RPC transport (listening with
//              SO_REUSEPORT), a tick loop, and the partition groups the
//              kafka plugin ensures on it; shard 0 also runs the controller
//   stop       stop the groups (failing waiting producers), the transport
//
// Routing: a partition's group lives on the shard the kafka plugin owns it
// on. Inbound RPC arrives on whichever shard accepted the connection and is
// handed to the group's shard (every shard keeps the group -> shard table).
// Controller proposals from brokers that do not lead it travel to the leader
// as app messages and come back with the result.
#include "controller/controller.h"
#include "partition/partition_group.h"
#include "raft_config.h"
#include "rpc/transport.h"
#include "sluice/cluster.pb.h"
#include "sluice/storage.pb.h"

#include <nlohmann/json.hpp>
#include <sluice/sdk/admin.h>
#include <sluice/sdk/net.h>
#include <sluice/sdk/plugin.h>

#include <fcntl.h>
#include <sys/stat.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <map>
#include <set>
#include <memory>
#include <unordered_map>

namespace sluice::raft {
namespace {

using sdk::task;
using namespace sluice::cluster;
using partition::partition_group;
using partition::partition_key;

// App message kinds (rpc::app_message::kind).
enum app_kind : uint32_t {
  app_propose = 1,  // request: ProposeRequest; response: ProposeReply
  app_leaders = 2,  // one way: GroupList of the groups the sender leads (id, leader, term)
  app_join = 3,     // one way, to the seeds: Peer (a broker outside the seed list, asking to learn the controller's log)
};

// How often a broker announces the partitions it leads to every peer, so
// that brokers holding no replica of a partition can name its leader.
constexpr uint64_t leader_announce_ms = 1000;

const char* role_name(role r) { return to_string(r); }

int32_t to_kafka_id(node_id n) { return n.is_zero() ? -1 : static_cast<int32_t>(n.value()); }

partition_key key_of(const sluice::storage::PartitionId& id) {
  return partition_key{id.topic(), id.partition(), id.revision()};
}

sdk::reply encode_reply(const google::protobuf::MessageLite& m, int32_t status = 0) {
  sdk::reply r;
  r.status = status;
  r.msg.bytes = m.SerializeAsString();
  return r;
}

struct shard_state {
  explicit shard_state(const rpc::transport_config& tc) : transport(tc) {}
  rpc::transport transport;
  group_env env;
  std::unordered_map<group_id, std::unique_ptr<partition_group>> groups;  // this shard's
  std::unordered_map<group_id, uint32_t> owner;                          // every shard's groups
  std::unique_ptr<controller::controller_group> controller;               // shard 0
  bool flush_scheduled = false;
  sdk::abort_source stop;
  sdk::gate tasks;
  // Shard 0: controller proposals forwarded to the leader, by request id.
  struct forward {
    sdk::event done;
    ProposeReply reply;
  };
  std::unordered_map<uint64_t, std::shared_ptr<forward>> forwards;
  uint64_t next_request_id = 1;
  // Partitions whose kafka-facing state changed and is being reported.
  std::unordered_map<group_id, bool> reporting;
  // Brokers in maintenance mode (from the controller's image, via kafka).
  std::set<uint64_t> maintenance;
};

class raft_plugin final : public sdk::plugin {
 public:
  void configure(sdk::config_map& cfg) override {
    _node = node_id(static_cast<uint64_t>(std::max(0, sdk::node_id())));
    _cfg = parse_raft_config(cfg, sdk::node_id());
    _dir = std::string(sdk::api().data_dir(sdk::host())) + "/raft";
    // Durable (parents fsynced): the term, votes and logs below must not
    // vanish with their directory in a power loss.
    if (const int32_t rc = sdk::mkdirs_durable_blocking(_dir + "/partitions"); rc < 0)
      throw sdk::config_error("raft: cannot create " + _dir + "/partitions: " + std::strerror(-rc));
    _storage = sdk::lookup_service("storage.log");
    if (_storage < 0) throw sdk::config_error("raft: the storage plugin's storage.log service is missing");
    _invoker.init("raft.invoke");
    const uint32_t tick = _cfg.heartbeat_interval_ms;
    _psettings.storage_service = _storage;
    _psettings.state_dir = _dir + "/partitions";
    _psettings.tail_cache_bytes = _cfg.tail_cache_bytes;
    _psettings.election_timeout_ticks = std::max<uint32_t>(2, _cfg.election_timeout_ms / tick);
    _psettings.heartbeat_interval_ticks = 1;
    _psettings.tick_ms = tick;
    _psettings.preferred_leader_check_ticks = _cfg.preferred_leader_check_ms / tick;
    _shards.init(sdk::shard_count());
    if (sdk::register_service("raft.partition", [this](uint32_t, sdk::message req) { return serve_partition(std::move(req)); }) < 0 ||
        sdk::register_service("raft.controller", [this](uint32_t, sdk::message req) { return serve_controller(std::move(req)); }) < 0)
      throw sdk::config_error("raft: cannot register its services");
    register_admin_routes();
  }

  std::string start(uint32_t shard) override {
    rpc::transport_config tc;
    tc.self = _node;
    tc.cluster_id = _cfg.cluster_id;
    tc.listen = *sdk::parse_host_port(_cfg.listen);
    tc.listen_key = "listen";
    tc.peer_queue_bytes_max = _cfg.peer_queue_bytes_max;
    shard_state& sh = _shards.emplace(shard, tc);
    for (const auto& [id, addr] : _cfg.seeds)
      if (node_id(id) != _node) (void)sh.transport.set_peer(node_id(id), addr);
    sh.env.send = [this, &sh](node_id to, group_id g, const message& m) {
      sh.transport.send(to, g, m);
      schedule_flush(sh);
    };
    sh.transport.on_raft([this, shard](node_id from, group_id g, message m) { route(shard, from, g, std::move(m)); });
    sh.transport.on_app([this, shard](node_id from, const rpc::app_message& a) { on_app(shard, from, a); });
    if (std::string err = sh.transport.start(&_rpc_port); !err.empty()) return "raft: " + err;
    sdk::spawn(tick_loop(sh, sh.tasks.try_enter()));
    if (shard == 0) sdk::spawn(announce_leaders(sh, sh.tasks.try_enter()));
    if (shard == 0) {
      // A seed bootstraps the controller's membership (the seeds); another
      // broker starts empty and learns it once the leader adds it as a
      // learner (join_controller).
      membership voters;
      if (_cfg.seeds.count(_node.value())) {
        for (const auto& [id, _] : _cfg.seeds) voters.voters.push_back(node_id(id));
        voters.normalize();
      } else {
        sdk::spawn(join_controller(sh, sh.tasks.try_enter()));
      }
      sh.controller = std::make_unique<controller::controller_group>(
          _dir + "/controller.log", voters, _psettings.election_timeout_ticks, 1, sh.env);
      sdk::spawn(open_controller(sh, sh.tasks.try_enter()));
    }
    return {};
  }

  task<void> stop(uint32_t shard) override {
    shard_state& sh = _shards.at(shard);
    sh.stop.request_abort();
    std::vector<partition_group*> gs;
    for (auto& [_, g] : sh.groups) gs.push_back(g.get());
    for (partition_group* g : gs) co_await g->close(false);
    if (sh.controller) co_await sh.controller->close();
    for (auto& [_, f] : sh.forwards) {
      f->reply.set_status(CLUSTER_STATUS_SHUTTING_DOWN);
      f->done.set();
    }
    co_await sh.tasks.close();
    co_await sh.transport.stop();
    // The state stays until destroy: another shard may still route here.
  }

 private:
  // ---- shard plumbing ---------------------------------------------------------

  void schedule_flush(shard_state& sh) {
    if (sh.flush_scheduled) return;
    auto h = sh.tasks.try_enter();
    if (!h) return;
    sh.flush_scheduled = true;
    // Everything queued during this loop turn leaves in one frame per peer.
    sdk::spawn([](shard_state& s, sdk::gate::holder) -> task<void> {
      co_await sdk::yield();
      s.flush_scheduled = false;
      s.transport.flush();
    }(sh, std::move(h)));
  }

  task<void> tick_loop(shard_state& sh, sdk::gate::holder) {
    while (!sh.stop.abort_requested()) {
      if (co_await sdk::sleep_ms(_cfg.heartbeat_interval_ms, &sh.stop) != -ETIME) break;
      for (auto& [_, g] : sh.groups) {
        g->tick();
        g->tick_preferred();
      }
      if (sh.controller) sh.controller->tick();
      schedule_flush(sh);
    }
  }

  task<void> open_controller(shard_state& sh, sdk::gate::holder h) {
    auto r = co_await sh.controller->open(_node, seed_for(controller_group_id), std::move(h));
    if (!r) sdk::log_error("raft: the controller cannot start: " + r.err().message);
  }

  uint64_t seed_for(group_id g) const { return (g * 0x9e3779b97f4a7c15ull) ^ (_node.value() << 32) ^ sdk::now_ns(); }

  // A message for group g arrived on `shard`.
  void route(uint32_t shard, node_id from, group_id g, message m) {
    (void)from;
    shard_state& sh = _shards.at(shard);
    if (g == controller_group_id) {
      if (shard == 0) {
        if (sh.controller && sh.controller->running()) sh.controller->step(std::move(m));
        return;
      }
      forward_to(0, [this, m = std::move(m)]() mutable { route(0, node_id{}, controller_group_id, std::move(m)); });
      return;
    }
    auto it = sh.owner.find(g);
    if (it == sh.owner.end()) return;  // not (yet) here: Raft retries
    if (it->second == shard) {
      if (auto git = sh.groups.find(g); git != sh.groups.end()) git->second->step(std::move(m));
      return;
    }
    const uint32_t target = it->second;
    forward_to(target, [this, target, g, m = std::move(m)]() mutable { route(target, node_id{}, g, std::move(m)); });
  }

  void forward_to(uint32_t shard, std::function<void()> fn) {
    auto h = _shards.local().tasks.try_enter();
    if (!h) return;
    sdk::spawn([](const sdk::shard_invoker& inv, uint32_t s, std::function<void()> f, sdk::gate::holder) -> task<void> {
      co_await inv.run_on(s, [&f]() -> task<void> {
        f();
        co_return;
      });
    }(_invoker, shard, std::move(fn), std::move(h)));
  }

  // ---- partitions ---------------------------------------------------------------

  GroupState state_of(const partition_group& g) const {
    GroupState s;
    s.mutable_id()->set_topic(g.key().topic);
    s.mutable_id()->set_partition(g.key().partition);
    s.mutable_id()->set_revision(g.key().revision);
    s.set_group(g.id());
    s.set_leader(to_kafka_id(g.leader()));
    s.set_term(static_cast<int64_t>(g.term().value()));
    s.set_role(role_name(g.current_role()));
    s.set_high_watermark(g.high_watermark());
    s.set_commit_offset(static_cast<int64_t>(g.commit_index().value()));
    s.set_log_start_offset(g.log_start_offset());
    s.set_log_end_offset(g.log_end_offset());
    s.set_failed(g.failed());
    for (node_id r : g.replicas().voters) s.add_replicas(to_kafka_id(r));
    for (node_id r : g.replicas().learners) s.add_learners(to_kafka_id(r));
    for (node_id r : g.assigned()) s.add_assigned(to_kafka_id(r));
    s.set_moving(g.moving());
    s.set_repair_until_offset(g.repair_until_offset());
    if (g.current_role() == role::leader && g.node()) {
      const node_status st = g.node()->status();
      add_followers(s, st);
      add_in_sync(s, st);
    }
    return s;
  }

  // Kafka's ISR as the leader sees it: itself and the voters heard from
  // lately that are replicating.
  void add_in_sync(GroupState& s, const node_status& st) const {
    s.add_in_sync(to_kafka_id(_node));
    for (const follower_status& f : st.followers)
      if (!f.learner && f.recent_active && f.state == progress_state::replicate) s.add_in_sync(to_kafka_id(f.id));
  }

  // A leader's view of its followers: match, lag, heard from lately.
  static void add_followers(GroupState& s, const node_status& st) {
    for (const follower_status& f : st.followers) {
      FollowerState* fs = s.add_followers();
      fs->set_id(to_kafka_id(f.id));
      fs->set_match_offset(static_cast<int64_t>(f.match.value()));
      fs->set_lag(static_cast<int64_t>(st.last_index.value()) - static_cast<int64_t>(f.match.value()));
      fs->set_active(f.recent_active);
      fs->set_state(f.state == progress_state::probe       ? "probe"
                    : f.state == progress_state::replicate ? "replicate"
                                                           : "snapshot");
      fs->set_learner(f.learner);
    }
  }

  // The kafka plugin learns leader, term and high watermark changes through
  // its "kafka.cluster" service; one report in flight per group, the latest
  // state each time.
  void report(partition_group& g) {
    shard_state& sh = _shards.local();
    if (_kafka_service < 0) _kafka_service = sdk::lookup_service("kafka.cluster");
    if (_kafka_service < 0) return;
    auto [it, fresh] = sh.reporting.try_emplace(g.id(), true);
    if (!fresh) {
      it->second = true;  // the running reporter sends again
      return;
    }
    auto h = sh.tasks.try_enter();
    if (!h) {
      sh.reporting.erase(it);
      return;
    }
    sdk::spawn(report_loop(sh, g.id(), std::move(h)));
  }

  task<void> report_loop(shard_state& sh, group_id id, sdk::gate::holder) {
    for (;;) {
      auto it = sh.reporting.find(id);
      auto git = sh.groups.find(id);
      if (it == sh.reporting.end() || !it->second || git == sh.groups.end()) break;
      it->second = false;
      sdk::message m;
      m.type = KAFKA_PARTITION_UPDATE;
      m.bytes = state_of(*git->second).SerializeAsString();
      co_await sdk::call(_kafka_service, sdk::this_shard(), m);
    }
    sh.reporting.erase(id);
  }

  static partition_group* group_here(shard_state& sh, const sluice::storage::PartitionId& id) {
    auto it = sh.groups.find(partition::group_of(key_of(id)));
    return it == sh.groups.end() ? nullptr : it->second.get();
  }

  static sdk::reply unknown_partition() {
    GroupState s;
    s.set_status(CLUSTER_STATUS_UNKNOWN_PARTITION);
    s.set_message("no replica of this partition on this shard");
    return encode_reply(s);
  }

  task<sdk::reply> serve_partition(sdk::message req) {
    const uint32_t shard = sdk::this_shard();
    shard_state& sh = _shards.at(shard);
    GroupState bad;
    switch (req.type) {
      case PARTITION_ENSURE: {
        EnsureRequest r;
        if (!r.ParseFromString(req.bytes) || r.replicas().empty()) break;
        co_return co_await ensure(sh, r);
      }
      case PARTITION_REMOVE: {
        RemoveRequest r;
        if (!r.ParseFromString(req.bytes)) break;
        const group_id g = partition::group_of(key_of(r.id()));
        auto it = sh.groups.find(g);
        if (it == sh.groups.end() || it->second->key().revision != r.id().revision()) co_return unknown_partition();
        std::unique_ptr<partition_group> grp = std::move(it->second);
        sh.groups.erase(it);
        co_await set_owner(g, std::nullopt);
        co_await grp->close(r.delete_data());
        co_return encode_reply(state_of(*grp));
      }
      case PARTITION_REPLICATE: {
        ReplicateRequest r;
        ReplicateReply out;
        if (!r.ParseFromString(req.bytes) || !req.buf) {
          out.set_status(CLUSTER_STATUS_INVALID);
          out.set_message("a replicate request needs its partition and its batches");
          co_return encode_reply(out);
        }
        auto it = sh.groups.find(partition::group_of(key_of(r.id())));
        if (it == sh.groups.end()) {
          out.set_status(CLUSTER_STATUS_UNKNOWN_PARTITION);
          out.set_leader(-1);
          co_return encode_reply(out);
        }
        partition::replicate_result res = co_await it->second->replicate(std::move(req.buf), r.acks(),
                                                                             term_id(static_cast<uint64_t>(std::max<int64_t>(r.term(), 0))));
        out.set_status(res.status == partition::replicate_status::ok              ? CLUSTER_STATUS_OK
                       : res.status == partition::replicate_status::not_leader    ? CLUSTER_STATUS_NOT_LEADER
                       : res.status == partition::replicate_status::storage_error ? CLUSTER_STATUS_STORAGE_ERROR
                       : res.status == partition::replicate_status::invalid       ? CLUSTER_STATUS_INVALID
                                                                                  : CLUSTER_STATUS_SHUTTING_DOWN);
        out.set_message(res.message);
        out.set_base_offset(res.base_offset);
        out.set_last_offset(res.last_offset);
        out.set_leader(to_kafka_id(res.leader));
        out.set_leader_epoch(static_cast<int64_t>(res.term.value()));
        out.set_high_watermark(res.high_watermark);
        co_return encode_reply(out);
      }
      case PARTITION_STATE:
      case PARTITION_CONFIRM: {
        GroupRequest r;
        if (!r.ParseFromString(req.bytes)) break;
        partition_group* g = group_here(sh, r.id());
        if (!g) co_return unknown_partition();
        if (req.type == PARTITION_STATE) co_return encode_reply(state_of(*g));
        const bool leads = co_await g->confirm_leadership();
        GroupState s = state_of(*g);
        if (!leads) s.set_status(CLUSTER_STATUS_NOT_LEADER);
        co_return encode_reply(s);
      }
      case PARTITION_LIST: {
        GroupList out;
        for (const auto& [_, g] : sh.groups) *out.add_groups() = state_of(*g);
        co_return encode_reply(out);
      }
      case PARTITION_TRANSFER: {
        TransferRequest r;
        if (!r.ParseFromString(req.bytes)) break;
        partition_group* g = group_here(sh, r.id());
        if (!g) co_return unknown_partition();
        auto t = g->transfer(r.target() < 0 ? node_id{} : node_id(static_cast<uint64_t>(r.target())));
        GroupState s = state_of(*g);
        if (!t) {
          s.set_status(t.err().code == make_error_code(errc::not_leader) ? CLUSTER_STATUS_NOT_LEADER
                                                                         : CLUSTER_STATUS_INVALID);
          s.set_message(t.err().message);
        }
        co_return encode_reply(s);
      }
      default:
        break;
    }
    bad.set_status(CLUSTER_STATUS_INVALID);
    bad.set_message("raft.partition: message type " + std::to_string(req.type) + " with a body that does not decode");
    co_return encode_reply(bad);
  }

  // Every shard's routing table learns (or forgets) where group g lives.
  task<void> set_owner(group_id g, std::optional<uint32_t> shard) {
    for (uint32_t s = 0; s < sdk::shard_count(); ++s) {
      co_await _invoker.run_on(s, [this, s, g, shard]() -> task<void> {
        auto& owner = _shards.at(s).owner;
        if (shard)
          owner[g] = *shard;
        else
          owner.erase(g);
        co_return;
      });
    }
  }

  task<sdk::reply> ensure(shard_state& sh, const EnsureRequest& r) {
    const partition_key key = key_of(r.id());
    const group_id g = partition::group_of(key);
    std::vector<node_id> replicas, bootstrap;
    for (auto [from, to] : {std::pair{&r.replicas(), &replicas}, std::pair{&r.bootstrap(), &bootstrap}}) {
      for (int32_t id : *from) {
        if (id < 1) {
          GroupState bad;
          bad.set_status(CLUSTER_STATUS_INVALID);
          bad.set_message("replica ids must be >= 1");
          co_return encode_reply(bad);
        }
        to->push_back(node_id(static_cast<uint64_t>(id)));
      }
    }
    if (auto it = sh.groups.find(g); it != sh.groups.end()) {
      // Running: the assignment may have changed (a move started or ended).
      if (it->second->assigned() != replicas) it->second->set_assigned(std::move(replicas));
      co_return encode_reply(state_of(*it->second));
    }
    auto grp = std::make_unique<partition_group>(key, bootstrap, std::move(replicas), r.overrides().SerializeAsString(),
                                                 _psettings, sh.env,
                                                 [this](partition_group& pg) { report(pg); });
    partition_group* p = grp.get();
    p->set_maintenance(&sh.maintenance);
    sh.groups.emplace(g, std::move(grp));
    co_await set_owner(g, sdk::this_shard());
    auto opened = co_await p->open(_node, seed_for(g), sh.tasks.try_enter());
    if (!opened) {
      sdk::log_error("raft: cannot start " + key.name() + ": " + opened.err().message);
      GroupState bad = state_of(*p);
      bad.set_status(CLUSTER_STATUS_STORAGE_ERROR);
      bad.set_message(opened.err().message);
      auto it = sh.groups.find(g);
      std::unique_ptr<partition_group> dead = std::move(it->second);
      sh.groups.erase(it);
      co_await set_owner(g, std::nullopt);
      co_await dead->close(false);
      co_return encode_reply(bad);
    }
    co_return encode_reply(state_of(*p));
  }

  // ---- controller -----------------------------------------------------------------

  GroupState controller_state() {
    GroupState s;
    const auto& c = _shards.at(0).controller;
    s.set_group(controller_group_id);
    if (!c) {
      s.set_status(CLUSTER_STATUS_SHUTTING_DOWN);
      return s;
    }
    s.set_leader(to_kafka_id(c->leader()));
    s.set_term(static_cast<int64_t>(c->term().value()));
    s.set_role(role_name(c->current_role()));
    s.set_high_watermark(static_cast<int64_t>(c->commit_index().value()));
    s.set_applied_index(c->delivered_index().value());
    s.set_failed(c->failed());
    for (const auto& [id, _] : _cfg.seeds) s.add_replicas(static_cast<int32_t>(id));
    for (node_id l : c->members().learners) s.add_learners(to_kafka_id(l));
    // On the leader: every broker (voters and learners) and whether it was
    // heard from lately, which the cluster health uses to name brokers down.
    if (c->current_role() == role::leader && c->node()) add_followers(s, c->node()->status());
    return s;
  }

  // Shard 0: every leader_announce_ms, the groups this broker leads go to
  // every peer (app_leaders); peers hand them to their kafka plugin.
  task<void> announce_leaders(shard_state& sh, sdk::gate::holder) {
    while (co_await sdk::sleep_ms(leader_announce_ms, &sh.stop) == -ETIME) {
      GroupList led;
      for (uint32_t s = 0; s < sdk::shard_count(); ++s) {
        co_await _invoker.run_on(s, [this, s, &led]() -> task<void> {
          for (const auto& [_, g] : _shards.at(s).groups) {
            if (g->current_role() != role::leader || g->failed()) continue;
            GroupState* gs = led.add_groups();
            gs->mutable_id()->set_topic(g->key().topic);
            gs->mutable_id()->set_partition(g->key().partition);
            gs->mutable_id()->set_revision(g->key().revision);
            gs->set_leader(to_kafka_id(_node));
            gs->set_term(static_cast<int64_t>(g->term().value()));
            gs->set_log_start_offset(g->storage_log_start());  // followers follow DeleteRecords
            if (g->node()) add_in_sync(*gs, g->node()->status());
          }
          co_return;
        });
      }
      if (led.groups().empty()) continue;
      const std::string bytes = led.SerializeAsString();
      // This broker's kafka plugin too: its reports come on leader, term and
      // high watermark changes, the ISR changes without them.
      deliver_leaders(sh, bytes);
      std::set<uint64_t> peers;
      for (const auto& [id, _] : _cfg.seeds) peers.insert(id);
      for (const auto& [id, _] : _known_peers) peers.insert(static_cast<uint64_t>(id));
      for (uint64_t id : peers) {
        if (node_id(id) == _node) continue;
        rpc::app_message a;
        a.kind = app_leaders;
        a.payload = bytes;
        sh.transport.send_app(node_id(id), std::move(a));
      }
      schedule_flush(sh);
    }
  }

  // A broker outside the seed list: asks the seeds, every second, until the
  // controller's leader has made it a learner and it hears from a leader.
  task<void> join_controller(shard_state& sh, sdk::gate::holder) {
    Peer me;
    me.set_id(static_cast<int32_t>(_node.value()));
    me.set_address(_cfg.advertised_address);
    const std::string bytes = me.SerializeAsString();
    for (;;) {
      controller::controller_group* c = sh.controller.get();
      if (c && !c->leader().is_zero() && c->members().contains(_node)) break;
      for (const auto& [id, _] : _cfg.seeds) {
        rpc::app_message a;
        a.kind = app_join;
        a.payload = bytes;
        sh.transport.send_app(node_id(id), std::move(a));
      }
      schedule_flush(sh);
      if (co_await sdk::sleep_ms(1000, &sh.stop) != -ETIME) co_return;
    }
    sdk::log_info("raft: this broker follows the controller as a learner");
  }

  // The RPC addresses of brokers beyond the seeds, on every shard's transport.
  task<void> set_peers(std::vector<std::pair<node_id, std::string>> peers) {
    for (uint32_t s = 0; s < sdk::shard_count(); ++s) {
      co_await _invoker.run_on(s, [this, s, &peers]() -> task<void> {
        for (const auto& [id, addr] : peers)
          if (id != _node && !addr.empty()) (void)_shards.at(s).transport.set_peer(id, addr);
        co_return;
      });
    }
  }

  task<sdk::reply> serve_controller(sdk::message req) {
    if (sdk::this_shard() != 0) {
      GroupState bad;
      bad.set_status(CLUSTER_STATUS_INVALID);
      bad.set_message("raft.controller is served on shard 0");
      co_return encode_reply(bad);
    }
    shard_state& sh = _shards.at(0);
    switch (req.type) {
      case CONTROLLER_PROPOSE: {
        ProposeRequest r;
        if (!r.ParseFromString(req.bytes)) break;
        co_return encode_reply(co_await propose_anywhere(sh, r.command()));
      }
      case CONTROLLER_STATUS: {
        GroupState st = controller_state();
        st.set_rpc_address(_cfg.advertised_address);
        co_return encode_reply(st);
      }
      case CONTROLLER_PEERS: {
        Peers r;
        if (!r.ParseFromString(req.bytes)) break;
        std::vector<std::pair<node_id, std::string>> peers;
        for (const Peer& p : r.peers())
          if (p.id() > 0 && sdk::parse_host_port(p.address()) && !_known_peers.count(p.id())) {
            peers.emplace_back(node_id(static_cast<uint64_t>(p.id())), p.address());
            _known_peers[p.id()] = p.address();
          }
        if (!peers.empty()) co_await set_peers(std::move(peers));
        std::set<uint64_t> maintenance;
        for (int32_t id : r.maintenance())
          if (id > 0) maintenance.insert(static_cast<uint64_t>(id));
        for (uint32_t s = 0; s < sdk::shard_count(); ++s)
          co_await _invoker.run_on(s, [this, s, &maintenance]() -> task<void> {
            _shards.at(s).maintenance = maintenance;
            co_return;
          });
        co_return sdk::reply{};
      }
      case CONTROLLER_SUBSCRIBE: {
        SubscribeRequest r;
        if (!r.ParseFromString(req.bytes) || !sh.controller) break;
        const int32_t service = r.service();
        // The kafka plugin holds the state machine: commands, snapshots and
        // restores go to its service on shard 0.
        const auto send = [service](uint32_t type) {
          return [service, type](log_index index, std::string bytes) -> task<void> {
            ApplyRequest a;
            a.set_index(index.value());
            a.set_command(std::move(bytes));
            sdk::message m;
            m.type = type;
            m.bytes = a.SerializeAsString();
            co_await sdk::call(service, 0, m);
          };
        };
        controller::controller_group::state_machine sm;
        sm.apply = send(KAFKA_CONTROLLER_APPLY);
        sm.restore = send(KAFKA_CONTROLLER_RESTORE);
        sm.snapshot = [service]() -> task<std::string> {
          sdk::message m;
          m.type = KAFKA_CONTROLLER_SNAPSHOT;
          sdk::reply rep = co_await sdk::call(service, 0, m);
          co_return std::move(rep.msg.bytes);
        };
        sm.snapshot_entries = _cfg.controller_snapshot_entries;
        sh.controller->subscribe(std::move(sm));
        co_return sdk::reply{};
      }
      default:
        break;
    }
    GroupState bad;
    bad.set_status(CLUSTER_STATUS_INVALID);
    bad.set_message("raft.controller: message type " + std::to_string(req.type) + " with a body that does not decode");
    co_return encode_reply(bad);
  }

  // Proposes at the leader, wherever it is, retrying while an election runs
  // (up to 10 s).
  task<ProposeReply> propose_anywhere(shard_state& sh, const std::string& command) {
    ProposeReply out;
    const uint64_t deadline = sdk::now_ns() + 10'000'000'000ull;
    while (sdk::now_ns() < deadline && !sh.stop.abort_requested()) {
      controller::controller_group* c = sh.controller.get();
      if (!c || c->failed()) break;
      if (c->current_role() == role::leader) {
        controller::propose_result r = co_await c->propose(command);
        if (r.ok) {
          out.set_status(CLUSTER_STATUS_OK);
          out.set_index(r.index.value());
          out.set_leader(to_kafka_id(_node));
          co_return out;
        }
        if (!r.not_leader) {
          out.set_status(CLUSTER_STATUS_SHUTTING_DOWN);
          out.set_message(r.message);
          co_return out;
        }
      } else if (!c->leader().is_zero()) {
        ProposeReply fwd = co_await forward_proposal(sh, c->leader(), command);
        if (fwd.status() == CLUSTER_STATUS_OK) co_return fwd;
      }
      if (co_await sdk::sleep_ms(_cfg.heartbeat_interval_ms, &sh.stop) != -ETIME) break;
    }
    out.set_status(CLUSTER_STATUS_TIMEOUT);
    out.set_message("the controller has no reachable leader (no quorum of seeds?)");
    out.set_leader(sh.controller ? to_kafka_id(sh.controller->leader()) : -1);
    co_return out;
  }

  task<ProposeReply> forward_proposal(shard_state& sh, node_id leader, const std::string& command) {
    auto f = std::make_shared<shard_state::forward>();
    const uint64_t id = sh.next_request_id++;
    sh.forwards.emplace(id, f);
    rpc::app_message a;
    a.kind = app_propose;
    a.request_id = id;
    ProposeRequest pr;
    pr.set_command(command);
    a.payload = pr.SerializeAsString();
    sh.transport.send_app(leader, std::move(a));
    schedule_flush(sh);
    // The leader answers once the command committed; give up after 5 s.
    auto h = sh.tasks.try_enter();
    if (h) {
      sdk::spawn([](std::shared_ptr<shard_state::forward> fw, sdk::gate::holder) -> task<void> {
        for (int i = 0; i < 50 && !fw->done.is_set(); ++i) co_await sdk::sleep_ms(100);
        if (!fw->done.is_set()) {
          fw->reply.set_status(CLUSTER_STATUS_TIMEOUT);
          fw->done.set();
        }
      }(f, std::move(h)));
    } else {
      f->reply.set_status(CLUSTER_STATUS_SHUTTING_DOWN);
      f->done.set();
    }
    co_await f->done.wait();
    sh.forwards.erase(id);
    co_return f->reply;
  }

  // Shard 0: hands a GroupList of leaders to the kafka plugin.
  void deliver_leaders(shard_state& sh, std::string bytes) {
    if (_kafka_service < 0) _kafka_service = sdk::lookup_service("kafka.cluster");
    auto h = sh.tasks.try_enter();
    if (_kafka_service < 0 || !h) return;
    sdk::spawn([](int32_t service, std::string bytes, sdk::gate::holder) -> task<void> {
      sdk::message m;
      m.type = KAFKA_LEADERS;
      m.bytes = std::move(bytes);
      co_await sdk::call(service, 0, m);
    }(_kafka_service, std::move(bytes), std::move(h)));
  }

  void on_app(uint32_t shard, node_id from, rpc::app_message a) {
    if (shard != 0) {
      forward_to(0, [this, from, a = std::move(a)]() mutable { on_app(0, from, std::move(a)); });
      return;
    }
    shard_state& sh = _shards.at(0);
    if (a.kind == app_leaders) {
      deliver_leaders(sh, std::move(a.payload));
      return;
    }
    if (a.kind == app_join) {
      Peer p;
      if (!p.ParseFromString(a.payload) || p.id() <= 0 || node_id(static_cast<uint64_t>(p.id())) != from ||
          !sdk::parse_host_port(p.address()))
        return;
      auto h = sh.tasks.try_enter();
      if (!h) return;
      sdk::spawn([](raft_plugin& self, shard_state& s, Peer joiner, sdk::gate::holder) -> task<void> {
        // Every shard must reach it (its partition groups), then the leader
        // adds it to the controller as a learner.
        if (!self._known_peers.count(joiner.id())) {
          self._known_peers[joiner.id()] = joiner.address();
          std::vector<std::pair<node_id, std::string>> one;
          one.emplace_back(node_id(static_cast<uint64_t>(joiner.id())), joiner.address());
          co_await self.set_peers(std::move(one));
        }
        if (s.controller && s.controller->current_role() == role::leader)
          s.controller->add_learner(node_id(static_cast<uint64_t>(joiner.id())));
      }(*this, sh, std::move(p), std::move(h)));
      return;
    }
    if (a.kind != app_propose) return;
    if (a.is_response) {
      auto it = sh.forwards.find(a.request_id);
      if (it == sh.forwards.end() || it->second->done.is_set()) return;
      if (!it->second->reply.ParseFromString(a.payload)) it->second->reply.set_status(CLUSTER_STATUS_INVALID);
      it->second->done.set();
      return;
    }
    auto h = sh.tasks.try_enter();
    if (!h) return;
    sdk::spawn([](raft_plugin& self, shard_state& s, node_id to, rpc::app_message req, sdk::gate::holder) -> task<void> {
      ProposeRequest pr;
      ProposeReply out;
      controller::controller_group* c = s.controller.get();
      if (!pr.ParseFromString(req.payload)) {
        out.set_status(CLUSTER_STATUS_INVALID);
      } else if (!c || c->current_role() != role::leader) {
        out.set_status(CLUSTER_STATUS_NOT_LEADER);
        out.set_leader(c ? to_kafka_id(c->leader()) : -1);
      } else {
        controller::propose_result r = co_await c->propose(pr.command());
        out.set_status(r.ok ? CLUSTER_STATUS_OK : r.not_leader ? CLUSTER_STATUS_NOT_LEADER : CLUSTER_STATUS_SHUTTING_DOWN);
        out.set_index(r.index.value());
        out.set_leader(to_kafka_id(r.leader));
        out.set_message(r.message);
      }
      rpc::app_message resp;
      resp.kind = app_propose;
      resp.request_id = req.request_id;
      resp.is_response = true;
      resp.payload = out.SerializeAsString();
      s.transport.send_app(to, std::move(resp));
      self.schedule_flush(s);
    }(*this, sh, from, std::move(a), std::move(h)));
  }

  // ---- admin routes (docs/ADMIN.md, "Raft") -----------------------------------

  static nlohmann::json to_json(const GroupState& g) {
    nlohmann::json j;
    if (g.has_id()) {
      j["topic"] = g.id().topic();
      j["partition"] = g.id().partition();
      j["revision"] = g.id().revision();
    }
    j["group"] = std::to_string(g.group());
    j["leader"] = g.leader();
    j["term"] = g.term();
    j["role"] = g.role();
    j["commit_index"] = g.has_id() ? g.commit_offset() : g.high_watermark();
    j["high_watermark"] = g.high_watermark();
    j["log_start_offset"] = g.log_start_offset();
    j["log_end_offset"] = g.log_end_offset();
    j["replicas"] = std::vector<int32_t>(g.replicas().begin(), g.replicas().end());
    if (g.has_id()) {
      j["learners"] = std::vector<int32_t>(g.learners().begin(), g.learners().end());
      j["assigned"] = std::vector<int32_t>(g.assigned().begin(), g.assigned().end());
      j["moving"] = g.moving();
      j["repairing"] = g.repair_until_offset() >= 0;
      j["repair_until_offset"] = g.repair_until_offset();
    }
    j["failed"] = g.failed();
    auto& f = j["followers"] = nlohmann::json::array();
    for (const FollowerState& fs : g.followers())
      f.push_back({{"id", fs.id()}, {"match", fs.match_offset()}, {"lag", fs.lag()}, {"active", fs.active()},
                   {"state", fs.state()}, {"learner", fs.learner()}});
    return j;
  }

  // This broker's groups, from every shard.
  task<std::vector<GroupState>> all_groups() {
    std::vector<GroupState> out;
    for (uint32_t s = 0; s < sdk::shard_count(); ++s) {
      co_await _invoker.run_on(s, [this, &out, s]() -> task<void> {
        for (const auto& [_, g] : _shards.at(s).groups) out.push_back(state_of(*g));
        co_return;
      });
    }
    co_return out;
  }

  // The group of topic/partition on this broker (any revision), on its shard.
  task<std::optional<GroupState>> find_group(const std::string& topic, int32_t partition,
                                             std::optional<int32_t> transfer_to = std::nullopt) {
    std::optional<GroupState> found;
    for (uint32_t s = 0; s < sdk::shard_count() && !found; ++s) {
      co_await _invoker.run_on(s, [&, s]() -> task<void> {
        for (const auto& [_, g] : _shards.at(s).groups) {
          if (g->key().topic != topic || g->key().partition != partition) continue;
          if (transfer_to) {
            auto r = g->transfer(*transfer_to < 0 ? node_id{} : node_id(static_cast<uint64_t>(*transfer_to)));
            found = state_of(*g);
            if (!r) {
              found->set_status(r.err().code == make_error_code(errc::not_leader) ? CLUSTER_STATUS_NOT_LEADER
                                                                                  : CLUSTER_STATUS_INVALID);
              found->set_message(r.err().message);
            }
          } else {
            found = state_of(*g);
          }
          break;
        }
        co_return;
      });
    }
    co_return found;
  }

  void register_admin_routes() {
    _routes.init("raft.admin");
    _routes.add("GET", "/v1/raft/controller", [this](sdk::http_request) -> task<sdk::http_response> {
      GroupState st;
      co_await _invoker.run_on(0, [&]() -> task<void> {
        st = controller_state();
        co_return;
      });
      nlohmann::json j = to_json(st);
      j["voters"] = j["replicas"];
      j["node_id"] = static_cast<int32_t>(_node.value());
      co_return sdk::http_response::json(200, j.dump());
    });
    _routes.add("GET", "/v1/raft/maintenance", [this](sdk::http_request) -> task<sdk::http_response> {
      // This broker's maintenance mode and what it still leads (0: drained).
      int64_t leaderships = 0;
      for (const GroupState& g : co_await all_groups()) leaderships += g.role() == "leader";
      bool on = false;
      co_await _invoker.run_on(0, [&]() -> task<void> {
        on = _shards.at(0).maintenance.count(_node.value()) > 0;
        co_return;
      });
      nlohmann::json j = {{"node_id", static_cast<int32_t>(_node.value())}, {"maintenance", on},
                          {"leaderships", leaderships}, {"drained", on && leaderships == 0}};
      co_return sdk::http_response::json(200, j.dump());
    });
    _routes.add("GET", "/v1/raft/groups", [this](sdk::http_request) -> task<sdk::http_response> {
      nlohmann::json arr = nlohmann::json::array();
      for (const GroupState& g : co_await all_groups()) arr.push_back(to_json(g));
      co_return sdk::http_response::json(200, arr.dump());
    });
    const auto partition_of = [](const sdk::http_request& req, int32_t& p) {
      const std::string& s = req.params.at("partition");
      if (s.empty() || s.size() > 9 || s.find_first_not_of("0123456789") != std::string::npos) return false;
      p = std::stoi(s);
      return true;
    };
    _routes.add("GET", "/v1/raft/groups/{topic}/{partition}",
                [this, partition_of](sdk::http_request req) -> task<sdk::http_response> {
                  int32_t p = 0;
                  if (!partition_of(req, p)) co_return sdk::http_response::error(400, "partition must be a number");
                  auto g = co_await find_group(req.params.at("topic"), p);
                  if (!g)
                    co_return sdk::http_response::error(
                        404, "this broker holds no replica of " + req.params.at("topic") + "/" + std::to_string(p));
                  co_return sdk::http_response::json(200, to_json(*g).dump());
                });
    _routes.add("POST", "/v1/raft/groups/{topic}/{partition}/transfer_leadership",
                [this, partition_of](sdk::http_request req) -> task<sdk::http_response> {
                  int32_t p = 0;
                  if (!partition_of(req, p)) co_return sdk::http_response::error(400, "partition must be a number");
                  int32_t target = -1;
                  if (auto it = req.query.find("target"); it != req.query.end()) {
                    if (it->second.empty() || it->second.size() > 9 ||
                        it->second.find_first_not_of("0123456789") != std::string::npos)
                      co_return sdk::http_response::error(400, "target must be a node id");
                    target = std::stoi(it->second);
                  }
                  auto g = co_await find_group(req.params.at("topic"), p, target);
                  if (!g)
                    co_return sdk::http_response::error(
                        404, "this broker holds no replica of " + req.params.at("topic") + "/" + std::to_string(p));
                  if (g->status() == CLUSTER_STATUS_NOT_LEADER)
                    co_return sdk::http_response::error(409, g->message() + " (ask broker " +
                                                                 std::to_string(g->leader()) + ")");
                  if (g->status() != CLUSTER_STATUS_OK) co_return sdk::http_response::error(400, g->message());
                  co_return sdk::http_response::json(202, to_json(*g).dump());
                });
    _routes.add_metrics([this]() -> task<std::string> {
      std::string out;
      out += "# HELP sluice_raft_groups Partition Raft groups on this broker by role\n# TYPE sluice_raft_groups gauge\n";
      std::map<std::string, int64_t> roles;
      int64_t repairing = 0;
      for (const GroupState& g : co_await all_groups()) {
        ++roles[g.failed() ? "failed" : g.role()];
        if (g.has_id() && g.repair_until_offset() >= 0) ++repairing;
      }
      for (const char* r : {"leader", "follower", "candidate", "pre_candidate", "failed"})
        out += "sluice_raft_groups{role=\"" + std::string(r) + "\"} " + std::to_string(roles[r]) + "\n";
      out += "# HELP sluice_raft_groups_repairing Partition replicas repairing a damaged log from their peers\n"
             "# TYPE sluice_raft_groups_repairing gauge\nsluice_raft_groups_repairing " +
             std::to_string(repairing) + "\n";
      std::map<int32_t, std::array<uint64_t, 6>> peers;  // sent bytes, frames, received bytes, dropped, refused, connected
      for (uint32_t s = 0; s < sdk::shard_count(); ++s) {
        co_await _invoker.run_on(s, [&, s]() -> task<void> {
          for (const rpc::peer_stats& ps : _shards.at(s).transport.stats().peers) {
            auto& a = peers[static_cast<int32_t>(ps.node.value())];
            a[0] += ps.bytes_sent;
            a[1] += ps.frames_sent;
            a[2] += ps.bytes_received;
            a[3] += ps.dropped;
            a[4] += ps.refused;
            a[5] += ps.connected ? 1 : 0;
          }
          co_return;
        });
      }
      const std::pair<const char*, const char*> names[] = {
          {"sluice_raft_rpc_sent_bytes_total", "counter"},     {"sluice_raft_rpc_sent_frames_total", "counter"},
          {"sluice_raft_rpc_received_bytes_total", "counter"}, {"sluice_raft_rpc_dropped_messages_total", "counter"},
          {"sluice_raft_rpc_refused_messages_total", "counter"}, {"sluice_raft_rpc_connections", "gauge"}};
      for (size_t i = 0; i < 6; ++i) {
        out += std::string("# TYPE ") + names[i].first + " " + names[i].second + "\n";
        for (const auto& [peer, a] : peers)
          out += std::string(names[i].first) + "{peer=\"" + std::to_string(peer) + "\"} " + std::to_string(a[i]) + "\n";
      }
      co_return out;
    });
  }

  raft_config _cfg;
  node_id _node;
  std::string _dir;
  int32_t _storage = -1;
  int32_t _kafka_service = -1;
  partition::partition_settings _psettings;
  sdk::shard_invoker _invoker;
  sdk::per_shard<shard_state> _shards;
  uint16_t _rpc_port = 0;  // the RPC port shard 0 bound (shared by the others)
  std::map<int32_t, std::string> _known_peers;  // shard 0: brokers beyond the seeds whose address every shard has
  sdk::admin_routes _routes;
};

}  // namespace
}  // namespace sluice::raft

SLUICE_PLUGIN(sluice::raft::raft_plugin, "raft", "0.1.0",
              "Raft replication: a controller group for the cluster's metadata and one group per partition",
              "storage")
