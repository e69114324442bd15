// Crash consistency of the partition log: a writer process (crash_writer)
// appends to a log with eight concurrent writers, some flushing, and is
// killed with SIGKILL at a random moment; then this process reopens the log
// and checks it. Repeated SLUICE_CRASH_ITERATIONS times (default 200) on the
// same log directory, which persists and grows across iterations.
//
// After every kill:
//   - recovery succeeds and the log is not failed (read-only);
//   - every batch any writer reported as flushed is at the offset reported,
//     byte for byte what crash_batch(seq) builds (content, not only CRC);
//   - the log is a clean prefix: consecutive offsets from the start, every
//     batch valid (CRC) and one a writer really appended, in the order of
//     the append() calls, none twice (unacknowledged batches may survive a
//     kill, but only whole and intact);
//   - the next writer opens the log at the same end and appends after it;
//   - every batch carries the leader epoch its writer stamped, and the log's
//     epoch table is the one of the batches it holds (Kafka's rule);
//   - a run that truncated the log's suffix (one in four does, before its
//     writers start) lost exactly the batches from the cut on; one killed
//     during truncate_suffix left either the whole log or the cut one (half
//     of those runs are killed within 5 ms of the log being open for that).
// Most writers are killed 5-60 ms after they report the log open (while
// appends, writes, fdatasyncs and segment rolls run); one in eight 0-40 ms
// after it starts, often while it opens (recovers) the log.
// Batches in segments that were closed before the previous check are
// re-read in full every 20 iterations and at the end, plus 16 random
// acknowledged batches every iteration; the rest is verified every time.
//
// The random kill delays come from a seeded generator: the seed is printed,
// SLUICE_CRASH_SEED=<seed> reproduces a run (as far as timing allows).
#include "partition_log.h"
#include "record_batch.h"

#include "core/executor/test_util.h"
#include "tests/integration/subprocess.h"

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <signal.h>
#include <stdlib.h>

#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace sluice::storage::crash {
// Defined in crash_writer.cc (compiled into this test without its main).
log_config crash_log_config();
std::string crash_batch(uint64_t seq);
uint64_t crash_batch_seq(const uint8_t* batch);
int32_t crash_epoch(uint64_t seq);
}  // namespace sluice::storage::crash

namespace sluice::storage {
namespace {

namespace fs = std::filesystem;
using executor::testing::run_on_shards;
using executor::testing::test_options;

uint64_t env_u64(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  return std::strtoull(v, nullptr, 10);
}

// One batch a writer reported as flushed.
struct acked_batch {
  int64_t last = 0;
  uint64_t seq = 0;
  uint32_t iteration = 0;
};

// One batch found in the log.
struct log_batch {
  int64_t base = 0;
  int64_t last = 0;
  uint64_t seq = 0;
  int32_t epoch = -1;
};

class crash_test : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "storage_crash_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    _root = fs::absolute(tmpl);
    _dir = (_root / "crash-0").string();
    // The checker opens the log hundreds of times: only warnings and errors.
    spdlog::set_level(spdlog::level::warn);
  }
  void TearDown() override {
    spdlog::set_level(spdlog::level::info);
    if (!HasFailure()) {
      fs::remove_all(_root);
    } else {
      std::printf("crash test: the log is left in %s for inspection\n", _root.c_str());
    }
  }

  // Parses the report lines of one writer run into _acked.
  void take_reports(const std::string& out, uint32_t iteration, int64_t writer_start) {
    size_t at = 0;
    while (at < out.size()) {
      const size_t eol = out.find('\n', at);
      ASSERT_NE(eol, std::string::npos) << "a report line without its newline: " << out.substr(at);
      const std::string line = out.substr(at, eol - at);
      at = eol + 1;
      long long base = 0, last = 0;
      unsigned long long seq = 0;
      if (std::sscanf(line.c_str(), "truncating %lld", &base) == 1) {
        ASSERT_EQ(_truncating, -1) << line;
        _truncating = base;
        continue;
      }
      if (std::sscanf(line.c_str(), "truncated %lld", &base) == 1) {
        ASSERT_EQ(_truncating, base) << line;
        forget_acked_from(base);
        _truncated = true;
        continue;
      }
      ASSERT_EQ(std::sscanf(line.c_str(), "flushed %lld %lld %llu", &base, &last, &seq), 3) << line;
      ASSERT_GE(base, _truncated ? _truncating : writer_start)
          << "iteration " << iteration << " acknowledged an offset below its start: " << line;
      ASSERT_LE(base, last) << line;
      auto [it, inserted] = _acked.emplace(base, acked_batch{last, seq, iteration});
      ASSERT_TRUE(inserted) << "offset " << base << " acknowledged twice: by iteration " << it->second.iteration
                            << " (seq " << it->second.seq << ") and by iteration " << iteration << " (seq " << seq
                            << ")";
    }
  }

