// sluice produce TOPIC: one record per line of stdin or --file.

#include <cerrno>
#include <cstring>
#include <fstream>
#include <istream>
#include <ostream>

#include "cli_error.h"
#include "command.h"
#include "kafka_client.h"
#include "output.h"

namespace sluice::cli {

namespace {

struct delivery {
  int32_t partition = -1;
  int64_t offset = -1;
  rd_kafka_resp_err_t error = RD_KAFKA_RESP_ERR__IN_PROGRESS;
};

struct produce_state {
  std::vector<delivery> deliveries;  // by record index
  size_t done = 0;
};

void on_delivery(rd_kafka_t*, const rd_kafka_message_t* msg, void* opaque) {
  auto* st = static_cast<produce_state*>(static_cast<kafka_client*>(opaque)->user_state());
  auto index = reinterpret_cast<uintptr_t>(msg->_private);
  if (index < st->deliveries.size()) {
    st->deliveries[index] = {msg->partition, msg->offset, msg->err};
    ++st->done;
  }
}

struct produce_options {
  std::string topic;
  std::optional<std::string> key;
  std::optional<std::string> key_delimiter;
  std::vector<std::pair<std::string, std::string>> headers;
  int32_t partition = RD_KAFKA_PARTITION_UA;
};

// Queues one record, waiting while librdkafka's queue is full.
void send_record(kafka_client& client, const produce_options& o, std::string_view line, size_t index) {
  std::optional<std::string_view> key = o.key ? std::optional<std::string_view>(*o.key) : std::nullopt;
  std::string_view value = line;
  if (o.key_delimiter) {
    if (auto at = line.find(*o.key_delimiter); at != std::string_view::npos) {
      key = line.substr(0, at);
      value = line.substr(at + o.key_delimiter->size());
    }
  }
  // The RD_KAFKA_V_* macros cast their arguments without parentheses: pass plain variables.
  const char* key_data = key ? key->data() : nullptr;
  const size_t key_size = key ? key->size() : 0;
  char* value_data = const_cast<char*>(value.data());
  const size_t value_size = value.size();
  void* opaque = reinterpret_cast<void*>(static_cast<uintptr_t>(index));
  while (true) {
    rd_kafka_headers_t* headers = nullptr;
    if (!o.headers.empty()) {
      headers = rd_kafka_headers_new(o.headers.size());
      for (const auto& [name, v] : o.headers) {
        rd_kafka_header_add(headers, name.data(), static_cast<ssize_t>(name.size()), v.data(),
                            static_cast<ssize_t>(v.size()));
      }
    }
    rd_kafka_resp_err_t err = rd_kafka_producev(
        client.handle(), RD_KAFKA_V_TOPIC(o.topic.c_str()), RD_KAFKA_V_PARTITION(o.partition),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_VALUE(value_data, value_size),
        RD_KAFKA_V_KEY(key_data, key_size), RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      return;
    }
    if (headers != nullptr) {
      rd_kafka_headers_destroy(headers);  // not taken on failure
    }
    if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      throw_kafka(err, "cannot produce record " + std::to_string(index + 1) + " to topic '" + o.topic + "'");
    }
    rd_kafka_poll(client.handle(), 100);
  }
}

int produce(context& ctx) {
  produce_options o;
  o.topic = ctx.args.positionals()[0];
  o.key = ctx.args.value("key");
  o.key_delimiter = ctx.args.value("key-delimiter");
  if (o.key && o.key_delimiter) {
    throw_usage("--key and --key-delimiter cannot be used together");
  }
  if (o.key_delimiter && o.key_delimiter->empty()) {
    throw_usage("bad value '' for --key-delimiter: want at least one character");
  }
  for (const auto& h : ctx.args.values("header")) {
    o.headers.push_back(parse_key_value(h, "-H/--header"));
  }
  o.partition = static_cast<int32_t>(ctx.args.int_value("partition", RD_KAFKA_PARTITION_UA, 0, INT32_MAX));
  std::vector<std::pair<std::string, std::string>> props = {{"linger.ms", "5"}};
  if (auto acks = ctx.args.value("acks")) {
    if (*acks != "0" && *acks != "1" && *acks != "-1" && *acks != "all") {
      throw_usage("bad value '" + *acks + "' for --acks: want 0, 1, -1 or all");
    }
    props.emplace_back("acks", *acks);
  }
  if (auto codec = ctx.args.value("compression")) {
    props.emplace_back("compression.codec", *codec);
  }
  props.emplace_back("message.timeout.ms", std::to_string(ctx.conf.timeout_ms));

  std::ifstream file;
  std::istream* input = &ctx.in;
  if (auto path = ctx.args.value("file")) {
    file.open(*path, std::ios::binary);
    if (!file) {
      throw_usage("cannot open --file " + *path + ": " + std::strerror(errno));
    }
    input = &file;
  }

  check_brokers_reachable(ctx.conf);
  produce_state st;
  kafka_client client(ctx.conf, RD_KAFKA_PRODUCER, props,
                      [](rd_kafka_conf_t* conf) { rd_kafka_conf_set_dr_msg_cb(conf, &on_delivery); });
  client.set_user_state(&st);
  client.require_topic_for_produce(o.topic);

  std::string line;
  while (std::getline(*input, line)) {
    st.deliveries.emplace_back();
    send_record(client, o, line, st.deliveries.size() - 1);
    rd_kafka_poll(client.handle(), 0);
  }
  if (input->bad()) {
    throw_failed("cannot read the input: " + std::string(std::strerror(errno)));
  }
  rd_kafka_flush(client.handle(), ctx.conf.timeout_ms + 5000);
  rd_kafka_poll(client.handle(), 0);

  nlohmann::json records = nlohmann::json::array();
  size_t failed = 0;
  std::optional<std::pair<size_t, rd_kafka_resp_err_t>> first_error;
  for (size_t i = 0; i < st.deliveries.size(); ++i) {
    const delivery& d = st.deliveries[i];
    if (d.error != RD_KAFKA_RESP_ERR_NO_ERROR) {
      ++failed;
      if (!first_error) {
        first_error = {i, d.error};
      }
      continue;
    }
    records.push_back({{"partition", d.partition}, {"offset", d.offset}});
    if (ctx.conf.verbose && !ctx.conf.json) {
      ctx.out << "produced to " << o.topic << " partition " << d.partition << " at offset " << d.offset << "\n";
    }
  }
  if (ctx.conf.json) {
    print_json(ctx.out, {{"topic", o.topic},
                         {"produced", st.deliveries.size() - failed},
                         {"failed", failed},
                         {"records", records}});
  }
  if (first_error) {
    auto [index, err] = *first_error;
    if (err == RD_KAFKA_RESP_ERR__IN_PROGRESS) {
      client.throw_timeout(std::to_string(failed) + " of " + std::to_string(st.deliveries.size()) +
                           " records to topic '" + o.topic + "' were not acknowledged");
    }
    throw_kafka(err, std::to_string(failed) + " of " + std::to_string(st.deliveries.size()) +
                         " records were not written to topic '" + o.topic + "' (the first is line " +
                         std::to_string(index + 1) + ")");
  }
  return 0;
}

}  // namespace

