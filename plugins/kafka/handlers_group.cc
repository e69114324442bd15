// Handlers for consumer groups (the classic protocol): FindCoordinator,
// JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch,
// DescribeGroups, ListGroups, DeleteGroups, OffsetDelete. Each group's work
// runs on the shard that owns its __consumer_offsets partition
// (broker::on_group); group_coordinator.cc holds the state machine.
#include "broker.h"

#include <sluice/kafka/msg/delete_groups.h>
#include <sluice/kafka/msg/describe_groups.h>
#include <sluice/kafka/msg/find_coordinator.h>
#include <sluice/kafka/msg/heartbeat.h>
#include <sluice/kafka/msg/join_group.h>
#include <sluice/kafka/msg/leave_group.h>
#include <sluice/kafka/msg/list_groups.h>
#include <sluice/kafka/msg/offset_commit.h>
#include <sluice/kafka/msg/offset_delete.h>
#include <sluice/kafka/msg/offset_fetch.h>
#include <sluice/kafka/msg/sync_group.h>

#include <algorithm>
#include <cctype>
#include <ctime>

namespace sluice::kafka {

using sdk::task;

namespace {

int64_t wall_ms() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1'000'000;
}

}  // namespace

task<bool> handle_find_coordinator(broker& b, request_context& ctx, reader& r, response& out) {
  msg::find_coordinator_request req;
  if (!req.decode(r, ctx.api_version)) co_return false;
  msg::find_coordinator_response resp;
  const auto [host, port] = b.advertised(ctx.conn->listener);
  // Group (0) and transaction (1) keys: this node coordinates every key. A
  // transaction key is answered too, but transactions are not implemented.
  auto answer = [&](int8_t key_type, const std::string& key, int16_t& error, std::optional<std::string>& message,
                    int32_t& node, std::string& h, int32_t& p) {
    if (key_type != 0 && key_type != 1) {
      error = code(error_code::invalid_request);
      message = "Unsupported key type " + std::to_string(key_type);
      node = -1;
      p = -1;
      return;
    }
    error = 0;
    node = b.node_id;
    h = host;
    p = port;
    if (b.clustered() && key_type == 0) {
      // The group's coordinator is the leader of its offsets partition.
      image_ptr img = b.image();
      const topic_info* t = img->find(offsets_topic);
      const auto [leader, epoch] = t ? b.leader_of(offsets_topic, group_partition(key, t->partitions))
                                     : std::pair<int32_t, int32_t>{-1, -1};
      auto bi = img->brokers.find(leader);
      if (leader < 0 || bi == img->brokers.end()) {
        error = code(error_code::coordinator_not_available);
        message = "The coordinator is not available.";
        node = -1;
        h.clear();
        p = -1;
        return;
      }
      node = leader;
      h = bi->second.host;
      p = bi->second.port;
    }
  };
  if (ctx.api_version >= 4) {
    for (const auto& key : req.coordinator_keys) {
      auto& c = resp.coordinators.emplace_back();
      c.key = key;
      answer(req.key_type, key, c.error_code, c.error_message, c.node_id, c.host, c.port);
    }
  } else {
    answer(req.key_type, req.key, resp.error_code, resp.error_message, resp.node_id, resp.host, resp.port);
  }
  resp.encode(out.body, ctx.api_version);
  co_return true;
}

task<bool> handle_join_group(broker& b, request_context& ctx, reader& r, response& out) {
  msg::join_group_request req;
  if (!req.decode(r, ctx.api_version)) co_return false;
  join_request jr;
  jr.group_id = req.group_id;
  jr.member_id = req.member_id;
  jr.instance_id = req.group_instance_id;
  jr.client_id = ctx.client_id.value_or("");
  jr.client_host = "/" + ctx.conn->peer.substr(0, ctx.conn->peer.rfind(':'));
  jr.session_timeout_ms = req.session_timeout_ms;
  jr.rebalance_timeout_ms = ctx.api_version >= 1 ? req.rebalance_timeout_ms : req.session_timeout_ms;
  jr.protocol_type = req.protocol_type;
  for (const auto& p : req.protocols) jr.protocols.emplace_back(p.name, p.metadata);
  jr.require_known_member_id = ctx.api_version >= 4;
  join_outcome o;
  co_await b.on_group(req.group_id, [&](group_coordinator& gc) -> task<void> { o = co_await gc.join(jr); });
  msg::join_group_response resp;
  resp.error_code = code(o.error);
  resp.generation_id = o.generation;
  resp.protocol_type = o.protocol_type.empty() ? std::nullopt : std::optional<std::string>(o.protocol_type);
  if (ctx.api_version >= 7) resp.protocol_name = o.protocol_name;
  else resp.protocol_name = o.protocol_name.value_or("");
  resp.leader = o.leader;
  resp.member_id = o.member_id;
  for (auto& m : o.members) {
    auto& rm = resp.members.emplace_back();
    rm.member_id = m.member_id;
    rm.group_instance_id = m.instance_id;
    rm.metadata = std::move(m.metadata);
  }
  encode_answer(resp, ctx.api_version, out);
  co_return true;
}

