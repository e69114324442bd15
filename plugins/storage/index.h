// Sparse per-segment indexes, kept in memory and written beside a segment
// when it is closed (docs/STORAGE.md has the byte layout):
//   offset index: (offset - base_offset, file position) every
//                 index_interval_bytes of log;
//   time index:   (max timestamp so far, offset - base_offset) whenever the
//                 segment's max timestamp grows, at most every interval.
// A missing or damaged index file is rebuilt by scanning its segment.
//
// Thread-safety: owned by one partition on one shard.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace sluice::storage {

struct offset_entry {
  uint32_t relative_offset;
  uint32_t position;
};
struct time_entry {
  int64_t timestamp;
  uint32_t relative_offset;
};

class segment_index {
 public:
  explicit segment_index(int64_t base_offset = 0, uint32_t interval_bytes = 4096)
      : _base(base_offset), _interval(interval_bytes) {}

  // Called for every batch appended (or scanned) in file order.
  void add_batch(int64_t batch_base_offset, int64_t max_timestamp, uint32_t position, uint32_t size);

  // The last indexed batch starting at or before offset: its file position
  // and base offset (position 0 and the segment's base offset if none).
  struct location {
    uint32_t position;
    int64_t offset;
  };
  location locate(int64_t offset) const noexcept;
  uint32_t position_for(int64_t offset) const noexcept { return locate(offset).position; }
  // Position of the last indexed batch whose preceding max timestamp is
  // below ts: scanning from there finds the first batch with max_timestamp >= ts.
  uint32_t position_for_time(int64_t ts) const noexcept;

  int64_t max_timestamp() const noexcept { return _max_ts; }
  int64_t base_offset() const noexcept { return _base; }
  const std::vector<offset_entry>& offsets() const noexcept { return _offsets; }
  const std::vector<time_entry>& times() const noexcept { return _times; }
  void clear();

  // The index file: header (magic, version, base offset, segment bytes and
  // next offset it covers, counts, CRC32C) + entries, padded to 4 KiB.
  std::string serialize(uint64_t segment_bytes, int64_t next_offset) const;
  struct loaded {
    uint64_t segment_bytes;
    int64_t next_offset;
  };
  // Replaces this index with the file's contents; nullopt (and unchanged)
  // when the bytes are not a valid index for this base offset.
  std::optional<loaded> deserialize(const uint8_t* data, size_t size);

 private:
  int64_t _base;
  uint32_t _interval;
  uint64_t _bytes_since_entry = UINT64_MAX;  // forces an entry for the first batch
  int64_t _max_ts = -1;
  std::vector<offset_entry> _offsets;
  std::vector<time_entry> _times;
};

}  // namespace sluice::storage
