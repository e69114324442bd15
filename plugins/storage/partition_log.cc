#include "partition_log.h"

#include "fault_hook.h"

#include "crc32c.h"

#include <sluice/sdk/assert.h>

#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstring>
#include <filesystem>

namespace sluice::storage {

namespace {

constexpr uint64_t page = 4096;
constexpr uint64_t align_down(uint64_t v) noexcept { return v / page * page; }
constexpr uint64_t align_up(uint64_t v) noexcept { return (v + page - 1) / page * page; }

constexpr const char* meta_file = "partition.meta";
// Offsets stay far from overflow: a replica append's must be below this.
constexpr int64_t max_log_offset = INT64_MAX - (int64_t{1} << 32);

class category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "sluice.storage"; }
  std::string message(int c) const override {
    switch (static_cast<errc>(c)) {
      case errc::invalid_batch: return "invalid record batch";
      case errc::batch_too_large: return "record batch too large";
      case errc::offset_out_of_range: return "offset out of range";
      case errc::disk_full: return "disk full";
      case errc::io_error: return "I/O error";
      case errc::corrupt: return "corrupt data";
      case errc::log_failed: return "log failed";
      case errc::closed: return "log closed";
    }
    return "unknown";
  }
};

int64_t now_ms() noexcept { return static_cast<int64_t>(sdk::now_ns() / 1'000'000); }

std::string segment_name(int64_t base_offset, const char* ext) {
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%020" PRId64 "%s", base_offset, ext);
  return buf;
}

error make(errc code, std::string message) { return error{make_error_code(code), std::move(message)}; }

}  // namespace

const std::error_category& storage_category() noexcept {
  static const category_impl c;
  return c;
}

// One segment file and what the log knows about it.
struct partition_log::segment {
  int64_t base_offset = 0;
  std::string log_path;
  std::string index_path;
  int32_t fd = -1;
  uint64_t size = 0;          // bytes of valid batches
  uint64_t written = 0;       // bytes written to the file (<= size)
  int64_t next_offset = 0;    // one past the last offset in the segment
  int64_t written_next = 0;   // next_offset of the written bytes
  int64_t created_ms = 0;
  segment_index index;
  std::string scan_stop;      // why the last scan stopped before the file's end (damage), else empty
  sdk::buffer wbuf;           // active segment: aligned write buffer
  uint64_t wbuf_pos = 0;      // file position of wbuf[0], page aligned
  // Reads in progress; closed before deletion, replaced by a fresh gate
  // when a truncation must wait for the reads that started before it.
  std::unique_ptr<sdk::gate> readers = std::make_unique<sdk::gate>();
};

partition_log::partition_log(std::string dir, std::string name, log_config cfg, batch_cache* cache)
    : _dir(std::move(dir)), _name(std::move(name)), _cfg(cfg), _cache(cache) {
  SLUICE_ASSERT(_cache != nullptr);
  SLUICE_ASSERT(_cfg.read_chunk_bytes % page == 0 && _cfg.read_chunk_bytes > 0);
  // The buffer always holds a whole batch plus the partial page before it.
  _cfg.write_buffer_bytes = static_cast<uint32_t>(
      std::max<uint64_t>(align_up(_cfg.write_buffer_bytes), align_up(_cfg.max_batch_bytes) + page));
}

partition_log::~partition_log() {
  SLUICE_ASSERT_MSG(_closed, "partition_log destroyed without close()");
  if (_cache) _cache->drop(this);
}

error partition_log::io_error(int err, const std::string& what) const {
  const bool full = err == ENOSPC || err == EDQUOT;
  return make(full ? errc::disk_full : errc::io_error,
              _name + ": " + what + ": " + std::strerror(err) + (full ? " (the disk is full)" : ""));
}

error partition_log::fail(int err, const std::string& what) { return fail(io_error(err, what)); }

error partition_log::fail(error e) {
  if (!_failed) {
    _failed = true;
    // The cause's code (disk_full, io_error) stays, so callers can tell them apart.
    _failure = error{e.code, e.message + "; the log is read-only until brokerd restarts and recovers it"};
    sdk::log_error(_failure.message);
  }
  return e;
}

void partition_log::note_damage(int64_t offset, const std::string& what, int64_t end) {
  _damaged_end = std::max(_damaged_end, end);
  if (_cfg.repairable && _recovering) {
    if (_damaged_from >= 0 && offset >= _damaged_from) return;  // the earliest damage counts
    _damaged_from = offset;
    _damage = what;
    sdk::log_error(_name + ": " + what + "; offsets from " + std::to_string(offset) +
                   " are not served until the log is repaired from a replica");
    return;
  }
  if (_failed) return;
  _failed = true;
  _failure = make(errc::corrupt, _name + ": " + what + "; offsets from " + std::to_string(offset) +
                                     " are unreadable and the log is read-only (restore it from a replica)");
  sdk::log_error(_failure.message);
}

error partition_log::damaged_error() const {
  return make(errc::corrupt, _name + ": offsets from " + std::to_string(_damaged_from) + " are damaged (" + _damage +
                                 ") and wait for their repair from a replica");
}

log_stats partition_log::stats() const noexcept {
  log_stats st;
  st.start_offset = _start_offset;
  st.next_offset = _next_offset;
  st.flushed_offset = _flushed_offset;
  for (const auto& [base, s] : _segments) st.size_bytes += s->size;
  st.segments = static_cast<uint32_t>(_segments.size());
  st.failed = _failed;
  st.syncs = _syncs;
  st.last_epoch = _epochs.last_epoch();
  st.damaged_from = _damaged_from;
  st.damaged_end = _damaged_from >= 0 ? std::max(_damaged_end, _next_offset) : -1;
  return st;
}

void partition_log::observe_epoch(int32_t epoch, int64_t base_offset) noexcept {
  // A batch that begins below the log start (the start is inside it)
  // counts from the start.
  if (_epochs.observe(epoch, std::max(base_offset, _start_offset))) ++_epochs_version;
}

bool partition_log::is_active(const segment& s) const noexcept {
  return !_segments.empty() && _segments.rbegin()->second.get() == &s;
}

partition_log::segment* partition_log::segment_for(int64_t offset) noexcept {
  auto it = _segments.upper_bound(offset);
  if (it == _segments.begin()) return nullptr;
  return std::prev(it)->second.get();
}

// ---- open and recovery ----------------------------------------------------------

sdk::task<result<std::unique_ptr<partition_log>>> partition_log::open(std::string dir, std::string name,
                                                                       log_config cfg, batch_cache* cache) {
  std::unique_ptr<partition_log> log(new partition_log(std::move(dir), std::move(name), cfg, cache));
  log->_recovering = true;
  auto r = co_await log->recover();
  log->_recovering = false;
  if (!r) {
    co_await log->close();
    co_return r.err();
  }
  co_return std::move(log);
}

// Reads [pos, pos + len) of fd with O_DIRECT-aligned I/O; the result's
// bytes start at pos (the slice's offset skips the alignment prefix).
static sdk::task<result<read_slice>> read_aligned(int32_t fd, uint64_t pos, uint64_t len, const std::string& what) {
  const uint64_t start = align_down(pos);
  const uint64_t end = align_up(pos + len);
  sdk::buffer buf = sdk::buffer::allocate(end - start, page);
  uint64_t got = 0;
  while (got < end - start) {
    const int32_t n = co_await sdk::read(fd, buf.data() + got, end - start - got, start + got);
    if (n < 0) co_return make(errc::io_error, what + ": read at " + std::to_string(start + got) + ": " + std::strerror(-n));
    if (n == 0) break;  // end of file
    got += static_cast<uint64_t>(n);
  }
  buf.set_size(got);
  read_slice s;
  s.offset = static_cast<uint32_t>(pos - start);
  s.length = got > pos - start ? static_cast<uint32_t>(std::min<uint64_t>(got - (pos - start), len)) : 0;
  s.data = std::move(buf);
  co_return s;
}

// Reads a small file whole (partition.meta); nullopt when it does not exist.
static sdk::task<result<std::optional<std::string>>> read_small_file(const std::string& path, uint64_t max_bytes) {
  const int32_t fd = co_await sdk::openat(path.c_str(), O_RDONLY | O_CLOEXEC, 0);
  if (fd == -ENOENT) co_return std::optional<std::string>{};
  if (fd < 0) co_return make(errc::io_error, "cannot open " + path + ": " + std::strerror(-fd));
  std::string bytes;
  while (bytes.size() <= max_bytes) {
    const size_t at = bytes.size();
    bytes.resize(at + 65536);
    const int32_t n = co_await sdk::read(fd, bytes.data() + at, 65536, at);
    if (n < 0) {
      co_await sdk::close(fd);
      co_return make(errc::io_error, "cannot read " + path + ": " + std::strerror(-n));
    }
    bytes.resize(at + static_cast<size_t>(n));
    if (n == 0) break;
  }
  co_await sdk::close(fd);
  co_return std::optional<std::string>(std::move(bytes));
}

