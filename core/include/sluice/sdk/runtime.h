// The SDK's binding to the host: awaitable I/O, timers, yield, buffers,
// cross-shard service calls, gates, logging and metrics, all expressed over
// the C host API (sluice/abi/sluice_abi.h).
//
// The same header serves the core (bound to the host's own table) and every
// plugin (bound in on_configure): code written against it runs unchanged on
// a real io_uring host or on a simulated one.
//
// Thread-safety: awaitables, gates and buffers' *handles* are shard-local;
// buffer reference counts are atomic so a handle may be dropped on any shard.
#pragma once

#include <sluice/abi/sluice_abi.h>
#include <sluice/sdk/assert.h>
#include <sluice/sdk/task.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sys/socket.h>

#include <cerrno>
#include <coroutine>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice::sdk {

// ---- binding -------------------------------------------------------------
// One per shared object: the host binds itself at start-up, a plugin in
// on_configure (SLUICE_PLUGIN does it). Plugins are built with hidden
// visibility and loaded RTLD_LOCAL, so each has its own copy.
struct binding {
  const sluice_host_api* api = nullptr;
  sluice_host* host = nullptr;
  sluice_plugin_ctx* ctx = nullptr;
};
inline binding g_binding;

inline void bind(const sluice_host_api* api, sluice_host* host, sluice_plugin_ctx* ctx) noexcept {
  SLUICE_ASSERT(api != nullptr && host != nullptr);
  SLUICE_ASSERT_MSG(api->struct_size >= sizeof(sluice_host_api), "host API table too old");
  g_binding = {api, host, ctx};
}
inline const sluice_host_api& api() noexcept {
  SLUICE_ASSERT_MSG(g_binding.api != nullptr, "sluice SDK used before bind()");
  return *g_binding.api;
}
inline sluice_host* host() noexcept { return g_binding.host; }

inline uint32_t shard_count() noexcept { return api().shard_count(host()); }
inline uint32_t this_shard() noexcept { return api().current_shard(host()); }
inline uint64_t now_ns() noexcept { return api().now_ns(host()); }
inline int32_t node_id() noexcept { return api().node_id(host()); }

// ---- logging -------------------------------------------------------------
inline void log(sluice_log_level level, std::string_view msg) noexcept {
  api().log(g_binding.ctx, level, msg.data(), msg.size());
}
inline void log_info(std::string_view m) noexcept { log(SLUICE_LOG_INFO, m); }
inline void log_warn(std::string_view m) noexcept { log(SLUICE_LOG_WARN, m); }
inline void log_error(std::string_view m) noexcept { log(SLUICE_LOG_ERROR, m); }
inline void log_debug(std::string_view m) noexcept { log(SLUICE_LOG_DEBUG, m); }

// ---- buffers -------------------------------------------------------------
// A shared handle to a ref-counted sluice_buf: copying shares, never copies
// bytes.
class buffer {
 public:
  buffer() noexcept = default;
  // Adopts one reference.
  explicit buffer(sluice_buf* b) noexcept : _buf(b) {}
  static buffer allocate(uint64_t capacity, uint32_t alignment = 16) {
    sluice_buf* b = api().buf_alloc(host(), capacity, alignment);
    SLUICE_ASSERT_MSG(b != nullptr, "buffer allocation failed");
    return buffer(b);
  }
  // Takes a new reference to a borrowed buffer.
  static buffer share(sluice_buf* b) noexcept {
    if (b) api().buf_ref(b);
    return buffer(b);
  }
  buffer(const buffer& o) noexcept : _buf(o._buf) {
    if (_buf) api().buf_ref(_buf);
  }
  buffer(buffer&& o) noexcept : _buf(std::exchange(o._buf, nullptr)) {}
  buffer& operator=(buffer o) noexcept {
    std::swap(_buf, o._buf);
    return *this;
  }
  ~buffer() {
    if (_buf) api().buf_unref(_buf);
  }

  explicit operator bool() const noexcept { return _buf != nullptr; }
  sluice_buf* get() const noexcept { return _buf; }
  uint8_t* data() const noexcept { return _buf->data; }
  uint64_t size() const noexcept { return _buf->size; }
  uint64_t capacity() const noexcept { return _buf->capacity; }
  void set_size(uint64_t n) noexcept {
    SLUICE_ASSERT(n <= _buf->capacity);
    _buf->size = n;
  }

