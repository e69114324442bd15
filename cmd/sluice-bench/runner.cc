#include "runner.h"

#include "stats.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace sluice::bench {

namespace {

using nlohmann::json;

// CLOCK_MONOTONIC is one clock for every process on the machine: the
// producer's send time and the consumer's receive time compare directly.
uint64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(ts.tv_nsec);
}

void sleep_until(uint64_t t_ns) {
  timespec ts{static_cast<time_t>(t_ns / 1'000'000'000u), static_cast<long>(t_ns % 1'000'000'000u)};
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
  }
}

double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// Another process's CPU time (utime + stime, seconds) and memory (VmRSS and
// VmHWM, KiB) from /proc; all -1 when it cannot be read.
struct process_sample {
  double cpu_s = -1;
  int64_t rss_kb = -1, hwm_kb = -1;
};

process_sample sample_process(uint32_t pid) {
  process_sample s;
  if (pid == 0) return s;
  const std::string dir = "/proc/" + std::to_string(pid);
  if (FILE* f = std::fopen((dir + "/stat").c_str(), "r")) {
    char buf[2048];
    const size_t n = std::fread(buf, 1, sizeof buf - 1, f);
    std::fclose(f);
    buf[n] = '\0';
    // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
    if (const char* p = std::strrchr(buf, ')')) {
      unsigned long long utime = 0, stime = 0;
      if (std::sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) == 2)
        s.cpu_s = static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
    }
  }
  if (FILE* f = std::fopen((dir + "/status").c_str(), "r")) {
    char line[256];
    while (std::fgets(line, sizeof line, f)) {
      long long kb = 0;
      if (std::sscanf(line, "VmRSS: %lld", &kb) == 1) s.rss_kb = kb;
      if (std::sscanf(line, "VmHWM: %lld", &kb) == 1) s.hwm_kb = kb;
    }
    std::fclose(f);
  }
  return s;
}

// The measured window: [measure_start, measure_end), in one-second slots.
struct window {
  uint64_t t0 = 0, measure_start = 0, measure_end = 0;
  uint32_t slots = 1;
  int64_t second_of(uint64_t t) const {
    if (t < measure_start || t >= measure_end) return -1;
    return static_cast<int64_t>((t - measure_start) / 1'000'000'000u);
  }
};

struct shared_state {
  std::atomic<bool> stop_producing{false};
  std::atomic<bool> stop_consuming{false};
  std::atomic<uint64_t> sent{0}, acked{0}, consumed{0};
  std::atomic<uint64_t> last_ack_ns{0}, last_consume_ns{0};
  std::atomic<uint64_t> failures{0};
  std::atomic<bool> fatal{false};  // a producer or consumer thread gave up
  std::mutex error_mu;
  std::string first_error;

