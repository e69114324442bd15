// log_reader: the core's read-only view of what the host has persisted.
//
// The host implements it over its stable log (for a partition, the storage
// plugin's log; memory_log.h is the in-memory reference implementation).
// The core never writes through it: the host changes the stable log only
// while it handles a ready (between raft_node::ready() and advance()) and
// by compacting a prefix it has applied, at any time the core is not running.
//
// Contract (indexes as in types.h; the log is a sequence of entries without
// gaps, preceded by a snapshot point that may be index 0 / term 0):
//   first_index()  the first index still stored: snapshot index + 1.
//   last_index()   the last index stored (the snapshot index if empty).
//   term(i)        the term of the entry containing index i; for i equal to
//                  first_index() - 1, the snapshot's term; errc::compacted
//                  below that, errc::unavailable above last_index(). Called
//                  on every append and vote: it must be cheap and never block
//                  (a partition keeps its term boundaries in memory, like
//                  Kafka's leader-epoch checkpoint).
//   entries(lo, hi, max_bytes)
//                  whole entries, in order, starting with the one that
//                  contains lo and ending before the first one that starts
//                  at or after hi; at least one entry when lo < hi, then more
//                  while the sum of entry::bytes() stays within max_bytes.
//                  errc::compacted if lo < first_index(). errc::unavailable
//                  when the host cannot serve it without blocking right now
//                  (the core retries on a later tick): the host may start
//                  reading the range in the background.
//   current_snapshot()  the latest snapshot (meta and data) for a follower
//                  that needs entries below first_index(); its index is
//                  first_index() - 1. errc::snapshot_unavailable makes the
//                  core retry later.
//   snapshot_meta_of()  the same snapshot's metadata only (cheap).
//   initial_hard_state()  the persisted hard state, read once at construction.
//   last_membership(at)   the membership in effect at index `at`: the latest
//                  conf_change entry with index <= at, decoded, or the
//                  snapshot's membership if there is none after it; nullopt
//                  if the log has neither (a brand-new node: the core then
//                  uses its configured bootstrap membership).
#pragma once

#include "types.h"

#include <optional>
#include <vector>

namespace sluice::raft {

class log_reader {
 public:
  virtual ~log_reader() = default;

  virtual hard_state initial_hard_state() const = 0;
  virtual log_index first_index() const = 0;
  virtual log_index last_index() const = 0;
  virtual result<term_id> term(log_index i) const = 0;
  virtual result<std::vector<entry>> entries(log_index lo, log_index hi, uint64_t max_bytes) const = 0;
  virtual snapshot_meta snapshot_meta_of() const = 0;
  virtual result<snapshot> current_snapshot() const = 0;
  virtual std::optional<membership_record> last_membership(log_index at) const = 0;
};

}  // namespace sluice::raft
