// The `kafka` plugin: Kafka's wire protocol on the configured listeners.
//
//   configure  parse the settings, load the topic metadata (shard 0 owns
//              it), register the cross-shard invoker
//   start      every shard listens on every listener (SO_REUSEPORT) and
//              serves its own connections; partitions are owned by
//              shard_of(topic, partition)
//   stop       stop accepting, cut connections, close the partitions
//
// docs/KAFKA.md describes the settings, the supported APIs and versions.
#include "admin_api.h"
#include "broker.h"
#include "cluster_config.h"
#include "connection.h"
#include "sluice/cluster.pb.h"

#include <sluice/kafka/msg/api_table.h>
#include <sluice/sdk/net.h>
#include <sluice/sdk/plugin.h>
#include <sluice/sdk/server.h>

#include <cerrno>
#include <cstring>
#include <set>

namespace sluice::kafka {
namespace {

using sdk::task;

struct handler_spec {
  int16_t key;
  int16_t min_version;  // the oldest version served (Kafka 4.0's floor, KIP-896)
  int16_t max_version;  // clipped to the spec's newest
  handler_fn fn;
};

// What this broker serves. Versions below a floor use message formats v0/v1
// or were removed in Kafka 4.0.
constexpr handler_spec handler_specs[] = {
    {0, 3, 11, &handle_produce},
    {1, 4, 17, &handle_fetch},
    {2, 1, 10, &handle_list_offsets},
    {3, 0, 12, &handle_metadata},
    {8, 2, 9, &handle_offset_commit},
    {9, 1, 9, &handle_offset_fetch},
    {10, 0, 6, &handle_find_coordinator},
    {11, 0, 9, &handle_join_group},
    {12, 0, 4, &handle_heartbeat},
    {13, 0, 5, &handle_leave_group},
    {14, 0, 5, &handle_sync_group},
    {15, 0, 5, &handle_describe_groups},
    {16, 0, 5, &handle_list_groups},
    {18, 0, 4, &handle_api_versions},
    {19, 2, 7, &handle_create_topics},
    {20, 1, 6, &handle_delete_topics},
    {21, 0, 2, &handle_delete_records},
    {22, 0, 5, &handle_init_producer_id},
    {23, 2, 4, &handle_offset_for_leader_epoch},
    {32, 1, 4, &handle_describe_configs},
    {33, 0, 2, &handle_alter_configs},
    {35, 1, 4, &handle_describe_log_dirs},
    {37, 0, 3, &handle_create_partitions},
    {42, 0, 2, &handle_delete_groups},
    {44, 0, 1, &handle_incremental_alter_configs},
    {45, 0, 0, &handle_alter_partition_reassignments},
    {46, 0, 0, &handle_list_partition_reassignments},
    {47, 0, 0, &handle_offset_delete},
    {60, 0, 1, &handle_describe_cluster},
    {61, 0, 0, &handle_describe_producers},
};

}  // namespace

const std::vector<api_handler>& api_handlers() {
  static const std::vector<api_handler> table = [] {
    std::vector<api_handler> t;
    for (const auto& h : handler_specs) {
      const msg::api_info* info = msg::find_api(h.key);
      SLUICE_ASSERT(info != nullptr);
      api_handler a{h.key, std::max(h.min_version, info->min_version), std::min(h.max_version, info->max_version),
                    h.fn};
      SLUICE_ASSERT(a.min_version <= a.max_version);
      t.push_back(a);
    }
    return t;
  }();
  return table;
}

const api_handler* find_handler(int16_t api_key) {
  for (const auto& h : api_handlers())
    if (h.api_key == api_key) return &h;
  return nullptr;
}

namespace {

// Cluster mode: how long a broker whose image caught up with the controller
// waits for its leaders table (and the brokers' registrations) before it
// accepts clients anyway (docs/RAFT.md).
constexpr uint64_t accept_wait_max_ms = 5000;

class kafka_plugin final : public sdk::plugin {
 public:
  void configure(sdk::config_map& cfg) override {
    _b.cfg = parse_kafka_config(cfg);
    _b.node_id = sdk::node_id();
    const std::string dir = std::string(sdk::api().data_dir(sdk::host())) + "/kafka";
    _b.topics = std::make_unique<topic_manager>(_b.cfg, dir, [this](image_ptr img) { return _b.publish(img); });
    // With the raft plugin listed above this one, the broker is part of a
    // cluster: metadata comes from the controller group, partitions are Raft
    // groups (docs/RAFT.md).
    _b.raft_partition = sdk::lookup_service("raft.partition");
    _b.raft_controller = sdk::lookup_service("raft.controller");
    if (_b.clustered()) {
      if (_b.raft_controller < 0) throw sdk::config_error("kafka: the raft plugin's raft.controller service is missing");
      _b.topics->set_controller(controller_link{[this](std::string command) { return propose(std::move(command)); }});
    }
    if (sdk::register_service("kafka.cluster", [this](uint32_t shard, sdk::message req) {
          return serve_cluster(shard, std::move(req));
        }) < 0)
      throw sdk::config_error("kafka: cannot register the kafka.cluster service");
    if (std::string err = _b.topics->load(); !err.empty()) throw sdk::config_error(err);
    _b.yaml_cfg = _b.cfg;
    _b.cfg = apply_cluster_config(_b.yaml_cfg, _b.topics->image()->cluster_config, which_settings::restart_only);
    _b.invoker.init("kafka.invoke");
    register_admin_routes(_b, _routes);
    for (const api_handler& h : api_handlers()) {
      if (_b.metrics_by_api.size() <= static_cast<size_t>(h.api_key)) _b.metrics_by_api.resize(h.api_key + 1);
      const std::string api = msg::find_api(h.api_key)->name;
      _b.metrics_by_api[h.api_key].requests = sdk::register_metric(
          SLUICE_METRIC_COUNTER, ("kafka_requests_total{api=\"" + api + "\"}").c_str(), "Kafka requests served");
      _b.metrics_by_api[h.api_key].errors = sdk::register_metric(
          SLUICE_METRIC_COUNTER, ("kafka_request_errors_total{api=\"" + api + "\"}").c_str(),
          "Kafka requests answered with an error code (top level or for any partition), or closed as malformed");
      _b.metrics_by_api[h.api_key].latency_us =
          sdk::register_metric(SLUICE_METRIC_HISTOGRAM, ("kafka_request_latency_us{api=\"" + api + "\"}").c_str(),
                               "Kafka request latency from a whole frame received to its response sent, microseconds");
    }
    _b.m_connections = sdk::register_metric(SLUICE_METRIC_GAUGE, "kafka_connections", "Open Kafka connections");
    _b.m_connections_total =
        sdk::register_metric(SLUICE_METRIC_COUNTER, "kafka_connections_total", "Kafka connections accepted");
    _b.m_bad_requests = sdk::register_metric(SLUICE_METRIC_COUNTER, "kafka_bad_requests_total",
                                             "Connections closed for a bad frame, header or request");
    _b.m_bytes_in = sdk::register_metric(SLUICE_METRIC_COUNTER, "kafka_request_bytes_total", "Request bytes received");
    _b.m_bytes_out = sdk::register_metric(SLUICE_METRIC_COUNTER, "kafka_response_bytes_total", "Response bytes sent");
    _b.shards.init(sdk::shard_count());
    _b.bound_ports.assign(_b.cfg.listeners.size(), 0);
    (void)api_handlers();  // checks the table against the specs now, not on the first request
  }

