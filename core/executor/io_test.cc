// Network and disk I/O through the shards' rings: a TCP echo server with
// hundreds of concurrent connections, and O_DIRECT writes, fdatasync and
// reads.
#include "core/executor/executor.h"
#include "core/executor/test_util.h"

#include <sluice/sdk/net.h>
#include <sluice/sdk/runtime.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <string>

namespace sluice::executor {
namespace {

using testing::test_options;

using sdk::loopback;
uint16_t port_of(int fd) { return sdk::local_address(fd).port(); }

// Echoes everything a connection sends until it closes.
sdk::task<void> serve_connection(int fd, sdk::abort_source& stop, sdk::gate::holder) {
  char buf[4096];
  for (;;) {
    int32_t n = co_await sdk::recv(fd, buf, sizeof(buf), &stop);
    if (n <= 0) break;
    int32_t off = 0;
    while (off < n) {
      int32_t w = co_await sdk::send(fd, buf + off, static_cast<uint64_t>(n - off));
      if (w <= 0) break;
      off += w;
    }
  }
  co_await sdk::close(fd);
}

sdk::task<void> accept_loop(int lfd, sdk::abort_source& stop, sdk::gate& conns, std::atomic<int>& accepted) {
  for (;;) {
    int32_t fd = co_await sdk::accept(lfd, &stop);
    if (fd < 0) break;
    accepted.fetch_add(1);
    auto h = conns.try_enter();
    if (!h) {
      co_await sdk::close(fd);
      break;
    }
    sdk::spawn(serve_connection(fd, stop, std::move(h)));
  }
}

// One client: connect, then `rounds` request/echo exchanges.
sdk::task<void> client(uint16_t port, int id, int rounds, std::atomic<int>& good, sdk::gate::holder) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  auto addr = loopback(port);
  int32_t rc = co_await sdk::connect(fd, addr.get(), addr.len);
  bool ok = rc == 0;
  char in[256];
  for (int r = 0; ok && r < rounds; ++r) {
    std::string msg = "client " + std::to_string(id) + " round " + std::to_string(r) + "\n";
    ok = co_await sdk::send(fd, msg.data(), msg.size()) == static_cast<int32_t>(msg.size());
    size_t got = 0;
    while (ok && got < msg.size()) {
      int32_t n = co_await sdk::recv(fd, in + got, sizeof(in) - got);
      if (n <= 0) ok = false;
      else got += static_cast<size_t>(n);
    }
    ok = ok && std::string(in, got) == msg;
  }
  co_await sdk::close(fd);
  if (ok) good.fetch_add(1);
}

TEST(io, tcp_echo_with_hundreds_of_concurrent_connections) {
  constexpr int clients_per_shard = 200;
  constexpr int rounds = 20;
  std::atomic<int> good{0}, accepted{0};
  executor exec(test_options(2));
  auto started = exec.start([&]() -> sdk::task<void> {
    // Shard 0 picks a free port; shard 1 joins it with SO_REUSEPORT.
    auto any = loopback(0);
    int lfd0 = sdk::api().tcp_listen(sdk::host(), any.get(), any.len, 1024, 1);
    EXPECT_GE(lfd0, 0);
    const uint16_t port = port_of(lfd0);
    sdk::abort_source stop0;
    sdk::gate conns0, accepting;
    sdk::spawn([](int lfd, sdk::abort_source& s, sdk::gate& c, std::atomic<int>& a, sdk::gate::holder) -> sdk::task<void> {
      co_await accept_loop(lfd, s, c, a);
    }(lfd0, stop0, conns0, accepted, accepting.try_enter()));

    // Shard 1: its own listener on the same port, plus half of the clients.
    sdk::abort_source* stop1 = nullptr;
    co_await exec.submit_to(1, [&]() -> sdk::task<int32_t> {
      auto addr = loopback(port);
      int lfd1 = sdk::api().tcp_listen(sdk::host(), addr.get(), addr.len, 1024, 1);
      EXPECT_GE(lfd1, 0);
      auto* s = new sdk::abort_source;
      stop1 = s;
      sdk::spawn([](int lfd, sdk::abort_source* s, std::atomic<int>& a) -> sdk::task<void> {
        sdk::gate conns;
        co_await accept_loop(lfd, *s, conns, a);
        co_await conns.close();
        ::close(lfd);
      }(lfd1, s, accepted));
      co_return 0;
    });
    sdk::gate clients;
    for (int i = 0; i < clients_per_shard; ++i) sdk::spawn(client(port, i, rounds, good, clients.try_enter()));
    co_await exec.submit_to(1, [&]() -> sdk::task<int32_t> {
      sdk::gate g;
      for (int i = 0; i < clients_per_shard; ++i)
        sdk::spawn(client(port, 1000 + i, rounds, good, g.try_enter()));
      co_await g.close();
      co_return 0;
    });
    co_await clients.close();
    // Stop both servers: cancel accepts and idle reads, wait for connections.
    stop0.request_abort();
    co_await accepting.close();
    co_await conns0.close();
    ::close(lfd0);
    co_await exec.submit_to(1, [&]() -> sdk::task<int32_t> {
      stop1->request_abort();
      co_await sdk::sleep_ms(10);
      delete stop1;
      co_return 0;
    });
    exec.request_exit();
  });
  ASSERT_TRUE(started.has_value());
  exec.join();
  EXPECT_EQ(good.load(), 2 * clients_per_shard);
  EXPECT_EQ(accepted.load(), 2 * clients_per_shard);
}

TEST(io, listen_on_a_taken_port_fails_with_eaddrinuse) {
  int other = ::socket(AF_INET, SOCK_STREAM, 0);
  auto any = loopback(0);
  ASSERT_EQ(::bind(other, any.get(), any.len), 0);
  ASSERT_EQ(::listen(other, 1), 0);
  auto taken = loopback(port_of(other));
  // Even with SO_REUSEPORT on our side, another process's port is refused.
  int one = 1;
  (void)one;
  testing::run_on_shards(test_options(1), [&](executor&) -> sdk::task<void> {
    EXPECT_EQ(sdk::api().tcp_listen(sdk::host(), taken.get(), taken.len, 16, 1), -EADDRINUSE);
    co_return;
  });
  ::close(other);
}

TEST(io, sendmsg_gathers_several_buffers_into_one_stream) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  testing::run_on_shards(test_options(1), [&](executor&) -> sdk::task<void> {
    char a[] = "head-", b[] = "body-", c[] = "tail";
    iovec iov[3] = {{a, 5}, {b, 5}, {c, 4}};
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = 3;
    EXPECT_EQ(co_await sdk::sendmsg(sv[0], &msg), 14);
    char got[32] = {};
    EXPECT_EQ(co_await sdk::recv(sv[1], got, sizeof(got)), 14);
    EXPECT_STREQ(got, "head-body-tail");
  });
  ::close(sv[0]);
  ::close(sv[1]);
}