 private:
  sluice_buf* _buf = nullptr;
};

// ---- I/O -----------------------------------------------------------------
// Awaitable for one operation on the calling shard's ring. The completion
// record lives in the awaiting coroutine's frame: no allocation per I/O.
// With an abort_source, request_abort() cancels the pending operation,
// which then completes with -ECANCELED.
class io_awaitable final : private sluice_completion {
 public:
  io_awaitable(const sluice_io_op& op, abort_source* as) noexcept : _op(op), _as(as) {
    on_complete = &io_awaitable::complete;
    host_scratch[0] = host_scratch[1] = 0;
  }
  io_awaitable(const io_awaitable&) = delete;
  io_awaitable& operator=(const io_awaitable&) = delete;

  bool await_ready() noexcept {
    if (_as && _as->abort_requested()) {
      _result = -ECANCELED;
      return true;
    }
    return false;
  }
  bool await_suspend(std::coroutine_handle<> h) noexcept {
    _waiter = h;
    int32_t r = api().io_submit(host(), &_op, this);
    if (r < 0) {
      _result = r;
      return false;
    }
    if (_as) _sub.subscribe(*_as, &io_awaitable::abort, this);
    return true;
  }
  int32_t await_resume() const noexcept { return _result; }

 private:
  static void complete(sluice_completion* c, int32_t result) noexcept {
    auto* self = static_cast<io_awaitable*>(c);
    self->_sub.unsubscribe();
    self->_result = result;
    self->_waiter.resume();
  }
  static void abort(void* user) noexcept {
    auto* self = static_cast<io_awaitable*>(user);
    api().io_cancel(host(), self);
  }

  sluice_io_op _op;
  abort_source* _as;
  abort_source::subscription _sub;
  std::coroutine_handle<> _waiter;
  int32_t _result = 0;
};

inline sluice_io_op make_op(sluice_io_opcode code, int32_t fd) noexcept {
  sluice_io_op op{};
  op.opcode = code;
  op.fd = fd;
  return op;
}

// Each returns the kernel's result: >= 0 on success, -errno on failure.
inline io_awaitable accept(int32_t fd, abort_source* as = nullptr) noexcept {
  return io_awaitable(make_op(SLUICE_IO_ACCEPT, fd), as);
}
inline io_awaitable connect(int32_t fd, const void* addr, uint32_t addrlen,
                            abort_source* as = nullptr) noexcept {
  auto op = make_op(SLUICE_IO_CONNECT, fd);
  op.addr = const_cast<void*>(addr);
  op.len = addrlen;
  return io_awaitable(op, as);
}
inline io_awaitable recv(int32_t fd, void* buf, uint64_t len, abort_source* as = nullptr) noexcept {
  auto op = make_op(SLUICE_IO_RECV, fd);
  op.buf = buf;
  op.len = len;
  return io_awaitable(op, as);
}
inline io_awaitable send(int32_t fd, const void* buf, uint64_t len,
                         abort_source* as = nullptr) noexcept {
  auto op = make_op(SLUICE_IO_SEND, fd);
  op.buf = const_cast<void*>(buf);
  op.len = len;
  return io_awaitable(op, as);
}
// Gathered send of msg's iovecs; msg and the iovec array must outlive the
// operation (keep them in the awaiting coroutine's frame).
inline io_awaitable sendmsg(int32_t fd, const struct msghdr* msg, abort_source* as = nullptr) noexcept {
  auto op = make_op(SLUICE_IO_SENDMSG, fd);
  op.addr = const_cast<struct msghdr*>(msg);
  return io_awaitable(op, as);
}
inline io_awaitable read(int32_t fd, void* buf, uint64_t len, uint64_t offset,
                         abort_source* as = nullptr) noexcept {
  auto op = make_op(SLUICE_IO_READ, fd);
  op.buf = buf;
  op.len = len;
  op.offset = offset;
  return io_awaitable(op, as);
}
inline io_awaitable write(int32_t fd, const void* buf, uint64_t len, uint64_t offset,
                          abort_source* as = nullptr) noexcept {
  auto op = make_op(SLUICE_IO_WRITE, fd);
  op.buf = const_cast<void*>(buf);
  op.len = len;
  op.offset = offset;
  return io_awaitable(op, as);
}
inline io_awaitable fsync(int32_t fd) noexcept { return io_awaitable(make_op(SLUICE_IO_FSYNC, fd), nullptr); }
inline io_awaitable fdatasync(int32_t fd) noexcept {
  return io_awaitable(make_op(SLUICE_IO_FDATASYNC, fd), nullptr);
}
inline io_awaitable close(int32_t fd) noexcept { return io_awaitable(make_op(SLUICE_IO_CLOSE, fd), nullptr); }
// path must stay valid until the operation completes.
inline io_awaitable openat(const char* path, int32_t flags, uint32_t mode) noexcept {
  auto op = make_op(SLUICE_IO_OPENAT, -1);
  op.buf = const_cast<char*>(path);
  op.flags = static_cast<uint32_t>(flags);
  op.len = mode;
  return io_awaitable(op, nullptr);
}
inline io_awaitable fallocate(int32_t fd, uint32_t mode, uint64_t offset, uint64_t len) noexcept {
  auto op = make_op(SLUICE_IO_FALLOCATE, fd);
  op.flags = mode;
  op.offset = offset;
  op.len = len;
  return io_awaitable(op, nullptr);
}

