// Handlers for cluster and topic metadata: ApiVersions, Metadata,
// DescribeCluster, CreateTopics, DeleteTopics, CreatePartitions,
// DescribeConfigs, AlterConfigs, IncrementalAlterConfigs, DescribeLogDirs.
#include "broker.h"
#include "topic_configs.h"

#include <sluice/kafka/msg/alter_configs.h>
#include <sluice/kafka/msg/api_table.h>
#include <sluice/kafka/msg/api_versions.h>
#include <sluice/kafka/msg/create_partitions.h>
#include <sluice/kafka/msg/create_topics.h>
#include <sluice/kafka/msg/delete_topics.h>
#include <sluice/kafka/msg/describe_cluster.h>
#include <sluice/kafka/msg/describe_configs.h>
#include <sluice/kafka/msg/describe_log_dirs.h>
#include <sluice/kafka/msg/incremental_alter_configs.h>
#include <sluice/kafka/msg/metadata.h>

#include <sys/statvfs.h>

#include <algorithm>
#include <set>

namespace sluice::kafka {

using sdk::task;

namespace {

constexpr int32_t authorized_operations_omitted = INT32_MIN;

uuid to_wire(const topic_uuid& id) {
  uuid u;
  u.bytes = id;
  return u;
}

// True when s is a client software name or version as KIP-511 allows:
// [a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?
bool valid_software_field(const std::string& s) {
  if (s.empty()) return false;
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); };
  if (!alnum(s.front()) || !alnum(s.back())) return false;
  return std::all_of(s.begin(), s.end(), [&](char c) { return alnum(c) || c == '-' || c == '.'; });
}

void fill_api_versions(msg::api_versions_response& resp) {
  for (const api_handler& h : api_handlers()) {
    auto& k = resp.api_keys.emplace_back();
    k.api_key = h.api_key;
    k.min_version = h.min_version;
    k.max_version = h.max_version;
  }
}

}  // namespace

void unsupported_api_versions_response(response& out) {
  msg::api_versions_response resp;
  resp.error_code = code(error_code::unsupported_version);
  fill_api_versions(resp);
  resp.encode(out.body, 0);
}

task<bool> handle_api_versions(broker&, request_context& ctx, reader& r, response& out) {
  msg::api_versions_request req;
  if (!req.decode(r, ctx.api_version)) co_return false;
  msg::api_versions_response resp;
  if (ctx.api_version >= 3) {
    if (!valid_software_field(req.client_software_name) || !valid_software_field(req.client_software_version)) {
      resp.error_code = code(error_code::invalid_request);
    } else {
      ctx.conn->client_software_name = req.client_software_name;
      ctx.conn->client_software_version = req.client_software_version;
    }
  }
  fill_api_versions(resp);
  resp.encode(out.body, ctx.api_version);
  co_return true;
}

// ---- Metadata ----------------------------------------------------------------