sdk::task<result<void>> partition_log::recover() {
  namespace fs = std::filesystem;
  int32_t rc = co_await sdk::mkdir_durable(_dir);
  if (rc < 0) co_return io_error(-rc, "cannot create " + _dir);

  // Directory listing has no io_uring operation; it runs once per partition
  // at open, on a directory of a few entries.
  std::vector<int64_t> bases;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(_dir, ec)) {
    const std::string f = e.path().filename().string();
    if (f.starts_with("spare-") && f.ends_with(".seg")) {
      _spares.push_back(e.path().string());
      _spare_seq = std::max<uint64_t>(_spare_seq, std::strtoull(f.c_str() + 6, nullptr, 10) + 1);
      continue;
    }
    if (f.size() == 24 && f.ends_with(".log")) {
      char* end = nullptr;
      const long long b = std::strtoll(f.c_str(), &end, 10);
      if (end == f.c_str() + 20 && b >= 0) bases.push_back(b);
    }
  }
  if (ec) co_return io_error(ec.value(), "cannot list " + _dir);
  std::sort(bases.begin(), bases.end());

  // partition.meta: the log start offset (DeleteRecords, retention, reset),
  // the epoch table, and a truncate_suffix that did not finish.
  const std::string meta_path = _dir + "/" + meta_file;
  std::optional<partition_meta> meta;
  bool meta_damaged = false;
  {
    auto bytes = co_await read_small_file(meta_path, meta_header_bytes + uint64_t{meta_max_entries} * meta_entry_bytes);
    if (!bytes) co_return bytes.err();
    if (bytes.value()) {
      const std::string& b = *bytes.value();
      std::string why;
      meta = decode_meta(reinterpret_cast<const uint8_t*>(b.data()), b.size(), &why);
      meta_damaged = !meta;
      if (meta_damaged)
        sdk::log_warn(_name + ": " + meta_path + " is damaged (" + why +
                      "); taking the log start from the first segment and the leader epochs from every segment");
    }
  }
  if (meta) _start_offset = meta->start_offset;
  if (!bases.empty() && _start_offset < bases.front()) _start_offset = bases.front();

  // A truncate_suffix recorded its new end before it cut: the segments
  // wholly past it go first (so the rest still follow each other), the
  // cut itself once the segments are read.
  int64_t cut_to = meta && meta->truncating_to >= 0 ? std::max(meta->truncating_to, _start_offset) : -1;
  while (cut_to >= 0 && !bases.empty() && bases.back() > cut_to) {
    const std::string log_path = _dir + "/" + segment_name(bases.back(), ".log");
    const std::string index_path = _dir + "/" + segment_name(bases.back(), ".index");
    sdk::log_warn(_name + ": finishing an interrupted truncation to offset " + std::to_string(cut_to) + ": deleting " +
                  log_path);
    rc = co_await sdk::unlink(log_path.c_str());
    if (rc < 0 && rc != -ENOENT) co_return io_error(-rc, "cannot delete " + log_path);
    rc = co_await sdk::unlink(index_path.c_str());
    if (rc < 0 && rc != -ENOENT) co_return io_error(-rc, "cannot delete " + index_path);
    bases.pop_back();
  }

  // The epoch table: the file's entries for the closed segments (they were
  // written before those segments closed), the active segment's rebuilt
  // from its batches as it is scanned. Closed segments without a version 2
  // file (a log of an older version, or damage) are all scanned for them.
  // (A log that never rolled may have no file: its one segment is scanned.)
  const bool rebuild_epochs = bases.size() > 1 && (!meta || meta->version < meta_version);
  if (meta && !rebuild_epochs) {
    const int64_t active_base = bases.empty() ? _start_offset : bases.back();
    std::vector<epoch_entry> kept;
    for (size_t i = 0; i < meta->epochs.size(); ++i) {
      const epoch_entry& e = meta->epochs[i];
      // The first entry may start at the log start with no batch there
      // (clipped by a prefix truncation): only the file knows it.
      if (e.start_offset < active_base || (i == 0 && e.start_offset == meta->start_offset)) kept.push_back(e);
    }
    _epochs.assign(std::move(kept));
    _epochs.truncate_prefix(_start_offset);
  } else if (rebuild_epochs) {
    sdk::log_info(_name + ": rebuilding the leader-epoch table from every segment (" +
                  (meta ? "partition.meta of version " + std::to_string(meta->version) : std::string("no valid partition.meta")) +
                  ")");
  }

  for (size_t i = 0; i < bases.size(); ++i) {
    auto s = std::make_unique<segment>();
    s->base_offset = bases[i];
    s->log_path = _dir + "/" + segment_name(bases[i], ".log");
    s->index_path = _dir + "/" + segment_name(bases[i], ".index");
    s->index = segment_index(bases[i], _cfg.index_interval_bytes);
    s->created_ms = now_ms();
    s->fd = co_await sdk::openat(s->log_path.c_str(), O_RDWR | O_DIRECT | O_CLOEXEC, 0);
    if (s->fd < 0) co_return io_error(-s->fd, "cannot open " + s->log_path);
    segment& ref = *s;
    _segments.emplace(bases[i], std::move(s));
    const bool last = i + 1 == bases.size();
    const scan_mode mode = last || rebuild_epochs ? scan_mode::scan_epochs
                           : _cfg.verify_segments_on_open ? scan_mode::scan
                                                          : scan_mode::trust_index;
    auto r = co_await recover_segment(ref, last, mode, last && cut_to >= 0 ? cut_to : INT64_MAX);
    if (!r) co_return r;
    if (_failed) break;  // the rest of the log is unreachable past a corrupt segment
  }

  // Segments must follow each other without a gap or an overlap.
  for (auto it = _segments.begin(); !_failed && it != _segments.end() && std::next(it) != _segments.end(); ++it) {
    const segment& s = *it->second;
    const segment& n = *std::next(it)->second;
    if (s.next_offset < n.base_offset) {
      // A closed segment cut short or damaged: what it held from its last
      // valid batch on is gone.
      note_damage(s.next_offset, s.log_path + " ends at offset " + std::to_string(s.next_offset) + " (byte " +
                                     std::to_string(s.size) + (s.scan_stop.empty() ? "" : ": " + s.scan_stop) +
                                     ") but the next segment starts at " + std::to_string(n.base_offset));
    } else if (s.next_offset > n.base_offset && !_failed) {
      // Overlapping segments: no offset to cut at that both agree on.
      _failed = true;
      _failure = make(errc::corrupt, _name + ": " + s.log_path + " ends at offset " + std::to_string(s.next_offset) +
                                         " but the next segment starts at " + std::to_string(n.base_offset) +
                                         "; the log is read-only (restore it from a replica)");
      sdk::log_error(_failure.message);
    }
  }

  if (_segments.empty()) {
    auto r = co_await create_segment(_start_offset);
    if (!r) co_return r;
  }
  _next_offset = _written_offset = _flushed_offset = active().next_offset;
  segment& a = active();
  a.written = a.size;
  a.written_next = a.next_offset;
  // What partition.meta holds now: the in-memory table may also have
  // entries of the active segment (persisted when it closes).
  _epochs_version = 1;
  _epochs_persisted = meta && meta->epochs == _epochs.entries() ? 1 : 0;
  _meta_written = meta && meta->version == meta_version;
  // An older version's file, a damaged one, or closed segments without one:
  // write the current one. (A new log's is written at its first roll.)
  bool rewrite_meta = (meta && meta->version < meta_version) || meta_damaged || rebuild_epochs;

  // A recorded truncation at or before the damage removes it (nothing lost
  // that was not being removed anyway); past it, the owner's cut at the
  // damage (truncate_suffix) supersedes it.
  if (_damaged_from >= 0 && cut_to >= 0) {
    if (cut_to <= _damaged_from) {
      sdk::log_warn(_name + ": the damage at offset " + std::to_string(_damaged_from) +
                    " lies past an interrupted truncation to " + std::to_string(cut_to) + ", which removes it");
      _damaged_from = -1;
      _damage.clear();
    } else {
      cut_to = -1;
    }
  }
  if (_damaged_from >= 0) {
    _damaged_from = std::max(_damaged_from, _start_offset);
    if (_start_offset > _next_offset && !_failed) {
      _failed = true;
      _failure = make(errc::corrupt, _name + ": damaged at offset " + std::to_string(_damaged_from) +
                                         " with its start past its end; the log is read-only");
      sdk::log_error(_failure.message);
    }
  }
  if (cut_to >= 0 && !_failed) {
    sdk::log_warn(_name + ": finishing an interrupted truncation of the log to end at offset " +
                  std::to_string(cut_to) + " (its batches end at " + std::to_string(_next_offset) + ")");
    if (cut_to < _next_offset) {
      // It records the end again, cuts, then clears the record.
      auto r = co_await cut_suffix(cut_to);
      if (!r && !_failed) {
        // The recorded end is not a batch boundary of this log: damage.
        _failed = true;
        _failure = make(errc::corrupt, r.err().message + "; the log is read-only (restore it from a replica)");
        sdk::log_error(_failure.message);
      }
    } else {
      // The scan stopped at the recorded end (or a crash lost unflushed
      // batches before it): what the file holds after the last batch may be
      // the old tail, half cut. Cut it again, then clear the record.
      auto r = co_await cut_segments(active(), active().size, _next_offset);
      if (!r) co_return r;
      _epochs.truncate_suffix(cut_to);
      ++_epochs_version;
      rewrite_meta = true;
    }
  }
  if (_start_offset > _next_offset && !_failed && _damaged_from < 0) {
    // Everything below the recorded start was deleted (a reset, or
    // DeleteRecords past a tail a crash lost): the log is empty there.
    sdk::log_info(_name + ": the log starts at " + std::to_string(_start_offset) + ", past its last batch; emptying it");
    auto r = co_await reset_segments(_start_offset);
    if (!r) co_return r;
    _epochs.clear();
    ++_epochs_version;
    rewrite_meta = true;
  }
  if (rewrite_meta && !_failed) {
    auto r = co_await write_meta();
    if (!r) {
      if (cut_to < 0) {
        // Only a rewrite: the next open reads what is there again.
        sdk::log_warn(r.err().message + "; partition.meta is rewritten at the next change");
      } else {
        // The recorded truncation must not outlive the cut: appends past it
        // would be cut at the next open.
        co_return r;
      }
    }
  }
  SLUICE_ASSERT(_failed || (_start_offset <= _next_offset && active().next_offset == _next_offset));
  // Damage in the active segment ends the scan there: the log then ends at it.
  SLUICE_ASSERT(_failed || _damaged_from < 0 || (_damaged_from >= _start_offset && _damaged_from <= _next_offset));
  SLUICE_ASSERT(_failed || epoch_table::valid(_epochs.entries(), _start_offset));

  // What survived a crash may still sit in the device's cache: make it durable.
  rc = fault_hook::instance().take(fault_op::sync);
  if (rc == 0) rc = co_await sdk::fdatasync(active().fd);
  if (rc < 0) co_return io_error(-rc, "fdatasync " + active().log_path);
  sdk::log_info(_name + ": opened with " + std::to_string(_segments.size()) + " segment(s), offsets [" +
                std::to_string(_start_offset) + ", " + std::to_string(_next_offset) + "), leader epoch " +
                std::to_string(_epochs.last_epoch()) + (_failed ? " READ-ONLY: " + _failure.message : "") +
                (_damaged_from >= 0 && !_failed ? " DAMAGED from offset " + std::to_string(_damaged_from) + ": " + _damage
                                                : ""));
  co_return result<void>{};
}

