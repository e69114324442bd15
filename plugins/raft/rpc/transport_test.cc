// Transports over real loopback sockets on the core's executor: delivery and
// order, coalescing, reconnecting after a peer restarts, back-pressure, and
// the refusal of wrong hellos and bad frames.
#include "transport.h"

#include "core/executor/executor.h"
#include "core/executor/test_util.h"

#include <sluice/sdk/net.h>
#include <sluice/sdk/runtime.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <functional>
#include <map>

namespace sluice::raft::rpc {
namespace {

using executor::testing::run_on_shards;
using executor::testing::test_options;

transport_config config(uint64_t self, std::string cluster = "test-cluster", uint16_t port = 0) {
  transport_config c;
  c.self = node_id(self);
  c.cluster_id = std::move(cluster);
  c.listen = sdk::loopback(port);
  c.reconnect_backoff_min_ms = 10;
  c.reconnect_backoff_max_ms = 100;
  c.hello_timeout_ms = 300;
  return c;
}

// A transport and what it received.
struct endpoint {
  explicit endpoint(transport_config cfg) : t(std::move(cfg)) {
    t.on_raft([this](node_id from, group_id g, message m) { got.push_back({from, group_message{g, std::move(m)}}); });
    t.on_app([this](node_id from, const app_message& a) { apps.push_back({from, a}); });
  }
  peer_stats peer(uint64_t n) const {
    for (const peer_stats& p : t.stats().peers)
      if (p.node == node_id(n)) return p;
    return {};
  }
  transport t;
  std::vector<std::pair<node_id, group_message>> got;
  std::vector<std::pair<node_id, app_message>> apps;
};

// Starts an endpoint listening on 127.0.0.1 (a kernel-chosen port unless given).
std::unique_ptr<endpoint> start(uint64_t self, std::string cluster = "test-cluster", uint16_t port = 0) {
  auto e = std::make_unique<endpoint>(config(self, std::move(cluster), port));
  const std::string err = e->t.start();
  EXPECT_EQ(err, "");
  return e;
}

void link(endpoint& from, const endpoint& to, uint64_t to_id) {
  from.t.set_peer(node_id(to_id), sdk::loopback(to.t.listen_port()));
}

// Polls pred every 2 ms until it holds; a test failure naming `what` when
// it still does not after timeout_ms.
sdk::task<void> expect_eventually(std::function<bool()> pred, const char* what, uint64_t timeout_ms = 5000) {
  const uint64_t deadline = sdk::now_ns() + timeout_ms * 1'000'000;
  while (!pred()) {
    if (sdk::now_ns() > deadline) {
      ADD_FAILURE() << "still not true after " << timeout_ms << " ms: " << what;
      co_return;
    }
    co_await sdk::sleep_ms(2);
  }
}
#define EVENTUALLY(cond) co_await expect_eventually([&] { return cond; }, #cond)

message heartbeat(uint64_t from, uint64_t to, uint64_t term, uint64_t commit, uint64_t seq) {
  message m;
  m.type = message_type::heartbeat;
  m.from = node_id(from);
  m.to = node_id(to);
  m.term = term_id(term);
  m.commit = log_index(commit);
  m.seq = seq;
  return m;
}

message append(uint64_t from, uint64_t to, uint64_t index, payload data) {
  message m;
  m.type = message_type::append;
  m.from = node_id(from);
  m.to = node_id(to);
  m.term = term_id(2);
  m.index = log_index(index - 1);
  m.log_term = term_id(2);
  entry e;
  e.term = term_id(2);
  e.index = log_index(index);
  e.data = std::move(data);
  m.entries.push_back(std::move(e));
  return m;
}

// A port nothing listens on (bound, read back and released).
uint16_t unused_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  auto a = sdk::loopback(0);
  EXPECT_EQ(::bind(fd, a.get(), a.len), 0);
  const uint16_t port = sdk::local_address(fd).port();
  ::close(fd);
  return port;
}

TEST(raft_rpc_transport, delivers_every_message_in_order_with_its_payload) {
  run_on_shards(test_options(1), [](executor::executor&) -> sdk::task<void> {
    auto a = start(1);
    auto b = start(2);
    link(*a, *b, 2);
    link(*b, *a, 1);
    // 300 appends over 7 groups, payloads of up to 200 KiB, flushed in bursts.
    std::vector<std::string> bodies;
    for (uint64_t k = 0; k < 300; ++k) {
      std::string body = "batch " + std::to_string(k) + ":";
      body.resize(k % 50 == 0 ? 200 * 1024 : 10 + k * 7, static_cast<char>('a' + k % 26));
      bodies.push_back(body);
      EXPECT_TRUE(a->t.send(node_id(2), k % 7, append(1, 2, 1 + k / 7, payload(body))));
      if (k % 13 == 0) a->t.flush();
      if (k % 50 == 0) co_await sdk::yield();
    }
    EXPECT_TRUE(a->t.send_app(node_id(2), app_message{5, 99, false, "propose"}));
    a->t.flush();
    EVENTUALLY(b->got.size() == 300 && b->apps.size() == 1);
    std::map<group_id, uint64_t> next_index;
    for (size_t k = 0; k < b->got.size(); ++k) {
      const auto& [from, gm] = b->got[k];
      EXPECT_EQ(from, node_id(1));
      EXPECT_EQ(gm.group, k % 7);
      if (gm.msg.entries.size() != 1) {
        ADD_FAILURE() << "message " << k << " has " << gm.msg.entries.size() << " entries";
        continue;
      }
      EXPECT_EQ(gm.msg.entries[0].index.value(), ++next_index[gm.group]);
      EXPECT_EQ(gm.msg.entries[0].data.view(), bodies[k]) << k;
    }
    if (!b->apps.empty()) {
      EXPECT_EQ(b->apps[0].second.payload, "propose");
      EXPECT_EQ(b->apps[0].second.request_id, 99u);
    }
    // The answer travels on b's own connection to a.
    EXPECT_TRUE(b->t.send_app(node_id(1), app_message{5, 99, true, "ok"}));
    EXPECT_TRUE(b->t.send(node_id(1), 3, heartbeat(2, 1, 2, 0, 7)));
    b->t.flush();
    EVENTUALLY(a->got.size() == 1 && a->apps.size() == 1 && a->peer(2).messages_sent == 301);
    const peer_stats sa = a->peer(2);
    EXPECT_EQ(sa.connects, 1u);
    EXPECT_EQ(sa.messages_sent, 301u);
    EXPECT_EQ(sa.dropped, 0u);
    EXPECT_EQ(sa.queued_bytes, 0u);
    EXPECT_EQ(b->peer(1).messages_received, 301u);
    EXPECT_EQ(b->peer(1).frames_received, sa.frames_sent - 1);  // the hello is not counted on receipt
    const size_t hello_bytes = encode_hello({"test-cluster", node_id(1), 0, protocol_version, node_id(2)}).size();
    EXPECT_EQ(b->peer(1).bytes_received, sa.bytes_sent - hello_bytes);
    EXPECT_EQ(b->t.stats().inbound_accepted, 1u);
    co_await a->t.stop();
    co_await b->t.stop();
  });
}

TEST(raft_rpc_transport, heartbeats_of_all_groups_travel_in_one_frame) {
  run_on_shards(test_options(1), [](executor::executor&) -> sdk::task<void> {
    auto a = start(1);
    auto b = start(2);
    link(*a, *b, 2);
    EXPECT_TRUE(a->t.send(node_id(2), 0, heartbeat(1, 2, 1, 0, 1)));
    a->t.flush();
    // The writer counts a frame once its sendmsg completed, which may be
    // after the receiver got it.
    EVENTUALLY(b->got.size() == 1 && a->peer(2).messages_sent == 1);
    const peer_stats before = a->peer(2);
    const uint64_t received_before = b->peer(1).frames_received;
    for (uint64_t g = 1; g <= 2000; ++g) EXPECT_TRUE(a->t.send(node_id(2), g, heartbeat(1, 2, 5, 100 + g, 9)));
    a->t.flush();
    EVENTUALLY(b->got.size() == 2001 && a->peer(2).messages_sent == 2001);
    const peer_stats after = a->peer(2);
    EXPECT_EQ(after.frames_sent - before.frames_sent, 1u);
    EXPECT_LT(after.bytes_sent - before.bytes_sent, 2000u * 8);
    EXPECT_EQ(b->peer(1).frames_received - received_before, 1u);
    for (uint64_t g = 1; g < b->got.size(); ++g) {
      EXPECT_EQ(b->got[g].second.group, g);
      EXPECT_TRUE(same_message(b->got[g].second.msg, heartbeat(1, 2, 5, 100 + g, 9)));
    }
    co_await a->t.stop();
    co_await b->t.stop();
  });
}

TEST(raft_rpc_transport, reconnects_after_the_peer_restarts) {
  run_on_shards(test_options(1), [](executor::executor&) -> sdk::task<void> {
    auto a = start(1);
    auto b = start(2);
    const uint16_t port = b->t.listen_port();
    link(*a, *b, 2);
    EXPECT_TRUE(a->t.send(node_id(2), 1, heartbeat(1, 2, 1, 0, 1)));
    a->t.flush();
    EVENTUALLY(b->got.size() == 1);
    co_await b->t.stop();
    b.reset();
    // a notices the close without sending.
    EVENTUALLY(a->peer(2).disconnects == 1 && !a->peer(2).connected);
    auto b2 = start(2, "test-cluster", port);
    // Raft keeps sending; what goes out while a backs off is refused or lost.
    uint64_t seq = 2;
    co_await expect_eventually(
        [&] {
          (void)a->t.send(node_id(2), 1, heartbeat(1, 2, 1, 0, seq++));
          a->t.flush();
          return !b2->got.empty();
        },
        "the restarted peer receives");
    EXPECT_EQ(a->peer(2).connects, 2u);
    EXPECT_TRUE(a->peer(2).connected);
    co_await a->t.stop();
    co_await b2->t.stop();
  });
}

// A peer that never reads: a listener that never accepts (the kernel
// completes the handshake and buffers what it can, then the writer blocks),
// and a transport (node 1, peer_queue_bytes_max 1 MiB) that knows it as node 2.
struct stuck_peer {
  explicit stuck_peer(uint32_t peer_timeout_ms = 10'000) {
    auto addr = sdk::loopback(0);
    listen_fd = sdk::api().tcp_listen(sdk::host(), addr.get(), addr.len, 4, 0);
    EXPECT_GE(listen_fd, 0);
    cfg.peer_queue_bytes_max = 1 << 20;
    cfg.peer_timeout_ms = peer_timeout_ms;
    a = std::make_unique<endpoint>(cfg);
    a->t.set_peer(node_id(2), sdk::loopback(sdk::local_address(listen_fd).port()));
  }
  // Sends appends of 64 KiB until one is refused (at most 4000); checks the
  // bound on the way.
  sdk::task<void> fill() {
    const uint64_t bound = message_bytes_bound(append(1, 2, 1, batch));
    uint64_t accepted = 0;
    while (a->peer(2).refused == 0 && accepted < 4000) {
      if (a->t.send(node_id(2), 1, append(1, 2, accepted + 1, batch))) ++accepted;
      a->t.flush();
      EXPECT_LE(a->peer(2).queued_bytes, cfg.peer_queue_bytes_max + bound);
      co_await sdk::yield();
    }
    EXPECT_EQ(a->peer(2).refused, 1u) << "accepted " << accepted << " appends of 64 KiB without refusing one";
  }
  sdk::task<void> stop() {
    co_await a->t.stop();
    EXPECT_EQ(a->peer(2).queued_bytes, 0u);
    co_await sdk::close(listen_fd);
  }
  transport_config cfg = config(1);
  int32_t listen_fd = -1;
  std::unique_ptr<endpoint> a;
  const payload batch{std::string(64 * 1024, 'x')};
};

TEST(raft_rpc_transport, a_stuck_peer_bounds_what_is_queued_but_never_heartbeats) {
  run_on_shards(test_options(1), [](executor::executor&) -> sdk::task<void> {
    stuck_peer s;
    co_await s.fill();
    // Heartbeats and empty appends still go.
    for (uint64_t g = 0; g < 1000; ++g) EXPECT_TRUE(s.a->t.send(node_id(2), g, heartbeat(1, 2, 2, 0, 1)));
    message probe = append(1, 2, 1, s.batch);
    probe.entries.clear();
    EXPECT_TRUE(s.a->t.send(node_id(2), 1, probe));
    EXPECT_FALSE(s.a->t.send(node_id(2), 1, append(1, 2, 1, s.batch)));
    s.a->t.flush();
    co_await s.stop();  // stop() cancels the blocked write
  });
}

TEST(raft_rpc_transport, a_peer_that_reads_nothing_is_dropped_after_peer_timeout_ms) {
  run_on_shards(test_options(1), [](executor::executor&) -> sdk::task<void> {
    stuck_peer s(300);
    co_await s.fill();
    const uint64_t began = sdk::now_ns();
    co_await expect_eventually(
        [&] {
          s.a->t.flush();  // the owner's tick notices that the writer made no progress
          return s.a->peer(2).disconnects == 1;
        },
        "the stuck connection is dropped");
    EXPECT_GE(sdk::now_ns() - began, 200'000'000u);
    EXPECT_EQ(s.a->peer(2).queued_bytes, 0u);
    EXPECT_GE(s.a->peer(2).dropped, 1u);
    co_await s.stop();
  });
}

TEST(raft_rpc_transport, refuses_a_peer_of_another_cluster) {
  run_on_shards(test_options(1), [](executor::executor&) -> sdk::task<void> {
    auto b = start(2);
    auto c = start(3, "other-cluster");
    auto a = start(1);
    link(*c, *b, 2);
    link(*a, *b, 2);
    EXPECT_TRUE(c->t.send(node_id(2), 1, heartbeat(3, 2, 1, 0, 1)));
    EXPECT_TRUE(a->t.send(node_id(2), 1, heartbeat(1, 2, 1, 0, 1)));
    c->t.flush();
    a->t.flush();
    EVENTUALLY(b->t.stats().inbound_rejected == 1 && c->peer(2).disconnects >= 1);
    EVENTUALLY(b->got.size() == 1);
    if (!b->got.empty()) {
      EXPECT_EQ(b->got[0].first, node_id(1));  // only a's message
    }
    EXPECT_EQ(b->peer(3).messages_received, 0u);
    co_await a->t.stop();
    co_await b->t.stop();
    co_await c->t.stop();
  });
}

// A raw client: connects, sends bytes, and expects the broker to close the
// connection.
sdk::task<void> expect_closed(uint16_t port, std::string bytes, const char* what) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const auto addr = sdk::loopback(port);
  const int32_t rc = co_await sdk::connect(fd, addr.get(), addr.len);
  EXPECT_EQ(rc, 0) << what;
  if (rc == 0) {
    if (!bytes.empty()) {
      const int32_t sent = co_await sdk::send(fd, bytes.data(), bytes.size());
      EXPECT_EQ(sent, static_cast<int32_t>(bytes.size())) << what;
    }
    char buf[16];
    const int32_t n = co_await sdk::recv(fd, buf, sizeof(buf));
    EXPECT_LE(n, 0) << "the broker did not close the connection: " << what;
  }
  co_await sdk::close(fd);
}