namespace {

// Cluster mode: a broker id that Metadata lists (list_brokers), else -1. A
// client takes a leader or controller id missing from the broker list as
// final (librdkafka waits for that broker until its request times out) but
// looks -1 up again.
int32_t listed_or_none(const broker& b, const metadata_image& img, int32_t id) {
  const bool listed = img.brokers.empty() ? id == b.node_id : img.brokers.count(id) != 0 && !img.retired.count(id);
  return listed ? id : -1;
}

// The controller id clients get: the controller's leader; while this broker
// knows none (an election) or has not seen it register, itself, which takes
// metadata changes and passes them to the leader once there is one (a KRaft
// broker names any broker too); a retired broker (decommissioned, still
// running) names the first broker listed. An admin client told -1 or an id
// it cannot dial waits for a controller until its request times out.
int32_t controller_for_clients(const broker& b, const metadata_image& img) {
  if (!b.clustered()) return b.node_id;
  if (const int32_t leader = listed_or_none(b, img, b.controller_id); leader >= 0) return leader;
  if (const int32_t self = listed_or_none(b, img, b.node_id); self >= 0) return self;
  for (const auto& [id, _] : img.brokers)
    if (!img.retired.count(id)) return id;
  return -1;
}

void describe_topic(broker& b, const metadata_image& img, const topic_info& t,
                    msg::metadata_response::metadata_response_topic& out) {
  out.error_code = 0;
  out.name = t.name;
  out.topic_id = to_wire(t.id);
  out.is_internal = t.name == offsets_topic;
  out.topic_authorized_operations = authorized_operations_omitted;
  out.partitions.reserve(static_cast<size_t>(t.partitions));
  for (int32_t p = 0; p < t.partitions; ++p) {
    auto& mp = out.partitions.emplace_back();
    mp.error_code = 0;
    mp.partition_index = p;
    if (b.clustered()) {
      // The Raft group's leader and term; replicas as the controller
      // assigned them, plus those leaving in a move in flight (as Kafka lists
      // adding and removing replicas during a reassignment). In sync: as the
      // leader last reported it for its term (itself and the voters it heard
      // from lately that are replicating); until one is known, the replicas
      // (before the move, while one is in flight).
      const auto [leader, epoch] = b.leader_of(t.name, p);
      mp.leader_id = listed_or_none(b, img, leader);
      mp.leader_epoch = epoch;
      if (mp.leader_id < 0) mp.error_code = code(error_code::leader_not_available);
      mp.replica_nodes = hosts_of(t, p, b.node_id);
      mp.isr_nodes = b.in_sync_of(t.name, p);
      if (mp.isr_nodes.empty()) {
        const std::vector<int32_t> before = previous_of(t, p);
        mp.isr_nodes = before.empty() ? replicas_of(t, p, b.node_id) : before;
      }
      continue;
    }
    mp.leader_id = b.node_id;
    mp.leader_epoch = 0;
    mp.replica_nodes = {b.node_id};
    mp.isr_nodes = {b.node_id};
  }
}

// Every broker in the image but the retired ones (cluster mode: as Kafka
// lists no unregistered broker), else this one.
template <class Brokers, class SetId>
void list_brokers(broker& b, const metadata_image& img, size_t listener, Brokers& out, SetId set_id) {
  if (b.clustered() && !img.brokers.empty()) {
    for (const auto& [id, bi] : img.brokers) {
      if (img.retired.count(id)) continue;
      auto& br = out.emplace_back();
      set_id(br, id);
      br.host = bi.host;
      br.port = bi.port;
      if (!bi.rack.empty()) br.rack = bi.rack;
    }
    return;
  }
  const auto [host, port] = b.advertised(listener);
  auto& br = out.emplace_back();
  set_id(br, b.node_id);
  br.host = host;
  br.port = port;
  if (!b.cfg.rack.empty()) br.rack = b.cfg.rack;
}

}  // namespace

task<bool> handle_metadata(broker& b, request_context& ctx, reader& r, response& out) {
  msg::metadata_request req;
  if (!req.decode(r, ctx.api_version)) co_return false;
  const int16_t v = ctx.api_version;
  image_ptr img = b.image();
  // v0: an empty list means all topics; v1+: null means all.
  const bool all_topics = !req.topics || (v == 0 && req.topics->empty());
  const bool may_create = b.local().cfg.auto_create_topics_enable && (v < 4 || req.allow_auto_topic_creation);
  if (!all_topics && may_create) {
    std::vector<std::string> missing;
    for (const auto& t : *req.topics)
      if (t.name && !img->find(*t.name) && validate_topic_name(*t.name).empty()) missing.push_back(*t.name);
    if (!missing.empty()) img = co_await b.auto_create(missing);
  }
  msg::metadata_response resp;
  list_brokers(b, *img, ctx.conn->listener, resp.brokers, [](auto& br, int32_t id) { br.node_id = id; });
  resp.cluster_id = img->cluster_id;
  resp.controller_id = controller_for_clients(b, *img);
  resp.cluster_authorized_operations = authorized_operations_omitted;
  if (all_topics) {
    for (const auto& [name, t] : img->topics) describe_topic(b, *img, t, resp.topics.emplace_back());
  } else {
    for (const auto& rt : *req.topics) {
      auto& mt = resp.topics.emplace_back();
      const topic_info* t = nullptr;
      if (rt.name) t = img->find(*rt.name);
      else if (rt.topic_id != uuid{}) t = img->find(rt.topic_id.bytes);
      if (t) {
        describe_topic(b, *img, *t, mt);
        continue;
      }
      mt.name = rt.name;
      mt.topic_id = rt.topic_id;
      mt.topic_authorized_operations = authorized_operations_omitted;
      if (!rt.name) mt.error_code = code(error_code::unknown_topic_id);
      else if (!validate_topic_name(*rt.name).empty()) mt.error_code = code(error_code::invalid_topic_exception);
      else mt.error_code = code(error_code::unknown_topic_or_partition);
    }
  }
  resp.encode(out.body, v);
  co_return true;
}