sdk::task<result<void>> partition_log::recover_segment(segment& s, bool last, scan_mode mode, int64_t stop_at) {
  struct statx st{};
  int32_t rc = co_await sdk::statx(s.log_path.c_str(), 0, STATX_SIZE, &st);
  if (rc < 0) co_return io_error(-rc, "statx " + s.log_path);
  const uint64_t file_size = st.stx_size;

  // A closed segment with a valid index is trusted: its size and next
  // offset come from the index, its batches are verified when read.
  if (mode == scan_mode::trust_index) {
    SLUICE_ASSERT(!last);
    const int32_t ifd = co_await sdk::openat(s.index_path.c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC, 0);
    if (ifd >= 0) {
      struct statx ist{};
      co_await sdk::statx(s.index_path.c_str(), 0, STATX_SIZE, &ist);
      auto data = co_await read_aligned(ifd, 0, ist.stx_size, s.index_path);
      co_await sdk::close(ifd);
      if (data) {
        auto loaded = s.index.deserialize(data.value().data.data() + data.value().offset, data.value().length);
        // The file may be longer than the index says: zero padding, or old
        // batches of a recycled file. A shorter file is rescanned.
        if (loaded && loaded->segment_bytes <= file_size) {
          s.size = s.written = loaded->segment_bytes;
          s.next_offset = s.written_next = loaded->next_offset;
          co_return result<void>{};
        }
      }
      sdk::log_warn(_name + ": index " + s.index_path + " is damaged; rebuilding it from the segment");
    } else {
      sdk::log_warn(_name + ": index " + s.index_path + " is missing; rebuilding it from the segment");
    }
    s.index = segment_index(s.base_offset, _cfg.index_interval_bytes);
  }

  // Scan: verify every batch, in order, with consecutive offsets.
  uint64_t pos = 0;
  int64_t expected = s.base_offset;
  sdk::buffer chunk;
  uint64_t chunk_pos = 0, chunk_len = 0;
  const char* why = nullptr;
  bool stale = false;
  while (pos < file_size && expected < stop_at) {
    if (pos < chunk_pos || pos + batch_header_bytes > chunk_pos + chunk_len) {
      auto r = co_await read_aligned(s.fd, pos, std::min<uint64_t>(_cfg.read_chunk_bytes, file_size - pos), s.log_path);
      if (!r) co_return r.err();
      chunk = r.value().data;
      chunk_pos = align_down(pos);
      chunk_len = chunk.size();
      if (pos + batch_header_bytes > chunk_pos + chunk_len) {
        why = "truncated batch header";
        break;
      }
    }
    const uint8_t* p = chunk.data() + (pos - chunk_pos);
    const batch_header h = decode_header(p);
    if (h.batch_length <= 0 && std::all_of(p, p + batch_header_bytes, [](uint8_t b) { return b == 0; })) break;
    if (h.size_bytes() > _cfg.max_batch_bytes || h.batch_length < 49) {
      why = "invalid batch length";
      break;
    }
    if (pos + h.size_bytes() > file_size) {
      why = "batch runs past the end of the file";
      break;
    }
    if (pos + h.size_bytes() > chunk_pos + chunk_len) {
      auto r = co_await read_aligned(s.fd, pos, h.size_bytes(), s.log_path);
      if (!r) co_return r.err();
      chunk = r.value().data;
      chunk_pos = align_down(pos);
      chunk_len = chunk.size();
      p = chunk.data() + (pos - chunk_pos);
    }
    batch_header checked;
    const batch_check c = check_batch(p, chunk_len - (pos - chunk_pos), _cfg.max_batch_bytes, &checked);
    if (c != batch_check::ok) {
      why = to_string(c);
      break;
    }
    if (checked.base_offset != expected) {
      why = "offsets out of sequence";
      // A whole, valid batch of an older segment: a recycled file's old data.
      stale = checked.base_offset < expected;
      break;
    }
    s.index.add_batch(checked.base_offset, checked.max_timestamp, static_cast<uint32_t>(pos),
                      static_cast<uint32_t>(checked.size_bytes()));
    // Batches wholly below the log start are deleted: their epochs no longer count.
    if (mode == scan_mode::scan_epochs && checked.last_offset() >= _start_offset)
      observe_epoch(checked.leader_epoch, checked.base_offset);
    expected = checked.last_offset() + 1;
    pos += checked.size_bytes();
  }
  s.size = s.written = pos;
  s.next_offset = s.written_next = expected;
  s.scan_stop = why != nullptr && !stale ? std::string(why) : std::string();
  if (expected >= stop_at) co_return result<void>{};  // the recorded cut follows (recover())

  // What follows the last valid batch. Writes reach at most one write
  // buffer past the end that was written, and a damaged batch is followed
  // by the next one within max_batch_bytes: so only this window can hold
  // this incarnation's bytes. Past it lie zeros, or, in a recycled segment
  // file, batches of older segments (lower offsets), which stay untouched.
  //  - a valid batch with a later offset in the window: the middle of the
  //    log is damaged; the log turns read-only instead of losing data;
  //  - the scan stopped at a bad batch in the active segment: a torn write,
  //    cut off (zeroed, so a later scan cannot mistake it for data);
  //  - it stopped at zeros or at an older segment's batch: the clean end;
  //    old bytes after it can never continue the log (their CRCs cannot
  //    match at new offsets, and later valid batches are searched for);
  //  - in a closed segment the continuity check in recover() decides.
  const uint64_t window_end =
      std::min<uint64_t>(file_size, align_up(pos) + _cfg.write_buffer_bytes + _cfg.max_batch_bytes + page);
  bool clean = why == nullptr;
  if (!clean || pos < window_end) {
    uint64_t q = pos;
    bool later_batch = false, nonzero = false;
    uint64_t later_pos = 0;
    while (q < window_end && !later_batch) {
      auto r = co_await read_aligned(s.fd, q, std::min<uint64_t>(_cfg.read_chunk_bytes, window_end - q), s.log_path);
      if (!r) co_return r.err();
      const uint8_t* base = r.value().data.data() + r.value().offset;
      const uint64_t n = r.value().length;
      if (n == 0) break;
      for (uint64_t i = 0; i < n; ++i) {
        if (base[i] == 0) continue;
        nonzero = true;
        // A plausible later batch: magic 2 and an offset at or after the cut.
        if (i >= 16 && base[i] == static_cast<uint8_t>(batch_magic_v2) && i - 16 + batch_header_bytes <= n) {
          const uint8_t* cand = base + i - 16;
          const int64_t off = read_be64(cand);
          if (off >= expected && off - expected < (int64_t{1} << 31)) {
            const batch_header ch = decode_header(cand);
            if (ch.size_bytes() <= _cfg.max_batch_bytes && ch.batch_length >= 49) {
              auto full = co_await read_aligned(s.fd, q + (i - 16), ch.size_bytes(), s.log_path);
              if (full && full.value().length == ch.size_bytes() &&
                  check_batch(full.value().data.data() + full.value().offset, full.value().length,
                              _cfg.max_batch_bytes, nullptr) == batch_check::ok) {
                later_batch = true;
                later_pos = q + (i - 16);
              }
            }
          }
        }
        if (later_batch) break;
      }
      q += n;
    }
    if (later_batch) {
      // Where the log ended before the damage (a repair must reach it
      // again): the valid batches that follow the first later one.
      int64_t end = expected;
      for (uint64_t p = later_pos; p + batch_header_bytes <= file_size;) {
        auto h = co_await read_aligned(s.fd, p, batch_header_bytes, s.log_path);
        if (!h || h.value().length < batch_header_bytes) break;
        const batch_header bh = decode_header(h.value().data.data() + h.value().offset);
        if (bh.size_bytes() > _cfg.max_batch_bytes || bh.batch_length < 49 || p + bh.size_bytes() > file_size) break;
        auto full = co_await read_aligned(s.fd, p, bh.size_bytes(), s.log_path);
        batch_header checked;
        if (!full || full.value().length != bh.size_bytes() ||
            check_batch(full.value().data.data() + full.value().offset, full.value().length, _cfg.max_batch_bytes,
                        &checked) != batch_check::ok ||
            checked.base_offset < end)
          break;
        end = checked.last_offset() + 1;
        p += checked.size_bytes();
      }
      note_damage(expected, s.log_path + " is corrupt at byte " + std::to_string(pos) + " (" +
                                (why ? why : "garbage") + ") with valid batches after it",
                  end);
      co_return result<void>{};
    }
    if (nonzero && last && why != nullptr && !stale) {
      // Zero the torn tail so a later scan cannot mistake it for data.
      if (auto z = co_await zero_from(s, pos, window_end); !z) co_return z;
      rc = fault_hook::instance().take(fault_op::sync);
      if (rc == 0) rc = co_await sdk::fdatasync(s.fd);
      if (rc < 0) co_return io_error(-rc, "fdatasync " + s.log_path);
      sdk::log_warn(_name + ": cut a torn tail of up to " + std::to_string(window_end - pos) + " byte(s) from " + s.log_path +
                    " at byte " + std::to_string(pos) + " (" + (why ? why : "garbage") + "); the log ends at offset " +
                    std::to_string(expected));
    }
  }
  co_return result<void>{};
}

