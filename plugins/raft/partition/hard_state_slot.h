// The slots of a partition group's hard-state file (hard_state_file.h):
// encoding and validation only, no I/O (tested and fuzzed on their own).
#pragma once

#include "types.h"

#include <optional>
#include <string>
#include <utility>

namespace sluice::raft::partition {

struct persisted_state {
  term_id term;
  node_id vote;
  log_index snapshot_index;  // the last install_snapshot's point (0: none)
  term_id snapshot_term;
  bool operator==(const persisted_state&) const = default;
};

// Pure encoding (tested and fuzzed without I/O).
inline constexpr size_t hard_state_slot_bytes = 512;
std::string encode_hard_state_slot(const persisted_state& s, uint64_t sequence);
// nullopt when the slot is not a valid one (zeros, torn, another format).
std::optional<std::pair<persisted_state, uint64_t>> decode_hard_state_slot(const uint8_t* p, size_t len);

}  // namespace sluice::raft::partition