  // Reopens the log and checks it (see the top). Verifies batches from
  // verify_from (a segment base) on, or from the start when full.
  void check_log(uint32_t iteration, bool full) {
    run_on_shards(test_options(1), [&](executor::executor&) -> sdk::task<void> {
      batch_cache cache(0);  // every read goes to the files
      auto opened = co_await partition_log::open(_dir, "crash/0", crash::crash_log_config(), &cache);
      EXPECT_TRUE(opened.has_value()) << "iteration " << iteration << ": recovery failed: "
                                      << (opened ? "" : opened.err().message);
      if (!opened) co_return;
      partition_log& log = *opened.value();
      co_await verify(log, iteration, full);
      co_await log.close();
    });
  }

  // A truncation removed the acknowledged batches from `offset` on.
  void forget_acked_from(int64_t offset) {
    _acked.erase(_acked.lower_bound(offset), _acked.end());
    _truncations_done++;
  }

  sdk::task<void> verify(partition_log& log, uint32_t iteration, bool full) {
    const log_stats st = log.stats();
    EXPECT_FALSE(st.failed) << "iteration " << iteration << ": the log opened read-only";
    EXPECT_EQ(st.start_offset, 0);
    if (_truncating >= 0 && !_truncated) {
      // Killed in truncate_suffix (no writer ran): the whole log, or the cut one.
      const int64_t acked_end = _acked.empty() ? 0 : _acked.rbegin()->second.last + 1;
      if (st.next_offset < acked_end) {
        EXPECT_EQ(st.next_offset, _truncating) << "iteration " << iteration << ": an interrupted truncation to "
                                               << _truncating << " left the log ending elsewhere";
        forget_acked_from(_truncating);
      }
      ++_truncations_interrupted;
    }
    const int64_t acked_end = _acked.empty() ? 0 : _acked.rbegin()->second.last + 1;
    EXPECT_GE(st.next_offset, acked_end) << "iteration " << iteration << ": acknowledged offsets were lost";
    _next_offset = st.next_offset;
    _segments = st.segments;
    if (st.failed) co_return;

    // Forget what is about to be re-read, then read it back batch by batch.
    const int64_t from = full ? 0 : _verify_from;
    while (!_model.empty() && _model.back().base >= from) _model.pop_back();
    EXPECT_TRUE(_model.empty() || _model.back().last + 1 == from)
        << "iteration " << iteration << ": segment base " << from << " does not follow offset " << _model.back().last;
    int64_t cur = from;
    while (cur < st.next_offset) {
      auto r = co_await log.read(cur, 1 << 20);
      EXPECT_TRUE(r.has_value()) << "iteration " << iteration << ": read at " << cur << ": "
                                 << (r ? "" : r.err().message);
      if (!r) co_return;
      EXPECT_FALSE(r.value().slices.empty()) << "iteration " << iteration << ": nothing at offset " << cur
                                             << " below the log end " << st.next_offset;
      if (r.value().slices.empty()) co_return;
      for (const read_slice& s : r.value().slices) {
        const uint8_t* p = s.data.data() + s.offset;
        batch_header h;
        const batch_check c = check_batch(p, s.length, 1 << 24, &h);
        EXPECT_EQ(c, batch_check::ok) << "iteration " << iteration << ": invalid batch at " << cur;
        if (c != batch_check::ok) co_return;
        EXPECT_EQ(h.base_offset, cur) << "iteration " << iteration << ": offsets are not consecutive";
        if (h.base_offset != cur) co_return;
        const uint64_t seq = crash::crash_batch_seq(p);
        EXPECT_EQ(h.leader_epoch, crash::crash_epoch(seq)) << "iteration " << iteration << ": batch at " << cur;
        if (!same_as_written(p, s.length, seq)) {
          ADD_FAILURE() << "iteration " << iteration << ": the batch at offset " << cur
                        << " is not byte for byte the batch of seq " << seq << " a writer appended";
          co_return;
        }
        // Offsets follow the order of append() calls, and so do sequence
        // numbers (taken right before each call, increasing across runs).
        if (!_model.empty() && seq <= _model.back().seq) {
          ADD_FAILURE() << "iteration " << iteration << ": the batch at offset " << cur << " (seq " << seq
                        << ") follows seq " << _model.back().seq << ": out of order or duplicated";
          co_return;
        }
        _model.push_back(log_batch{h.base_offset, h.last_offset(), seq, h.leader_epoch});
        cur = h.last_offset() + 1;
      }
    }
    EXPECT_EQ(cur, st.next_offset);

    // The epoch table is the one of the batches in the log.
    epoch_table want;
    for (const log_batch& b : _model) want.observe(b.epoch, b.base);
    EXPECT_EQ(log.epochs(), want.entries()) << "iteration " << iteration << ": " << log.epochs().size()
                                            << " epoch entries, " << want.entries().size() << " expected";
    _epoch_entries = want.entries().size();

    // Every acknowledged batch at or after `from` is in the model as reported.
    for (auto it = _acked.lower_bound(from); it != _acked.end(); ++it) {
      const log_batch* b = find_model(it->first);
      EXPECT_TRUE(b != nullptr && b->base == it->first && b->last == it->second.last && b->seq == it->second.seq)
          << "iteration " << iteration << ": flushed batch at offset " << it->first << " (seq " << it->second.seq
          << ", acknowledged in iteration " << it->second.iteration << ") is "
          << (b ? "a different batch (seq " + std::to_string(b->seq) + ")" : std::string("missing"));
      if (b == nullptr || b->seq != it->second.seq) co_return;
    }

    // Spot checks below `from`, through the log's reads.
    if (!full && !_acked.empty() && _acked.begin()->first < from) {
      const size_t below = static_cast<size_t>(std::distance(_acked.begin(), _acked.lower_bound(from)));
      for (int i = 0; i < 16; ++i) {
        auto it = std::next(_acked.begin(), static_cast<std::ptrdiff_t>(_spot_rng() % below));
        auto r = co_await log.read(it->first, 1);
        EXPECT_TRUE(r.has_value() && !r.value().slices.empty());
        if (!r || r.value().slices.empty()) co_return;
        const read_slice& s = r.value().slices.front();
        const batch_header h = decode_header(s.data.data() + s.offset);
        EXPECT_EQ(h.base_offset, it->first);
        EXPECT_TRUE(same_as_written(s.data.data() + s.offset, s.length, it->second.seq))
            << "iteration " << iteration << ": flushed batch at offset " << it->first << " changed";
      }
    }
  }