task<bool> handle_sync_group(broker& b, request_context& ctx, reader& r, response& out) {
  msg::sync_group_request req;
  if (!req.decode(r, ctx.api_version)) co_return false;
  std::vector<std::pair<std::string, std::vector<uint8_t>>> assignments;
  for (const auto& a : req.assignments) assignments.emplace_back(a.member_id, a.assignment);
  sync_outcome o;
  co_await b.on_group(req.group_id, [&](group_coordinator& gc) -> task<void> {
    o = co_await gc.sync(req.group_id, req.generation_id, req.member_id, req.group_instance_id, assignments);
  });
  msg::sync_group_response resp;
  resp.error_code = code(o.error);
  // v5: the type and name must match what JoinGroup chose.
  if (o.error == error_code::none && ctx.api_version >= 5 &&
      ((req.protocol_type && *req.protocol_type != o.protocol_type) ||
       (req.protocol_name && o.protocol_name && *req.protocol_name != *o.protocol_name)))
    resp.error_code = code(error_code::inconsistent_group_protocol);
  else
    resp.assignment = std::move(o.assignment);
  if (ctx.api_version >= 5 && o.error == error_code::none) {
    resp.protocol_type = o.protocol_type;
    resp.protocol_name = o.protocol_name;
  }
  encode_answer(resp, ctx.api_version, out);
  co_return true;
}

task<bool> handle_heartbeat(broker& b, request_context& ctx, reader& r, response& out) {
  msg::heartbeat_request req;
  if (!req.decode(r, ctx.api_version)) co_return false;
  error_code e = error_code::none;
  co_await b.on_group(req.group_id, [&](group_coordinator& gc) -> task<void> {
    e = gc.heartbeat(req.group_id, req.generation_id, req.member_id, req.group_instance_id);
    co_return;
  });
  msg::heartbeat_response resp;
  resp.error_code = code(e);
  encode_answer(resp, ctx.api_version, out);
  co_return true;
}

task<bool> handle_leave_group(broker& b, request_context& ctx, reader& r, response& out) {
  msg::leave_group_request req;
  if (!req.decode(r, ctx.api_version)) co_return false;
  msg::leave_group_response resp;
  if (ctx.api_version < 3) {
    error_code e = error_code::none;
    co_await b.on_group(req.group_id, [&](group_coordinator& gc) -> task<void> {
      e = gc.leave(req.group_id, req.member_id, std::nullopt);
      co_return;
    });
    resp.error_code = code(e);
  } else {
    // KIP-345: a batch of members, by member id or instance id.
    co_await b.on_group(req.group_id, [&](group_coordinator& gc) -> task<void> {
      for (const auto& m : req.members) {
        auto& rm = resp.members.emplace_back();
        rm.member_id = m.member_id;
        rm.group_instance_id = m.group_instance_id;
        rm.error_code = code(gc.leave(req.group_id, m.member_id, m.group_instance_id));
      }
      co_return;
    });
  }
  encode_answer(resp, ctx.api_version, out);
  co_return true;
}