  std::string start(uint32_t shard) override {
    if (_b.storage_service < 0) _b.storage_service = sdk::lookup_service("storage.log");
    if (_b.storage_service < 0) return "the storage plugin's storage.log service is missing: list `storage` before `kafka`";
    shard_state& sh = _b.shards.emplace(shard, _b.cfg, _b.storage_service);
    if (_b.clustered()) {
      sh.parts.set_cluster(
          _b.raft_partition, _b.node_id,
          [this, &sh](const std::string& topic, int64_t revision, int32_t partition, std::vector<int32_t> voters) {
            auto h = sh.tasks.try_enter();
            if (!h) return;
            sdk::spawn([](broker& b, std::string t, int64_t rev, int32_t p, std::vector<int32_t> v,
                          sdk::gate::holder) -> task<void> {
              op_result r;
              co_await b.on_controller([&](topic_manager& tm) -> task<void> { r = co_await tm.finish_move(t, rev, p, v); });
              if (r.error != error_code::none)
                sdk::log_warn("kafka: reporting the move of " + t + "-" + std::to_string(p) + " done: " + r.message);
              else if (!r.unchanged)
                sdk::log_info("kafka: the move of " + t + "-" + std::to_string(p) + " is done");
            }(_b, topic, revision, partition, std::move(voters), std::move(h)));
          });
      sh.groups.set_clustered();
    }
    sh.image = _b.topics->image();
    sh.cfg = apply_live_cluster_config(_b.cfg, sh.image->cluster_config);
    sdk::spawn([](shard_state& sh, sdk::gate::holder) -> task<void> { co_await sh.parts.apply_image(sh.image); }(
        sh, sh.tasks.try_enter()));
    for (size_t i = 0; i < _b.cfg.listeners.size(); ++i) {
      std::string error;
      const int32_t fd = sdk::listen_on_shard(_b.cfg.listeners[i].address, static_cast<int32_t>(_b.cfg.backlog),
                                              _b.bound_ports[i], error,
                                              "listeners[" + std::to_string(i) + "].address");
      if (fd < 0) {
        for (int32_t open_fd : sh.listen_fds) ::close(open_fd);
        _b.shards.reset(shard);
        return "kafka listener " + _b.cfg.listeners[i].name + ": " + error;
      }
      sh.listen_fds.push_back(fd);
      if (shard == 0) {
        const auto [host, port] = _b.advertised(i);
        sdk::log_info("kafka listener " + _b.cfg.listeners[i].name + " on " + sdk::local_address(fd).to_string() +
                      ", advertised as " + host + ":" + std::to_string(port) + " (" +
                      std::to_string(_b.topics->image()->topics.size()) + " topic(s), cluster id " +
                      _b.topics->image()->cluster_id + ")");
      }
      sdk::spawn(accept_when_ready(sh, fd, i, sh.tasks.try_enter()));
    }
    // connections.max.idle.ms: close connections with no traffic for that long.
    sdk::spawn(sdk::sweep_idle(sh.connections, _b.cfg.connections_max_idle_ms, sh.stop, sh.tasks.try_enter()));
    if (_b.clustered() && shard == 0) sdk::spawn(join_cluster(sh, sh.tasks.try_enter()));
    sdk::spawn(start_groups(sh, shard, sh.tasks.try_enter()));
    return {};
  }

