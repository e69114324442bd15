// How a partition's Raft log is stored as its Kafka log (docs/RAFT.md,
// "Partition groups").
//
// A partition's Raft log and its Kafka log are the same bytes. Each Raft
// entry is one Kafka record batch (message format v2):
//
//   Raft                          Kafka batch
//   index i                       offset i - 1 (index 0 is "before the log")
//   entry [index, index+count)    baseOffset = index - 1, lastOffsetDelta = count - 1
//   term                          partitionLeaderEpoch
//   normal entry (payload)        the producer's batch, stamped by the leader
//   noop (a new leader's entry)   control batch, one record, key type 2 (LeaderChange)
//   conf_change (membership)      control batch, one record, key type 6 (voters),
//                                 value = raft::encode_membership()
//
// Control batches are what Kafka itself uses for transaction markers: every
// client skips them, so a consumer sees an offset gap where a leader changed.
// The noop/conf_change batches are deterministic (timestamps 0, no producer),
// so every replica stores identical bytes for them.
//
// Pure functions: no I/O (fuzzed and unit-tested).
#pragma once

#include "types.h"

#include <cstdint>
#include <memory>
#include <string>

namespace sluice::raft::partition {

inline log_index index_of_offset(int64_t offset) noexcept { return log_index(static_cast<uint64_t>(offset) + 1); }
// Unsigned arithmetic: index 0 gives -1, and an index past INT64_MAX wraps instead of overflowing.
inline int64_t offset_of_index(log_index i) noexcept { return static_cast<int64_t>(i.value() - 1); }

inline constexpr int16_t control_type_leader_change = 2;
inline constexpr int16_t control_type_voters = 6;

// The stored bytes of a noop or conf_change entry (asserts the type).
std::string encode_control_batch(const entry& e);

// The entry a stored batch holds. `p` points at `len` bytes holding exactly
// one whole batch whose header and CRC the storage already checked; normal
// entries share `owner` (no copy). Errors name what does not fit (a control
// batch without a readable key, a count that does not match the header).
result<entry> entry_from_batch(std::shared_ptr<const void> owner, const uint8_t* p, size_t len);

// The leader's stamp on a producer batch before it proposes it: base offset
// and partition leader epoch (both outside the CRC).
void stamp_batch(uint8_t* p, int64_t base_offset, term_id term) noexcept;

}  // namespace sluice::raft::partition