task<bool> handle_offset_commit(broker& b, request_context& ctx, reader& r, response& out) {
  msg::offset_commit_request req;
  if (!req.decode(r, ctx.api_version)) co_return false;
  msg::offset_commit_response resp;
  image_ptr img = b.image();
  std::vector<std::pair<offset_key, committed_offset>> offsets;
  const int64_t now = wall_ms();
  for (const auto& t : req.topics) {
    auto& rt = resp.topics.emplace_back();
    rt.name = t.name;
    const topic_info* ti = img->find(t.name);
    for (const auto& p : t.partitions) {
      auto& rp = rt.partitions.emplace_back();
      rp.partition_index = p.partition_index;
      if (!ti || p.partition_index < 0 || p.partition_index >= ti->partitions) {
        rp.error_code = code(error_code::unknown_topic_or_partition);
        continue;
      }
      if (p.committed_metadata && p.committed_metadata->size() > 4096) {
        rp.error_code = code(error_code::offset_metadata_too_large);
        continue;
      }
      committed_offset o;
      o.offset = p.committed_offset;
      o.leader_epoch = ctx.api_version >= 6 ? p.committed_leader_epoch : -1;
      o.metadata = p.committed_metadata;
      o.commit_timestamp_ms = ctx.api_version == 1 && p.commit_timestamp >= 0 ? p.commit_timestamp : now;
      offsets.push_back({{t.name, p.partition_index}, std::move(o)});
    }
  }
  error_code e = error_code::none;
  if (!offsets.empty()) {
    const std::string member_id = ctx.api_version >= 1 ? req.member_id : std::string();
    const int32_t generation = ctx.api_version >= 1 ? req.generation_id_or_member_epoch : -1;
    co_await b.on_group(req.group_id, [&](group_coordinator& gc) -> task<void> {
      e = co_await gc.commit(req.group_id, generation, member_id, req.group_instance_id, offsets);
    });
  }
  for (auto& rt : resp.topics)
    for (auto& rp : rt.partitions)
      if (rp.error_code == 0) rp.error_code = code(e);
  resp.encode(out.body, ctx.api_version);
  co_return true;
}

namespace {

// One group's OffsetFetch answer: topics == nullopt means every committed offset.
template <class Topics>
void fill_offsets(const std::map<offset_key, committed_offset>& committed,
                  const std::optional<std::vector<std::pair<std::string, std::vector<int32_t>>>>& topics,
                  Topics& out, bool with_epoch) {
  auto put = [&](const std::string& topic, int32_t partition, const committed_offset* c) {
    if (out.empty() || out.back().name != topic) out.emplace_back().name = topic;
    auto& p = out.back().partitions.emplace_back();
    p.partition_index = partition;
    p.committed_offset = c ? c->offset : -1;
    if (with_epoch) p.committed_leader_epoch = c ? c->leader_epoch : -1;
    p.metadata = c ? c->metadata.value_or("") : std::string();
    p.error_code = 0;
  };
  if (!topics) {
    for (const auto& [k, c] : committed) put(k.first, k.second, &c);
    return;
  }
  for (const auto& [topic, parts] : *topics)
    for (int32_t p : parts) {
      auto it = committed.find({topic, p});
      put(topic, p, it == committed.end() ? nullptr : &it->second);
    }
}

}  // namespace

task<bool> handle_offset_fetch(broker& b, request_context& ctx, reader& r, response& out) {
  msg::offset_fetch_request req;
  if (!req.decode(r, ctx.api_version)) co_return false;
  const int16_t v = ctx.api_version;
  msg::offset_fetch_response resp;
  using topics_t = std::optional<std::vector<std::pair<std::string, std::vector<int32_t>>>>;
  auto load = [&](const std::string& group_id, std::map<offset_key, committed_offset>& committed) -> task<error_code> {
    error_code e = error_code::none;
    co_await b.on_group(group_id, [&](group_coordinator& gc) -> task<void> {
      e = gc.serving(group_id);
      if (e == error_code::none) committed = gc.fetch(group_id);
      co_return;
    });
    co_return e;
  };
  if (v < 8) {
    topics_t topics;
    if (req.topics) {
      topics.emplace();
      for (const auto& t : *req.topics) topics->emplace_back(t.name, t.partition_indexes);
    }
    std::map<offset_key, committed_offset> committed;
    const error_code e = co_await load(req.group_id, committed);
    if (e == error_code::none) {
      fill_offsets(committed, topics, resp.topics, v >= 5);
    }
    resp.error_code = code(e);
  } else {
    for (const auto& g : req.groups) {
      auto& rg = resp.groups.emplace_back();
      rg.group_id = g.group_id;
      topics_t topics;
      if (g.topics) {
        topics.emplace();
        for (const auto& t : *g.topics) topics->emplace_back(t.name, t.partition_indexes);
      }
      std::map<offset_key, committed_offset> committed;
      const error_code e = co_await load(g.group_id, committed);
      rg.error_code = code(e);
      if (e == error_code::none)
        fill_offsets(committed, topics, rg.topics, true);
    }
  }
  resp.encode(out.body, v);
  co_return true;
}

