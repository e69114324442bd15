// Timers, cancellation, yield, gates and cross-shard closures.
#include "core/executor/executor.h"
#include "core/executor/test_util.h"

#include <sluice/sdk/runtime.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <thread>
#include <vector>

namespace sluice::executor {
namespace {

using testing::run_on_shards;
using testing::test_options;

TEST(executor, sleep_waits_at_least_the_requested_time) {
  run_on_shards(test_options(1), [](executor&) -> sdk::task<void> {
    const uint64_t t0 = sdk::now_ns();
    int32_t rc = co_await sdk::sleep_ms(20);
    const uint64_t elapsed = sdk::now_ns() - t0;
    EXPECT_EQ(rc, -ETIME);
    EXPECT_GE(elapsed, 20'000'000u);
  });
}

TEST(executor, timers_fire_in_deadline_order) {
  run_on_shards(test_options(1), [](executor&) -> sdk::task<void> {
    std::vector<int> order;
    sdk::gate g;
    for (int ms : {30, 10, 20}) {
      sdk::spawn([](int ms, std::vector<int>& order, sdk::gate::holder) -> sdk::task<void> {
        co_await sdk::sleep_ms(static_cast<uint64_t>(ms));
        order.push_back(ms);
      }(ms, order, g.try_enter()));
    }
    co_await g.close();
    EXPECT_EQ(order, (std::vector<int>{10, 20, 30}));
  });
}

TEST(executor, abort_cancels_a_pending_sleep) {
  run_on_shards(test_options(1), [](executor&) -> sdk::task<void> {
    sdk::abort_source as;
    int32_t result = 1;
    sdk::gate g;
    const uint64_t t0 = sdk::now_ns();
    sdk::spawn([](sdk::abort_source& as, int32_t& result, sdk::gate::holder) -> sdk::task<void> {
      result = co_await sdk::sleep_ms(10'000, &as);
    }(as, result, g.try_enter()));
    co_await sdk::sleep_ms(5);
    EXPECT_EQ(result, 1);  // still sleeping
    as.request_abort();
    co_await g.close();
    EXPECT_EQ(result, -ECANCELED);
    EXPECT_LT(sdk::now_ns() - t0, 5'000'000'000u);
  });
}

TEST(executor, aborted_source_fails_new_operations_at_once) {
  run_on_shards(test_options(1), [](executor&) -> sdk::task<void> {
    sdk::abort_source as;
    as.request_abort();
    EXPECT_EQ(co_await sdk::sleep_ms(10'000, &as), -ECANCELED);
  });
}

TEST(executor, yield_lets_other_tasks_run) {
  run_on_shards(test_options(1), [](executor&) -> sdk::task<void> {
    std::vector<int> trace;
    sdk::gate g;
    for (int id : {1, 2}) {
      sdk::spawn([](int id, std::vector<int>& trace, sdk::gate::holder) -> sdk::task<void> {
        for (int i = 0; i < 3; ++i) {
          trace.push_back(id);
          co_await sdk::yield();
        }
      }(id, trace, g.try_enter()));
    }
    co_await g.close();
    EXPECT_EQ(trace, (std::vector<int>{1, 2, 1, 2, 1, 2}));
  });
}

TEST(executor, closed_gate_refuses_new_work) {
  run_on_shards(test_options(1), [](executor&) -> sdk::task<void> {
    sdk::gate g;
    co_await g.close();
    EXPECT_FALSE(g.try_enter());
    EXPECT_TRUE(g.is_closed());
  });
}

TEST(executor, submit_to_runs_on_the_target_shard) {
  run_on_shards(test_options(3), [](executor& exec) -> sdk::task<void> {
    for (uint32_t target = 0; target < 3; ++target) {
      int32_t seen = co_await exec.submit_to(target, []() -> sdk::task<int32_t> {
        co_await sdk::sleep_ms(1);
        co_return static_cast<int32_t>(sdk::this_shard());
      });
      EXPECT_EQ(seen, static_cast<int32_t>(target));
    }
  });
}

TEST(executor, run_from_outside_reaches_a_sleeping_shard) {
  executor exec(testing::test_options(2));
  std::atomic<int> ran{0};
  sdk::abort_source* stop = nullptr;
  auto started = exec.start([&]() -> sdk::task<void> {
    sdk::abort_source as;
    stop = &as;
    ran.store(1);
    co_await sdk::sleep_ms(60'000, &as);  // until aborted from outside
    ran.store(2);
    exec.request_exit();
  });
  ASSERT_TRUE(started.has_value());
  while (ran.load() == 0) std::this_thread::yield();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // let shard 0 go to sleep
  exec.run_from_outside(0, [&] { stop->request_abort(); });
  exec.join();
  EXPECT_EQ(ran.load(), 2);
}

TEST(executor, ring_creation_failure_is_reported_not_fatal) {
  options o = testing::test_options(2);
  o.ring_entries = 1u << 20;  // above the kernel's limit of 32768 entries
  executor exec(o);
  auto started = exec.start([]() -> sdk::task<void> { co_return; });
  ASSERT_FALSE(started.has_value());
  EXPECT_NE(started.err().message.find("io_uring"), std::string::npos) << started.err().message;
}

TEST(executor, explicit_cpus_place_shards_and_set_their_count) {
  options o = testing::test_options(0);
  o.shards = 0;
  o.pin_threads = true;
  o.cpus = {0, 0};  // two shards, both on CPU 0 (which every machine has)
  executor exec(o);
  EXPECT_EQ(exec.shard_count(), 2u);
  std::atomic<int> on_cpu0{0};
  auto started = exec.start([&]() -> sdk::task<void> {
    for (uint32_t s = 0; s < 2; ++s)
      co_await exec.submit_to(s, [&]() -> sdk::task<int32_t> {
        if (sched_getcpu() == 0) on_cpu0.fetch_add(1);
        co_return 0;
      });
    exec.request_exit();
  });
  ASSERT_TRUE(started.has_value()) << started.err().message;
  exec.join();
  EXPECT_EQ(on_cpu0.load(), 2);
}

TEST(executor, a_cpu_outside_the_affinity_mask_is_a_start_error) {
  options o = testing::test_options(1);
  o.pin_threads = true;
  o.cpus = {CPU_SETSIZE - 1};
  executor exec(o);
  auto started = exec.start([]() -> sdk::task<void> { co_return; });
  ASSERT_FALSE(started.has_value());
  EXPECT_NE(started.err().message.find("cannot run on CPU 1023 (node.cpus)"), std::string::npos)
      << started.err().message;
}

TEST(executor, online_cpus_counts_allowed_cpus) {
  EXPECT_GE(online_cpus(), 1u);
  EXPECT_LE(online_cpus(), std::thread::hardware_concurrency() ? std::thread::hardware_concurrency() : 1024u);
}

}  // namespace
}  // namespace sluice::executor
