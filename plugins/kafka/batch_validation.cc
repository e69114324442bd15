#include "batch_validation.h"

#include "compression.h"
#include "crc32c.h"
#include "record_batch.h"

namespace sluice::kafka {
namespace {

// Zigzag varints as the record format uses them.
struct varint_reader {
  const uint8_t* p;
  const uint8_t* end;
  bool ok = true;

  int64_t varlong() {
    uint64_t v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
      if (p >= end) {
        ok = false;
        return 0;
      }
      const uint8_t b = *p++;
      v |= uint64_t{b & 0x7fu} << shift;
      if ((b & 0x80) == 0) return static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1);
    }
    ok = false;
    return 0;
  }
  int32_t varint() {
    const int64_t v = varlong();
    if (v < INT32_MIN || v > INT32_MAX) ok = false;
    return static_cast<int32_t>(v);
  }
  bool skip(int64_t n) {
    if (n < 0 || n > end - p) return ok = false;
    p += n;
    return true;
  }
};

}  // namespace

std::string check_uncompressed_records(std::span<const uint8_t> body, int32_t count) {
  varint_reader r{body.data(), body.data() + body.size()};
  for (int32_t i = 0; i < count; ++i) {
    const int32_t len = r.varint();
    if (!r.ok || len < 0 || len > r.end - r.p) return "record " + std::to_string(i) + ": bad length";
    varint_reader rec{r.p, r.p + len};
    rec.skip(1);  // attributes
    (void)rec.varlong();  // timestamp delta
    const int32_t offset_delta = rec.varint();
    if (rec.ok && offset_delta != i)
      return "record " + std::to_string(i) + ": offset delta " + std::to_string(offset_delta) +
             " (inner offsets must be consecutive)";
    const int32_t key_len = rec.varint();
    if (rec.ok && key_len >= 0) rec.skip(key_len);
    else if (key_len < -1) rec.ok = false;
    const int32_t value_len = rec.varint();
    if (rec.ok && value_len >= 0) rec.skip(value_len);
    else if (value_len < -1) rec.ok = false;
    const int32_t headers = rec.varint();
    if (headers < 0) rec.ok = false;
    for (int32_t h = 0; rec.ok && h < headers; ++h) {
      const int32_t hk = rec.varint();
      if (hk < 0 || !rec.skip(hk)) {
        rec.ok = false;
        break;
      }
      const int32_t hv = rec.varint();
      if (hv >= 0) rec.skip(hv);
      else if (hv < -1) rec.ok = false;
    }
    if (!rec.ok || rec.p != rec.end) return "record " + std::to_string(i) + ": fields do not match its length";
    r.p += len;
  }
  if (r.p != r.end) return "bytes after the last of " + std::to_string(count) + " records";
  return {};
}

batch_validation validate_produce_records(std::span<const uint8_t> records, uint32_t max_message_bytes,
                                          bool verify_crc) {
  batch_validation v;
  size_t at = 0;
  if (records.empty()) {
    v.error = error_code::invalid_record;
    v.message = "no record batches";
    return v;
  }
  while (at < records.size()) {
    const uint8_t* p = records.data() + at;
    const size_t available = records.size() - at;
    if (available >= storage::batch_length_field_end + 5) {
      const int8_t magic = static_cast<int8_t>(p[16]);
      if (magic != storage::batch_magic_v2) {
        v.error = error_code::unsupported_for_message_format;
        v.message = "batch " + std::to_string(v.batches) + ": message format v" + std::to_string(magic) +
                    "; this broker accepts only v2 (Kafka 0.11+ clients)";
        return v;
      }
      const int32_t length = storage::read_be32(p + 8);
      if (length > 0 && static_cast<uint64_t>(length) + storage::batch_length_field_end > max_message_bytes &&
          static_cast<uint64_t>(length) + storage::batch_length_field_end <= available) {
        v.error = error_code::message_too_large;
        v.message = "batch " + std::to_string(v.batches) + " of " +
                    std::to_string(length + storage::batch_length_field_end) +
                    " bytes is larger than max.message.bytes " + std::to_string(max_message_bytes);
        return v;
      }
    }
    storage::batch_header h;
    const storage::batch_check c = storage::check_batch(p, available, SIZE_MAX, &h, verify_crc);
    if (c != storage::batch_check::ok) {
      v.error = error_code::corrupt_message;
      v.message = "batch " + std::to_string(v.batches) + " at byte " + std::to_string(at) + ": " + to_string(c);
      return v;
    }
    // Kafka checks the CRC before looking at records: a corrupt batch is
    // CORRUPT_MESSAGE even when its records also fail to parse. Without the
    // CRC pass (verify_crc false) it is computed here only on that path.
    auto reject = [&](std::string why) {
      if (!verify_crc && storage::check_batch(p, available, SIZE_MAX, nullptr) == storage::batch_check::bad_crc) {
        v.error = error_code::corrupt_message;
        v.message = "batch " + std::to_string(v.batches) + " at byte " + std::to_string(at) + ": " +
                    to_string(storage::batch_check::bad_crc);
      } else {
        v.error = error_code::invalid_record;
        v.message = "batch " + std::to_string(v.batches) + why;
      }
      return v;
    };
    if (h.record_count <= 0) return reject(" has no records");
    if (h.is_control()) return reject(": clients may not produce control batches");
    if ((h.attributes & 0x07) == 0) {
      const std::string bad = check_uncompressed_records(
          {p + storage::batch_header_bytes, h.size_bytes() - storage::batch_header_bytes}, h.record_count);
      if (!bad.empty()) return reject(": " + bad);
    } else if ((h.attributes & 0x07) > 4) {
      return reject(": unknown compression codec " + std::to_string(h.attributes & 0x07));
    }
    v.transactional = v.transactional || h.is_transactional();
    v.idempotent = v.idempotent || h.producer_id >= 0;
    v.max_timestamp = std::max(v.max_timestamp, h.max_timestamp);
    v.records += h.record_count;
    ++v.batches;
    at += h.size_bytes();
  }
  return v;
}