task<bool> handle_describe_cluster(broker& b, request_context& ctx, reader& r, response& out) {
  msg::describe_cluster_request req;
  if (!req.decode(r, ctx.api_version)) co_return false;
  msg::describe_cluster_response resp;
  if (ctx.api_version >= 1 && req.endpoint_type != 1) {
    resp.error_code = code(error_code::unsupported_version);
    resp.error_message = "Only brokers (endpoint type 1) are described; this node has no separate controller endpoint";
  } else {
    list_brokers(b, *b.image(), ctx.conn->listener, resp.brokers, [](auto& br, int32_t id) { br.broker_id = id; });
  }
  resp.endpoint_type = req.endpoint_type;
  resp.cluster_id = b.image()->cluster_id;
  resp.controller_id = controller_for_clients(b, *b.image());
  resp.cluster_authorized_operations = authorized_operations_omitted;
  resp.encode(out.body, ctx.api_version);
  co_return true;
}

// ---- topics ----------------------------------------------------------------------

task<bool> handle_create_topics(broker& b, request_context& ctx, reader& r, response& out) {
  msg::create_topics_request req;
  if (!req.decode(r, ctx.api_version)) co_return false;
  msg::create_topics_response resp;
  std::set<std::string> seen;
  for (const auto& t : req.topics) {
    auto& res = resp.topics.emplace_back();
    res.name = t.name;
    if (!seen.insert(t.name).second) {
      res.error_code = code(error_code::invalid_request);
      res.error_message = "Create topics request from client contains a duplicate topic: " + t.name;
      continue;
    }
    op_result result;
    create_topic_spec spec;
    if (!t.assignments.empty()) {
      // Manual assignment: partitions 0..n-1 in order; on one broker, each
      // on this node alone; in a cluster, checked by the controller.
      bool ok = t.num_partitions == -1 && t.replication_factor == -1;
      for (size_t i = 0; ok && i < t.assignments.size(); ++i)
        ok = t.assignments[i].partition_index == static_cast<int32_t>(i) &&
             (b.clustered() || t.assignments[i].broker_ids == std::vector<int32_t>{b.node_id});
      if (!ok) {
        result = {error_code::invalid_replica_assignment,
                  b.clustered() ? std::string("Replica assignments must list partitions 0..n-1, with num_partitions and "
                                              "replication_factor -1")
                                : "Replica assignments must list partitions 0..n-1, each on broker " +
                                      std::to_string(b.node_id) + " alone, with num_partitions and replication_factor -1"};
      }
      if (b.clustered())
        for (const auto& a : t.assignments) spec.assignments.push_back(a.broker_ids);
    }
    spec.name = t.name;
    spec.partitions = t.assignments.empty() ? t.num_partitions : static_cast<int32_t>(t.assignments.size());
    spec.replication_factor =
        t.assignments.empty() ? t.replication_factor : static_cast<int16_t>(t.assignments.front().broker_ids.size());
    spec.validate_only = req.validate_only;
    for (const auto& c : t.configs) {
      if (!c.value) continue;  // null: use the default
      spec.configs[c.name] = *c.value;
    }
    if (result.error == error_code::none)
      co_await b.on_controller([&](topic_manager& tm) -> task<void> { result = co_await tm.create_topic(spec); });
    res.error_code = code(result.error);
    if (!result.message.empty()) res.error_message = result.message;
    if (result.error != error_code::none) {
      if (ctx.api_version >= 5) res.topic_config_error_code = code(result.error);
      continue;
    }
    if (ctx.api_version >= 5) {
      const int32_t parts = spec.partitions == -1 ? b.local().cfg.num_partitions : spec.partitions;
      res.num_partitions = parts;
      res.replication_factor = spec.replication_factor == -1 ? b.local().cfg.default_replication_factor
                                                             : spec.replication_factor;
      res.configs.emplace();
      for (const auto& def : topic_config_defs()) {
        auto& c = res.configs->emplace_back();
        c.name = def.name;
        c.value = effective_topic_config(b.local().cfg, spec.configs, def.name);
        c.read_only = false;
        c.config_source = spec.configs.count(def.name) ? 1 /* DYNAMIC_TOPIC_CONFIG */ : 5 /* DEFAULT_CONFIG */;
        c.is_sensitive = false;
      }
    }
    if (!req.validate_only) {
      if (const topic_info* ti = b.image()->find(t.name)) res.topic_id = to_wire(ti->id);
    }
  }
  resp.encode(out.body, ctx.api_version);
  co_return true;
}

