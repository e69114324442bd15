// The workload sluice-bench runs: every setting, with its flag and YAML name,
// and the parsers that fill it from a YAML file and from the command line.
//
// One table (workload.cc) names every setting once: `--record-size 1024` on
// the command line and `record_size: 1024` in a YAML file set the same field.
// A YAML file is read first (--workload FILE), then the flags, so flags
// override the file. Errors are std::invalid_argument with a message naming
// the setting. Not thread-safe; used before any thread starts.
#pragma once

#include <cstdint>
#include <map>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice::bench {

enum class key_distribution { none, round_robin, random, zipf };
enum class run_mode { produce_consume, produce_only, consume_only, create_only };

struct workload {
  std::string name = "default";
  std::string bootstrap = "127.0.0.1:9092";  // comma-separated host:port list

  // Topics: `topics` topics named TOPIC (one) or TOPIC-0 .. TOPIC-(N-1).
  std::string topic = "sluice-bench";
  uint32_t topics = 1;
  uint32_t partitions = 1;
  uint32_t replication_factor = 1;
  bool create_topics = true;  // CreateTopics first (an existing topic is kept as is)
  std::vector<std::pair<std::string, std::string>> topic_config;  // configs of created topics

  // Records.
  uint32_t record_size = 1024;  // value bytes; the first 8 carry the send time
  key_distribution keys = key_distribution::none;
  uint32_t key_space = 10000;  // distinct keys for round-robin, random and zipf
  double zipf_exponent = 0.99;

  // Producers.
  uint32_t producers = 1;
  uint64_t rate = 0;  // records/s over all producers; 0: as fast as possible
  std::string acks = "all";
  uint32_t linger_ms = 5;
  uint32_t batch_size = 1048576;  // librdkafka batch.size, bytes
  std::string compression = "none";
  bool idempotence = false;
  uint64_t produce_bytes = 0;  // stop producing after this many value bytes (0: run for the duration)

  // Consumers.
  uint32_t consumers = 1;
  std::string consumer_group;  // empty: "sluice-bench-PID"; "-": no group, partitions assigned by hand
  uint32_t fetch_wait_max_ms = 100;

  // Time (seconds).
  double duration = 60;
  double warmup = 10;
  double drain = 10;  // after producing stops: how long consumers may take to catch up

  run_mode mode = run_mode::produce_consume;
  bool mock = false;  // librdkafka's in-process mock cluster instead of --bootstrap
  uint32_t mock_brokers = 1;
  uint64_t seed = 1;
  std::string out;  // the JSON result's file; empty: stdout
  uint32_t watch_pid = 0;  // a process (the broker) whose CPU time and memory are sampled at the window's edges

  // Extra librdkafka settings ("key=value"), applied after the ones above.
  std::vector<std::pair<std::string, std::string>> producer_config;
  std::vector<std::pair<std::string, std::string>> consumer_config;

  // The topic names, in order.
  std::vector<std::string> topic_names() const;
};

const char* to_string(key_distribution k);
const char* to_string(run_mode m);

// Sets one setting by its name ("record_size" or "record-size") from text.
// Throws std::invalid_argument naming the setting on an unknown name or a
// bad value.
void set_setting(workload& w, std::string_view name, std::string_view value);

// Applies a YAML document: a map of setting names to scalars, except
// producer_config and consumer_config (maps of librdkafka settings) and
// topic_config (a map of topic configs).
void apply_yaml(workload& w, std::string_view yaml_text);

// Parses the command line (argv without the program name). Options: --NAME
// VALUE, --NAME=VALUE, the boolean flags (--mock, --idempotence,
// --produce-only, --consume-only, --create-only, --no-create-topics), and
// --workload FILE, which must come first among the options that set
// something. Returns false for --help (help_text() says what to print).
// Throws std::invalid_argument on errors; check() runs at the end.
bool parse_command_line(workload& w, std::span<const std::string> args);

// Cross-setting checks (a warm-up shorter than the duration, a mode that
// needs consumers, ...). Throws std::invalid_argument.
void check(const workload& w);

// Usage text listing every setting with its default.
std::string help_text();

// A byte count: digits with an optional K/KB/KiB/M/MiB/G/GiB suffix (all
// powers of 1024). Throws std::invalid_argument naming `what`.
uint64_t parse_bytes(std::string_view text, std::string_view what);

// Record keys by the workload's distribution. next() returns an index in
// [0, key_space) (or -1 for none); key_text() formats it as the record key.
class key_generator {
 public:
  key_generator(key_distribution dist, uint32_t key_space, double zipf_exponent, uint64_t seed);
  int64_t next();
  static std::string key_text(int64_t index);  // "k" + 8 digits

 private:
  key_distribution _dist;
  uint32_t _space;
  uint64_t _counter = 0;
  std::mt19937_64 _rng;
  std::vector<double> _cdf;  // zipf: cumulative probability of keys 0..i
};

}  // namespace sluice::bench