// Zeros s's file from byte pos to byte end: the rest of pos's page is
// rewritten as zeros, whole pages after it are punched out (a hole reads as
// zeros). Not synced: the caller syncs.
sdk::task<result<void>> partition_log::zero_from(segment& s, uint64_t pos, uint64_t end) {
  SLUICE_ASSERT(pos <= end);
  const uint64_t tail_page = align_down(pos);
  if (pos % page) {
    auto r = co_await read_aligned(s.fd, tail_page, page, s.log_path);
    if (!r) co_return r.err();
    sdk::buffer b = r.value().data;
    if (b.capacity() < page) co_return make(errc::io_error, s.log_path + ": short read of the tail page");
    std::memset(b.data() + (pos - tail_page), 0, page - (pos - tail_page));
    int32_t rc = fault_hook::instance().take(fault_op::write);
    if (rc == 0) rc = co_await sdk::write(s.fd, b.data(), page, tail_page);
    if (rc != static_cast<int32_t>(page))
      co_return io_error(rc < 0 ? -rc : EIO, "zeroing " + s.log_path + " from byte " + std::to_string(pos));
  }
  if (align_up(pos) < end) {
    const int32_t rc = co_await sdk::fallocate(s.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, align_up(pos),
                                               end - align_up(pos));
    if (rc < 0) co_return io_error(-rc, "punching " + s.log_path + " from byte " + std::to_string(align_up(pos)));
  }
  co_return result<void>{};
}

// ---- segments -------------------------------------------------------------------

sdk::task<result<void>> partition_log::sync_dir() {
  if (const int32_t rc = co_await sdk::fsync_dir(_dir); rc < 0) co_return io_error(-rc, "fsync directory " + _dir);
  co_return result<void>{};
}

sdk::task<result<void>> partition_log::create_segment(int64_t base_offset) {
  auto s = std::make_unique<segment>();
  s->base_offset = base_offset;
  s->next_offset = s->written_next = base_offset;
  s->log_path = _dir + "/" + segment_name(base_offset, ".log");
  s->index_path = _dir + "/" + segment_name(base_offset, ".index");
  s->index = segment_index(base_offset, _cfg.index_interval_bytes);
  s->created_ms = now_ms();
  // Prefer a recycled file: overwriting written blocks costs the file
  // system no allocation and the fdatasync no metadata. Its old batches
  // have lower offsets and are never taken for this segment's (see
  // recover_segment).
  while (!_spares.empty() && s->fd < 0) {
    const std::string spare = _spares.back();
    _spares.pop_back();
    if (co_await sdk::rename(spare.c_str(), s->log_path.c_str()) == 0)
      s->fd = co_await sdk::openat(s->log_path.c_str(), O_RDWR | O_DIRECT | O_CLOEXEC, 0);
  }
  if (s->fd < 0)
    s->fd = co_await sdk::openat(s->log_path.c_str(), O_CREAT | O_TRUNC | O_RDWR | O_DIRECT | O_CLOEXEC, 0644);
  if (s->fd < 0) co_return io_error(-s->fd, "cannot create segment " + s->log_path);
  // The new file's directory entry must be durable before its data counts.
  auto r = co_await sync_dir();
  if (!r) {
    co_await sdk::close(s->fd);
    co_return r;
  }
  _segments.emplace(base_offset, std::move(s));
  co_return result<void>{};
}

// Writes s's index file (not synced: a damaged index is rebuilt on open).
sdk::task<result<void>> partition_log::close_segment(segment& s) {
  const std::string bytes = s.index.serialize(s.size, s.next_offset);
  sdk::buffer b = sdk::buffer::allocate(bytes.size(), page);
  std::memcpy(b.data(), bytes.data(), bytes.size());
  const int32_t fd = co_await sdk::openat(s.index_path.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_DIRECT | O_CLOEXEC, 0644);
  if (fd < 0) co_return io_error(-fd, "cannot create index " + s.index_path);
  int32_t rc = fault_hook::instance().take(fault_op::write);
  if (rc == 0) rc = co_await sdk::write(fd, b.data(), bytes.size(), 0);
  co_await sdk::close(fd);
  if (rc != static_cast<int32_t>(bytes.size()))
    co_return io_error(rc < 0 ? -rc : EIO, "cannot write index " + s.index_path);
  s.wbuf = sdk::buffer{};
  co_return result<void>{};
}

sdk::task<result<void>> partition_log::roll() {
  segment& old = active();
  while (_writing) co_await _written.wait();
  if (_failed) co_return _failure;
  SLUICE_ASSERT(old.written == old.size);
  const uint64_t t0 = sdk::now_ns();
  int32_t rc = fault_hook::instance().take(fault_op::sync);
  if (rc == 0) rc = co_await sdk::fdatasync(old.fd);
  if (rc < 0) co_return fail(-rc, "fdatasync " + old.log_path);
  _flushed_offset = std::max(_flushed_offset, old.next_offset);
  _synced.notify_all();
  // Recovery rebuilds only the active segment's epoch entries: the ones of
  // the segment that closes go to partition.meta now (its batches are
  // durable; nothing has changed yet if this fails). A log's first roll
  // writes the file in any case: closed segments without it mean an older
  // version's log (or damage), whose segments are all scanned at open.
  if (_epochs_version != _epochs_persisted || !_meta_written) {
    if (auto m = co_await write_meta(); !m) co_return m;
  }
  const uint64_t t1 = sdk::now_ns();
  auto r = co_await close_segment(old);
  if (!r) sdk::log_warn(r.err().message + "; it will be rebuilt on the next start");
  const uint64_t t2 = sdk::now_ns();
  // Size retention at every roll keeps a busy log in a steady state: one
  // segment leaves as one arrives, and the new one reuses its file.
  if (_cfg.retention_bytes >= 0) {
    auto rr = co_await retain(0, false);
    if (!rr) sdk::log_warn(rr.err().message);
  }
  const uint64_t t3 = sdk::now_ns();
  auto created = co_await create_segment(_next_offset);
  const uint64_t t4 = sdk::now_ns();
  // Appends wait for a roll: a slow one is a latency spike worth naming.
  if (t4 - t0 > 100'000'000)
    sdk::log_warn(_name + ": slow segment roll: " + std::to_string((t4 - t0) / 1'000'000) + " ms (fdatasync " +
                  std::to_string((t1 - t0) / 1'000'000) + ", close " + std::to_string((t2 - t1) / 1'000'000) +
                  ", retention " + std::to_string((t3 - t2) / 1'000'000) + ", new segment " +
                  std::to_string((t4 - t3) / 1'000'000) + ")");
  co_return created;
}

// ---- append ---------------------------------------------------------------------

sdk::task<result<void>> partition_log::ensure_space(uint64_t bytes) {
  segment& s = active();
  const uint64_t cap = _cfg.write_buffer_bytes;
  SLUICE_ASSERT(bytes + page <= cap);
  if (!s.wbuf) {
    s.wbuf = sdk::buffer::allocate(cap, page);
    s.wbuf_pos = align_down(s.size);
    if (s.size % page) {
      // Reopened log: the partial tail page is rewritten as it fills, so it
      // must be in the buffer.
      const int32_t n = co_await sdk::read(s.fd, s.wbuf.data(), page, s.wbuf_pos);
      if (n < static_cast<int32_t>(s.size - s.wbuf_pos))
        co_return io_error(n < 0 ? -n : EIO, "reading the tail page of " + s.log_path);
    }
  }
  while (s.size + bytes - s.wbuf_pos > cap) {
    if (_failed) co_return _failure;
    if (_writing) {
      co_await _written.wait();
      continue;
    }
    if (s.written < s.size) {
      _writing = true;
      sdk::spawn(write_loop());
      continue;
    }
    // Everything is written: keep only the partial last page.
    const uint64_t keep = align_down(s.size);
    std::memmove(s.wbuf.data(), s.wbuf.data() + (keep - s.wbuf_pos), s.size - keep);
    s.wbuf_pos = keep;
  }
  co_return result<void>{};
}

