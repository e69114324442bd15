// What a partition's `partition.meta` file holds besides its segments
// (docs/STORAGE.md has the byte layout and the recovery rules):
//
//   the log start offset   (DeleteRecords, retention, reset);
//   the leader-epoch table (Kafka's leader-epoch-checkpoint: Raft terms);
//   a suffix truncation in progress (the log end it cuts to), so that a
//   crash in the middle of truncate_suffix is finished by the next open.
//
// epoch_table keeps the rules of the table; encode_meta / decode_meta the
// file's bytes. Pure functions and values: no I/O here.
//
// Thread-safety: values, owned by one partition_log on one shard.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace sluice::storage {

// The first offset written with `epoch` (a Raft term; Kafka's
// partitionLeaderEpoch).
struct epoch_entry {
  int32_t epoch = -1;
  int64_t start_offset = 0;
  friend bool operator==(const epoch_entry&, const epoch_entry&) = default;
};

// (epoch, start offset) pairs, epochs and start offsets both strictly
// ascending. An entry starts where a batch's partitionLeaderEpoch first
// exceeds the last entry's epoch; batches without an epoch (-1) or with a
// lower one add nothing (Kafka's follower rule). The last entry covers
// everything from its start to the log end.
class epoch_table {
 public:
  // A batch starting at `offset` (clipped by the caller to the log start)
  // carries `epoch`: adds an entry when the epoch is new and higher, and
  // then returns true. An entry at the same offset (one with no batch: a
  // prefix truncation clipped it to an empty log's start) is replaced.
  bool observe(int32_t epoch, int64_t offset);
  // Removes the entries that start at or after `end` (truncate_suffix).
  void truncate_suffix(int64_t end);
  // Removes the entries wholly before `start` and clips the one covering
  // it to start there (DeleteRecords, retention).
  void truncate_prefix(int64_t start);
  void clear() noexcept { _entries.clear(); }
  // Replaces the entries; they must be valid().
  void assign(std::vector<epoch_entry> entries);

  // The entry covering `offset` (the last one starting at or before it).
  const epoch_entry* covering(int64_t offset) const noexcept;
  int32_t last_epoch() const noexcept { return _entries.empty() ? -1 : _entries.back().epoch; }
  const std::vector<epoch_entry>& entries() const noexcept { return _entries; }
  bool empty() const noexcept { return _entries.empty(); }
  // Epochs >= 0, epochs and start offsets strictly ascending, start
  // offsets >= log_start.
  static bool valid(const std::vector<epoch_entry>& entries, int64_t log_start) noexcept;

  friend bool operator==(const epoch_table&, const epoch_table&) = default;

 private:
  std::vector<epoch_entry> _entries;
};

inline constexpr uint32_t meta_magic = 0x534c504d;  // "SLPM"
inline constexpr uint32_t meta_version_v1 = 1;       // log start offset only (read, never written)
inline constexpr uint32_t meta_version = 2;
inline constexpr size_t meta_v1_bytes = 24;
inline constexpr size_t meta_header_bytes = 32;
inline constexpr size_t meta_entry_bytes = 12;
// A table larger than this is damage, not a log (one entry per Raft term
// that still has data in the log).
inline constexpr uint32_t meta_max_entries = 1u << 20;

struct partition_meta {
  uint32_t version = meta_version;  // from decode_meta: the file's version
  int64_t start_offset = 0;
  int64_t truncating_to = -1;       // a truncate_suffix in progress: the log end it cuts to
  std::vector<epoch_entry> epochs;  // version 1: none (unknown)
};

// The file's bytes (always the current version).
std::string encode_meta(const partition_meta& m);
// The file's contents, or nullopt with the reason in *why when the bytes
// are not a valid meta file of a known version.
std::optional<partition_meta> decode_meta(const uint8_t* p, size_t n, std::string* why);

}  // namespace sluice::storage
