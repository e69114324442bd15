// sluice group list|describe|delete|seek

#include <algorithm>
#include <ostream>
#include <set>

#include "cli_error.h"
#include "command.h"
#include "command_util.h"
#include "kafka_client.h"
#include "output.h"
#include "table.h"

namespace sluice::cli {

namespace {

struct member_description {
  std::string member_id;
  std::optional<std::string> instance_id;
  std::string client_id;
  std::string host;
  std::vector<topic_partition> assignments;
};

struct group_description {
  std::string group_id;
  rd_kafka_consumer_group_state_t state = RD_KAFKA_CONSUMER_GROUP_STATE_UNKNOWN;
  bool simple = false;
  std::string protocol;
  int32_t coordinator = -1;
  std::vector<member_description> members;
  bool exists() const { return state != RD_KAFKA_CONSUMER_GROUP_STATE_DEAD; }
};

struct committed_offset {
  int64_t offset = -1;
  std::optional<std::string> metadata;
};

// Kafka's state names (librdkafka's match them).
std::string state_name(rd_kafka_consumer_group_state_t state) { return rd_kafka_consumer_group_state_name(state); }

[[noreturn]] void throw_error(const rd_kafka_error_t* e, const std::string& what) {
  throw_kafka(rd_kafka_error_code(e), what, rd_kafka_error_string(e));
}

group_description describe_group(kafka_client& client, const std::string& group) {
  const char* groups[] = {group.c_str()};
  event_ptr ev = client.run_admin(RD_KAFKA_ADMIN_OP_DESCRIBECONSUMERGROUPS, "cannot describe group '" + group + "'",
                                  [&](rd_kafka_AdminOptions_t* options, rd_kafka_queue_t* queue) {
                                    rd_kafka_DescribeConsumerGroups(client.handle(), groups, 1, options, queue);
                                  });
  size_t count = 0;
  const auto** descs =
      rd_kafka_DescribeConsumerGroups_result_groups(rd_kafka_event_DescribeConsumerGroups_result(ev.get()), &count);
  if (count != 1) {
    throw_failed("cannot describe group '" + group + "': the broker answered for " + std::to_string(count) +
                 " groups");
  }
  const rd_kafka_ConsumerGroupDescription_t* d = descs[0];
  group_description result;
  result.group_id = group;
  if (const rd_kafka_error_t* e = rd_kafka_ConsumerGroupDescription_error(d)) {
    if (rd_kafka_error_code(e) == RD_KAFKA_RESP_ERR_GROUP_ID_NOT_FOUND) {
      result.state = RD_KAFKA_CONSUMER_GROUP_STATE_DEAD;
      return result;
    }
    throw_error(e, "cannot describe group '" + group + "'");
  }
  result.state = rd_kafka_ConsumerGroupDescription_state(d);
  result.simple = rd_kafka_ConsumerGroupDescription_is_simple_consumer_group(d) != 0;
  const char* assignor = rd_kafka_ConsumerGroupDescription_partition_assignor(d);
  result.protocol = assignor ? assignor : "";
  if (const rd_kafka_Node_t* node = rd_kafka_ConsumerGroupDescription_coordinator(d)) {
    result.coordinator = rd_kafka_Node_id(node);
  }
  for (size_t i = 0; i < rd_kafka_ConsumerGroupDescription_member_count(d); ++i) {
    const rd_kafka_MemberDescription_t* m = rd_kafka_ConsumerGroupDescription_member(d, i);
    member_description md;
    md.member_id = rd_kafka_MemberDescription_consumer_id(m);
    if (const char* instance = rd_kafka_MemberDescription_group_instance_id(m)) {
      md.instance_id = instance;
    }
    md.client_id = rd_kafka_MemberDescription_client_id(m);
    md.host = rd_kafka_MemberDescription_host(m);
    if (const rd_kafka_MemberAssignment_t* a = rd_kafka_MemberDescription_assignment(m)) {
      if (const rd_kafka_topic_partition_list_t* parts = rd_kafka_MemberAssignment_partitions(a)) {
        for (int p = 0; p < parts->cnt; ++p) {
          md.assignments.push_back({parts->elems[p].topic, parts->elems[p].partition});
        }
      }
    }
    result.members.push_back(std::move(md));
  }
  return result;
}

std::map<topic_partition, committed_offset> list_committed(kafka_client& client, const std::string& group) {
  rd_ptr<rd_kafka_ListConsumerGroupOffsets_t, rd_kafka_ListConsumerGroupOffsets_destroy> request(
      rd_kafka_ListConsumerGroupOffsets_new(group.c_str(), nullptr));
  rd_kafka_ListConsumerGroupOffsets_t* raw = request.get();
  event_ptr ev = client.run_admin(RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPOFFSETS,
                                  "cannot list the committed offsets of group '" + group + "'",
                                  [&](rd_kafka_AdminOptions_t* options, rd_kafka_queue_t* queue) {
                                    rd_kafka_ListConsumerGroupOffsets(client.handle(), &raw, 1, options, queue);
                                  });
  size_t count = 0;
  const auto** results = rd_kafka_ListConsumerGroupOffsets_result_groups(
      rd_kafka_event_ListConsumerGroupOffsets_result(ev.get()), &count);
  std::map<topic_partition, committed_offset> out;
  for (size_t i = 0; i < count; ++i) {
    if (const rd_kafka_error_t* e = rd_kafka_group_result_error(results[i])) {
      if (rd_kafka_error_code(e) == RD_KAFKA_RESP_ERR_GROUP_ID_NOT_FOUND) {
        return out;
      }
      throw_error(e, "cannot list the committed offsets of group '" + group + "'");
    }
    const rd_kafka_topic_partition_list_t* parts = rd_kafka_group_result_partitions(results[i]);
    for (int p = 0; parts != nullptr && p < parts->cnt; ++p) {
      const rd_kafka_topic_partition_t& tp = parts->elems[p];
      if (tp.err != RD_KAFKA_RESP_ERR_NO_ERROR || tp.offset < 0) {
        continue;
      }
      committed_offset c{tp.offset, std::nullopt};
      if (tp.metadata != nullptr) {
        c.metadata = std::string(static_cast<const char*>(tp.metadata), tp.metadata_size);
      }
      out[{tp.topic, tp.partition}] = std::move(c);
    }
  }
  return out;
}

int group_list(context& ctx) {
  check_brokers_reachable(ctx.conf);
  kafka_client client(ctx.conf, RD_KAFKA_PRODUCER);
  event_ptr ev = client.run_admin(RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPS, "cannot list groups",
                                  [&](rd_kafka_AdminOptions_t* options, rd_kafka_queue_t* queue) {
                                    rd_kafka_ListConsumerGroups(client.handle(), options, queue);
                                  });
  const rd_kafka_ListConsumerGroups_result_t* result = rd_kafka_event_ListConsumerGroups_result(ev.get());
  size_t error_count = 0;
  const rd_kafka_error_t** errors = rd_kafka_ListConsumerGroups_result_errors(result, &error_count);
  if (error_count > 0) {
    if (exit_code_for(rd_kafka_error_code(errors[0])) == exit_code::unreachable) {
      client.throw_timeout("cannot list groups");
    }
    throw_error(errors[0], "cannot list groups");
  }
  size_t count = 0;
  const auto** listings = rd_kafka_ListConsumerGroups_result_valid(result, &count);
  std::vector<const rd_kafka_ConsumerGroupListing_t*> sorted(listings, listings + count);
  std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) {
    return std::string_view(rd_kafka_ConsumerGroupListing_group_id(a)) <
           std::string_view(rd_kafka_ConsumerGroupListing_group_id(b));
  });
  nlohmann::json j = nlohmann::json::array();
  table t({"GROUP", "STATE"});
  for (const auto* g : sorted) {
    const std::string state = state_name(rd_kafka_ConsumerGroupListing_state(g));
    const std::string id = rd_kafka_ConsumerGroupListing_group_id(g);
    j.push_back({{"group_id", id},
                 {"state", state},
                 {"simple", rd_kafka_ConsumerGroupListing_is_simple_consumer_group(g) != 0}});
    t.add_row({id, state});
  }
  if (ctx.conf.json) {
    print_json(ctx.out, j);
  } else {
    ctx.out << t.render();
  }
  return 0;
}

