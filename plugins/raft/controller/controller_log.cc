#include "controller_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace sluice::raft::controller {
namespace {

error io_error(const std::string& what, const std::string& path, int32_t rc) {
  return error{std::error_code(-rc, std::generic_category()), what + " " + path + ": " + std::strerror(-rc)};
}

}  // namespace

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
  auto guard = co_await _mu.lock();
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

sdk::task<result<void>> controller_log::compact(log_index index, std::string data) {
  auto guard = co_await _mu.lock();
  if (index <= _log.stored_snapshot().meta.index || index > _log.last_index()) co_return result<void>{};
  _log.compact(index, payload(std::move(data)));
  std::string out = encode_hard_record(_log.initial_hard_state());
  out += encode_snapshot_record(_log.stored_snapshot());
  for (const entry& e : _log.stored_entries()) out += encode_entry_record(e);
  // If this fails the old file stands: it holds everything the snapshot does.
  if (const sdk::replace_file_error e = co_await sdk::replace_file(_path, out))
    co_return io_error(std::string("cannot ") + e.step, _path, e.rc);
  const int32_t nfd = co_await sdk::openat(_path.c_str(), O_RDWR | O_CLOEXEC, 0);
  if (nfd < 0) co_return io_error("cannot open", _path, nfd);
  if (_fd >= 0) (void)co_await sdk::close(_fd);
  _fd = nfd;
  _size = out.size();
  co_return result<void>{};
}

sdk::task<void> controller_log::close() {
  if (_fd >= 0) co_await sdk::close(std::exchange(_fd, -1));
}

}  // namespace sluice::raft::controller
