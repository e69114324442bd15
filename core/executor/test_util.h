// Test helper: run a coroutine on shard 0 of a fresh executor.
#pragma once

#include "core/executor/executor.h"

#include <sluice/sdk/runtime.h>

#include <gtest/gtest.h>

#include <functional>

namespace sluice::executor::testing {

inline options test_options(uint32_t shards) {
  options o;
  o.shards = shards;
  o.pin_threads = false;  // tests may start more shards than the machine has cores
  o.ring_entries = 256;
  return o;
}

// Starts an executor, runs body(exec) on shard 0, stops every shard when it
// finishes and returns after all threads exited.
inline void run_on_shards(options opts, std::function<sdk::task<void>(executor&)> body) {
  executor exec(opts);
  auto started = exec.start([&]() -> sdk::task<void> {
    co_await body(exec);
    exec.request_exit();
  });
  ASSERT_TRUE(started.has_value()) << started.err().message;
  exec.join();
}

}  // namespace sluice::executor::testing