bool for_each_record(std::span<const uint8_t> data, const std::function<void(const record_view&)>& fn) {
  size_t at = 0;
  while (at < data.size()) {
    storage::batch_header h;
    if (storage::check_batch(data.data() + at, data.size() - at, SIZE_MAX, &h) != storage::batch_check::ok) return false;
    if ((h.attributes & 0x07) != 0) return false;
    varint_reader r{data.data() + at + storage::batch_header_bytes, data.data() + at + h.size_bytes()};
    for (int32_t i = 0; i < h.record_count; ++i) {
      const int32_t len = r.varint();
      if (!r.ok || len < 0 || len > r.end - r.p) return false;
      varint_reader rec{r.p, r.p + len};
      rec.skip(1);
      (void)rec.varlong();
      const int32_t offset_delta = rec.varint();
      record_view v{h.base_offset + offset_delta, {}, {}};
      const int32_t key_len = rec.varint();
      if (key_len >= 0) {
        v.key = {rec.p, static_cast<size_t>(std::min<int64_t>(key_len, rec.end - rec.p))};
        rec.skip(key_len);
      }
      const int32_t value_len = rec.varint();
      if (value_len >= 0) {
        v.value = {rec.p, static_cast<size_t>(std::min<int64_t>(value_len, rec.end - rec.p))};
        rec.skip(value_len);
      }
      if (!rec.ok) return false;
      fn(v);
      r.p += len;
    }
    at += h.size_bytes();
  }
  return true;
}

void stamp_log_append_time(std::span<uint8_t> batches, int64_t now_ms) {
  size_t at = 0;
  while (at + storage::batch_header_bytes <= batches.size()) {
    uint8_t* p = batches.data() + at;
    const storage::batch_header h = storage::decode_header(p);
    if (h.size_bytes() > batches.size() - at) break;
    storage::write_be16(p + 21, static_cast<int16_t>(h.attributes | 0x08));
    storage::write_be64(p + 35, now_ms);
    const uint32_t crc = storage::crc32c(0, p + storage::batch_crc_start, h.size_bytes() - storage::batch_crc_start);
    storage::write_be32(p + 17, static_cast<int32_t>(crc));
    at += h.size_bytes();
  }
}

namespace {

// The first record of h's batch, whose records are [p, end), at or after ts.
int64_t scan_records(const storage::batch_header& h, const uint8_t* p, const uint8_t* end, int64_t ts,
                     int64_t* found_ts) {
  varint_reader r{p, end};
  for (int32_t i = 0; i < h.record_count; ++i) {
    const int32_t len = r.varint();
    if (!r.ok || len < 0 || len > r.end - r.p) return -1;
    varint_reader rec{r.p, r.p + len};
    rec.skip(1);
    const int64_t ts_delta = rec.varlong();
    const int32_t offset_delta = rec.varint();
    int64_t record_ts = 0, offset = 0;
    if (!rec.ok || __builtin_add_overflow(h.first_timestamp, ts_delta, &record_ts) ||
        __builtin_add_overflow(h.base_offset, int64_t{offset_delta}, &offset))
      return -1;  // not a batch the log would hold
    if (record_ts >= ts) {
      *found_ts = record_ts;
      return offset;
    }
    r.p += len;
  }
  return -1;
}

}  // namespace

int64_t first_offset_at_or_after(std::span<const uint8_t> batch, int64_t ts, bool* compressed, int64_t* found_ts) {
  *compressed = false;
  *found_ts = -1;
  if (batch.size() < storage::batch_header_bytes) return -1;
  const storage::batch_header h = storage::decode_header(batch.data());
  if (h.batch_length < 0 || h.size_bytes() > batch.size() || h.size_bytes() < storage::batch_header_bytes) return -1;
  if (h.attributes & 0x08) {  // LogAppendTime: one timestamp for the batch
    if (h.max_timestamp < ts) return -1;
    *found_ts = h.max_timestamp;
    return h.base_offset;
  }
  const uint8_t* body = batch.data() + storage::batch_header_bytes;
  const size_t body_len = h.size_bytes() - storage::batch_header_bytes;
  const int codec = h.attributes & 0x07;
  if (codec == 0) return scan_records(h, body, body + body_len, ts, found_ts);
  *compressed = true;
  std::vector<uint8_t> plain;
  if (!decompress(codec, {body, body_len}, plain, max_decompressed_bytes).empty()) return -1;
  return scan_records(h, plain.data(), plain.data() + plain.size(), ts, found_ts);
}

}  // namespace sluice::kafka