  task<void> stop(uint32_t shard) override {
    shard_state& sh = _b.shards.at(shard);
    sh.stop.request_abort();
    sh.groups.shutdown();
    for (auto& c : sh.connections) c.abort.request_abort();
    co_await sh.tasks.close();
    co_await sh.parts.close_all();
    for (int32_t fd : sh.listen_fds) co_await sdk::close(fd);
    sh.listen_fds.clear();
    // The state stays until the plugin is destroyed: other shards, still
    // stopping, may forward a request here; it is refused, not a crash.
  }

 private:
  // Consumer groups: shard 0 creates __consumer_offsets on first start; every
  // shard then replays the partitions it owns and runs the group timers.
  task<void> start_groups(shard_state& sh, uint32_t shard, sdk::gate::holder) {
    // Cluster mode: the offsets topic is created once enough brokers joined
    // for its replication factor (min(default_replication_factor, voters)).
    while (_b.clustered() && shard == 0 && !_b.topics->image()->find(offsets_topic)) {
      const size_t want = std::max<size_t>(1, std::min<size_t>(_b.cfg.default_replication_factor, _voters));
      if (_voters > 0 && _b.topics->image()->brokers.size() >= want) break;
      if (co_await sdk::sleep_ms(100, &sh.stop) != -ETIME) co_return;
    }
    if (shard == 0 && !_b.topics->image()->find(offsets_topic)) {
      create_topic_spec spec;
      spec.name = offsets_topic;
      spec.partitions = _b.cfg.offsets_topic_num_partitions;
      spec.replication_factor = _b.clustered() ? -1 : 1;
      // Offsets are never deleted by age or size (compaction will bound them).
      spec.configs = {{"retention.ms", "-1"}, {"retention.bytes", "-1"}, {"cleanup.policy", "compact"},
                      {"segment.bytes", "104857600"}};
      const op_result r = co_await _b.topics->create_topic(spec);
      if (r.error != error_code::none && r.error != error_code::topic_already_exists)
        sdk::log_error(std::string("kafka: cannot create ") + offsets_topic + ": " + r.message +
                       "; consumer groups are unavailable");
    }
    // Other shards wait for shard 0 to publish the topic.
    while (!sh.image->find(offsets_topic)) {
      if (co_await sdk::sleep_ms(20, &sh.stop) != -ETIME) co_return;
    }
    // The topic's partition count rules (it may predate a config change).
    const topic_info* t = sh.image->find(offsets_topic);
    if (shard == 0 && t->partitions != _b.cfg.offsets_topic_num_partitions)
      sdk::log_warn(std::string("kafka: ") + offsets_topic + " has " + std::to_string(t->partitions) +
                    " partitions; offsets_topic_num_partitions (" + std::to_string(_b.cfg.offsets_topic_num_partitions) +
                    ") applies only when the topic is created");
    co_await sh.groups.load(t->partitions);
    co_await sh.groups.run_timers(sh.stop);
  }