sdk::task<result<append_result>> partition_log::append(sdk::buffer batches, append_options opts) {
  if (_closed) co_return make(errc::closed, _name + ": log is closed");
  if (_failed) co_return _failure;
  if (_damaged_from >= 0) co_return damaged_error();
  if (!batches || batches.size() == 0) co_return make(errc::invalid_batch, _name + ": empty append");
  SLUICE_ASSERT_MSG(!opts.leader_epoch || *opts.leader_epoch >= 0, "a leader epoch to stamp is >= 0");
  // Validate everything before touching the log.
  uint8_t* p = batches.data();
  const uint64_t n = batches.size();
  std::vector<batch_header> headers;
  for (uint64_t pos = 0; pos < n;) {
    batch_header h;
    const batch_check c = check_batch(p + pos, n - pos, _cfg.max_batch_bytes, &h);
    if (c != batch_check::ok) {
      const bool too_large = c == batch_check::bad_length && n - pos >= batch_length_field_end &&
                             decode_header(p + pos).size_bytes() > _cfg.max_batch_bytes;
      co_return make(too_large ? errc::batch_too_large : errc::invalid_batch,
                     _name + ": batch at byte " + std::to_string(pos) + ": " + to_string(c) +
                         (too_large ? " (max_batch_bytes is " + std::to_string(_cfg.max_batch_bytes) + ")" : ""));
    }
    if (opts.keep_offsets) {
      // The leader's offsets: each batch must follow the previous one.
      if (h.base_offset < 0 || h.base_offset > max_log_offset - h.last_offset_delta)
        co_return make(errc::offset_out_of_range, _name + ": replica append: the batch at byte " + std::to_string(pos) +
                                                      " has base offset " + std::to_string(h.base_offset) +
                                                      ", not a valid offset");
      if (!headers.empty() && h.base_offset != headers.back().last_offset() + 1)
        co_return make(errc::offset_out_of_range,
                       _name + ": replica append: the batch at byte " + std::to_string(pos) + " has base offset " +
                           std::to_string(h.base_offset) + " but the previous batch ends at offset " +
                           std::to_string(headers.back().last_offset()) + " (expected " +
                           std::to_string(headers.back().last_offset() + 1) + ": batches must be contiguous)");
    }
    headers.push_back(h);
    pos += h.size_bytes();
  }

  auto guard = co_await _append_mutex.lock();
  if (_closed) co_return make(errc::closed, _name + ": log is closed");
  if (_failed) co_return _failure;
  if (opts.keep_offsets && headers.front().base_offset != _next_offset)
    co_return make(errc::offset_out_of_range, _name + ": replica append: the first batch has base offset " +
                                                  std::to_string(headers.front().base_offset) +
                                                  " but the log's next offset is " + std::to_string(_next_offset) +
                                                  " (expected " + std::to_string(_next_offset) + ")");
  {
    segment& s = active();
    if (s.size > 0 && (s.size + n > _cfg.segment_bytes || now_ms() - s.created_ms >= _cfg.segment_ms)) {
      auto r = co_await roll();
      if (!r) co_return r.err();
    }
  }
  append_result out;
  out.base_offset = _next_offset;
  // Copy in groups of batches that fit the write buffer (usually one group;
  // the mutex keeps a multi-group append contiguous).
  const uint64_t group_max = _cfg.write_buffer_bytes - page;
  size_t next_header = 0;
  uint64_t pos = 0;
  while (next_header < headers.size()) {
    uint64_t group_bytes = 0;
    size_t group_end = next_header;
    while (group_end < headers.size() && group_bytes + headers[group_end].size_bytes() <= group_max)
      group_bytes += headers[group_end++].size_bytes();
    SLUICE_ASSERT(group_end > next_header);  // every batch fits: max_batch_bytes <= group_max
    if (auto r = co_await ensure_space(group_bytes); !r) co_return r.err();
    if (_failed) co_return _failure;
    // From here to the copy nothing awaits: offsets follow arrival order.
    segment& s = active();
    const uint64_t group_start = pos;
    for (; next_header < group_end; ++next_header) {
      const batch_header& h = headers[next_header];
      const auto size = static_cast<uint32_t>(h.size_bytes());
      // The fields outside the CRC, in the same pass: offsets, then the epoch.
      if (opts.keep_offsets) {
        SLUICE_ASSERT(h.base_offset == _next_offset);
      } else {
        set_base_offset(p + pos, _next_offset);
      }
      const int32_t epoch = opts.leader_epoch.value_or(h.leader_epoch);
      if (opts.leader_epoch) set_leader_epoch(p + pos, epoch);
      SLUICE_ASSERT(decode_header(p + pos).base_offset == _next_offset && decode_header(p + pos).leader_epoch == epoch);
      observe_epoch(epoch, _next_offset);
      s.index.add_batch(_next_offset, h.max_timestamp, static_cast<uint32_t>(s.size + (pos - group_start)), size);
      _cache->put(this, _next_offset, _next_offset + h.last_offset_delta, batches, static_cast<uint32_t>(pos), size);
      out.max_timestamp = std::max(out.max_timestamp, h.max_timestamp);
      _next_offset += h.last_offset_delta + 1;
      pos += size;
      ++out.batches;
    }
    std::memcpy(s.wbuf.data() + (s.size - s.wbuf_pos), p + group_start, group_bytes);
    s.size += group_bytes;
    s.next_offset = _next_offset;
  }
  out.last_offset = _next_offset - 1;
  const int64_t end = _next_offset;
  guard.unlock();

  if (!_writing) {
    _writing = true;
    sdk::spawn(write_loop());
  }
  if (auto r = co_await wait_written(end); !r) co_return r.err();
  co_return out;
}

// Writes what is appended but not written, coalescing everything that
// arrives while a write is in flight into the next write.
sdk::task<void> partition_log::write_loop() {
  SLUICE_ASSERT(_writing);
  auto hold = _tasks.try_enter();
  segment& s = active();
  while (!_failed && s.written < s.size) {
    const uint64_t from = align_down(s.written);
    const uint64_t to = align_up(s.size);
    const uint64_t size_at_issue = s.size;
    const int64_t next_at_issue = s.next_offset;
    SLUICE_ASSERT(from >= s.wbuf_pos && to - s.wbuf_pos <= s.wbuf.capacity());
    // The rest of the last page goes to disk as zeros (never stale buffer
    // bytes or uninitialized memory): a clean end is zeros, so recovery can
    // tell it from a torn write. An append may copy past size while the
    // write is in flight; those bytes lie past the end the write covers.
    std::memset(s.wbuf.data() + (s.size - s.wbuf_pos), 0, to - s.size);
    int32_t rc = fault_hook::instance().take(fault_op::write);
    if (rc == 0) rc = co_await sdk::write(s.fd, s.wbuf.data() + (from - s.wbuf_pos), to - from, from);
    if (rc != static_cast<int32_t>(to - from)) {
      fail(rc < 0 ? -rc : ENOSPC, "write to " + s.log_path + " at byte " + std::to_string(from));
      break;
    }
    s.written = size_at_issue;
    s.written_next = next_at_issue;
    _written_offset = next_at_issue;
    _written.notify_all();
  }
  _writing = false;
  _written.notify_all();
}

sdk::task<result<void>> partition_log::wait_written(int64_t offset) {
  // Offsets a truncation removed meanwhile were written before it (it
  // waits for the writer): nothing to wait for.
  while (_written_offset < std::min(offset, _next_offset)) {
    if (_failed) co_return _failure;
    if (!_writing) {
      _writing = true;
      sdk::spawn(write_loop());
    }
    co_await _written.wait();
  }
  co_return result<void>{};
}

sdk::task<result<int64_t>> partition_log::flush() {
  if (_closed) co_return make(errc::closed, _name + ": log is closed");
  const int64_t target = _next_offset;
  if (auto r = co_await wait_written(target); !r) co_return r.err();
  // A truncation may lower the target meanwhile (and the flushed offset).
  while (_flushed_offset < std::min(target, _next_offset)) {
    if (_failed) co_return _failure;
    if (_syncing) {
      co_await _synced.wait();  // then check whether that sync covered us
      continue;
    }
    // One fdatasync covers every write completed so far: callers that arrive
    // while it runs wait for it, then share the next one.
    _syncing = true;
    segment& s = active();
    const int64_t covers = _written_offset;
    ++_syncs;
    int32_t rc = fault_hook::instance().take(fault_op::sync);
    if (rc == 0) rc = co_await sdk::fdatasync(s.fd);
    _syncing = false;
    if (rc < 0) {
      // After a failed fdatasync the kernel may have dropped the dirty state:
      // never retry and report success.
      auto e = fail(-rc, "fdatasync " + s.log_path);
      _synced.notify_all();
      co_return e;
    }
    _flushed_offset = std::max(_flushed_offset, covers);
    _synced.notify_all();
  }
  co_return _flushed_offset;
}

// ---- reads ----------------------------------------------------------------------

