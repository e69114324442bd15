// sluice consume TOPIC: print records; with --group, commit what was printed.

#include <chrono>
#include <csignal>
#include <cstring>
#include <ostream>
#include <set>

#include "cli_error.h"
#include "command.h"
#include "command_util.h"
#include "kafka_client.h"
#include "record_format.h"

namespace sluice::cli {

namespace {

volatile std::sig_atomic_t stop_requested = 0;

void on_stop_signal(int) { stop_requested = 1; }

// Restores SIGINT and SIGTERM when the command ends.
class stop_signals {
 public:
  stop_signals() {
    stop_requested = 0;
    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &_old_int);
    sigaction(SIGTERM, &sa, &_old_term);
  }
  ~stop_signals() {
    sigaction(SIGINT, &_old_int, nullptr);
    sigaction(SIGTERM, &_old_term, nullptr);
  }

 private:
  struct sigaction _old_int {};
  struct sigaction _old_term {};
};

struct consume_state {
  kafka_client* client = nullptr;
  std::string group;
  // Where each partition starts when the user chose (absent: the committed offset).
  std::map<topic_partition, int64_t> start_offsets;
  std::set<topic_partition> started;             // explicit starts already applied
  std::set<topic_partition> assigned;
  std::set<topic_partition> at_end;
  std::map<topic_partition, int64_t> positions;  // to commit: after the last record printed, or the start
  std::map<topic_partition, int64_t> committed;  // what was committed last
  bool reset_earliest = true;                    // auto.offset.reset
};

// Partitions this consumer owned but printed nothing from, where the group has
// no committed offset yet, get the offset where reading started (as Java
// consumers commit their position for every assigned partition), so the
// group's lag covers every partition it read. Starts relative to the end
// (latest, -N) are left alone: the end moves.
void add_start_positions(consume_state& st, const std::set<topic_partition>& partitions) {
  std::vector<topic_partition> idle;
  for (const auto& tp : partitions) {
    if (!st.positions.count(tp)) {
      idle.push_back(tp);
    }
  }
  if (idle.empty()) {
    return;
  }
  partition_list_ptr list = make_partition_list(idle, RD_KAFKA_OFFSET_INVALID);
  const int timeout_ms = st.client->config().timeout_ms;
  if (rd_kafka_resp_err_t err = rd_kafka_committed(st.client->handle(), list.get(), timeout_ms);
      err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    throw_kafka(err, "cannot read the committed offsets of group '" + st.group + "'");
  }
  std::vector<topic_partition> from_log_start;
  for (int i = 0; i < list->cnt; ++i) {
    const topic_partition tp{list->elems[i].topic, list->elems[i].partition};
    if (list->elems[i].offset >= 0) {
      continue;  // the group has an offset there already
    }
    auto start = st.start_offsets.find(tp);
    if (start != st.start_offsets.end() && start->second >= 0) {
      st.positions[tp] = start->second;
    } else if ((start != st.start_offsets.end() && start->second == RD_KAFKA_OFFSET_BEGINNING) ||
               (start == st.start_offsets.end() && st.reset_earliest)) {
      from_log_start.push_back(tp);
    }
  }
  for (const auto& [tp, marks] : st.client->query_watermarks(from_log_start)) {
    st.positions[tp] = marks.log_start;
  }
}

// Commits the positions not yet committed (all, or only those in `only`), synchronously.
void commit_positions(consume_state& st, const std::set<topic_partition>* only = nullptr) {
  std::vector<topic_partition> tps;
  std::vector<int64_t> offsets;
  for (const auto& [tp, next] : st.positions) {
    if ((only == nullptr || only->count(tp)) && (!st.committed.count(tp) || st.committed[tp] != next)) {
      tps.push_back(tp);
      offsets.push_back(next);
    }
  }
  if (tps.empty()) {
    return;
  }
  partition_list_ptr list = make_partition_list(tps, 0);
  for (size_t i = 0; i < tps.size(); ++i) {
    list->elems[i].offset = offsets[i];
  }
  rd_kafka_resp_err_t err = rd_kafka_commit(st.client->handle(), list.get(), 0);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    throw_kafka(err, "cannot commit the offsets of group '" + st.group + "'");
  }
  for (int i = 0; i < list->cnt; ++i) {
    if (list->elems[i].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      throw_kafka(list->elems[i].err, "cannot commit the offset of " + std::string(list->elems[i].topic) + "/" +
                                          std::to_string(list->elems[i].partition) + " for group '" + st.group + "'");
    }
  }
  for (size_t i = 0; i < tps.size(); ++i) {
    st.committed[tps[i]] = offsets[i];
  }
}

