// sluice topic create|list|describe|delete|alter-config|add-partitions|trim

#include <algorithm>
#include <ostream>

#include "cli_error.h"
#include "command.h"
#include "command_util.h"
#include "kafka_client.h"
#include "kafka_wire.h"
#include "output.h"
#include "table.h"

namespace sluice::cli {

namespace {

struct topic_outcome {
  std::string name;
  rd_kafka_resp_err_t error = RD_KAFKA_RESP_ERR_NO_ERROR;
  std::string message;
};

std::vector<topic_outcome> outcomes_of(const rd_kafka_topic_result_t** results, size_t count) {
  std::vector<topic_outcome> out;
  for (size_t i = 0; i < count; ++i) {
    const char* message = rd_kafka_topic_result_error_string(results[i]);
    out.push_back({rd_kafka_topic_result_name(results[i]), rd_kafka_topic_result_error(results[i]),
                   message ? message : ""});
  }
  return out;
}

// Prints each topic's outcome (JSON array or "VERB topic NAME" lines); errors
// go to stderr. Returns 0, or the exit code of the worst failure: any failure
// other than "not found" makes it 1.
int report_outcomes(context& ctx, const std::vector<topic_outcome>& outcomes, const std::string& done_verb,
                    const std::string& failed_what) {
  nlohmann::json j = nlohmann::json::array();
  int rc = 0;
  for (const auto& o : outcomes) {
    nlohmann::json item = {{"name", o.name}, {"error", nullptr}, {"message", nullptr}};
    if (o.error == RD_KAFKA_RESP_ERR_NO_ERROR) {
      if (!ctx.conf.json) {
        ctx.out << done_verb << " topic " << o.name << "\n";
      }
    } else {
      item["error"] = kafka_error_name(o.error);
      item["message"] = o.message;
      rc = report_item_failure(ctx, rc, o.error, "cannot " + failed_what + " topic '" + o.name + "'", o.message);
    }
    j.push_back(item);
  }
  if (ctx.conf.json) {
    print_json(ctx.out, j);
  }
  return rc;
}

int topic_create(context& ctx) {
  const auto& names = ctx.args.positionals();
  const int partitions = static_cast<int>(ctx.args.int_value("partitions", -1, 1, 1'000'000));
  const int replicas = static_cast<int>(ctx.args.int_value("replicas", -1, 1, 32767));
  std::vector<std::pair<std::string, std::string>> configs;
  for (const auto& c : ctx.args.values("config")) {
    configs.push_back(parse_key_value(c, "-c/--config"));
  }
  check_brokers_reachable(ctx.conf);
  kafka_client client(ctx.conf, RD_KAFKA_PRODUCER);

  std::vector<rd_ptr<rd_kafka_NewTopic_t, rd_kafka_NewTopic_destroy>> topics;
  char errstr[512];
  for (const auto& name : names) {
    topics.emplace_back(rd_kafka_NewTopic_new(name.c_str(), partitions, replicas, errstr, sizeof errstr));
    if (topics.back() == nullptr) {
      throw_usage("cannot create topic '" + name + "': " + errstr);
    }
    for (const auto& [key, value] : configs) {
      rd_kafka_NewTopic_set_config(topics.back().get(), key.c_str(), value.c_str());
    }
  }
  auto raw = raw_pointers(topics);
  event_ptr ev = client.run_admin(
      RD_KAFKA_ADMIN_OP_CREATETOPICS, "cannot create topics",
      [&](rd_kafka_AdminOptions_t* options, rd_kafka_queue_t* queue) {
        rd_kafka_CreateTopics(client.handle(), raw.data(), raw.size(), options, queue);
      },
      ctx.args.has("dry-run"));
  size_t count = 0;
  const auto** results = rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev.get()), &count);
  return report_outcomes(ctx, outcomes_of(results, count), ctx.args.has("dry-run") ? "would create" : "created",
                         "create");
}

