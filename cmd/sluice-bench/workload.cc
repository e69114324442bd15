#include "workload.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <sstream>
#include <stdexcept>

namespace sluice::bench {

namespace {

[[noreturn]] void fail(std::string_view name, const std::string& msg) {
  throw std::invalid_argument(std::string(name) + ": " + msg);
}

std::string normalized(std::string_view name) {
  std::string n(name);
  std::replace(n.begin(), n.end(), '-', '_');
  return n;
}

uint64_t parse_u64(std::string_view text, std::string_view what, uint64_t min, uint64_t max) {
  if (text.empty() || text.find_first_not_of("0123456789") != std::string_view::npos || text.size() > 19)
    fail(what, "expected a non-negative integer, got \"" + std::string(text) + "\"");
  const uint64_t v = std::strtoull(std::string(text).c_str(), nullptr, 10);
  if (v < min || v > max)
    fail(what, "must be between " + std::to_string(min) + " and " + std::to_string(max) + ", got " +
                   std::string(text));
  return v;
}

uint32_t parse_u32(std::string_view text, std::string_view what, uint32_t min, uint32_t max) {
  return static_cast<uint32_t>(parse_u64(text, what, min, max));
}

double parse_double(std::string_view text, std::string_view what, double min, double max) {
  const std::string s(text);
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(s.c_str(), &end);
  if (s.empty() || errno != 0 || *end != '\0' || !std::isfinite(v))
    fail(what, "expected a number, got \"" + s + "\"");
  if (v < min || v > max) {
    std::ostringstream o;
    o << "must be between " << min << " and " << max << ", got " << s;
    fail(what, o.str());
  }
  return v;
}

bool parse_bool(std::string_view text, std::string_view what) {
  if (text == "true" || text == "yes" || text == "on" || text == "1") return true;
  if (text == "false" || text == "no" || text == "off" || text == "0") return false;
  fail(what, "expected true or false, got \"" + std::string(text) + "\"");
}

std::string one_of(std::string_view text, std::string_view what, std::initializer_list<const char*> allowed) {
  std::string list;
  for (const char* a : allowed) {
    if (text == a) return std::string(text);
    list += list.empty() ? "" : ", ";
    list += a;
  }
  fail(what, "expected one of " + list + ", got \"" + std::string(text) + "\"");
}

std::pair<std::string, std::string> parse_key_value(std::string_view text, std::string_view what) {
  const auto eq = text.find('=');
  if (eq == std::string_view::npos || eq == 0)
    fail(what, "expected KEY=VALUE (a librdkafka setting), got \"" + std::string(text) + "\"");
  return {std::string(text.substr(0, eq)), std::string(text.substr(eq + 1))};
}

std::string fmt_double(double v) {
  std::ostringstream o;
  o << v;
  return o.str();
}

struct setting {
  const char* name;        // YAML name; the flag is --name with '-' for '_'
  const char* value_name;  // "" for a boolean flag that takes no value on the command line
  const char* help;
  std::function<void(workload&, std::string_view)> set;
  std::function<std::string(const workload&)> show;  // the default, for --help
};

const std::vector<setting>& settings() {
  static const std::vector<setting> table = {
      {"name", "TEXT", "the workload's name, copied into the result", [](workload& w, auto v) { w.name = v; },
       [](const workload& w) { return w.name; }},
      {"bootstrap", "HOST:PORT,...", "brokers to bootstrap from",
       [](workload& w, auto v) {
         if (v.empty()) fail("bootstrap", "must not be empty");
         w.bootstrap = v;
       },
       [](const workload& w) { return w.bootstrap; }},
      {"topic", "NAME", "topic name (with topics > 1: the prefix of NAME-0, NAME-1, ...)",
       [](workload& w, auto v) {
         if (v.empty() || v.size() > 200) fail("topic", "must be 1 to 200 characters");
         w.topic = v;
       },
       [](const workload& w) { return w.topic; }},
      {"topics", "N", "number of topics", [](workload& w, auto v) { w.topics = parse_u32(v, "topics", 1, 100000); },
       [](const workload& w) { return std::to_string(w.topics); }},
      {"partitions", "N", "partitions per topic",
       [](workload& w, auto v) { w.partitions = parse_u32(v, "partitions", 1, 100000); },
       [](const workload& w) { return std::to_string(w.partitions); }},
      {"replication_factor", "N", "replication factor of created topics",
       [](workload& w, auto v) { w.replication_factor = parse_u32(v, "replication_factor", 1, 16); },
       [](const workload& w) { return std::to_string(w.replication_factor); }},
      {"create_topics", "BOOL", "create the topics first (existing ones are kept)",
       [](workload& w, auto v) { w.create_topics = parse_bool(v, "create_topics"); },
       [](const workload& w) { return w.create_topics ? "true" : "false"; }},
      {"topic_config", "KEY=VALUE", "a config of the created topics, e.g. retention.bytes=-1 (repeatable)",
       [](workload& w, auto v) { w.topic_config.push_back(parse_key_value(v, "topic_config")); },
       [](const workload&) { return std::string(); }},
      {"record_size", "BYTES", "record value size (at least 8: the send time)",
       [](workload& w, auto v) {
         const uint64_t b = parse_bytes(v, "record_size");
         if (b < 8 || b > 64u << 20) fail("record_size", "must be between 8 and 64 MiB, got " + std::string(v));
         w.record_size = static_cast<uint32_t>(b);
       },
       [](const workload& w) { return std::to_string(w.record_size); }},
      {"key_distribution", "none|round-robin|random|zipf", "record keys (hashed to partitions by librdkafka)",
       [](workload& w, auto v) {
         const std::string k = one_of(v, "key_distribution", {"none", "round-robin", "random", "zipf"});
         w.keys = k == "none"          ? key_distribution::none
                  : k == "round-robin" ? key_distribution::round_robin
                  : k == "random"      ? key_distribution::random
                                       : key_distribution::zipf;
       },
       [](const workload& w) { return to_string(w.keys); }},
      {"key_space", "N", "distinct keys",
       [](workload& w, auto v) { w.key_space = parse_u32(v, "key_space", 1, 1u << 30); },
       [](const workload& w) { return std::to_string(w.key_space); }},
      {"zipf_exponent", "S", "exponent of the zipf key distribution",
       [](workload& w, auto v) { w.zipf_exponent = parse_double(v, "zipf_exponent", 0.01, 10.0); },
       [](const workload& w) { return fmt_double(w.zipf_exponent); }},
      {"producers", "N", "producer instances (one thread each)",
       [](workload& w, auto v) { w.producers = parse_u32(v, "producers", 0, 1024); },
       [](const workload& w) { return std::to_string(w.producers); }},
      {"rate", "RECORDS/S", "total produce rate over all producers; 0: as fast as possible",
       [](workload& w, auto v) { w.rate = parse_u64(v, "rate", 0, 1'000'000'000); },
       [](const workload& w) { return std::to_string(w.rate); }},
      {"acks", "all|1|0|-1", "producer acks",
       [](workload& w, auto v) {
         w.acks = one_of(v, "acks", {"all", "-1", "1", "0"});
         if (w.acks == "-1") w.acks = "all";
       },
       [](const workload& w) { return w.acks; }},
      {"linger_ms", "MS", "producer linger.ms",
       [](workload& w, auto v) { w.linger_ms = parse_u32(v, "linger_ms", 0, 900000); },
       [](const workload& w) { return std::to_string(w.linger_ms); }},
      {"batch_size", "BYTES", "producer batch.size",
       [](workload& w, auto v) {
         const uint64_t b = parse_bytes(v, "batch_size");
         if (b < 1 || b > 2147483647) fail("batch_size", "must be between 1 and 2147483647");
         w.batch_size = static_cast<uint32_t>(b);
       },
       [](const workload& w) { return std::to_string(w.batch_size); }},
      {"compression", "none|gzip|snappy|lz4|zstd", "producer compression.codec",
       [](workload& w, auto v) { w.compression = one_of(v, "compression", {"none", "gzip", "snappy", "lz4", "zstd"}); },
       [](const workload& w) { return w.compression; }},
      {"idempotence", "", "idempotent producers (enable.idempotence)",
       [](workload& w, auto v) { w.idempotence = parse_bool(v, "idempotence"); },
       [](const workload& w) { return w.idempotence ? "true" : "false"; }},
      {"produce_bytes", "BYTES", "stop producing after this many value bytes (0: after the duration)",
       [](workload& w, auto v) { w.produce_bytes = parse_bytes(v, "produce_bytes"); },
       [](const workload& w) { return std::to_string(w.produce_bytes); }},
      {"consumers", "N", "consumer instances (one thread each)",
       [](workload& w, auto v) { w.consumers = parse_u32(v, "consumers", 0, 1024); },
       [](const workload& w) { return std::to_string(w.consumers); }},
      {"consumer_group", "NAME", "group of the consumers; default sluice-bench-PID; \"-\": no group (assign)",
       [](workload& w, auto v) { w.consumer_group = v; }, [](const workload& w) { return w.consumer_group; }},
      {"fetch_wait_max_ms", "MS", "consumer fetch.wait.max.ms",
       [](workload& w, auto v) { w.fetch_wait_max_ms = parse_u32(v, "fetch_wait_max_ms", 0, 300000); },
       [](const workload& w) { return std::to_string(w.fetch_wait_max_ms); }},
      {"duration", "SECONDS", "measured time after the warm-up",
       [](workload& w, auto v) { w.duration = parse_double(v, "duration", 0.1, 86400); },
       [](const workload& w) { return fmt_double(w.duration); }},
      {"warmup", "SECONDS", "time before measuring",
       [](workload& w, auto v) { w.warmup = parse_double(v, "warmup", 0, 86400); },
       [](const workload& w) { return fmt_double(w.warmup); }},
      {"drain", "SECONDS", "after producing stops, how long consumers may take to read the rest",
       [](workload& w, auto v) { w.drain = parse_double(v, "drain", 0, 86400); },
       [](const workload& w) { return fmt_double(w.drain); }},
      {"mode", "produce-consume|produce-only|consume-only|create-only", "what to run",
       [](workload& w, auto v) {
         const std::string m =
             one_of(v, "mode", {"produce-consume", "produce-only", "consume-only", "create-only"});
         w.mode = m == "produce-consume" ? run_mode::produce_consume
                  : m == "produce-only"  ? run_mode::produce_only
                  : m == "consume-only"  ? run_mode::consume_only
                                         : run_mode::create_only;
       },
       [](const workload& w) { return to_string(w.mode); }},
      {"mock", "",
       "producers against librdkafka's in-process mock cluster (the client's own ceiling; with --produce-only)",
       [](workload& w, auto v) { w.mock = parse_bool(v, "mock"); },
       [](const workload& w) { return w.mock ? "true" : "false"; }},
      {"mock_brokers", "N", "brokers of the mock cluster",
       [](workload& w, auto v) { w.mock_brokers = parse_u32(v, "mock_brokers", 1, 16); },
       [](const workload& w) { return std::to_string(w.mock_brokers); }},
      {"seed", "N", "seed of the key generators and payload bytes",
       [](workload& w, auto v) { w.seed = parse_u64(v, "seed", 0, UINT64_MAX / 2); },
       [](const workload& w) { return std::to_string(w.seed); }},
      {"out", "FILE", "write the JSON result here (default: stdout)", [](workload& w, auto v) { w.out = v; },
       [](const workload& w) { return w.out; }},
      {"watch_pid", "PID", "a process (the broker) whose CPU time and memory the result reports for the window",
       [](workload& w, auto v) { w.watch_pid = parse_u32(v, "watch_pid", 0, 1u << 30); },
       [](const workload&) { return std::string(); }},
      {"producer_config", "KEY=VALUE", "an extra librdkafka producer setting (repeatable)",
       [](workload& w, auto v) { w.producer_config.push_back(parse_key_value(v, "producer_config")); },
       [](const workload&) { return std::string(); }},
      {"consumer_config", "KEY=VALUE", "an extra librdkafka consumer setting (repeatable)",
       [](workload& w, auto v) { w.consumer_config.push_back(parse_key_value(v, "consumer_config")); },
       [](const workload&) { return std::string(); }},
  };
  return table;
}

const setting* find_setting(std::string_view name) {
  const std::string n = normalized(name);
  for (const auto& s : settings())
    if (n == s.name) return &s;
  return nullptr;
}

// Boolean flags that take no value on the command line, and the mode shortcuts.
bool apply_flag(workload& w, std::string_view flag) {
  if (flag == "mock") w.mock = true;
  else if (flag == "idempotence") w.idempotence = true;
  else if (flag == "no-create-topics" || flag == "no_create_topics") w.create_topics = false;
  else if (flag == "produce-only" || flag == "produce_only") w.mode = run_mode::produce_only;
  else if (flag == "consume-only" || flag == "consume_only") w.mode = run_mode::consume_only;
  else if (flag == "create-only" || flag == "create_only") w.mode = run_mode::create_only;
  else return false;
  return true;
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::invalid_argument("workload: cannot read " + path);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

}  // namespace

const char* to_string(key_distribution k) {
  switch (k) {
    case key_distribution::none: return "none";
    case key_distribution::round_robin: return "round-robin";
    case key_distribution::random: return "random";
    case key_distribution::zipf: return "zipf";
  }
  return "?";
}

const char* to_string(run_mode m) {
  switch (m) {
    case run_mode::produce_consume: return "produce-consume";
    case run_mode::produce_only: return "produce-only";
    case run_mode::consume_only: return "consume-only";
    case run_mode::create_only: return "create-only";
  }
  return "?";
}

std::vector<std::string> workload::topic_names() const {
  std::vector<std::string> out;
  if (topics == 1) {
    out.push_back(topic);
    return out;
  }
  out.reserve(topics);
  for (uint32_t i = 0; i < topics; ++i) out.push_back(topic + "-" + std::to_string(i));
  return out;
}

uint64_t parse_bytes(std::string_view text, std::string_view what) {
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  const std::string_view suffix = text.substr(digits);
  uint64_t mult = 1;
  if (suffix.empty() || suffix == "B") mult = 1;
  else if (suffix == "K" || suffix == "KB" || suffix == "KiB" || suffix == "k") mult = 1ull << 10;
  else if (suffix == "M" || suffix == "MB" || suffix == "MiB") mult = 1ull << 20;
  else if (suffix == "G" || suffix == "GB" || suffix == "GiB") mult = 1ull << 30;
  else fail(what, "expected bytes (digits with an optional K, M or G suffix), got \"" + std::string(text) + "\"");
  const uint64_t v = parse_u64(text.substr(0, digits), what, 0, (1ull << 50));
  return v * mult;
}

void set_setting(workload& w, std::string_view name, std::string_view value) {
  const setting* s = find_setting(name);
  if (s == nullptr) {
    std::string known;
    for (const auto& x : settings()) known += (known.empty() ? "" : ", ") + std::string(x.name);
    fail(name, "unknown setting (known: " + known + ")");
  }
  s->set(w, value);
}

void apply_yaml(workload& w, std::string_view yaml_text) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml_text));
  } catch (const YAML::Exception& e) {
    throw std::invalid_argument(std::string("workload: invalid YAML: ") + e.what());
  }
  if (root.IsNull()) return;
  if (!root.IsMap()) throw std::invalid_argument("workload: the file must be a YAML map of settings");
  for (const auto& kv : root) {
    const std::string key = kv.first.as<std::string>();
    const YAML::Node& v = kv.second;
    const std::string n = normalized(key);
    if (n == "producer_config" || n == "consumer_config" || n == "topic_config") {
      if (!v.IsMap()) fail(key, "expected a map of settings");
      for (const auto& c : v) {
        if (!c.second.IsScalar()) fail(key + "." + c.first.as<std::string>(), "expected a scalar");
        set_setting(w, n, c.first.as<std::string>() + "=" + c.second.as<std::string>());
      }
      continue;
    }
    if (!v.IsScalar()) fail(key, "expected a scalar value");
    set_setting(w, key, v.as<std::string>());
  }
}

