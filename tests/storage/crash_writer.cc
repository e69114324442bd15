// crash_writer DIR RUN_ID: the process storage_crash_test kills with SIGKILL.
//
// Opens the partition log in DIR on a one-shard executor and appends, with
// eight concurrent writer coroutines, batches whose every byte follows from
// a sequence number (crash_batch below), until it is killed. Writers differ
// in how they flush: after every append, after every third append, never.
// Every batch is stamped with the leader epoch crash_epoch(seq), which
// grows with the sequence number (a new epoch every 64 appends), so the
// log's leader-epoch table has entries in closed and active segments.
// After each successful flush() a writer reports the batches of its own that
// the flush covered, one line each, on its report stream (the original
// stdout):
//
//   flushed <base_offset> <last_offset> <seq>
//
// One run in four first truncates the log's suffix (before the writers
// start, after "ready"), at the batch boundary at or below its end minus
// run_id % 50, and reports it around the call:
//
//   truncating <offset>
//   truncated <offset>
//
// Lines are written with write(2) straight to the pipe the test drains (no
// stdio buffer), so they are out before the writer appends again and a
// SIGKILL cannot lose an acknowledged line; one write per flush of a few
// lines, far below PIPE_BUF, so a kill cannot leave half a line either.
// That write blocks the shard thread if the pipe is full; acceptable in a
// test tool whose parent drains the pipe, never in the broker.
//
// stderr gets "crash_writer: ready next_offset=<n>" once the log is open,
// and errors. The executor's log (spdlog, stdout by default) is sent to
// stderr so it cannot mix with the report lines.
//
// Compiled into storage_crash_test too (SLUICE_CRASH_WRITER_NO_MAIN), so the
// checker rebuilds expected batches with the very same crash_batch().
#include "partition_log.h"
#include "record_batch.h"

#include <algorithm>
#include <cinttypes>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace sluice::storage::crash {

// Timestamps carry the sequence number: baseTimestamp = ts_base + seq.
constexpr int64_t ts_base = 1'600'000'000'000;

// Sequence numbers of run r are (r << 24) + n: unique across runs.
constexpr int seq_run_shift = 24;

// The log configuration shared by the writer and the checker: small
// segments so that rolls (and closed segments with indexes) happen within
// the few milliseconds a writer lives.
log_config crash_log_config() {
  log_config cfg;
  cfg.segment_bytes = 64 << 10;
  cfg.write_buffer_bytes = 64 << 10;
  cfg.max_batch_bytes = 16 << 10;
  cfg.retention_ms = -1;
  return cfg;
}

namespace {
uint64_t mix(uint64_t x) {  // splitmix64's finalizer
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}
}  // namespace

// The batch with sequence number seq (base offset 0, CRC filled in): 1-4
// records, each with an 8-byte key (seq, record index) and a value of 8-120
// pseudo-random bytes seeded by (seq, record index).
std::string crash_batch(uint64_t seq) {
  const int32_t count = static_cast<int32_t>(1 + mix(seq) % 4);
  std::vector<batch_record> records(static_cast<size_t>(count));
  for (int32_t i = 0; i < count; ++i) {
    batch_record& r = records[static_cast<size_t>(i)];
    r.has_key = true;
    r.key.resize(8);
    auto* key = reinterpret_cast<uint8_t*>(r.key.data());
    write_be32(key, static_cast<int32_t>(seq >> 32));
    write_be32(key + 4, static_cast<int32_t>(static_cast<uint32_t>(seq) ^ static_cast<uint32_t>(i) << 28));
    const size_t value_bytes = 8 + mix(seq * 8 + static_cast<uint64_t>(i)) % 113;
    uint64_t x = mix(seq ^ 0x5eed0000ull ^ (static_cast<uint64_t>(i) << 40));
    for (size_t j = 0; j < value_bytes; ++j) {
      if (j % 8 == 0) x = mix(x + j);
      r.value.push_back(static_cast<char>(x >> (8 * (j % 8))));
    }
  }
  return make_batch(records, ts_base + static_cast<int64_t>(seq));
}

// The sequence number of a batch crash_batch built.
uint64_t crash_batch_seq(const uint8_t* batch) { return static_cast<uint64_t>(read_be64(batch + 27) - ts_base); }

// The leader epoch a writer stamps on the batch of seq: non-decreasing in
// seq, so in offset order too.
int32_t crash_epoch(uint64_t seq) { return static_cast<int32_t>(std::min<uint64_t>(seq >> 6, INT32_MAX)); }

}  // namespace sluice::storage::crash

#ifndef SLUICE_CRASH_WRITER_NO_MAIN

#include "core/executor/executor.h"

#include <sluice/sdk/runtime.h>

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