TEST(raft_rpc_transport, closes_connections_with_bad_hellos_or_frames) {
  run_on_shards(test_options(1), [](executor::executor&) -> sdk::task<void> {
    auto b = start(2);
    const uint16_t port = b->t.listen_port();
    const std::string hello = encode_hello({"test-cluster", node_id(7), 0, protocol_version, node_id(2)}).to_string();
    const std::string heartbeats = encode_frame(std::vector<group_message>{{1, heartbeat(7, 2, 1, 0, 1)}}).to_string();
    // The good case first: hello, then a frame.
    {
      const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      const auto addr = sdk::loopback(port);
      const int32_t rc = co_await sdk::connect(fd, addr.get(), addr.len);
      EXPECT_EQ(rc, 0);
      const std::string both = hello + heartbeats;
      const int32_t sent = co_await sdk::send(fd, both.data(), both.size());
      EXPECT_EQ(sent, static_cast<int32_t>(both.size()));
      EVENTUALLY(b->got.size() == 1);
      co_await sdk::close(fd);
    }
    const std::string garbage("\x08\0\0\0\x64\0\0\0\0\0\0\0", 12);  // header_len 100 in an 8-byte frame
    const std::string oversized("\xff\xff\xff\x7f", 4);
    const std::string wrong_target =
        encode_hello({"test-cluster", node_id(7), 0, protocol_version, node_id(5)}).to_string();
    const std::string wrong_version = encode_hello({"test-cluster", node_id(7), 0, 2, node_id(2)}).to_string();
    const std::vector<std::pair<std::string, const char*>> cases = {
        {hello + garbage, "a malformed frame"},
        {hello + oversized, "a frame above frame_bytes_max"},
        {heartbeats, "no hello first"},
        {hello + hello, "a second hello"},
        {wrong_target, "a hello for another node"},
        {wrong_version, "a hello of protocol version 2"},
        {"", "no hello within hello_timeout_ms"},
    };
    for (const auto& [bytes, what] : cases) co_await expect_closed(port, bytes, what);
    EVENTUALLY(b->t.stats().inbound_open == 0);
    const transport_stats s = b->t.stats();
    EXPECT_EQ(s.inbound_accepted, 8u);
    EXPECT_EQ(s.inbound_rejected, 7u);
    EXPECT_EQ(b->got.size(), 1u);
    co_await b->t.stop();
  });
}