  void error(const std::string& e) {
    failures.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard<std::mutex> l(error_mu);
    if (first_error.empty()) first_error = e;
  }
};

void store_max(std::atomic<uint64_t>& a, uint64_t v) {
  uint64_t cur = a.load(std::memory_order_relaxed);
  while (cur < v && !a.compare_exchange_weak(cur, v, std::memory_order_relaxed)) {
  }
}

void conf_set(rd_kafka_conf_t* c, const std::string& k, const std::string& v) {
  char err[512];
  if (rd_kafka_conf_set(c, k.c_str(), v.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK)
    throw std::runtime_error("librdkafka setting " + k + "=" + v + ": " + err);
}

struct rk_deleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
};
using rk_ptr = std::unique_ptr<rd_kafka_t, rk_deleter>;

rk_ptr make_client(rd_kafka_type_t type, rd_kafka_conf_t* conf) {
  char err[512];
  rd_kafka_t* rk = rd_kafka_new(type, conf, err, sizeof err);
  if (rk == nullptr) {
    rd_kafka_conf_destroy(conf);
    throw std::runtime_error(std::string("rd_kafka_new: ") + err);
  }
  return rk_ptr(rk);
}

// ---- topics -------------------------------------------------------------------------

void create_topics(rd_kafka_t* rk, const workload& w) {
  const auto names = w.topic_names();
  constexpr size_t chunk = 500;
  for (size_t base = 0; base < names.size(); base += chunk) {
    const size_t n = std::min(chunk, names.size() - base);
    std::vector<rd_kafka_NewTopic_t*> topics;
    char err[512];
    for (size_t i = 0; i < n; ++i) {
      rd_kafka_NewTopic_t* t = rd_kafka_NewTopic_new(names[base + i].c_str(), static_cast<int>(w.partitions),
                                                     static_cast<int>(w.replication_factor), err, sizeof err);
      if (t == nullptr) throw std::runtime_error("topic " + names[base + i] + ": " + err);
      topics.push_back(t);
      for (const auto& [k, v] : w.topic_config)
        if (rd_kafka_NewTopic_set_config(t, k.c_str(), v.c_str()) != RD_KAFKA_RESP_ERR_NO_ERROR)
          throw std::runtime_error("topic config " + k + "=" + v + " refused by librdkafka");
    }
    rd_kafka_queue_t* q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t* opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_operation_timeout(opts, 30000, err, sizeof err);
    rd_kafka_CreateTopics(rk, topics.data(), topics.size(), opts, q);
    rd_kafka_event_t* ev = rd_kafka_queue_poll(q, 60000);
    std::string problem;
    if (ev == nullptr) {
      problem = "CreateTopics: no answer within 60 s";
    } else if (rd_kafka_event_error(ev)) {
      problem = std::string("CreateTopics: ") + rd_kafka_event_error_string(ev);
    } else {
      size_t cnt = 0;
      const rd_kafka_topic_result_t** res =
          rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &cnt);
      for (size_t i = 0; i < cnt && problem.empty(); ++i) {
        const rd_kafka_resp_err_t e = rd_kafka_topic_result_error(res[i]);
        const char* text = rd_kafka_topic_result_error_string(res[i]);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR && e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
          problem = std::string("CreateTopics ") + rd_kafka_topic_result_name(res[i]) + ": " + rd_kafka_err2name(e) +
                    " " + (text ? text : "");
      }
    }
    if (ev) rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(opts);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy_array(topics.data(), topics.size());
    if (!problem.empty()) throw std::runtime_error(problem);
  }
}

struct topic_partition {
  std::string topic;
  int32_t partition;
};

// Every partition of the workload's topics, from the cluster's metadata
// (waits up to 30 s for topics to appear).
std::vector<topic_partition> list_partitions(rd_kafka_t* rk, const workload& w) {
  const auto names = w.topic_names();
  const uint64_t deadline = now_ns() + 30'000'000'000u;
  std::string missing;
  for (;;) {
    const rd_kafka_metadata_t* md = nullptr;
    const rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 1, nullptr, &md, 10000);
    std::vector<topic_partition> out;
    missing.clear();
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
      for (const auto& name : names) {
        int found = -1;
        for (int i = 0; i < md->topic_cnt; ++i)
          if (name == md->topics[i].topic && md->topics[i].err == RD_KAFKA_RESP_ERR_NO_ERROR &&
              md->topics[i].partition_cnt > 0)
            found = i;
        if (found < 0) {
          missing = name;
          break;
        }
        for (int p = 0; p < md->topics[found].partition_cnt; ++p)
          out.push_back({name, md->topics[found].partitions[p].id});
      }
      rd_kafka_metadata_destroy(md);
      if (missing.empty()) return out;
    } else {
      missing = std::string("(metadata: ") + rd_kafka_err2str(e) + ")";
    }
    if (now_ns() > deadline) throw std::runtime_error("topic " + missing + " not in the cluster's metadata after 30 s");
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

// ---- producers and consumers ---------------------------------------------------------

// What a producer and a consumer thread share: the run's settings and state,
// the thread, and how it fails (the first error is kept and the run stops).
struct worker {
  const workload* w;
  const window* win;
  shared_state* st;
  uint32_t index;
  std::string bootstrap;
  const char* kind;  // "producer", "consumer"
  std::thread thread;