int group_describe(context& ctx) {
  const std::string& group = ctx.args.positionals()[0];
  check_brokers_reachable(ctx.conf);
  kafka_client client(ctx.conf, RD_KAFKA_PRODUCER);
  const group_description desc = describe_group(client, group);
  const auto committed = list_committed(client, group);
  if (!desc.exists() && committed.empty()) {
    throw_not_found("group '" + group + "' does not exist");
  }
  // Every partition with a committed offset or an owner.
  std::map<topic_partition, const member_description*> owners;
  for (const auto& m : desc.members) {
    for (const auto& tp : m.assignments) {
      owners[tp] = &m;
    }
  }
  std::set<topic_partition> all;
  for (const auto& [tp, c] : committed) {
    all.insert(tp);
  }
  for (const auto& [tp, m] : owners) {
    all.insert(tp);
  }
  const cluster_metadata md = client.metadata();
  std::vector<topic_partition> known;  // partitions of topics that still exist
  for (const auto& tp : all) {
    const topic_info* t = md.find_topic(tp.topic);
    if (t != nullptr && tp.partition < static_cast<int32_t>(t->partitions.size())) {
      known.push_back(tp);
    }
  }
  const auto marks = client.query_watermarks(known);

  nlohmann::json offsets = nlohmann::json::array();
  int64_t total_lag = 0;
  table ot({"TOPIC", "PARTITION", "COMMITTED-OFFSET", "HIGH-WATERMARK", "LAG", "MEMBER-ID", "CLIENT-ID", "HOST"});
  for (const auto& tp : all) {
    auto c = committed.find(tp);
    auto w = marks.find(tp);
    auto owner = owners.find(tp);
    nlohmann::json item = {{"topic", tp.topic},
                           {"partition", tp.partition},
                           {"committed_offset", nullptr},
                           {"metadata", nullptr},
                           {"high_watermark", nullptr},
                           {"lag", nullptr},
                           {"member_id", nullptr}};
    std::string committed_text = "-", hw_text = "-", lag_text = "-";
    if (c != committed.end()) {
      item["committed_offset"] = c->second.offset;
      item["metadata"] = c->second.metadata ? nlohmann::json(*c->second.metadata) : nlohmann::json(nullptr);
      committed_text = std::to_string(c->second.offset);
    }
    if (w != marks.end()) {
      item["high_watermark"] = w->second.high;
      hw_text = std::to_string(w->second.high);
      if (c != committed.end()) {
        const int64_t lag = std::max<int64_t>(0, w->second.high - c->second.offset);
        item["lag"] = lag;
        lag_text = std::to_string(lag);
        total_lag += lag;
      }
    }
    std::vector<std::string> row = {tp.topic, std::to_string(tp.partition), committed_text, hw_text, lag_text};
    if (owner != owners.end()) {
      item["member_id"] = owner->second->member_id;
      row.insert(row.end(), {owner->second->member_id, owner->second->client_id, owner->second->host});
    }
    offsets.push_back(item);
    ot.add_row(row);
  }
  if (ctx.conf.json) {
    nlohmann::json members = nlohmann::json::array();
    for (const auto& m : desc.members) {
      nlohmann::json assignments = nlohmann::json::array();
      for (const auto& tp : m.assignments) {
        assignments.push_back({{"topic", tp.topic}, {"partition", tp.partition}});
      }
      members.push_back({{"member_id", m.member_id},
                         {"instance_id", m.instance_id ? nlohmann::json(*m.instance_id) : nlohmann::json(nullptr)},
                         {"client_id", m.client_id},
                         {"client_host", m.host},
                         {"assignments", assignments}});
    }
    print_json(ctx.out, {{"group_id", group},
                         {"state", desc.exists() ? state_name(desc.state) : "Empty"},
                         {"protocol_type", desc.simple ? "" : "consumer"},
                         {"protocol", desc.protocol},
                         {"coordinator", desc.coordinator},
                         {"members", members},
                         {"offsets", offsets},
                         {"total_lag", total_lag}});
    return 0;
  }
  ctx.out << render_fields({{"GROUP", group},
                            {"STATE", desc.exists() ? state_name(desc.state) : "Empty"},
                            {"PROTOCOL", desc.protocol.empty() ? "-" : desc.protocol},
                            {"COORDINATOR", std::to_string(desc.coordinator)},
                            {"MEMBERS", std::to_string(desc.members.size())},
                            {"TOTAL-LAG", std::to_string(total_lag)}});
  if (ot.size() > 0) {
    ctx.out << "\n" << ot.render();
  }
  return 0;
}

