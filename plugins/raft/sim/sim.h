// The deterministic simulation of a Raft group (docs/RAFT.md, "The simulator").
//
// One seed drives everything: a simulated network (delay, loss,
// reordering, duplication, symmetric and asymmetric partitions), disks with
// fsync latency whose unpersisted writes are lost on a crash (even half a
// ready: entries without the hard state), crashes and restarts (some of
// which lose a suffix of the node's log and repair it behind a repair
// gate, docs/RAFT.md "Repairing a replica"), clocks that
// tick at different rates, leadership transfers, membership changes, log
// compaction with snapshots and client proposals. The run has a fault phase
// and then a healed phase in which a proposal must commit within a bound.
//
// After every simulated millisecond the checker verifies: at most one
// leader per term; log matching (an (index, term) names one entry and one
// predecessor); leader completeness (a new leader holds every entry known
// committed before it was elected); state machine safety (every node
// applies the same entry at each index, and snapshots carry the same state);
// committed entries never change; commit indexes and terms never go back;
// a read_index read sees every entry known committed when it was requested.
//
// Nothing depends on the wall clock, addresses or hash-table order: the same
// options give the same trace, byte for byte.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

namespace sluice::raft::sim {

struct options {
  uint64_t seed = 1;
  uint32_t nodes = 3;          // 3 or 5
  uint64_t duration_ms = 4400; // simulated time; faults stop 2.1 s before the end (at least halfway)
  bool verbose = false;        // write the trace to the trace FILE
  bool hash_trace = false;     // compute outcome::trace_hash (implied by verbose)
};

struct stats {
  uint64_t messages_sent = 0;
  uint64_t messages_lost = 0;      // loss, partitions, down nodes
  uint64_t leaders = 0;            // distinct (term, leader) pairs
  uint64_t max_term = 0;
  uint64_t crashes = 0;
  uint64_t suffix_losses = 0;      // restarts that lost a suffix of the log (repair gates set)
  uint64_t proposals = 0;          // accepted by a leader
  uint64_t committed_entries = 0;  // distinct entries known committed
  uint64_t snapshots_installed = 0;
  uint64_t conf_changes = 0;       // accepted by a leader
  uint64_t transfers = 0;          // started by a leader
  uint64_t reads = 0;              // read_index requests confirmed
  uint64_t recovery_ms = 0;        // heal -> first post-heal proposal committed
};

struct outcome {
  bool ok = true;
  std::string invariant;  // which check failed
  std::string detail;
  uint64_t at_ms = 0;
  stats st;
  uint64_t trace_hash = 0;
};

outcome run(const options& o, std::FILE* trace);

// "raft-sim --seed N --nodes K --steps MS --verbose": the command that
// replays a run.
std::string replay_command(const options& o);

// While set, an abort (a failed assertion in the core) first prints the seed
// being simulated and its replay command to stderr.
void set_abort_context(const options* o);

}  // namespace sluice::raft::sim
