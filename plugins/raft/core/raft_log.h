// raft_log: the node's view of its log, the host's stable log (log_reader)
// with the unstable part on top: a snapshot to install and entries not yet
// handed to the host, which may replace a suffix of the stable log.
//
// Internal to the core. Invariants (asserted):
//   committed <= last_index(); applied <= committed; committed never
//   decreases; unstable entries are contiguous, with non-decreasing terms,
//   and start at or before the stable log's end + 1; nothing at or below
//   committed is ever replaced.
#pragma once

#include "log_reader.h"
#include "types.h"

#include <optional>
#include <utility>
#include <vector>

namespace sluice::raft {

class raft_log {
 public:
  explicit raft_log(const log_reader& reader) : _reader(reader) {}

  const log_reader& reader() const noexcept { return _reader; }

  log_index first_index() const;
  log_index last_index() const;
  term_id last_term() const;
  result<term_id> term(log_index i) const;
  bool match_term(log_index i, term_id t) const;
  // The Raft election restriction: is (last, t) at least as up to date as ours?
  bool is_up_to_date(log_index last, term_id t) const;
  // See log_reader::entries.
  result<std::vector<entry>> entries(log_index lo, log_index hi, uint64_t bytes_max) const;
  // The largest index <= i whose term is <= t, and that term (terms never
  // decrease along the log, so a binary search). Never below the snapshot.
  std::pair<log_index, term_id> find_conflict_by_term(log_index i, term_id t) const;
  // The index of the first of `ents` whose term differs from ours (or that
  // we lack), or `ents.size()` if we have them all.
  size_t find_conflict(const std::vector<entry>& ents) const;

  log_index committed() const noexcept { return _committed; }
  log_index applied() const noexcept { return _applied; }
  void init(log_index committed, log_index applied);
  void commit_to(log_index i);
  void applied_to(log_index i);

  // Leader: appends at last_index() + 1.
  void append(entry e);
  // Follower: replaces everything from ents[from].index on.
  void truncate_and_append(const std::vector<entry>& ents, size_t from);
  // Follower: the whole log becomes the snapshot.
  void restore(const snapshot& s);

  const std::vector<entry>& unstable_entries() const noexcept { return _unstable; }
  const std::optional<snapshot>& unstable_snapshot() const noexcept { return _unstable_snap; }
  // Whether the unstable entries replace entries the host has persisted.
  bool unstable_truncates() const;
  // The host persisted the snapshot and entries of the last ready.
  void stable_to(const std::optional<snapshot>& snap, const std::vector<entry>& ents);
  // The last index that is both durable and part of this log.
  log_index stable_match() const;

 private:
  // The unstable entry containing i (i within the unstable range).
  const entry& unstable_at(log_index i) const;

  const log_reader& _reader;
  std::optional<snapshot> _unstable_snap;
  std::vector<entry> _unstable;
  log_index _committed;
  log_index _applied;
};

}  // namespace sluice::raft