// Paths must stay valid until the operation completes.
inline io_awaitable mkdir(const char* path, uint32_t mode) noexcept {
  auto op = make_op(SLUICE_IO_MKDIRAT, -1);
  op.buf = const_cast<char*>(path);
  op.len = mode;
  return io_awaitable(op, nullptr);
}
inline io_awaitable unlink(const char* path, int32_t flags = 0) noexcept {
  auto op = make_op(SLUICE_IO_UNLINKAT, -1);
  op.buf = const_cast<char*>(path);
  op.flags = static_cast<uint32_t>(flags);
  return io_awaitable(op, nullptr);
}
inline io_awaitable rename(const char* from, const char* to) noexcept {
  auto op = make_op(SLUICE_IO_RENAMEAT, -1);
  op.buf = const_cast<char*>(from);
  op.addr = const_cast<char*>(to);
  return io_awaitable(op, nullptr);
}
// out is a struct statx*, valid until completion.
inline io_awaitable statx(const char* path, int32_t flags, uint32_t mask, void* out) noexcept {
  auto op = make_op(SLUICE_IO_STATX, -1);
  op.buf = const_cast<char*>(path);
  op.flags = static_cast<uint32_t>(flags);
  op.len = mask;
  op.addr = out;
  return io_awaitable(op, nullptr);
}
// Makes a directory's entries durable (a file created, renamed or removed
// in it): open, fsync, close. Returns 0 or -errno.
inline task<int32_t> fsync_dir(const std::string& dir) {
  const int32_t fd = co_await openat(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
  if (fd < 0) co_return fd;
  const int32_t rc = co_await fsync(fd);
  (void)co_await close(fd);
  co_return rc;
}

// Creates a directory and makes its entry durable (an fsync of its parent),
// as POSIX requires before anything in it can count: without it a power
// loss may take the new directory with every file in it. An existing
// directory is fine (its parent is fsynced again: a crash may have left the
// entry created but not durable). Returns 0 or -errno.
inline task<int32_t> mkdir_durable(const std::string& path, uint32_t mode = 0755) {
  const int32_t rc = co_await mkdir(path.c_str(), mode);
  if (rc < 0 && rc != -EEXIST) co_return rc;
  const size_t slash = path.rfind('/');
  // A named local: GCC 12 destroys a temporary in a co_await operand twice.
  const std::string parent = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  co_return co_await fsync_dir(parent);
}

// The blocking form, with every missing parent too (mkdir -p), for start-up
// code that runs before the shards serve. Returns 0 or -errno.
inline int32_t mkdirs_durable_blocking(const std::string& path, uint32_t mode = 0755) {
  const auto fsync_parent = [](const std::string& p) {
    const size_t slash = p.rfind('/');
    const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : p.substr(0, slash));
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -errno;
    const int rc = ::fsync(fd) == 0 ? 0 : -errno;
    ::close(fd);
    return rc;
  };
  for (size_t at = path.find('/', 1);; at = path.find('/', at + 1)) {
    const std::string part = at == std::string::npos ? path : path.substr(0, at);
    if (!part.empty() && part != "/") {
      if (::mkdir(part.c_str(), mode) != 0 && errno != EEXIST) return -errno;
      if (const int rc = fsync_parent(part); rc < 0) return rc;
    }
    if (at == std::string::npos) return 0;
  }
}

