#include "record_batch.h"

#include "crc32c.h"

#include <sluice/sdk/assert.h>

namespace sluice::storage {

const char* to_string(batch_check c) noexcept {
  switch (c) {
    case batch_check::ok: return "ok";
    case batch_check::truncated: return "truncated batch";
    case batch_check::bad_length: return "invalid batch length";
    case batch_check::bad_magic: return "not a v2 record batch (magic != 2)";
    case batch_check::bad_crc: return "CRC32C mismatch";
    case batch_check::bad_count: return "inconsistent record count";
  }
  return "?";
}

batch_header decode_header(const uint8_t* p) noexcept {
  batch_header h;
  h.base_offset = read_be64(p);
  h.batch_length = read_be32(p + 8);
  h.leader_epoch = read_be32(p + 12);
  h.magic = static_cast<int8_t>(p[16]);
  h.crc = static_cast<uint32_t>(read_be32(p + 17));
  h.attributes = read_be16(p + 21);
  h.last_offset_delta = read_be32(p + 23);
  h.first_timestamp = read_be64(p + 27);
  h.max_timestamp = read_be64(p + 35);
  h.producer_id = read_be64(p + 43);
  h.producer_epoch = read_be16(p + 51);
  h.base_sequence = read_be32(p + 53);
  h.record_count = read_be32(p + 57);
  return h;
}

batch_check check_batch(const uint8_t* p, size_t available, size_t max_batch_bytes, batch_header* out,
                        bool verify_crc) noexcept {
  if (available < batch_header_bytes) return batch_check::truncated;
  batch_header h = decode_header(p);
  if (h.batch_length < static_cast<int32_t>(batch_header_bytes - batch_length_field_end) ||
      h.size_bytes() > max_batch_bytes)
    return batch_check::bad_length;
  if (h.size_bytes() > available) return batch_check::truncated;
  if (h.magic != batch_magic_v2) return batch_check::bad_magic;
  if (verify_crc && crc32c(0, p + batch_crc_start, h.size_bytes() - batch_crc_start) != h.crc)
    return batch_check::bad_crc;
  if (h.last_offset_delta < 0 || h.record_count < 0 ||
      (!h.is_control() && h.record_count > 0 && h.record_count != h.last_offset_delta + 1))
    return batch_check::bad_count;
  if (out) *out = h;
  return batch_check::ok;
}

void set_base_offset(uint8_t* p, int64_t base_offset) noexcept { write_be64(p, base_offset); }
void set_leader_epoch(uint8_t* p, int32_t epoch) noexcept { write_be32(p + 12, epoch); }

void put_varint(std::string& out, int64_t v) {
  uint64_t z = (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);  // zigzag
  while (z >= 0x80) {
    out.push_back(static_cast<char>((z & 0x7f) | 0x80));
    z >>= 7;
  }
  out.push_back(static_cast<char>(z));
}

std::string make_test_batch(int32_t count, size_t value_bytes, int64_t first_timestamp, char fill) {
  SLUICE_ASSERT(count >= 1);
  std::vector<batch_record> records(static_cast<size_t>(count));
  for (auto& r : records) r.value.assign(value_bytes, fill);
  return make_batch(records, first_timestamp);
}

std::string make_batch(const std::vector<batch_record>& recs, int64_t first_timestamp) {
  SLUICE_ASSERT(!recs.empty());
  const auto count = static_cast<int32_t>(recs.size());
  std::string records;
  for (int32_t i = 0; i < count; ++i) {
    const batch_record& r = recs[static_cast<size_t>(i)];
    std::string body;
    body.push_back(0);                // record attributes
    put_varint(body, i);              // timestamp delta
    put_varint(body, i);              // offset delta
    if (r.has_key) {
      put_varint(body, static_cast<int64_t>(r.key.size()));
      body += r.key;
    } else {
      put_varint(body, -1);           // null key
    }
    if (r.has_value) {
      put_varint(body, static_cast<int64_t>(r.value.size()));
      body += r.value;
    } else {
      put_varint(body, -1);           // null value
    }
    put_varint(body, 0);              // header count
    put_varint(records, static_cast<int64_t>(body.size()));
    records += body;
  }
  std::string b(batch_header_bytes, '\0');
  b += records;
  auto* p = reinterpret_cast<uint8_t*>(b.data());
  write_be64(p, 0);
  write_be32(p + 8, static_cast<int32_t>(b.size() - batch_length_field_end));
  write_be32(p + 12, -1);
  p[16] = static_cast<uint8_t>(batch_magic_v2);
  write_be16(p + 21, 0);
  write_be32(p + 23, count - 1);
  write_be64(p + 27, first_timestamp);
  write_be64(p + 35, first_timestamp + count - 1);
  write_be64(p + 43, -1);
  write_be16(p + 51, -1);
  write_be32(p + 53, -1);
  write_be32(p + 57, count);
  write_be32(p + 17, static_cast<int32_t>(crc32c(0, p + batch_crc_start, b.size() - batch_crc_start)));
  return b;
}

}  // namespace sluice::storage
