#include "partition_meta.h"

#include "crc32c.h"
#include "record_batch.h"

#include <sluice/sdk/assert.h>

#include <algorithm>

namespace sluice::storage {

// ---- epoch_table ----------------------------------------------------------------

bool epoch_table::observe(int32_t epoch, int64_t offset) {
  SLUICE_ASSERT(offset >= 0);
  if (epoch < 0 || epoch <= last_epoch()) return false;
  // Entries start at batches, in log order; only a clipped entry of an
  // empty log (no batch at its start) can sit at the offset of a new batch.
  SLUICE_ASSERT_MSG(_entries.empty() || offset >= _entries.back().start_offset,
                    "a batch below the start of the last leader epoch entry");
  if (!_entries.empty() && _entries.back().start_offset == offset) _entries.pop_back();
  _entries.push_back({epoch, offset});
  SLUICE_ASSERT(_entries.size() < 2 || (_entries[_entries.size() - 2].epoch < epoch &&
                                        _entries[_entries.size() - 2].start_offset < offset));
  return true;
}

void epoch_table::truncate_suffix(int64_t end) {
  while (!_entries.empty() && _entries.back().start_offset >= end) _entries.pop_back();
  SLUICE_ASSERT(_entries.empty() || _entries.back().start_offset < end);
}

void epoch_table::truncate_prefix(int64_t start) {
  // The last entry starting at or before `start` covers it; the ones before
  // it cover only deleted offsets.
  auto cover = std::upper_bound(_entries.begin(), _entries.end(), start,
                                [](int64_t off, const epoch_entry& e) { return off < e.start_offset; });
  if (cover == _entries.begin()) return;  // every entry starts after `start`
  --cover;
  cover->start_offset = start;
  _entries.erase(_entries.begin(), cover);
  SLUICE_ASSERT(_entries.front().start_offset == start);
}

void epoch_table::assign(std::vector<epoch_entry> entries) {
  SLUICE_ASSERT(valid(entries, entries.empty() ? 0 : entries.front().start_offset));
  _entries = std::move(entries);
}

const epoch_entry* epoch_table::covering(int64_t offset) const noexcept {
  auto it = std::upper_bound(_entries.begin(), _entries.end(), offset,
                             [](int64_t off, const epoch_entry& e) { return off < e.start_offset; });
  return it == _entries.begin() ? nullptr : &*std::prev(it);
}

bool epoch_table::valid(const std::vector<epoch_entry>& entries, int64_t log_start) noexcept {
  for (size_t i = 0; i < entries.size(); ++i) {
    if (entries[i].epoch < 0 || entries[i].start_offset < log_start) return false;
    if (i > 0 && (entries[i].epoch <= entries[i - 1].epoch || entries[i].start_offset <= entries[i - 1].start_offset))
      return false;
  }
  return true;
}

// ---- partition.meta -------------------------------------------------------------
//
// version 2, big-endian:
//    0  u32  magic "SLPM"
//    4  u32  version = 2
//    8  i64  log start offset
//   16  i64  truncating_to: the log end a truncate_suffix in progress cuts to, or -1
//   24  u32  N: epoch entries
//   28  u32  CRC32C of bytes 0..27 and of the entries
//   32  N x 12: i32 epoch | i64 start offset
// version 1 (24 bytes): magic, version = 1, i64 start offset, u32 CRC32C of
// bytes 0..15, u32 reserved.

std::string encode_meta(const partition_meta& m) {
  SLUICE_ASSERT(m.start_offset >= 0);
  SLUICE_ASSERT(m.truncating_to == -1 || m.truncating_to >= m.start_offset);
  SLUICE_ASSERT(epoch_table::valid(m.epochs, m.start_offset));
  SLUICE_ASSERT(m.epochs.size() <= meta_max_entries);
  std::string out(meta_header_bytes + m.epochs.size() * meta_entry_bytes, '\0');
  auto* p = reinterpret_cast<uint8_t*>(out.data());
  write_be32(p, static_cast<int32_t>(meta_magic));
  write_be32(p + 4, static_cast<int32_t>(meta_version));
  write_be64(p + 8, m.start_offset);
  write_be64(p + 16, m.truncating_to);
  write_be32(p + 24, static_cast<int32_t>(m.epochs.size()));
  uint8_t* q = p + meta_header_bytes;
  for (const epoch_entry& e : m.epochs) {
    write_be32(q, e.epoch);
    write_be64(q + 4, e.start_offset);
    q += meta_entry_bytes;
  }
  uint32_t crc = crc32c(0, p, 28);
  crc = crc32c(crc, p + meta_header_bytes, out.size() - meta_header_bytes);
  write_be32(p + 28, static_cast<int32_t>(crc));
  return out;
}

std::optional<partition_meta> decode_meta(const uint8_t* p, size_t n, std::string* why) {
  const auto bad = [&](const std::string& reason) -> std::optional<partition_meta> {
    if (why) *why = reason;
    return std::nullopt;
  };
  if (n < 8 || static_cast<uint32_t>(read_be32(p)) != meta_magic) return bad("bad magic");
  partition_meta m;
  m.version = static_cast<uint32_t>(read_be32(p + 4));
  if (m.version == meta_version_v1) {
    if (n != meta_v1_bytes) return bad("a version 1 file of " + std::to_string(n) + " bytes (24 expected)");
    if (static_cast<uint32_t>(read_be32(p + 16)) != crc32c(0, p, 16)) return bad("CRC32C mismatch");
    m.start_offset = read_be64(p + 8);
    if (m.start_offset < 0) return bad("negative log start offset");
    return m;
  }
  if (m.version != meta_version) return bad("unknown version " + std::to_string(m.version));
  if (n < meta_header_bytes) return bad("truncated header");
  const auto count = static_cast<uint32_t>(read_be32(p + 24));
  if (count > meta_max_entries || n != meta_header_bytes + uint64_t{count} * meta_entry_bytes)
    return bad(std::to_string(n) + " bytes for " + std::to_string(count) + " epoch entries");
  uint32_t crc = crc32c(0, p, 28);
  crc = crc32c(crc, p + meta_header_bytes, n - meta_header_bytes);
  if (crc != static_cast<uint32_t>(read_be32(p + 28))) return bad("CRC32C mismatch");
  m.start_offset = read_be64(p + 8);
  m.truncating_to = read_be64(p + 16);
  if (m.start_offset < 0) return bad("negative log start offset");
  if (m.truncating_to != -1 && m.truncating_to < m.start_offset)
    return bad("truncation to " + std::to_string(m.truncating_to) + ", below the log start");
  m.epochs.resize(count);
  const uint8_t* q = p + meta_header_bytes;
  for (epoch_entry& e : m.epochs) {
    e.epoch = read_be32(q);
    e.start_offset = read_be64(q + 4);
    q += meta_entry_bytes;
  }
  if (!epoch_table::valid(m.epochs, m.start_offset)) return bad("epoch entries out of order");
  return m;
}

}  // namespace sluice::storage