// Bytes [pos, pos + len) of segment s: from the file below disk_end, from
// the write buffer at and above it (those may not be written yet). A span
// that crosses disk_end is assembled in one buffer, so a batch that
// straddles the two is whole.
sdk::task<result<read_slice>> partition_log::read_span(segment& s, uint64_t pos, uint64_t len, uint64_t disk_end) {
  SLUICE_ASSERT_MSG(pos + len <= s.size, "a read span lies within the segment");
  if (pos >= disk_end) {
    SLUICE_ASSERT(s.wbuf && pos >= s.wbuf_pos);
    read_slice chunk;
    chunk.data = sdk::buffer::allocate(len);
    std::memcpy(chunk.data.data(), s.wbuf.data() + (pos - s.wbuf_pos), len);
    chunk.data.set_size(len);
    chunk.offset = 0;
    chunk.length = static_cast<uint32_t>(len);
    co_return chunk;
  }
  const uint64_t from_disk = std::min(len, disk_end - pos);
  auto r = co_await read_aligned(s.fd, pos, from_disk, s.log_path);
  if (!r || from_disk == len) co_return r;
  const read_slice& head = r.value();
  if (head.length < from_disk) co_return r;  // the file is short: the caller reports it
  SLUICE_ASSERT(s.wbuf && disk_end >= s.wbuf_pos);
  read_slice chunk;
  chunk.data = sdk::buffer::allocate(len);
  std::memcpy(chunk.data.data(), head.data.data() + head.offset, from_disk);
  std::memcpy(chunk.data.data() + from_disk, s.wbuf.data() + (disk_end - s.wbuf_pos), len - from_disk);
  chunk.data.set_size(len);
  chunk.offset = 0;
  chunk.length = static_cast<uint32_t>(len);
  co_return chunk;
}

sdk::task<result<void>> partition_log::read_from_disk(segment& s, int64_t offset, uint64_t max_bytes,
                                                      int64_t max_offset, read_result& out) {
  const segment_index::location start = s.index.locate(offset);
  uint64_t pos = start.position;
  // Base offsets lie outside the CRC: every batch read must continue the
  // sequence from the index entry, inside the segment's offset range.
  int64_t expect = start.offset;
  const uint64_t generation = _truncations;
  while (pos < s.size) {
    read_slice chunk;
    // Bytes from the write buffer's position on may be unwritten: they come
    // from the buffer. Decided at every turn: a roll, a truncation or
    // appends may have moved the buffer on meanwhile (what lies below its
    // position is written).
    const bool buffered = s.wbuf && is_active(s);
    const uint64_t disk_end = buffered ? s.wbuf_pos : s.size;
    {
      // Large fetches read bigger chunks, but never more than 8 MiB at once.
      const uint64_t want = pos >= disk_end ? s.size - pos
                                            : std::min<uint64_t>(std::max<uint64_t>(_cfg.read_chunk_bytes,
                                                                                    std::min<uint64_t>(max_bytes, 8u << 20)),
                                                                 s.size - pos);
      auto r = co_await read_span(s, pos, want, disk_end);
      if (!r) co_return r.err();
      chunk = std::move(r).value();
    }
    uint64_t i = 0;
    bool need_more = false;
    bool reread = false;
    const auto corrupt = [&](uint64_t at, const std::string& what) {
      const std::string msg =
          _name + ": " + s.log_path + " is corrupt at byte " + std::to_string(at) + " (" + what + "); not serving it";
      sdk::log_error(msg);
      return make(errc::corrupt, msg);
    };
    while (i < chunk.length) {
      // A truncation since this read began: what follows may be gone, and
      // must not enter the cache. What was read before it stands.
      if (generation != _truncations) co_return result<void>{};
      const uint8_t* p = chunk.data.data() + chunk.offset + i;
      const uint64_t left = chunk.length - i;
      if (left < batch_length_field_end) {
        if (i == 0) co_return corrupt(pos, "the file ends before the " + std::to_string(s.size) + " bytes the log holds");
        need_more = true;
        break;
      }
      // Only the length field is known to be in the chunk (not a whole header).
      const int32_t length0 = read_be32(p + 8);
      const uint64_t size0 = static_cast<uint64_t>(std::max(length0, 0)) + batch_length_field_end;
      if (length0 > 0 && size0 <= _cfg.max_batch_bytes && size0 > left) {
        // The batch continues past this chunk: read from its start, once.
        if (i == 0) {
          if (reread || pos + size0 > s.size)
            co_return corrupt(pos, "a batch of " + std::to_string(size0) + " bytes runs past the " +
                                       std::to_string(s.size) + " bytes of the segment");
          auto r = co_await read_span(s, pos, size0, disk_end);
          if (!r) co_return r.err();
          chunk = std::move(r).value();
          reread = true;
          continue;
        }
        need_more = true;
        break;
      }
      batch_header h;
      const batch_check c = check_batch(p, left, _cfg.max_batch_bytes, &h);
      if (c != batch_check::ok) co_return corrupt(pos + i, to_string(c));
      if (h.base_offset != expect || h.last_offset() >= s.next_offset)
        co_return corrupt(pos + i, "base offset " + std::to_string(h.base_offset) + " where " + std::to_string(expect) +
                                       " belongs");
      expect = h.last_offset() + 1;
      if (h.last_offset() >= offset) {
        if (h.base_offset >= max_offset) co_return result<void>{};
        if (!out.slices.empty() && out.bytes + h.size_bytes() > max_bytes) co_return result<void>{};
        const auto off = static_cast<uint32_t>(chunk.offset + i);
        const auto len = static_cast<uint32_t>(h.size_bytes());
        _cache->put(this, h.base_offset, h.last_offset(), chunk.data, off, len);
        out.slices.push_back(read_slice{chunk.data, off, len});
        out.bytes += len;
        if (out.first_offset < 0) out.first_offset = h.base_offset;
        out.next_offset = h.last_offset() + 1;
        if (out.bytes >= max_bytes || out.next_offset >= max_offset) co_return result<void>{};
      }
      i += h.size_bytes();
    }
    pos += i;
    if (!need_more && i == 0) break;  // no progress: nothing more readable
  }
  co_return result<void>{};
}

sdk::task<result<read_result>> partition_log::read(int64_t offset, uint64_t max_bytes, int64_t max_offset) {
  if (_closed) co_return make(errc::closed, _name + ": log is closed");
  if (_damaged_from >= 0) {
    // Nothing from the damage on is served, not even a batch the cache holds.
    if (offset >= _damaged_from) co_return damaged_error();
    max_offset = std::min(max_offset, _damaged_from);
  }
  if (offset < _start_offset || offset > _next_offset)
    co_return make(errc::offset_out_of_range, _name + ": offset " + std::to_string(offset) + " is outside [" +
                                                  std::to_string(_start_offset) + ", " + std::to_string(_next_offset) + "]");
  read_result out;
  int64_t cur = offset;
  while (cur < std::min(_next_offset, max_offset) && (out.bytes < max_bytes || out.slices.empty())) {
    if (const auto* e = _cache->find(this, cur)) {
      if (e->base_offset >= max_offset) break;
      if (!out.slices.empty() && out.bytes + e->length > max_bytes) break;
      out.slices.push_back(read_slice{e->data, e->offset, e->length});
      out.bytes += e->length;
      if (out.first_offset < 0) out.first_offset = e->base_offset;
      cur = out.next_offset = e->last_offset + 1;
      continue;
    }
    segment* s = segment_for(cur);
    if (s == nullptr) break;
    auto hold = s->readers->try_enter();
    if (!hold) continue;  // being deleted: look again
    const int64_t before = out.next_offset;
    auto r = co_await read_from_disk(*s, cur, max_bytes, max_offset, out);
    if (!r) co_return r.err();
    if (out.next_offset != before) {
      cur = out.next_offset;
      continue;
    }
    // Nothing read: the limits stopped the read, or cur is past this
    // segment's data and the next segment must start exactly there.
    if (s->next_offset > cur) break;
    auto next = _segments.upper_bound(s->base_offset);
    if (next == _segments.end()) break;
    if (next->first != cur)
      co_return make(errc::corrupt, _name + ": offsets " + std::to_string(cur) + " to " +
                                        std::to_string(next->first - 1) + " are missing (" + s->log_path +
                                        " ends early); not serving them");
    cur = next->first;
  }
  co_return out;
}

sdk::task<result<int64_t>> partition_log::offset_for_timestamp(int64_t ts) {
  for (auto it = _segments.begin(); it != _segments.end(); ++it) {
    segment& s = *it->second;
    if (s.index.max_timestamp() < ts || s.next_offset <= _start_offset) continue;
    // Scan this segment's batches from the time index's hint.
    int64_t cur = std::max(_start_offset, s.base_offset);
    while (cur < s.next_offset) {
      auto r = co_await read(cur, _cfg.read_chunk_bytes, s.next_offset);
      if (!r) co_return r.err();
      if (r.value().slices.empty()) break;
      for (const auto& sl : r.value().slices) {
        const batch_header h = decode_header(sl.data.data() + sl.offset);
        if (h.max_timestamp >= ts) co_return std::max(h.base_offset, _start_offset);
      }
      cur = r.value().next_offset;
    }
  }
  co_return int64_t{-1};
}

// ---- deletion -------------------------------------------------------------------

sdk::task<result<void>> partition_log::write_meta(int64_t truncating_to) {
  partition_meta m;
  m.start_offset = _start_offset;
  m.truncating_to = truncating_to;
  m.epochs = _epochs.entries();
  const uint64_t version = _epochs_version;
  const std::string bytes = encode_meta(m);
  const std::string final_path = _dir + "/" + meta_file;
  if (const sdk::replace_file_error e = co_await sdk::replace_file(final_path, bytes))
    co_return io_error(-e.rc, std::string("cannot ") + e.step + " " + final_path);
  _epochs_persisted = version;
  _meta_written = true;
  co_return result<void>{};
}

