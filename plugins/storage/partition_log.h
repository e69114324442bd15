// One partition's log: an ordered set of segment files of Kafka v2 record
// batches in one directory, written with O_DIRECT through the owning
// shard's io_uring ring (docs/STORAGE.md describes the files).
//
//   append()   validates batches (header, CRC32C), assigns offsets, copies
//              them into the active segment's aligned write buffer and
//              returns once they are written (not yet durable). Concurrent
//              appends are coalesced into one write.
//   flush()    returns once everything appended before the call is on
//              stable storage: concurrent flushes share one fdatasync
//              (group commit).
//   read()     whole batches from an offset, up to max_bytes (at least one
//              batch), from the batch cache or with aligned O_DIRECT reads.
//   truncate_suffix()  removes every batch from an offset on (a Raft
//              follower dropping a divergent tail), durably.
//   epochs()   the leader-epoch table: where each Raft term starts.
//   open()     recovers: verifies every batch of the active segment, cuts
//              a torn tail, refuses (read-only, with an error) a log whose
//              middle is corrupt, rebuilds missing or damaged indexes,
//              finishes an interrupted truncate_suffix, and rebuilds the
//              epoch table's tail from the active segment's batches.
//
// Thread-safety: a partition_log lives on one shard and is only touched by
// that shard's coroutines; no locks, only a FIFO coroutine mutex that keeps
// appends in arrival order.
#pragma once

#include "batch_cache.h"
#include "index.h"
#include "partition_meta.h"
#include "record_batch.h"

#include <sluice/sdk/result.h>
#include <sluice/sdk/runtime.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

namespace sluice::storage {

enum class errc {
  invalid_batch = 1,   // the bytes are not valid v2 record batches
  batch_too_large,     // a batch exceeds max_batch_bytes
  offset_out_of_range, // below the log start or past the log end
  disk_full,           // ENOSPC or EDQUOT
  io_error,            // any other I/O failure
  corrupt,             // stored bytes fail their checksum
  log_failed,          // reserved (a failed log reports the cause: disk_full, io_error, corrupt)
  closed,              // the log was closed or removed
};
const std::error_category& storage_category() noexcept;
inline std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), storage_category()}; }

struct log_config {
  uint64_t segment_bytes = 128ull << 20;        // roll when a segment would exceed this
  int64_t segment_ms = 7ll * 24 * 3600 * 1000;  // roll a non-empty segment older than this
  int64_t retention_bytes = -1;                 // keep at most this much (-1: no limit)
  int64_t retention_ms = 7ll * 24 * 3600 * 1000; // drop segments whose newest record is older (-1: keep)
  uint32_t index_interval_bytes = 4096;
  uint32_t write_buffer_bytes = 1u << 20;       // per active segment, aligned, allocated on first append
  uint32_t max_batch_bytes = (1u << 20) + 12;   // Kafka's message.max.bytes default
  uint32_t read_chunk_bytes = 256u << 10;       // O_DIRECT read size for fetches from disk
  // Open scans and CRC-checks every closed segment too, not only the
  // active one (plugin setting verify_segments_on_open).
  bool verify_segments_on_open = false;
  // A Raft replica's log (OpenRequest.repairable): damage found at open
  // does not make the log read-only; damaged_from() reports the first bad
  // offset, everything before it stays readable, nothing from it is
  // served, and the owner cuts the log there with truncate_suffix().
  bool repairable = false;
};

struct append_options {
  // A replica append: the batches carry the leader's base offsets, which
  // are kept. The first must be the log's next offset and each must follow
  // the previous batch's last offset, else offset_out_of_range (and nothing
  // is written).
  bool keep_offsets = false;
  // When set (>= 0), every batch's partitionLeaderEpoch is stamped with it;
  // otherwise each batch keeps its own (a replica keeps the leader's stamp).
  std::optional<int32_t> leader_epoch;
};

struct append_result {
  int64_t base_offset = 0;
  int64_t last_offset = 0;
  int64_t max_timestamp = -1;
  uint32_t batches = 0;
};

// A piece of a read: whole batches at data[offset, offset + length).
struct read_slice {
  sdk::buffer data;
  uint32_t offset = 0;
  uint32_t length = 0;
};
struct read_result {
  std::vector<read_slice> slices;
  uint64_t bytes = 0;
  int64_t first_offset = -1;  // base offset of the first batch returned
  int64_t next_offset = -1;   // one past the last offset returned
};