task<bool> handle_delete_topics(broker& b, request_context& ctx, reader& r, response& out) {
  msg::delete_topics_request req;
  if (!req.decode(r, ctx.api_version)) co_return false;
  msg::delete_topics_response resp;
  // v0-5 name topics in topic_names; v6+ in topics (by name or id).
  std::vector<std::pair<std::optional<std::string>, uuid>> targets;
  if (ctx.api_version >= 6) {
    for (const auto& t : req.topics) targets.emplace_back(t.name, t.topic_id);
  } else {
    for (const auto& n : req.topic_names) targets.emplace_back(n, uuid{});
  }
  for (const auto& [name, id] : targets) {
    auto& res = resp.responses.emplace_back();
    res.name = name;
    res.topic_id = id;
    std::string topic;
    if (name) {
      topic = *name;
    } else if (const topic_info* t = b.image()->find(id.bytes)) {
      topic = t->name;
      res.name = t->name;
    } else {
      res.error_code = code(error_code::unknown_topic_id);
      continue;
    }
    if (const topic_info* t = b.image()->find(topic)) res.topic_id = to_wire(t->id);
    op_result result;
    if (topic == offsets_topic)
      result = {error_code::invalid_topic_exception, std::string("The internal topic ") + offsets_topic +
                                                         " holds every group's offsets and cannot be deleted"};
    else
      co_await b.on_controller([&](topic_manager& tm) -> task<void> { result = co_await tm.delete_topic(topic); });
    res.error_code = code(result.error);
    if (result.error != error_code::none && ctx.api_version >= 5) res.error_message = result.message;
  }
  resp.encode(out.body, ctx.api_version);
  co_return true;
}

task<bool> handle_create_partitions(broker& b, request_context& ctx, reader& r, response& out) {
  msg::create_partitions_request req;
  if (!req.decode(r, ctx.api_version)) co_return false;
  msg::create_partitions_response resp;
  for (const auto& t : req.topics) {
    auto& res = resp.results.emplace_back();
    res.name = t.name;
    op_result result;
    if (t.name == offsets_topic)
      result = {error_code::invalid_topic_exception,
                std::string("The partition count of ") + offsets_topic + " decides where every group lives; it cannot change"};
    std::vector<std::vector<int32_t>> assignments;
    if (t.assignments) {
      for (const auto& a : *t.assignments) {
        if (!b.clustered() && a.broker_ids != std::vector<int32_t>{b.node_id})
          result = {error_code::invalid_replica_assignment,
                    "Every new partition must be on broker " + std::to_string(b.node_id) + " alone"};
        if (b.clustered()) assignments.push_back(a.broker_ids);
      }
    }
    if (result.error == error_code::none)
      co_await b.on_controller([&](topic_manager& tm) -> task<void> {
        result = co_await tm.create_partitions(t.name, t.count, req.validate_only, std::move(assignments));
      });
    res.error_code = code(result.error);
    if (!result.message.empty()) res.error_message = result.message;
  }
  resp.encode(out.body, ctx.api_version);
  co_return true;
}

// ---- configs -----------------------------------------------------------------------

