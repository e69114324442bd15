// raft-sim: runs the Raft simulation for one seed or a range of seeds.
//
//   raft-sim --seed 42 --verbose          the trace of one run (replayable)
//   raft-sim --seeds 1..100000            a campaign; prints every failing seed
//   options: --nodes 3|5  --steps MS (simulated milliseconds per seed)
//
// Exit status: 0 if every seed passed, 1 if one failed, 2 on bad arguments.
#include "sim.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

using sluice::raft::sim::options;

bool parse_u64(const char* s, uint64_t& out) {
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = std::strtoull(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0') return false;
  out = v;
  return true;
}

int usage(const char* why) {
  std::fprintf(stderr,
               "raft-sim: %s\n"
               "usage: raft-sim [--seed N | --seeds A..B] [--nodes 3|5] [--steps MS] [--verbose]\n",
               why);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  options base;
  uint64_t first = 1;
  uint64_t last = 1;
  for (int k = 1; k < argc; ++k) {
    const std::string arg = argv[k];
    const char* value = k + 1 < argc ? argv[k + 1] : nullptr;
    uint64_t v = 0;
    if (arg == "--verbose") {
      base.verbose = true;
    } else if (arg == "--seed" && value && parse_u64(value, v)) {
      first = last = v;
      ++k;
    } else if (arg == "--seeds" && value) {
      const std::string range = value;
      const size_t dots = range.find("..");
      if (dots == std::string::npos || !parse_u64(range.substr(0, dots).c_str(), first) ||
          !parse_u64(range.substr(dots + 2).c_str(), last) || first > last) {
        return usage("--seeds wants A..B with A <= B");
      }
      ++k;
    } else if (arg == "--nodes" && value && parse_u64(value, v) && (v == 3 || v == 5)) {
      base.nodes = static_cast<uint32_t>(v);
      ++k;
    } else if (arg == "--steps" && value && parse_u64(value, v) && v >= 100) {
      base.duration_ms = v;
      ++k;
    } else {
      return usage(("bad argument: " + arg).c_str());
    }
  }
  // Line-buffered, so that a trace ends at the last event even when an
  // assertion aborts the run.
  if (base.verbose) std::setvbuf(stdout, nullptr, _IOLBF, 0);
  const auto start = std::chrono::steady_clock::now();
  uint64_t failures = 0;
  uint64_t seeds = 0;
  uint64_t max_recovery_ms = 0;
  uint64_t max_term = 0;
  uint64_t committed = 0;
  uint64_t suffix_losses = 0;
  for (uint64_t seed = first; seed <= last; ++seed) {
    options o = base;
    o.seed = seed;
    sluice::raft::sim::set_abort_context(&o);
    const auto out = sluice::raft::sim::run(o, stdout);
    sluice::raft::sim::set_abort_context(nullptr);
    ++seeds;
    max_recovery_ms = std::max(max_recovery_ms, out.st.recovery_ms);
    max_term = std::max(max_term, out.st.max_term);
    committed += out.st.committed_entries;
    suffix_losses += out.st.suffix_losses;
    if (!out.ok) {
      ++failures;
      std::printf("seed %llu FAILED at %llu ms: %s: %s\n  replay: %s\n", static_cast<unsigned long long>(seed),
                  static_cast<unsigned long long>(out.at_ms), out.invariant.c_str(), out.detail.c_str(),
                  sluice::raft::sim::replay_command(o).c_str());
      std::fflush(stdout);
    }
    if (first == last) {
      std::printf("seed %llu: %s; leaders %llu, max term %llu, crashes %llu (suffix losses %llu), proposals %llu, committed %llu, "
                  "snapshots %llu, conf changes %llu, transfers %llu, reads %llu, messages %llu (lost %llu), "
                  "recovery %llu ms\n",
                  static_cast<unsigned long long>(seed), out.ok ? "ok" : "FAILED",
                  static_cast<unsigned long long>(out.st.leaders), static_cast<unsigned long long>(out.st.max_term),
                  static_cast<unsigned long long>(out.st.crashes),
                  static_cast<unsigned long long>(out.st.suffix_losses), static_cast<unsigned long long>(out.st.proposals),
                  static_cast<unsigned long long>(out.st.committed_entries),
                  static_cast<unsigned long long>(out.st.snapshots_installed),
                  static_cast<unsigned long long>(out.st.conf_changes),
                  static_cast<unsigned long long>(out.st.transfers),
                  static_cast<unsigned long long>(out.st.reads),
                  static_cast<unsigned long long>(out.st.messages_sent),
                  static_cast<unsigned long long>(out.st.messages_lost),
                  static_cast<unsigned long long>(out.st.recovery_ms));
    }
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("raft-sim: %llu seeds (%u nodes, %llu ms each), %llu failed, %.1f s; committed %llu entries, "
              "%llu suffix losses repaired, max term %llu, slowest recovery %llu ms\n",
              static_cast<unsigned long long>(seeds), base.nodes, static_cast<unsigned long long>(base.duration_ms),
              static_cast<unsigned long long>(failures), secs, static_cast<unsigned long long>(committed),
              static_cast<unsigned long long>(suffix_losses),
              static_cast<unsigned long long>(max_term), static_cast<unsigned long long>(max_recovery_ms));
  return failures == 0 ? 0 : 1;
}