struct log_stats {
  int64_t start_offset = 0;
  int64_t next_offset = 0;     // log end offset: one past the last appended
  int64_t flushed_offset = 0;  // everything below is on stable storage
  uint64_t size_bytes = 0;
  uint32_t segments = 0;
  uint64_t syncs = 0;          // fdatasync calls on segment files (group commit shows here)
  bool failed = false;
  int32_t last_epoch = -1;     // the epoch table's last epoch (-1: no entry)
  int64_t damaged_from = -1;   // a repairable log's first damaged offset (-1: none)
  // With damaged_from: where the log ended before the damage (>= next_offset;
  // past it when the active segment's scan stopped at the damage).
  int64_t damaged_end = -1;
};

class partition_log {
 public:
  ~partition_log();
  partition_log(const partition_log&) = delete;
  partition_log& operator=(const partition_log&) = delete;

  // Opens (creating the directory if needed) and recovers the log in dir.
  // name is used in log messages ("topic/3").
  static sdk::task<result<std::unique_ptr<partition_log>>> open(std::string dir, std::string name, log_config cfg,
                                                                 batch_cache* cache);

  // Validates and appends the batches in `batches` (one or more, as a
  // client sent them). Their base offsets (unless opts.keep_offsets) and
  // leader epochs (when opts.leader_epoch is set) are rewritten in place:
  // the log keeps a reference to the bytes for its cache.
  sdk::task<result<append_result>> append(sdk::buffer batches, append_options opts = {});

  // Everything appended before this call is on stable storage when it
  // returns; the result is the flushed offset.
  sdk::task<result<int64_t>> flush();

  // Whole batches containing offsets >= offset and < max_offset, up to
  // max_bytes (the first batch is returned whole even if larger).
  sdk::task<result<read_result>> read(int64_t offset, uint64_t max_bytes, int64_t max_offset = INT64_MAX);

  // The base offset of the first batch whose max timestamp is >= ts, or
  // -1 when there is none (ListOffsets by timestamp).
  sdk::task<result<int64_t>> offset_for_timestamp(int64_t ts);

  // Moves the log start to new_start (DeleteRecords): durable when it
  // returns; segments entirely below it are deleted. Past the log end it
  // empties the log, which then starts (and continues) at new_start (a
  // follower behind its leader's log start). Below the start: nothing.
  sdk::task<result<void>> truncate_prefix(int64_t new_start);

  // Removes every batch at or after `offset`, which becomes the log end:
  // a batch boundary in [start, end] (the end: nothing to do; the start:
  // everything goes, even when the start is inside a batch). Durable when
  // it returns (a crash before then leaves the old log or, once the
  // intent is recorded, the next open finishes the cut); the epoch table
  // loses the entries from `offset` on.
  sdk::task<result<void>> truncate_suffix(int64_t offset);

  // A repairable log damaged at open (log_config::repairable): the first
  // offset that is not intact, else -1. Reads at or past it answer
  // `corrupt`, appends too, until truncate_suffix() cuts the log at or
  // before it. damage() says what was found (file, byte, reason).
  int64_t damaged_from() const noexcept { return _damaged_from; }
  const std::string& damage() const noexcept { return _damage; }

  // The leader-epoch table (see epoch_table).
  const std::vector<epoch_entry>& epochs() const noexcept { return _epochs.entries(); }

  // Deletes closed segments past retention_bytes / retention_ms.
  sdk::task<result<void>> apply_retention(int64_t now_ms) { return retain(now_ms, true); }

  // Flushes what is written, writes the indexes, closes the files.
  sdk::task<void> close();
  // Closes and deletes every file and the directory.
  sdk::task<result<void>> remove();

  log_stats stats() const noexcept;
  const std::string& dir() const noexcept { return _dir; }
  const std::string& name() const noexcept { return _name; }
  const log_config& config() const noexcept { return _cfg; }
  // Changes the roll and retention limits of an open log (topic config
  // changes); they apply from the next append or retention pass.
  void set_limits(uint64_t segment_bytes, int64_t segment_ms, int64_t retention_bytes, int64_t retention_ms) noexcept {
    _cfg.segment_bytes = segment_bytes;
    _cfg.segment_ms = segment_ms;
    _cfg.retention_bytes = retention_bytes;
    _cfg.retention_ms = retention_ms;
  }

 private:
  struct segment;
  partition_log(std::string dir, std::string name, log_config cfg, batch_cache* cache);