  worker(const workload* w_, const window* win_, shared_state* st_, uint32_t index_, std::string bootstrap_,
         const char* kind_)
      : w(w_), win(win_), st(st_), index(index_), bootstrap(std::move(bootstrap_)), kind(kind_) {}
  virtual ~worker() = default;
  virtual void loop() = 0;
  virtual void on_failure() {}

  void start() {
    thread = std::thread([this] {
      try {
        loop();
      } catch (const std::exception& e) {
        st->error(std::string(kind) + " " + std::to_string(index) + ": " + e.what());
        st->fatal = true;
        on_failure();
      }
    });
  }

  // The settings every client gets; `extra` (the workload's) go last, after the caller's.
  rd_kafka_conf_t* base_config() {
    rd_kafka_conf_t* c = rd_kafka_conf_new();
    conf_set(c, "bootstrap.servers", bootstrap);
    conf_set(c, "client.id", std::string("sluice-bench-") + kind + "-" + std::to_string(index));
    rd_kafka_conf_set_opaque(c, this);
    return c;
  }
  static rd_kafka_conf_t* with(rd_kafka_conf_t* c, const std::vector<std::pair<std::string, std::string>>& extra) {
    for (const auto& [k, v] : extra) conf_set(c, k, v);
    return c;
  }
};

struct producer : worker {
  series acks, sent;
  uint64_t schedule_lag_max_ns = 0;

  producer(const workload* w_, const window* win_, shared_state* st_, uint32_t i, std::string b, uint32_t slots)
      : worker(w_, win_, st_, i, std::move(b), "producer"), acks(slots), sent(slots) {}

  // Delivery reports are served by a thread of their own (poller), which
  // waits in rd_kafka_poll and runs on_delivery as soon as the broker
  // answers, whatever the producer thread is doing (sleeping until its next
  // send at a fixed rate, or waiting for queue space): the acknowledgement
  // latency has no wait of ours in it. Only the poller touches `acks`.
  static void on_delivery(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
    static_cast<producer*>(static_cast<worker*>(opaque))->delivered(m, now_ns());
  }