bool parse_command_line(workload& w, std::span<const std::string> args) {
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "-h" || a == "--help") return false;
    if (a.size() < 3 || a.compare(0, 2, "--") != 0)
      throw std::invalid_argument("unexpected argument \"" + a + "\" (options are --NAME VALUE; see --help)");
    std::string name = a.substr(2);
    std::string value;
    bool has_value = false;
    if (const auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
      has_value = true;
    }
    if (!has_value && apply_flag(w, name)) continue;
    if (!has_value) {
      if (i + 1 >= args.size()) throw std::invalid_argument("--" + name + ": needs a value");
      value = args[++i];
    }
    if (name == "workload") {
      if (i != (has_value ? 0u : 1u))
        throw std::invalid_argument("--workload: must come first, so that the other options override the file");
      apply_yaml(w, read_file(value));
      continue;
    }
    try {
      set_setting(w, name, value);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(std::string("--") + e.what());
    }
  }
  check(w);
  return true;
}

void check(const workload& w) {
  const bool produce = w.mode == run_mode::produce_consume || w.mode == run_mode::produce_only;
  const bool consume = w.mode == run_mode::produce_consume || w.mode == run_mode::consume_only;
  const std::string mode = to_string(w.mode);
  if (produce && w.producers == 0) fail("producers", "the mode " + mode + " needs at least one");
  if (consume && w.consumers == 0) fail("consumers", "the mode " + mode + " needs at least one");
  if (w.keys == key_distribution::zipf && w.key_space < 2) fail("key_space", "zipf needs at least 2 keys");
  if (w.idempotence && w.acks != "all") fail("idempotence", "needs acks=all");
  // librdkafka 2.0.2's mock cluster answers a consumer's fetch at the end offset with OFFSET_OUT_OF_RANGE
  // and resets it, so nothing is consumed: the mock measures the producers' ceiling only.
  if (w.mock && w.mode != run_mode::produce_only && w.mode != run_mode::create_only)
    fail("mock", "measures producers only: add --produce-only");
  if (uint64_t{w.topics} * w.partitions > 1'000'000) fail("partitions", "topics x partitions above 1,000,000");
}

