// Recovery from damaged files, exhaustively on small logs: for EVERY byte
// position of a segment file, flip the byte (XOR 0xff) or truncate the file
// there, reopen the log and check the invariants:
//   - nothing crashes or hangs (a watchdog reports any log operation that
//     does not return within 500 ms); open() either fails with an error
//     naming the file or returns a log;
//   - a log that opens writable holds a clean prefix of the original
//     batches: all of them, or all but the last when the damage is in the
//     last batch of the active segment (a torn tail), or exactly the batches
//     before a truncation point of the active segment; it takes an append
//     right after that prefix;
//   - otherwise the log is failed (read-only): appends are refused with an
//     error naming the damaged file, and the file is left as it was;
//   - a closed segment with a valid index is trusted at open (by design:
//     its batches are verified when read), so damage there may also show as
//     a read error naming the file, for the damaged batch and the batches
//     after it in that segment;
//   - a read never returns a batch whose bytes differ from the original, or
//     a batch other than the one holding the requested offset.
// Likewise every byte of a closed segment's .index is flipped and the index
// truncated at every position: it must be rebuilt (or its damage must not
// matter), and every read must still be exact. And every byte of
// partition.meta: a damaged one is rebuilt from the segments, never makes
// the log read-only, and the leader-epoch table comes out the same.
// The batches carry leader epochs (1, 1, 1, 2, 2, 2, ...); in every case in
// which the log opens writable, its epoch table must be the one of the
// batches it kept (unless the damage is in a batch's epoch field itself).
//
// Two logs: one segment of 10 batches (3.9 KiB of a 4 KiB file), and two
// segments (6 batches closed with an index, 2 in the active segment). The
// files are kept to one page each so that every position is tested rather
// than a sample. One known limit is not a failure: the partition leader
// epoch (bytes 12-15 of a batch) is outside the batch CRC in Kafka's format,
// so a flip there cannot be detected; such positions are counted and
// printed, and batches are compared with those four bytes masked.
//
// The work directory is on tmpfs (/dev/shm) when O_DIRECT works there
// (Linux >= 6.6), so the tens of thousands of opens do not wait for a disk;
// otherwise in the current directory. The test prints which.
#include "partition_log.h"
#include "record_batch.h"

