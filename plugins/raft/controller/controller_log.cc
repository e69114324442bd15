#include "controller_log.h"

#include "crc32c.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace sluice::raft::controller {
namespace {

enum : uint8_t { kind_entry = 1, kind_hard = 2, kind_snapshot = 3 };
constexpr size_t record_head = 8;
constexpr uint32_t record_body_max = 64u << 20;

void put8(std::string& s, uint8_t v) { s.push_back(static_cast<char>(v)); }
void put32(std::string& s, uint32_t v) {
  for (int i = 0; i < 4; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void put64(std::string& s, uint64_t v) {
  for (int i = 0; i < 8; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void put_bytes(std::string& s, std::string_view b) {
  put32(s, static_cast<uint32_t>(b.size()));
  s.append(b);
}

std::string frame(const std::string& body) {
  SLUICE_ASSERT_MSG(body.size() <= record_body_max, "controller record too large");
  std::string out;
  out.reserve(record_head + body.size());
  put32(out, static_cast<uint32_t>(body.size()));
  put32(out, storage::crc32c(0, body.data(), body.size()));
  out += body;
  return out;
}

// A bounded little-endian reader.
struct reader {
  std::string_view s;
  size_t at = 0;
  bool ok = true;
  uint64_t get(int n) {
    if (s.size() - at < static_cast<size_t>(n)) {
      ok = false;
      return 0;
    }
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(s[at + static_cast<size_t>(i)]);
    at += static_cast<size_t>(n);
    return v;
  }
  std::string_view bytes() {
    const uint64_t n = get(4);
    if (!ok || s.size() - at < n) {
      ok = false;
      return {};
    }
    std::string_view v = s.substr(at, n);
    at += n;
    return v;
  }
};

error corrupt(const std::string& path, uint64_t at, const std::string& what) {
  return error{std::make_error_code(std::errc::invalid_argument),
               path + " is corrupt at byte " + std::to_string(at) + ": " + what +
                   "; restore the file from a backup, or remove this node's data directory and let it rejoin"};
}

error io_error(const std::string& what, const std::string& path, int32_t rc) {
  return error{std::error_code(-rc, std::generic_category()), what + " " + path + ": " + std::strerror(-rc)};
}

}  // namespace

std::string encode_entry_record(const entry& e) {
  std::string b;
  put8(b, kind_entry);
  put64(b, e.term.value());
  put64(b, e.index.value());
  put32(b, e.count);
  put8(b, static_cast<uint8_t>(e.type));
  put_bytes(b, e.data.view());
  return frame(b);
}

std::string encode_hard_record(const hard_state& hs) {
  std::string b;
  put8(b, kind_hard);
  put64(b, hs.term.value());
  put64(b, hs.vote.value());
  put64(b, hs.commit.value());
  return frame(b);
}

std::string encode_snapshot_record(const snapshot& s) {
  std::string b;
  put8(b, kind_snapshot);
  put64(b, s.meta.index.value());
  put64(b, s.meta.term.value());
  put_bytes(b, encode_membership(s.meta.members));
  put_bytes(b, s.data.view());
  return frame(b);
}

result<replay_result> replay(std::string_view bytes, memory_log& log, const std::string& path) {
  replay_result out;
  size_t at = 0;
  while (bytes.size() - at >= record_head) {
    reader h{bytes.substr(at, record_head)};
    const auto len = static_cast<uint32_t>(h.get(4));
    const auto crc = static_cast<uint32_t>(h.get(4));
    if (len > record_body_max || bytes.size() - at - record_head < len) break;  // torn
    const std::string_view body = bytes.substr(at + record_head, len);
    if (storage::crc32c(0, body.data(), body.size()) != crc) break;  // torn or never synced
    reader r{body};
    const auto kind = static_cast<uint8_t>(r.get(1));
    if (kind == kind_entry) {
      entry e;
      e.term = term_id(r.get(8));
      e.index = log_index(r.get(8));
      e.count = static_cast<uint32_t>(r.get(4));
      const auto type = static_cast<uint8_t>(r.get(1));
      const std::string_view data = r.bytes();
      if (!r.ok || r.at != body.size()) return corrupt(path, at, "an entry record of the wrong size");
      if (type > static_cast<uint8_t>(entry_type::noop) || e.count == 0)
        return corrupt(path, at, "an entry with type " + std::to_string(type) + " and count " + std::to_string(e.count));
      e.type = static_cast<entry_type>(type);
      e.data = payload(std::string(data));
      if (e.index <= log.stored_snapshot().meta.index || e.index > log.last_index() + 1)
        return corrupt(path, at, "entry " + std::to_string(e.index.value()) + " does not continue the log (last " +
                                     std::to_string(log.last_index().value()) + ")");
      if (e.index <= log.last_index()) {
        // Replacing: it must start where a stored entry starts.
        bool boundary = false;
        for (const entry& s : log.stored_entries()) boundary |= s.index == e.index;
        if (!boundary) return corrupt(path, at, "entry " + std::to_string(e.index.value()) + " splits a stored entry");
      }
      if (e.type == entry_type::conf_change && !decode_membership(e.data.view()))
        return corrupt(path, at, "a conf_change entry without a valid membership");
      log.append({e});
    } else if (kind == kind_hard) {
      hard_state hs;
      hs.term = term_id(r.get(8));
      hs.vote = node_id(r.get(8));
      hs.commit = log_index(r.get(8));
      if (!r.ok || r.at != body.size()) return corrupt(path, at, "a hard-state record of the wrong size");
      log.set_hard_state(hs);
    } else if (kind == kind_snapshot) {
      snapshot s;
      s.meta.index = log_index(r.get(8));
      s.meta.term = term_id(r.get(8));
      const std::string_view members = r.bytes();
      const std::string_view data = r.bytes();
      if (!r.ok || r.at != body.size()) return corrupt(path, at, "a snapshot record of the wrong size");
      auto m = decode_membership(members);
      if (!m) return corrupt(path, at, "a snapshot with an invalid membership: " + m.err().message);
      if (s.meta.index < log.stored_snapshot().meta.index)
        return corrupt(path, at, "a snapshot older than the previous one");
      s.meta.members = std::move(m.value());
      s.data = payload(std::string(data));
      log.install_snapshot(s);
    } else {
      return corrupt(path, at, "unknown record kind " + std::to_string(kind));
    }
    at += record_head + len;
    ++out.records;
  }
  out.valid_bytes = at;
  return out;
}

sdk::task<result<void>> controller_log::open() {
  const int32_t fd = co_await sdk::openat(_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) co_return io_error("cannot open", _path, fd);
  _fd = fd;
  std::string bytes;
  for (;;) {
    const size_t at = bytes.size();
    bytes.resize(at + (1u << 20));
    const int32_t n = co_await sdk::read(_fd, bytes.data() + at, 1u << 20, at);
    if (n < 0) co_return io_error("cannot read", _path, n);
    bytes.resize(at + static_cast<size_t>(n));
    if (n == 0) break;
  }
  auto r = replay(bytes, _log, _path);
  if (!r) co_return r.err();
  _size = r.value().valid_bytes;
  if (_size != bytes.size()) {
    sdk::log_warn("raft: " + _path + ": cutting " + std::to_string(bytes.size() - _size) +
                  " bytes of a torn last record (never acknowledged)");
    if (::ftruncate(_fd, static_cast<off_t>(_size)) != 0)
      co_return io_error("cannot truncate", _path, -errno);
    const int32_t s = co_await sdk::fdatasync(_fd);
    if (s < 0) co_return io_error("cannot fdatasync", _path, s);
  }
  // The file's directory entry must be durable before anything it holds counts.
  const std::string dir = _path.substr(0, _path.rfind('/'));
  if (const int32_t ds = co_await sdk::fsync_dir(dir); ds < 0) co_return io_error("cannot fsync", dir, ds);
  co_return result<void>{};
}

sdk::task<result<void>> controller_log::write_all(const std::string& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    const int32_t w = co_await sdk::write(_fd, bytes.data() + done, bytes.size() - done, _size + done);
    if (w <= 0) co_return io_error("cannot write", _path, w < 0 ? w : -EIO);
    done += static_cast<size_t>(w);
  }
  _size += bytes.size();
  const int32_t s = co_await sdk::fdatasync(_fd);
  if (s < 0) co_return io_error("cannot fdatasync", _path, s);
  co_return result<void>{};
}

sdk::task<result<void>> controller_log::persist(const ready& rd) {
  std::string out;
  if (rd.snap) out += encode_snapshot_record(*rd.snap);
  for (const entry& e : rd.entries) out += encode_entry_record(e);
  const hard_state before = _log.initial_hard_state();
  // The commit index may be persisted lazily: a record only when the term or vote changed.
  if (rd.hard && (rd.hard->term != before.term || rd.hard->vote != before.vote)) out += encode_hard_record(*rd.hard);
  if (!out.empty()) {
    auto w = co_await write_all(out);
    if (!w) co_return w.err();
  }
  _log.persist(rd);
  co_return result<void>{};
}

sdk::task<void> controller_log::close() {
  if (_fd >= 0) co_await sdk::close(std::exchange(_fd, -1));
}

}  // namespace sluice::raft::controller