namespace {

constexpr int8_t resource_topic = 2;
constexpr int8_t resource_broker = 4;
constexpr int8_t resource_broker_logger = 8;

// Broker configs shown read-only by DescribeConfigs.
std::vector<std::pair<std::string, std::string>> broker_configs(broker& b) {
  const kafka_config& c = b.local().cfg;
  return {
      {"auto.create.topics.enable", c.auto_create_topics_enable ? "true" : "false"},
      {"broker.id", std::to_string(b.node_id)},
      {"default.replication.factor", std::to_string(c.default_replication_factor)},
      {"log.cleanup.policy", c.log_cleanup_policy},
      {"log.message.timestamp.type", c.log_message_timestamp_type},
      {"log.retention.bytes", std::to_string(c.log_retention_bytes)},
      {"log.retention.ms", std::to_string(c.log_retention_ms)},
      {"log.roll.ms", std::to_string(c.log_segment_ms)},
      {"log.segment.bytes", std::to_string(c.log_segment_bytes)},
      {"message.max.bytes", std::to_string(c.message_max_bytes)},
      {"num.partitions", std::to_string(c.num_partitions)},
      {"socket.request.max.bytes", std::to_string(c.max_request_bytes)},
      {"connections.max.idle.ms", std::to_string(c.connections_max_idle_ms)},
  };
}

bool wanted(const std::optional<std::vector<std::string>>& keys, const std::string& name) {
  return !keys || keys->empty() || std::find(keys->begin(), keys->end(), name) != keys->end();
}

}  // namespace

task<bool> handle_describe_configs(broker& b, request_context& ctx, reader& r, response& out) {
  msg::describe_configs_request req;
  if (!req.decode(r, ctx.api_version)) co_return false;
  const int16_t v = ctx.api_version;
  msg::describe_configs_response resp;
  image_ptr img = b.image();
  for (const auto& res : req.resources) {
    auto& result = resp.results.emplace_back();
    result.resource_type = res.resource_type;
    result.resource_name = res.resource_name;
    if (res.resource_type == resource_topic) {
      const topic_info* t = img->find(res.resource_name);
      if (!t) {
        result.error_code = code(error_code::unknown_topic_or_partition);
        result.error_message = "Topic " + res.resource_name + " does not exist";
        continue;
      }
      for (const auto& def : topic_config_defs()) {
        if (!wanted(res.configuration_keys, def.name)) continue;
        auto& c = result.configs.emplace_back();
        c.name = def.name;
        const bool overridden = t->configs.count(def.name) > 0;
        c.value = effective_topic_config(b.local().cfg, t->configs, def.name);
        c.read_only = false;
        c.is_default = !overridden;
        c.config_source = overridden ? 1 /* DYNAMIC_TOPIC_CONFIG */ : 5 /* DEFAULT_CONFIG */;
        c.is_sensitive = false;
        c.config_type = static_cast<int8_t>(def.type);
        if (v >= 3 && req.include_documentation) c.documentation = def.doc;
        if (v >= 1 && req.include_synonyms) {
          if (overridden) {
            auto& s = c.synonyms.emplace_back();
            s.name = def.name;
            s.value = c.value;
            s.source = 1;
          }
          if (def.broker_synonym) {
            auto& s = c.synonyms.emplace_back();
            s.name = def.broker_synonym;
            s.value = topic_config_default(b.local().cfg, def);
            s.source = 5;
          }
        }
      }
    } else if (res.resource_type == resource_broker) {
      if (!res.resource_name.empty() && res.resource_name != std::to_string(b.node_id)) {
        result.error_code = code(error_code::invalid_request);
        result.error_message = "Unexpected broker id, expected " + std::to_string(b.node_id) + " or empty string, but received " + res.resource_name;
        continue;
      }
      for (const auto& [name, value] : broker_configs(b)) {
        if (!wanted(res.configuration_keys, name)) continue;
        auto& c = result.configs.emplace_back();
        c.name = name;
        c.value = value;
        c.read_only = true;
        c.config_source = 4;  // STATIC_BROKER_CONFIG
        c.config_type = static_cast<int8_t>(config_type::string);
      }
    } else if (res.resource_type == resource_broker_logger) {
      result.error_code = code(error_code::invalid_request);
      result.error_message = "Broker loggers are described by the admin HTTP API";
    } else {
      result.error_code = code(error_code::invalid_request);
      result.error_message = "Unsupported resource type " + std::to_string(res.resource_type);
    }
  }
  resp.encode(out.body, v);
  co_return true;
}

