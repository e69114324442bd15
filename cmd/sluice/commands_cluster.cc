// sluice cluster info|health|config get|config set, sluice broker list

#include <algorithm>
#include <ostream>

#include "admin_api.h"
#include "cli_error.h"
#include "command.h"
#include "command_util.h"
#include "kafka_client.h"
#include "output.h"
#include "table.h"

namespace sluice::cli {

namespace {

// A JSON value shown in a table: strings without quotes, null as "-".
std::string cell(const nlohmann::json& v) {
  if (v.is_null()) {
    return "-";
  }
  if (v.is_string()) {
    return v.get<std::string>();
  }
  if (v.is_boolean()) {
    return v.get<bool>() ? "true" : "false";
  }
  if (v.is_array() && std::all_of(v.begin(), v.end(), [](const nlohmann::json& e) { return e.is_primitive(); })) {
    std::string out;
    for (const auto& e : v) {
      out += (out.empty() ? "" : ",") + cell(e);
    }
    return out.empty() ? "-" : out;
  }
  return compact_json(v);
}

std::string field_cell(const nlohmann::json& obj, const char* key) {
  return obj.is_object() && obj.contains(key) ? cell(obj[key]) : "-";
}

std::string duration_text(int64_t ms) {
  int64_t s = ms / 1000;
  std::string out;
  if (s >= 86400) out += std::to_string(s / 86400) + "d";
  if (s >= 3600) out += std::to_string(s / 3600 % 24) + "h";
  if (s >= 60) out += std::to_string(s / 60 % 60) + "m";
  return out + std::to_string(s % 60) + "s";
}

int cluster_info(context& ctx) {
  check_brokers_reachable(ctx.conf);
  kafka_client client(ctx.conf, RD_KAFKA_PRODUCER);
  const cluster_metadata md = client.metadata();
  std::string cluster_id;
  if (char* id = rd_kafka_clusterid(client.handle(), ctx.conf.timeout_ms)) {
    cluster_id = id;
    rd_kafka_mem_free(client.handle(), id);
  }
  const int32_t controller = rd_kafka_controllerid(client.handle(), ctx.conf.timeout_ms);
  nlohmann::json brokers = nlohmann::json::array();
  table t({"ID", "HOST", "PORT", "CONTROLLER"});
  for (const auto& b : md.brokers) {
    brokers.push_back({{"node_id", b.id}, {"host", b.host}, {"port", b.port}});
    t.add_row({std::to_string(b.id), b.host, std::to_string(b.port), b.id == controller ? "*" : ""});
  }
  if (ctx.conf.json) {
    print_json(ctx.out, {{"cluster_id", cluster_id.empty() ? nlohmann::json(nullptr) : nlohmann::json(cluster_id)},
                         {"controller_id", controller},
                         {"brokers", brokers}});
    return 0;
  }
  ctx.out << render_fields({{"CLUSTER", cluster_id.empty() ? "-" : cluster_id},
                            {"CONTROLLER", controller < 0 ? "-" : std::to_string(controller)}});
  ctx.out << "\n" << t.render();
  return 0;
}

std::string partition_list_text(const nlohmann::json& list) {
  std::string out;
  if (!list.is_array()) {
    return "-";
  }
  for (const auto& p : list) {
    out += (out.empty() ? "" : " ") + field_cell(p, "topic") + "/" + field_cell(p, "partition");
  }
  return out.empty() ? "-" : out;
}

int cluster_health(context& ctx) {
  const nlohmann::json h = admin_api(ctx.conf).get("/v1/cluster/health");
  const bool healthy = h.is_object() && h.value("is_healthy", false);
  if (ctx.conf.json) {
    print_json(ctx.out, h);
  } else {
    ctx.out << render_fields({
        {"HEALTHY", healthy ? "yes" : "no"},
        {"CLUSTER", field_cell(h, "cluster_id")},
        {"CONTROLLER", field_cell(h, "controller_id")},
        {"NODES", field_cell(h, "all_nodes")},
        {"NODES-DOWN", field_cell(h, "nodes_down")},
        {"LEADERLESS", field_cell(h, "leaderless_count") + "  " + partition_list_text(h.value("leaderless_partitions",
                                                                                              nlohmann::json()))},
        {"UNDER-REPLICATED", field_cell(h, "under_replicated_count") + "  " +
                                 partition_list_text(h.value("under_replicated_partitions", nlohmann::json()))},
    });
  }
  if (!healthy && ctx.args.has("exit-status")) {
    throw_failed("the cluster is not healthy");
  }
  return 0;
}

int broker_list(context& ctx) {
  const nlohmann::json brokers = admin_api(ctx.conf).get("/v1/brokers");
  if (ctx.conf.json) {
    print_json(ctx.out, brokers);
    return 0;
  }
  if (!brokers.is_array()) {
    throw_failed("GET /v1/brokers did not answer a JSON array");
  }
  table t({"ID", "HOST", "PORT", "RACK", "SHARDS", "VERSION", "UPTIME", "ALIVE", "CONTROLLER"});
  for (const auto& b : brokers) {
    const nlohmann::json uptime = b.value("uptime_ms", nlohmann::json());
    t.add_row({field_cell(b, "node_id"), field_cell(b, "host"), field_cell(b, "port"), field_cell(b, "rack"),
               field_cell(b, "shards"), field_cell(b, "version"),
               uptime.is_number() ? duration_text(uptime.get<int64_t>()) : "-", field_cell(b, "is_alive"),
               b.value("is_controller", false) ? "*" : ""});
  }
  ctx.out << t.render();
  return 0;
}

int config_get(context& ctx) {
  const nlohmann::json values = admin_api(ctx.conf).get("/v1/cluster_config");
  if (!values.is_object()) {
    throw_failed("GET /v1/cluster_config did not answer a JSON object");
  }
  if (!ctx.args.positionals().empty()) {
    const std::string& key = ctx.args.positionals()[0];
    if (!values.contains(key)) {
      throw_not_found("cluster setting '" + key + "' does not exist (see 'sluice cluster config get')");
    }
    if (ctx.conf.json) {
      print_json(ctx.out, {{key, values[key]}});
    } else {
      ctx.out << cell(values[key]) << "\n";
    }
    return 0;
  }
  if (ctx.conf.json) {
    print_json(ctx.out, values);
    return 0;
  }
  table t({"KEY", "VALUE"});
  for (const auto& [key, value] : values.items()) {
    t.add_row({key, cell(value)});
  }
  ctx.out << t.render();
  return 0;
}

}  // namespace

nlohmann::json typed_setting_value(const std::string& key, const std::string& text, const nlohmann::json& schema) {
  const std::string type = schema.is_object() ? schema.value("type", std::string()) : std::string();
  const std::string what = "cluster setting " + key;
  nlohmann::json value;
  if (type.find("int") != std::string::npos || type == "long") {
    value = parse_int(text, what, INT64_MIN, INT64_MAX);
  } else if (type == "number" || type == "double" || type == "float") {
    size_t used = 0;
    double d = 0;
    try {
      d = std::stod(text, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != text.size()) {
      throw_usage("bad value '" + text + "' for " + what + ": want a number");
    }
    value = d;
  } else if (type == "boolean" || type == "bool") {
    if (text != "true" && text != "false") {
      throw_usage("bad value '" + text + "' for " + what + ": want true or false");
    }
    value = text == "true";
  } else if (type == "array" || type == "list" || type.find("list") != std::string::npos) {
    if (text.starts_with('[')) {
      value = nlohmann::json::parse(text, nullptr, false);
      if (value.is_discarded()) {
        throw_usage("bad value '" + text + "' for " + what + ": not a JSON array");
      }
    } else {
      value = split_list(text);
    }
  } else if (type == "object" || type == "map") {
    value = nlohmann::json::parse(text, nullptr, false);
    if (value.is_discarded() || !value.is_object()) {
      throw_usage("bad value '" + text + "' for " + what + ": want a JSON object");
    }
  } else {
    value = text;  // string, enum, duration, ...
  }
  if (schema.is_object() && schema.contains("enum") && schema["enum"].is_array()) {
    bool allowed = false;
    for (const auto& e : schema["enum"]) {
      allowed = allowed || e == value;
    }
    if (!allowed) {
      throw_usage("bad value '" + text + "' for " + what + ": want one of " + compact_json(schema["enum"]));
    }
  }
  if (value.is_number() && schema.is_object()) {
    if (schema.contains("minimum") && schema["minimum"].is_number() && value < schema["minimum"]) {
      throw_usage("bad value '" + text + "' for " + what + ": the minimum is " + compact_json(schema["minimum"]));
    }
    if (schema.contains("maximum") && schema["maximum"].is_number() && value > schema["maximum"]) {
      throw_usage("bad value '" + text + "' for " + what + ": the maximum is " + compact_json(schema["maximum"]));
    }
  }
  return value;
}

namespace {

int config_set(context& ctx) {
  const auto& args = ctx.args.positionals();
  if (args.size() % 2 != 0) {
    throw_usage("'sluice cluster config set' needs KEY VALUE pairs; '" + args.back() + "' has no value");
  }
  const admin_api api(ctx.conf);
  const nlohmann::json schema = api.get("/v1/cluster_config/schema");
  if (!schema.is_object()) {
    throw_failed("GET /v1/cluster_config/schema did not answer a JSON object");
  }
  nlohmann::json upsert = nlohmann::json::object();
  for (size_t i = 0; i < args.size(); i += 2) {
    const std::string& key = args[i];
    if (!schema.contains(key)) {
      throw_usage("unknown cluster setting '" + key + "' (see 'sluice cluster config get')");
    }
    upsert[key] = typed_setting_value(key, args[i + 1], schema[key]);
  }
  const bool dry_run = ctx.args.has("dry-run");
  const nlohmann::json answer =
      api.put(std::string("/v1/cluster_config") + (dry_run ? "?dry_run=true" : ""), {{"upsert", upsert}});
  if (ctx.conf.json) {
    print_json(ctx.out, answer);
    return 0;
  }
  const nlohmann::json applied = answer.is_object() && answer.contains("applied") ? answer["applied"] : upsert;
  for (const auto& [key, value] : applied.items()) {
    ctx.out << (dry_run ? "would set " : "set ") << key << " = " << cell(value) << "\n";
  }
  if (answer.is_object() && answer.contains("restart_required") && answer["restart_required"].is_array()) {
    for (const auto& key : answer["restart_required"]) {
      ctx.out << cell(key) << " takes effect when the brokers restart\n";
    }
  }
  return 0;
}

}  // namespace

void add_cluster_commands(command_table& t) {
  t.groups.push_back({{"cluster"}, "Cluster identity, health and cluster-wide settings."});
  t.groups.push_back({{"cluster", "config"}, "Read and change cluster settings (admin API /v1/cluster_config)."});
  t.groups.push_back({{"broker"}, "Brokers of the cluster (admin API /v1/brokers)."});
  t.commands.push_back({
      {"cluster", "info"},
      "Show the cluster id, the controller and the brokers (Kafka Metadata).",
      "[flags]",
      "Asks the bootstrap brokers for the cluster's metadata: its id, the controller's node id,\n"
      "and every broker's id and advertised address.",
      {},
      {"sluice cluster info", "sluice cluster info --json --brokers 10.0.0.5:9092"},
      0,
      0,
      cluster_info,
  });
  t.commands.push_back({
      {"cluster", "health"},
      "Show the cluster's health (GET /v1/cluster/health).",
      "[flags]",
      "Whether every node is up and every partition has a leader and all its replicas in sync;\n"
      "lists the nodes that are down and the leaderless and under-replicated partitions.",
      {{"exit-status", 0, "", "exit 1 when the cluster is not healthy"}},
      {"sluice cluster health", "sluice cluster health --exit-status --admin http://10.0.0.5:9644"},
      0,
      0,
      cluster_health,
  });
  t.commands.push_back({
      {"cluster", "config", "get"},
      "Print cluster settings (GET /v1/cluster_config).",
      "[KEY] [flags]",
      "Without KEY, every cluster setting and its current value; with KEY, only that value\n"
      "(exit 4 when there is no such setting).",
      {},
      {"sluice cluster config get", "sluice cluster config get log_retention_ms"},
      0,
      1,
      config_get,
  });
  t.commands.push_back({
      {"cluster", "config", "set"},
      "Change cluster settings (PUT /v1/cluster_config).",
      "KEY VALUE [KEY VALUE...] [flags]",
      "Sets each KEY to VALUE in one request: nothing is applied unless every value is valid.\n"
      "Values are typed from GET /v1/cluster_config/schema (integers, booleans true/false,\n"
      "numbers, lists as a,b,c or JSON, strings). Prints what was applied and which keys take\n"
      "effect only after a restart.",
      {{"dry-run", 0, "", "validate only (?dry_run=true): nothing is applied"}},
      {"sluice cluster config set log_retention_ms 86400000",
       "sluice cluster config set auto_create_topics_enable false num_partitions 3 --dry-run"},
      2,
      SIZE_MAX,
      config_set,
  });
  t.commands.push_back({
      {"broker", "list"},
      "List the brokers (GET /v1/brokers).",
      "[flags]",
      "Every broker's node id, address, rack, shard count, version, uptime and whether it is\n"
      "alive and the controller.",
      {},
      {"sluice broker list", "sluice broker list --json"},
      0,
      0,
      broker_list,
  });
}

}  // namespace sluice::cli
