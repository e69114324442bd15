#include "hard_state_file.h"

#include <fcntl.h>

#include <cerrno>
#include <cstring>

namespace sluice::raft::partition {
namespace {

error io_error(const std::string& what, const std::string& path, int32_t rc) {
  return error{std::error_code(-rc, std::generic_category()), what + " " + path + ": " + std::strerror(-rc)};
}

}  // namespace

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
