#include "hard_state_file.h"

#include "crc32c.h"

#include <fcntl.h>

#include <cerrno>
#include <cstring>

namespace sluice::raft::partition {
namespace {

constexpr uint32_t slot_magic = 0x53485253;  // "SRHS" read little-endian
constexpr uint32_t slot_version = 1;
constexpr size_t slot_used = 4 + 4 + 8 * 5;  // magic, version, sequence, term, vote, snapshot index and term

void put32(std::string& s, uint32_t v) {
  for (int i = 0; i < 4; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void put64(std::string& s, uint64_t v) {
  for (int i = 0; i < 8; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
uint32_t get32(const uint8_t* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
uint64_t get64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

error io_error(const std::string& what, const std::string& path, int32_t rc) {
  return error{std::error_code(-rc, std::generic_category()), what + " " + path + ": " + std::strerror(-rc)};
}

}  // namespace

std::string encode_hard_state_slot(const persisted_state& s, uint64_t sequence) {
  std::string out;
  out.reserve(hard_state_slot_bytes);
  put32(out, slot_magic);
  put32(out, slot_version);
  put64(out, sequence);
  put64(out, s.term.value());
  put64(out, s.vote.value());
  put64(out, s.snapshot_index.value());
  put64(out, s.snapshot_term.value());
  SLUICE_ASSERT(out.size() == slot_used);
  put32(out, storage::crc32c(0, out.data(), out.size()));
  out.resize(hard_state_slot_bytes, '\0');
  return out;
}

std::optional<std::pair<persisted_state, uint64_t>> decode_hard_state_slot(const uint8_t* p, size_t len) {
  if (len < slot_used + 4) return std::nullopt;
  if (get32(p) != slot_magic || get32(p + 4) != slot_version) return std::nullopt;
  if (get32(p + slot_used) != storage::crc32c(0, p, slot_used)) return std::nullopt;
  persisted_state s;
  const uint64_t seq = get64(p + 8);
  s.term = term_id(get64(p + 16));
  s.vote = node_id(get64(p + 24));
  s.snapshot_index = log_index(get64(p + 32));
  s.snapshot_term = term_id(get64(p + 40));
  return std::make_pair(s, seq);
}

sdk::task<result<persisted_state>> hard_state_file::open() {
  const int32_t fd = co_await sdk::openat(_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) co_return io_error("cannot open", _path, fd);
  _fd = fd;
  // The file's directory entry must be durable before a vote is: a vote
  // forgotten after a crash would let this node vote twice in one term.
  const std::string dir = _path.substr(0, _path.rfind('/'));
  if (const int32_t ds = co_await sdk::fsync_dir(dir); ds < 0) co_return io_error("cannot fsync", dir, ds);
  std::string buf(2 * hard_state_slot_bytes, '\0');
  const int32_t n = co_await sdk::read(_fd, buf.data(), buf.size(), 0);
  if (n < 0) co_return io_error("cannot read", _path, n);
  _cur = persisted_state{};
  _seq = 0;
  for (size_t slot = 0; slot < 2; ++slot) {
    if (static_cast<size_t>(n) < (slot + 1) * hard_state_slot_bytes) break;
    auto d = decode_hard_state_slot(reinterpret_cast<const uint8_t*>(buf.data()) + slot * hard_state_slot_bytes,
                                    hard_state_slot_bytes);
    if (d && d->second >= _seq) {
      _cur = d->first;
      _seq = d->second;
    }
  }
  co_return _cur;
}

sdk::task<result<void>> hard_state_file::write(const persisted_state& s) {
  SLUICE_ASSERT_MSG(_fd >= 0, "hard state file is open");
  SLUICE_ASSERT_MSG(s.term >= _cur.term, "a persisted term never decreases");
  const uint64_t seq = _seq + 1;
  const std::string slot = encode_hard_state_slot(s, seq);
  const int32_t w = co_await sdk::write(_fd, slot.data(), slot.size(), (seq % 2) * hard_state_slot_bytes);
  if (w != static_cast<int32_t>(slot.size())) co_return io_error("cannot write", _path, w < 0 ? w : -EIO);
  const int32_t f = co_await sdk::fdatasync(_fd);
  if (f < 0) co_return io_error("cannot fdatasync", _path, f);
  _seq = seq;
  _cur = s;
  co_return result<void>{};
}

sdk::task<void> hard_state_file::close() {
  if (_fd >= 0) co_await sdk::close(std::exchange(_fd, -1));
}

sdk::task<void> hard_state_file::remove() {
  co_await close();
  co_await sdk::unlink(_path.c_str());
}

}  // namespace sluice::raft::partition
