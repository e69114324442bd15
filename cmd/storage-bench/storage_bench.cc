// sluice-storage-bench: append throughput and append(+flush) latency of the
// partition log (plugins/storage/partition_log.h) on a real disk.
//
// Every partition is a partition_log in its own directory under --dir; P
// partitions are spread round-robin over N shards, and each partition gets
// W writer coroutines on its shard. A writer loops: copy a template batch of
// ~B bytes into a fresh buffer (append rewrites the base offset in place and
// the batch cache keeps a reference, so every append needs its own bytes),
// then append it, then (--flush every) flush: with W > 1 the writers share
// one write and one fdatasync (group commit). Each operation's latency is
// sdk::now_ns() around append (+ flush), not including the copy.
//
// After a warm-up the run measures for a fixed time: an operation counts
// when it completes inside the window and its latency goes into a per-shard
// log-linear histogram (1.6% resolution), merged after the shards stopped.
// Alongside: fdatasync calls (log_stats::syncs), the shard threads' and the
// process's CPU time, and the block device's own counters
// (/sys/dev/block/M:m/stat: data writes, bytes, flushes, busy time;
// machine-wide, so other processes' I/O shows there too) over the same
// window.
//
// A retention task per shard applies --retention-mb per partition every
// 500 ms, so long runs keep a bounded amount of disk. The directory the run
// creates under --dir is deleted at the end.
//
// Output: one human-readable line and one JSON line (--json: only JSON).
// Not a test: scripts/bench-storage.sh runs it next to fio and writes
// docs/benchmarks/storage.md.
#include "core/executor/executor.h"
#include "partition_log.h"

#include <sluice/sdk/runtime.h>

#include <linux/magic.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include "bench_util.h"
#include "latency_histogram.h"

#include <filesystem>
#include <fstream>
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
  std::string dir;
  uint32_t batch_bytes = 16384;
  uint32_t value_bytes = 100;     // per record: batches hold B / ~(value + 8) records
  uint32_t writers = 1;           // per partition
  bool flush = true;
  double seconds = 5.0;
  double warmup = 1.0;
  uint32_t partitions = 1;
  uint32_t shards = 1;
  bool pin = true;
  std::vector<uint32_t> cpus;     // --cpus: shard i on cpus[i % size]
  bool json = false;
  bool allow_tmpfs = false;
  uint32_t cache_mb = 8;          // batch cache per shard
  uint32_t retention_mb = 1024;   // per partition
  uint32_t segment_mb = 0;        // 0: log_config's default
  uint32_t write_buffer_kb = 0;   // 0: log_config's default
};

void print_help(FILE* out) {
  std::fprintf(out,
               "usage: sluice-storage-bench --dir DIR [options]\n"
               "\n"
               "Appends ~B-byte Kafka v2 record batches to P partition logs (O_DIRECT,\n"
               "io_uring) on a real disk, W writer coroutines per partition, and reports\n"
               "throughput, per-operation latency and fdatasync counts.\n"
               "\n"
               "  --dir DIR           parent directory on the disk to measure (not tmpfs);\n"
               "                      the run creates and finally deletes DIR/sluice-storage-bench.PID\n"
               "  --batch-bytes B     batch size in bytes, within 5%% (default 16384)\n"
               "  --value-bytes V     record value size; the record count fills the batch (default 100)\n"
               "  --writers W         writer coroutines per partition (default 1)\n"
               "  --flush every|none  every: each append is followed by a flush (group commit\n"
               "                      across writers); none: append only (default every)\n"
               "  --partitions P      partitions, spread over the shards (default 1)\n"
               "  --shards N          shards (default 1)\n"
               "  --seconds S         measured time (default 5)\n"
               "  --warmup S          warm-up before measuring (default 1)\n"
               "  --cache-mb M        batch cache budget per shard (default 8)\n"
               "  --retention-mb M    retention.bytes per partition, applied every 500 ms (default 1024)\n"
               "  --segment-mb M      segment size, at most 4095 (default: log_config's, 128)\n"
               "  --write-buffer-kb K write buffer per active segment (default: log_config's, 1024)\n"
               "  --no-pin            do not pin shard threads to CPUs (pinned by default)\n"
               "  --cpus A,B,...      pin shard i to the i-th listed CPU (node.cpus); default:\n"
               "                      the allowed CPUs in order\n"
               "  --allow-tmpfs       measure even if DIR is on tmpfs (meaningless for a disk)\n"
               "  --json              print only the one-line JSON result\n"
               "  --help              this text\n"
               "\n"
               "Latency is append (+ flush) per operation in microseconds. Exits 1 when any\n"
               "operation failed.\n");
}