int topic_list(context& ctx) {
  check_brokers_reachable(ctx.conf);
  kafka_client client(ctx.conf, RD_KAFKA_PRODUCER);
  const cluster_metadata md = client.metadata();
  const bool internal = ctx.args.has("internal");
  nlohmann::json j = nlohmann::json::array();
  table t({"NAME", "PARTITIONS", "REPLICAS"});
  for (const auto& topic : md.topics) {
    if (topic.internal && !internal) {
      continue;
    }
    j.push_back({{"name", topic.name},
                 {"partition_count", topic.partitions.size()},
                 {"replication_factor", topic.replication_factor()},
                 {"internal", topic.internal}});
    t.add_row({topic.name, std::to_string(topic.partitions.size()), std::to_string(topic.replication_factor())});
  }
  if (ctx.conf.json) {
    print_json(ctx.out, j);
  } else {
    ctx.out << t.render();
  }
  return 0;
}

std::string config_source_name(rd_kafka_ConfigSource_t source) {
  switch (source) {
    case RD_KAFKA_CONFIG_SOURCE_DYNAMIC_TOPIC_CONFIG:
      return "topic";
    case RD_KAFKA_CONFIG_SOURCE_DYNAMIC_BROKER_CONFIG:
    case RD_KAFKA_CONFIG_SOURCE_DYNAMIC_DEFAULT_BROKER_CONFIG:
      return "cluster";
    case RD_KAFKA_CONFIG_SOURCE_STATIC_BROKER_CONFIG:
      return "broker";
    case RD_KAFKA_CONFIG_SOURCE_DEFAULT_CONFIG:
      return "default";
    default:
      return "unknown";
  }
}

nlohmann::json describe_configs(kafka_client& client, const std::string& topic) {
  rd_ptr<rd_kafka_ConfigResource_t, rd_kafka_ConfigResource_destroy> resource(
      rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic.c_str()));
  rd_kafka_ConfigResource_t* raw = resource.get();
  event_ptr ev =
      client.run_admin(RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS, "cannot describe the configs of topic '" + topic + "'",
                       [&](rd_kafka_AdminOptions_t* options, rd_kafka_queue_t* queue) {
                         rd_kafka_DescribeConfigs(client.handle(), &raw, 1, options, queue);
                       });
  size_t count = 0;
  const auto** resources =
      rd_kafka_DescribeConfigs_result_resources(rd_kafka_event_DescribeConfigs_result(ev.get()), &count);
  nlohmann::json configs = nlohmann::json::array();
  for (size_t i = 0; i < count; ++i) {
    if (rd_kafka_resp_err_t err = rd_kafka_ConfigResource_error(resources[i]); err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      const char* message = rd_kafka_ConfigResource_error_string(resources[i]);
      throw_kafka(err, "cannot describe the configs of topic '" + topic + "'", message ? message : "");
    }
    size_t n = 0;
    const auto** entries = rd_kafka_ConfigResource_configs(resources[i], &n);
    for (size_t e = 0; e < n; ++e) {
      const char* value = rd_kafka_ConfigEntry_value(entries[e]);
      configs.push_back({{"name", rd_kafka_ConfigEntry_name(entries[e])},
                         {"value", value ? nlohmann::json(value) : nlohmann::json(nullptr)},
                         {"source", config_source_name(rd_kafka_ConfigEntry_source(entries[e]))}});
    }
  }
  std::sort(configs.begin(), configs.end(),
            [](const nlohmann::json& a, const nlohmann::json& b) { return a["name"] < b["name"]; });
  return configs;
}