// What replace_file() did when it failed, for the error message.
struct replace_file_error {
  int32_t rc = 0;       // -errno; 0: success
  const char* step = "";  // "create", "write", "fdatasync", "rename", "fsync directory"
  explicit operator bool() const noexcept { return rc < 0; }
};

// Replaces the file at `path` with `bytes`, durably and atomically: writes
// <path>.tmp, fdatasyncs it, renames it over `path` and fsyncs the
// directory. A crash leaves the old file or the new one, whole.
inline task<replace_file_error> replace_file(const std::string& path, std::string_view bytes) {
  const std::string tmp = path + ".tmp";
  const int32_t fd = co_await openat(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) co_return replace_file_error{fd, "create"};
  size_t done = 0;
  int32_t rc = 0;
  while (done < bytes.size()) {
    rc = co_await write(fd, bytes.data() + done, bytes.size() - done, done);
    if (rc <= 0) break;
    done += static_cast<size_t>(rc);
  }
  const int32_t sync = done == bytes.size() ? co_await fdatasync(fd) : 0;
  (void)co_await close(fd);
  if (done != bytes.size()) co_return replace_file_error{rc < 0 ? rc : -EIO, "write"};
  if (sync < 0) co_return replace_file_error{sync, "fdatasync"};
  if (const int32_t r = co_await rename(tmp.c_str(), path.c_str()); r < 0) co_return replace_file_error{r, "rename"};
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  if (const int32_t r = co_await fsync_dir(dir); r < 0) co_return replace_file_error{r, "fsync directory"};
  co_return replace_file_error{};
}

// Sleeps for ns nanoseconds. Returns -ETIME when the time passed, or
// -ECANCELED when as was aborted first.
inline io_awaitable sleep_ns(uint64_t ns, abort_source* as = nullptr) noexcept {
  auto op = make_op(SLUICE_IO_TIMEOUT, -1);
  op.timeout_ns = ns;
  return io_awaitable(op, as);
}
inline io_awaitable sleep_ms(uint64_t ms, abort_source* as = nullptr) noexcept {
  return sleep_ns(ms * 1'000'000ull, as);
}

// Resumes a coroutine from a posted completion (next loop turn).
class posted_resume final : private sluice_completion {
 public:
  posted_resume() noexcept {
    on_complete = &posted_resume::complete;
    host_scratch[0] = host_scratch[1] = 0;
  }
  void set(std::coroutine_handle<> h) noexcept { _waiter = h; }
  void post() noexcept { api().post(host(), this); }
  void wait_channel(uint32_t shard) noexcept { api().wait_channel(host(), shard, this); }

 private:
  static void complete(sluice_completion* c, int32_t) noexcept {
    static_cast<posted_resume*>(c)->_waiter.resume();
  }
  std::coroutine_handle<> _waiter;
};

// Lets the other ready tasks of this shard run, then resumes.
inline auto yield() noexcept {
  struct awaiter {
    posted_resume _p;
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) noexcept {
      _p.set(h);
      _p.post();
    }
    void await_resume() const noexcept {}
  };
  return awaiter{};
}

// ---- gate ----------------------------------------------------------------
// Tracks in-flight work so stop() can wait for it: each piece of work holds
// the gate open; close() refuses new entries and resumes once all left.
class gate {
 public:
  class holder {
   public:
    holder() noexcept = default;
    explicit holder(gate* g) noexcept : _g(g) {}
    holder(holder&& o) noexcept : _g(std::exchange(o._g, nullptr)) {}
    holder& operator=(holder&& o) noexcept {
      release();
      _g = std::exchange(o._g, nullptr);
      return *this;
    }
    ~holder() { release(); }
    explicit operator bool() const noexcept { return _g != nullptr; }
    void release() noexcept {
      if (_g) std::exchange(_g, nullptr)->leave();
    }

