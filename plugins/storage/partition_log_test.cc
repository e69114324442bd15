// The partition log on a real io_uring shard and a real filesystem:
// append/read, roll, indexes, timestamps, retention, prefix truncation,
// group commit, recovery of torn tails and refusal of corrupt middles.
#include "partition_log.h"

#include "core/executor/test_util.h"
#include "crc32c.h"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <optional>

namespace sluice::storage {
namespace {

namespace fs = std::filesystem;
using executor::testing::run_on_shards;
using executor::testing::test_options;

class partition_log_test : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "storage_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    _root = fs::absolute(tmpl);
    _dir = (_root / "topic-0").string();
  }
  void TearDown() override { fs::remove_all(_root); }

  // Runs body with a log opened on a one-shard executor.
  void with_log(log_config cfg, std::function<sdk::task<void>(partition_log&)> body, uint64_t cache_bytes = 64 << 20) {
    run_on_shards(test_options(1), [&](executor::executor&) -> sdk::task<void> {
      batch_cache cache(cache_bytes);
      auto log = co_await partition_log::open(_dir, "topic/0", cfg, &cache);
      EXPECT_TRUE(log.has_value()) << (log ? "" : log.err().message);
      if (!log) co_return;
      co_await body(*log.value());
      co_await log.value()->close();
    });
  }

  static sdk::buffer batch_buffer(int32_t records, size_t value_bytes, int64_t ts, char fill = 'v') {
    const std::string b = make_test_batch(records, value_bytes, ts, fill);
    sdk::buffer buf = sdk::buffer::allocate(b.size());
    std::memcpy(buf.data(), b.data(), b.size());
    buf.set_size(b.size());
    return buf;
  }

  // A batch (or several back to back) with the given base offsets and leader
  // epochs, as a leader would send them to a replica.
  static sdk::buffer leader_batches(int64_t base, const std::vector<int32_t>& epochs, int32_t records = 2) {
    std::string all;
    for (int32_t epoch : epochs) {
      std::string b = make_test_batch(records, 50, base, 'r');
      set_base_offset(reinterpret_cast<uint8_t*>(b.data()), base);
      set_leader_epoch(reinterpret_cast<uint8_t*>(b.data()), epoch);
      all += b;
      base += records;
    }
    sdk::buffer buf = sdk::buffer::allocate(all.size());
    std::memcpy(buf.data(), all.data(), all.size());
    buf.set_size(all.size());
    return buf;
  }

  // The epoch table a scan of every batch gives (Kafka's rule), to compare
  // with the log's: one entry where a batch's epoch exceeds the last one.
  static std::vector<epoch_entry> epochs_of(const std::vector<batch_header>& hs, int64_t start) {
    epoch_table t;
    for (const auto& h : hs) t.observe(h.leader_epoch, std::max(h.base_offset, start));
    return t.entries();
  }

  // Appends `count` batches of `records` records stamped with `epoch`.
  static sdk::task<void> append_epoch(partition_log& log, int count, int32_t epoch, int32_t records = 2,
                                      size_t value_bytes = 50) {
    append_options stamp;
    stamp.leader_epoch = epoch;
    for (int i = 0; i < count; ++i) {
      sdk::buffer b = batch_buffer(records, value_bytes, 1000 + i, static_cast<char>('a' + epoch % 26));
      auto r = co_await log.append(b, stamp);
      EXPECT_TRUE(r.has_value()) << (r ? "" : r.err().message);
    }
  }

  // Every batch of the log, read from its start, as bytes.
  static sdk::task<std::vector<std::string>> all_batches(partition_log& log) {
    std::vector<std::string> out;
    int64_t cur = log.stats().start_offset;
    while (cur < log.stats().next_offset) {
      auto r = co_await log.read(cur, 1 << 20);
      EXPECT_TRUE(r.has_value()) << (r ? "" : r.err().message);
      if (!r || r.value().slices.empty()) break;
      headers(r.value());  // checks CRCs and the offset sequence
      for (const auto& sl : r.value().slices)
        out.emplace_back(reinterpret_cast<const char*>(sl.data.data() + sl.offset), sl.length);
      cur = r.value().next_offset;
    }
    EXPECT_EQ(cur, log.stats().next_offset);
    co_return out;
  }
  static std::vector<batch_header> headers_of(const std::vector<std::string>& batches) {
    std::vector<batch_header> out;
    for (const auto& b : batches) out.push_back(decode_header(reinterpret_cast<const uint8_t*>(b.data())));
    return out;
  }

  // 64 KiB segments: a few hundred batches of a KiB span a dozen of them.
  static log_config small_segments() {
    log_config cfg;
    cfg.segment_bytes = 64 << 10;
    cfg.write_buffer_bytes = 64 << 10;
    cfg.max_batch_bytes = 16 << 10;
    cfg.retention_ms = -1;
    return cfg;
  }

  // Reopens the log (no cache: reads go to the files) and checks it holds
  // exactly `kept`, ends at `end` and has the epoch table `epochs`, which
  // is also the table of its batches.
  void expect_reopened(const log_config& cfg, int64_t end, const std::vector<std::string>& kept,
                       const std::vector<epoch_entry>& epochs) {
    with_log(cfg, [&](partition_log& log) -> sdk::task<void> {
      EXPECT_FALSE(log.stats().failed);
      EXPECT_EQ(log.stats().next_offset, end);
      EXPECT_EQ(co_await all_batches(log), kept);
      EXPECT_EQ(log.epochs(), epochs);
      EXPECT_EQ(epochs_of(headers_of(kept), log.stats().start_offset), epochs);
    }, 0);
  }

  std::vector<std::string> files(const std::string& ext) const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(_dir))
      if (e.path().extension() == ext) out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }
  std::optional<partition_meta> meta_file() const {
    std::ifstream f(fs::path(_dir) / "partition.meta", std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    return decode_meta(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), nullptr);
  }
  void write_meta_file(const partition_meta& m) const {
    const std::string bytes = encode_meta(m);
    std::ofstream f(fs::path(_dir) / "partition.meta", std::ios::binary | std::ios::trunc);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }

  // Checks a read returns whole, valid, consecutive batches.
  static std::vector<batch_header> headers(const read_result& r) {
    std::vector<batch_header> out;
    for (const auto& s : r.slices) {
      batch_header h;
      EXPECT_EQ(check_batch(s.data.data() + s.offset, s.length, 1 << 24, &h), batch_check::ok);
      if (!out.empty()) {
        EXPECT_EQ(h.base_offset, out.back().last_offset() + 1);
      }
      out.push_back(h);
    }
    return out;
  }

  fs::path _root;
  std::string _dir;
};

TEST_F(partition_log_test, append_assigns_offsets_and_reads_return_whole_batches) {
  with_log({}, [](partition_log& log) -> sdk::task<void> {
    for (int i = 0; i < 100; ++i) {
      auto r = co_await log.append(batch_buffer(5, 100, 1000 + i));
      EXPECT_TRUE(r.has_value());
      if (!r) co_return;
      EXPECT_EQ(r.value().base_offset, i * 5);
      EXPECT_EQ(r.value().last_offset, i * 5 + 4);
    }
    EXPECT_EQ(log.stats().next_offset, 500);
    auto all = co_await log.read(0, 1 << 20);
    EXPECT_TRUE(all.has_value());
    auto hs = headers(all.value());
    EXPECT_EQ(hs.size(), 100u);
    EXPECT_EQ(hs.front().base_offset, 0);
    EXPECT_EQ(hs.back().last_offset(), 499);
    // From the middle of a batch: the whole batch containing it comes back.
    auto mid = co_await log.read(7, 1);
    EXPECT_EQ(headers(mid.value()).size(), 1u);
    EXPECT_EQ(mid.value().first_offset, 5);
    // max_offset (a high watermark) bounds the read.
    auto bounded = co_await log.read(0, 1 << 20, 12);
    EXPECT_EQ(headers(bounded.value()).back().last_offset(), 14);
    EXPECT_EQ(headers(bounded.value()).size(), 3u);
    // At the end: empty; past it or below the start: out of range.
    auto end = co_await log.read(500, 1 << 20);
    EXPECT_TRUE(end.has_value() && end.value().slices.empty());
    auto past = co_await log.read(501, 1 << 20);
    EXPECT_FALSE(past.has_value());
    EXPECT_EQ(past.err().code, make_error_code(errc::offset_out_of_range));
  });
}