// Applies explicit start offsets to partitions assigned for the first time.
void apply_starts(consume_state& st, rd_kafka_topic_partition_list_t* parts) {
  for (int i = 0; i < parts->cnt; ++i) {
    topic_partition tp{parts->elems[i].topic, parts->elems[i].partition};
    if (auto it = st.start_offsets.find(tp); it != st.start_offsets.end() && !st.started.count(tp)) {
      parts->elems[i].offset = it->second;
      st.started.insert(tp);
    }
  }
}

void on_rebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts, void* opaque) {
  auto* st = static_cast<consume_state*>(static_cast<kafka_client*>(opaque)->user_state());
  const bool cooperative = std::strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
  std::set<topic_partition> changed;
  for (int i = 0; i < parts->cnt; ++i) {
    changed.insert({parts->elems[i].topic, parts->elems[i].partition});
  }
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    apply_starts(*st, parts);
    st->assigned.insert(changed.begin(), changed.end());
    if (cooperative) {
      if (rd_kafka_error_t* e = rd_kafka_incremental_assign(rk, parts)) {
        rd_kafka_error_destroy(e);
      }
    } else {
      rd_kafka_assign(rk, parts);
    }
    return;
  }
  // Revoked or lost: commit what was printed from these partitions before giving them up.
  // (Start positions of idle partitions are added only by the final commit: rd_kafka_committed()
  // cannot be answered while rd_kafka_consumer_close() is leaving the group.)
  if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
    try {
      commit_positions(*st, &changed);
    } catch (const cli_error& e) {
      std::fprintf(stderr, "sluice: %s\n", e.what());
    }
  }
  for (const auto& tp : changed) {
    st->assigned.erase(tp);
    st->at_end.erase(tp);
  }
  if (cooperative) {
    if (rd_kafka_error_t* e = rd_kafka_incremental_unassign(rk, parts)) {
      rd_kafka_error_destroy(e);
    }
  } else {
    rd_kafka_assign(rk, nullptr);
  }
}

// --offset: earliest, latest, N (absolute) or -N (N before the end).
int64_t parse_start_offset(const std::string& text) {
  if (text == "earliest" || text == "beginning" || text == "start") {
    return RD_KAFKA_OFFSET_BEGINNING;
  }
  if (text == "latest" || text == "end") {
    return RD_KAFKA_OFFSET_END;
  }
  int64_t n = parse_int(text, "--offset", -INT64_MAX, INT64_MAX);
  return n >= 0 ? n : RD_KAFKA_OFFSET_TAIL(-n);
}