  void delivered(const rd_kafka_message_t* m, uint64_t now) {
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      st->error(std::string("delivery failed: ") + rd_kafka_err2name(m->err) + ": " + rd_kafka_err2str(m->err));
      return;
    }
    const auto sent_at = static_cast<uint64_t>(reinterpret_cast<uintptr_t>(m->_private));
    acks.record_latency(win->second_of(sent_at), now - sent_at);
    acks.count(win->second_of(now), m->len);
    st->acked.fetch_add(1, std::memory_order_relaxed);
    store_max(st->last_ack_ns, now);
  }

  rd_kafka_conf_t* config() {
    rd_kafka_conf_t* c = base_config();
    conf_set(c, "acks", w->acks);
    conf_set(c, "linger.ms", std::to_string(w->linger_ms));
    conf_set(c, "batch.size", std::to_string(w->batch_size));
    conf_set(c, "compression.codec", w->compression);
    conf_set(c, "enable.idempotence", w->idempotence ? "true" : "false");
    conf_set(c, "partitioner", "murmur2_random");  // Java's: the same key lands where a Java client puts it
    rd_kafka_conf_set_dr_msg_cb(c, &producer::on_delivery);
    return with(c, w->producer_config);
  }

  void loop() override {
    rk_ptr rk = make_client(RD_KAFKA_PRODUCER, config());
    std::atomic<bool> polling{true};
    std::thread poller([&] {
      while (polling.load(std::memory_order_relaxed)) rd_kafka_poll(rk.get(), 50);
    });
    struct stop_poller {
      std::atomic<bool>& flag;
      std::thread& t;
      ~stop_poller() {
        flag = false;
        t.join();
      }
    } stop{polling, poller};
    std::vector<rd_kafka_topic_t*> topics;
    for (const auto& name : w->topic_names()) topics.push_back(rd_kafka_topic_new(rk.get(), name.c_str(), nullptr));

    std::vector<char> payload(w->record_size);
    std::mt19937_64 rng(w->seed * 1000003u + index);
    for (auto& b : payload) b = static_cast<char>(rng());
    key_generator keys(w->keys, w->key_space, w->zipf_exponent, w->seed * 7919u + index);

    // A fixed rate: this producer's share, its sends spread evenly; a send
    // that is late goes at once (the lag is reported, not hidden).
    const double interval_ns = w->rate ? 1e9 * w->producers / static_cast<double>(w->rate) : 0.0;
    const uint64_t start = win->t0 + static_cast<uint64_t>(interval_ns * index / std::max(1u, w->producers));
    const uint64_t budget = w->produce_bytes ? (w->produce_bytes + w->producers - 1) / w->producers : 0;
    uint64_t n = 0, bytes = 0;
    while (!st->stop_producing.load(std::memory_order_relaxed)) {
      uint64_t now = now_ns();
      if (now >= win->measure_end || (budget && bytes >= budget)) break;
      if (interval_ns > 0) {
        const uint64_t due = start + static_cast<uint64_t>(interval_ns * static_cast<double>(n));
        if (now < due) {
          // Sleep, never spin: on a small machine a spinning client takes the
          // broker's CPU. Records that fell due meanwhile go out back to back.
          sleep_until(std::min(due, now + 100'000'000));
          continue;
        }
        schedule_lag_max_ns = std::max(schedule_lag_max_ns, now - due);
      }
      std::memcpy(payload.data(), &now, sizeof now);
      const int64_t k = keys.next();
      const std::string key = k >= 0 ? key_generator::key_text(k) : std::string();
      rd_kafka_topic_t* t = topics[n % topics.size()];
      if (rd_kafka_produce(t, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, payload.data(), payload.size(),
                           k >= 0 ? key.data() : nullptr, key.size(),
                           reinterpret_cast<void*>(static_cast<uintptr_t>(now))) != 0) {
        const rd_kafka_resp_err_t e = rd_kafka_last_error();
        if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
          sleep_until(now + 200'000);  // the client's queue is full: the broker is the bottleneck
          continue;
        }
        throw std::runtime_error(std::string("produce: ") + rd_kafka_err2str(e));
      }
      sent.count(win->second_of(now), payload.size());
      st->sent.fetch_add(1, std::memory_order_relaxed);
      ++n;
      bytes += payload.size();
    }
    // Everything sent is acknowledged (or failed) before the run ends.
    const uint64_t deadline = now_ns() + 60'000'000'000u;
    while (rd_kafka_outq_len(rk.get()) > 0 && now_ns() < deadline) sleep_until(now_ns() + 1'000'000);
    if (rd_kafka_outq_len(rk.get()) > 0)
      st->error("producer " + std::to_string(index) + ": " + std::to_string(rd_kafka_outq_len(rk.get())) +
                " records not acknowledged 60 s after the end");
    for (auto* t : topics) rd_kafka_topic_destroy(t);
  }
};

struct consumer : worker {
  std::string group;                     // empty: assigned by hand
  std::vector<topic_partition> assigned;  // the hand assignment
  series e2e, received;
  std::atomic<bool> ready{false};
  std::atomic<int> partitions{0};
  std::atomic<bool> started{false};  // window set: count from now on
  uint64_t errors = 0;

  consumer(const workload* w_, const window* win_, shared_state* st_, uint32_t i, std::string b, uint32_t slots)
      : worker(w_, win_, st_, i, std::move(b), "consumer"), e2e(slots), received(slots) {}

