// sluice-core-bench: throughput and latency of the core executor.
//
//   channel  cross-shard request/response over the typed channels: every
//            shard runs C caller coroutines, each calling an echo service on
//            the next shard ((i + 1) % N) with one call outstanding.
//   echo     io_uring TCP echo over loopback: every shard listens on the
//            same port (SO_REUSEPORT) and runs its share of C client
//            connections, each with one B-byte message outstanding.
//
// Both run a warm-up, then measure for a fixed time: a round trip counts
// when it completes inside the window, and its latency (sdk::now_ns() around
// the call) goes into a per-shard log-linear histogram (1.6% resolution),
// merged after the shards stopped. Clients and servers share the shards,
// so on a small machine the load generator competes with what it measures.
//
// Output: one human-readable line and one JSON line (--json: only JSON).
// Not a test: scripts/bench-core.sh runs it and writes docs/benchmarks/core.md.
#include "core/executor/executor.h"

#include <sluice/sdk/net.h>
#include <sluice/sdk/runtime.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <cinttypes>
#include "bench_util.h"
#include "latency_histogram.h"

#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

using namespace sluice;

using bench::latency_histogram;

// ---- parameters --------------------------------------------------------------

struct params {
  std::string mode;
  uint32_t shards = 0;  // 0: one per CPU
  double seconds = 5.0;
  double warmup = 1.0;
  bool pin = true;
  uint32_t idle_poll_us = 0;
  bool json = false;
  // channel
  uint32_t concurrency = 1;
  uint32_t capacity = 1024;
  uint32_t payload = 32;
  // echo
  uint32_t connections = 64;
  uint32_t size = 100;
};

void print_help(FILE* out) {
  std::fprintf(out,
               "usage: sluice-core-bench channel [options]\n"
               "       sluice-core-bench echo [options]\n"
               "\n"
               "channel: cross-shard request/response over the executor's channels. Every\n"
               "  shard runs C caller coroutines calling an echo service on shard (i+1)%%N,\n"
               "  one call outstanding each (--concurrency 1: pure ping-pong).\n"
               "  --concurrency C   callers per shard (default 1)\n"
               "  --capacity K      channel capacity per shard pair (default 1024)\n"
               "  --payload B       request/reply bytes (default 32; <= 48 travel inline)\n"
               "\n"
               "echo: io_uring TCP echo on 127.0.0.1. Every shard listens on the same port\n"
               "  (SO_REUSEPORT); C client connections, split across the shards and run on\n"
               "  them, each send B bytes and wait for the echo, one message outstanding.\n"
               "  --connections C   client connections in total (default 64)\n"
               "  --size B          message bytes (default 100)\n"
               "\n"
               "common:\n"
               "  --shards N        shards (default: one per CPU)\n"
               "  --seconds S       measured time (default 5)\n"
               "  --warmup S        warm-up before measuring (default 1)\n"
               "  --no-pin          do not pin shard threads to CPUs (pinned by default)\n"
               "  --idle-poll-us N  shards spin N us for messages before sleeping (default 0)\n"
               "  --json            print only the one-line JSON result\n"
               "  --help            this text\n"
               "\n"
               "Prints a human-readable line and a one-line JSON object; latencies are\n"
               "round trips in microseconds. Exits 1 when any round trip failed.\n");
}

using bench::parse_seconds;
using bench::parse_u32;