TEST_F(partition_log_test, invalid_batches_are_refused_and_change_nothing) {
  with_log({}, [](partition_log& log) -> sdk::task<void> {
    sdk::buffer bad = batch_buffer(2, 50, 0);
    bad.data()[bad.size() - 1] ^= 1;
    auto r = co_await log.append(bad);
    EXPECT_FALSE(r.has_value());
    EXPECT_EQ(r.err().code, make_error_code(errc::invalid_batch));
    EXPECT_NE(r.err().message.find("CRC32C mismatch"), std::string::npos) << r.err().message;
    log_config small;
    sdk::buffer big = batch_buffer(1, 2 << 20, 0);
    r = co_await log.append(big);
    EXPECT_FALSE(r.has_value());
    EXPECT_EQ(r.err().code, make_error_code(errc::batch_too_large));
    // Several batches in one append: all or nothing.
    const std::string two = make_test_batch(1, 10, 0) + make_test_batch(1, 10, 0).substr(0, 40);
    sdk::buffer partial = sdk::buffer::allocate(two.size());
    std::memcpy(partial.data(), two.data(), two.size());
    partial.set_size(two.size());
    r = co_await log.append(partial);
    EXPECT_FALSE(r.has_value());
    EXPECT_EQ(log.stats().next_offset, 0);
    EXPECT_TRUE((co_await log.append(batch_buffer(1, 10, 0))).has_value());
    EXPECT_EQ(log.stats().next_offset, 1);
  });
}

