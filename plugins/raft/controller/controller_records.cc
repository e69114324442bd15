// The controller log's record format (controller_log.h): pure, unit-tested
// and fuzzed.
#include "controller_records.h"

#include "crc32c.h"

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

}  // namespace sluice::raft::controller