// Returns 0 to run, 1 on a usage error, 2 after --help.
int parse_args(int argc, char** argv, params& p) {
  if (argc < 2) {
    print_help(stderr);
    return 1;
  }
  const std::string_view first = argv[1];
  if (first == "--help" || first == "-h" || first == "help") {
    print_help(stdout);
    return 2;
  }
  if (first != "channel" && first != "echo") {
    std::fprintf(stderr, "sluice-core-bench: unknown benchmark '%s' (channel or echo; see --help)\n", argv[1]);
    return 1;
  }
  p.mode = first;
  const bool channel = p.mode == "channel";
  for (int i = 2; i < argc; ++i) {
    const std::string_view a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : nullptr;
    bool ok = true;
    bool takes_value = true;
    if (a == "--help" || a == "-h") {
      print_help(stdout);
      return 2;
    } else if (a == "--json") {
      p.json = true;
      takes_value = false;
    } else if (a == "--no-pin") {
      p.pin = false;
      takes_value = false;
    } else if (a == "--idle-poll-us") {
      ok = parse_u32(v, 0, 1'000'000, p.idle_poll_us);
    } else if (a == "--shards") {
      ok = parse_u32(v, 1, 1024, p.shards);
    } else if (a == "--seconds") {
      ok = parse_seconds(v, 0.1, p.seconds);
    } else if (a == "--warmup") {
      ok = parse_seconds(v, 0.0, p.warmup);
    } else if (channel && a == "--concurrency") {
      ok = parse_u32(v, 1, 100000, p.concurrency);
    } else if (channel && a == "--capacity") {
      ok = parse_u32(v, 1, 1u << 24, p.capacity);
    } else if (channel && a == "--payload") {
      ok = parse_u32(v, 0, 1u << 20, p.payload);
    } else if (!channel && a == "--connections") {
      ok = parse_u32(v, 1, 20000, p.connections);
    } else if (!channel && a == "--size") {
      ok = parse_u32(v, 1, 1u << 20, p.size);
    } else {
      std::fprintf(stderr, "sluice-core-bench %s: unknown option '%s' (see --help)\n", p.mode.c_str(), argv[i]);
      return 1;
    }
    if (!ok) {
      std::fprintf(stderr, "sluice-core-bench %s: bad or missing value for %s: '%s' (see --help)\n",
                   p.mode.c_str(), argv[i], v ? v : "");
      return 1;
    }
    if (takes_value) ++i;
  }
  return 0;
}

uint64_t to_ns(double seconds) { return static_cast<uint64_t>(seconds * 1e9); }

// ---- shared measurement state ------------------------------------------------

// The measurement window, on the CLOCK_MONOTONIC of sdk::now_ns(). Written
// by shard 0 before it starts the other shards' work (the channel message
// that carries the start orders the write before their reads).
struct window {
  uint64_t start_ns = 0;
  uint64_t end_ns = 0;
};

// What one shard measured. Touched only by its shard until join().
struct shard_result {
  latency_histogram hist;
  uint64_t completed = 0;  // round trips completed inside the window
  uint64_t errors = 0;
  std::string first_error;

  void fail(std::string what) {
    if (errors++ == 0) first_error = std::move(what);
  }
  // Accounts one round trip that took [t0, t1]; false once the window ended.
  bool account(const window& w, uint64_t t0, uint64_t t1) noexcept {
    if (t1 >= w.end_ns) return false;
    if (t1 >= w.start_ns) {
      ++completed;
      hist.record(t1 - t0);
    }
    return true;
  }
};

struct totals {
  latency_histogram hist;
  uint64_t completed = 0;
  uint64_t errors = 0;
  std::string first_error;
};

totals merge(const std::vector<shard_result*>& shards) {
  totals t;
  for (const shard_result* r : shards) {
    t.hist.merge(r->hist);
    t.completed += r->completed;
    if (r->errors && t.errors == 0) t.first_error = r->first_error;
    t.errors += r->errors;
  }
  return t;
}

double us(uint64_t ns) { return static_cast<double>(ns) / 1000.0; }

executor::options executor_options(const params& p) {
  executor::options o;
  o.shards = p.shards;
  o.pin_threads = p.pin;
  o.idle_poll_us = p.idle_poll_us;
  o.channel_capacity = p.capacity;
  return o;
}

// ---- channel -----------------------------------------------------------------

// The service: answers with the request's bytes (respond copies them).
void echo_service(void*, uint32_t, const sluice_message* req, sluice_responder* r) {
  sdk::api().respond(sdk::host(), r, 0, req);
}

struct channel_run {
  executor::executor* exec = nullptr;
  int32_t service = -1;
  const params* p = nullptr;
  window w;
  std::vector<std::unique_ptr<shard_result>> results;  // one per shard
  std::atomic<uint32_t> running{0};                   // shards whose callers still run
};