int group_delete(context& ctx) {
  check_brokers_reachable(ctx.conf);
  kafka_client client(ctx.conf, RD_KAFKA_PRODUCER);
  std::vector<rd_ptr<rd_kafka_DeleteGroup_t, rd_kafka_DeleteGroup_destroy>> groups;
  for (const auto& g : ctx.args.positionals()) {
    groups.emplace_back(rd_kafka_DeleteGroup_new(g.c_str()));
  }
  auto raw = raw_pointers(groups);
  event_ptr ev = client.run_admin(RD_KAFKA_ADMIN_OP_DELETEGROUPS, "cannot delete groups",
                                  [&](rd_kafka_AdminOptions_t* options, rd_kafka_queue_t* queue) {
                                    rd_kafka_DeleteGroups(client.handle(), raw.data(), raw.size(), options, queue);
                                  });
  size_t count = 0;
  const auto** results = rd_kafka_DeleteGroups_result_groups(rd_kafka_event_DeleteGroups_result(ev.get()), &count);
  nlohmann::json j = nlohmann::json::array();
  int rc = 0;
  for (size_t i = 0; i < count; ++i) {
    const std::string name = rd_kafka_group_result_name(results[i]);
    const rd_kafka_error_t* e = rd_kafka_group_result_error(results[i]);
    j.push_back({{"group_id", name},
                 {"error", e ? nlohmann::json(kafka_error_name(rd_kafka_error_code(e))) : nlohmann::json(nullptr)},
                 {"message", e ? nlohmann::json(rd_kafka_error_string(e)) : nlohmann::json(nullptr)}});
    if (e == nullptr) {
      if (!ctx.conf.json) {
        ctx.out << "deleted group " << name << "\n";
      }
      continue;
    }
    rc = report_item_failure(ctx, rc, rd_kafka_error_code(e), "cannot delete group '" + name + "'",
                             rd_kafka_error_string(e));
  }
  if (ctx.conf.json) {
    print_json(ctx.out, j);
  }
  return rc;
}