task<bool> handle_describe_groups(broker& b, request_context& ctx, reader& r, response& out) {
  msg::describe_groups_request req;
  if (!req.decode(r, ctx.api_version)) co_return false;
  msg::describe_groups_response resp;
  for (const auto& id : req.groups) {
    group_description d;
    co_await b.on_group(id, [&](group_coordinator& gc) -> task<void> {
      d = gc.describe(id);
      co_return;
    });
    auto& g = resp.groups.emplace_back();
    g.error_code = code(d.error);
    g.group_id = id;
    g.group_state = d.state;
    g.protocol_type = d.protocol_type;
    g.protocol_data = d.protocol_data;
    g.authorized_operations = INT32_MIN;
    for (auto& m : d.members) {
      auto& rm = g.members.emplace_back();
      rm.member_id = m.member_id;
      rm.group_instance_id = m.instance_id;
      rm.client_id = m.client_id;
      rm.client_host = m.client_host;
      rm.member_metadata = std::move(m.metadata);
      rm.member_assignment = std::move(m.assignment);
    }
  }
  resp.encode(out.body, ctx.api_version);
  co_return true;
}

task<bool> handle_list_groups(broker& b, request_context& ctx, reader& r, response& out) {
  msg::list_groups_request req;
  if (!req.decode(r, ctx.api_version)) co_return false;
  msg::list_groups_response resp;
  // Every shard coordinates some groups: ask them all.
  // v5 type filter: every group here is a classic group.
  const bool classic_wanted =
      req.types_filter.empty() || std::any_of(req.types_filter.begin(), req.types_filter.end(), [](std::string t) {
        for (char& c : t) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        return t == "classic";
      });
  for (uint32_t s = 0; s < sdk::shard_count() && classic_wanted; ++s) {
    std::vector<std::tuple<std::string, std::string, std::string>> groups;
    bool loaded = true;
    (void)co_await b.invoker.run_on(s, [&]() -> task<void> {
      loaded = b.shards.local().groups.loaded();
      groups = b.shards.local().groups.list(req.states_filter);
      co_return;
    });
    if (!loaded) resp.error_code = code(error_code::coordinator_load_in_progress);
    for (auto& [id, type, state] : groups) {
      auto& g = resp.groups.emplace_back();
      g.group_id = id;
      g.protocol_type = type;
      g.group_state = state;
      g.group_type = "classic";
    }
  }
  encode_answer(resp, ctx.api_version, out);
  co_return true;
}

task<bool> handle_delete_groups(broker& b, request_context& ctx, reader& r, response& out) {
  msg::delete_groups_request req;
  if (!req.decode(r, ctx.api_version)) co_return false;
  msg::delete_groups_response resp;
  for (const auto& id : req.groups_names) {
    error_code e = error_code::none;
    co_await b.on_group(id, [&](group_coordinator& gc) -> task<void> { e = co_await gc.remove_group(id); });
    auto& res = resp.results.emplace_back();
    res.group_id = id;
    res.error_code = code(e);
    out.errors += e != error_code::none;
  }
  resp.encode(out.body, ctx.api_version);
  co_return true;
}

task<bool> handle_offset_delete(broker& b, request_context& ctx, reader& r, response& out) {
  msg::offset_delete_request req;
  if (!req.decode(r, ctx.api_version)) co_return false;
  msg::offset_delete_response resp;
  std::vector<offset_key> partitions;
  for (const auto& t : req.topics)
    for (const auto& p : t.partitions) partitions.emplace_back(t.name, p.partition_index);
  std::map<offset_key, error_code> results;
  error_code group_error = error_code::none;
  co_await b.on_group(req.group_id, [&](group_coordinator& gc) -> task<void> {
    results = co_await gc.delete_offsets(req.group_id, partitions, group_error);
  });
  resp.error_code = code(group_error);
  if (group_error == error_code::none) {
    image_ptr img = b.image();
    for (const auto& t : req.topics) {
      auto& rt = resp.topics.emplace_back();
      rt.name = t.name;
      const topic_info* ti = img->find(t.name);
      for (const auto& p : t.partitions) {
        auto& rp = rt.partitions.emplace_back();
        rp.partition_index = p.partition_index;
        rp.error_code = !ti || p.partition_index >= ti->partitions ? code(error_code::unknown_topic_or_partition)
                                                                   : code(results[{t.name, p.partition_index}]);
      }
    }
  }
  encode_answer(resp, ctx.api_version, out);
  co_return true;
}

}  // namespace sluice::kafka