TEST_F(partition_log_test, reopen_reads_from_disk_with_the_same_bytes) {
  std::vector<std::string> written;
  with_log({}, [&](partition_log& log) -> sdk::task<void> {
    for (int i = 0; i < 50; ++i) {
      auto b = batch_buffer(3, 333 + i, i, static_cast<char>('a' + i % 26));
      auto r = co_await log.append(b);
      EXPECT_TRUE(r.has_value());
      written.emplace_back(reinterpret_cast<const char*>(b.data()), b.size());
    }
    EXPECT_TRUE((co_await log.flush()).has_value());
  });
  // A clean close leaves zeros after the last batch (never stale bytes), so
  // the next open finds a clean end, not a torn tail.
  {
    size_t logical = 0;
    for (const auto& w : written) logical += w.size();
    std::ifstream f(fs::path(_dir) / "00000000000000000000.log", std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    EXPECT_EQ(bytes.size(), (logical + 4095) / 4096 * 4096);
    EXPECT_EQ(bytes.find_first_not_of('\0', logical), std::string::npos) << "stale bytes after the log end";
  }
  with_log({}, [&](partition_log& log) -> sdk::task<void> {
    EXPECT_EQ(log.stats().next_offset, 150);
    auto r = co_await log.read(0, 1 << 20);
    EXPECT_TRUE(r.has_value());
    EXPECT_EQ(r.value().slices.size(), written.size());
    for (size_t i = 0; i < std::min(written.size(), r.value().slices.size()); ++i) {
      const auto& s = r.value().slices[i];
      EXPECT_EQ(std::string(reinterpret_cast<const char*>(s.data.data() + s.offset), s.length), written[i]) << i;
    }
    // Appends continue after the partial tail page of the reopened segment.
    auto a = co_await log.append(batch_buffer(1, 10, 99));
    EXPECT_EQ(a.value().base_offset, 150);
  }, /*cache_bytes=*/0);  // no cache: every read goes to disk
  with_log({}, [&](partition_log& log) -> sdk::task<void> {
    EXPECT_EQ(log.stats().next_offset, 151);
    EXPECT_EQ(headers((co_await log.read(0, 1 << 20)).value()).size(), 51u);
    co_return;
  }, 0);
}

TEST_F(partition_log_test, segments_roll_by_size_and_age_and_indexes_survive) {
  log_config cfg;
  cfg.segment_bytes = 64 << 10;
  cfg.write_buffer_bytes = 64 << 10;
  cfg.max_batch_bytes = 16 << 10;
  with_log(cfg, [](partition_log& log) -> sdk::task<void> {
    for (int i = 0; i < 200; ++i) EXPECT_TRUE((co_await log.append(batch_buffer(4, 1000, i))).has_value());
    EXPECT_GE(log.stats().segments, 12u);
    EXPECT_TRUE((co_await log.flush()).has_value());
  });
  size_t logs = 0, indexes = 0;
  for (const auto& e : fs::directory_iterator(_dir)) {
    logs += e.path().extension() == ".log";
    indexes += e.path().extension() == ".index";
  }
  EXPECT_EQ(indexes + 1, logs);  // every closed segment has its index
  // One index is damaged, one missing: both are rebuilt.
  std::vector<fs::path> idx;
  for (const auto& e : fs::directory_iterator(_dir))
    if (e.path().extension() == ".index") idx.push_back(e.path());
  std::sort(idx.begin(), idx.end());
  fs::remove(idx[0]);
  { std::fstream f(idx[1], std::ios::in | std::ios::out | std::ios::binary); f.seekp(60); f.put('\x7f'); }
  with_log(cfg, [](partition_log& log) -> sdk::task<void> {
    EXPECT_EQ(log.stats().next_offset, 800);
    for (int64_t off : {0, 1, 123, 401, 799}) {
      auto r = co_await log.read(off, 1);
      EXPECT_TRUE(r.has_value());
      auto hs = headers(r.value());
      EXPECT_EQ(hs.size(), 1u);
      EXPECT_TRUE(hs[0].base_offset <= off && off <= hs[0].last_offset()) << off;
    }
    EXPECT_EQ(headers((co_await log.read(0, 1 << 30)).value()).size(), 200u);
  }, 0);
  log_config aged = cfg;
  aged.segment_ms = 1;
  with_log(aged, [](partition_log& log) -> sdk::task<void> {
    const uint32_t before = log.stats().segments;
    co_await sdk::sleep_ms(5);
    EXPECT_TRUE((co_await log.append(batch_buffer(1, 10, 0))).has_value());
    EXPECT_EQ(log.stats().segments, before + 1);
  });
}

TEST_F(partition_log_test, offsets_for_timestamps) {
  log_config cfg;
  cfg.segment_bytes = 16 << 10;
  with_log(cfg, [](partition_log& log) -> sdk::task<void> {
    for (int i = 0; i < 100; ++i) EXPECT_TRUE((co_await log.append(batch_buffer(2, 500, 1000 + 10 * i))).has_value());
    EXPECT_EQ((co_await log.offset_for_timestamp(0)).value(), 0);
    EXPECT_EQ((co_await log.offset_for_timestamp(1000)).value(), 0);
    EXPECT_EQ((co_await log.offset_for_timestamp(1001)).value(), 0);   // batch 0 holds ts 1000..1001
    EXPECT_EQ((co_await log.offset_for_timestamp(1002)).value(), 2);
    EXPECT_EQ((co_await log.offset_for_timestamp(1500)).value(), 100);
    EXPECT_EQ((co_await log.offset_for_timestamp(1991)).value(), 198);
    EXPECT_EQ((co_await log.offset_for_timestamp(5000)).value(), -1);
  });
}

TEST_F(partition_log_test, prefix_truncation_and_retention) {
  log_config cfg;
  cfg.segment_bytes = 16 << 10;
  cfg.retention_ms = -1;
  with_log(cfg, [](partition_log& log) -> sdk::task<void> {
    for (int i = 0; i < 100; ++i) EXPECT_TRUE((co_await log.append(batch_buffer(2, 500, 1000 + i))).has_value());
    const uint32_t segs = log.stats().segments;
    EXPECT_TRUE((co_await log.truncate_prefix(101)).has_value());
    EXPECT_EQ(log.stats().start_offset, 101);
    EXPECT_LT(log.stats().segments, segs);
    auto below = co_await log.read(100, 1 << 20);
    EXPECT_EQ(below.err().code, make_error_code(errc::offset_out_of_range));
    auto at = co_await log.read(101, 1);
    EXPECT_EQ(headers(at.value()).front().base_offset, 100);  // the batch holding 101
    // Below the start: nothing changes (past the end: see reset_* below).
    EXPECT_TRUE((co_await log.truncate_prefix(50)).has_value());
    EXPECT_EQ(log.stats().start_offset, 101);
  });
  cfg.retention_bytes = 40 << 10;
  with_log(cfg, [](partition_log& log) -> sdk::task<void> {
    EXPECT_EQ(log.stats().start_offset, 101);  // survived the restart
    EXPECT_TRUE((co_await log.apply_retention(0)).has_value());
    EXPECT_LE(log.stats().size_bytes, (40u << 10) + (16u << 10));
    EXPECT_GT(log.stats().start_offset, 101);
    const int64_t start = log.stats().start_offset;
    auto r = co_await log.read(start, 1);
    EXPECT_TRUE(r.has_value());
    EXPECT_EQ(log.stats().next_offset, 200);
  });
  cfg.retention_bytes = -1;
  cfg.retention_ms = 1000;
  with_log(cfg, [](partition_log& log) -> sdk::task<void> {
    // Record timestamps are 1000..1099 ms: all old at t = 10 s, but the
    // active segment always stays.
    EXPECT_TRUE((co_await log.apply_retention(10'000)).has_value());
    EXPECT_EQ(log.stats().segments, 1u);
    EXPECT_TRUE((co_await log.append(batch_buffer(1, 10, 5))).has_value());
  });
}

TEST_F(partition_log_test, concurrent_flushes_share_fdatasyncs) {
  with_log({}, [](partition_log& log) -> sdk::task<void> {
    sdk::gate g;
    int ok = 0;
    for (int w = 0; w < 64; ++w)
      sdk::spawn([](partition_log& log, int& ok, sdk::gate::holder) -> sdk::task<void> {
        for (int i = 0; i < 10; ++i) {
          auto a = co_await log.append(batch_buffer(1, 1000, i));
          auto f = co_await log.flush();
          if (a && f && f.value() > a.value().last_offset) ++ok;
        }
      }(log, ok, g.try_enter()));
    co_await g.close();
    EXPECT_EQ(ok, 640);
    EXPECT_EQ(log.stats().flushed_offset, 640);
    EXPECT_LT(log.stats().syncs, 320u) << "640 flushes should share fdatasyncs";
  });
}

TEST_F(partition_log_test, torn_tail_is_cut_and_zeroed) {
  with_log({}, [](partition_log& log) -> sdk::task<void> {
    for (int i = 0; i < 10; ++i) EXPECT_TRUE((co_await log.append(batch_buffer(2, 100, i))).has_value());
    EXPECT_TRUE((co_await log.flush()).has_value());
  });
  const fs::path seg = fs::path(_dir) / "00000000000000000000.log";
  // A torn write: the first 100 bytes of a batch after the end, plus junk.
  const std::string torn = make_test_batch(2, 100, 11).substr(0, 100) + std::string(5000, 'j');
  const auto size_before = fs::file_size(seg);
  const uintmax_t logical = 10 * make_test_batch(2, 100, 0).size();
  {
    std::fstream f(seg, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(logical));
    f.write(torn.data(), static_cast<std::streamsize>(torn.size()));
  }
  EXPECT_GT(fs::file_size(seg), size_before);
  with_log({}, [](partition_log& log) -> sdk::task<void> {
    EXPECT_EQ(log.stats().next_offset, 20);
    EXPECT_FALSE(log.stats().failed);
    auto a = co_await log.append(batch_buffer(1, 10, 0));
    EXPECT_EQ(a.value().base_offset, 20);
    EXPECT_TRUE((co_await log.flush()).has_value());
  });
  with_log({}, [](partition_log& log) -> sdk::task<void> {
    EXPECT_EQ(log.stats().next_offset, 21);
    EXPECT_EQ(headers((co_await log.read(0, 1 << 20)).value()).size(), 11u);
  }, 0);
}

TEST_F(partition_log_test, corrupt_middle_makes_the_log_read_only_not_shorter) {
  const size_t batch = make_test_batch(2, 100, 0).size();
  with_log({}, [](partition_log& log) -> sdk::task<void> {
    for (int i = 0; i < 10; ++i) EXPECT_TRUE((co_await log.append(batch_buffer(2, 100, i))).has_value());
    EXPECT_TRUE((co_await log.flush()).has_value());
  });
  const fs::path seg = fs::path(_dir) / "00000000000000000000.log";
  {
    std::fstream f(seg, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(3 * batch + 70));  // inside batch 3's records
    f.put('\x01');
  }
  with_log({}, [](partition_log& log) -> sdk::task<void> {
    EXPECT_TRUE(log.stats().failed);
    auto a = co_await log.append(batch_buffer(1, 10, 0));
    EXPECT_FALSE(a.has_value());
    EXPECT_EQ(a.err().code, make_error_code(errc::corrupt));
    EXPECT_NE(a.err().message.find("corrupt at byte"), std::string::npos) << a.err().message;
    // The intact prefix is still readable.
    auto r = co_await log.read(0, 1 << 20, 6);
    EXPECT_TRUE(r.has_value());
    EXPECT_EQ(headers(r.value()).size(), 3u);
  }, 0);
  EXPECT_GE(fs::file_size(seg), 10 * batch);  // nothing was cut
}

TEST_F(partition_log_test, a_vanished_directory_is_an_error_for_that_log_only) {
  const std::string other_dir = (_root / "other-0").string();
  log_config cfg;
  cfg.segment_ms = 1;  // every append after a pause rolls: creates a file
  run_on_shards(test_options(1), [&](executor::executor&) -> sdk::task<void> {
    batch_cache cache(1 << 20);
    auto a = co_await partition_log::open(_dir, "topic/0", cfg, &cache);
    auto b = co_await partition_log::open(other_dir, "other/0", cfg, &cache);
    EXPECT_TRUE(a && b);
    if (!a || !b) co_return;
    EXPECT_TRUE((co_await a.value()->append(batch_buffer(1, 10, 0))).has_value());
    fs::remove_all(_dir);
    co_await sdk::sleep_ms(3);
    auto r = co_await a.value()->append(batch_buffer(1, 10, 0));
    EXPECT_FALSE(r.has_value());
    if (!r) {
      EXPECT_EQ(r.err().code, make_error_code(errc::io_error)) << r.err().message;
      EXPECT_NE(r.err().message.find(_dir), std::string::npos) << r.err().message;
    }
    // The other partition is unaffected.
    EXPECT_TRUE((co_await b.value()->append(batch_buffer(1, 10, 0))).has_value());
    EXPECT_TRUE((co_await b.value()->flush()).has_value());
    co_await a.value()->close();
    co_await b.value()->close();
  });
}

TEST_F(partition_log_test, a_closed_segment_cut_short_is_refused_not_looped_on) {
  log_config cfg;
  cfg.segment_bytes = 64 << 10;
  with_log(cfg, [](partition_log& log) -> sdk::task<void> {
    for (int i = 0; i < 40; ++i) EXPECT_TRUE((co_await log.append(batch_buffer(2, 3000, i))).has_value());
  });
  // Cut the first (closed) segment while its index still says it is whole.
  const fs::path first = fs::path(_dir) / "00000000000000000000.log";
  fs::resize_file(first, 8192);
  with_log(cfg, [](partition_log& log) -> sdk::task<void> {
    auto r = co_await log.read(0, 1 << 20);
    // The batches before the cut are served; the read stops with an error
    // at the cut, never with bytes that are not there.
    if (r) {
      for (const auto& h : headers(r.value())) EXPECT_LT(h.size_bytes(), 8192u);
    } else {
      EXPECT_EQ(r.err().code, make_error_code(errc::corrupt)) << r.err().message;
    }
    auto past = co_await log.read(10, 1 << 20);
    EXPECT_FALSE(past.has_value());
  }, 0);
}

TEST_F(partition_log_test, deleted_segments_are_recycled_and_their_old_bytes_never_read) {
  log_config cfg;
  cfg.segment_bytes = 64 << 10;
  cfg.write_buffer_bytes = 64 << 10;
  cfg.max_batch_bytes = 16 << 10;
  cfg.retention_bytes = 128 << 10;
  cfg.retention_ms = -1;
  int64_t end = 0;
  with_log(cfg, [&](partition_log& log) -> sdk::task<void> {
    // Several rounds: fill, let retention turn old segments into spares,
    // fill again (new segments reuse the spares' files).
    for (int round = 0; round < 6; ++round) {
      for (int i = 0; i < 40; ++i)
        EXPECT_TRUE((co_await log.append(batch_buffer(2, 1500, round * 100 + i, static_cast<char>('a' + round)))).has_value());
      EXPECT_TRUE((co_await log.apply_retention(0)).has_value());
    }
    // A short tail in the (recycled) active segment: old bytes follow it.
    EXPECT_TRUE((co_await log.append(batch_buffer(1, 100, 999, 'z'))).has_value());
    EXPECT_TRUE((co_await log.flush()).has_value());
    end = log.stats().next_offset;
  });
  size_t spares = 0;
  for (const auto& e : fs::directory_iterator(_dir)) spares += e.path().extension() == ".seg";
  EXPECT_GE(spares, 1u);
  with_log(cfg, [&](partition_log& log) -> sdk::task<void> {
    EXPECT_FALSE(log.stats().failed);
    EXPECT_EQ(log.stats().next_offset, end);  // nothing cut, nothing resurrected
    const int64_t start = log.stats().start_offset;
    auto r = co_await log.read(start, 1 << 30);
    EXPECT_TRUE(r.has_value());
    auto hs = headers(r.value());
    EXPECT_FALSE(hs.empty());
    if (!hs.empty()) {
      EXPECT_EQ(hs.back().last_offset() + 1, end);
      EXPECT_EQ(hs.back().record_count, 1);  // the 'z' batch is the last
    }
    // Appends continue in the recycled active segment.
    EXPECT_EQ((co_await log.append(batch_buffer(1, 10, 0))).value().base_offset, end);
  }, 0);
}

TEST_F(partition_log_test, small_cache_still_serves_everything_from_disk) {
  with_log({}, [](partition_log& log) -> sdk::task<void> {
    for (int i = 0; i < 300; ++i) EXPECT_TRUE((co_await log.append(batch_buffer(1, 4000, i))).has_value());
    for (int64_t off = 0; off < 300; off += 37) {
      auto r = co_await log.read(off, 10'000);
      EXPECT_TRUE(r.has_value());
      auto hs = headers(r.value());
      EXPECT_FALSE(hs.empty());
      if (!hs.empty()) {
        EXPECT_EQ(hs.front().base_offset, off);
      }
    }
  }, /*cache_bytes=*/16 << 10);
}

// ---- replica appends and leader epochs (Raft) ----------------------------------

TEST_F(partition_log_test, replica_append_keeps_the_leaders_offsets_or_writes_nothing) {
  with_log({}, [](partition_log& log) -> sdk::task<void> {
    EXPECT_TRUE((co_await log.append(batch_buffer(3, 10, 0))).has_value());  // offsets 0..2
    append_options replica;
    replica.keep_offsets = true;
    // Three contiguous batches from offset 3.
    sdk::buffer three = leader_batches(3, std::vector<int32_t>(3, 1));
    auto a = co_await log.append(three, replica);
    EXPECT_TRUE(a.has_value()) << (a ? "" : a.err().message);
    if (a) {
      EXPECT_EQ(a.value().base_offset, 3);
      EXPECT_EQ(a.value().last_offset, 8);
      EXPECT_EQ(a.value().batches, 3u);
    }
    // A gap before the first batch, and an overlap: refused, naming both offsets.
    const std::vector<int64_t> wrong_bases = {10, 7};
    const std::vector<int32_t> epoch_1 = {1};
    for (int64_t base : wrong_bases) {
      sdk::buffer one = leader_batches(base, epoch_1);
      auto r = co_await log.append(one, replica);
      EXPECT_FALSE(r.has_value());
      if (r) continue;
      EXPECT_EQ(r.err().code, make_error_code(errc::offset_out_of_range));
      EXPECT_NE(r.err().message.find("base offset " + std::to_string(base)), std::string::npos) << r.err().message;
      EXPECT_NE(r.err().message.find("next offset is 9"), std::string::npos) << r.err().message;
    }
    // Batches not contiguous among themselves: refused whole.
    std::string gap;
    const std::vector<int64_t> gap_bases = {9, 12};
    for (int64_t base : gap_bases) {
      std::string b = make_test_batch(2, 10, 0);
      set_base_offset(reinterpret_cast<uint8_t*>(b.data()), base);
      gap += b;
    }
    sdk::buffer gb = sdk::buffer::allocate(gap.size());
    std::memcpy(gb.data(), gap.data(), gap.size());
    gb.set_size(gap.size());
    auto g = co_await log.append(gb, replica);
    EXPECT_FALSE(g.has_value());
    if (!g) {
      EXPECT_EQ(g.err().code, make_error_code(errc::offset_out_of_range));
      EXPECT_NE(g.err().message.find("expected 11"), std::string::npos) << g.err().message;
    }
    // Nothing of the refused appends was written.
    EXPECT_EQ(log.stats().next_offset, 9);
    auto all = co_await log.read(0, 1 << 20);
    auto hs = headers(all.value());
    EXPECT_EQ(hs.size(), 4u);
    EXPECT_EQ(hs.back().last_offset(), 8);
    // And appends go on, replica or not.
    sdk::buffer next = leader_batches(9, std::vector<int32_t>(1, 2));
    EXPECT_EQ((co_await log.append(next, replica)).value().base_offset, 9);
    EXPECT_EQ((co_await log.append(batch_buffer(1, 10, 0))).value().base_offset, 11);
  });
}

TEST_F(partition_log_test, leader_epochs_are_stamped_or_kept_and_tabled) {
  with_log({}, [](partition_log& log) -> sdk::task<void> {
    EXPECT_EQ(log.stats().last_epoch, -1);
    // Client batches (epoch -1) without stamping: no entry.
    EXPECT_TRUE((co_await log.append(batch_buffer(2, 10, 0))).has_value());
    EXPECT_TRUE(log.epochs().empty());
    // Stamped: the field is rewritten, the CRC still holds (the field is outside it).
    append_options stamp;
    stamp.leader_epoch = 3;
    sdk::buffer two = batch_buffer(2, 10, 0);
    const std::string one = make_test_batch(2, 10, 0);
    std::string both = one + one;
    sdk::buffer b = sdk::buffer::allocate(both.size());
    std::memcpy(b.data(), both.data(), both.size());
    b.set_size(both.size());
    EXPECT_TRUE((co_await log.append(b, stamp)).has_value());  // offsets 2..5, epoch 3
    // A replica append keeps the leader's stamps (here 3, then 5), and a
    // lower epoch than the last entry's makes no entry.
    append_options replica;
    replica.keep_offsets = true;
    const std::vector<int32_t> leader_epochs = {3, 5, 4, 5};
    sdk::buffer four = leader_batches(6, leader_epochs);
    EXPECT_TRUE((co_await log.append(four, replica)).has_value());  // 6..13
    // Stamping assigned offsets and the epoch in one pass.
    stamp.leader_epoch = 7;
    EXPECT_TRUE((co_await log.append(two, stamp)).has_value());  // 14..15
    const std::vector<epoch_entry> want = {{3, 2}, {5, 8}, {7, 14}};
    EXPECT_EQ(log.epochs(), want);
    EXPECT_EQ(log.stats().last_epoch, 7);
    auto all = co_await log.read(0, 1 << 20);
    auto hs = headers(all.value());  // checks every CRC
    std::vector<int32_t> stamped;
    for (const auto& h : hs) stamped.push_back(h.leader_epoch);
    EXPECT_EQ(stamped, (std::vector<int32_t>{-1, 3, 3, 3, 5, 4, 5, 7}));
    EXPECT_EQ(epochs_of(hs, 0), want);
  }, 0);
  // A log that never rolled has no partition.meta (it comes with the first
  // roll); its table comes from its one segment's batches after a restart.
  EXPECT_FALSE(fs::exists(fs::path(_dir) / "partition.meta"));
  with_log({}, [](partition_log& log) -> sdk::task<void> {
    const std::vector<epoch_entry> want = {{3, 2}, {5, 8}, {7, 14}};
    EXPECT_EQ(log.epochs(), want);
    EXPECT_EQ(log.stats().last_epoch, 7);
    co_return;
  });
}

// ---- suffix truncation ---------------------------------------------------------

TEST_F(partition_log_test, truncate_suffix_in_the_active_segment) {
  std::vector<std::string> kept;
  with_log({}, [&](partition_log& log) -> sdk::task<void> {
    co_await append_epoch(log, 4, 1);  // 0..7
    co_await append_epoch(log, 2, 2);  // 8..11
    EXPECT_TRUE((co_await log.flush()).has_value());
    co_await append_epoch(log, 4, 2);  // 12..19, not flushed
    // Not a boundary, out of range, the end: refused or nothing to do.
    auto r = co_await log.truncate_suffix(9);
    EXPECT_EQ(r.err().code, make_error_code(errc::offset_out_of_range));
    EXPECT_NE(r.err().message.find("nearest boundaries are 8 and 10"), std::string::npos) << r.err().message;
    for (int64_t bad : {-1, 21}) {
      r = co_await log.truncate_suffix(bad);
      EXPECT_EQ(r.err().code, make_error_code(errc::offset_out_of_range));
      EXPECT_NE(r.err().message.find("[0, 20]"), std::string::npos) << r.err().message;
    }
    EXPECT_TRUE((co_await log.truncate_suffix(20)).has_value());
    EXPECT_EQ(log.stats().next_offset, 20);

    EXPECT_TRUE((co_await log.truncate_suffix(14)).has_value());
    EXPECT_EQ(log.stats().next_offset, 14);
    EXPECT_EQ(log.stats().flushed_offset, 14);  // durable on return
    EXPECT_EQ(headers((co_await log.read(0, 1 << 20)).value()).back().last_offset(), 13);
    EXPECT_TRUE((co_await log.read(14, 1 << 20)).value().slices.empty());
    EXPECT_EQ((co_await log.read(15, 1 << 20)).err().code, make_error_code(errc::offset_out_of_range));
    // A new term appends at the cut, and is cut again to the previous term's start.
    co_await append_epoch(log, 2, 3);  // 14..17
    std::vector<epoch_entry> want = {{1, 0}, {2, 8}, {3, 14}};
    EXPECT_EQ(log.epochs(), want);
    EXPECT_TRUE((co_await log.truncate_suffix(8)).has_value());
    want = {{1, 0}};
    EXPECT_EQ(log.epochs(), want);
    EXPECT_EQ(log.stats().last_epoch, 1);
    co_await append_epoch(log, 1, 4);  // 8..9
    want = {{1, 0}, {4, 8}};
    EXPECT_EQ(log.epochs(), want);
    kept = co_await all_batches(log);
    EXPECT_EQ(kept.size(), 5u);
  });
  // The cut went to disk as zeros: nothing of the removed batches is left.
  {
    std::ifstream f(fs::path(_dir) / "00000000000000000000.log", std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    size_t logical = 0;
    for (const auto& b : kept) logical += b.size();
    EXPECT_EQ(bytes.find_first_not_of('\0', logical), std::string::npos) << "removed bytes after the log end";
  }
  expect_reopened({}, 10, kept, {{1, 0}, {4, 8}});
}

TEST_F(partition_log_test, truncate_suffix_across_segments) {
  const log_config cfg = small_segments();
  std::vector<std::string> kept;
  with_log(cfg, [&](partition_log& log) -> sdk::task<void> {
    for (int32_t epoch = 0; epoch < 4; ++epoch) co_await append_epoch(log, 50, epoch, 4, 1000);  // 800 offsets
    EXPECT_GE(log.stats().segments, 12u);
    const uint32_t before = log.stats().segments;
    // Offset 148: the 38th batch, in the third segment or so.
    EXPECT_TRUE((co_await log.truncate_suffix(148)).has_value());
    EXPECT_EQ(log.stats().next_offset, 148);
    EXPECT_LT(log.stats().segments, before);
    const std::vector<epoch_entry> want = {{0, 0}};
    EXPECT_EQ(log.epochs(), want);
    EXPECT_EQ(headers((co_await log.read(0, 1 << 30)).value()).size(), 37u);
    // The new end continues, across new rolls.
    co_await append_epoch(log, 40, 5, 4, 1000);
    EXPECT_EQ(log.stats().next_offset, 148 + 160);
    kept = co_await all_batches(log);
  });
  // No file of the removed segments is left, and every segment file
  // follows the previous one (no index of the cut segment survives).
  const auto logs = files(".log");
  EXPECT_EQ(files(".index").size() + 1, logs.size());
  EXPECT_TRUE(std::is_sorted(logs.begin(), logs.end()));
  expect_reopened(cfg, 308, kept, {{0, 0}, {5, 148}});
}

TEST_F(partition_log_test, truncate_suffix_to_a_segment_base_and_to_the_start) {
  const log_config cfg = small_segments();
  int64_t second_base = 0;
  with_log(cfg, [&](partition_log& log) -> sdk::task<void> {
    co_await append_epoch(log, 40, 1, 4, 1000);
    EXPECT_GE(log.stats().segments, 2u);
    second_base = std::stoll(files(".log")[1].substr(0, 20));
    // At a segment's base: that segment stays, empty, as the active one.
    EXPECT_TRUE((co_await log.truncate_suffix(second_base)).has_value());
    EXPECT_EQ(log.stats().segments, 2u);
    EXPECT_EQ(log.stats().next_offset, second_base);
    co_await append_epoch(log, 1, 2, 4, 1000);
    EXPECT_EQ(log.stats().next_offset, second_base + 4);
  });
  with_log(cfg, [&](partition_log& log) -> sdk::task<void> {
    EXPECT_EQ(log.stats().next_offset, second_base + 4);
    const std::vector<epoch_entry> want = {{1, 0}, {2, second_base}};
    EXPECT_EQ(log.epochs(), want);
    // DeleteRecords inside a batch, then everything after the start goes:
    // the batch holding the start too, and the log continues at the start.
    EXPECT_TRUE((co_await log.truncate_prefix(5)).has_value());
    const std::vector<epoch_entry> clipped = {{1, 5}, {2, second_base}};
    EXPECT_EQ(log.epochs(), clipped);
    EXPECT_TRUE((co_await log.truncate_suffix(5)).has_value());
    EXPECT_EQ(log.stats().start_offset, 5);
    EXPECT_EQ(log.stats().next_offset, 5);
    EXPECT_EQ(log.stats().segments, 1u);
    EXPECT_TRUE(log.epochs().empty());
    EXPECT_TRUE((co_await log.read(5, 1 << 20)).value().slices.empty());
    co_await append_epoch(log, 2, 3);
    EXPECT_EQ(headers((co_await log.read(5, 1 << 20)).value()).front().base_offset, 5);
  });
  with_log(cfg, [&](partition_log& log) -> sdk::task<void> {
    EXPECT_EQ(log.stats().start_offset, 5);
    EXPECT_EQ(log.stats().next_offset, 9);
    const std::vector<epoch_entry> want = {{3, 5}};
    EXPECT_EQ(log.epochs(), want);
    auto hs = headers((co_await log.read(5, 1 << 20)).value());
    EXPECT_EQ(hs.size(), 2u);
    EXPECT_EQ(hs.front().base_offset, 5);
  }, 0);
}

TEST_F(partition_log_test, truncate_suffix_while_appends_flushes_and_reads_run) {
  int64_t end = 0;
  std::vector<std::string> kept;
  const log_config cfg = small_segments();
  with_log(cfg, [&](partition_log& log) -> sdk::task<void> {
    sdk::gate g;
    int64_t cut = -1;
    for (int w = 0; w < 16; ++w)
      sdk::spawn([](partition_log& log, int w, int64_t& cut, sdk::gate::holder) -> sdk::task<void> {
        for (int i = 0; i < 20; ++i) {
          auto a = co_await log.append(batch_buffer(2, 500, i));
          EXPECT_TRUE(a.has_value());
          if (w == 0 && i == 5 && a) cut = a.value().base_offset;  // a boundary to cut at later
          if (i % 3 == 0) {
            EXPECT_TRUE((co_await log.flush()).has_value());
          }
          auto r = co_await log.read(log.stats().start_offset, 1 << 16);
          EXPECT_TRUE(r.has_value()) << (r ? "" : r.err().message);
          if (r) headers(r.value());
        }
      }(log, w, cut, g.try_enter()));
    while (cut < 0) co_await sdk::sleep_ms(1);
    auto t = co_await log.truncate_suffix(cut);
    EXPECT_TRUE(t.has_value()) << (t ? "" : t.err().message);
    co_await g.close();
    EXPECT_FALSE(log.stats().failed);
    EXPECT_LE(log.stats().flushed_offset, log.stats().next_offset);
    EXPECT_TRUE((co_await log.flush()).has_value());
    end = log.stats().next_offset;
    kept = co_await all_batches(log);
  });
  expect_reopened(cfg, end, kept, epochs_of(headers_of(kept), 0));
}

// ---- the epoch table across restarts and crashes --------------------------------

TEST_F(partition_log_test, epoch_table_follows_prefix_truncation_and_retention) {
  log_config cfg;
  cfg.segment_bytes = 16 << 10;
  cfg.retention_ms = -1;
  with_log(cfg, [](partition_log& log) -> sdk::task<void> {
    for (int32_t epoch = 1; epoch <= 4; ++epoch) co_await append_epoch(log, 25, epoch, 2, 500);  // 200 offsets
    const std::vector<epoch_entry> all = {{1, 0}, {2, 50}, {3, 100}, {4, 150}};
    EXPECT_EQ(log.epochs(), all);
    EXPECT_TRUE((co_await log.truncate_prefix(101)).has_value());
    const std::vector<epoch_entry> clipped = {{3, 101}, {4, 150}};
    EXPECT_EQ(log.epochs(), clipped);
  });
  with_log(cfg, [](partition_log& log) -> sdk::task<void> {
    const std::vector<epoch_entry> clipped = {{3, 101}, {4, 150}};
    EXPECT_EQ(log.epochs(), clipped);
    // DeleteRecords of everything: the last entry stays, at the empty log's start.
    EXPECT_TRUE((co_await log.truncate_prefix(200)).has_value());
    const std::vector<epoch_entry> head = {{4, 200}};
    EXPECT_EQ(log.epochs(), head);
    co_return;
  });
  with_log(cfg, [](partition_log& log) -> sdk::task<void> {
    const std::vector<epoch_entry> head = {{4, 200}};
    EXPECT_EQ(log.epochs(), head);  // only partition.meta knows it: no batch is left
    co_await append_epoch(log, 1, 4);
    EXPECT_EQ(log.epochs(), head);  // the same epoch: no entry
    co_await append_epoch(log, 1, 6);
    const std::vector<epoch_entry> next = {{4, 200}, {6, 202}};
    EXPECT_EQ(log.epochs(), next);
  });
  cfg.retention_bytes = 16 << 10;
  with_log(cfg, [](partition_log& log) -> sdk::task<void> {
    const std::vector<epoch_entry> next = {{4, 200}, {6, 202}};
    EXPECT_EQ(log.epochs(), next);
    co_await append_epoch(log, 60, 7, 2, 500);  // rolls; retention deletes the segments of epochs 4 and 6
    EXPECT_GT(log.stats().start_offset, 204);
    const std::vector<epoch_entry> kept = {{7, log.stats().start_offset}};
    EXPECT_EQ(log.epochs(), kept);
  });
}

TEST_F(partition_log_test, epoch_table_survives_a_torn_tail) {
  with_log({}, [](partition_log& log) -> sdk::task<void> {
    co_await append_epoch(log, 5, 1);  // 0..9
    EXPECT_TRUE((co_await log.flush()).has_value());
    co_await append_epoch(log, 1, 2);  // 10..11
    // partition.meta now names epoch 2 (it holds the whole table).
    EXPECT_TRUE((co_await log.truncate_prefix(1)).has_value());
    const std::vector<epoch_entry> want = {{1, 1}, {2, 10}};
    EXPECT_EQ(log.epochs(), want);
  });
  const std::vector<epoch_entry> on_disk = {{1, 1}, {2, 10}};
  EXPECT_EQ(meta_file()->epochs, on_disk);
  // A crash tore the last batch (epoch 2): flip a byte of its records.
  const size_t batch = make_test_batch(2, 50, 0).size();
  {
    std::fstream f(fs::path(_dir) / "00000000000000000000.log", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(5 * batch + 80));
    f.put('\x5a');
  }
  with_log({}, [](partition_log& log) -> sdk::task<void> {
    EXPECT_FALSE(log.stats().failed);
    EXPECT_EQ(log.stats().next_offset, 10);
    const std::vector<epoch_entry> want = {{1, 1}};
    EXPECT_EQ(log.epochs(), want);
    EXPECT_EQ(log.stats().last_epoch, 1);
    co_await append_epoch(log, 1, 3);
    const std::vector<epoch_entry> next = {{1, 1}, {3, 10}};
    EXPECT_EQ(log.epochs(), next);
  });
}

TEST_F(partition_log_test, epoch_table_is_rebuilt_when_partition_meta_is_old_damaged_or_missing) {
  log_config cfg;
  cfg.segment_bytes = 16 << 10;
  cfg.retention_ms = -1;
  const std::vector<epoch_entry> want = {{1, 0}, {2, 50}, {5, 100}, {6, 150}};
  with_log(cfg, [](partition_log& log) -> sdk::task<void> {
    for (int32_t epoch : {1, 2, 5, 6}) co_await append_epoch(log, 25, epoch, 2, 500);
  });
  EXPECT_EQ(meta_file()->version, meta_version);
  // Version 1 (start offset only), a flipped byte, no file at all.
  for (int variant = 0; variant < 3; ++variant) {
    const fs::path meta = fs::path(_dir) / "partition.meta";
    if (variant == 0) {
      uint8_t v1[24] = {};
      write_be32(v1, static_cast<int32_t>(meta_magic));
      write_be32(v1 + 4, 1);
      write_be64(v1 + 8, 0);
      write_be32(v1 + 16, static_cast<int32_t>(crc32c(0, v1, 16)));
      std::ofstream(meta, std::ios::binary | std::ios::trunc).write(reinterpret_cast<const char*>(v1), 24);
    } else if (variant == 1) {
      std::fstream f(meta, std::ios::in | std::ios::out | std::ios::binary);
      f.seekp(40);
      f.put('\x7f');
    } else {
      fs::remove(meta);
    }
    with_log(cfg, [&](partition_log& log) -> sdk::task<void> {
      EXPECT_EQ(log.epochs(), want) << "variant " << variant;
      EXPECT_EQ(log.stats().next_offset, 200);
      co_return;
    });
    // Rewritten in the current version.
    EXPECT_EQ(meta_file()->version, meta_version) << "variant " << variant;
    EXPECT_EQ(meta_file()->epochs.size(), want.size()) << "variant " << variant;
  }
}

TEST_F(partition_log_test, an_interrupted_truncation_is_finished_at_open) {
  log_config cfg;
  cfg.segment_bytes = 16 << 10;
  cfg.retention_ms = -1;
  const fs::path snapshot = _root / "before";
  std::vector<std::string> kept;
  std::vector<epoch_entry> epochs_after;
  with_log(cfg, [&](partition_log& log) -> sdk::task<void> {
    for (int32_t epoch = 1; epoch <= 4; ++epoch) co_await append_epoch(log, 25, epoch, 2, 500);
  });
  fs::copy(_dir, snapshot);
  with_log(cfg, [&](partition_log& log) -> sdk::task<void> {
    EXPECT_TRUE((co_await log.truncate_suffix(66)).has_value());
    kept = co_await all_batches(log);
    epochs_after = log.epochs();
  });
  const std::vector<epoch_entry> want = {{1, 0}, {2, 50}};
  EXPECT_EQ(epochs_after, want);
  // A crash right after the new end was recorded: the old segments, the
  // new partition.meta. Then one after the later segments were deleted.
  // Then one in the middle of the cut: the page of the new end zeroed after
  // it, the later pages (older batches, higher offsets) not yet punched.
  for (int variant = 0; variant < 3; ++variant) {
    fs::remove_all(_dir);
    fs::copy(snapshot, _dir);
    if (variant >= 1)
      for (const auto& f : files(".log"))
        if (std::stoll(f.substr(0, 20)) > 66) fs::remove(fs::path(_dir) / f);
    if (variant == 2) {
      const fs::path seg = fs::path(_dir) / files(".log").back();
      std::fstream f(seg, std::ios::in | std::ios::out | std::ios::binary);
      std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
      size_t pos = 0;
      while (read_be64(reinterpret_cast<const uint8_t*>(bytes.data() + pos)) != 66)
        pos += decode_header(reinterpret_cast<const uint8_t*>(bytes.data() + pos)).size_bytes();
      ASSERT_NE(pos % 4096, 0u);
      const size_t page_end = (pos / 4096 + 1) * 4096;
      ASSERT_LT(page_end + 4096, bytes.size()) << "later pages hold batches past the cut";
      f.seekp(static_cast<std::streamoff>(pos));
      const std::string zeros(page_end - pos, '\0');
      f.write(zeros.data(), static_cast<std::streamsize>(zeros.size()));
    }
    partition_meta m;
    m.start_offset = 0;
    m.truncating_to = 66;
    m.epochs = want;
    write_meta_file(m);
    with_log(cfg, [&](partition_log& log) -> sdk::task<void> {
      EXPECT_FALSE(log.stats().failed);
      EXPECT_EQ(log.stats().next_offset, 66) << "variant " << variant;
      EXPECT_EQ(log.epochs(), want) << "variant " << variant;
      EXPECT_EQ(co_await all_batches(log), kept) << "variant " << variant;
    }, 0);
    EXPECT_EQ(meta_file()->truncating_to, -1) << "the record of the cut is cleared";
    with_log(cfg, [&](partition_log& log) -> sdk::task<void> {
      EXPECT_EQ(log.stats().next_offset, 66);
      co_await append_epoch(log, 1, 9);
      EXPECT_EQ(log.stats().next_offset, 68);
    });
    with_log(cfg, [&](partition_log& log) -> sdk::task<void> {
      EXPECT_EQ(log.stats().next_offset, 68) << "the appends after the cut survive the next open";
      co_return;
    });
  }
}

// ---- reset: truncate_prefix past the end ---------------------------------------

TEST_F(partition_log_test, reset_past_the_end_empties_the_log_there) {
  with_log({}, [](partition_log& log) -> sdk::task<void> {
    co_await append_epoch(log, 10, 1);  // 0..19
    EXPECT_TRUE((co_await log.truncate_prefix(1000)).has_value());
    const log_stats st = log.stats();
    EXPECT_EQ(st.start_offset, 1000);
    EXPECT_EQ(st.next_offset, 1000);
    EXPECT_EQ(st.flushed_offset, 1000);
    EXPECT_EQ(st.segments, 1u);
    EXPECT_EQ(st.last_epoch, -1);
    EXPECT_TRUE(log.epochs().empty());
    EXPECT_TRUE((co_await log.read(1000, 1 << 20)).value().slices.empty());
    EXPECT_EQ((co_await log.read(19, 1 << 20)).err().code, make_error_code(errc::offset_out_of_range));
    // A follower continues with the leader's offsets.
    append_options replica;
    replica.keep_offsets = true;
    sdk::buffer b = leader_batches(1000, std::vector<int32_t>(2, 7));
    EXPECT_TRUE((co_await log.append(b, replica)).has_value());
    // Below the start: nothing changes.
    EXPECT_TRUE((co_await log.truncate_prefix(10)).has_value());
    EXPECT_EQ(log.stats().start_offset, 1000);
  });
  EXPECT_EQ(files(".log"), std::vector<std::string>{"00000000000000001000.log"});
  with_log({}, [](partition_log& log) -> sdk::task<void> {
    EXPECT_EQ(log.stats().start_offset, 1000);
    EXPECT_EQ(log.stats().next_offset, 1004);
    const std::vector<epoch_entry> want = {{7, 1000}};
    EXPECT_EQ(log.epochs(), want);
    auto hs = headers((co_await log.read(1000, 1 << 20)).value());
    EXPECT_EQ(hs.size(), 2u);
  }, 0);
  // A crash after the new start was recorded, before the old segments went:
  // the next open finishes the reset.
  with_log({}, [](partition_log& log) -> sdk::task<void> { co_await append_epoch(log, 3, 8); });
  partition_meta m;
  m.start_offset = 5000;
  write_meta_file(m);
  with_log({}, [](partition_log& log) -> sdk::task<void> {
    EXPECT_FALSE(log.stats().failed);
    EXPECT_EQ(log.stats().start_offset, 5000);
    EXPECT_EQ(log.stats().next_offset, 5000);
    EXPECT_TRUE(log.epochs().empty());
    EXPECT_TRUE((co_await log.read(5000, 1 << 20)).value().slices.empty());
    co_await append_epoch(log, 1, 9);
    EXPECT_EQ(log.stats().next_offset, 5002);
  });
  EXPECT_EQ(files(".log"), std::vector<std::string>{"00000000000000005000.log"});
}

// ---- damage found at open, repaired by the owner (a Raft replica) ---------------------

log_config verified(bool repairable) {
  log_config cfg;
  cfg.segment_bytes = 64 << 10;
  cfg.verify_segments_on_open = true;
  cfg.repairable = repairable;
  return cfg;
}

TEST_F(partition_log_test, a_bit_flip_in_a_closed_segment_is_found_at_open_and_cut_by_the_owner) {
  const size_t batch = make_test_batch(2, 3000, 0).size();
  with_log(verified(true), [](partition_log& log) -> sdk::task<void> {
    for (int i = 0; i < 40; ++i) EXPECT_TRUE((co_await log.append(batch_buffer(2, 3000, i))).has_value());
    EXPECT_GE(log.stats().segments, 3u);
  });
  // Batch 4 of the first (closed) segment: offsets 8 and 9.
  {
    std::fstream f(fs::path(_dir) / "00000000000000000000.log", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(4 * batch + 500));
    char c = 0;
    f.get(c);
    f.seekp(static_cast<std::streamoff>(4 * batch + 500));
    f.put(static_cast<char>(c ^ 0x10));
  }
  with_log(verified(true), [](partition_log& log) -> sdk::task<void> {
    EXPECT_FALSE(log.stats().failed);
    EXPECT_EQ(log.damaged_from(), 8);
    EXPECT_EQ(log.stats().damaged_from, 8);
    EXPECT_NE(log.damage().find("00000000000000000000.log"), std::string::npos) << log.damage();
    // Before the damage: served. From it: never, not even past it.
    auto before = co_await log.read(0, 1 << 20);
    EXPECT_TRUE(before.has_value());
    if (before) {
      EXPECT_EQ(headers(before.value()).size(), 4u);
      EXPECT_EQ(before.value().next_offset, 8);
    }
    for (int64_t o : {8, 9, 20, 70}) {
      auto r = co_await log.read(o, 1 << 20);
      EXPECT_FALSE(r.has_value()) << o;
      if (!r) {
        EXPECT_EQ(r.err().code, make_error_code(errc::corrupt)) << r.err().message;
      }
    }
    auto a = co_await log.append(batch_buffer(1, 10, 0));
    EXPECT_FALSE(a.has_value());
    // The owner's cut repairs it: the log ends at the damage, durably.
    auto t = co_await log.truncate_suffix(8);
    EXPECT_TRUE(t.has_value()) << (t ? "" : t.err().message);
    EXPECT_EQ(log.damaged_from(), -1);
    EXPECT_EQ(log.stats().next_offset, 8);
    EXPECT_EQ(log.stats().segments, 1u);
    EXPECT_TRUE((co_await log.append(batch_buffer(2, 3000, 99))).has_value());
  });
  with_log(verified(true), [](partition_log& log) -> sdk::task<void> {
    EXPECT_FALSE(log.stats().failed);
    EXPECT_EQ(log.damaged_from(), -1);
    EXPECT_EQ(log.stats().next_offset, 10);
    EXPECT_EQ((co_await all_batches(log)).size(), 5u);
  }, 0);
}

TEST_F(partition_log_test, a_closed_segment_cut_short_is_found_at_open_at_its_first_missing_offset) {
  const size_t batch = make_test_batch(2, 3000, 0).size();
  with_log(verified(true), [](partition_log& log) -> sdk::task<void> {
    for (int i = 0; i < 40; ++i) EXPECT_TRUE((co_await log.append(batch_buffer(2, 3000, i))).has_value());
  });
  // The second closed segment loses its tail in the middle of its batch 2.
  std::vector<std::string> segs = files(".log");
  ASSERT_GE(segs.size(), 3u);
  const int64_t second = std::stoll(segs[1]);
  fs::resize_file(fs::path(_dir) / segs[1], 2 * batch + 1234);
  with_log(verified(true), [&](partition_log& log) -> sdk::task<void> {
    EXPECT_FALSE(log.stats().failed);
    EXPECT_EQ(log.damaged_from(), second + 4);
    auto r = co_await log.read(second + 4, 1 << 20);
    EXPECT_FALSE(r.has_value());
    auto ok = co_await log.read(second, 1 << 20);
    EXPECT_TRUE(ok.has_value());
    if (ok) {
      EXPECT_EQ(ok.value().next_offset, second + 4);
    }
    EXPECT_TRUE((co_await log.truncate_suffix(second + 4)).has_value());
    EXPECT_EQ(log.stats().next_offset, second + 4);
  }, 0);
  with_log(verified(true), [&](partition_log& log) -> sdk::task<void> {
    EXPECT_EQ(log.damaged_from(), -1);
    EXPECT_EQ(log.stats().next_offset, second + 4);
    EXPECT_EQ(static_cast<int64_t>((co_await all_batches(log)).size()), (second + 4) / 2);
  }, 0);
}

TEST_F(partition_log_test, a_bit_flip_in_a_closed_segment_makes_a_standalone_log_read_only_at_open) {
  const size_t batch = make_test_batch(2, 3000, 0).size();
  with_log(verified(false), [](partition_log& log) -> sdk::task<void> {
    for (int i = 0; i < 40; ++i) EXPECT_TRUE((co_await log.append(batch_buffer(2, 3000, i))).has_value());
  });
  {
    std::fstream f(fs::path(_dir) / "00000000000000000000.log", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(batch + 700));
    f.put('\x5a');
  }
  with_log(verified(false), [](partition_log& log) -> sdk::task<void> {
    EXPECT_TRUE(log.stats().failed);
    EXPECT_EQ(log.damaged_from(), -1);
    EXPECT_FALSE((co_await log.append(batch_buffer(1, 10, 0))).has_value());
    auto r = co_await log.read(0, 1 << 20, 2);
    EXPECT_TRUE(r.has_value());
    if (r) {
      EXPECT_EQ(r.value().next_offset, 2);
    }
    // Nothing from the damage on: an error, or nothing (the log looks cut there).
    auto past = co_await log.read(2, 1 << 20);
    EXPECT_TRUE(!past.has_value() || past.value().slices.empty());
  }, 0);
}

}  // namespace
}  // namespace sluice::storage