sdk::task<result<void>> partition_log::delete_segment(std::unique_ptr<segment> s, bool recycle) {
  co_await s->readers->close();
  co_await sdk::close(s->fd);
  int32_t rc = -1;
  if (recycle && _spares.size() < max_spares) {
    // Keep the file for a later segment of this partition.
    const std::string spare = _dir + "/spare-" + std::to_string(_spare_seq++) + ".seg";
    rc = co_await sdk::rename(s->log_path.c_str(), spare.c_str());
    if (rc == 0) _spares.push_back(spare);
  }
  if (rc != 0) rc = co_await sdk::unlink(s->log_path.c_str());
  if (rc < 0 && rc != -ENOENT) co_return io_error(-rc, "cannot delete " + s->log_path);
  rc = co_await sdk::unlink(s->index_path.c_str());
  if (rc < 0 && rc != -ENOENT) co_return io_error(-rc, "cannot delete " + s->index_path);
  co_return result<void>{};
}

// A prefix truncation keeps, in partition.meta, the epoch entry covering
// the new start. The batch that entry starts at must be durable first:
// otherwise a crash could lose it and leave the file naming its epoch.
sdk::task<result<void>> partition_log::flush_epoch_cover(int64_t new_start) {
  const epoch_entry* cover = _epochs.covering(new_start);
  // The flushed offset is a batch boundary: a batch starting below it is whole on disk.
  if (cover == nullptr || cover->start_offset < _flushed_offset) co_return result<void>{};
  auto f = co_await flush();
  if (!f) co_return f.err();
  SLUICE_ASSERT(_epochs.covering(new_start) == nullptr || _epochs.covering(new_start)->start_offset < _flushed_offset);
  co_return result<void>{};
}

sdk::task<result<void>> partition_log::truncate_prefix(int64_t new_start) {
  if (_closed) co_return make(errc::closed, _name + ": log is closed");
  // The append mutex too: a start past the end replaces the active segment.
  auto appending = co_await _append_mutex.lock();
  auto serial = co_await _delete_mutex.lock();
  if (_closed) co_return make(errc::closed, _name + ": log is closed");
  if (_damaged_from >= 0 && new_start > _start_offset) co_return damaged_error();
  if (new_start > _next_offset) {
    if (_failed) co_return _failure;
    co_await quiesce();
    result<void> r = _failure;
    if (!_failed) r = co_await reset(new_start);
    release_sync_path();
    co_return r;
  }
  if (new_start <= _start_offset) co_return result<void>{};
  if (auto f = co_await flush_epoch_cover(new_start); !f) co_return f;
  _start_offset = new_start;
  _epochs.truncate_prefix(new_start);
  ++_epochs_version;
  if (auto r = co_await write_meta(); !r) co_return r;
  _cache->drop(this, new_start);
  // Delete closed segments that end at or below the new start.
  while (_segments.size() > 1) {
    auto first = _segments.begin();
    if (first->second->next_offset > new_start) break;
    auto s = std::move(first->second);
    _segments.erase(first);
    if (auto r = co_await delete_segment(std::move(s), /*recycle=*/true); !r) co_return r;
  }
  co_return result<void>{};
}

// ---- suffix truncation and reset ------------------------------------------------
//
// Both replace the tail of the log while appends wait (the caller holds the
// append and delete mutexes) and no write or fdatasync runs: quiesce()
// waits for the writer and takes the sync path, so that flushes wait too
// and none can raise the flushed offset over the new end.

sdk::task<void> partition_log::quiesce() {
  while (_writing) co_await _written.wait();
  while (_syncing) co_await _synced.wait();
  _syncing = true;
  SLUICE_ASSERT(_failed || (_written_offset == _next_offset && active().written == active().size));
}

void partition_log::release_sync_path() noexcept {
  SLUICE_ASSERT(_syncing);
  _syncing = false;
  _synced.notify_all();
}

// Reads that began before a truncation may still read past the new end:
// a fresh gate takes new reads, the old one is waited for.
sdk::task<void> partition_log::drain_readers(segment& s) {
  std::unique_ptr<sdk::gate> old = std::exchange(s.readers, std::make_unique<sdk::gate>());
  co_await old->close();
}

// The file position of the batch of s that starts at `offset`, read from
// the batch headers after the index entry before it; offset_out_of_range
// naming the nearest batch boundaries when `offset` is inside a batch.
sdk::task<result<uint64_t>> partition_log::batch_position(segment& s, int64_t offset) {
  SLUICE_ASSERT(offset >= s.base_offset && offset <= s.next_offset);
  SLUICE_ASSERT(s.written == s.size);  // everything is on disk
  const segment_index::location loc = s.index.locate(offset);
  uint64_t pos = loc.position;
  int64_t base = loc.offset;
  int64_t prev = -1;
  sdk::buffer chunk;
  uint64_t chunk_pos = 0, chunk_len = 0;
  while (base < offset) {
    if (pos + batch_header_bytes > s.size)
      co_return make(errc::corrupt, _name + ": " + s.log_path + " ends at byte " + std::to_string(pos) +
                                        " before offset " + std::to_string(offset));
    if (pos < chunk_pos || pos + batch_header_bytes > chunk_pos + chunk_len) {
      auto r = co_await read_aligned(s.fd, pos, std::min<uint64_t>(_cfg.read_chunk_bytes, s.size - pos), s.log_path);
      if (!r) co_return r.err();
      chunk = r.value().data;
      chunk_pos = align_down(pos);
      chunk_len = chunk.size();
      if (pos + batch_header_bytes > chunk_pos + chunk_len)
        co_return make(errc::corrupt, _name + ": " + s.log_path + ": short read at byte " + std::to_string(pos));
    }
    const batch_header h = decode_header(chunk.data() + (pos - chunk_pos));
    if (h.base_offset != base || h.batch_length < static_cast<int32_t>(batch_header_bytes - batch_length_field_end) ||
        h.last_offset_delta < 0 || pos + h.size_bytes() > s.size)
      co_return make(errc::corrupt, _name + ": " + s.log_path + " is corrupt at byte " + std::to_string(pos) +
                                        " (base offset " + std::to_string(h.base_offset) + " where " +
                                        std::to_string(base) + " belongs)");
    prev = base;
    base = h.last_offset() + 1;
    pos += h.size_bytes();
  }
  if (base == offset) co_return pos;
  SLUICE_ASSERT(prev >= 0 && prev < offset && offset < base);
  // The log start is a boundary too, even inside a batch.
  const int64_t lower = std::max(prev, _start_offset);
  co_return make(errc::offset_out_of_range, _name + ": offset " + std::to_string(offset) +
                                                " is inside the batch of offsets " + std::to_string(prev) + " to " +
                                                std::to_string(base - 1) +
                                                ", not at a batch boundary; the nearest boundaries are " +
                                                std::to_string(lower) + " and " + std::to_string(base));
}

sdk::task<result<void>> partition_log::truncate_suffix(int64_t offset) {
  if (_closed) co_return make(errc::closed, _name + ": log is closed");
  auto appending = co_await _append_mutex.lock();
  auto serial = co_await _delete_mutex.lock();
  if (_closed) co_return make(errc::closed, _name + ": log is closed");
  if (_failed) co_return _failure;
  if (offset < _start_offset || offset > _next_offset)
    co_return make(errc::offset_out_of_range,
                   _name + ": cannot truncate the log to end at offset " + std::to_string(offset) + ": outside [" +
                       std::to_string(_start_offset) + ", " + std::to_string(_next_offset) +
                       "]; the nearest boundaries are the log start " + std::to_string(_start_offset) +
                       " and the log end " + std::to_string(_next_offset));
  if (offset == _next_offset && _damaged_from < 0) co_return result<void>{};
  const int64_t was = _next_offset;
  co_await quiesce();
  result<void> r = _failure;
  if (_failed) {
  } else if (offset < _next_offset) {
    r = co_await cut_suffix(offset);
  } else {
    // Damage in the active segment: the log already ends at it, but the
    // damaged bytes and the valid batches after them are still in the file;
    // they become zeros (a crash meanwhile finds the damage again).
    r = co_await cut_segments(active(), active().size, offset);
    if (!r) r = fail(r.err());
  }
  release_sync_path();
  if (r && _damaged_from >= 0 && offset <= _damaged_from) {
    sdk::log_warn(_name + ": the damaged suffix from offset " + std::to_string(_damaged_from) +
                  " is cut; the log ends at " + std::to_string(offset) + " and takes appends again");
    _damaged_from = -1;
    _damage.clear();
  }
  if (r)
    sdk::log_info(_name + ": truncated to end at offset " + std::to_string(offset) + " (it ended at " +
                  std::to_string(was) + "), leader epoch " + std::to_string(_epochs.last_epoch()));
  co_return r;
}