  // The bytes are what crash_batch(seq) built, base offset and leader epoch
  // aside (the log assigns them; checked separately).
  static bool same_as_written(const uint8_t* p, uint32_t len, uint64_t seq) {
    const std::string want = crash::crash_batch(seq);
    return len == want.size() && std::memcmp(p + 8, want.data() + 8, 4) == 0 &&
           std::memcmp(p + 16, want.data() + 16, want.size() - 16) == 0;
  }

  const log_batch* find_model(int64_t base) const {
    auto it = std::lower_bound(_model.begin(), _model.end(), base,
                               [](const log_batch& b, int64_t off) { return b.base < off; });
    return it == _model.end() ? nullptr : &*it;
  }

  // The base of the newest segment file: what a writer may still change.
  int64_t newest_segment_base() const {
    int64_t newest = 0;
    for (const auto& e : fs::directory_iterator(_dir)) {
      const std::string f = e.path().filename().string();
      if (f.size() == 24 && f.ends_with(".log")) newest = std::max<int64_t>(newest, std::stoll(f.substr(0, 20)));
    }
    return newest;
  }

  fs::path _root;
  std::string _dir;
  std::map<int64_t, acked_batch> _acked;  // by base offset, from every iteration
  std::vector<log_batch> _model;          // the log as last verified, in offset order
  int64_t _verify_from = 0;
  int64_t _next_offset = 0;
  uint32_t _segments = 0;
  int64_t _truncating = -1;    // this iteration's writer reported "truncating <offset>"
  bool _truncated = false;     // ... and "truncated <offset>"
  uint32_t _truncations_done = 0;
  uint32_t _truncations_interrupted = 0;
  size_t _epoch_entries = 0;
  std::mt19937_64 _rng;        // kill moments
  std::mt19937_64 _spot_rng;   // spot checks (apart, so they do not shift the kill moments)
};