  // Cluster mode: clients are accepted once this broker's metadata caught up
  // with the controller's (a restarted broker would otherwise answer from an
  // empty image: unknown topics, and auto-creation of existing ones).
  // Connections wait in the listen backlog meanwhile.
  task<void> accept_when_ready(shard_state& sh, int32_t fd, size_t listener, sdk::gate::holder h) {
    while (_b.clustered() && !_b.metadata_ready.load(std::memory_order_acquire))
      if (co_await sdk::sleep_ms(20, &sh.stop) != -ETIME) co_return;
    co_await sdk::accept_loop(
        fd, sh.stop, sh.tasks,
        [this, &sh, listener](int32_t c, sdk::gate::holder g) { return serve_connection(_b, sh, c, listener, std::move(g)); },
        std::move(h));
  }

  // ---- cluster mode ------------------------------------------------------------

  task<controller_link::proposed> propose(std::string command) {
    cluster::ProposeRequest pr;
    pr.set_command(std::move(command));
    sdk::message m;
    m.type = cluster::CONTROLLER_PROPOSE;
    m.bytes = pr.SerializeAsString();
    sdk::reply rep = co_await sdk::call(_b.raft_controller, 0, m);
    cluster::ProposeReply reply;
    controller_link::proposed out;
    if (rep.status != 0 || !reply.ParseFromString(rep.msg.bytes)) {
      out.error = error_code::unknown_server_error;
      out.message = "the raft plugin did not answer (status " + std::to_string(rep.status) + ")";
      co_return out;
    }
    if (reply.status() == cluster::CLUSTER_STATUS_OK) {
      out.ok = true;
      out.index = reply.index();
      co_return out;
    }
    out.error = reply.status() == cluster::CLUSTER_STATUS_NOT_LEADER ? error_code::not_controller
                                                                      : error_code::request_timed_out;
    out.message = reply.message().empty() ? "the controller did not commit the change" : reply.message();
    co_return out;
  }

