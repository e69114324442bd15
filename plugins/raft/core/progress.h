// progress: what a leader knows about one member's log (etcd/raft's
// Progress), and the window of appends in flight to it (back-pressure).
//
//   probe      one append at a time until the follower's match is found
//              (sent again after a heartbeat response or a rejection)
//   replicate  optimistic: appends are pipelined, at most
//              inflight_appends_max unacknowledged
//   snapshot   an install_snapshot is in flight; nothing else is sent
#pragma once

#include "types.h"

#include <vector>

namespace sluice::raft {

enum class progress_state : uint8_t { probe, replicate, snapshot };
const char* to_string(progress_state s) noexcept;

// The last index of each append in flight, oldest first, in a fixed ring.
class inflights {
 public:
  explicit inflights(uint32_t capacity);
  bool full() const noexcept { return _count == _ring.size(); }
  uint32_t count() const noexcept { return _count; }
  void add(log_index last);
  void free_le(log_index i);  // acknowledged up to i
  void free_first();
  void reset() noexcept { _start = _count = 0; }

 private:
  std::vector<log_index> _ring;
  uint32_t _start = 0;
  uint32_t _count = 0;
};

struct progress {
  explicit progress(uint32_t inflight_max) : in_flight(inflight_max) {}

  log_index match;  // highest index known to be replicated (durably) on the member
  log_index next;   // next index to send
  progress_state state = progress_state::probe;
  bool probe_sent = false;     // probe: an append is out, wait for its answer
  bool recent_active = false;  // heard from it since the last quorum check
  bool learner = false;
  bool read_pending = false;   // the log (or snapshot) was unavailable: retry on tick
  log_index pending_snapshot;  // snapshot: the index being installed
  uint32_t snapshot_ticks = 0; // snapshot: ticks since it was sent
  uint64_t heartbeat_seq = 0;  // the latest heartbeat round it answered
  inflights in_flight;

  void become_probe();
  void become_replicate();
  void become_snapshot(log_index snapshot_index);
  // A successful append response for index n; true if match moved.
  bool maybe_update(log_index n);
  // A rejection of the append whose previous index was `rejected`, with the
  // follower's hint; false if the rejection is stale.
  bool maybe_decr_to(log_index rejected, log_index match_hint);
  // The member lost a suffix it had acknowledged (a repair): its log ends
  // at `last` < match, and matches ours up to there. Probe from there.
  void regress_to(log_index last);
  bool is_paused() const noexcept;
};

}  // namespace sluice::raft