   private:
    gate* _g = nullptr;
  };

  gate() noexcept = default;
  gate(const gate&) = delete;
  gate& operator=(const gate&) = delete;
  ~gate() { SLUICE_ASSERT_MSG(_count == 0, "gate destroyed with work inside"); }

  // An empty holder when the gate is closed.
  holder try_enter() noexcept {
    if (_closed) return holder{};
    ++_count;
    return holder{this};
  }
  bool is_closed() const noexcept { return _closed; }
  uint64_t count() const noexcept { return _count; }

  // Resumes (on a later loop turn) once everything inside has left.
  auto close() noexcept {
    SLUICE_ASSERT(!_closed);
    _closed = true;
    struct awaiter {
      gate* _g;
      bool await_ready() const noexcept { return _g->_count == 0; }
      void await_suspend(std::coroutine_handle<> h) noexcept { _g->_closer.set(h); }
      void await_resume() const noexcept {}
    };
    return awaiter{this};
  }

 private:
  void leave() noexcept {
    SLUICE_ASSERT(_count > 0);
    if (--_count == 0 && _closed) _closer.post();
  }
  uint64_t _count = 0;
  bool _closed = false;
  posted_resume _closer;
};

// ---- services ------------------------------------------------------------
// An owned message: bytes are copied in, the buffer is shared.
struct message {
  uint32_t type = 0;
  std::string bytes;
  buffer buf;

  static message from(const sluice_message* m) {
    message out;
    if (m) {
      out.type = m->type;
      if (m->bytes_len) out.bytes.assign(reinterpret_cast<const char*>(m->bytes), m->bytes_len);
      out.buf = buffer::share(m->buf);
    }
    return out;
  }
  sluice_message view() const noexcept {
    sluice_message v{};
    v.type = type;
    v.bytes = reinterpret_cast<const uint8_t*>(bytes.data());
    v.bytes_len = bytes.size();
    v.buf = buf.get();
    return v;
  }
};

struct reply {
  int32_t status = 0;  // 0, a handler status, or SLUICE_ERR_*
  message msg;
};

using service_fn = std::function<task<reply>(uint32_t shard, message req)>;

namespace detail {
// The function objects behind this shared object's services; freed when the
// plugin is destroyed (all shards have stopped by then).
inline std::vector<std::unique_ptr<service_fn>> g_services;

inline void service_trampoline(void* user, uint32_t shard, const sluice_message* req,
                               sluice_responder* responder) {
  auto* fn = static_cast<service_fn*>(user);
  spawn([](service_fn* fn, uint32_t shard, message req, sluice_responder* r) -> task<void> {
    reply rep = co_await (*fn)(shard, std::move(req));
    sluice_message v = rep.msg.view();
    api().respond(host(), r, rep.status, &v);
  }(fn, shard, message::from(req), responder));
}
}  // namespace detail

// During configure: registers fn, served on every shard, under name. The
// function object lives as long as the process. Returns the service id or
// a negative SLUICE_ERR_*.
inline int32_t register_service(const char* name, service_fn fn) {
  auto owned = std::make_unique<service_fn>(std::move(fn));
  int32_t id = api().register_service(g_binding.ctx, name, &detail::service_trampoline, owned.get());
  if (id >= 0) detail::g_services.push_back(std::move(owned));
  return id;
}
inline int32_t lookup_service(const char* name) noexcept {
  return api().lookup_service(host(), name);
}

