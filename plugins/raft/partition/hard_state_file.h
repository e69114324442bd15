// hard_state_file: a partition group's Raft hard state (term and vote) and
// snapshot point, in <data_dir>/raft/partitions/<topic>-<partition>-<revision>.state.
//
// Format (docs/RAFT.md, "On disk"): two 512-byte slots; a write goes to the
// slot after the newest valid one, then fdatasync, so a torn write leaves the
// other slot intact. Slot (little-endian):
//   u32 magic "SRHS" | u32 version 1 | u64 sequence | u64 term | u64 vote |
//   u64 snapshot_index | u64 snapshot_term | u32 crc32c of the bytes before it
// The slot with the highest sequence and a valid CRC wins; none valid (a new
// group) reads as zeros.
#pragma once

#include "hard_state_slot.h"

#include <sluice/sdk/runtime.h>

#include <string>

namespace sluice::raft::partition {

class hard_state_file {
 public:
  explicit hard_state_file(std::string path) : _path(std::move(path)) {}
  hard_state_file(const hard_state_file&) = delete;
  hard_state_file& operator=(const hard_state_file&) = delete;

  // Opens (creating) the file and reads the newest valid slot.
  sdk::task<result<persisted_state>> open();
  // Writes and fdatasyncs.
  sdk::task<result<void>> write(const persisted_state& s);
  sdk::task<void> close();
  // Removes the file (the partition was deleted).
  sdk::task<void> remove();

  const persisted_state& current() const noexcept { return _cur; }

 private:
  std::string _path;
  int32_t _fd = -1;
  uint64_t _seq = 0;
  persisted_state _cur;
};

}  // namespace sluice::raft::partition
