// The partition log on a filesystem that fills up: a 4 MiB tmpfs mounted
// for the test. tmpfs (not a loop-mounted image) because it needs no loop
// device, only mount(2) as root; it takes O_DIRECT since Linux 6.6, which
// the test checks before it starts (it is skipped, saying why, when it is
// not root, cannot mount or tmpfs refuses O_DIRECT).
//
// Four writers append until the disk is full, flushing now and then. Then:
//   - the failing append returns errc::disk_full or errc::log_failed (the
//     write failed under another writer's append) with a message naming
//     the segment file and saying the disk is full; every append after it
//     is refused with errc::log_failed, and flushes fail too;
//   - every append acknowledged before the failure is readable, byte for
//     byte, from the failed log, and again after closing and reopening the
//     log on the still-full filesystem;
//   - the reopened log recovers at the acknowledged end (or after it, with
//     whole batches that were written but not acknowledged), and once
//     space is freed (a ballast file is deleted) it takes appends again.
#include "partition_log.h"
#include "record_batch.h"

#include "core/executor/test_util.h"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace sluice::storage {
namespace {

namespace fs = std::filesystem;
using executor::testing::run_on_shards;
using executor::testing::test_options;

sdk::buffer to_buffer(const std::string& b) {
  sdk::buffer buf = sdk::buffer::allocate(b.size());
  std::memcpy(buf.data(), b.data(), b.size());
  buf.set_size(b.size());
  return buf;
}

// A batch of ~10 KiB whose contents follow from n.
std::string full_test_batch(uint32_t n) {
  return make_test_batch(static_cast<int32_t>(1 + n % 4), 2000 + n % 1000, 1000 + n, static_cast<char>('A' + n % 26));
}

class disk_full_test : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root to mount a size-limited tmpfs (mount(2))";
    char tmpl[] = "storage_disk_full_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    _mnt = fs::absolute(tmpl);
    if (::mount("tmpfs", _mnt.c_str(), "tmpfs", 0, "size=4m") != 0) {
      const int err = errno;
      fs::remove(_mnt);
      _mnt.clear();
      GTEST_SKIP() << "cannot mount a 4 MiB tmpfs: " << std::strerror(err);
    }
    _mounted = true;
    utsname u{};
    uname(&u);
    const std::string probe = (_mnt / "probe").string();
    const int fd = ::open(probe.c_str(), O_CREAT | O_RDWR | O_DIRECT | O_CLOEXEC, 0644);
    if (fd < 0) {
      const int err = errno;
      GTEST_SKIP() << "tmpfs refuses O_DIRECT on Linux " << u.release << " (it needs 6.6): " << std::strerror(err);
    }
    ::close(fd);
    fs::remove(probe);
    std::printf("disk full test: a 4 MiB tmpfs at %s; O_DIRECT works on tmpfs on Linux %s\n", _mnt.c_str(),
                u.release);
    _dir = (_mnt / "full-0").string();
  }
  void TearDown() override {
    if (_mounted && ::umount2(_mnt.c_str(), MNT_DETACH) != 0) ADD_FAILURE() << "umount " << _mnt << ": " << std::strerror(errno);
    if (!_mnt.empty()) fs::remove(_mnt);
  }

  static log_config config() {
    log_config cfg;
    cfg.segment_bytes = 1 << 20;  // rolls while the disk fills
    cfg.write_buffer_bytes = 256 << 10;
    cfg.max_batch_bytes = 64 << 10;
    return cfg;
  }

  // Reads every acknowledged batch back; true when all are exact.
  sdk::task<bool> all_readable(partition_log& log, const char* when) {
    bool ok = true;
    for (const auto& [base, bytes] : _acked) {
      auto r = co_await log.read(base, 1);
      if (!r || r.value().slices.empty()) {
        ADD_FAILURE() << when << ": acknowledged batch at offset " << base << " is unreadable: "
                      << (r ? "nothing returned" : r.err().message);
        ok = false;
        continue;
      }
      const read_slice& s = r.value().slices.front();
      if (std::string(reinterpret_cast<const char*>(s.data.data() + s.offset), s.length) != bytes) {
        ADD_FAILURE() << when << ": acknowledged batch at offset " << base << " reads back different bytes";
        ok = false;
      }
    }
    co_return ok;
  }

  // Appends (flushing every third time) until an append or flush fails.
  sdk::task<void> writer(partition_log& log, uint32_t& next, bool& stop, std::vector<error>& failures,
                         sdk::gate::holder) {
    for (uint32_t i = 0; !stop && next < 2000; ++i) {  // 2000 batches are 20 MB: the disk fills long before
      std::string b = full_test_batch(next++);
      auto a = co_await log.append(to_buffer(b));
      if (!a) {
        failures.push_back(a.err());
        stop = true;
        break;
      }
      set_base_offset(reinterpret_cast<uint8_t*>(b.data()), a.value().base_offset);
      _acked.emplace(a.value().base_offset, std::move(b));
      if (i % 3 == 2) {
        auto f = co_await log.flush();
        if (!f) {
          failures.push_back(f.err());
          stop = true;
          break;
        }
        _flushed = std::max(_flushed, f.value());
      }
    }
  }

  fs::path _mnt;
  bool _mounted = false;
  std::string _dir;
  std::map<int64_t, std::string> _acked;  // base offset -> bytes as stored
  int64_t _flushed = 0;                   // below: acknowledged by a flush
};

