// The simulation as a CTest test (label sim): thousands of seeds of three-
// and five-node groups under faults, every invariant checked at every
// simulated millisecond, and the same seed replaying the same trace.
// RAFT_SIM_SEEDS overrides the number of seeds per group size (2,500 three-node
// and 1,000 five-node seeds by default).
#include "sim.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <string>

namespace sluice::raft::sim {
namespace {

uint64_t seeds_per_size(uint64_t fallback) {
  const char* env = std::getenv("RAFT_SIM_SEEDS");
  return env ? std::strtoull(env, nullptr, 10) : fallback;
}

void campaign(uint32_t nodes, uint64_t first, uint64_t count, uint64_t duration_ms) {
  const auto start = std::chrono::steady_clock::now();
  uint64_t committed = 0;
  uint64_t suffix_losses = 0;
  uint64_t max_recovery_ms = 0;
  for (uint64_t seed = first; seed < first + count; ++seed) {
    options o;
    o.seed = seed;
    o.nodes = nodes;
    o.duration_ms = duration_ms;
    set_abort_context(&o);
    const outcome out = run(o, nullptr);
    set_abort_context(nullptr);
    ASSERT_TRUE(out.ok) << "seed " << seed << " failed at " << out.at_ms << " ms: " << out.invariant << ": "
                        << out.detail << "\n  replay: " << replay_command(o);
    committed += out.st.committed_entries;
    suffix_losses += out.st.suffix_losses;
    max_recovery_ms = std::max(max_recovery_ms, out.st.recovery_ms);
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("raft-sim: %llu seeds of %u nodes (%llu ms each) passed in %.1f s: %llu entries committed, "
              "%llu suffix losses repaired, slowest recovery after healing %llu ms\n",
              static_cast<unsigned long long>(count), nodes, static_cast<unsigned long long>(duration_ms), secs,
              static_cast<unsigned long long>(committed), static_cast<unsigned long long>(suffix_losses),
              static_cast<unsigned long long>(max_recovery_ms));
}

TEST(raft_sim, the_same_seed_replays_the_same_trace) {
  for (uint64_t seed : {1, 2, 3}) {
    options o;
    o.seed = seed;
    o.hash_trace = true;
    const outcome a = run(o, nullptr);
    const outcome b = run(o, nullptr);
    EXPECT_TRUE(a.ok) << a.invariant << ": " << a.detail;
    EXPECT_NE(a.trace_hash, 0u);
    EXPECT_EQ(a.trace_hash, b.trace_hash) << "seed " << seed << " did not replay";
    o.seed = seed + 1000;
    EXPECT_NE(run(o, nullptr).trace_hash, a.trace_hash);
  }
}

TEST(raft_sim, three_nodes) { campaign(3, 1, seeds_per_size(2500), 4400); }

TEST(raft_sim, five_nodes) { campaign(5, 1'000'001, seeds_per_size(1000), 4400); }

}  // namespace
}  // namespace sluice::raft::sim