  task<cluster::GroupState> controller_status() {
    sdk::message m;
    m.type = cluster::CONTROLLER_STATUS;
    sdk::reply rep = co_await sdk::call(_b.raft_controller, 0, m);
    cluster::GroupState gs;
    if (rep.status != 0 || !gs.ParseFromString(rep.msg.bytes)) gs.set_status(cluster::CLUSTER_STATUS_SHUTTING_DOWN);
    co_return gs;
  }

  // Shard 0: follow the controller's commands, register this broker, and
  // keep the controller id for Metadata.
  task<void> join_cluster(shard_state& sh, sdk::gate::holder) {
    cluster::SubscribeRequest sub;
    sub.set_service(sdk::lookup_service("kafka.cluster"));
    sdk::message m;
    m.type = cluster::CONTROLLER_SUBSCRIBE;
    m.bytes = sub.SerializeAsString();
    if (sdk::reply r = co_await sdk::call(_b.raft_controller, 0, m); r.status != 0) {
      sdk::log_error("kafka: cannot follow the controller (raft status " + std::to_string(r.status) + ")");
      co_return;
    }
    broker_info me;
    me.id = _b.node_id;
    std::tie(me.host, me.port) = _b.advertised(0);
    me.rack = _b.cfg.rack;
    bool registered = false;
    uint32_t quiet_ms = 0;
    uint64_t caught_up_ns = 0;  // when the image first caught up with the controller
    while (!sh.stop.abort_requested()) {
      const cluster::GroupState gs = co_await controller_status();
      _b.controller_id = gs.leader();
      me.rpc_address = gs.rpc_address();
      co_await push_peers();
      _voters = static_cast<size_t>(gs.replicas_size());
      // Caught up: everything the controller committed reached the image
      // (noop entries of new leaders are delivered without a command).
      if (!_b.metadata_ready.load(std::memory_order_relaxed) && gs.leader() >= 0 && gs.high_watermark() > 0 &&
          gs.applied_index() >= static_cast<uint64_t>(gs.high_watermark())) {
        if (caught_up_ns == 0) caught_up_ns = sdk::now_ns();
        // Then what a first Metadata answer names: this broker and the
        // controller's leader as registered brokers, and a leader for every
        // partition (this broker's groups hear from their leaders, the other
        // leaders announce themselves once a second). Clients cache such an
        // answer: librdkafka takes leader -1, or a leader or controller id
        // missing from the broker list, as final for that topic or request.
        // A partition may have no leader (no majority of its replicas up):
        // clients are let in after accept_wait_max_ms whatever is missing.
        const std::string missing = missing_for_clients(gs.leader());
        const uint64_t waited_ms = (sdk::now_ns() - caught_up_ns) / 1'000'000;
        if (missing.empty() || waited_ms >= accept_wait_max_ms) {
          _b.metadata_ready.store(true, std::memory_order_release);
          sdk::log_info("kafka: metadata caught up with the controller (index " + std::to_string(gs.high_watermark()) +
                        ", " + std::to_string(_b.topics->image()->topics.size()) + " topic(s)" +
                        (missing.empty() ? std::string() : "; still " + missing + " after " +
                                                                std::to_string(waited_ms) + " ms") +
                        "); accepting clients");
        }
      }
      if (!registered && gs.leader() >= 0) {
        const op_result r = co_await _b.topics->register_broker(me);
        registered = r.error == error_code::none;
        if (registered)
          sdk::log_info("kafka: broker " + std::to_string(me.id) + " (" + me.host + ":" + std::to_string(me.port) +
                        ") is registered with the controller");
        else if (quiet_ms == 0)
          sdk::log_warn("kafka: registering with the controller: " + r.message + "; retrying");
      }
      quiet_ms = (quiet_ms + 200) % 10'000;
      if (co_await sdk::sleep_ms(200, &sh.stop) != -ETIME) break;
    }
  }

