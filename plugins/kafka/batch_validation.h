// Kafka-level checks of produced record data, before it reaches the log:
// every batch is message format v2 with a correct CRC32C and lengths, within
// max.message.bytes, and (when uncompressed) its records parse and their
// offset deltas run 0, 1, 2, ... as Kafka requires. Pure functions over
// bytes, fuzzed by tests/fuzz/kafka_batch_fuzz.cc.
#pragma once

#include "errors.h"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>

namespace sluice::kafka {

// The most a batch may decompress to when the broker looks inside it.
inline constexpr size_t max_decompressed_bytes = 64u << 20;

struct batch_validation {
  error_code error = error_code::none;
  std::string message;  // what was wrong, for logs and the response's error_message
  int32_t batches = 0;
  int64_t records = 0;
  int64_t max_timestamp = -1;
  bool transactional = false;
  bool idempotent = false;  // producer id >= 0
};

// verify_crc false skips the CRC32C pass: the storage verifies every batch
// again on append, so the produce path checks CRCs once, there. The broker
// verifies here only when it answers without appending (an idempotent
// duplicate) or rewrites the batch (LogAppendTime re-stamps and re-CRCs it,
// which would otherwise hide corruption): see partition_table::produce.
batch_validation validate_produce_records(std::span<const uint8_t> records, uint32_t max_message_bytes,
                                          bool verify_crc = true);

// Calls fn(offset, key, value) for every record of the uncompressed v2
// batches in data (key/value null: data() == nullptr). False when the bytes
// are not whole batches or a batch is compressed.
struct record_view {
  int64_t offset;
  std::span<const uint8_t> key;    // data() == nullptr: null
  std::span<const uint8_t> value;  // data() == nullptr: null (a tombstone)
};
bool for_each_record(std::span<const uint8_t> data, const std::function<void(const record_view&)>& fn);

// message.timestamp.type=LogAppendTime: marks every batch (already
// validated) as log-append-time stamped with now_ms, as Kafka's broker does,
// and recomputes its CRC.
void stamp_log_append_time(std::span<uint8_t> batches, int64_t now_ms);

// The records of one uncompressed v2 batch body (after the 61-byte header):
// count records with consecutive offset deltas. "" or what is wrong.
std::string check_uncompressed_records(std::span<const uint8_t> body, int32_t count);

// Walks the records of a batch (decompressing it when needed) and returns
// the offset of the first record whose timestamp is >= ts, or -1.
// *compressed tells whether the batch was compressed; *found_ts is the
// record's timestamp.
int64_t first_offset_at_or_after(std::span<const uint8_t> batch, int64_t ts, bool* compressed, int64_t* found_ts);

}  // namespace sluice::kafka