sdk::task<void> channel_caller(channel_run& run, shard_result& res, uint32_t target, sdk::gate::holder) {
  sdk::message req;
  req.type = 1;
  req.bytes.assign(run.p->payload, 'x');
  for (;;) {
    const uint64_t t0 = sdk::now_ns();
    sdk::reply rep = co_await sdk::call(run.service, target, req);
    const uint64_t t1 = sdk::now_ns();
    if (rep.status != 0) {
      res.fail("call to shard " + std::to_string(target) + " failed with status " + std::to_string(rep.status));
      break;
    }
    if (rep.msg.bytes.size() != req.bytes.size()) {
      res.fail("reply of " + std::to_string(rep.msg.bytes.size()) + " bytes, expected " +
               std::to_string(req.bytes.size()));
      break;
    }
    if (!res.account(run.w, t0, t1)) break;
  }
}

sdk::task<void> channel_shard(channel_run& run) {
  const uint32_t me = sdk::this_shard();
  const uint32_t target = (me + 1) % sdk::shard_count();
  shard_result& res = *run.results[me];
  {
    sdk::gate callers;
    for (uint32_t c = 0; c < run.p->concurrency; ++c)
      sdk::spawn(channel_caller(run, res, target, callers.try_enter()));
    co_await callers.close();
  }
  // Every caller got its last reply, so nothing is in flight any more: the
  // last shard to finish stops them all (services keep serving till then).
  if (run.running.fetch_sub(1, std::memory_order_acq_rel) == 1) run.exec->request_exit();
}

sdk::task<int32_t> start_channel_shard(channel_run& run) {
  sdk::spawn(channel_shard(run));
  co_return 0;
}

sdk::task<void> channel_main(channel_run& run) {
  const uint64_t now = sdk::now_ns();
  run.w.start_ns = now + to_ns(run.p->warmup);
  run.w.end_ns = run.w.start_ns + to_ns(run.p->seconds);
  // Last shard first: the start messages then never compete with shard 0's
  // callers for the credits of the channel 0 -> 1.
  for (uint32_t i = run.exec->shard_count(); i-- > 0;) {
    const int32_t rc = co_await run.exec->submit_to(i, [&run] { return start_channel_shard(run); });
    SLUICE_ASSERT_MSG(rc == 0, "could not start the callers on a shard");
  }
}

// ---- echo --------------------------------------------------------------------

using sdk::loopback;
uint16_t port_of(int fd) { return sdk::local_address(fd).port(); }

void set_nodelay(int fd) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

std::string errno_text(int32_t rc) { return rc < 0 ? std::strerror(-rc) : "connection closed"; }

// One shard's server and clients. Touched only by its shard until join().
struct echo_shard {
  int32_t listen_fd = -1;
  sdk::abort_source stop;
  sdk::gate accepting;
  sdk::gate conns;
  uint64_t accepted = 0;
  shard_result res;
};

struct echo_run {
  executor::executor* exec = nullptr;
  const params* p = nullptr;
  window w;
  uint16_t port = 0;
  std::string setup_error;  // written on shard 0 only
  std::vector<std::unique_ptr<echo_shard>> shards;
};

constexpr uint64_t server_buffer_bytes = 64 * 1024;

// Echoes what the connection sends until it closes or the server stops.
sdk::task<void> serve_connection(int32_t fd, echo_shard& st, sdk::gate::holder) {
  std::unique_ptr<char[]> buf(new char[server_buffer_bytes]);
  for (;;) {
    const int32_t n = co_await sdk::recv(fd, buf.get(), server_buffer_bytes, &st.stop);
    if (n <= 0) break;
    int32_t off = 0;
    while (off < n) {
      const int32_t w = co_await sdk::send(fd, buf.get() + off, static_cast<uint64_t>(n - off));
      if (w <= 0) break;
      off += w;
    }
    if (off < n) break;
  }
  co_await sdk::close(fd);
}

sdk::task<void> accept_loop(echo_shard& st, sdk::gate::holder) {
  for (;;) {
    const int32_t fd = co_await sdk::accept(st.listen_fd, &st.stop);
    if (fd < 0) {
      if (fd != -ECANCELED) st.res.fail(std::string("accept failed: ") + std::strerror(-fd));
      break;
    }
    auto h = st.conns.try_enter();
    if (!h) {
      co_await sdk::close(fd);
      break;
    }
    set_nodelay(fd);
    ++st.accepted;
    sdk::spawn(serve_connection(fd, st, std::move(h)));
  }
}