TEST_F(disk_full_test, appends_fail_cleanly_and_acknowledged_batches_survive) {
  // 512 KiB of ballast, removed later to free space.
  {
    const std::string ballast(512 << 10, 'b');
    FILE* f = std::fopen((_mnt / "ballast").c_str(), "wb");
    ASSERT_NE(f, nullptr);
    ASSERT_EQ(std::fwrite(ballast.data(), 1, ballast.size(), f), ballast.size());
    ASSERT_EQ(std::fclose(f), 0);
  }
  std::vector<error> failures;
  uint32_t next = 0;
  run_on_shards(test_options(1), [&](executor::executor&) -> sdk::task<void> {
    batch_cache cache(0);  // reads come from the files (or the write buffer)
    auto opened = co_await partition_log::open(_dir, "full/0", config(), &cache);
    EXPECT_TRUE(opened.has_value()) << (opened ? "" : opened.err().message);
    if (!opened) co_return;
    partition_log& log = *opened.value();
    sdk::gate writers;
    bool stop = false;
    for (int w = 0; w < 4; ++w) {
      sdk::spawn(writer(log, next, stop, failures, writers.try_enter()));
    }
    co_await writers.close();

    EXPECT_FALSE(failures.empty()) << "4 MiB never filled up";
    if (!failures.empty()) {
      const error& first = failures.front();
      EXPECT_TRUE(first.code == make_error_code(errc::disk_full) || first.code == make_error_code(errc::log_failed))
          << first.code.message() << ": " << first.message;
      EXPECT_NE(first.message.find("disk is full"), std::string::npos) << first.message;
      EXPECT_NE(first.message.find(_dir + "/0"), std::string::npos) << "does not name the file: " << first.message;
      EXPECT_NE(first.message.find(".log"), std::string::npos) << "does not name the file: " << first.message;
      std::printf("disk full test: after %zu acknowledged appends (%" PRId64 " offsets flushed): %s: %s\n",
                  _acked.size(), _flushed, first.code.message().c_str(), first.message.c_str());
    }
    EXPECT_TRUE(log.stats().failed);
    // Read-only from now on.
    auto more = co_await log.append(to_buffer(full_test_batch(0)));
    EXPECT_FALSE(more.has_value());
    if (!more) {
      // A failed log keeps reporting its cause.
      EXPECT_EQ(more.err().code, make_error_code(errc::disk_full)) << more.err().message;
      EXPECT_NE(more.err().message.find("disk is full"), std::string::npos) << more.err().message;
    }
    EXPECT_FALSE((co_await log.flush()).has_value());
    EXPECT_GT(_acked.size(), 100u);
    co_await all_readable(log, "the failed log");
    co_await log.close();
  });
  if (HasFailure()) return;

  // Reopen on the still-full filesystem.
  int64_t end = 0;
  run_on_shards(test_options(1), [&](executor::executor&) -> sdk::task<void> {
    batch_cache cache(0);
    auto opened = co_await partition_log::open(_dir, "full/0", config(), &cache);
    EXPECT_TRUE(opened.has_value()) << "reopening on a full disk: " << (opened ? "" : opened.err().message);
    if (!opened) co_return;
    partition_log& log = *opened.value();
    EXPECT_FALSE(log.stats().failed);
    const int64_t acked_end = _acked.empty() ? 0 : decode_header(reinterpret_cast<const uint8_t*>(
                                                       _acked.rbegin()->second.data())).last_offset() + 1;
    EXPECT_GE(log.stats().next_offset, acked_end);
    EXPECT_GE(acked_end, _flushed);
    end = log.stats().next_offset;
    co_await all_readable(log, "after reopening");
    // Batches past the acknowledged end (written, never acknowledged) are whole.
    int64_t cur = acked_end;
    while (cur < end) {
      auto r = co_await log.read(cur, 1 << 20);
      EXPECT_TRUE(r.has_value() && !r.value().slices.empty());
      if (!r || r.value().slices.empty()) break;
      for (const read_slice& s : r.value().slices)
        EXPECT_EQ(check_batch(s.data.data() + s.offset, s.length, 1 << 20, nullptr), batch_check::ok);
      cur = r.value().next_offset;
    }
    co_await log.close();
  });
  if (HasFailure()) return;

  // Free space (as an operator would: the ballast file) and the log takes
  // appends again, after its end, durably.
  ASSERT_TRUE(fs::remove(_mnt / "ballast"));
  run_on_shards(test_options(1), [&](executor::executor&) -> sdk::task<void> {
    batch_cache cache(0);
    auto opened = co_await partition_log::open(_dir, "full/0", config(), &cache);
    EXPECT_TRUE(opened.has_value()) << (opened ? "" : opened.err().message);
    if (!opened) co_return;
    partition_log& log = *opened.value();
    EXPECT_EQ(log.stats().next_offset, end);
    for (uint32_t i = 0; i < 5; ++i) {
      std::string b = full_test_batch(5000 + i);
      auto a = co_await log.append(to_buffer(b));
      EXPECT_TRUE(a.has_value()) << (a ? "" : a.err().message);
      if (!a) break;
      if (i == 0) {
        EXPECT_EQ(a.value().base_offset, end);
      }
      set_base_offset(reinterpret_cast<uint8_t*>(b.data()), a.value().base_offset);
      _acked.emplace(a.value().base_offset, std::move(b));
    }
    EXPECT_TRUE((co_await log.flush()).has_value());
    co_await log.close();
  });
  run_on_shards(test_options(1), [&](executor::executor&) -> sdk::task<void> {
    batch_cache cache(0);
    auto opened = co_await partition_log::open(_dir, "full/0", config(), &cache);
    EXPECT_TRUE(opened.has_value()) << (opened ? "" : opened.err().message);
    if (!opened) co_return;
    EXPECT_FALSE(opened.value()->stats().failed);
    co_await all_readable(*opened.value(), "after freeing space");
    co_await opened.value()->close();
  });
}

}  // namespace
}  // namespace sluice::storage