int topic_describe(context& ctx) {
  const std::string& name = ctx.args.positionals()[0];
  check_brokers_reachable(ctx.conf);
  kafka_client client(ctx.conf, RD_KAFKA_PRODUCER);
  const cluster_metadata md = client.metadata();
  const topic_info& topic = md.require_topic(name);
  const auto marks = client.query_watermarks(partitions_of(topic, topic.partition_ids()));
  const nlohmann::json configs = describe_configs(client, name);

  nlohmann::json partitions = nlohmann::json::array();
  table pt({"PARTITION", "LEADER", "REPLICAS", "ISR", "LOG-START-OFFSET", "HIGH-WATERMARK"});
  for (const auto& p : topic.partitions) {
    const watermarks& w = marks.at({topic.name, p.id});
    partitions.push_back({{"partition", p.id},
                          {"leader", p.leader},
                          {"replicas", p.replicas},
                          {"isr", p.isr},
                          {"log_start_offset", w.log_start},
                          {"high_watermark", w.high},
                          {"error", p.error ? nlohmann::json(kafka_error_name(p.error)) : nlohmann::json(nullptr)}});
    pt.add_row({std::to_string(p.id), std::to_string(p.leader), join_ints(p.replicas), join_ints(p.isr),
                std::to_string(w.log_start), std::to_string(w.high)});
  }
  if (ctx.conf.json) {
    print_json(ctx.out, {{"name", topic.name},
                         {"internal", topic.internal},
                         {"partition_count", topic.partitions.size()},
                         {"replication_factor", topic.replication_factor()},
                         {"partitions", partitions},
                         {"configs", configs}});
    return 0;
  }
  ctx.out << render_fields({{"NAME", topic.name},
                            {"INTERNAL", topic.internal ? "true" : "false"},
                            {"PARTITIONS", std::to_string(topic.partitions.size())},
                            {"REPLICAS", std::to_string(topic.replication_factor())}});
  ctx.out << "\n" << pt.render();
  table ct({"CONFIG", "VALUE", "SOURCE"});
  for (const auto& c : configs) {
    ct.add_row({c["name"].get<std::string>(), c["value"].is_null() ? "-" : c["value"].get<std::string>(),
                c["source"].get<std::string>()});
  }
  ctx.out << "\n" << ct.render();
  return 0;
}

int topic_delete(context& ctx) {
  const auto& names = ctx.args.positionals();
  check_brokers_reachable(ctx.conf);
  kafka_client client(ctx.conf, RD_KAFKA_PRODUCER);
  std::vector<rd_ptr<rd_kafka_DeleteTopic_t, rd_kafka_DeleteTopic_destroy>> topics;
  for (const auto& name : names) {
    topics.emplace_back(rd_kafka_DeleteTopic_new(name.c_str()));
  }
  auto raw = raw_pointers(topics);
  event_ptr ev = client.run_admin(RD_KAFKA_ADMIN_OP_DELETETOPICS, "cannot delete topics",
                                  [&](rd_kafka_AdminOptions_t* options, rd_kafka_queue_t* queue) {
                                    rd_kafka_DeleteTopics(client.handle(), raw.data(), raw.size(), options, queue);
                                  });
  size_t count = 0;
  const auto** results = rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(ev.get()), &count);
  return report_outcomes(ctx, outcomes_of(results, count), "deleted", "delete");
}

int topic_alter_config(context& ctx) {
  const std::string& name = ctx.args.positionals()[0];
  std::vector<config_change> changes;
  nlohmann::json set = nlohmann::json::object();
  nlohmann::json removed = nlohmann::json::array();
  for (const auto& s : ctx.args.values("set")) {
    auto [key, value] = parse_key_value(s, "--set");
    set[key] = value;
    changes.push_back({key, config_operation::set, value});
  }
  for (const auto& key : ctx.args.values("delete")) {
    if (key.empty() || key.find('=') != std::string::npos) {
      throw_usage("bad value '" + key + "' for --delete: want a config name (retention.ms)");
    }
    removed.push_back(key);
    changes.push_back({key, config_operation::remove, std::nullopt});
  }
  if (changes.empty()) {
    throw_usage("'sluice topic alter-config' needs at least one --set KEY=VALUE or --delete KEY");
  }
  check_brokers_reachable(ctx.conf);
  {
    kafka_client client(ctx.conf, RD_KAFKA_PRODUCER);
    client.metadata().require_topic(name);
  }
  const bool dry_run = ctx.args.has("dry-run");
  for (const auto& r : incremental_alter_configs(ctx.conf, name, changes, dry_run)) {
    if (r.error_code != 0) {
      throw_kafka(static_cast<rd_kafka_resp_err_t>(r.error_code), "cannot alter the configs of topic '" + name + "'",
                  r.error_message.value_or(""));
    }
  }
  if (ctx.conf.json) {
    print_json(ctx.out, {{"name", name}, {"set", set}, {"deleted", removed}, {"dry_run", dry_run}});
    return 0;
  }
  const std::string prefix = dry_run ? "would " : "";
  for (const auto& [key, value] : set.items()) {
    ctx.out << prefix << "set " << name << " " << key << "=" << value.get<std::string>() << "\n";
  }
  for (const auto& key : removed) {
    ctx.out << (dry_run ? "would delete " : "deleted ") << name << " " << key.get<std::string>()
            << " (back to the default)\n";
  }
  return 0;
}