namespace {

template <class Resource, class Result>
task<void> alter_one(broker& b, const Resource& res, Result& result, bool incremental, bool validate_only) {
  result.resource_type = res.resource_type;
  result.resource_name = res.resource_name;
  if (res.resource_type != resource_topic) {
    result.error_code = code(res.resource_type == resource_broker ? error_code::invalid_config : error_code::invalid_request);
    result.error_message = res.resource_type == resource_broker
                               ? std::string("Broker configs are read-only: set them in the YAML and restart")
                               : "Unsupported resource type " + std::to_string(res.resource_type);
    co_return;
  }
  std::map<std::string, std::optional<std::string>> changes;
  for (const auto& c : res.configs) {
    if constexpr (requires { c.config_operation; }) {
      switch (c.config_operation) {
        case 0: changes[c.name] = c.value; break;           // SET
        case 1: changes[c.name] = std::nullopt; break;      // DELETE
        default:                                            // APPEND / SUBTRACT (lists)
          result.error_code = code(error_code::invalid_config);
          result.error_message = "APPEND and SUBTRACT are not supported for " + c.name;
          co_return;
      }
    } else {
      changes[c.name] = c.value;
    }
  }
  op_result r;
  co_await b.on_controller([&](topic_manager& tm) -> task<void> {
    r = co_await tm.alter_configs(res.resource_name, changes, incremental, validate_only);
  });
  result.error_code = code(r.error);
  if (!r.message.empty()) result.error_message = r.message;
}

}  // namespace

task<bool> handle_alter_configs(broker& b, request_context& ctx, reader& r, response& out) {
  msg::alter_configs_request req;
  if (!req.decode(r, ctx.api_version)) co_return false;
  msg::alter_configs_response resp;
  for (const auto& res : req.resources)
    co_await alter_one(b, res, resp.responses.emplace_back(), false, req.validate_only);
  resp.encode(out.body, ctx.api_version);
  co_return true;
}

task<bool> handle_incremental_alter_configs(broker& b, request_context& ctx, reader& r, response& out) {
  msg::incremental_alter_configs_request req;
  if (!req.decode(r, ctx.api_version)) co_return false;
  msg::incremental_alter_configs_response resp;
  for (const auto& res : req.resources)
    co_await alter_one(b, res, resp.responses.emplace_back(), true, req.validate_only);
  resp.encode(out.body, ctx.api_version);
  co_return true;
}

// ---- log dirs ------------------------------------------------------------------------

task<bool> handle_describe_log_dirs(broker& b, request_context& ctx, reader& r, response& out) {
  msg::describe_log_dirs_request req;
  if (!req.decode(r, ctx.api_version)) co_return false;
  msg::describe_log_dirs_response resp;
  auto& dir = resp.results.emplace_back();
  const std::string data_dir = sdk::api().data_dir(sdk::host());
  dir.log_dir = data_dir;
  struct statvfs vfs {};
  if (::statvfs(data_dir.c_str(), &vfs) == 0) {
    dir.total_bytes = static_cast<int64_t>(vfs.f_blocks) * static_cast<int64_t>(vfs.f_frsize);
    dir.usable_bytes = static_cast<int64_t>(vfs.f_bavail) * static_cast<int64_t>(vfs.f_frsize);
  }
  image_ptr img = b.image();
  std::vector<std::pair<std::string, std::vector<int32_t>>> wanted_parts;
  if (!req.topics) {
    for (const auto& [name, t] : img->topics) {
      std::vector<int32_t> ps(static_cast<size_t>(t.partitions));
      for (int32_t p = 0; p < t.partitions; ++p) ps[static_cast<size_t>(p)] = p;
      wanted_parts.emplace_back(name, std::move(ps));
    }
  } else {
    for (const auto& t : *req.topics) wanted_parts.emplace_back(t.topic, t.partitions);
  }
  for (const auto& [name, parts] : wanted_parts) {
    const topic_info* t = img->find(name);
    if (!t) continue;
    auto& rt = dir.topics.emplace_back();
    rt.name = name;
    for (int32_t p : parts) {
      if (p < 0 || p >= t->partitions) continue;
      partition_summary s;
      co_await b.on_owner(name, p, [&](partition_table& pt) -> task<void> { s = co_await pt.summary(name, p); });
      auto& rp = rt.partitions.emplace_back();
      rp.partition_index = p;
      rp.partition_size = s.size_bytes;
      rp.offset_lag = 0;
      rp.is_future_key = false;
    }
  }
  resp.encode(out.body, ctx.api_version);
  co_return true;
}

}  // namespace sluice::kafka