// --to earliest|latest|OFFSET|timestamp:MS for each partition.
std::map<topic_partition, int64_t> seek_targets(kafka_client& client, const std::vector<topic_partition>& tps,
                                                const std::string& to) {
  const auto marks = client.query_watermarks(tps);
  std::map<topic_partition, int64_t> out;
  if (to.starts_with("timestamp:")) {
    const int64_t ts = parse_int(std::string_view(to).substr(10), "--to timestamp:MS", 0, INT64_MAX);
    for (const auto& [tp, offset] : client.offsets_for_timestamp(tps, ts)) {
      out[tp] = offset < 0 ? marks.at(tp).high : offset;  // no record that late: the end
    }
    return out;
  }
  for (const auto& tp : tps) {
    const watermarks& w = marks.at(tp);
    if (to == "earliest") {
      out[tp] = w.log_start;
    } else if (to == "latest") {
      out[tp] = w.high;
    } else {
      const int64_t offset = parse_int(to, "--to (earliest, latest, OFFSET or timestamp:MS)", 0, INT64_MAX);
      out[tp] = std::clamp(offset, w.log_start, w.high);
    }
  }
  return out;
}

int group_seek(context& ctx) {
  const std::string& group = ctx.args.positionals()[0];
  const auto topic_name = ctx.args.value("topic");
  const auto to = ctx.args.value("to");
  if (!topic_name || !to) {
    throw_usage("'sluice group seek' needs --topic TOPIC and --to earliest|latest|OFFSET|timestamp:MS");
  }
  check_brokers_reachable(ctx.conf);
  kafka_client client(ctx.conf, RD_KAFKA_PRODUCER);
  const group_description desc = describe_group(client, group);
  if (!desc.members.empty()) {
    throw_failed("group '" + group + "' is " + state_name(desc.state) + " with " + std::to_string(desc.members.size()) +
                 " members: stop its consumers first (offsets can be changed only in an empty group)");
  }
  const cluster_metadata md = client.metadata();
  const topic_info& topic = md.require_topic(*topic_name);
  const auto ids =
      ctx.args.has("partition") ? select_partitions(*ctx.args.value("partition"), topic, "-p") : topic.partition_ids();
  const auto targets = seek_targets(client, partitions_of(topic, ids), *to);
  const bool dry_run = ctx.args.has("dry-run");

  if (!dry_run) {
    std::vector<topic_partition> tps;
    for (const auto& [tp, offset] : targets) {
      tps.push_back(tp);
    }
    partition_list_ptr list = make_partition_list(tps, 0);
    for (int i = 0; i < list->cnt; ++i) {
      list->elems[i].offset = targets.at({list->elems[i].topic, list->elems[i].partition});
    }
    rd_ptr<rd_kafka_AlterConsumerGroupOffsets_t, rd_kafka_AlterConsumerGroupOffsets_destroy> alter(
        rd_kafka_AlterConsumerGroupOffsets_new(group.c_str(), list.get()));
    rd_kafka_AlterConsumerGroupOffsets_t* raw = alter.get();
    event_ptr ev = client.run_admin(RD_KAFKA_ADMIN_OP_ALTERCONSUMERGROUPOFFSETS, "cannot seek group '" + group + "'",
                                    [&](rd_kafka_AdminOptions_t* options, rd_kafka_queue_t* queue) {
                                      rd_kafka_AlterConsumerGroupOffsets(client.handle(), &raw, 1, options, queue);
                                    });
    size_t count = 0;
    const auto** results = rd_kafka_AlterConsumerGroupOffsets_result_groups(
        rd_kafka_event_AlterConsumerGroupOffsets_result(ev.get()), &count);
    for (size_t i = 0; i < count; ++i) {
      if (const rd_kafka_error_t* e = rd_kafka_group_result_error(results[i])) {
        throw_error(e, "cannot seek group '" + group + "'");
      }
      const rd_kafka_topic_partition_list_t* parts = rd_kafka_group_result_partitions(results[i]);
      for (int p = 0; parts != nullptr && p < parts->cnt; ++p) {
        if (parts->elems[p].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
          throw_kafka(parts->elems[p].err, "cannot seek group '" + group + "' on " + parts->elems[p].topic + "/" +
                                               std::to_string(parts->elems[p].partition));
        }
      }
    }
  }
  nlohmann::json j = nlohmann::json::array();
  table t({"TOPIC", "PARTITION", "NEW-OFFSET"});
  for (const auto& [tp, offset] : targets) {
    j.push_back({{"topic", tp.topic}, {"partition", tp.partition}, {"offset", offset}});
    t.add_row({tp.topic, std::to_string(tp.partition), std::to_string(offset)});
  }
  if (ctx.conf.json) {
    print_json(ctx.out, {{"group_id", group}, {"dry_run", dry_run}, {"offsets", j}});
  } else {
    if (dry_run) {
      ctx.out << "dry run: group " << group << " would move to\n";
    }
    ctx.out << t.render();
  }
  return 0;
}

}  // namespace