  // Cluster mode: what this broker's Metadata would still lack ("" for
  // nothing): this broker or the controller's leader not registered in its
  // image, partitions whose leader it does not know. Shard 0.
  std::string missing_for_clients(int32_t controller_leader) {
    const image_ptr img = _b.topics->image();
    std::string out;
    for (int32_t id : std::set<int32_t>{_b.node_id, controller_leader})
      if (!img->brokers.count(id)) out += (out.empty() ? "broker " : ", broker ") + std::to_string(id) + " not registered";
    size_t leaderless = 0;
    for (const auto& [name, t] : img->topics)
      for (int32_t p = 0; p < t.partitions; ++p) leaderless += _b.leader_of(name, p).first < 0;
    if (leaderless > 0)
      out += (out.empty() ? "" : ", ") + std::to_string(leaderless) + " partition(s) without a known leader";
    return out;
  }

  // The raft plugin dials brokers beyond its seed list at the RPC addresses
  // they registered (sent when the broker list changed).
  task<void> push_peers() {
    const image_ptr img = _b.topics->image();
    cluster::Peers peers;
    for (const auto& [id, bi] : img->brokers) {
      if (bi.maintenance) peers.add_maintenance(id);
      if (bi.rpc_address.empty()) continue;
      cluster::Peer* p = peers.add_peers();
      p->set_id(id);
      p->set_address(bi.rpc_address);
    }
    std::string bytes = peers.SerializeAsString();
    if (bytes == _peers_pushed) co_return;
    sdk::message m;
    m.type = cluster::CONTROLLER_PEERS;
    m.bytes = bytes;
    if ((co_await sdk::call(_b.raft_controller, 0, m)).status == 0) _peers_pushed = std::move(bytes);
  }

