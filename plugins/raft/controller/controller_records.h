// The records of the controller's log file (controller_log.h): encoding and
// replay only, no I/O (tested and fuzzed on their own).
#pragma once

#include "memory_log.h"

#include <string>
#include <string_view>

namespace sluice::raft::controller {

// Pure: record encoding and replay (tested and fuzzed without I/O).
std::string encode_entry_record(const entry& e);
std::string encode_hard_record(const hard_state& hs);
std::string encode_snapshot_record(const snapshot& s);

struct replay_result {
  uint64_t valid_bytes = 0;  // the prefix of whole, valid records
  uint64_t records = 0;
};
// Replays `bytes` into `log`. Stops at a torn or bad-CRC record; an error
// names the offset of a whole record that does not fit.
result<replay_result> replay(std::string_view bytes, memory_log& log, const std::string& path);

}  // namespace sluice::raft::controller