using bench::parse_seconds;
using bench::parse_u32;

// Returns 0 to run, 1 on a usage error, 2 after --help.
int parse_args(int argc, char** argv, params& p) {
  for (int i = 1; i < argc; ++i) {
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
    } else if (a == "--allow-tmpfs") {
      p.allow_tmpfs = true;
      takes_value = false;
    } else if (a == "--cpus") {
      ok = v != nullptr && *v != '\0';
      for (std::string_view rest = ok ? v : ""; ok && !rest.empty();) {
        const size_t comma = rest.find(',');
        const std::string item(rest.substr(0, comma));
        uint32_t cpu = 0;
        ok = parse_u32(item.c_str(), 0, CPU_SETSIZE - 1, cpu);
        p.cpus.push_back(cpu);
        rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
      }
    } else if (a == "--dir") {
      ok = v != nullptr && *v != '\0';
      if (ok) p.dir = v;
    } else if (a == "--batch-bytes") {
      ok = parse_u32(v, 128, 1u << 20, p.batch_bytes);
    } else if (a == "--value-bytes") {
      ok = parse_u32(v, 0, 1u << 20, p.value_bytes);
    } else if (a == "--writers") {
      ok = parse_u32(v, 1, 100000, p.writers);
    } else if (a == "--flush") {
      ok = v != nullptr && (std::string_view(v) == "every" || std::string_view(v) == "none");
      if (ok) p.flush = std::string_view(v) == "every";
    } else if (a == "--partitions") {
      ok = parse_u32(v, 1, 100000, p.partitions);
    } else if (a == "--shards") {
      ok = parse_u32(v, 1, 1024, p.shards);
    } else if (a == "--seconds") {
      ok = parse_seconds(v, 0.1, p.seconds);
    } else if (a == "--warmup") {
      ok = parse_seconds(v, 0.0, p.warmup);
    } else if (a == "--cache-mb") {
      ok = parse_u32(v, 1, 1u << 20, p.cache_mb);
    } else if (a == "--retention-mb") {
      ok = parse_u32(v, 1, 1u << 24, p.retention_mb);
    } else if (a == "--segment-mb") {
      ok = parse_u32(v, 1, 4095, p.segment_mb);  // the index holds 32-bit positions
    } else if (a == "--write-buffer-kb") {
      ok = parse_u32(v, 4, 1u << 20, p.write_buffer_kb);
    } else {
      std::fprintf(stderr, "sluice-storage-bench: unknown option '%s' (see --help)\n", argv[i]);
      return 1;
    }
    if (!ok) {
      std::fprintf(stderr, "sluice-storage-bench: bad or missing value for %s: '%s' (see --help)\n", argv[i],
                   v ? v : "");
      return 1;
    }
    if (takes_value) ++i;
  }
  if (p.dir.empty()) {
    std::fprintf(stderr, "sluice-storage-bench: --dir is required (see --help)\n");
    return 1;
  }
  return 0;
}

uint64_t to_ns(double seconds) { return static_cast<uint64_t>(seconds * 1e9); }
double us(uint64_t ns) { return static_cast<double>(ns) / 1000.0; }

using bench::fmt;
using bench::json_string;

// ---- the batch ----------------------------------------------------------------

struct batch_template {
  std::string bytes;
  int32_t records = 0;
  size_t value_bytes = 0;
};