int topic_add_partitions(context& ctx) {
  const std::string& name = ctx.args.positionals()[0];
  if (!ctx.args.has("total")) {
    throw_usage("'sluice topic add-partitions' needs --total N (the new partition count)");
  }
  const auto total = static_cast<size_t>(ctx.args.int_value("total", 0, 1, 1'000'000));
  check_brokers_reachable(ctx.conf);
  kafka_client client(ctx.conf, RD_KAFKA_PRODUCER);
  char errstr[512];
  rd_ptr<rd_kafka_NewPartitions_t, rd_kafka_NewPartitions_destroy> parts(
      rd_kafka_NewPartitions_new(name.c_str(), total, errstr, sizeof errstr));
  if (parts == nullptr) {
    throw_usage("cannot add partitions to topic '" + name + "': " + errstr);
  }
  rd_kafka_NewPartitions_t* raw = parts.get();
  event_ptr ev = client.run_admin(
      RD_KAFKA_ADMIN_OP_CREATEPARTITIONS, "cannot add partitions to topic '" + name + "'",
      [&](rd_kafka_AdminOptions_t* options, rd_kafka_queue_t* queue) {
        rd_kafka_CreatePartitions(client.handle(), &raw, 1, options, queue);
      },
      ctx.args.has("dry-run"));
  size_t count = 0;
  const auto** results =
      rd_kafka_CreatePartitions_result_topics(rd_kafka_event_CreatePartitions_result(ev.get()), &count);
  const std::string verb = (ctx.args.has("dry-run") ? "would grow" : "grew");
  return report_outcomes(ctx, outcomes_of(results, count), verb + " to " + std::to_string(total) + " partitions:",
                         "add partitions to");
}

int topic_trim(context& ctx) {
  const std::string& name = ctx.args.positionals()[0];
  const auto partition_text = ctx.args.value("partition");
  const auto offset_text = ctx.args.value("offset");
  if (!partition_text || !offset_text) {
    throw_usage("'sluice topic trim' needs -p PARTITION|all and --offset OFFSET");
  }
  const int64_t offset = *offset_text == "end" ? -1 : parse_int(*offset_text, "--offset", -1, INT64_MAX);
  check_brokers_reachable(ctx.conf);
  kafka_client client(ctx.conf, RD_KAFKA_PRODUCER);
  const cluster_metadata md = client.metadata();
  const topic_info& topic = md.require_topic(name);
  const auto ids = select_partitions(*partition_text, topic, "-p");
  partition_list_ptr list = make_partition_list(partitions_of(topic, ids), offset);
  rd_ptr<rd_kafka_DeleteRecords_t, rd_kafka_DeleteRecords_destroy> del(rd_kafka_DeleteRecords_new(list.get()));
  rd_kafka_DeleteRecords_t* raw = del.get();
  event_ptr ev = client.run_admin(RD_KAFKA_ADMIN_OP_DELETERECORDS, "cannot trim topic '" + name + "'",
                                  [&](rd_kafka_AdminOptions_t* options, rd_kafka_queue_t* queue) {
                                    rd_kafka_DeleteRecords(client.handle(), &raw, 1, options, queue);
                                  });
  const rd_kafka_topic_partition_list_t* result =
      rd_kafka_DeleteRecords_result_offsets(rd_kafka_event_DeleteRecords_result(ev.get()));
  nlohmann::json j = nlohmann::json::array();
  table t({"PARTITION", "LOG-START-OFFSET"});
  for (int i = 0; i < result->cnt; ++i) {
    const rd_kafka_topic_partition_t& p = result->elems[i];
    if (p.err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      throw_kafka(p.err, "cannot trim partition " + std::to_string(p.partition) + " of topic '" + name + "'");
    }
    j.push_back({{"partition", p.partition}, {"log_start_offset", p.offset}});
    t.add_row({std::to_string(p.partition), std::to_string(p.offset)});
  }
  if (ctx.conf.json) {
    print_json(ctx.out, {{"name", name}, {"partitions", j}});
  } else {
    ctx.out << t.render();
  }
  return 0;
}

}  // namespace