// Removes everything from `offset` on. The new end is recorded in
// partition.meta first: from then on a crash or an I/O error is finished
// by the next open, and an I/O error makes the log read-only until then.
sdk::task<result<void>> partition_log::cut_suffix(int64_t offset) {
  SLUICE_ASSERT(offset >= _start_offset && offset < _next_offset);
  SLUICE_ASSERT(_written_offset == _next_offset && active().written == active().size);
  // Everything, when the start is the new end: the start may lie inside a
  // batch, which then goes too (the log continues empty at its start).
  const bool everything = offset == _start_offset;
  segment* s = nullptr;
  uint64_t pos = 0;
  if (!everything) {
    s = segment_for(offset);
    // A damaged closed segment ends before the next one starts: the cut may
    // be at its end (damaged_from()).
    SLUICE_ASSERT(s != nullptr && s->base_offset <= offset &&
                  (offset < s->next_offset || (offset == s->next_offset && _damaged_from == offset)));
    auto p = co_await batch_position(*s, offset);
    if (!p) co_return p.err();  // nothing has changed
    pos = p.value();
  }
  // What stays must be durable before the cut is recorded: after a power
  // loss the next open then finds every batch up to the recorded end. Only
  // the active segment can hold unsynced data (rolls sync the others);
  // the caller holds the sync path, so the sync is done here.
  if (_flushed_offset < offset) {
    ++_syncs;
    int32_t rc = fault_hook::instance().take(fault_op::sync);
    if (rc == 0) rc = co_await sdk::fdatasync(active().fd);
    if (rc < 0) co_return fail(-rc, "fdatasync " + active().log_path);
    _flushed_offset = _written_offset;
  }
  SLUICE_ASSERT(_flushed_offset >= offset);
  _epochs.truncate_suffix(offset);
  ++_epochs_version;
  if (auto r = co_await write_meta(offset); !r) {
    // The file may or may not hold the new end now: no append may follow.
    co_return fail(r.err());
  }
  // From here on the log ends at `offset` for every caller; reads in
  // flight stop at their next batch and leave the cache alone.
  ++_truncations;
  _next_offset = _written_offset = offset;
  _flushed_offset = std::min(_flushed_offset, offset);
  _cache->drop_from(this, offset);
  result<void> r;
  if (everything) {
    r = co_await reset_segments(offset);
  } else {
    r = co_await cut_segments(*s, pos, offset);
  }
  if (!r) co_return fail(r.err());
  // The cut segment was synced, the ones before it were at their roll.
  _flushed_offset = offset;
  SLUICE_ASSERT(active().next_offset == offset && active().size == active().written);
  SLUICE_ASSERT(_epochs.entries().empty() || _epochs.entries().back().start_offset < offset);
  // The record of the cut must go before anything is appended past it.
  if (auto w = co_await write_meta(); !w) co_return fail(w.err());
  co_return result<void>{};
}

// Cuts segment s at byte pos (offset `offset`) and deletes the segments
// after it, newest first: a crash leaves a prefix of the old log.
sdk::task<result<void>> partition_log::cut_segments(segment& s, uint64_t pos, int64_t offset) {
  SLUICE_ASSERT(pos <= s.size && offset >= s.base_offset);
  while (!is_active(s)) {
    auto last = std::prev(_segments.end());
    auto doomed = std::move(last->second);
    _segments.erase(last);
    SLUICE_ASSERT(doomed->base_offset > offset);
    // Their batches lie past the new end: a recycled file could continue the log with them.
    if (auto r = co_await delete_segment(std::move(doomed), /*recycle=*/false); !r) co_return r;
  }
  // New reads see the new end; older ones are waited for.
  s.size = s.written = pos;
  s.next_offset = s.written_next = offset;
  s.wbuf = sdk::buffer{};  // the next append reads the tail page back from the file
  co_await drain_readers(s);
  struct statx st{};
  int32_t rc = co_await sdk::statx(s.log_path.c_str(), 0, STATX_SIZE, &st);
  if (rc < 0) co_return io_error(-rc, "statx " + s.log_path);
  // Zeros from the cut to the end of the file, as at any segment's end: no
  // removed batch can be found again by a scan.
  if (auto z = co_await zero_from(s, pos, std::max<uint64_t>(st.stx_size, pos)); !z) co_return z;
  // fsync, not fdatasync: the punched range changes the file's block map.
  rc = fault_hook::instance().take(fault_op::sync);
  if (rc == 0) rc = co_await sdk::fsync(s.fd);
  if (rc < 0) co_return io_error(-rc, "fsync " + s.log_path);
  // A closed segment's index covers what is gone; the active one has none.
  rc = co_await sdk::unlink(s.index_path.c_str());
  if (rc < 0 && rc != -ENOENT) co_return io_error(-rc, "cannot delete " + s.index_path);
  // Its index (and max timestamp): rebuilt from what is left, verified.
  s.index = segment_index(s.base_offset, _cfg.index_interval_bytes);
  if (auto r = co_await recover_segment(s, /*last=*/true, scan_mode::scan); !r) co_return r;
  if (_failed) co_return _failure;
  if (s.size != pos || s.next_offset != offset)
    co_return make(errc::corrupt, _name + ": " + s.log_path + " cut at byte " + std::to_string(pos) + " (offset " +
                                      std::to_string(offset) + ") holds valid batches up to byte " +
                                      std::to_string(s.size) + " (offset " + std::to_string(s.next_offset) + ")");
  s.written = s.size;
  s.written_next = s.next_offset;
  co_return result<void>{};
}

// Replaces every segment by one empty segment at `offset`, newest first;
// only files wholly below `offset` are kept as spares.
sdk::task<result<void>> partition_log::reset_segments(int64_t offset) {
  while (!_segments.empty()) {
    auto last = std::prev(_segments.end());
    auto doomed = std::move(last->second);
    _segments.erase(last);
    const bool recycle = doomed->next_offset <= offset;
    if (auto r = co_await delete_segment(std::move(doomed), recycle); !r) co_return r;
  }
  if (auto r = co_await create_segment(offset); !r) co_return r;
  _next_offset = _written_offset = _flushed_offset = offset;
  _cache->drop(this);
  SLUICE_ASSERT(_segments.size() == 1 && active().base_offset == offset && active().size == 0);
  co_return result<void>{};
}

// truncate_prefix past the log end: the log empties and starts at
// `offset`. The new start is recorded first: from then on the next open
// finishes the reset (its start is past the end), and an I/O error makes
// the log read-only until then.
sdk::task<result<void>> partition_log::reset(int64_t offset) {
  SLUICE_ASSERT(offset > _next_offset && _syncing);
  const int64_t was = _next_offset;
  _start_offset = offset;
  _epochs.clear();
  ++_epochs_version;
  ++_truncations;
  if (auto r = co_await write_meta(); !r) co_return fail(r.err());
  auto r = co_await reset_segments(offset);
  if (!r) co_return fail(r.err());
  sdk::log_info(_name + ": emptied (it ended at " + std::to_string(was) + "); the log now starts at " +
                std::to_string(offset));
  co_return result<void>{};
}

sdk::task<result<void>> partition_log::retain(int64_t now, bool time_too) {
  if (_closed || (_cfg.retention_bytes < 0 && (!time_too || _cfg.retention_ms < 0))) co_return result<void>{};
  if (_damaged_from >= 0) co_return result<void>{};  // the repair's cut comes first
  auto serial = co_await _delete_mutex.lock();
  uint64_t total = 0;
  for (const auto& [b, s] : _segments) total += s->size;
  int64_t new_start = _start_offset;
  std::vector<int64_t> doomed;
  for (auto it = _segments.begin(); it != _segments.end() && std::next(it) != _segments.end(); ++it) {
    const segment& s = *it->second;
    const bool by_size = _cfg.retention_bytes >= 0 && total > static_cast<uint64_t>(_cfg.retention_bytes);
    const bool by_time = time_too && _cfg.retention_ms >= 0 && s.index.max_timestamp() >= 0 &&
                         s.index.max_timestamp() < now - _cfg.retention_ms;
    if (!by_size && !by_time) break;
    doomed.push_back(it->first);
    total -= s.size;
    new_start = std::max(new_start, s.next_offset);
  }
  if (doomed.empty()) co_return result<void>{};
  if (auto f = co_await flush_epoch_cover(new_start); !f) co_return f;
  _start_offset = new_start;
  _epochs.truncate_prefix(new_start);
  ++_epochs_version;
  if (auto r = co_await write_meta(); !r) co_return r;
  _cache->drop(this, new_start);
  for (int64_t base : doomed) {
    auto it = _segments.find(base);
    if (it == _segments.end()) continue;
    auto s = std::move(it->second);
    _segments.erase(it);
    sdk::log_info(_name + ": retention deletes " + s->log_path);
    if (auto r = co_await delete_segment(std::move(s), /*recycle=*/true); !r) co_return r;
  }
  co_return result<void>{};
}

sdk::task<void> partition_log::close() {
  if (_closed) co_return;
  auto guard = co_await _append_mutex.lock();
  _closed = true;
  while (_writing) co_await _written.wait();
  while (_syncing) co_await _synced.wait();
  co_await _tasks.close();
  if (!_segments.empty() && !_failed) {
    segment& a = active();
    if (a.fd >= 0 && co_await sdk::fdatasync(a.fd) == 0) _flushed_offset = _written_offset;
  }
  for (auto& [b, s] : _segments) {
    co_await s->readers->close();
    if (s->fd >= 0) co_await sdk::close(s->fd);
    s->fd = -1;
  }
  _cache->drop(this);
}

sdk::task<result<void>> partition_log::remove() {
  co_await close();
  for (auto& [b, s] : _segments) {
    co_await sdk::unlink(s->log_path.c_str());
    co_await sdk::unlink(s->index_path.c_str());
  }
  _segments.clear();
  for (const auto& spare : _spares) co_await sdk::unlink(spare.c_str());
  _spares.clear();
  const std::string meta = _dir + "/" + meta_file;
  co_await sdk::unlink(meta.c_str());
  const int32_t rc = co_await sdk::unlink(_dir.c_str(), AT_REMOVEDIR);
  if (rc < 0 && rc != -ENOENT) co_return io_error(-rc, "cannot remove " + _dir);
  co_return result<void>{};
}

}  // namespace sluice::storage
