// Kafka record batches, message format v2 (magic 2), as clients send them
// and as segments store them: a fixed 61-byte header followed by records.
//
//   offset  size  field
//        0     8  baseOffset            (assigned by the broker; not in the CRC)
//        8     4  batchLength           (bytes after this field)
//       12     4  partitionLeaderEpoch  (the Raft term; not in the CRC)
//       16     1  magic = 2
//       17     4  crc                   (CRC32C of bytes 21..end)
//       21     2  attributes
//       23     4  lastOffsetDelta
//       27     8  baseTimestamp
//       35     8  maxTimestamp
//       43     8  producerId
//       51     2  producerEpoch
//       53     4  baseSequence
//       57     4  records count
//       61     -  records
//
// All integers are big-endian. Because baseOffset and the leader epoch sit
// outside the CRC, the broker assigns them without recomputing it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace sluice::storage {

inline constexpr size_t batch_header_bytes = 61;
inline constexpr size_t batch_length_field_end = 12;  // baseOffset + batchLength
inline constexpr size_t batch_crc_start = 21;
inline constexpr int8_t batch_magic_v2 = 2;

struct batch_header {
  int64_t base_offset = 0;
  int32_t batch_length = 0;
  int32_t leader_epoch = -1;
  int8_t magic = 0;
  uint32_t crc = 0;
  int16_t attributes = 0;
  int32_t last_offset_delta = 0;
  int64_t first_timestamp = 0;
  int64_t max_timestamp = 0;
  int64_t producer_id = -1;
  int16_t producer_epoch = -1;
  int32_t base_sequence = -1;
  int32_t record_count = 0;

  size_t size_bytes() const noexcept { return static_cast<size_t>(batch_length) + batch_length_field_end; }
  int64_t last_offset() const noexcept { return base_offset + last_offset_delta; }
  bool is_control() const noexcept { return (attributes & 0x20) != 0; }
  bool is_transactional() const noexcept { return (attributes & 0x10) != 0; }
};

enum class batch_check {
  ok,
  truncated,       // fewer bytes than the header or than batchLength says
  bad_length,      // batchLength smaller than a header or larger than the limit
  bad_magic,       // not message format v2
  bad_crc,         // CRC32C mismatch
  bad_count,       // lastOffsetDelta / records count inconsistent
};
const char* to_string(batch_check c) noexcept;

// Decodes the header fields at p (at least batch_header_bytes readable).
batch_header decode_header(const uint8_t* p) noexcept;

// Checks the batch starting at p with `available` bytes after it: length
// within [header, max_batch_bytes], magic 2, CRC32C (unless verify_crc is
// false: a caller whose batches the storage checks again skips that pass),
// counts. On ok, *out holds the header.
batch_check check_batch(const uint8_t* p, size_t available, size_t max_batch_bytes, batch_header* out,
                        bool verify_crc = true) noexcept;

// Writes the broker-assigned fields (outside the CRC).
void set_base_offset(uint8_t* p, int64_t base_offset) noexcept;
void set_leader_epoch(uint8_t* p, int32_t epoch) noexcept;

// Big-endian helpers.
inline int64_t read_be64(const uint8_t* p) noexcept {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | p[i];
  return static_cast<int64_t>(v);
}
inline int32_t read_be32(const uint8_t* p) noexcept {
  return static_cast<int32_t>((uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3]);
}
inline int16_t read_be16(const uint8_t* p) noexcept {
  return static_cast<int16_t>((uint16_t{p[0]} << 8) | p[1]);
}
inline void write_be64(uint8_t* p, int64_t v) noexcept {
  for (int i = 7; i >= 0; --i) {
    p[i] = static_cast<uint8_t>(v & 0xff);
    v = static_cast<int64_t>(static_cast<uint64_t>(v) >> 8);
  }
}
inline void write_be32(uint8_t* p, int32_t v) noexcept {
  const auto u = static_cast<uint32_t>(v);
  p[0] = static_cast<uint8_t>(u >> 24);
  p[1] = static_cast<uint8_t>(u >> 16);
  p[2] = static_cast<uint8_t>(u >> 8);
  p[3] = static_cast<uint8_t>(u);
}
inline void write_be16(uint8_t* p, int16_t v) noexcept {
  const auto u = static_cast<uint16_t>(v);
  p[0] = static_cast<uint8_t>(u >> 8);
  p[1] = static_cast<uint8_t>(u);
}

// Appends v as a zigzag varint (the record fields of message format v2).
void put_varint(std::string& out, int64_t v);

// One record for make_batch: an optional key and a value (no headers).
struct batch_record {
  bool has_key = false;
  std::string key;
  std::string value;
  bool has_value = true;  // false: a null value (a tombstone)
};

// Builds a valid, uncompressed v2 batch of `records` (record i has timestamp
// first_timestamp + i), for tests, tools and benchmarks: base offset 0,
// leader epoch -1, no producer id, CRC filled in.
std::string make_batch(const std::vector<batch_record>& records, int64_t first_timestamp);

// make_batch of `count` key-less records of `value_bytes` bytes of `fill`.
std::string make_test_batch(int32_t count, size_t value_bytes, int64_t first_timestamp, char fill = 'x');

}  // namespace sluice::storage