TEST(raft_rpc_transport, refuses_unknown_and_unreachable_peers) {
  run_on_shards(test_options(1), [](executor::executor&) -> sdk::task<void> {
    endpoint a(config(1));
    EXPECT_FALSE(a.t.send(node_id(2), 1, heartbeat(1, 2, 1, 0, 1)));
    EXPECT_EQ(a.t.stats().dropped_unknown_peer, 1u);
    EXPECT_FALSE(a.t.set_peer(node_id(2), "not an address"));
    EXPECT_TRUE(a.t.set_peer(node_id(2), "127.0.0.1:" + std::to_string(unused_port())));
    // Queued while connecting, then dropped when the connection fails.
    EXPECT_TRUE(a.t.send(node_id(2), 1, heartbeat(1, 2, 1, 0, 1)));
    a.t.flush();
    EVENTUALLY(a.peer(2).connect_failures >= 1 && a.peer(2).dropped >= 1);
    a.t.remove_peer(node_id(2));
    EXPECT_FALSE(a.t.send(node_id(2), 1, heartbeat(1, 2, 1, 0, 1)));
    co_await a.t.stop();
    EXPECT_FALSE(a.t.send(node_id(2), 1, heartbeat(1, 2, 1, 0, 1)));
  });
}

TEST(raft_rpc_transport, three_brokers_exchange_messages) {
  run_on_shards(test_options(1), [](executor::executor&) -> sdk::task<void> {
    std::vector<std::unique_ptr<endpoint>> n;
    for (uint64_t id = 1; id <= 3; ++id) n.push_back(start(id));
    for (uint64_t i = 1; i <= 3; ++i)
      for (uint64_t j = 1; j <= 3; ++j)
        if (i != j) link(*n[i - 1], *n[j - 1], j);
    for (uint64_t round = 1; round <= 20; ++round) {
      for (uint64_t i = 1; i <= 3; ++i) {
        for (uint64_t j = 1; j <= 3; ++j) {
          if (i == j) continue;
          for (group_id g = 0; g < 50; ++g) EXPECT_TRUE(n[i - 1]->t.send(node_id(j), g, heartbeat(i, j, 1, 0, round)));
        }
        n[i - 1]->t.flush();
      }
      co_await sdk::sleep_ms(1);
    }
    EVENTUALLY(n[0]->got.size() == 2000 && n[1]->got.size() == 2000 && n[2]->got.size() == 2000);
    for (uint64_t j = 1; j <= 3; ++j) {
      std::map<uint64_t, uint64_t> per_sender_seq;  // rounds arrive in order per sender and group 0
      for (const auto& [from, gm] : n[j - 1]->got) {
        EXPECT_NE(from, node_id(j));
        EXPECT_EQ(gm.msg.from, from);
        EXPECT_EQ(gm.msg.to, node_id(j));
        if (gm.group == 0) {
          EXPECT_EQ(gm.msg.seq, per_sender_seq[from.value()] + 1);
          per_sender_seq[from.value()] = gm.msg.seq;
        }
      }
    }
    for (auto& e : n) co_await e->t.stop();
  });
}

}  // namespace
}  // namespace sluice::raft::rpc
