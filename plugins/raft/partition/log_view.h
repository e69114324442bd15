// log_view: the Raft core's view (log_reader) of a partition's log, which
// the storage plugin holds.
//
// The storage is asynchronous (a service on the shard) and the core asks
// synchronously, so the view keeps in memory what the core asks for often:
//   - the bounds: log start offset and next offset (first_index - 1 and
//     last_index);
//   - the term boundaries (the storage's leader-epoch table), so term(i) is
//     a binary search;
//   - a tail cache of the latest entries (what a leader sends to followers
//     that keep up), bounded in bytes;
//   - one read-back window: entries read from the storage for a follower
//     that fell behind the tail cache. entries() answers errc::unavailable
//     and records the wanted index (wanted_read()); the group reads it in
//     the background and fill_readback() stores it; the core retries on a
//     later tick.
// The group updates it after every change it makes to the storage log
// (appended, truncated, reset), so it never disagrees with the disk.
//
//
// Membership: a brand-new group's voters are its replicas as the controller
// assigned them (the bootstrap). Moving a replica adds conf_change entries
// (control batches) to the log; the view keeps every one it knows of as a
// conf_record (index, term, membership), which the group also persists in
// the .members file, so last_membership() needs no scan of the log.
#pragma once

#include "hard_state_slot.h"
#include "log_reader.h"

#include <deque>
#include <optional>
#include <vector>

namespace sluice::raft::partition {

struct epoch_start {
  term_id term;
  log_index start;  // the first index written in this term
};

class log_view final : public log_reader {
 public:
  log_view(membership bootstrap, uint64_t tail_bytes_max)
      : _bootstrap(std::move(bootstrap)), _tail_bytes_max(tail_bytes_max) {}

  // ---- set up from the storage and the persisted hard state
  // start_offset/next_offset: the storage's LogState; epochs ascending.
  void reset(int64_t start_offset, int64_t next_offset, std::vector<epoch_start> epochs, term_id snapshot_term,
             hard_state hs);

  // ---- the group's changes (after the storage did them)
  // Entries appended after last_index() (contiguous, asserted).
  void appended(const std::vector<entry>& ents);
  // Everything from `from` on was removed.
  void truncated(log_index from);
  // The log was emptied and continues after `s` (install_snapshot).
  void restored(const snapshot_meta& s);
  // A prefix was removed by retention or DeleteRecords: the log starts at start_offset now.
  void prefix_removed(int64_t start_offset);
  void set_hard_state(const hard_state& hs) { _hard = hs; }

  // ---- membership records
  // After reset(): the records persisted in the .members file. Records the
  // log does not hold (past its end, or another term at that index: a crash
  // between the file and the log) are dropped; of those before the log
  // start only the latest stays. True if the list changed (rewrite the file).
  bool set_confs(std::vector<conf_record> recs);
  // The records after appending `ents` (what appended() will make of them):
  // the group persists them before the entries reach the log.
  std::vector<conf_record> confs_after(const std::vector<entry>& ents) const;
  const std::vector<conf_record>& confs() const noexcept { return _confs; }
  // The membership in effect now: the latest record's, or the bootstrap.
  const membership& members() const noexcept { return _confs.empty() ? _bootstrap : _confs.back().members; }
  const membership& bootstrap() const noexcept { return _bootstrap; }

  // ---- background reads for followers behind the tail cache
  std::optional<log_index> wanted_read() const noexcept { return _want; }
  void clear_wanted() noexcept { _want.reset(); }
  void fill_readback(std::vector<entry> ents);

  // ---- log_reader
  hard_state initial_hard_state() const override { return _hard; }
  log_index first_index() const override { return _first; }
  log_index last_index() const override { return _last; }
  result<term_id> term(log_index i) const override;
  result<std::vector<entry>> entries(log_index lo, log_index hi, uint64_t max_bytes) const override;
  snapshot_meta snapshot_meta_of() const override;
  result<snapshot> current_snapshot() const override;
  std::optional<membership_record> last_membership(log_index at) const override;

  // `commit` moved back before the control entries (noop, conf_change) that
  // end the committed log, as far as the tail cache holds them.
  log_index visible_end(log_index commit) const;

  const std::vector<epoch_start>& epochs() const noexcept { return _epochs; }
  uint64_t tail_bytes() const noexcept { return _tail_bytes; }

 private:
  static bool gather(const std::deque<entry>& from, log_index lo, log_index hi, uint64_t max_bytes,
                     std::vector<entry>& out);
  void trim_tail();
  void note_term(const entry& e);
  static void add_conf(std::vector<conf_record>& to, const entry& e);
  // The latest record at or below `at`, if any.
  const conf_record* conf_at(log_index at) const;

  membership _bootstrap;
  std::vector<conf_record> _confs;  // ascending by index, all <= _last
  uint64_t _tail_bytes_max;
  hard_state _hard;
  log_index _first{1};  // snapshot index + 1
  log_index _last{0};
  term_id _snap_term;   // the term of index _first - 1 when no epoch covers it
  std::vector<epoch_start> _epochs;
  std::deque<entry> _tail;  // contiguous, ending at _last
  uint64_t _tail_bytes = 0;
  std::deque<entry> _readback;  // contiguous, somewhere below the tail
  mutable std::optional<log_index> _want;
};

}  // namespace sluice::raft::partition