record_view view_of(const rd_kafka_message_t* m) {
  record_view r;
  r.topic = rd_kafka_topic_name(m->rkt);
  r.partition = m->partition;
  r.offset = m->offset;
  r.timestamp_ms = rd_kafka_message_timestamp(m, nullptr);
  if (m->key != nullptr) {
    r.key = std::string_view(static_cast<const char*>(m->key), m->key_len);
  }
  if (m->payload != nullptr) {
    r.value = std::string_view(static_cast<const char*>(m->payload), m->len);
  }
  rd_kafka_headers_t* headers = nullptr;
  if (rd_kafka_message_headers(m, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR && headers != nullptr) {
    const char* name = nullptr;
    const void* value = nullptr;
    size_t size = 0;
    for (size_t i = 0; rd_kafka_header_get_all(headers, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR; ++i) {
      r.headers.emplace_back(name, value ? std::optional<std::string_view>(
                                               std::string_view(static_cast<const char*>(value), size))
                                         : std::nullopt);
    }
  }
  return r;
}

int consume(context& ctx) {
  const std::string topic_name = ctx.args.positionals()[0];
  const std::optional<std::string> group = ctx.args.value("group");
  const int64_t limit = ctx.args.int_value("num", 0, 1, INT64_MAX);
  const bool exit_at_end = ctx.args.has("exit-at-end");
  if (ctx.args.has("offset") && ctx.args.has("timestamp")) {
    throw_usage("--offset and --timestamp cannot be used together");
  }
  if (ctx.conf.json && ctx.args.has("format") && *ctx.args.value("format") != "json") {
    throw_usage("--json and --format " + *ctx.args.value("format") + " cannot be used together");
  }
  const record_formatter formatter(ctx.conf.json ? "json" : ctx.args.value("format").value_or("raw"));
  std::optional<int64_t> start_offset;
  if (auto o = ctx.args.value("offset")) {
    start_offset = parse_start_offset(*o);
  }
  // A plain flag and value, not an optional: GCC 12 at -O2 warns (an error
  // with -Werror) that an engaged optional's value "may be used uninitialized".
  const bool by_timestamp = ctx.args.has("timestamp");
  const int64_t timestamp_ms = by_timestamp ? ctx.args.int_value("timestamp", 0, 0, INT64_MAX) : 0;

  check_brokers_reachable(ctx.conf);
  consume_state st;
  std::vector<std::pair<std::string, std::string>> props = {
      {"enable.auto.commit", "false"},
      {"enable.partition.eof", "true"},
      {"auto.offset.reset", start_offset == RD_KAFKA_OFFSET_END ? "latest" : "earliest"},
  };
  if (group) {
    props.emplace_back("group.id", *group);
    st.group = *group;
  } else {
    // librdkafka's assign() needs a group id even when nothing is committed; this consumer
    // never joins this group and never commits, so no group appears on the broker.
    props.emplace_back("group.id", "sluice-cli-uncommitted");
  }
  st.reset_earliest = start_offset != RD_KAFKA_OFFSET_END;
  if (exit_at_end) {
    // The end of a partition is seen when a fetch comes back empty: do not long-poll for long.
    props.emplace_back("fetch.wait.max.ms", "100");
  }
  kafka_client client(ctx.conf, RD_KAFKA_CONSUMER, props, [&](rd_kafka_conf_t* conf) {
    if (group && !ctx.args.has("partition")) {
      rd_kafka_conf_set_rebalance_cb(conf, &on_rebalance);
    }
  });
  client.set_user_state(&st);
  st.client = &client;
  rd_kafka_t* rk = client.handle();
  rd_kafka_poll_set_consumer(rk);

  const topic_info topic = client.metadata().require_topic(topic_name);
  const std::vector<int32_t> ids =
      ctx.args.has("partition") ? select_partitions(*ctx.args.value("partition"), topic, "-p") : topic.partition_ids();
  const std::vector<topic_partition> tps = partitions_of(topic, ids);
  if (by_timestamp) {
    const auto found = client.offsets_for_timestamp(tps, timestamp_ms);
    for (const auto& [tp, offset] : found) {
      st.start_offsets[tp] = offset < 0 ? RD_KAFKA_OFFSET_END : offset;
    }
  } else if (start_offset && (!group || (*start_offset != RD_KAFKA_OFFSET_BEGINNING &&
                                         *start_offset != RD_KAFKA_OFFSET_END))) {
    // With a group, earliest and latest apply only where nothing is committed (auto.offset.reset).
    for (const auto& tp : tps) {
      st.start_offsets[tp] = *start_offset;
    }
  }

  const bool subscribed = group && !ctx.args.has("partition");
  if (subscribed) {
    partition_list_ptr subscription = make_partition_list({{topic_name, RD_KAFKA_PARTITION_UA}}, 0);
    if (rd_kafka_resp_err_t err = rd_kafka_subscribe(rk, subscription.get()); err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      throw_kafka(err, "cannot subscribe to topic '" + topic_name + "'");
    }
  } else {
    partition_list_ptr list =
        make_partition_list(tps, group ? RD_KAFKA_OFFSET_STORED : RD_KAFKA_OFFSET_BEGINNING);
    apply_starts(st, list.get());
    if (rd_kafka_resp_err_t err = rd_kafka_assign(rk, list.get()); err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      throw_kafka(err, "cannot assign the partitions of topic '" + topic_name + "'");
    }
    st.assigned.insert(tps.begin(), tps.end());
  }

  stop_signals signals;
  int64_t count = 0;
  auto last_commit = std::chrono::steady_clock::now();
  std::optional<cli_error> failure;
  try {
    while (!stop_requested && (limit == 0 || count < limit)) {
      if (exit_at_end && !st.assigned.empty() && st.at_end.size() == st.assigned.size()) {
        break;
      }
      rd_kafka_message_t* m = rd_kafka_consumer_poll(rk, 200);
      if (group && std::chrono::steady_clock::now() - last_commit > std::chrono::seconds(5)) {
        commit_positions(st);
        last_commit = std::chrono::steady_clock::now();
      }
      if (m == nullptr) {
        ctx.out.flush();
        continue;
      }
      std::unique_ptr<rd_kafka_message_t, decltype(&rd_kafka_message_destroy)> guard(m, &rd_kafka_message_destroy);
      const topic_partition tp{m->rkt ? rd_kafka_topic_name(m->rkt) : topic_name, m->partition};
      if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        if (st.assigned.count(tp)) {
          st.at_end.insert(tp);
        }
        continue;
      }
      if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        const std::string what = "cannot consume from topic '" + topic_name + "'";
        const std::string message = rd_kafka_message_errstr(m);
        switch (exit_code_for(m->err)) {
          case exit_code::not_found:
          case exit_code::unreachable:
            throw_kafka(m->err, what, message);
          default:
            if (m->err == RD_KAFKA_RESP_ERR__FATAL) {
              throw_kafka(m->err, what, message);
            }
            ctx.err << "sluice: warning: " << kafka_error_name(m->err) << ": " << message << "\n";
            continue;
        }
      }
      ctx.out << formatter.render(view_of(m));
      st.positions[tp] = m->offset + 1;
      st.at_end.erase(tp);
      ++count;
    }
  } catch (const cli_error& e) {
    failure = e;
  }
  ctx.out.flush();
  // Commit synchronously before leaving, so the offsets are durable when the command returns.
  if (group) {
    try {
      add_start_positions(st, st.assigned);
      commit_positions(st);
    } catch (const cli_error& e) {
      if (!failure) {
        failure = e;
      }
    }
  }
  rd_kafka_consumer_close(rk);
  if (failure) {
    throw *failure;
  }
  if (ctx.conf.verbose) {
    ctx.err << "sluice: consumed " << count << " records\n";
  }
  return 0;
}

}  // namespace