// Sends req to service on shard and waits for the reply. Waits (without
// busy looping) while the channel to that shard is full.
inline task<reply> call(int32_t service, uint32_t shard, const message& req) {
  struct reply_slot final : sluice_reply {
    reply _r;
    std::coroutine_handle<> _waiter;
    static void on(sluice_reply* self, int32_t status, const sluice_message* msg) {
      auto* s = static_cast<reply_slot*>(self);
      s->_r.status = status;
      s->_r.msg = message::from(msg);
      s->_waiter.resume();
    }
  };
  reply_slot slot;
  slot.on_reply = &reply_slot::on;
  slot.reserved = nullptr;
  sluice_message v = req.view();
  struct call_awaiter {
    reply_slot* _slot;
    const sluice_message* _v;
    int32_t _service;
    uint32_t _shard;
    int32_t _rc = 0;
    bool await_ready() const noexcept { return false; }
    bool await_suspend(std::coroutine_handle<> h) noexcept {
      _slot->_waiter = h;
      _rc = api().call(host(), _service, _shard, _v, _slot);
      return _rc == 0;
    }
    int32_t await_resume() const noexcept { return _rc; }
  };
  for (;;) {
    int32_t rc = co_await call_awaiter{&slot, &v, service, shard};
    if (rc == 0) break;
    if (rc != SLUICE_ERR_QUEUE_FULL) {
      slot._r.status = rc;
      break;
    }
    struct space_awaiter {
      uint32_t _shard;
      posted_resume _p;
      bool await_ready() const noexcept { return false; }
      void await_suspend(std::coroutine_handle<> h) noexcept {
        _p.set(h);
        _p.wait_channel(_shard);
      }
      void await_resume() const noexcept {}
    };
    co_await space_awaiter{shard, {}};
  }
  co_return std::move(slot._r);
}

// ---- running a plugin's own code on another shard --------------------------
// Seastar's submit_to for one plugin: run_on(shard, fn) runs fn on that
// shard and resumes the caller once it finished. The closure travels by
// pointer (both ends are the same shared object), so it may capture the
// caller's locals by reference: the caller waits. Results come back through
// captures. Registered once, during configure, under a name unique to the
// plugin ("kafka.invoke").
class shard_invoker {
 public:
  void init(const char* service_name) {
    _service = register_service(service_name, [](uint32_t, message req) -> task<reply> {
      reply rep;
      std::function<task<void>()>* fn = nullptr;
      if (req.bytes.size() != sizeof(fn)) {
        rep.status = SLUICE_ERR_INVALID;
        co_return rep;
      }
      std::memcpy(&fn, req.bytes.data(), sizeof(fn));
      co_await (*fn)();
      co_return rep;
    });
    if (_service < 0) throw std::runtime_error(std::string("cannot register service ") + service_name);
  }
  // 0, or the SLUICE_ERR_* of a call that could not be delivered (the
  // target is shutting down): then fn did not run.
  task<int32_t> run_on(uint32_t shard, std::function<task<void>()> fn) const {
    if (shard == this_shard()) {
      co_await fn();
      co_return 0;
    }
    message req;
    auto* p = &fn;
    req.bytes.assign(reinterpret_cast<const char*>(&p), sizeof(p));
    reply rep = co_await call(_service, shard, req);
    co_return rep.status;
  }

 private:
  int32_t _service = -1;
};

// ---- metrics -------------------------------------------------------------
class metric {
 public:
  metric() noexcept = default;
  explicit metric(sluice_metric* m) noexcept : _m(m) {}
  void add(int64_t v = 1) const noexcept { api().metric_add(_m, v); }
  void set(int64_t v) const noexcept { api().metric_set(_m, v); }
  void record(uint64_t v) const noexcept { api().metric_add(_m, static_cast<int64_t>(v)); }

 private:
  sluice_metric* _m = nullptr;
};
inline metric register_metric(sluice_metric_kind kind, const char* name, const char* help) {
  sluice_metric* m = api().metric_register(g_binding.ctx, kind, name, help);
  // Only during configure, where the plugin glue turns this into a
  // configuration error naming the plugin.
  if (m == nullptr)
    throw std::runtime_error(std::string("metric '") + name +
                             "' refused: the name is taken by another plugin, is not a valid metric name, "
                             "or registration happened after configure");
  return metric(m);
}