void add_group_commands(command_table& t) {
  t.groups.push_back({{"group"}, "List, describe, delete and seek consumer groups (Kafka API)."});
  t.commands.push_back({
      {"group", "list"},
      "List consumer groups.",
      "[flags]",
      "Lists every group the coordinators know, with its state (Empty, Stable, ...).",
      {},
      {"sluice group list", "sluice group list --json"},
      0,
      0,
      group_list,
  });
  t.commands.push_back({
      {"group", "describe"},
      "Show a group's state, members, committed offsets and lag.",
      "GROUP [flags]",
      "For each partition with a committed offset or an owner: the committed offset, the high\n"
      "watermark (log end), the lag (high watermark - committed, never negative) and the member\n"
      "that owns it; the total lag. --json has the fields of the admin API's GET /v1/groups/{id}.\n"
      "Exit 4 when the group does not exist.",
      {},
      {"sluice group describe billing", "sluice group describe billing --json | jq .total_lag"},
      1,
      1,
      group_describe,
  });
  t.commands.push_back({
      {"group", "delete"},
      "Delete consumer groups and their committed offsets.",
      "GROUP... [flags]",
      "Deletes each group with DeleteGroups. Only groups without members can be deleted\n"
      "(NON_EMPTY_GROUP, exit 1); an unknown group is exit 4.",
      {},
      {"sluice group delete billing"},
      1,
      SIZE_MAX,
      group_delete,
  });
  t.commands.push_back({
      {"group", "seek"},
      "Move a group's committed offsets on a topic (AlterConsumerGroupOffsets).",
      "GROUP --topic TOPIC --to earliest|latest|OFFSET|timestamp:MS [flags]",
      "Commits new offsets for the group on every partition of the topic (or those given with\n"
      "-p): the log start offset (earliest), the high watermark (latest), OFFSET (clamped to each\n"
      "partition's log start and high watermark), or the first record at or after a timestamp.\n"
      "The group must have no members: stop its consumers first (exit 1 otherwise). A group\n"
      "that does not exist yet is created with these offsets.",
      {{"topic", 't', "TOPIC", "the topic whose offsets move"},
       {"to", 0, "TARGET", "earliest, latest, an OFFSET, or timestamp:MS"},
       {"partition", 'p', "P", "only these partitions: a number or a list (0,2)"},
       {"dry-run", 0, "", "print the new offsets without committing them"}},
      {"sluice group seek billing --topic orders --to earliest",
       "sluice group seek billing --topic orders --to timestamp:1700000000000 --dry-run",
       "sluice group seek billing --topic orders -p 0 --to 1200"},
      1,
      1,
      group_seek,
  });
}

}  // namespace sluice::cli