std::string help_text() {
  std::ostringstream o;
  o << "usage: sluice-bench [--workload FILE] [--NAME VALUE ...]\n"
       "\n"
       "Produces and consumes records through librdkafka and reports produce\n"
       "acknowledgement latency, end-to-end latency (a CLOCK_MONOTONIC send time in\n"
       "each record's first 8 bytes, read by the consumer: producers and consumers\n"
       "must run on one machine) and throughput, over the run after the warm-up and\n"
       "per second, as JSON. In the spirit of the OpenMessaging Benchmark.\n"
       "\n"
       "Every setting is a flag --NAME VALUE (or --NAME=VALUE) and a key of the\n"
       "YAML workload file (NAME with '_' for '-'); flags override the file.\n"
       "\n";
  const workload d;
  for (const auto& s : settings()) {
    std::string flag = std::string("--") + s.name;
    std::replace(flag.begin(), flag.end(), '_', '-');
    std::string left = flag + (s.value_name[0] ? std::string(" ") + s.value_name : "");
    o << "  " << left;
    if (left.size() < 30) o << std::string(30 - left.size(), ' ');
    else o << "\n" << std::string(32, ' ');
    o << s.help;
    const std::string def = s.show(d);
    if (!def.empty()) o << " (default " << def << ")";
    o << "\n";
  }
  o << "\n"
       "  --workload FILE               read settings from a YAML file first\n"
       "  --produce-only, --consume-only, --create-only\n"
       "                                shortcuts for --mode; consume-only reads from the\n"
       "                                earliest offset up to the end offsets seen at its\n"
       "                                start (a catch-up read) and stops there\n"
       "  --mock, --idempotence         the same as --mock true, --idempotence true\n"
       "  --no-create-topics            the same as --create-topics false\n"
       "\n"
       "Latencies are in microseconds; MB = 10^6 bytes of record values.\n"
       "Exit status: 0, 1 when the run failed (an error, no record acknowledged),\n"
       "2 for a usage error.\n";
  return o.str();
}