namespace sluice::storage::crash {
namespace {

int g_report_fd = -1;

// write(2) the whole line; a test tool may block here (see the top).
void write_all(int fd, const std::string& line) {
  size_t done = 0;
  while (done < line.size()) {
    const ssize_t n = ::write(fd, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) std::_Exit(5);  // the test is gone: nothing to report to
    done += static_cast<size_t>(n);
  }
}

sdk::buffer to_buffer(const std::string& b) {
  sdk::buffer buf = sdk::buffer::allocate(b.size());
  std::memcpy(buf.data(), b.data(), b.size());
  buf.set_size(b.size());
  return buf;
}

enum class flush_mode { every_append, every_third, never };

struct shared_state {
  partition_log* log = nullptr;
  uint64_t next_seq = 0;
  uint64_t deadline_ns = 0;
  bool stop = false;
};

struct pending {
  int64_t base;
  int64_t last;
  uint64_t seq;
};

sdk::task<void> writer(shared_state& st, flush_mode mode, sdk::gate::holder) {
  std::vector<pending> unreported;
  uint32_t appended = 0;
  while (!st.stop && sdk::now_ns() < st.deadline_ns) {
    const uint64_t seq = st.next_seq++;
    append_options stamp;
    stamp.leader_epoch = crash_epoch(seq);
    auto a = co_await st.log->append(to_buffer(crash_batch(seq)), stamp);
    if (!a) {
      write_all(2, "crash_writer: append of seq " + std::to_string(seq) + " failed: " + a.err().message + "\n");
      st.stop = true;
      break;
    }
    unreported.push_back({a.value().base_offset, a.value().last_offset, seq});
    ++appended;
    const bool flush = mode == flush_mode::every_append || (mode == flush_mode::every_third && appended % 3 == 0);
    if (flush) {
      auto f = co_await st.log->flush();
      if (!f) {
        write_all(2, "crash_writer: flush failed: " + f.err().message + "\n");
        st.stop = true;
        break;
      }
      // Report what this flush covered, then forget it.
      std::string lines;
      size_t kept = 0;
      for (const pending& p : unreported) {
        if (p.last < f.value()) {
          char line[96];
          std::snprintf(line, sizeof(line), "flushed %" PRId64 " %" PRId64 " %" PRIu64 "\n", p.base, p.last, p.seq);
          lines += line;
        } else {
          unreported[kept++] = p;
        }
      }
      unreported.resize(kept);
      if (!lines.empty()) write_all(g_report_fd, lines);
    }
    if (mode == flush_mode::never) unreported.clear();
    // A pause of 1.5-2.1 ms keeps the log (which the test reopens and
    // verifies after every kill: the cost grows with its segment count)
    // to some 25 KB per run, while eight writers still keep appends,
    // writes and syncs in flight most of the time.
    co_await sdk::sleep_ns(1'500'000 + (seq % 7) * 100'000);
  }
}

sdk::task<int> run(std::string dir, uint64_t run_id) {
  batch_cache cache(4 << 20);
  auto opened = co_await partition_log::open(dir, "crash/0", crash_log_config(), &cache);
  if (!opened) {
    write_all(2, "crash_writer: open failed: " + opened.err().message + "\n");
    co_return 2;
  }
  partition_log& log = *opened.value();
  const log_stats stats = log.stats();
  if (stats.failed) {
    write_all(2, "crash_writer: the log opened read-only\n");
    co_await log.close();
    co_return 3;
  }
  write_all(2, "crash_writer: ready next_offset=" + std::to_string(stats.next_offset) + "\n");

  if (run_id % 4 == 0 && stats.next_offset > 0) {
    // The batch holding end - 1 - run_id % 50 starts at a boundary.
    const int64_t probe = std::max<int64_t>(0, stats.next_offset - 1 - static_cast<int64_t>(run_id % 50));
    auto r = co_await log.read(probe, 1);
    if (!r || r.value().first_offset < 0) {
      write_all(2, "crash_writer: read at " + std::to_string(probe) + " failed\n");
      co_await log.close();
      co_return 6;
    }
    const int64_t cut = r.value().first_offset;
    write_all(g_report_fd, "truncating " + std::to_string(cut) + "\n");
    auto t = co_await log.truncate_suffix(cut);
    if (!t) {
      write_all(2, "crash_writer: truncate_suffix(" + std::to_string(cut) + ") failed: " + t.err().message + "\n");
      co_await log.close();
      co_return 7;
    }
    write_all(g_report_fd, "truncated " + std::to_string(cut) + "\n");
  }

  shared_state st;
  st.log = &log;
  st.next_seq = run_id << seq_run_shift;
  // The test kills the writer within milliseconds; if it never does (the
  // test died), stop on our own instead of filling the disk.
  st.deadline_ns = sdk::now_ns() + 20'000'000'000ull;
  sdk::gate writers;
  constexpr flush_mode modes[] = {flush_mode::every_append, flush_mode::every_third, flush_mode::never};
  for (int w = 0; w < 8; ++w) sdk::spawn(writer(st, modes[w % 3], writers.try_enter()));
  co_await writers.close();
  const bool failed = st.stop;
  co_await log.close();
  co_return failed ? 4 : 0;
}

}  // namespace
}  // namespace sluice::storage::crash

int main(int argc, char** argv) {
  using namespace sluice;
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s DIR RUN_ID\n", argv[0]);
    return 1;
  }
  const std::string dir = argv[1];
  const uint64_t run_id = std::strtoull(argv[2], nullptr, 10);
  // Report lines go to the original stdout; everything else to stderr.
  storage::crash::g_report_fd = ::dup(1);
  if (storage::crash::g_report_fd < 0 || ::dup2(2, 1) < 0) return 1;

  executor::options opts;
  opts.shards = 1;
  opts.pin_threads = false;
  opts.ring_entries = 256;
  executor::executor exec(opts);
  int code = 0;
  auto started = exec.start([&]() -> sdk::task<void> {
    code = co_await storage::crash::run(dir, run_id);
    exec.request_exit();
  });
  if (!started) {
    std::fprintf(stderr, "crash_writer: cannot start the executor: %s\n", started.err().message.c_str());
    return 1;
  }
  exec.join();
  return code;
}

#endif  // SLUICE_CRASH_WRITER_NO_MAIN