  // How recover_segment treats a segment.
  enum class scan_mode {
    trust_index,   // a closed segment: its index if valid, else a scan
    scan,          // always scan (and verify) every batch
    scan_epochs,   // scan, and add each batch's leader epoch to the table
  };
  sdk::task<result<void>> recover();
  // stop_at: a recorded truncation's end; the scan ends there, cleanly
  // (what follows is about to be cut, not damage).
  sdk::task<result<void>> recover_segment(segment& s, bool last, scan_mode mode, int64_t stop_at = INT64_MAX);
  sdk::task<result<void>> zero_from(segment& s, uint64_t pos, uint64_t end);
  // Suffix truncation and reset (see partition_log.cc).
  sdk::task<void> quiesce();
  void release_sync_path() noexcept;
  sdk::task<result<uint64_t>> batch_position(segment& s, int64_t offset);
  sdk::task<result<void>> cut_suffix(int64_t offset);
  sdk::task<result<void>> cut_segments(segment& s, uint64_t pos, int64_t offset);
  sdk::task<result<void>> reset_segments(int64_t offset);
  sdk::task<result<void>> reset(int64_t offset);
  sdk::task<void> drain_readers(segment& s);
  sdk::task<result<void>> flush_epoch_cover(int64_t new_start);
  sdk::task<result<void>> create_segment(int64_t base_offset);
  sdk::task<result<void>> roll();
  sdk::task<result<void>> retain(int64_t now_ms, bool by_time);
  sdk::task<result<void>> close_segment(segment& s);
  sdk::task<result<void>> ensure_space(uint64_t bytes);
  sdk::task<void> write_loop();
  sdk::task<result<void>> wait_written(int64_t offset);
  // Replaces partition.meta with the start offset and epoch table (and a
  // suffix truncation in progress, or -1).
  sdk::task<result<void>> write_meta(int64_t truncating_to = -1);
  sdk::task<result<void>> sync_dir();
  // recycle: keep the file as a spare; only for segments wholly below the
  // log start (their old batches can never continue the log).
  sdk::task<result<void>> delete_segment(std::unique_ptr<segment> s, bool recycle);
  sdk::task<result<read_slice>> read_span(segment& s, uint64_t pos, uint64_t len, uint64_t disk_end);
  sdk::task<result<void>> read_from_disk(segment& s, int64_t offset, uint64_t max_bytes, int64_t max_offset,
                                         read_result& out);
  error io_error(int err, const std::string& what) const;
  error fail(int err, const std::string& what);
  error fail(error e);
  // Damage found at open from `offset` on: a repairable log records it (the
  // earliest wins), any other turns read-only.
  // end: where the log ended before the damage, when the scan found valid
  // batches after it (else -1).
  void note_damage(int64_t offset, const std::string& what, int64_t end = -1);
  error damaged_error() const;
  void observe_epoch(int32_t epoch, int64_t base_offset) noexcept;
  segment* segment_for(int64_t offset) noexcept;
  bool is_active(const segment& s) const noexcept;
  segment& active() noexcept { return *_segments.rbegin()->second; }

  std::string _dir;
  std::string _name;
  log_config _cfg;
  batch_cache* _cache;
  std::map<int64_t, std::unique_ptr<segment>> _segments;  // by base offset
  int64_t _start_offset = 0;
  int64_t _next_offset = 0;      // assigned to the next appended batch
  int64_t _written_offset = 0;   // below: written to the active file (or an older one)
  int64_t _flushed_offset = 0;   // below: on stable storage
  epoch_table _epochs;
  uint64_t _epochs_version = 0;    // bumped at every change of _epochs
  uint64_t _epochs_persisted = 0;  // the version partition.meta holds
  bool _meta_written = false;      // partition.meta of the current version exists
  uint64_t _truncations = 0;     // suffix truncations and resets so far (reads in flight check it)
  bool _failed = false;          // an I/O error made the log read-only
  error _failure;
  int64_t _damaged_from = -1;    // see damaged_from()
  int64_t _damaged_end = -1;     // the end of valid batches found after damage in the active segment
  std::string _damage;
  bool _recovering = false;      // open() is running (damage may be repairable)
  bool _closed = false;
  // Files of deleted segments kept for reuse as new segments.
  static constexpr size_t max_spares = 2;
  std::vector<std::string> _spares;
  uint64_t _spare_seq = 0;

  sdk::fifo_mutex _append_mutex;  // keeps appends (and rolls) in arrival order
  sdk::fifo_mutex _delete_mutex;  // one deletion pass (retention, truncation) at a time
  bool _writing = false;          // write_loop is running
  sdk::condition _written;        // _written_offset advanced or the writer stopped
  bool _syncing = false;          // an fdatasync (or a truncation, which ends in one) is in flight
  sdk::condition _synced;         // _flushed_offset advanced or a sync failed
  uint64_t _syncs = 0;
  sdk::gate _tasks;               // background work (the writer) to wait for on close
};

}  // namespace sluice::storage

template <>
struct std::is_error_code_enum<sluice::storage::errc> : std::true_type {};
