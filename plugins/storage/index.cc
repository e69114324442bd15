#include "index.h"

#include "crc32c.h"
#include "record_batch.h"

#include <sluice/sdk/assert.h>

#include <algorithm>
#include <cstring>

namespace sluice::storage {

namespace {
constexpr uint32_t index_magic = 0x534c4958;  // "SLIX"
constexpr uint32_t index_version = 1;
constexpr size_t header_bytes = 56;
//  0 magic u32 | 4 version u32 | 8 base_offset i64 | 16 segment_bytes u64
// 24 next_offset i64 | 32 max_timestamp i64 | 40 offset entries u32
// 44 time entries u32 | 48 crc32c u32 (of bytes 0..47 and all entries)
// 52 reserved u32
}  // namespace

void segment_index::add_batch(int64_t batch_base_offset, int64_t max_timestamp, uint32_t position, uint32_t size) {
  SLUICE_ASSERT(batch_base_offset >= _base);
  SLUICE_ASSERT(batch_base_offset - _base <= UINT32_MAX);
  const auto rel = static_cast<uint32_t>(batch_base_offset - _base);
  SLUICE_ASSERT(_offsets.empty() || (rel > _offsets.back().relative_offset && position > _offsets.back().position));
  const bool entry_due = _bytes_since_entry >= _interval;
  if (entry_due) {
    _offsets.push_back({rel, position});
    _bytes_since_entry = 0;
  }
  _bytes_since_entry += size;
  if (max_timestamp > _max_ts) {
    // Time entries mark where the max timestamp grew; sparse like offsets.
    if (entry_due || _times.empty()) _times.push_back({_max_ts, rel});
    _max_ts = max_timestamp;
  }
}

segment_index::location segment_index::locate(int64_t offset) const noexcept {
  if (offset <= _base || _offsets.empty()) return {0, _base};
  const auto rel = static_cast<uint64_t>(offset - _base);
  auto it = std::upper_bound(_offsets.begin(), _offsets.end(), rel,
                             [](uint64_t r, const offset_entry& e) { return r < e.relative_offset; });
  if (it == _offsets.begin()) return {0, _base};
  return {std::prev(it)->position, _base + std::prev(it)->relative_offset};
}

uint32_t segment_index::position_for_time(int64_t ts) const noexcept {
  // Entry (t, rel): the max timestamp *before* batch rel was t. The last
  // entry with t < ts is a batch before which nothing reached ts.
  uint32_t rel = 0;
  bool found = false;
  for (const auto& e : _times) {
    if (e.timestamp >= ts) break;
    rel = e.relative_offset;
    found = true;
  }
  return found ? position_for(_base + rel) : 0;
}

void segment_index::clear() {
  _offsets.clear();
  _times.clear();
  _bytes_since_entry = UINT64_MAX;
  _max_ts = -1;
}

std::string segment_index::serialize(uint64_t segment_bytes, int64_t next_offset) const {
  std::string out(header_bytes, '\0');
  for (const auto& e : _offsets) {
    uint8_t b[8];
    write_be32(b, static_cast<int32_t>(e.relative_offset));
    write_be32(b + 4, static_cast<int32_t>(e.position));
    out.append(reinterpret_cast<const char*>(b), 8);
  }
  for (const auto& e : _times) {
    uint8_t b[12];
    write_be64(b, e.timestamp);
    write_be32(b + 8, static_cast<int32_t>(e.relative_offset));
    out.append(reinterpret_cast<const char*>(b), 12);
  }
  auto* h = reinterpret_cast<uint8_t*>(out.data());
  write_be32(h, static_cast<int32_t>(index_magic));
  write_be32(h + 4, static_cast<int32_t>(index_version));
  write_be64(h + 8, _base);
  write_be64(h + 16, static_cast<int64_t>(segment_bytes));
  write_be64(h + 24, next_offset);
  write_be64(h + 32, _max_ts);
  write_be32(h + 40, static_cast<int32_t>(_offsets.size()));
  write_be32(h + 44, static_cast<int32_t>(_times.size()));
  uint32_t crc = crc32c(0, h, 48);
  crc = crc32c(crc, h + header_bytes, out.size() - header_bytes);
  write_be32(h + 48, static_cast<int32_t>(crc));
  out.resize((out.size() + 4095) / 4096 * 4096, '\0');
  return out;
}

std::optional<segment_index::loaded> segment_index::deserialize(const uint8_t* p, size_t size) {
  if (size < header_bytes) return std::nullopt;
  if (static_cast<uint32_t>(read_be32(p)) != index_magic || read_be32(p + 4) != static_cast<int32_t>(index_version))
    return std::nullopt;
  if (read_be64(p + 8) != _base) return std::nullopt;
  const auto n_off = static_cast<uint32_t>(read_be32(p + 40));
  const auto n_time = static_cast<uint32_t>(read_be32(p + 44));
  const uint64_t body = uint64_t{n_off} * 8 + uint64_t{n_time} * 12;
  if (body > size - header_bytes) return std::nullopt;
  uint32_t crc = crc32c(0, p, 48);
  crc = crc32c(crc, p + header_bytes, body);
  if (crc != static_cast<uint32_t>(read_be32(p + 48))) return std::nullopt;
  std::vector<offset_entry> offs(n_off);
  std::vector<time_entry> times(n_time);
  const uint8_t* q = p + header_bytes;
  for (auto& e : offs) {
    e.relative_offset = static_cast<uint32_t>(read_be32(q));
    e.position = static_cast<uint32_t>(read_be32(q + 4));
    q += 8;
  }
  for (auto& e : times) {
    e.timestamp = read_be64(q);
    e.relative_offset = static_cast<uint32_t>(read_be32(q + 8));
    q += 12;
  }
  _offsets = std::move(offs);
  _times = std::move(times);
  _max_ts = read_be64(p + 32);
  _bytes_since_entry = 0;
  loaded l{static_cast<uint64_t>(read_be64(p + 16)), read_be64(p + 24)};
  return l;
}

}  // namespace sluice::storage