  static void on_rebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts,
                           void* opaque) {
    auto* c = static_cast<consumer*>(static_cast<worker*>(opaque));
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
      rd_kafka_assign(rk, parts);
      c->partitions = parts->cnt;
      c->ready = true;
    } else {
      rd_kafka_assign(rk, nullptr);
      c->partitions = 0;
    }
  }

  rd_kafka_conf_t* config() {
    const bool catch_up = w->mode == run_mode::consume_only;
    rd_kafka_conf_t* c = base_config();
    // librdkafka wants a group.id even for a hand assignment (which joins no group).
    conf_set(c, "group.id", group.empty() ? "sluice-bench-assign-" + std::to_string(getpid()) : group);
    conf_set(c, "enable.auto.commit", group.empty() ? "false" : "true");
    conf_set(c, "auto.offset.reset", catch_up ? "earliest" : "latest");
    conf_set(c, "fetch.wait.max.ms", std::to_string(w->fetch_wait_max_ms));
    if (!group.empty()) rd_kafka_conf_set_rebalance_cb(c, &consumer::on_rebalance);
    return with(c, w->consumer_config);
  }

  void on_failure() override { ready = true; }

  void loop() override {
    const bool catch_up = w->mode == run_mode::consume_only;
    rk_ptr rk = make_client(RD_KAFKA_CONSUMER, config());
    rd_kafka_poll_set_consumer(rk.get());
    if (!group.empty()) {
      rd_kafka_topic_partition_list_t* subs = rd_kafka_topic_partition_list_new(static_cast<int>(w->topics));
      for (const auto& name : w->topic_names())
        rd_kafka_topic_partition_list_add(subs, name.c_str(), RD_KAFKA_PARTITION_UA);
      const rd_kafka_resp_err_t e = rd_kafka_subscribe(rk.get(), subs);
      rd_kafka_topic_partition_list_destroy(subs);
      if (e != RD_KAFKA_RESP_ERR_NO_ERROR) throw std::runtime_error(std::string("subscribe: ") + rd_kafka_err2str(e));
    } else {
      rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(static_cast<int>(assigned.size()));
      for (const auto& tp : assigned)
        rd_kafka_topic_partition_list_add(list, tp.topic.c_str(), tp.partition)->offset =
            catch_up ? RD_KAFKA_OFFSET_BEGINNING : RD_KAFKA_OFFSET_END;
      const rd_kafka_resp_err_t e = rd_kafka_assign(rk.get(), list);
      rd_kafka_topic_partition_list_destroy(list);
      if (e != RD_KAFKA_RESP_ERR_NO_ERROR) throw std::runtime_error(std::string("assign: ") + rd_kafka_err2str(e));
      partitions = static_cast<int>(assigned.size());
      ready = true;
    }
    while (!st->stop_consuming.load(std::memory_order_relaxed)) {
      rd_kafka_message_t* m = rd_kafka_consumer_poll(rk.get(), 100);
      if (m == nullptr) continue;
      if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
          ++errors;
          if (errors <= 5)
            std::fprintf(stderr, "sluice-bench: consumer %u: %s\n", index, rd_kafka_message_errstr(m));
        }
        rd_kafka_message_destroy(m);
        continue;
      }
      const uint64_t now = now_ns();
      if (started.load(std::memory_order_acquire)) {
        if (!catch_up && m->len >= sizeof(uint64_t)) {
          uint64_t sent_at = 0;
          std::memcpy(&sent_at, m->payload, sizeof sent_at);
          if (sent_at <= now) e2e.record_latency(win->second_of(sent_at), now - sent_at);
        }
        received.count(win->second_of(now), m->len);
      }
      st->consumed.fetch_add(1, std::memory_order_relaxed);
      store_max(st->last_consume_ns, now);
      rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk.get());
  }
};

json config_json(const std::vector<std::pair<std::string, std::string>>& kv) {
  json o = json::object();
  for (const auto& [k, v] : kv) o[k] = v;
  return o;
}

}  // namespace

