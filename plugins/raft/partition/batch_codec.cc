#include "batch_codec.h"

#include "crc32c.h"
#include "record_batch.h"

#include <cstring>

namespace sluice::raft::partition {
namespace {

using storage::batch_header_bytes;
using storage::write_be16;
using storage::write_be32;
using storage::write_be64;

constexpr int16_t control_attribute = 0x20;

using storage::put_varint;

// A bounded zigzag varint reader.
struct cursor {
  const uint8_t* p;
  const uint8_t* end;
  bool ok = true;

  int64_t varint() {
    uint64_t z = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p >= end) break;
      const uint8_t b = *p++;
      z |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return static_cast<int64_t>(z >> 1) ^ -static_cast<int64_t>(z & 1);
    }
    ok = false;
    return 0;
  }
  const uint8_t* take(int64_t n) {
    if (n < 0 || end - p < n) {
      ok = false;
      return nullptr;
    }
    const uint8_t* at = p;
    p += n;
    return at;
  }
};

}  // namespace

std::string encode_control_batch(const entry& e) {
  SLUICE_ASSERT_MSG(e.type == entry_type::noop || e.type == entry_type::conf_change,
                    "only noop and conf_change entries are stored as control batches");
  SLUICE_ASSERT_MSG(e.count == 1, "a control entry occupies one index");
  SLUICE_ASSERT(!e.index.is_zero());
  const bool conf = e.type == entry_type::conf_change;

  // One record: attributes 0, timestamp and offset deltas 0, the control
  // key (version 0, type), the value (the membership, or null for a noop),
  // no headers.
  std::string key(4, '\0');
  write_be16(reinterpret_cast<uint8_t*>(key.data()), 0);
  write_be16(reinterpret_cast<uint8_t*>(key.data() + 2), conf ? control_type_voters : control_type_leader_change);
  std::string body;
  body.push_back(0);  // attributes
  put_varint(body, 0);  // timestampDelta
  put_varint(body, 0);  // offsetDelta
  put_varint(body, static_cast<int64_t>(key.size()));
  body += key;
  if (conf) {
    put_varint(body, static_cast<int64_t>(e.data.size()));
    body.append(e.data.view());
  } else {
    put_varint(body, -1);
  }
  put_varint(body, 0);  // headers
  std::string record;
  put_varint(record, static_cast<int64_t>(body.size()));
  record += body;

  std::string out(batch_header_bytes, '\0');
  out += record;
  auto* p = reinterpret_cast<uint8_t*>(out.data());
  write_be64(p + 0, offset_of_index(e.index));
  write_be32(p + 8, static_cast<int32_t>(out.size() - storage::batch_length_field_end));
  write_be32(p + 12, static_cast<int32_t>(e.term.value()));
  p[16] = static_cast<uint8_t>(storage::batch_magic_v2);
  write_be16(p + 21, control_attribute);
  write_be32(p + 23, 0);   // lastOffsetDelta
  write_be64(p + 27, 0);   // baseTimestamp
  write_be64(p + 35, 0);   // maxTimestamp
  write_be64(p + 43, -1);  // producerId
  write_be16(p + 51, -1);  // producerEpoch
  write_be32(p + 53, -1);  // baseSequence
  write_be32(p + 57, 1);   // records
  write_be32(p + 17, static_cast<int32_t>(storage::crc32c(0, p + storage::batch_crc_start,
                                                          out.size() - storage::batch_crc_start)));
  return out;
}

result<entry> entry_from_batch(std::shared_ptr<const void> owner, const uint8_t* p, size_t len) {
  if (len < batch_header_bytes)
    return make_raft_error(errc::invalid_argument, "a stored batch of " + std::to_string(len) + " bytes is shorter than its header");
  const storage::batch_header h = storage::decode_header(p);
  if (h.size_bytes() != len)
    return make_raft_error(errc::invalid_argument, "batch at offset " + std::to_string(h.base_offset) + " says " +
                                                       std::to_string(h.size_bytes()) + " bytes, slice has " +
                                                       std::to_string(len));
  if (h.base_offset < 0 || h.last_offset_delta < 0)
    return make_raft_error(errc::invalid_argument, "batch with base offset " + std::to_string(h.base_offset) +
                                                       " and last offset delta " + std::to_string(h.last_offset_delta));
  entry e;
  e.term = term_id(h.leader_epoch > 0 ? static_cast<uint64_t>(h.leader_epoch) : 0);
  e.index = index_of_offset(h.base_offset);
  e.count = static_cast<uint32_t>(h.last_offset_delta) + 1;
  e.type = entry_type::normal;
  if (h.is_control() && h.record_count >= 1) {
    cursor c{p + batch_header_bytes, p + len};
    c.varint();                              // record length
    c.take(1);                               // attributes
    c.varint();                              // timestampDelta
    c.varint();                              // offsetDelta
    const int64_t key_len = c.varint();
    const uint8_t* key = c.take(key_len);
    if (!c.ok || key_len < 4)
      return make_raft_error(errc::invalid_argument,
                             "control batch at offset " + std::to_string(h.base_offset) + " has no readable key");
    const int16_t type = storage::read_be16(key + 2);
    if (type == control_type_leader_change) {
      e.type = entry_type::noop;
      return e;
    }
    if (type == control_type_voters) {
      const int64_t value_len = c.varint();
      const uint8_t* value = c.take(value_len);
      if (!c.ok)
        return make_raft_error(errc::invalid_argument,
                               "voters control batch at offset " + std::to_string(h.base_offset) + " has no value");
      e.type = entry_type::conf_change;
      e.data = payload(std::move(owner), value, static_cast<size_t>(value_len));
      return e;
    }
    // Other control batches (transaction markers) are ordinary entries.
  }
  e.data = payload(std::move(owner), p, len);
  return e;
}

void stamp_batch(uint8_t* p, int64_t base_offset, term_id term) noexcept {
  storage::set_base_offset(p, base_offset);
  storage::set_leader_epoch(p, static_cast<int32_t>(term.value()));
}

}  // namespace sluice::raft::partition