int64_t wall_ms() noexcept {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A valid batch of as close to `target` bytes as records of about
// `value_hint` bytes allow: the record count is fixed from the hint, then
// the value size is the largest whose batch still fits in target.
batch_template build_template(uint32_t target, uint32_t value_hint) {
  const int64_t ts = wall_ms();
  const size_t body = storage::batch_header_bytes;
  int32_t count = 1;
  if (target > body + value_hint + 8)
    count = static_cast<int32_t>(std::max<uint64_t>(1, (target - body) / (uint64_t{value_hint} + 8)));
  auto size_of = [&](int32_t c, size_t v) { return storage::make_test_batch(c, v, ts).size(); };
  while (count > 1 && size_of(count, 0) > target) --count;
  size_t lo = 0, hi = target;
  while (lo < hi) {
    const size_t mid = (lo + hi + 1) / 2;
    if (size_of(count, mid) <= target)
      lo = mid;
    else
      hi = mid - 1;
  }
  batch_template t;
  t.records = count;
  t.value_bytes = lo;
  t.bytes = storage::make_test_batch(count, lo, ts);
  return t;
}

// ---- machine counters --------------------------------------------------------

uint64_t clock_ns(clockid_t id) noexcept {
  timespec ts{};
  clock_gettime(id, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// The block device's counters (Documentation/admin-guide/iostats.rst).
struct disk_counters {
  bool valid = false;
  uint64_t writes = 0;         // write requests completed (flushes included)
  uint64_t write_sectors = 0;  // 512-byte sectors written
  uint64_t write_ms = 0;       // time write requests spent (queued + served)
  uint64_t io_ms = 0;          // time the device had requests in flight
  uint64_t flushes = 0;        // flush requests completed (kernel >= 5.5)
  uint64_t flush_ms = 0;
};

disk_counters read_disk(const std::string& stat_path) {
  disk_counters d;
  if (stat_path.empty()) return d;
  std::ifstream in(stat_path);
  std::vector<uint64_t> f;
  uint64_t v = 0;
  while (in >> v) f.push_back(v);
  if (f.size() < 11) return d;
  d.valid = true;
  d.writes = f[4];
  d.write_sectors = f[6];
  d.write_ms = f[7];
  d.io_ms = f[9];
  if (f.size() >= 17) {
    d.flushes = f[15];
    d.flush_ms = f[16];
  }
  return d;
}

// The sysfs stat file of the block device holding path, and its name.
std::pair<std::string, std::string> disk_of(const std::string& path) {
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0) return {};
  const std::string sys = fmt("/sys/dev/block/%u:%u", major(st.st_dev), minor(st.st_dev));
  std::error_code ec;
  const auto real = std::filesystem::canonical(sys, ec);
  if (ec || !std::filesystem::exists(real / "stat")) return {};
  return {(real / "stat").string(), real.filename().string()};
}

// ---- the run -----------------------------------------------------------------

// The measurement window, on the CLOCK_MONOTONIC of sdk::now_ns(). Written
// by shard 0 before the other shards' writers start (the channel message
// that starts them orders the write before their reads).
struct window {
  uint64_t start_ns = 0;
  uint64_t end_ns = 0;
};

// What one shard owns and measured. Touched only by its shard until join().
struct shard_state {
  std::unique_ptr<storage::batch_cache> cache;
  std::vector<std::unique_ptr<storage::partition_log>> logs;
  latency_histogram hist;
  uint64_t completed = 0;  // operations completed inside the window
  uint64_t errors = 0;
  std::string first_error;
  uint64_t syncs_start = 0, syncs_end = 0;  // summed over this shard's logs
  uint64_t cpu_start = 0, cpu_end = 0;      // this shard thread's CPU time
  uint64_t segments_end = 0;
  sdk::abort_source stop;                   // stops the retention task

  void fail(std::string what) {
    if (errors++ == 0) first_error = std::move(what);
  }
  // Accounts one operation that took [t0, t1]; false once the window ended.
  bool account(const window& w, uint64_t t0, uint64_t t1) noexcept {
    if (t1 >= w.end_ns) return false;
    if (t1 >= w.start_ns) {
      ++completed;
      hist.record(t1 - t0);
    }
    return true;
  }
  uint64_t syncs() const noexcept {
    uint64_t n = 0;
    for (const auto& l : logs) n += l->stats().syncs;
    return n;
  }
};

struct bench_run {
  executor::executor* exec = nullptr;
  const params* p = nullptr;
  window w;
  std::string root;  // DIR/sluice-storage-bench.PID
  std::string disk_stat;
  batch_template tmpl;
  std::vector<std::unique_ptr<shard_state>> shards;
  // Sampled on shard 0 at the window's edges.
  disk_counters disk_start, disk_end;
  uint64_t proc_cpu_start = 0, proc_cpu_end = 0;
  std::string setup_error;  // written on shard 0 only
};

storage::log_config log_config_of(const params& p) {
  storage::log_config cfg;
  if (p.segment_mb) cfg.segment_bytes = uint64_t{p.segment_mb} << 20;
  if (p.write_buffer_kb) cfg.write_buffer_bytes = p.write_buffer_kb << 10;
  cfg.retention_bytes = static_cast<int64_t>(uint64_t{p.retention_mb} << 20);
  cfg.retention_ms = -1;
  return cfg;
}

// On each shard: opens its partitions (i, i + N, i + 2N, ...).
sdk::task<int32_t> open_logs(bench_run& run) {
  const uint32_t me = sdk::this_shard();
  shard_state& st = *run.shards[me];
  st.cache = std::make_unique<storage::batch_cache>(uint64_t{run.p->cache_mb} << 20);
  const storage::log_config cfg = log_config_of(*run.p);
  for (uint32_t i = me; i < run.p->partitions; i += run.exec->shard_count()) {
    auto r = co_await storage::partition_log::open(run.root + "/p" + std::to_string(i), "bench/" + std::to_string(i),
                                                    cfg, st.cache.get());
    if (!r) {
      st.fail("cannot open partition " + std::to_string(i) + ": " + r.err().message);
      co_return -1;
    }
    st.logs.push_back(std::move(r).value());
  }
  co_return 0;
}

// On each shard: closes and deletes its partitions.
sdk::task<int32_t> remove_logs(bench_run& run) {
  shard_state& st = *run.shards[sdk::this_shard()];
  int32_t rc = 0;
  for (auto& l : st.logs) {
    auto r = co_await l->remove();
    if (!r) {
      st.fail(r.err().message);
      rc = -1;
    }
  }
  st.logs.clear();
  co_return rc;
}

sdk::task<void> writer(bench_run& run, shard_state& st, storage::partition_log& log, sdk::gate::holder) {
  const std::string& t = run.tmpl.bytes;
  const bool flush = run.p->flush;
  for (;;) {
    sdk::buffer b = sdk::buffer::allocate(t.size());
    std::memcpy(b.data(), t.data(), t.size());
    b.set_size(t.size());
    const uint64_t t0 = sdk::now_ns();
    auto r = co_await log.append(std::move(b));
    if (!r) {
      st.fail(log.name() + ": append: " + r.err().message);
      break;
    }
    if (flush) {
      auto f = co_await log.flush();
      if (!f) {
        st.fail(log.name() + ": flush: " + f.err().message);
        break;
      }
    }
    const uint64_t t1 = sdk::now_ns();
    if (!st.account(run.w, t0, t1)) break;
  }
}

// Sleeps until the monotonic time `at` (now_ns's clock).
sdk::task<void> sleep_until(uint64_t at) {
  const uint64_t now = sdk::now_ns();
  if (at > now) co_await sdk::sleep_ns(at - now);
}

// Samples the counters at the window's edges.
sdk::task<void> sampler(bench_run& run, shard_state& st, sdk::gate::holder) {
  const bool first = sdk::this_shard() == 0;
  co_await sleep_until(run.w.start_ns);
  st.syncs_start = st.syncs();
  st.cpu_start = clock_ns(CLOCK_THREAD_CPUTIME_ID);
  if (first) {
    run.disk_start = read_disk(run.disk_stat);
    run.proc_cpu_start = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
  }
  co_await sleep_until(run.w.end_ns);
  st.syncs_end = st.syncs();
  st.cpu_end = clock_ns(CLOCK_THREAD_CPUTIME_ID);
  if (first) {
    run.disk_end = read_disk(run.disk_stat);
    run.proc_cpu_end = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
  }
  for (const auto& l : st.logs) st.segments_end += l->stats().segments;
}

// Keeps each partition within retention_bytes until the writers stop.
sdk::task<void> retention(shard_state& st, sdk::gate::holder) {
  while (!st.stop.abort_requested()) {
    co_await sdk::sleep_ms(500, &st.stop);
    if (st.stop.abort_requested()) break;
    for (auto& l : st.logs) {
      auto r = co_await l->apply_retention(wall_ms());
      if (!r) st.fail(l->name() + ": retention: " + r.err().message);
    }
  }
}

sdk::task<int32_t> run_shard(bench_run& run) {
  shard_state& st = *run.shards[sdk::this_shard()];
  sdk::gate background;
  sdk::spawn(retention(st, background.try_enter()));
  {
    sdk::gate work;
    sdk::spawn(sampler(run, st, work.try_enter()));
    for (auto& l : st.logs)
      for (uint32_t w = 0; w < run.p->writers; ++w) sdk::spawn(writer(run, st, *l, work.try_enter()));
    co_await work.close();
  }
  st.stop.request_abort();
  co_await background.close();
  co_return 0;
}

sdk::task<void> run_on(bench_run& run, uint32_t shard, sdk::gate::holder) {
  co_await run.exec->submit_to(shard, [&run] { return run_shard(run); });
}

sdk::task<void> bench_main(bench_run& run) {
  const uint32_t n = run.exec->shard_count();
  bool opened = true;
  for (uint32_t i = 0; i < n; ++i)
    if (co_await run.exec->submit_to(i, [&run] { return open_logs(run); }) != 0) opened = false;
  if (opened) {
    const uint64_t now = sdk::now_ns();
    run.w.start_ns = now + to_ns(run.p->warmup);
    run.w.end_ns = run.w.start_ns + to_ns(run.p->seconds);
    sdk::gate all;
    for (uint32_t i = 0; i < n; ++i) sdk::spawn(run_on(run, i, all.try_enter()));
    co_await all.close();
  } else {
    run.setup_error = "could not open the partitions";
  }
  for (uint32_t i = 0; i < n; ++i) co_await run.exec->submit_to(i, [&run] { return remove_logs(run); });
  run.exec->request_exit();
}

// ---- main --------------------------------------------------------------------

int run_bench(const params& p) {
  namespace fs = std::filesystem;
  struct statfs sfs{};
  if (::statfs(p.dir.c_str(), &sfs) != 0) {
    std::fprintf(stderr, "sluice-storage-bench: cannot stat %s: %s\n", p.dir.c_str(), std::strerror(errno));
    return 1;
  }
  if ((sfs.f_type == TMPFS_MAGIC || sfs.f_type == RAMFS_MAGIC) && !p.allow_tmpfs) {
    std::fprintf(stderr,
                 "sluice-storage-bench: %s is on tmpfs/ramfs, which has no disk to measure (O_DIRECT is not even "
                 "supported); pick a directory on the real disk (or --allow-tmpfs)\n",
                 p.dir.c_str());
    return 1;
  }

  bench_run run;
  run.p = &p;
  run.tmpl = build_template(p.batch_bytes, p.value_bytes);
  const double off = std::abs(static_cast<double>(run.tmpl.bytes.size()) - p.batch_bytes) / p.batch_bytes;
  if (off > 0.05) {
    std::fprintf(stderr, "sluice-storage-bench: cannot build a batch of %u bytes (+-5%%) from %u-byte values: got %zu\n",
                 p.batch_bytes, p.value_bytes, run.tmpl.bytes.size());
    return 1;
  }
  run.root = (fs::absolute(p.dir) / ("sluice-storage-bench." + std::to_string(::getpid()))).string();
  std::error_code ec;
  if (!fs::create_directory(run.root, ec)) {
    std::fprintf(stderr, "sluice-storage-bench: cannot create %s: %s\n", run.root.c_str(),
                 ec ? ec.message().c_str() : "it exists");
    return 1;
  }
  const auto [disk_stat, disk_name] = disk_of(run.root);
  run.disk_stat = disk_stat;

  executor::options o;
  o.shards = p.shards;
  o.pin_threads = p.pin;
  o.cpus = p.cpus;
  executor::executor exec(o);
  run.exec = &exec;
  const uint32_t n = exec.shard_count();
  for (uint32_t i = 0; i < n; ++i) run.shards.push_back(std::make_unique<shard_state>());
  auto started = exec.start([&run] { return bench_main(run); });
  if (!started) {
    std::fprintf(stderr, "sluice-storage-bench: %s\n", started.err().message.c_str());
    fs::remove_all(run.root, ec);
    return 1;
  }
  exec.join();
  fs::remove_all(run.root, ec);  // normally empty: remove() deleted the logs

  latency_histogram hist;
  uint64_t completed = 0, errors = 0, syncs = 0, segments = 0;
  double shard_cpu_s = 0;
  std::string first_error = run.setup_error;
  for (const auto& s : run.shards) {
    hist.merge(s->hist);
    completed += s->completed;
    if (s->errors && first_error.empty()) first_error = s->first_error;
    errors += s->errors;
    syncs += s->syncs_end - s->syncs_start;
    segments += s->segments_end;
    shard_cpu_s += static_cast<double>(s->cpu_end - s->cpu_start) / 1e9;
  }
  if (!run.setup_error.empty()) ++errors;

  const double secs = static_cast<double>(run.w.end_ns - run.w.start_ns) / 1e9;
  const uint64_t bsize = run.tmpl.bytes.size();
  const double rate = static_cast<double>(completed) / secs;
  const double mbps = rate * static_cast<double>(bsize) / 1e6;
  const double sync_rate = static_cast<double>(syncs) / secs;
  const double per_sync = syncs ? static_cast<double>(completed) / static_cast<double>(syncs) : 0.0;
  const double p50 = us(hist.quantile(0.50)), p99 = us(hist.quantile(0.99)), p999 = us(hist.quantile(0.999)),
               mean = hist.mean() / 1000.0, max = us(hist.max());
  const double shard_cpu_pct = 100.0 * shard_cpu_s / secs / n;
  const double proc_cpu_pct = 100.0 * static_cast<double>(run.proc_cpu_end - run.proc_cpu_start) / 1e9 / secs;
  const bool disk = run.disk_start.valid && run.disk_end.valid;
  const disk_counters& d0 = run.disk_start;
  const disk_counters& d1 = run.disk_end;
  // A flush reaches the device as an empty write with REQ_PREFLUSH (see
  // blkdev_issue_flush), which the write counter counts too: leave those out.
  const uint64_t data_writes = disk ? (d1.writes - d0.writes) - std::min(d1.writes - d0.writes, d1.flushes - d0.flushes) : 0;
  const double dev_writes = static_cast<double>(data_writes) / secs;
  const double dev_mbps = disk ? static_cast<double>(d1.write_sectors - d0.write_sectors) * 512.0 / 1e6 / secs : 0;
  const double dev_flushes = disk ? static_cast<double>(d1.flushes - d0.flushes) / secs : 0;
  const double dev_busy = disk ? 100.0 * static_cast<double>(d1.io_ms - d0.io_ms) / 1e3 / secs : 0;
  const double dev_write_kb = dev_writes > 0 ? dev_mbps * 1e3 / dev_writes : 0;
  const double dev_write_ms =
      data_writes ? static_cast<double>(d1.write_ms - d0.write_ms) / static_cast<double>(data_writes) : 0;
  const double dev_flush_ms = disk && d1.flushes > d0.flushes
                                  ? static_cast<double>(d1.flush_ms - d0.flush_ms) / static_cast<double>(d1.flushes - d0.flushes)
                                  : 0;

  const char* flush = p.flush ? "every" : "none";
  if (!p.json) {
    std::printf(
        "storage: batch=%" PRIu64 "B (%d x %zuB records) writers=%u partitions=%u shards=%u flush=%s seconds=%.1f | "
        "%.1f MB/s, %.0f appends/s (%" PRIu64 ") | latency us p50=%.1f p99=%.1f p99.9=%.1f mean=%.1f max=%.1f | "
        "fdatasync %.0f/s (%.1f appends each) | cpu shard %.0f%% process %.0f%% | disk %s: %.0f data writes/s "
        "(%.1f KB avg, %.3f ms), %.1f MB/s, %.0f flushes/s (%.3f ms), busy %.0f%% | errors=%" PRIu64 "\n",
        bsize, run.tmpl.records, run.tmpl.value_bytes, p.writers, p.partitions, n, flush, secs, mbps, rate,
        completed, p50, p99, p999, mean, max, sync_rate, per_sync, shard_cpu_pct, proc_cpu_pct,
        disk ? disk_name.c_str() : "(unknown)", dev_writes, dev_write_kb, dev_write_ms, dev_mbps, dev_flushes,
        dev_flush_ms, dev_busy, errors);
  }
  std::string cpu_list;
  for (uint32_t cpu : p.cpus) cpu_list += (cpu_list.empty() ? "" : ",") + std::to_string(cpu);
  std::string json = fmt(
      "{\"bench\":\"storage\",\"batch_bytes\":%" PRIu64 ",\"records_per_batch\":%d,\"value_bytes\":%zu,"
      "\"writers\":%u,\"partitions\":%u,\"shards\":%u,\"flush\":\"%s\",\"seconds\":%.3f,\"warmup\":%.3f,"
      "\"pinned\":%s,\"cpu_list\":\"%s\",\"cpus\":%u,\"appends\":%" PRIu64 ",\"appends_per_sec\":%.1f,\"mb_per_sec\":%.3f,"
      "\"lat_p50_us\":%.3f,\"lat_p99_us\":%.3f,\"lat_p999_us\":%.3f,\"lat_mean_us\":%.3f,\"lat_max_us\":%.3f,"
      "\"syncs\":%" PRIu64 ",\"syncs_per_sec\":%.1f,\"appends_per_sync\":%.2f,\"segments\":%" PRIu64
      ",\"shard_cpu_pct\":%.1f,\"process_cpu_pct\":%.1f,\"disk\":%s,\"disk_writes_per_sec\":%.1f,"
      "\"disk_write_kb_avg\":%.2f,\"disk_write_ms_avg\":%.4f,\"disk_write_mb_per_sec\":%.3f,"
      "\"disk_flushes_per_sec\":%.1f,\"disk_flush_ms_avg\":%.4f,\"disk_busy_pct\":%.1f,\"errors\":%" PRIu64 "}",
      bsize, run.tmpl.records, run.tmpl.value_bytes, p.writers, p.partitions, n, flush, secs, p.warmup,
      p.pin ? "true" : "false", cpu_list.c_str(), executor::online_cpus(), completed, rate, mbps, p50, p99, p999, mean, max, syncs,
      sync_rate, per_sync, segments, shard_cpu_pct, proc_cpu_pct, json_string(disk ? disk_name : "").c_str(),
      dev_writes, dev_write_kb, dev_write_ms, dev_mbps, dev_flushes, dev_flush_ms, dev_busy, errors);
  if (errors) {
    json.pop_back();
    json += ",\"first_error\":" + json_string(first_error) + "}";
  }
  std::printf("%s\n", json.c_str());
  std::fflush(stdout);
  if (errors) std::fprintf(stderr, "sluice-storage-bench: %" PRIu64 " errors, first: %s\n", errors, first_error.c_str());
  return errors == 0 && completed > 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  params p;
  const int rc = parse_args(argc, argv, p);
  if (rc != 0) return rc == 2 ? 0 : 1;
  return run_bench(p);
}