json workload_json(const workload& w) {
  return {{"name", w.name},
          {"bootstrap", w.bootstrap},
          {"topic", w.topic},
          {"topics", w.topics},
          {"partitions", w.partitions},
          {"replication_factor", w.replication_factor},
          {"record_size", w.record_size},
          {"key_distribution", to_string(w.keys)},
          {"key_space", w.key_space},
          {"zipf_exponent", w.zipf_exponent},
          {"producers", w.producers},
          {"rate", w.rate},
          {"acks", w.acks},
          {"linger_ms", w.linger_ms},
          {"batch_size", w.batch_size},
          {"compression", w.compression},
          {"idempotence", w.idempotence},
          {"produce_bytes", w.produce_bytes},
          {"consumers", w.consumers},
          {"consumer_group", w.consumer_group},
          {"fetch_wait_max_ms", w.fetch_wait_max_ms},
          {"duration", w.duration},
          {"warmup", w.warmup},
          {"mode", to_string(w.mode)},
          {"mock", w.mock},
          {"topic_config", config_json(w.topic_config)},
          {"seed", w.seed},
          {"producer_config", config_json(w.producer_config)},
          {"consumer_config", config_json(w.consumer_config)}};
}

json run_workload(const workload& w) {
  const bool produce = w.mode == run_mode::produce_consume || w.mode == run_mode::produce_only;
  const bool consume = w.mode == run_mode::produce_consume || w.mode == run_mode::consume_only;
  json result = {{"tool", "sluice-bench"}, {"format", 1}, {"librdkafka", rd_kafka_version_str()},
                 {"workload", workload_json(w)}};

  // An admin handle: topics, metadata, watermarks; with --mock it owns the mock cluster.
  rd_kafka_conf_t* ac = rd_kafka_conf_new();
  if (w.mock) {
    conf_set(ac, "test.mock.num.brokers", std::to_string(w.mock_brokers));
  } else {
    conf_set(ac, "bootstrap.servers", w.bootstrap);
  }
  conf_set(ac, "client.id", "sluice-bench-admin");
  rk_ptr admin = make_client(RD_KAFKA_PRODUCER, ac);
  std::string bootstrap = w.bootstrap;
  if (w.mock) {
    rd_kafka_mock_cluster_t* mc = rd_kafka_handle_mock_cluster(admin.get());
    if (mc == nullptr) throw std::runtime_error("librdkafka did not create a mock cluster");
    bootstrap = rd_kafka_mock_cluster_bootstraps(mc);
    for (const auto& name : w.topic_names()) {
      const rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(mc, name.c_str(), static_cast<int>(w.partitions),
                                                               static_cast<int>(w.replication_factor));
      if (e != RD_KAFKA_RESP_ERR_NO_ERROR) throw std::runtime_error("mock topic " + name + ": " + rd_kafka_err2str(e));
    }
  } else if (w.create_topics) {
    create_topics(admin.get(), w);
  }
  const std::vector<topic_partition> parts = list_partitions(admin.get(), w);
  result["bootstrap"] = bootstrap;
  result["partitions_total"] = parts.size();
  if (w.mode == run_mode::create_only) {
    result["ok"] = true;
    std::fprintf(stderr, "sluice-bench: %u topic(s), %zu partition(s) ready\n", w.topics, parts.size());
    return result;
  }

  // A catch-up read stops at the end offsets seen now.
  uint64_t catch_up_target = 0;
  if (w.mode == run_mode::consume_only) {
    for (const auto& tp : parts) {
      int64_t lo = 0, hi = 0;
      const rd_kafka_resp_err_t e =
          rd_kafka_query_watermark_offsets(admin.get(), tp.topic.c_str(), tp.partition, &lo, &hi, 10000);
      if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
        throw std::runtime_error("watermarks of " + tp.topic + "/" + std::to_string(tp.partition) + ": " +
                                 rd_kafka_err2str(e));
      catch_up_target += static_cast<uint64_t>(hi - lo);
    }
    result["catch_up_records"] = catch_up_target;
    if (catch_up_target == 0) throw std::runtime_error("consume-only: the topics hold no records");
  }

  shared_state st;
  window win;
  win.slots = static_cast<uint32_t>(std::ceil(w.duration));
  std::string group = w.consumer_group.empty() ? "sluice-bench-" + std::to_string(getpid()) : w.consumer_group;
  if (group == "-") group.clear();

  std::vector<std::unique_ptr<consumer>> consumers;
  if (consume) {
    for (uint32_t i = 0; i < w.consumers; ++i) {
      auto c = std::make_unique<consumer>(&w, &win, &st, i, bootstrap, win.slots);
      c->group = group;
      if (group.empty())
        for (size_t p = i; p < parts.size(); p += w.consumers) c->assigned.push_back(parts[p]);
      consumers.push_back(std::move(c));
    }
    for (auto& c : consumers) c->start();
    // Producers start once every consumer has its partitions (a group's first rebalance).
    const uint64_t deadline = now_ns() + 60'000'000'000u;
    for (;;) {
      int assigned = 0;
      bool all = true;
      for (auto& c : consumers) {
        all = all && c->ready.load();
        assigned += c->partitions.load();
      }
      if (all && static_cast<size_t>(assigned) >= parts.size()) break;
      if (now_ns() > deadline) {
        std::fprintf(stderr, "sluice-bench: warning: consumers hold %d of %zu partitions after 60 s; starting anyway\n",
                     assigned, parts.size());
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (!group.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(500));  // positions fetched
  }

  win.t0 = now_ns();
  win.measure_start = win.t0 + static_cast<uint64_t>(w.warmup * 1e9);
  win.measure_end = win.measure_start + static_cast<uint64_t>(w.duration * 1e9);
  for (auto& c : consumers) c->started.store(true, std::memory_order_release);

  std::vector<std::unique_ptr<producer>> producers;
  if (produce) {
    for (uint32_t i = 0; i < w.producers; ++i)
      producers.push_back(std::make_unique<producer>(&w, &win, &st, i, bootstrap, win.slots));
    for (auto& p : producers) p->start();
  }

  // Progress, and the client's CPU time over the measured window.
  double cpu_start = -1, cpu_end = -1;
  process_sample watched_start, watched_end;
  uint64_t last_print = win.t0, last_sent = 0, last_acked = 0, last_consumed = 0;
  uint64_t finished_at = 0;  // produce_bytes reached or catch-up done before the window's end
  for (;;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    const uint64_t now = now_ns();
    if (cpu_start < 0 && now >= win.measure_start) {
      cpu_start = cpu_seconds();
      watched_start = sample_process(w.watch_pid);
    }
    if (now - last_print >= 1'000'000'000u) {
      const double dt = static_cast<double>(now - last_print) / 1e9;
      const uint64_t s = st.sent.load(), a = st.acked.load(), c = st.consumed.load();
      std::fprintf(stderr, "sluice-bench: %6.1f s%s  sent %9.0f/s  acked %9.0f/s  consumed %9.0f/s\n",
                   static_cast<double>(now - win.t0) / 1e9, now < win.measure_start ? " (warm-up)" : "",
                   static_cast<double>(s - last_sent) / dt, static_cast<double>(a - last_acked) / dt,
                   static_cast<double>(c - last_consumed) / dt);
      last_print = now;
      last_sent = s;
      last_acked = a;
      last_consumed = c;
    }
    if (now >= win.measure_end) break;
    if (w.mode == run_mode::consume_only && st.consumed.load() >= catch_up_target) {
      finished_at = st.last_consume_ns.load();
      break;
    }
    if (produce && w.produce_bytes && st.sent.load() * w.record_size >= w.produce_bytes &&
        st.acked.load() + st.failures.load() >= st.sent.load()) {
      finished_at = st.last_ack_ns.load();
      break;
    }
    if (st.fatal.load()) break;  // a thread gave up: stop the others
  }
  cpu_end = cpu_seconds();
  watched_end = sample_process(w.watch_pid);
  if (cpu_start < 0) {
    cpu_start = cpu_end;
    watched_start = watched_end;
  }
  const uint64_t cpu_window_end = now_ns();

  st.stop_producing = true;
  for (auto& p : producers) p->thread.join();
  if (consume && produce) {
    // Let the consumers read what was acknowledged (their e2e latency counts by send time).
    const uint64_t deadline = now_ns() + static_cast<uint64_t>(w.drain * 1e9);
    uint64_t last = st.consumed.load(), last_change = now_ns();
    while (st.consumed.load() < st.acked.load() && now_ns() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      if (st.consumed.load() != last) {
        last = st.consumed.load();
        last_change = now_ns();
      } else if (now_ns() - last_change > 3'000'000'000u) {
        break;
      }
    }
  }
  st.stop_consuming = true;
  for (auto& c : consumers) c->thread.join();

  // Merge and report.
  const uint64_t measure_stop = finished_at && finished_at < win.measure_end ? std::max(finished_at, win.measure_start)
                                                                               : win.measure_end;
  const double measured = static_cast<double>(measure_stop - win.measure_start) / 1e9;
  const uint32_t full = std::min(win.slots, static_cast<uint32_t>(measured + 1e-9));
  result["measured_seconds"] = std::round(measured * 1000.0) / 1000.0;
  const double wall = static_cast<double>(cpu_window_end - win.measure_start) / 1e9;
  result["client_cpu"] = {{"seconds", std::round((cpu_end - cpu_start) * 1000.0) / 1000.0},
                          {"cores", wall > 0 ? std::round((cpu_end - cpu_start) / wall * 1000.0) / 1000.0 : 0.0}};
  if (w.watch_pid != 0) {
    const bool known = watched_end.cpu_s >= 0 && watched_start.cpu_s >= 0;
    const double cpu = known ? watched_end.cpu_s - watched_start.cpu_s : -1;
    result["watched"] = {{"pid", w.watch_pid},
                         {"cpu_seconds", std::round(cpu * 1000.0) / 1000.0},
                         {"cores", wall > 0 && cpu >= 0 ? std::round(cpu / wall * 1000.0) / 1000.0 : -1.0},
                         {"rss_kb_start", watched_start.rss_kb},
                         {"rss_kb_end", watched_end.rss_kb},
                         {"hwm_kb", watched_end.hwm_kb}};
  }
  bool ok = st.failures.load() == 0;
  if (produce) {
    series acks(win.slots), sent(win.slots);
    uint64_t lag = 0;
    for (auto& p : producers) {
      acks.merge(p->acks);
      sent.merge(p->sent);
      lag = std::max(lag, p->schedule_lag_max_ns);
    }
    json pj = throughput_json(acks, measured, full);
    pj["sent_records_per_sec"] = std::round(static_cast<double>(sent.records()) / std::max(measured, 1e-9));
    pj["ack_latency_us"] = to_json(summarize(acks.latency()));
    if (w.rate) {
      pj["target_records_per_sec"] = w.rate;
      pj["schedule_lag_max_ms"] = std::round(static_cast<double>(lag) / 1e4) / 100.0;
    }
    pj["per_second"] = per_second_json(acks, full);
    result["produce"] = pj;
    ok = ok && acks.records() > 0;
  }
  if (consume) {
    series e2e(win.slots), received(win.slots);
    uint64_t errors = 0;
    for (auto& c : consumers) {
      e2e.merge(c->e2e);
      received.merge(c->received);
      errors += c->errors;
    }
    json cj = throughput_json(received, measured, full);
    cj["errors"] = errors;
    if (produce) cj["e2e_latency_us"] = to_json(summarize(e2e.latency()));
    if (w.mode == run_mode::consume_only) cj["complete"] = st.consumed.load() >= catch_up_target;
    json ps = per_second_json(received, full);
    if (produce) {
      const json lat = per_second_json(e2e, full);
      for (size_t i = 0; i < ps.size() && i < lat.size(); ++i) {
        if (lat[i].contains("latency_us")) ps[i]["latency_us"] = lat[i]["latency_us"];
      }
    }
    cj["per_second"] = ps;
    result["consume"] = cj;
    ok = ok && received.records() > 0;
  }
  result["failures"] = st.failures.load();
  if (!st.first_error.empty()) result["first_error"] = st.first_error;
  result["ok"] = ok;
  return result;
}

}  // namespace sluice::bench