  task<sdk::reply> serve_cluster(uint32_t shard, sdk::message req) {
    sdk::reply out;
    if (!_b.shards.has(shard)) co_return out;
    shard_state& sh = _b.shards.at(shard);
    if (req.type == cluster::KAFKA_CONTROLLER_APPLY || req.type == cluster::KAFKA_CONTROLLER_RESTORE) {
      cluster::ApplyRequest a;
      if (shard != 0 || !a.ParseFromString(req.bytes)) co_return out;
      if (req.type == cluster::KAFKA_CONTROLLER_APPLY)
        co_await _b.topics->apply(a.index(), a.command());
      else
        co_await _b.topics->restore(a.index(), a.command());
      co_return out;
    }
    if (req.type == cluster::KAFKA_CONTROLLER_SNAPSHOT) {
      if (shard == 0) out.msg.bytes = image_to_json(*_b.topics->image());
      co_return out;
    }
    if (req.type == cluster::KAFKA_LEADERS) {
      // Leaders announced by the brokers that lead (for partitions this
      // broker holds no replica of): a later term wins, on every shard, and
      // so does a leader for the term in which this broker knew none (its
      // replica was moved away or is between elections).
      cluster::GroupList list;
      if (shard != 0 || !list.ParseFromString(req.bytes)) co_return out;
      std::vector<std::pair<std::string, std::pair<int32_t, int32_t>>> news;
      std::vector<std::vector<int32_t>> isrs;
      for (const auto& g : list.groups()) {
        news.push_back({broker::leader_key(g.id().topic(), g.id().partition(), g.id().revision()),
                        {g.leader(), static_cast<int32_t>(g.term())}});
        isrs.emplace_back(g.in_sync().begin(), g.in_sync().end());
      }
      for (uint32_t s = 0; s < sdk::shard_count(); ++s) {
        (void)co_await _b.invoker.run_on(s, [this, &news, &isrs]() -> task<void> {
          auto& leaders = _b.local().leaders;
          for (size_t i = 0; i < news.size(); ++i) {
            const auto& [key, lead] = news[i];
            // Not (or no longer) in this shard's image: a deleted topic's, or
            // one this broker learns of with its next image (and the next
            // announcement). Entries go with the image (broker::publish).
            if (!broker::leader_key_current(*_b.image(), key)) continue;
            auto [it, fresh] = leaders.try_emplace(key, lead);
            if (!fresh && (it->second.second < lead.second || (it->second.second == lead.second && it->second.first < 0)))
              it->second = lead;
            if (!isrs[i].empty()) _b.note_in_sync(key, lead.second, isrs[i]);
          }
          co_return;
        });
      }
      // Replicas held here follow their leader's log start (DeleteRecords):
      // one hop per shard, a truncation only where this replica is behind.
      std::vector<std::vector<const cluster::GroupState*>> by_shard(sdk::shard_count());
      for (const auto& g : list.groups())
        if (g.log_start_offset() > 0 && g.leader() != _b.node_id)
          by_shard[shard_of(g.id().topic(), g.id().partition(), sdk::shard_count())].push_back(&g);
      for (uint32_t s = 0; s < sdk::shard_count(); ++s) {
        if (by_shard[s].empty()) continue;
        (void)co_await _b.invoker.run_on(s, [this, &groups = by_shard[s]]() -> task<void> {
          shard_state& local = _b.local();
          for (const cluster::GroupState* g : groups) {
            const int32_t term = static_cast<int32_t>(g->term());
            if (!local.parts.log_start_behind(g->id().topic(), g->id().partition(), g->id().revision(), term,
                                              g->log_start_offset()))
              continue;
            if (auto h = local.tasks.try_enter())
              sdk::spawn([](shard_state& sh, std::string topic, int32_t partition, int64_t revision, int32_t term,
                            int64_t start, sdk::gate::holder) -> task<void> {
                co_await sh.parts.follow_log_start(std::move(topic), partition, revision, term, start);
              }(local, g->id().topic(), g->id().partition(), g->id().revision(), term, g->log_start_offset(),
                std::move(h)));
          }
          co_return;
        });
      }
      co_return out;
    }
    if (req.type != cluster::KAFKA_PARTITION_UPDATE) co_return out;
    cluster::GroupState gs;
    if (!gs.ParseFromString(req.bytes)) co_return out;
    sh.parts.on_group_update(req.bytes);
    // Consumer groups follow the leadership of their offsets partition:
    // loaded once this leader's log is committed to its end.
    if (gs.id().topic() == offsets_topic) {
      const bool leads = gs.leader() == _b.node_id && gs.role() == "leader" && !gs.failed();
      if (!leads)
        sh.groups.unload_partition(gs.id().partition());
      else if (gs.commit_offset() >= gs.log_end_offset())
        sdk::spawn([](shard_state& s, int32_t p, sdk::gate::holder) -> task<void> { co_await s.groups.load_partition(p); }(
            sh, gs.id().partition(), sh.tasks.try_enter()));
    }
    // Every shard answers Metadata and FindCoordinator with it.
    const std::string key = broker::leader_key(gs.id().topic(), gs.id().partition(), gs.id().revision());
    const std::pair<int32_t, int32_t> lead{gs.leader(), static_cast<int32_t>(gs.term())};
    const std::vector<int32_t> isr(gs.in_sync().begin(), gs.in_sync().end());  // on the leader
    for (uint32_t s = 0; s < sdk::shard_count(); ++s) {
      (void)co_await _b.invoker.run_on(s, [this, &key, lead, &isr]() -> task<void> {
        _b.local().leaders[key] = lead;
        if (!isr.empty()) _b.note_in_sync(key, lead.second, isr);
        co_return;
      });
    }
    co_return out;
  }

  broker _b;
  size_t _voters = 0;  // cluster mode: the controller's voters
  std::string _peers_pushed;  // cluster mode: the Peers message last handed to raft
  sdk::admin_routes _routes;
};

}  // namespace
}  // namespace sluice::kafka

SLUICE_PLUGIN(sluice::kafka::kafka_plugin, "kafka", "0.1.0",
              "Kafka wire protocol: produce, fetch, offsets, topics and configs for existing Kafka clients",
              "storage")