key_generator::key_generator(key_distribution dist, uint32_t key_space, double zipf_exponent, uint64_t seed)
    : _dist(dist), _space(key_space == 0 ? 1 : key_space), _rng(seed) {
  if (_dist == key_distribution::zipf) {
    _cdf.resize(_space);
    double sum = 0;
    for (uint32_t i = 0; i < _space; ++i) {
      sum += 1.0 / std::pow(static_cast<double>(i + 1), zipf_exponent);
      _cdf[i] = sum;
    }
    for (auto& c : _cdf) c /= sum;
  }
}

int64_t key_generator::next() {
  switch (_dist) {
    case key_distribution::none: return -1;
    case key_distribution::round_robin: return static_cast<int64_t>(_counter++ % _space);
    case key_distribution::random: return static_cast<int64_t>(_rng() % _space);
    case key_distribution::zipf: {
      const double u = std::uniform_real_distribution<double>(0.0, 1.0)(_rng);
      const auto it = std::lower_bound(_cdf.begin(), _cdf.end(), u);
      return std::min<int64_t>(it - _cdf.begin(), _space - 1);
    }
  }
  return -1;
}

std::string key_generator::key_text(int64_t index) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "k%08lld", static_cast<long long>(index));
  return buf;
}

}  // namespace sluice::bench
