// Idempotent producers (KIP-98) on the partition that receives their
// batches: per producer id, its epoch and its last five batches, so a
// retried batch is answered with the offset it got the first time instead
// of being appended twice, and a gap or an old epoch is refused.
//
// The rules are Kafka's (ProducerStateManager / ProducerAppendInfo, with
// KIP-360's change): for a batch of producer P, epoch E, sequences f..l:
//   - E older than P's known epoch         INVALID_PRODUCER_EPOCH
//   - same E, f..l equal to a cached batch  a duplicate: the cached offsets
//   - E newer than the known epoch          f must be 0
//   - same E                                f must be the last sequence + 1
//                                           (INT32_MAX wraps to 0)
//   - P unknown                             any f (Kafka >= 2.5 no longer
//                                           answers UNKNOWN_PRODUCER_ID: the
//                                           state may have gone with
//                                           retention, and clients since
//                                           KIP-360 expect the write to pass)
// else OUT_OF_ORDER_SEQUENCE_NUMBER. Pure logic over batch headers; the
// partition (partitions.cc) runs check + append + record under one lock.
#pragma once

#include "errors.h"

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <span>
#include <string>
#include <vector>

namespace sluice::kafka {

// What the checks need of one batch, from its header.
struct producer_batch_info {
  int64_t producer_id = -1;
  int16_t producer_epoch = -1;
  int32_t first_seq = -1;
  int32_t last_seq = -1;     // first_seq + last_offset_delta, wrapping like Kafka's
  int32_t offset_count = 1;  // last_offset_delta + 1: the offsets the batch takes
  int64_t max_timestamp = -1;
};

struct producer_batch_metadata {
  int32_t first_seq = -1;
  int32_t last_seq = -1;
  int64_t base_offset = -1;
  int64_t last_offset = -1;
  int64_t timestamp = -1;
};

struct producer_entry {
  int16_t epoch = -1;
  std::deque<producer_batch_metadata> batches;  // oldest first, at most batches_to_retain

  int32_t last_seq() const noexcept { return batches.empty() ? -1 : batches.back().last_seq; }
  int64_t last_timestamp() const noexcept { return batches.empty() ? -1 : batches.back().timestamp; }
  int64_t last_offset() const noexcept { return batches.empty() ? -1 : batches.back().last_offset; }
};

struct sequence_verdict {
  error_code error = error_code::none;
  std::string message;
  bool duplicate = false;  // already in the log: answer with these offsets, append nothing
  int64_t base_offset = -1;
  int64_t last_offset = -1;
};

class producer_state_table {
 public:
  // Kafka's ProducerStateEntry.NUM_BATCHES_TO_RETAIN: clients keep at most
  // five batches in flight per partition (max.in.flight.requests <= 5).
  static constexpr size_t batches_to_retain = 5;

  // The batches of one produce request, in order, against the state (not
  // changed). Batches with producer id -1 are not checked.
  sequence_verdict check(std::span<const producer_batch_info> batches) const;
  // The batches were appended with consecutive offsets from base_offset.
  // append_time_ms >= 0: the log's time replaces the batches' timestamps.
  void record(std::span<const producer_batch_info> batches, int64_t base_offset, int64_t append_time_ms = -1);
  // Rebuilding from the log: one batch as stored at base_offset. Trusts the
  // log's order; a batch of an older epoch than known is ignored.
  void replay(const producer_batch_info& batch, int64_t base_offset);

  const std::map<int64_t, producer_entry>& producers() const noexcept { return _producers; }

 private:
  static void push(producer_entry& e, const producer_batch_info& b, int64_t base_offset, int64_t timestamp);

  std::map<int64_t, producer_entry> _producers;
};

// seq + delta with Kafka's wraparound (DefaultRecordBatch.incrementSequence).
int32_t increment_sequence(int32_t seq, int32_t delta) noexcept;

// The header of one v2 batch at p (batch_header_bytes readable).
producer_batch_info producer_batch_at(const uint8_t* p) noexcept;

// The headers of validated v2 batches (whole, as validate_produce_records
// accepted them).
std::vector<producer_batch_info> producer_batches_of(std::span<const uint8_t> batches);

}  // namespace sluice::kafka