// On each shard: listen (shard 0 already did, on port 0), start accepting.
sdk::task<int32_t> start_server(echo_run& run) {
  echo_shard& st = *run.shards[sdk::this_shard()];
  if (st.listen_fd < 0) {
    const sdk::socket_address addr = loopback(run.port);
    st.listen_fd = sdk::api().tcp_listen(sdk::host(), addr.get(), addr.len, 1024, 1);
    if (st.listen_fd < 0) co_return st.listen_fd;
  }
  sdk::spawn(accept_loop(st, st.accepting.try_enter()));
  co_return 0;
}

// On each shard: cancel the accept and idle reads, wait for the connections.
sdk::task<int32_t> stop_server(echo_run& run) {
  echo_shard& st = *run.shards[sdk::this_shard()];
  st.stop.request_abort();
  if (!st.accepting.is_closed()) co_await st.accepting.close();
  if (!st.conns.is_closed()) co_await st.conns.close();
  if (st.listen_fd >= 0) co_await sdk::close(std::exchange(st.listen_fd, -1));
  co_return 0;
}

// One client connection: B bytes out, B bytes back, until the window ends.
sdk::task<void> echo_client(echo_run& run, shard_result& res, sdk::gate::holder) {
  const uint64_t size = run.p->size;
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    res.fail(std::string("socket failed: ") + std::strerror(errno));
    co_return;
  }
  set_nodelay(fd);
  const sdk::socket_address addr = loopback(run.port);
  const int32_t rc = co_await sdk::connect(fd, addr.get(), addr.len);
  if (rc != 0) {
    res.fail("connect to 127.0.0.1:" + std::to_string(run.port) + " failed: " + errno_text(rc));
    co_await sdk::close(fd);
    co_return;
  }
  std::vector<char> out(size), in(size);
  for (uint64_t i = 0; i < size; ++i) out[i] = static_cast<char>('a' + i % 26);
  for (bool running = true; running;) {
    const uint64_t t0 = sdk::now_ns();
    int32_t last = 0;
    uint64_t sent = 0;
    while (sent < size) {
      last = co_await sdk::send(fd, out.data() + sent, size - sent);
      if (last <= 0) break;
      sent += static_cast<uint64_t>(last);
    }
    uint64_t got = 0;
    while (sent == size && got < size) {
      last = co_await sdk::recv(fd, in.data() + got, size - got);
      if (last <= 0) break;
      got += static_cast<uint64_t>(last);
    }
    const uint64_t t1 = sdk::now_ns();
    if (got != size) {
      res.fail(std::string(sent < size ? "send" : "recv") + " failed: " + errno_text(last));
      break;
    }
    if (in.front() != out.front() || in.back() != out.back()) {
      res.fail("echo returned different bytes");
      break;
    }
    running = res.account(run.w, t0, t1);
  }
  co_await sdk::close(fd);
}

sdk::task<int32_t> run_clients(echo_run& run, uint32_t count) {
  echo_shard& st = *run.shards[sdk::this_shard()];
  sdk::gate clients;
  for (uint32_t i = 0; i < count; ++i) sdk::spawn(echo_client(run, st.res, clients.try_enter()));
  co_await clients.close();
  co_return 0;
}

sdk::task<void> clients_on(echo_run& run, uint32_t shard, uint32_t count, sdk::gate::holder) {
  co_await run.exec->submit_to(shard, [&run, count] { return run_clients(run, count); });
}