#include "core/executor/test_util.h"

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace sluice::storage {
namespace {

namespace fs = std::filesystem;
using executor::testing::run_on_shards;
using executor::testing::test_options;

// Where a batch of the pristine log lives.
struct placement {
  std::string file;  // segment file name
  uint64_t pos = 0;  // byte position in it
  uint64_t size = 0;
};

struct pristine_log {
  std::string name;
  log_config cfg;
  std::map<std::string, std::string> files;  // file name -> bytes
  std::vector<std::string> batches;          // as stored (base offsets set)
  std::vector<int64_t> bases;
  std::vector<placement> where;
  int64_t end_offset = 0;
  std::string active_file;                   // the newest segment's file name
  std::vector<int32_t> epochs;               // each batch's leader epoch

  // The epoch table of the first k batches.
  std::vector<epoch_entry> epochs_of_prefix(size_t k) const {
    epoch_table t;
    for (size_t i = 0; i < k; ++i) t.observe(epochs[i], bases[i]);
    return t.entries();
  }

  // The oldest segment's file name, and its index's.
  std::string first_segment() const { return files.begin()->first.substr(0, 20) + ".log"; }
  std::string first_index() const { return files.begin()->first.substr(0, 20) + ".index"; }
};

enum class damage { flip, truncate };

// One case in progress (see run_case).
struct case_state {
  bool done = false;
  bool timer_done = false;
  bool hung = false;
  std::string op;  // the log operation in progress
  sdk::condition changed;
  sdk::abort_source stop_timer;
};

// What one damaged copy must satisfy (see the top).
struct scenario {
  const pristine_log* log = nullptr;
  std::string file;      // the damaged file's name
  damage kind = damage::flip;
  uint64_t pos = 0;
  std::string bytes;     // the damaged file's contents
  case_state* state = nullptr;
};

std::string read_file(const fs::path& p) {
  std::string out;
  const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  char buf[8192];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return out;
}

bool write_file(const fs::path& p, const std::string& bytes) {
  const int fd = ::open(p.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  const bool ok = ::write(fd, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size());
  ::close(fd);
  return ok;
}

sdk::buffer to_buffer(const std::string& b) {
  sdk::buffer buf = sdk::buffer::allocate(b.size());
  std::memcpy(buf.data(), b.data(), b.size());
  buf.set_size(b.size());
  return buf;
}

// Batch i of the test logs: 1-3 records of 60-267 bytes, distinct fills.
std::string test_batch(int i) {
  return make_test_batch(1 + i % 3, static_cast<size_t>(60 + 23 * i), 1000 + 10 * i, static_cast<char>('a' + i));
}

// Equal except for the partition leader epoch (bytes 12-15, outside the
// CRC); *epoch_only tells whether only that field differs.
bool same_batch(const uint8_t* p, size_t len, const std::string& want, bool* epoch_only) {
  *epoch_only = false;
  if (len != want.size()) return false;
  const auto* w = reinterpret_cast<const uint8_t*>(want.data());
  if (std::memcmp(p, w, 12) != 0 || std::memcmp(p + 16, w + 16, len - 16) != 0) return false;
  *epoch_only = std::memcmp(p + 12, w + 12, 4) != 0;
  return true;
}

class corruption_test : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // O_DIRECT on tmpfs needs Linux 6.6; the log opens its files with it.
    char tmpl[] = "/dev/shm/storage_corruption_test.XXXXXX";
    if (mkdtemp(tmpl) != nullptr) {
      const std::string probe = std::string(tmpl) + "/probe";
      const int fd = ::open(probe.c_str(), O_CREAT | O_RDWR | O_DIRECT | O_CLOEXEC, 0644);
      if (fd >= 0) {
        ::close(fd);
        fs::remove(probe);
        s_root = tmpl;
        std::printf("corruption test: working on tmpfs in %s (O_DIRECT works there)\n", tmpl);
      } else {
        fs::remove_all(tmpl);
      }
    }
    if (s_root.empty()) {
      char local[] = "storage_corruption_test.XXXXXX";
      ASSERT_NE(mkdtemp(local), nullptr);
      s_root = fs::absolute(local);
      std::printf("corruption test: tmpfs without O_DIRECT here; working in %s\n", s_root.c_str());
    }
    // Tens of thousands of opens, most with warnings: keep the output short.
    spdlog::set_level(spdlog::level::off);
  }
  static void TearDownTestSuite() {
    spdlog::set_level(spdlog::level::info);
    if (!s_root.empty()) fs::remove_all(s_root);
  }

  // Writes the batches into a fresh log and keeps its files.
  static pristine_log build(const std::string& name, log_config cfg, int batches) {
    pristine_log pr;
    pr.name = name;
    pr.cfg = cfg;
    const fs::path dir = s_root / ("pristine-" + name);
    run_on_shards(test_options(1), [&](executor::executor&) -> sdk::task<void> {
      batch_cache cache(1 << 20);
      auto log = co_await partition_log::open(dir.string(), name, cfg, &cache);
      EXPECT_TRUE(log.has_value());
      if (!log) co_return;
      for (int i = 0; i < batches; ++i) {
        std::string b = test_batch(i);
        append_options stamp;
        stamp.leader_epoch = 1 + i / 3;
        auto r = co_await log.value()->append(to_buffer(b), stamp);
        EXPECT_TRUE(r.has_value());
        if (!r) break;
        set_base_offset(reinterpret_cast<uint8_t*>(b.data()), r.value().base_offset);
        set_leader_epoch(reinterpret_cast<uint8_t*>(b.data()), *stamp.leader_epoch);
        pr.epochs.push_back(*stamp.leader_epoch);
        pr.batches.push_back(b);
        pr.bases.push_back(r.value().base_offset);
        pr.end_offset = r.value().last_offset + 1;
      }
      EXPECT_TRUE((co_await log.value()->flush()).has_value());
      co_await log.value()->close();
    });
    for (const auto& e : fs::directory_iterator(dir)) pr.files[e.path().filename().string()] = read_file(e.path());
    // Locate every batch in the segment files.
    size_t next = 0;
    for (const auto& [f, bytes] : pr.files) {
      if (!f.ends_with(".log")) continue;
      pr.active_file = f;  // names sort by base offset: the last is the newest
      uint64_t pos = 0;
      while (next < pr.batches.size() && pos + pr.batches[next].size() <= bytes.size() &&
             bytes.compare(pos, pr.batches[next].size(), pr.batches[next]) == 0) {
        pr.where.push_back({f, pos, pr.batches[next].size()});
        pos += pr.batches[next].size();
        ++next;
      }
    }
    EXPECT_EQ(pr.where.size(), pr.batches.size()) << name << ": the batches are not where expected";
    fs::remove_all(dir);
    return pr;
  }

  // Runs every damage of `file` in pr (flips or truncations at every
  // position) and checks each; returns the number of cases. Two shards
  // take every other position, each in its own copy of the log.
  size_t sweep(const pristine_log& pr, const std::string& file, damage kind) {
    const std::string& pristine = pr.files.at(file);
    const uint64_t positions = kind == damage::flip ? pristine.size() : pristine.size() + 1;
    const auto started = std::chrono::steady_clock::now();
    auto half = [&](uint32_t shard) -> sdk::task<void> {
      const fs::path dir = s_root / ("work-" + pr.name + "-" + std::to_string(shard));
      for (uint64_t pos = shard; pos < positions; pos += 2) {
        scenario sc;
        sc.log = &pr;
        sc.file = file;
        sc.kind = kind;
        sc.pos = pos;
        if (kind == damage::flip) {
          sc.bytes = pristine;
          sc.bytes[pos] = static_cast<char>(sc.bytes[pos] ^ 0xff);
        } else {
          sc.bytes = pristine.substr(0, pos);
        }
        co_await run_case(dir, std::move(sc));
      }
    };
    run_on_shards(test_options(2), [&](executor::executor& exec) -> sdk::task<void> {
      sdk::gate g;
      sdk::spawn([](auto& half, sdk::gate::holder) -> sdk::task<void> { co_await half(0); }(half, g.try_enter()));
      co_await exec.submit_to(1, [&]() -> sdk::task<int32_t> {
        co_await half(1);
        co_return 0;
      });
      co_await g.close();
    });
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
    std::printf("corruption test: %s: %s of %s at each of %" PRIu64 " positions in %.0f ms\n", pr.name.c_str(),
                kind == damage::flip ? "flips" : "truncations", file.c_str(), positions, ms);
    std::fflush(stdout);
    return positions;
  }

  // Called on both shards: counters are atomic, the tally takes a lock,
  // gtest is thread-safe. Violations are reported by kind in report().
  void violation(const scenario& sc, const std::string& kind, const std::string& what) {
    if (sc.state != nullptr && sc.state->hung && kind != "hang") return;  // the file was emptied to end a hang
    ++_violations;
    std::lock_guard lock(_mu);
    tally& t = _tallies[kind];
    ++t.count;
    if (t.positions.empty() || t.positions.back() != sc.pos) t.positions.push_back(sc.pos);
    if (t.examples.size() < 3)
      t.examples.push_back(sc.log->name + ": " + (sc.kind == damage::flip ? "flip" : "truncation") + " of " +
                           sc.file + " at byte " + std::to_string(sc.pos) + ": " + what);
  }

  // The index of the batch the damage is in, or the batch count when it
  // is past the data of that file (in its zero padding) or not in a
  // segment file.
  static size_t damaged_batch(const scenario& sc) {
    const pristine_log& pr = *sc.log;
    for (size_t i = 0; i < pr.where.size(); ++i) {
      if (pr.where[i].file != sc.file) continue;
      if (sc.kind == damage::flip && sc.pos >= pr.where[i].pos && sc.pos < pr.where[i].pos + pr.where[i].size)
        return i;
      if (sc.kind == damage::truncate && sc.pos < pr.where[i].pos + pr.where[i].size) return i;
    }
    return pr.batches.size();
  }

  // One case: a fresh copy of the log with the damaged file, checked by
  // check_case under a watchdog. A log operation that has not returned
  // after hang_ms is reported as hung; the damaged file is then truncated
  // to nothing, which ends the read loops once seen spinning on damaged
  // batch lengths (read_from_disk re-reading a batch the file cannot hold),
  // so the case can finish and the sweep go on.
  static constexpr uint64_t hang_ms = 500;  // a case takes about a millisecond


  sdk::task<void> run_case(const fs::path& dir, scenario sc) {
    const pristine_log& pr = *sc.log;
    std::error_code ec;
    fs::create_directories(dir, ec);
    for (const auto& e : fs::directory_iterator(dir, ec))
      if (!pr.files.contains(e.path().filename().string())) fs::remove(e.path(), ec);
    for (const auto& [f, bytes] : pr.files) {
      if (!write_file(dir / f, f == sc.file ? sc.bytes : bytes)) {
        violation(sc, "setup", "cannot write the work copy");
        co_return;
      }
    }
    case_state cs;
    sc.state = &cs;
    sdk::spawn([](corruption_test* self, const fs::path& dir, const scenario& sc, case_state& cs) -> sdk::task<void> {
      co_await self->check_case(dir, sc, cs);
      cs.done = true;
      cs.stop_timer.request_abort();
      cs.changed.notify_all();
    }(this, dir, sc, cs));
    sdk::spawn([](corruption_test* self, const fs::path& dir, const scenario& sc, case_state& cs) -> sdk::task<void> {
      const int32_t rc = co_await sdk::sleep_ms(hang_ms, &cs.stop_timer);
      if (rc == -ETIME && !cs.done) {
        self->violation(sc, "hang", cs.op + " did not return within " + std::to_string(hang_ms) +
                                " ms (a busy loop: the shard keeps reading the file)");
        cs.hung = true;
        ++self->_hangs;
        ::truncate((dir / sc.file).c_str(), 0);
      }
      cs.timer_done = true;
      cs.changed.notify_all();
    }(this, dir, sc, cs));
    while (!cs.done || !cs.timer_done) co_await cs.changed.wait();
  }

  sdk::task<void> check_case(const fs::path& dir, const scenario& sc, case_state& cs) {
    const pristine_log& pr = *sc.log;
    const std::string damaged_path = (dir / sc.file).string();
    const bool in_index = sc.file.ends_with(".index");
    const bool in_meta = sc.file == "partition.meta";
    const bool in_active = sc.file == pr.active_file;
    const bool in_closed = !in_index && !in_active;  // partition.meta counts as closed: nothing may be lost
    const size_t d = damaged_batch(sc);
    const size_t n = pr.batches.size();

    batch_cache cache(0);  // every read goes to the file
    cs.op = "open()";
    auto opened = co_await partition_log::open(dir.string(), pr.name, pr.cfg, &cache);
    if (!opened) {
      // Refusing to open is acceptable for a damaged segment if it says which.
      if (in_index || opened.err().message.find(damaged_path) == std::string::npos)
        violation(sc, "open failed without naming the damaged file", "open failed: " + opened.err().message);
      ++_open_errors;
      co_return;
    }
    partition_log& log = *opened.value();
    const log_stats st = log.stats();
    if (log.damaged_from() >= 0) {
      co_await check_repairable(sc, cs, log, damaged_path);
      co_return;
    }

    // The batches the log claims: a prefix of the originals.
    size_t k = 0;
    while (k < n && pr.bases[k] < st.next_offset) ++k;
    const int64_t k_end = k == n ? pr.end_offset : pr.bases[k];
    if (st.start_offset != 0) violation(sc, "log start moved", "log start moved to " + std::to_string(st.start_offset));
    if (st.next_offset != k_end)
      violation(sc, "log end inside a batch", "the log ends at offset " + std::to_string(st.next_offset) + ", inside a batch");

    if (!st.failed) {
      if (in_index || in_closed) {
        if (k != n) violation(sc, "batches of a closed segment lost, log writable", "the log lost batches " + std::to_string(k) + ".." + std::to_string(n - 1) +
                                      " and opened writable");
      } else if (sc.kind == damage::flip) {
        // Only a damaged last batch may be cut.
        if (k < n && !(k == n - 1 && d == n - 1))
          violation(sc, "batches lost before the damaged one, log writable", "the log opened writable with " + std::to_string(k) + " of " + std::to_string(n) +
                            " batches (damage in batch " + std::to_string(d) + ")");
      } else if (k != d) {
        violation(sc, "wrong prefix after a truncation", "after a truncation inside batch " + std::to_string(d) + " the log opened writable with " +
                          std::to_string(k) + " batches");
      }
    } else {
      ++_failed_logs;
      if (in_index) violation(sc, "damaged index made the log read-only", "a damaged index made the log read-only instead of being rebuilt");
      if (in_meta) violation(sc, "damaged partition.meta made the log read-only", "a damaged partition.meta made the log read-only");
    }
    // The epoch table is the one of the batches kept; a flipped epoch field
    // (outside the CRC) cannot be told from a real one.
    const bool epoch_field = sc.kind == damage::flip && d < n && pr.where[d].file == sc.file &&
                             sc.pos >= pr.where[d].pos + 12 && sc.pos < pr.where[d].pos + 16;
    if (!st.failed && !epoch_field && log.epochs() != pr.epochs_of_prefix(k)) {
      std::string got;
      for (const auto& e : log.epochs()) got += " (" + std::to_string(e.epoch) + ", " + std::to_string(e.start_offset) + ")";
      violation(sc, "wrong leader-epoch table", "the epoch table is" + got + " for " + std::to_string(k) + " batches");
    }

    // Every batch, read on its own from its base offset.
    for (size_t i = 0; i < k; ++i) {
      cs.op = "read(" + std::to_string(pr.bases[i]) + ")";
      auto r = co_await log.read(pr.bases[i], 1);
      if (!r) {
        // Allowed: a read-only log, or damage in a closed segment (verified
        // on read) at or before this batch of that segment.
        const bool allowed = r.err().code == make_error_code(errc::corrupt) &&
                             r.err().message.find(damaged_path) != std::string::npos &&
                             (st.failed || (in_closed && pr.where[i].file == sc.file && i >= d));
        if (!allowed) violation(sc, "read error", "read of batch " + std::to_string(i) + " failed: " + r.err().message);
        continue;
      }
      if (r.value().slices.empty()) {
        violation(sc, "read returned nothing", "read of batch " + std::to_string(i) + " returned nothing");
        continue;
      }
      const read_slice& s = r.value().slices.front();
      bool epoch_only = false;
      if (!same_batch(s.data.data() + s.offset, s.length, pr.batches[i], &epoch_only)) {
        const uint8_t* got = s.data.data() + s.offset;
        const batch_header h = decode_header(got);
        const auto& want = pr.batches[i];
        const bool bad_base = s.length == want.size() && std::memcmp(got + 8, want.data() + 8, want.size() - 8) == 0;
        bool later = false;
        for (size_t j = i + 1; j < n && !later; ++j) later = same_batch(got, s.length, pr.batches[j], &epoch_only);
        violation(sc,
                  bad_base ? "read served a batch whose base offset (outside the CRC) is damaged"
                  : later  ? "read skipped offsets (returned a later batch)"
                           : "read returned bytes that differ from the original",
                  "read at offset " + std::to_string(pr.bases[i]) + " returned a batch (base offset " +
                      std::to_string(h.base_offset) + ", " + std::to_string(s.length) +
                      " bytes) that is not original batch " + std::to_string(i));
      } else if (epoch_only) {
        ++_epoch_only;
      }
    }
    // A damaged index must not mislead the time index either: every batch
    // is found by its first timestamp.
    if (in_index) {
      for (size_t i = 0; i < n; ++i) {
        cs.op = "offset_for_timestamp()";
        const auto first_ts = decode_header(reinterpret_cast<const uint8_t*>(pr.batches[i].data())).first_timestamp;
        auto t = co_await log.offset_for_timestamp(first_ts);
        if (!t || t.value() != pr.bases[i])
          violation(sc, "offset_for_timestamp wrong after index damage",
                    "offset_for_timestamp(" + std::to_string(first_ts) + ") = " +
                        (t ? std::to_string(t.value()) : t.err().message) + ", not " + std::to_string(pr.bases[i]));
      }
    }
    // One read of everything: whole original batches in order, or an error.
    {
      cs.op = "read(0) of the whole log";
      auto r = co_await log.read(0, 1 << 20);
      if (r) {
        size_t i = 0;
        for (const read_slice& s : r.value().slices) {
          bool epoch_only = false;
          if (i >= k || !same_batch(s.data.data() + s.offset, s.length, pr.batches[i], &epoch_only)) {
            violation(sc, "read of the whole log returned a wrong batch", "a read of the whole log returned a batch that is not original batch " + std::to_string(i));
            break;
          }
          ++i;
        }
      }
    }

    cs.op = "append()";
    if (!st.failed) {
      // The next append goes right after the prefix.
      auto a = co_await log.append(to_buffer(test_batch(99)));
      if (!a || a.value().base_offset != k_end)
        violation(sc, "append after recovery", "append after recovery: " + (a ? "at offset " + std::to_string(a.value().base_offset)
                                                     : a.err().message));
    } else {
      auto a = co_await log.append(to_buffer(test_batch(99)));
      if (a) {
        violation(sc, "read-only log took an append", "a read-only log took an append");
      } else if ((a.err().code != make_error_code(errc::corrupt) && a.err().code != make_error_code(errc::log_failed)) ||
                 a.err().message.find(damaged_path) == std::string::npos) {
        violation(sc, "refusal does not name the file", "a read-only log refused an append with an error that does not name " + sc.file + ": " +
                          a.err().message);
      }
    }
    cs.op = "close()";
    co_await log.close();
    if (st.failed && !cs.hung && read_file(damaged_path) != sc.bytes) violation(sc, "read-only log changed the file", "a read-only log changed the damaged file");
  }

  // A repairable log (a Raft replica's, verify_segments_on_open) reported
  // damage from X: X is the base of a batch at or before the damaged one,
  // the batches before it read back exactly, nothing from X on is served,
  // and the owner's cut at X makes the log writable there.
  sdk::task<void> check_repairable(const scenario& sc, case_state& cs, partition_log& log,
                                   const std::string& damaged_path) {
    const pristine_log& pr = *sc.log;
    const size_t n = pr.batches.size();
    const size_t d = damaged_batch(sc);
    const int64_t x = log.damaged_from();
    ++_repairs;
    if (!pr.cfg.repairable) violation(sc, "damage reported by a standalone log", "damaged_from() on a log not opened repairable");
    if (sc.file.ends_with(".index") || sc.file == "partition.meta")
      violation(sc, "index or meta damage reported as lost batches", "damaged from offset " + std::to_string(x));
    if (log.damage().find(damaged_path) == std::string::npos)
      violation(sc, "damage does not name the file", log.damage());
    size_t kx = 0;
    while (kx < n && pr.bases[kx] < x) ++kx;
    if (kx == n || pr.bases[kx] != x || kx > d)
      violation(sc, "damage reported at the wrong offset", "damaged from offset " + std::to_string(x) + "; the damage is in batch " +
                                                                 std::to_string(d));
    for (size_t i = 0; i < n; ++i) {
      cs.op = "read(" + std::to_string(pr.bases[i]) + ")";
      auto r = co_await log.read(pr.bases[i], 1 << 20);
      if (pr.bases[i] >= x) {
        if (r || r.err().code != make_error_code(errc::corrupt))
          violation(sc, "a damaged log served offsets past its damage", "read at " + std::to_string(pr.bases[i]) + " past " +
                                                                            std::to_string(x));
        continue;
      }
      if (!r || r.value().slices.empty() || r.value().next_offset > x) {
        violation(sc, "read before the damage", "read of batch " + std::to_string(i) + " before the damage at " + std::to_string(x) + ": " +
                                                    (r ? "next offset " + std::to_string(r.value().next_offset) : r.err().message));
        continue;
      }
      const read_slice& s = r.value().slices.front();
      bool epoch_only = false;
      if (!same_batch(s.data.data() + s.offset, s.length, pr.batches[i], &epoch_only))
        violation(sc, "read returned bytes that differ from the original", "batch " + std::to_string(i));
    }
    cs.op = "append() before the cut";
    if (co_await log.append(to_buffer(test_batch(98)))) violation(sc, "a damaged log took an append", "before its cut");
    cs.op = "truncate_suffix()";
    auto t = co_await log.truncate_suffix(x);
    if (!t || log.damaged_from() >= 0 || log.stats().next_offset != x) {
      violation(sc, "the owner's cut failed", t ? "damaged_from " + std::to_string(log.damaged_from()) : t.err().message);
    } else {
      cs.op = "append()";
      auto a = co_await log.append(to_buffer(test_batch(99)));
      if (!a || a.value().base_offset != x)
        violation(sc, "append after the cut", a ? "at offset " + std::to_string(a.value().base_offset) : a.err().message);
    }
    cs.op = "close()";
    co_await log.close();
  }

  static fs::path s_root;
  std::atomic<size_t> _repairs{0};
  std::atomic<size_t> _hangs{0};
  std::atomic<size_t> _violations{0};
  std::atomic<size_t> _open_errors{0};
  std::atomic<size_t> _failed_logs{0};
  std::atomic<size_t> _epoch_only{0};

  void report(const std::string& what, size_t cases) {
    std::printf("corruption test: %s: %zu cases, %zu read-only, %zu repairable, %zu refused to open, %zu reads with an "
                "undetectable leader epoch flip, %zu violations (%zu hangs)\n",
                what.c_str(), cases, _failed_logs.load(), _repairs.load(), _open_errors.load(), _epoch_only.load(),
                _violations.load(), _hangs.load());
    std::lock_guard lock(_mu);
    for (auto& [kind, t] : _tallies) {
      std::sort(t.positions.begin(), t.positions.end());
      t.positions.erase(std::unique(t.positions.begin(), t.positions.end()), t.positions.end());
      std::string positions;
      for (size_t i = 0; i < t.positions.size() && i < 40; ++i) positions += " " + std::to_string(t.positions[i]);
      if (t.positions.size() > 40) positions += " ...";
      std::string examples;
      for (const auto& e : t.examples) examples += "\n    " + e;
      ADD_FAILURE() << what << ": " << kind << ": " << t.count << " time(s), at " << t.positions.size()
                    << " position(s):" << positions << "\n  e.g." << examples;
    }
  }

  struct tally {
    size_t count = 0;
    std::vector<uint64_t> positions;
    std::vector<std::string> examples;
  };
  std::mutex _mu;
  std::map<std::string, tally> _tallies;
};

fs::path corruption_test::s_root;

// Small limits keep the cases fast: the write buffer, allocated by the one
// append of each case, is at least max_batch_bytes (1 MiB by default).
// 64 KiB still lets a damaged batchLength of up to 0xffff pass as plausible.
log_config small_config() {
  log_config cfg;
  cfg.index_interval_bytes = 512;  // a few index entries per segment
  cfg.max_batch_bytes = 64 << 10;
  cfg.write_buffer_bytes = 64 << 10;
  return cfg;
}
log_config one_segment_config() { return small_config(); }
log_config two_segment_config() {
  log_config cfg = small_config();
  cfg.segment_bytes = 2048;  // rolls after batch 5
  return cfg;
}

TEST_F(corruption_test, one_segment_every_byte_flipped) {
  const pristine_log pr = build("one", one_segment_config(), 10);
  ASSERT_EQ(pr.files.size(), 1u) << "one segment (partition.meta comes with the first roll)";
  ASSERT_GT(pr.where.back().pos + pr.where.back().size, 3800u);
  report("one segment, flips", sweep(pr, pr.active_file, damage::flip));
}

TEST_F(corruption_test, one_segment_truncated_everywhere) {
  const pristine_log pr = build("one", one_segment_config(), 10);
  report("one segment, truncations", sweep(pr, pr.active_file, damage::truncate));
}

TEST_F(corruption_test, closed_segment_every_byte_flipped) {
  const pristine_log pr = build("two", two_segment_config(), 8);
  ASSERT_EQ(pr.files.size(), 4u) << "two segments, the closed one's index and partition.meta";
  report("closed segment, flips", sweep(pr, pr.first_segment(), damage::flip));
}

TEST_F(corruption_test, closed_segment_truncated_everywhere) {
  const pristine_log pr = build("two", two_segment_config(), 8);
  report("closed segment, truncations", sweep(pr, pr.first_segment(), damage::truncate));
}

TEST_F(corruption_test, active_segment_after_a_closed_one_every_byte_flipped) {
  const pristine_log pr = build("two", two_segment_config(), 8);
  report("active segment of two, flips", sweep(pr, pr.active_file, damage::flip));
}

TEST_F(corruption_test, active_segment_after_a_closed_one_truncated_everywhere) {
  const pristine_log pr = build("two", two_segment_config(), 8);
  report("active segment of two, truncations", sweep(pr, pr.active_file, damage::truncate));
}

// A Raft replica's log (repairable, every closed segment verified at open):
// damage in a segment is reported at its first offset, never served, and
// cut by the owner.
log_config repairable_config() {
  log_config cfg = two_segment_config();
  cfg.repairable = true;
  cfg.verify_segments_on_open = true;
  return cfg;
}

TEST_F(corruption_test, repairable_closed_segment_every_byte_flipped) {
  const pristine_log pr = build("rep", repairable_config(), 8);
  report("repairable, closed segment, flips", sweep(pr, pr.first_segment(), damage::flip));
}

TEST_F(corruption_test, repairable_closed_segment_truncated_everywhere) {
  const pristine_log pr = build("rep", repairable_config(), 8);
  report("repairable, closed segment, truncations", sweep(pr, pr.first_segment(), damage::truncate));
}

TEST_F(corruption_test, repairable_active_segment_every_byte_flipped) {
  const pristine_log pr = build("rep", repairable_config(), 8);
  report("repairable, active segment, flips", sweep(pr, pr.active_file, damage::flip));
}

TEST_F(corruption_test, closed_segment_index_every_byte_flipped) {
  const pristine_log pr = build("two", two_segment_config(), 8);
  ASSERT_TRUE(pr.files.contains(pr.first_index()));
  report("index, flips", sweep(pr, pr.first_index(), damage::flip));
}

TEST_F(corruption_test, closed_segment_index_truncated_everywhere) {
  const pristine_log pr = build("two", two_segment_config(), 8);
  ASSERT_TRUE(pr.files.contains(pr.first_index()));
  report("index, truncations", sweep(pr, pr.first_index(), damage::truncate));
}

TEST_F(corruption_test, partition_meta_every_byte_flipped) {
  const pristine_log pr = build("two", two_segment_config(), 8);
  ASSERT_GT(pr.files.at("partition.meta").size(), meta_header_bytes) << "the closed segment's epochs are in it";
  report("partition.meta, flips", sweep(pr, "partition.meta", damage::flip));
}

TEST_F(corruption_test, partition_meta_truncated_everywhere) {
  const pristine_log pr = build("two", two_segment_config(), 8);
  report("partition.meta, truncations", sweep(pr, "partition.meta", damage::truncate));
}

}  // namespace
}  // namespace sluice::storage