void add_consume_command(command_table& t) {
  t.commands.push_back({
      {"consume"},
      "Print records of a topic; with --group, commit them.",
      "TOPIC [flags]",
      "Prints each record (by default its value and a newline). Runs until -n records are\n"
      "printed, every partition is read to its end (--exit-at-end), or SIGINT/SIGTERM.\n"
      "\n"
      "Without --group the consumer reads the partitions directly, from --offset (default\n"
      "earliest). With --group it joins the group (or, with -p, reads those partitions under the\n"
      "group's name), starts from the committed offsets, and commits what it printed: every 5 s\n"
      "and synchronously before it exits, so the offsets are durable when the command returns.\n"
      "Partitions it owned but printed nothing from, where the group has no offset yet, get the\n"
      "offset it started from (as Java consumers do), so the group's lag covers them.\n"
      "With a group, --offset earliest|latest applies only to partitions without a committed\n"
      "offset; --offset N, -N and --timestamp override the committed offsets.\n"
      "\n"
      "--format raw prints the value; json prints one JSON object per line (topic, partition,\n"
      "offset, timestamp, key, value, headers); a template uses %t topic, %p partition, %o\n"
      "offset, %T timestamp, %k key, %v value, %K/%V key/value length, %h headers, %% and the\n"
      "escapes \\n \\t \\r \\0 \\\\ (a newline is added unless the template ends with \\n).",
      {{"group", 'g', "GROUP", "consume as this consumer group and commit offsets"},
       {"offset", 'o', "OFFSET", "earliest, latest, N (absolute) or -N (N before the end)"},
       {"timestamp", 0, "MS", "start at the first record with a timestamp >= MS (ms since the epoch)"},
       {"partition", 'p', "P", "only these partitions: a number or a list (0,2)"},
       {"num", 'n', "NUM", "exit after NUM records"},
       {"format", 'F', "FORMAT", "raw (default), json, or a template such as '%k %v %p %o'"},
       {"exit-at-end", 'e', "", "exit once every partition is read to its high watermark"}},
      {"sluice consume orders -e", "sluice consume orders --offset -10 -e --format '%p:%o %k=%v'",
       "sluice consume orders --group billing -n 100", "sluice consume orders --timestamp 1700000000000 --json -e"},
      1,
      1,
      consume,
  });
}

}  // namespace sluice::cli