sdk::task<void> echo_main(echo_run& run) {
  const uint32_t n = run.exec->shard_count();
  // Shard 0 lets the kernel pick a free port; the others join it.
  const sdk::socket_address any = loopback(0);
  const int32_t lfd = sdk::api().tcp_listen(sdk::host(), any.get(), any.len, 1024, 1);
  if (lfd < 0) {
    run.setup_error = std::string("cannot listen on 127.0.0.1: ") + std::strerror(-lfd);
    run.exec->request_exit();
    co_return;
  }
  run.port = port_of(lfd);
  run.shards[0]->listen_fd = lfd;
  uint32_t started = 0;
  for (; started < n; ++started) {
    const int32_t rc = co_await run.exec->submit_to(started, [&run] { return start_server(run); });
    if (rc < 0) {
      run.setup_error = "shard " + std::to_string(started) + " cannot listen on 127.0.0.1:" +
                        std::to_string(run.port) + ": " + std::strerror(-rc);
      break;
    }
  }
  if (started == n) {
    const uint64_t now = sdk::now_ns();
    run.w.start_ns = now + to_ns(run.p->warmup);
    run.w.end_ns = run.w.start_ns + to_ns(run.p->seconds);
    sdk::gate all;
    const uint32_t c = run.p->connections;
    for (uint32_t i = 0; i < n; ++i) {
      const uint32_t count = c / n + (i < c % n ? 1 : 0);
      if (count) sdk::spawn(clients_on(run, i, count, all.try_enter()));
    }
    co_await all.close();
  }
  for (uint32_t i = 0; i < n; ++i) co_await run.exec->submit_to(i, [&run] { return stop_server(run); });
  run.exec->request_exit();
}

// ---- reporting ---------------------------------------------------------------

struct report {
  std::string human;
  std::string json;
};

using bench::fmt;
using bench::json_string;

void print(const params& p, const report& r, const totals& t) {
  std::string json = r.json;
  if (t.errors) {  // name the first failure in the JSON too
    json.pop_back();
    json += ",\"first_error\":" + json_string(t.first_error) + "}";
  }
  if (!p.json) std::printf("%s\n", r.human.c_str());
  std::printf("%s\n", json.c_str());
  std::fflush(stdout);
}

int run_channel(const params& p) {
  channel_run run;
  run.p = &p;
  executor::executor exec(executor_options(p));
  run.exec = &exec;
  const uint32_t n = exec.shard_count();
  for (uint32_t i = 0; i < n; ++i) run.results.push_back(std::make_unique<shard_result>());
  run.running.store(n);
  auto svc = exec.add_service("bench.echo", &echo_service, nullptr);
  if (!svc) {
    std::fprintf(stderr, "sluice-core-bench: %s\n", svc.err().message.c_str());
    return 1;
  }
  run.service = svc.value();
  auto started = exec.start([&run] { return channel_main(run); });
  if (!started) {
    std::fprintf(stderr, "sluice-core-bench: %s\n", started.err().message.c_str());
    return 1;
  }
  exec.join();

  std::vector<shard_result*> rs;
  for (auto& r : run.results) rs.push_back(r.get());
  const totals t = merge(rs);
  const double secs = static_cast<double>(run.w.end_ns - run.w.start_ns) / 1e9;
  const double rate = static_cast<double>(t.completed) / secs;
  const double p50 = us(t.hist.quantile(0.50)), p99 = us(t.hist.quantile(0.99)),
               p999 = us(t.hist.quantile(0.999)), mean = t.hist.mean() / 1000.0, max = us(t.hist.max());
  std::string per_shard;
  for (uint32_t i = 0; i < n; ++i) per_shard += fmt("%s%" PRIu64, i ? "," : "", run.results[i]->completed);

  report r;
  r.human = fmt(
      "channel: shards=%u concurrency=%u capacity=%u payload=%uB seconds=%.1f pinned=%s | %.0f msg/s "
      "(%" PRIu64 " round trips) | rtt us p50=%.2f p99=%.2f p99.9=%.2f mean=%.2f max=%.1f | errors=%" PRIu64,
      n, p.concurrency, p.capacity, p.payload, secs, p.pin ? "yes" : "no", rate, t.completed, p50, p99, p999, mean,
      max, t.errors);
  r.json = fmt(
      "{\"bench\":\"channel\",\"shards\":%u,\"concurrency\":%u,\"capacity\":%u,\"payload\":%u,"
      "\"seconds\":%.3f,\"warmup\":%.3f,\"pinned\":%s,\"cpus\":%u,\"round_trips\":%" PRIu64
      ",\"msgs_per_sec\":%.1f,\"rtt_p50_us\":%.3f,\"rtt_p99_us\":%.3f,\"rtt_p999_us\":%.3f,"
      "\"rtt_mean_us\":%.3f,\"rtt_max_us\":%.3f,\"per_shard_round_trips\":[%s],\"errors\":%" PRIu64 "}",
      n, p.concurrency, p.capacity, p.payload, secs, p.warmup, p.pin ? "true" : "false", executor::online_cpus(),
      t.completed, rate, p50, p99, p999, mean, max, per_shard.c_str(), t.errors);
  print(p, r, t);
  if (t.errors) std::fprintf(stderr, "sluice-core-bench: %" PRIu64 " errors, first: %s\n", t.errors, t.first_error.c_str());
  return t.errors == 0 && t.completed > 0 ? 0 : 1;
}

