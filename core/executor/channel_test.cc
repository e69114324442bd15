// Cross-shard request/response: correctness under load, back-pressure on
// full queues, same-shard calls and buffer handles crossing shards.
#include "core/executor/buffer.h"
#include "core/executor/executor.h"
#include "core/executor/test_util.h"

#include <sluice/sdk/runtime.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cstring>

namespace sluice::executor {
namespace {

using testing::run_on_shards;
using testing::test_options;

// Echo service: answers with the request's bytes and type + 1, and counts
// what it served on each shard.
struct echo_state {
  std::atomic<uint64_t> served[8] = {};
  std::atomic<int64_t> in_flight{0};
  std::atomic<int64_t> max_in_flight{0};
  uint64_t delay_every = 0;  // sleep 1 ms on every n-th request (0: never)
};

void echo_handler(void* user, uint32_t shard, const sluice_message* req, sluice_responder* r) {
  auto* st = static_cast<echo_state*>(user);
  const uint64_t n = st->served[shard].fetch_add(1, std::memory_order_relaxed) + 1;
  auto copy = sdk::message::from(req);
  copy.type = req->type + 1;
  if (st->delay_every && n % st->delay_every == 0) {
    const int64_t now = st->in_flight.fetch_add(1) + 1;
    int64_t prev = st->max_in_flight.load();
    while (now > prev && !st->max_in_flight.compare_exchange_weak(prev, now)) {
    }
    sdk::spawn([](echo_state* st, sdk::message m, sluice_responder* r) -> sdk::task<void> {
      co_await sdk::sleep_ms(1);
      st->in_flight.fetch_sub(1);
      auto v = m.view();
      sdk::api().respond(sdk::host(), r, 0, &v);
    }(st, std::move(copy), r));
    return;
  }
  auto v = copy.view();
  sdk::api().respond(sdk::host(), r, 0, &v);
}

// `callers` coroutines on the current shard each send `per_caller` requests
// to `target` and check every reply.
sdk::task<void> load(int32_t svc, uint32_t target, int callers, int per_caller, uint64_t& ok) {
  sdk::gate g;
  for (int c = 0; c < callers; ++c) {
    sdk::spawn([](int32_t svc, uint32_t target, int c, int per_caller, uint64_t& ok,
                  sdk::gate::holder) -> sdk::task<void> {
      for (int i = 0; i < per_caller; ++i) {
        sdk::message m;
        m.type = static_cast<uint32_t>(i);
        m.bytes = std::to_string(c) + ":" + std::to_string(i);
        if (i % 7 == 0) m.bytes.append(100, 'x');  // some payloads spill out of the inline bytes
        sdk::reply r = co_await sdk::call(svc, target, m);
        if (r.status == 0 && r.msg.type == m.type + 1 && r.msg.bytes == m.bytes) ++ok;
      }
    }(svc, target, c, per_caller, ok, g.try_enter()));
  }
  co_await g.close();
}

TEST(channel, million_round_trips_both_directions_with_full_queues) {
  echo_state st;
  options o = test_options(2);
  o.channel_capacity = 32;  // 256 callers per direction keep every queue full
  constexpr int callers = 256;
  constexpr int per_caller = 2000;  // 2 x 512,000 round trips
  uint64_t ok0 = 0;
  std::atomic<uint64_t> ok1{0};
  executor exec(o);
  auto svc = exec.add_service("echo", &echo_handler, &st);
  ASSERT_TRUE(svc.has_value());
  const int32_t id = svc.value();
  auto started = exec.start([&]() -> sdk::task<void> {
    // Shard 1 loads shard 0 while shard 0 loads shard 1.
    sdk::gate g;
    sdk::spawn([](executor& exec, int32_t id, std::atomic<uint64_t>& ok1, sdk::gate::holder) -> sdk::task<void> {
      co_await exec.submit_to(1, [&]() -> sdk::task<int32_t> {
        uint64_t ok = 0;
        co_await load(id, 0, callers, per_caller, ok);
        ok1.store(ok);
        co_return 0;
      });
    }(exec, id, ok1, g.try_enter()));
    co_await load(id, 1, callers, per_caller, ok0);
    co_await g.close();
    exec.request_exit();
  });
  ASSERT_TRUE(started.has_value());
  exec.join();
  const uint64_t expected = uint64_t{callers} * per_caller;
  EXPECT_EQ(ok0, expected);
  EXPECT_EQ(ok1.load(), expected);
  EXPECT_EQ(st.served[0].load(), expected);
  EXPECT_EQ(st.served[1].load(), expected);
}

TEST(channel, in_flight_requests_never_exceed_the_channel_capacity) {
  echo_state st;
  st.delay_every = 1;  // every request is answered 1 ms later
  options o = test_options(2);
  o.channel_capacity = 16;
  uint64_t ok = 0;
  executor exec(o);
  auto svc = exec.add_service("slow", &echo_handler, &st);
  ASSERT_TRUE(svc.has_value());
  auto started = exec.start([&]() -> sdk::task<void> {
    co_await load(svc.value(), 1, 100, 20, ok);
    exec.request_exit();
  });
  ASSERT_TRUE(started.has_value());
  exec.join();
  EXPECT_EQ(ok, 2000u);
  EXPECT_GT(st.max_in_flight.load(), 1);
  EXPECT_LE(st.max_in_flight.load(), 16);
}

TEST(channel, all_to_all_on_four_shards) {
  echo_state st;
  options o = test_options(4);
  o.channel_capacity = 8;
  std::atomic<uint64_t> ok{0};
  executor exec(o);
  auto svc = exec.add_service("echo", &echo_handler, &st);
  ASSERT_TRUE(svc.has_value());
  const int32_t id = svc.value();
  auto started = exec.start([&]() -> sdk::task<void> {
    sdk::gate g;
    for (uint32_t from = 0; from < 4; ++from) {
      sdk::spawn([](executor& exec, uint32_t from, int32_t id, std::atomic<uint64_t>& ok,
                    sdk::gate::holder) -> sdk::task<void> {
        co_await exec.submit_to(from, [&]() -> sdk::task<int32_t> {
          for (uint32_t to = 0; to < 4; ++to) {
            uint64_t n = 0;
            co_await load(id, to, 20, 200, n);
            ok.fetch_add(n);
          }
          co_return 0;
        });
      }(exec, from, id, ok, g.try_enter()));
    }
    co_await g.close();
    exec.request_exit();
  });
  ASSERT_TRUE(started.has_value());
  exec.join();
  EXPECT_EQ(ok.load(), 4u * 4u * 20u * 200u);
}

TEST(channel, idle_polling_shards_deliver_everything) {
  echo_state st;
  options o = test_options(3);
  o.idle_poll_us = 50;
  o.channel_capacity = 8;
  std::atomic<uint64_t> ok{0};
  executor exec(o);
  auto svc = exec.add_service("echo", &echo_handler, &st);
  ASSERT_TRUE(svc.has_value());
  auto started = exec.start([&]() -> sdk::task<void> {
    uint64_t n = 0;
    co_await load(svc.value(), 1, 10, 500, n);
    co_await load(svc.value(), 2, 10, 500, n);
    ok.store(n);
    co_await sdk::sleep_ms(5);  // idle long enough for the others to poll, then sleep
    n = 0;
    co_await load(svc.value(), 1, 1, 100, n);
    ok.fetch_add(n);
    exec.request_exit();
  });
  ASSERT_TRUE(started.has_value());
  exec.join();
  EXPECT_EQ(ok.load(), 10'100u);
}

TEST(channel, unknown_service_is_an_error_not_a_crash) {
  run_on_shards(test_options(2), [](executor&) -> sdk::task<void> {
    sdk::message m;
    sdk::reply r = co_await sdk::call(12345, 1, m);
    EXPECT_EQ(r.status, SLUICE_ERR_NO_SERVICE);
    r = co_await sdk::call(0, 99, m);  // no shard 99
    EXPECT_EQ(r.status, SLUICE_ERR_INVALID);
    EXPECT_EQ(sdk::lookup_service("no.such.service"), SLUICE_ERR_NO_SERVICE);
  });
}

void check_buf_handler(void*, uint32_t, const sluice_message* req, sluice_responder* r) {
  // The handler sees the sender's bytes by reference, not a copy.
  SLUICE_ASSERT(req->buf != nullptr);
  sdk::message m;
  m.bytes = std::to_string(buf_refs(req->buf));
  m.buf = sdk::buffer::share(req->buf);
  auto v = m.view();
  sdk::api().respond(sdk::host(), r, 0, &v);
}

TEST(channel, buffers_cross_shards_by_reference) {
  executor exec(test_options(2));
  auto svc = exec.add_service("buf", &check_buf_handler, nullptr);
  ASSERT_TRUE(svc.has_value());
  auto started = exec.start([&]() -> sdk::task<void> {
    sdk::message m;
    m.buf = sdk::buffer::allocate(4096, 4096);
    std::memset(m.buf.data(), 0xab, 4096);
    m.buf.set_size(4096);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(m.buf.data()) % 4096, 0u);
    sdk::reply r = co_await sdk::call(svc.value(), 1, m);
    EXPECT_EQ(r.status, 0);
    EXPECT_EQ(r.msg.buf.data(), m.buf.data());  // same bytes came back
    EXPECT_GE(std::stoi(r.msg.bytes), 2);       // sender's + the message's reference
    // Shard 1 drops the request's reference after its handler returns; a
    // second call behind it on the same queue waits for that.
    co_await exec.submit_to(1, []() -> sdk::task<int32_t> { co_return 0; });
    EXPECT_EQ(buf_refs(m.buf.get()), 2u);       // ours + the reply's
    r.msg.buf = sdk::buffer{};
    EXPECT_EQ(buf_refs(m.buf.get()), 1u);
    exec.request_exit();
  });
  ASSERT_TRUE(started.has_value());
  exec.join();
}

TEST(channel, same_shard_calls_are_deferred_not_reentrant) {
  echo_state st;
  executor exec(test_options(1));
  auto svc = exec.add_service("echo", &echo_handler, &st);
  ASSERT_TRUE(svc.has_value());
  auto started = exec.start([&]() -> sdk::task<void> {
    uint64_t ok = 0;
    co_await load(svc.value(), 0, 10, 100, ok);
    EXPECT_EQ(ok, 1000u);
    exec.request_exit();
  });
  ASSERT_TRUE(started.has_value());
  exec.join();
}

}  // namespace
}  // namespace sluice::executor