void add_topic_commands(command_table& t) {
  t.groups.push_back({{"topic"}, "Create, list, describe, alter and delete topics (Kafka API)."});
  t.commands.push_back({
      {"topic", "create"},
      "Create topics.",
      "NAME... [flags]",
      "Creates each topic with CreateTopics. Without -p/-r the broker's num_partitions and\n"
      "default_replication_factor apply. A topic that exists already is an error (exit 1,\n"
      "TOPIC_ALREADY_EXISTS).",
      {{"partitions", 'p', "N", "number of partitions (default: the broker's num_partitions)"},
       {"replicas", 'r', "N", "replication factor (default: the broker's default_replication_factor)"},
       {"config", 'c', "KEY=VALUE", "a topic config, e.g. -c retention.ms=86400000 (repeatable)", true},
       dry_run_option()},
      {"sluice topic create orders -p 6", "sluice topic create audit -c cleanup.policy=delete -c retention.ms=-1",
       "sluice topic create a b c --json"},
      1,
      SIZE_MAX,
      topic_create,
  });
  t.commands.push_back({
      {"topic", "list"},
      "List topics.",
      "[flags]",
      "Lists the topics in the cluster's metadata with their partition count and replication factor.",
      {{"internal", 'i', "", "include internal topics (__consumer_offsets)"}},
      {"sluice topic list", "sluice topic list --json | jq -r '.[].name'"},
      0,
      0,
      topic_list,
  });
  t.commands.push_back({
      {"topic", "describe"},
      "Show a topic's partitions, offsets and configs.",
      "NAME [flags]",
      "Prints each partition's leader, replicas, ISR, log start offset and high watermark, and\n"
      "every topic config with its source (topic, cluster, broker or default). Exit 4 when the\n"
      "topic does not exist.",
      {},
      {"sluice topic describe orders", "sluice topic describe orders --json"},
      1,
      1,
      topic_describe,
  });
  t.commands.push_back({
      {"topic", "delete"},
      "Delete topics.",
      "NAME... [flags]",
      "Deletes each topic with DeleteTopics. An unknown topic is exit 4; other failures exit 1.",
      {},
      {"sluice topic delete orders", "sluice topic delete a b c"},
      1,
      SIZE_MAX,
      topic_delete,
  });
  t.commands.push_back({
      {"topic", "alter-config"},
      "Set or delete topic configs (IncrementalAlterConfigs).",
      "NAME --set KEY=VALUE... --delete KEY... [flags]",
      "Changes only the configs named: --set overrides a config on the topic, --delete removes the\n"
      "override so the cluster or default value applies again. Bad names and values are\n"
      "INVALID_CONFIG (exit 1).",
      {{"set", 0, "KEY=VALUE", "set a config on the topic (repeatable)", true},
       {"delete", 0, "KEY", "remove a config override (repeatable)", true},
       dry_run_option()},
      {"sluice topic alter-config orders --set retention.ms=3600000",
       "sluice topic alter-config orders --delete retention.ms --set cleanup.policy=delete"},
      1,
      1,
      topic_alter_config,
  });
  t.commands.push_back({
      {"topic", "add-partitions"},
      "Grow a topic to a new partition count (CreatePartitions).",
      "NAME --total N [flags]",
      "Sets the topic's partition count to N, which must be larger than the current one\n"
      "(INVALID_PARTITIONS otherwise, exit 1). Existing records stay where they are.",
      {{"total", 0, "N", "the new total number of partitions"}, dry_run_option()},
      {"sluice topic add-partitions orders --total 12"},
      1,
      1,
      topic_add_partitions,
  });
  t.commands.push_back({
      {"topic", "trim"},
      "Delete records before an offset (DeleteRecords).",
      "NAME -p PARTITION|all --offset OFFSET [flags]",
      "Moves the log start offset of the partitions to OFFSET: records before it can no longer be\n"
      "read. --offset end (or -1) trims up to the high watermark. Prints each partition's new log\n"
      "start offset.",
      {{"partition", 'p', "P", "a partition, a list (0,2) or all"},
       {"offset", 0, "OFFSET", "the new log start offset; end or -1 for the high watermark"}},
      {"sluice topic trim orders -p 0 --offset 1000", "sluice topic trim orders -p all --offset end"},
      1,
      1,
      topic_trim,
  });
}

}  // namespace sluice::cli
