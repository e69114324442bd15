// controller_log: the controller group's (group 0) persisted Raft log, kept
// whole in memory (raft::memory_log) and written through to
// <data_dir>/raft/controller.log.
//
// The controller's log is small (topic, broker and config commands), so the
// file is an append-only sequence of records replayed at start (docs/RAFT.md,
// "On disk"):
//
//   u32 body_len | u32 crc32c(body) | body
//   body: u8 kind, then little-endian fields
//     1 entry     u64 term, u64 index, u32 count, u8 type, u32 len, bytes
//                 (an entry at or below the last one replaces it and
//                 everything after it: a truncated conflicting suffix)
//     2 hard      u64 term, u64 vote, u64 commit
//     3 snapshot  u64 index, u64 term, u32 len, membership, u32 len, data
//                 (the log restarts after it)
// A record that is torn or fails its CRC ends the log: the file is cut there
// (it was never acknowledged: the fdatasync that would make it durable did
// not complete). A record that is whole but does not fit the log (a gap, an
// entry below the snapshot) is corruption: start-up fails naming the file
// and the byte offset.
#pragma once

#include "controller_records.h"

#include <sluice/sdk/runtime.h>

#include <string>

namespace sluice::raft::controller {

class controller_log {
 public:
  controller_log(std::string path, membership bootstrap) : _path(std::move(path)), _log(std::move(bootstrap)) {}

  // Reads and replays the file (creating it), cutting a torn tail.
  sdk::task<result<void>> open();
  // Persists what a ready asks (snapshot, entries, hard state), durable on return.
  sdk::task<result<void>> persist(const ready& rd);
  // Replaces the log up to `index` (an entry's last, applied) with a
  // snapshot holding `data`, and rewrites the file: hard state, snapshot,
  // the entries after it (tmp file, fdatasync, rename, directory fsync).
  sdk::task<result<void>> compact(log_index index, std::string data);
  sdk::task<void> close();

  memory_log& log() noexcept { return _log; }
  const std::string& path() const noexcept { return _path; }

 private:
  sdk::task<result<void>> write_all(const std::string& bytes);

  std::string _path;
  memory_log _log;
  int32_t _fd = -1;
  uint64_t _size = 0;
  sdk::fifo_mutex _mu;  // one writer of the file at a time (persist, compact)
};

}  // namespace sluice::raft::controller