void add_produce_command(command_table& t) {
  t.commands.push_back({
      {"produce"},
      "Produce records from stdin or a file, one per line.",
      "TOPIC [flags]",
      "Each line of the input (stdin, or --file) is one record; the newline is not part of it.\n"
      "Lines may be split into key and value with --key-delimiter. A topic that does not exist\n"
      "is exit 4, unless the broker creates topics on use. The command returns once\n"
      "every record is acknowledged (per --acks); a record that is not is an error naming\n"
      "Kafka's error. --verbose prints each record's partition and offset; --json prints\n"
      "{\"topic\", \"produced\", \"failed\", \"records\": [{\"partition\", \"offset\"}]}.",
      {{"file", 'f', "FILE", "read records from FILE instead of stdin"},
       {"key", 'k', "KEY", "the key of every record"},
       {"key-delimiter", 'D', "DELIM", "split each line at the first DELIM into key and value"},
       {"header", 'H', "KEY=VALUE", "a header on every record (repeatable)", true},
       {"partition", 'p', "P", "produce to this partition (default: the partitioner's choice)"},
       {"acks", 0, "0|1|-1|all", "acknowledgements to wait for (default: all)"},
       {"compression", 'z', "CODEC", "none, gzip, snappy, lz4 or zstd (default: none)"}},
      {"echo hello | sluice produce orders", "sluice produce orders --file events.txt -H source=import --acks 1",
       "printf 'k1:v1\\nk2:v2\\n' | sluice produce orders --key-delimiter : --json"},
      1,
      1,
      produce,
  });
}

}  // namespace sluice::cli