TEST_F(crash_test, sigkill_at_random_moments_loses_no_flushed_batch) {
  const uint64_t iterations = env_u64("SLUICE_CRASH_ITERATIONS", 200);
  const uint64_t seed = env_u64("SLUICE_CRASH_SEED", std::random_device{}());
  _rng.seed(seed);
  _spot_rng.seed(seed + 1);
  std::printf("crash test: %" PRIu64 " iterations, seed %" PRIu64 " (reproduce with SLUICE_CRASH_SEED=%" PRIu64 ")\n",
              iterations, seed, seed);
  RecordProperty("seed", std::to_string(seed));
  std::fflush(stdout);

  uint32_t killed_before_ready = 0;
  const auto started = std::chrono::steady_clock::now();
  for (uint32_t i = 0; i < iterations; ++i) {
    SCOPED_TRACE("iteration " + std::to_string(i) + " (seed " + std::to_string(seed) + ")");
    // Mostly kill while appends run (5-60 ms after the log is open); one
    // run in eight is killed 0-40 ms after the start, often while opening.
    const bool early = _rng() % 8 == 0;
    auto delay = std::chrono::milliseconds(early ? _rng() % 41 : 5 + _rng() % 56);
    // Half the runs that truncate (run ids divisible by 4) die within 5 ms
    // of "ready": often inside truncate_suffix.
    if (!early && (i + 1) % 4 == 0 && _rng() % 2 == 0) delay = std::chrono::milliseconds(_rng() % 5);
    testing::subprocess writer({SLUICE_CRASH_WRITER, _dir, std::to_string(i + 1)});
    ASSERT_TRUE(writer.started());
    if (!early) {
      const auto ready = writer.wait_for_stderr("crash_writer: ready next_offset=", std::chrono::seconds(30));
      ASSERT_TRUE(ready.has_value()) << "the writer did not start; its stderr:\n" << writer.err();
      // It opens the log where the last check left it.
      ASSERT_EQ(std::stoll(*ready), _next_offset) << writer.err();
    }
    // Waits while reading the writer's pipes (the needle never appears).
    writer.wait_for_stderr("\x01never\x01", delay);
    writer.signal(SIGKILL);
    const testing::exit_status status = writer.wait(std::chrono::seconds(30));
    ASSERT_EQ(status.signal, SIGKILL) << "the writer ended on its own (exit code " << status.code
                                      << ") before the kill; its stderr:\n" << writer.err();
    if (writer.err().find("crash_writer: ready") == std::string::npos) ++killed_before_ready;

    _truncating = -1;
    _truncated = false;
    take_reports(writer.out(), i, _next_offset);
    if (HasFatalFailure()) return;
    // After a truncation (or one that may have happened) everything is re-read.
    const bool full = (i + 1) % 20 == 0 || i + 1 == iterations || _truncating >= 0;
    check_log(i, full);
    if (HasFailure()) return;
    _verify_from = newest_segment_base();
  }

  // A last check in this process: the recovered log takes an append at its
  // end, and it survives a reopen.
  const int64_t end = _next_offset;
  const uint64_t last_seq = uint64_t{1} << 62;
  const std::string last_batch = crash::crash_batch(last_seq);
  run_on_shards(test_options(1), [&](executor::executor&) -> sdk::task<void> {
    batch_cache cache(0);
    auto opened = co_await partition_log::open(_dir, "crash/0", crash::crash_log_config(), &cache);
    EXPECT_TRUE(opened.has_value());
    if (!opened) co_return;
    sdk::buffer buf = sdk::buffer::allocate(last_batch.size());
    std::memcpy(buf.data(), last_batch.data(), last_batch.size());
    buf.set_size(last_batch.size());
    append_options stamp;
    stamp.leader_epoch = crash::crash_epoch(last_seq);
    auto a = co_await opened.value()->append(buf, stamp);
    EXPECT_TRUE(a.has_value() && a.value().base_offset == end);
    EXPECT_TRUE((co_await opened.value()->flush()).has_value());
    co_await opened.value()->close();
  });
  const int32_t delta = decode_header(reinterpret_cast<const uint8_t*>(last_batch.data())).last_offset_delta;
  _acked.emplace(end, acked_batch{end + delta, last_seq, static_cast<uint32_t>(iterations)});
  _truncating = -1;
  check_log(static_cast<uint32_t>(iterations), /*full=*/true);
  std::printf("crash test: %u suffix truncations done, %u killed inside truncate_suffix; %zu leader-epoch entries\n",
              _truncations_done, _truncations_interrupted, _epoch_entries);

  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::printf("crash test: %" PRIu64 " kills in %.1f s (%u before the log was open); log of %zu batches, offsets [0, %"
              PRId64 "), %u segments; %zu batches acknowledged as flushed, all intact; %zu "
              "unacknowledged batches survived whole\n",
              iterations, secs, killed_before_ready, _model.size(), _next_offset, _segments, _acked.size(),
              _model.size() - _acked.size());
}

}  // namespace
}  // namespace sluice::storage
