// memory_log: the reference log_reader, a stable log held in memory.
//
// It shows what a host does with a ready (persist()) and is what the unit
// tests and the simulator use as each node's "disk". A host whose log is
// small (the controller group) can keep one of these and write its changes
// through to a file; a partition's host implements log_reader over the
// storage plugin's log instead (docs/RAFT.md).
#pragma once

#include "log_reader.h"
#include "raft_node.h"

#include <vector>

namespace sluice::raft {

class memory_log final : public log_reader {
 public:
  // `bootstrap`: the membership of a brand-new group, kept as the
  // membership of the empty snapshot at index 0 (so compaction can always
  // record one). Empty for a node that joins an existing group.
  explicit memory_log(membership bootstrap = {}) { _snap.meta.members = std::move(bootstrap); }

  // ---- log_reader
  hard_state initial_hard_state() const override { return _hard; }
  log_index first_index() const override { return _snap.meta.index + 1; }
  log_index last_index() const override;
  result<term_id> term(log_index i) const override;
  result<std::vector<entry>> entries(log_index lo, log_index hi, uint64_t bytes_max) const override;
  snapshot_meta snapshot_meta_of() const override { return _snap.meta; }
  result<snapshot> current_snapshot() const override { return _snap; }
  std::optional<membership_record> last_membership(log_index at) const override;

  // ---- the host's side
  // Everything a ready asks to persist, in the documented order: snapshot,
  // entries (deleting the replaced suffix), hard state.
  void persist(const ready& rd);
  void install_snapshot(const snapshot& s);  // the log becomes empty after s
  void append(const std::vector<entry>& ents);
  void set_hard_state(const hard_state& hs) { _hard = hs; }
  // Drops the entries from `from` (an entry's first index, above the
  // snapshot) on: a disk that lost a suffix (the simulator's repair fault).
  void lose_suffix(log_index from);
  // Drops the entries up to `index` (an entry's last index, applied by the
  // host), keeping a snapshot of them with `data`.
  void compact(log_index index, payload data);

  const std::vector<entry>& stored_entries() const noexcept { return _entries; }
  const snapshot& stored_snapshot() const noexcept { return _snap; }

 private:
  // Position in _entries of the entry containing i (first_index <= i <= last_index).
  size_t position(log_index i) const;

  hard_state _hard;
  snapshot _snap;  // index 0: no snapshot yet (members: the bootstrap)
  std::vector<entry> _entries;
};

}  // namespace sluice::raft