// ---- per-shard state -----------------------------------------------------
// One T per shard, each touched only by its own shard: shared-nothing state
// for a plugin instance.
template <typename T>
class per_shard {
 public:
  void init(uint32_t shards) { _items.resize(shards); }
  T& local() noexcept { return at(this_shard()); }
  T& at(uint32_t shard) noexcept {
    SLUICE_ASSERT(shard < _items.size());
    return *_items[shard];
  }
  template <typename... A>
  T& emplace(uint32_t shard, A&&... a) {
    SLUICE_ASSERT(shard < _items.size());
    _items[shard] = std::make_unique<T>(std::forward<A>(a)...);
    return *_items[shard];
  }
  void reset(uint32_t shard) noexcept { _items[shard].reset(); }
  bool has(uint32_t shard) const noexcept { return shard < _items.size() && _items[shard] != nullptr; }

 private:
  std::vector<std::unique_ptr<T>> _items;
};

}  // namespace sluice::sdk

namespace sluice::sdk {

// A one-shot event with one waiter: wait() resumes (on a later loop turn)
// once set() was called, before or after.
class event {
 public:
  void set() noexcept {
    if (_set) return;
    _set = true;
    if (_waiting) _resume.post();
  }
  bool is_set() const noexcept { return _set; }
  auto wait() noexcept {
    struct awaiter {
      event* _e;
      bool await_ready() const noexcept { return _e->_set; }
      void await_suspend(std::coroutine_handle<> h) noexcept {
        SLUICE_ASSERT_MSG(!_e->_waiting, "event has one waiter");
        _e->_waiting = true;
        _e->_resume.set(h);
      }
      void await_resume() const noexcept {}
    };
    return awaiter{this};
  }

 private:
  bool _set = false;
  bool _waiting = false;
  posted_resume _resume;
};

}  // namespace sluice::sdk

namespace sluice::sdk {

// Wakes every waiting coroutine (on later loop turns). Shard-local.
class condition {
 public:
  condition() noexcept = default;
  condition(const condition&) = delete;
  condition& operator=(const condition&) = delete;
  ~condition() { SLUICE_ASSERT_MSG(_waiters.empty(), "condition destroyed with waiters"); }

  auto wait() noexcept {
    struct awaiter {
      condition* _c;
      posted_resume _p;
      bool await_ready() const noexcept { return false; }
      void await_suspend(std::coroutine_handle<> h) noexcept {
        _p.set(h);
        _c->_waiters.push_back(&_p);
      }
      void await_resume() const noexcept {}
    };
    return awaiter{this, {}};
  }
  void notify_all() noexcept {
    std::vector<posted_resume*> w;
    w.swap(_waiters);
    for (auto* p : w) p->post();
  }
  bool has_waiters() const noexcept { return !_waiters.empty(); }

 private:
  std::vector<posted_resume*> _waiters;
};

// A FIFO mutex for coroutines on one shard: serializes a critical section
// that awaits, in arrival order. Not a thread lock.
class fifo_mutex {
 public:
  class guard {
   public:
    guard() noexcept = default;
    explicit guard(fifo_mutex* m) noexcept : _m(m) {}
    guard(guard&& o) noexcept : _m(std::exchange(o._m, nullptr)) {}
    guard& operator=(guard&& o) noexcept {
      unlock();
      _m = std::exchange(o._m, nullptr);
      return *this;
    }
    ~guard() { unlock(); }
    void unlock() noexcept {
      if (_m) std::exchange(_m, nullptr)->release();
    }

   private:
    fifo_mutex* _m = nullptr;
  };

  auto lock() noexcept {
    struct awaiter {
      fifo_mutex* _m;
      posted_resume _p;
      bool await_ready() noexcept {
        if (!_m->_locked) {
          _m->_locked = true;
          return true;
        }
        return false;
      }
      void await_suspend(std::coroutine_handle<> h) noexcept {
        _p.set(h);
        _m->_queue.push_back(&_p);
      }
      guard await_resume() noexcept { return guard(_m); }
    };
    return awaiter{this, {}};
  }
  bool locked() const noexcept { return _locked; }

 private:
  void release() noexcept {
    SLUICE_ASSERT(_locked);
    if (_head < _queue.size()) {
      // Ownership passes straight to the next waiter: _locked stays true.
      _queue[_head++]->post();
      if (_head == _queue.size()) {
        _queue.clear();
        _head = 0;
      }
    } else {
      _locked = false;
    }
  }
  bool _locked = false;
  std::vector<posted_resume*> _queue;
  size_t _head = 0;
};

}  // namespace sluice::sdk