int run_echo(const params& p) {
  echo_run run;
  run.p = &p;
  executor::executor exec(executor_options(p));
  run.exec = &exec;
  const uint32_t n = exec.shard_count();
  for (uint32_t i = 0; i < n; ++i) run.shards.push_back(std::make_unique<echo_shard>());
  auto started = exec.start([&run] { return echo_main(run); });
  if (!started) {
    std::fprintf(stderr, "sluice-core-bench: %s\n", started.err().message.c_str());
    return 1;
  }
  exec.join();
  if (!run.setup_error.empty()) {
    std::fprintf(stderr, "sluice-core-bench: %s\n", run.setup_error.c_str());
    return 1;
  }

  std::vector<shard_result*> rs;
  uint64_t accepted = 0;
  std::string per_shard_accepted;
  for (uint32_t i = 0; i < n; ++i) {
    rs.push_back(&run.shards[i]->res);
    accepted += run.shards[i]->accepted;
    per_shard_accepted += fmt("%s%" PRIu64, i ? "," : "", run.shards[i]->accepted);
  }
  const totals t = merge(rs);
  const double secs = static_cast<double>(run.w.end_ns - run.w.start_ns) / 1e9;
  const double rate = static_cast<double>(t.completed) / secs;
  const double mbps = rate * static_cast<double>(p.size) / 1e6;
  const double p50 = us(t.hist.quantile(0.50)), p99 = us(t.hist.quantile(0.99)),
               p999 = us(t.hist.quantile(0.999)), mean = t.hist.mean() / 1000.0, max = us(t.hist.max());

  report r;
  r.human = fmt(
      "echo: shards=%u connections=%u size=%uB seconds=%.1f pinned=%s | %.0f round trips/s, %.2f MB/s "
      "per direction (%" PRIu64 " round trips) | rtt us p50=%.2f p99=%.2f p99.9=%.2f mean=%.2f max=%.1f | "
      "accepted=%" PRIu64 " errors=%" PRIu64,
      n, p.connections, p.size, secs, p.pin ? "yes" : "no", rate, mbps, t.completed, p50, p99, p999, mean, max,
      accepted, t.errors);
  r.json = fmt(
      "{\"bench\":\"echo\",\"shards\":%u,\"connections\":%u,\"size\":%u,\"seconds\":%.3f,\"warmup\":%.3f,"
      "\"pinned\":%s,\"cpus\":%u,\"round_trips\":%" PRIu64
      ",\"round_trips_per_sec\":%.1f,\"mb_per_sec\":%.3f,\"rtt_p50_us\":%.3f,\"rtt_p99_us\":%.3f,"
      "\"rtt_p999_us\":%.3f,\"rtt_mean_us\":%.3f,\"rtt_max_us\":%.3f,\"accepted\":%" PRIu64
      ",\"per_shard_accepted\":[%s],\"errors\":%" PRIu64 "}",
      n, p.connections, p.size, secs, p.warmup, p.pin ? "true" : "false", executor::online_cpus(), t.completed, rate,
      mbps, p50, p99, p999, mean, max, accepted, per_shard_accepted.c_str(), t.errors);
  print(p, r, t);
  if (t.errors) std::fprintf(stderr, "sluice-core-bench: %" PRIu64 " errors, first: %s\n", t.errors, t.first_error.c_str());
  return t.errors == 0 && t.completed > 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  params p;
  const int rc = parse_args(argc, argv, p);
  if (rc != 0) return rc == 2 ? 0 : 1;
  return p.mode == "channel" ? run_channel(p) : run_echo(p);
}