class direct_io : public ::testing::Test {
 protected:
  void SetUp() override {
    // ctest runs in the build tree, on a real filesystem (tmpfs may lack O_DIRECT).
    char tmpl[] = "io_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    _dir = std::filesystem::absolute(tmpl);
  }
  void TearDown() override { std::filesystem::remove_all(_dir); }
  std::filesystem::path _dir;
};

TEST_F(direct_io, aligned_write_fdatasync_and_read_back) {
  const std::string path = (_dir / "segment").string();
  testing::run_on_shards(test_options(1), [&](executor&) -> sdk::task<void> {
    int32_t fd = co_await sdk::openat(path.c_str(), O_CREAT | O_RDWR | O_DIRECT | O_CLOEXEC, 0644);
    EXPECT_GE(fd, 0) << std::strerror(-fd);
    if (fd < 0) co_return;
    constexpr uint64_t block = 4096, total = 1u << 20;
    auto out = sdk::buffer::allocate(total, 4096);
    for (uint64_t i = 0; i < total; ++i) out.data()[i] = static_cast<uint8_t>(i * 131 + i / 4096);
    // One 4 KiB page, then the rest in one large write, at aligned offsets.
    EXPECT_EQ(co_await sdk::write(fd, out.data(), block, 0), static_cast<int32_t>(block));
    EXPECT_EQ(co_await sdk::write(fd, out.data() + block, total - block, block),
              static_cast<int32_t>(total - block));
    EXPECT_EQ(co_await sdk::fdatasync(fd), 0);
    EXPECT_EQ(co_await sdk::fsync(fd), 0);
    // Rewrite the last page in place, as a log does with its partial tail.
    out.data()[total - 1] = 0x5a;
    EXPECT_EQ(co_await sdk::write(fd, out.data() + total - block, block, total - block),
              static_cast<int32_t>(block));
    EXPECT_EQ(co_await sdk::fdatasync(fd), 0);

    auto in = sdk::buffer::allocate(total, 4096);
    EXPECT_EQ(co_await sdk::read(fd, in.data(), total, 0), static_cast<int32_t>(total));
    EXPECT_EQ(std::memcmp(in.data(), out.data(), total), 0);

    // O_DIRECT refuses misaligned buffers: the error comes back, no crash.
    EXPECT_EQ(co_await sdk::write(fd, out.data() + 1, block, 0), -EINVAL);
    EXPECT_EQ(co_await sdk::close(fd), 0);
  });
  EXPECT_EQ(std::filesystem::file_size(path), 1u << 20);
}

TEST_F(direct_io, open_of_a_missing_directory_reports_enoent) {
  const std::string path = (_dir / "missing" / "file").string();
  testing::run_on_shards(test_options(1), [&](executor&) -> sdk::task<void> {
    EXPECT_EQ(co_await sdk::openat(path.c_str(), O_RDONLY, 0), -ENOENT);
  });
}

}  // namespace
}  // namespace sluice::executor

namespace sluice::executor {
namespace {

TEST_F(direct_io, directory_operations_through_the_ring) {
  const std::string dir = (_dir / "topic").string();
  const std::string a = dir + "/a", b = dir + "/b";
  testing::run_on_shards(testing::test_options(1), [&](executor&) -> sdk::task<void> {
    EXPECT_EQ(co_await sdk::mkdir(dir.c_str(), 0755), 0);
    EXPECT_EQ(co_await sdk::mkdir(dir.c_str(), 0755), -EEXIST);
    int32_t fd = co_await sdk::openat(a.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(co_await sdk::write(fd, "hello", 5, 0), 5);
    EXPECT_EQ(co_await sdk::close(fd), 0);
    EXPECT_EQ(co_await sdk::rename(a.c_str(), b.c_str()), 0);
    struct statx st{};
    EXPECT_EQ(co_await sdk::statx(b.c_str(), 0, STATX_SIZE, &st), 0);
    EXPECT_EQ(st.stx_size, 5u);
    EXPECT_EQ(co_await sdk::statx(a.c_str(), 0, STATX_SIZE, &st), -ENOENT);
    EXPECT_EQ(co_await sdk::unlink(b.c_str()), 0);
    EXPECT_EQ(co_await sdk::unlink(dir.c_str(), AT_REMOVEDIR), 0);
  });
  EXPECT_FALSE(std::filesystem::exists(dir));
}

}  // namespace
}  // namespace sluice::executor
