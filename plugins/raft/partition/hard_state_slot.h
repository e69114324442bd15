// The slots of a partition group's hard-state file (hard_state_file.h):
// encoding and validation only, no I/O (tested and fuzzed on their own).
#pragma once

#include "types.h"

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice::raft::partition {

struct persisted_state {
  term_id term;
  node_id vote;
  log_index snapshot_index;  // the last install_snapshot's point (0: none)
  term_id snapshot_term;
  // A repair in progress (docs/RAFT.md, "Repairing a replica"): the last
  // entry the log held before a damaged suffix was cut (0: none).
  log_index gate_index;
  term_id gate_term;
  bool operator==(const persisted_state&) const = default;
};

// Pure encoding (tested and fuzzed without I/O).
inline constexpr size_t hard_state_slot_bytes = 512;
std::string encode_hard_state_slot(const persisted_state& s, uint64_t sequence);
// nullopt when the slot is not a valid one (zeros, torn, another format).
std::optional<std::pair<persisted_state, uint64_t>> decode_hard_state_slot(const uint8_t* p, size_t len);

// A membership change in a partition's log: a conf_change entry, or the
// membership a snapshot reset the log to. The group keeps these in
// <topic>-<partition>-<revision>.members beside the .state file, so a
// restart knows the membership without scanning the log.
struct conf_record {
  log_index index;
  term_id term;
  membership members;
  bool operator==(const conf_record&) const = default;
};

// The .members file (docs/RAFT.md, "On disk"), little-endian:
//   u32 magic "SRMB" | u32 version 1 | u32 count |
//   count x (u64 index | u64 term | u32 length | encode_membership()) |
//   u32 crc32c of the bytes before it
// Written whole (sdk::replace_file); an empty file is an empty list.
std::string encode_conf_records(const std::vector<conf_record>& recs);
// Errors name what is wrong (the caller adds the file's name).
result<std::vector<conf_record>> decode_conf_records(std::string_view bytes);

}  // namespace sluice::raft::partition
