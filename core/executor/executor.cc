#include "core/executor/executor.h"

#include "core/executor/buffer.h"
#include "core/executor/net.h"
#include "core/executor/shard.h"

#include <sluice/sdk/runtime.h>

#include <pthread.h>
#include <sched.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fcntl.h>

#ifndef IOSQE_CQE_SKIP_SUCCESS
#define IOSQE_CQE_SKIP_SUCCESS (1U << 6)
#endif

namespace sluice::executor {

namespace {

thread_local shard* t_shard = nullptr;

std::vector<int> allowed_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> cpus;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    for (int i = 0; i < CPU_SETSIZE; ++i)
      if (CPU_ISSET(i, &set)) cpus.push_back(i);
  }
  if (cpus.empty()) cpus.push_back(0);
  return cpus;
}

// The channel service through which submit_to runs closures on a shard.
constexpr const char* closure_service_name = "sluice.core.closure";

struct closure {
  std::function<sdk::task<int32_t>()> fn;
};

void closure_handler(void*, uint32_t, const sluice_message* req, sluice_responder* r) {
  SLUICE_ASSERT(req != nullptr && req->bytes_len == sizeof(closure*));
  closure* cl = nullptr;
  std::memcpy(&cl, req->bytes, sizeof(cl));
  sdk::spawn([](closure* cl, sluice_responder* r) -> sdk::task<void> {
    int32_t rc = co_await cl->fn();
    delete cl;
    sdk::api().respond(sdk::host(), r, rc, nullptr);
  }(cl, r));
}

// ---- host API: the executor's part ----------------------------------------

shard& this_shard_of(sluice_host* h) noexcept {
  SLUICE_ASSERT_MSG(t_shard != nullptr, "shard-only host API called off a shard thread");
  SLUICE_ASSERT(&t_shard->exec() == h->exec);
  return *t_shard;
}

uint32_t api_shard_count(sluice_host* h) { return h->exec->shard_count(); }
uint32_t api_current_shard(sluice_host*) { return t_shard ? t_shard->id() : UINT32_MAX; }
uint64_t api_now_ns(sluice_host*) {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}
const char* api_data_dir(sluice_host* h) { return h->data_dir.c_str(); }
int32_t api_node_id(sluice_host* h) { return h->node_id; }
void api_log(sluice_plugin_ctx*, uint32_t level, const char* msg, size_t len) {
  spdlog::log(static_cast<spdlog::level::level_enum>(std::min<uint32_t>(level, 4)), "{}",
              std::string_view(msg, len));
}
void api_set_error(sluice_plugin_ctx*, const char* msg, size_t len) {
  spdlog::error("{}", std::string_view(msg, len));
}
int32_t api_io_submit(sluice_host* h, const sluice_io_op* op, sluice_completion* c) {
  return this_shard_of(h).submit_io(*op, c);
}
int32_t api_io_cancel(sluice_host* h, sluice_completion* c) { return this_shard_of(h).cancel_io(c); }
int32_t api_tcp_listen(sluice_host*, const void* addr, uint32_t addrlen, int32_t backlog,
                       int32_t reuse_port) {
  return tcp_listen(addr, addrlen, backlog, reuse_port != 0);
}
int32_t api_register_service(sluice_plugin_ctx*, const char*, sluice_service_handler, void*) {
  return SLUICE_ERR_INVALID;  // only through a plugin host (core/host)
}
int32_t api_lookup_service(sluice_host* h, const char* name) { return h->exec->find_service(name); }
int32_t api_call(sluice_host* h, int32_t service_id, uint32_t target, const sluice_message* req,
                 sluice_reply* reply) {
  const service_entry* svc = h->exec->service(service_id);
  if (svc == nullptr) return SLUICE_ERR_NO_SERVICE;
  return this_shard_of(h).call(*svc, target, req, reply);
}
void api_respond(sluice_host* h, sluice_responder* r, int32_t status, const sluice_message* msg) {
  this_shard_of(h).respond(reinterpret_cast<responder_impl*>(r), status, msg);
}
void api_post(sluice_host* h, sluice_completion* c) { this_shard_of(h).post(c); }
void api_wait_channel(sluice_host* h, uint32_t target, sluice_completion* c) {
  this_shard_of(h).wait_channel(target, c);
}
sluice_metric* api_metric_register(sluice_plugin_ctx*, uint32_t, const char*, const char*) {
  return nullptr;  // only through a plugin host (core/host)
}
void api_metric_noop(sluice_metric*, int64_t) {}
void api_metric_visit(sluice_host*, void (*)(void*, const sluice_metric_view*), void*) {}

sluice_host_api make_default_api() {
  sluice_host_api api{};
  executor::fill_api(api);
  api.log = &api_log;
  api.set_error = &api_set_error;
  api.register_service = &api_register_service;
  api.metric_register = &api_metric_register;
  api.metric_add = &api_metric_noop;
  api.metric_set = &api_metric_noop;
  api.metric_visit = &api_metric_visit;
  return api;
}
const sluice_host_api g_default_api = make_default_api();

}  // namespace

shard* current_shard() noexcept { return t_shard; }

uint32_t online_cpus() noexcept { return static_cast<uint32_t>(allowed_cpus().size()); }

void executor::fill_api(sluice_host_api& api) noexcept {
  api.struct_size = sizeof(sluice_host_api);
  api.abi_minor = SLUICE_ABI_MINOR;
  api.shard_count = &api_shard_count;
  api.current_shard = &api_current_shard;
  api.now_ns = &api_now_ns;
  api.data_dir = &api_data_dir;
  api.node_id = &api_node_id;
  api.io_submit = &api_io_submit;
  api.io_cancel = &api_io_cancel;
  api.tcp_listen = &api_tcp_listen;
  api.lookup_service = &api_lookup_service;
  api.call = &api_call;
  api.respond = &api_respond;
  api.post = &api_post;
  api.wait_channel = &api_wait_channel;
  api.buf_alloc = &buf_alloc;
  api.buf_ref = &buf_ref;
  api.buf_unref = &buf_unref;
}

// ---- executor ----------------------------------------------------------------

executor::executor(options opts) : _opts(opts) {
  _shard_count = opts.shards ? opts.shards : !opts.cpus.empty() ? static_cast<uint32_t>(opts.cpus.size()) : online_cpus();
  SLUICE_ASSERT(_shard_count > 0 && _shard_count <= 1024);
  SLUICE_ASSERT(_opts.channel_capacity > 0);
  _c_host.exec = this;
  for (uint32_t i = 0; i < _shard_count; ++i) _shards.push_back(std::make_unique<shard>(*this, i));
  const size_t pairs = size_t{_shard_count} * _shard_count;
  _requests.resize(pairs);
  _replies.resize(pairs);
  for (uint32_t f = 0; f < _shard_count; ++f)
    for (uint32_t t = 0; t < _shard_count; ++t) {
      if (f == t) continue;  // same-shard calls never touch a queue
      _requests[f * _shard_count + t] = std::make_unique<spsc_queue<channel_msg>>(opts.channel_capacity);
      _replies[f * _shard_count + t] = std::make_unique<spsc_queue<channel_msg>>(opts.channel_capacity);
    }
  auto id = add_service(closure_service_name, &closure_handler, nullptr);
  SLUICE_ASSERT(id.has_value());
}

executor::~executor() {
  SLUICE_ASSERT_MSG(_threads.empty(), "executor destroyed before join()");
  if (_outside_ring) {
    io_uring_queue_exit(_outside_ring);
    delete _outside_ring;
  }
}

result<int32_t> executor::add_service(std::string name, sluice_service_handler handler, void* user) {
  SLUICE_ASSERT(handler != nullptr);
  SLUICE_ASSERT_MSG(_threads.empty(), "services are registered before start()");
  if (find_service(name.c_str()) >= 0)
    return make_error(std::make_error_code(std::errc::file_exists),
                      "service '" + name + "' is already registered");
  _services.push_back(service_entry{std::move(name), handler, user});
  return static_cast<int32_t>(_services.size() - 1);
}

int32_t executor::find_service(const char* name) const noexcept {
  for (size_t i = 0; i < _services.size(); ++i)
    if (_services[i].name == name) return static_cast<int32_t>(i);
  return SLUICE_ERR_NO_SERVICE;
}

const service_entry* executor::service(int32_t id) const noexcept {
  if (id < 0 || static_cast<size_t>(id) >= _services.size()) return nullptr;
  return &_services[static_cast<size_t>(id)];
}

result<void> executor::start(std::function<sdk::task<void>()> main_task) {
  SLUICE_ASSERT(_threads.empty());
  // Without a plugin host, bind the SDK to this executor's default table.
  if (sdk::g_binding.api == nullptr || sdk::g_binding.api == &g_default_api)
    sdk::bind(&g_default_api, &_c_host, nullptr);
  _main_task = std::move(main_task);
  std::condition_variable cv;
  _start_cv = &cv;
  for (uint32_t i = 0; i < _shard_count; ++i)
    _threads.emplace_back([this, i] { thread_main(i, &_main_task); });
  std::unique_lock lk(_start_mu);
  cv.wait(lk, [&] { return _start_failed || _rings_ready == _shard_count; });
  if (_start_failed) {
    // The shards see the failure at the barrier and exit without running.
    lk.unlock();
    join();
    return make_error(std::make_error_code(std::errc::io_error), _start_error);
  }
  return {};
}

void executor::thread_main(uint32_t id, std::function<sdk::task<void>()>* main_task) {
  shard& self = *_shards[id];
  t_shard = &self;
  char name[16];
  std::snprintf(name, sizeof(name), "shard-%u", id);
  pthread_setname_np(pthread_self(), name);
  std::string pin_error;
  if (_opts.pin_threads) {
    static const std::vector<int> allowed = allowed_cpus();
    const int cpu = _opts.cpus.empty() ? allowed[id % allowed.size()]
                                       : static_cast<int>(_opts.cpus[id % _opts.cpus.size()]);
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    const int rc = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
    // An explicit placement that cannot be honoured is a configuration
    // error; the default one only follows the affinity mask.
    if (rc != 0 && !_opts.cpus.empty())
      pin_error = "shard " + std::to_string(id) + " cannot run on CPU " + std::to_string(cpu) + " (node.cpus): " +
                  std::strerror(rc) + "; the process may run on " + std::to_string(allowed.size()) + " CPU(s)";
  }
  auto ring = self.init_ring(_opts.ring_entries);
  {
    std::unique_lock lk(_start_mu);
    if (!pin_error.empty() || !ring) {
      if (!_start_failed) _start_error = !pin_error.empty() ? pin_error : ring.err().message;
      _start_failed = true;
    } else {
      ++_rings_ready;
    }
    _start_cv->notify_all();
    _start_cv->wait(lk, [&] { return _start_failed || _rings_ready == _shard_count; });
    if (_start_failed) {
      t_shard = nullptr;
      return;
    }
  }
  if (id == 0 && *main_task) sdk::spawn((*main_task)());
  self.run();
  t_shard = nullptr;
}

void executor::join() {
  for (auto& t : _threads)
    if (t.joinable()) t.join();
  _threads.clear();
}

void executor::request_exit() noexcept {
  shard* cur = t_shard;
  SLUICE_ASSERT_MSG(cur != nullptr, "request_exit is called on a shard");
  for (auto& s : _shards) {
    s->request_exit();
    if (s.get() != cur) cur->wake(s->id());
  }
}

void executor::run_from_outside(uint32_t target, std::function<void()> fn) {
  SLUICE_ASSERT(t_shard == nullptr);
  SLUICE_ASSERT(target < _shard_count);
  std::lock_guard lk(_outside_mu);
  shard& s = *_shards[target];
  s.add_external(std::move(fn));
  if (_outside_ring == nullptr) {
    auto* r = new io_uring{};
    int rc = io_uring_queue_init(8, r, 0);
    SLUICE_ASSERT_MSG(rc == 0, "cannot create the control ring");
    _outside_ring = r;
  }
  io_uring_sqe* sqe = io_uring_get_sqe(_outside_ring);
  SLUICE_ASSERT(sqe != nullptr);
  io_uring_prep_msg_ring(sqe, s.ring_fd(), 0, tag_wake, 0);
  io_uring_sqe_set_data64(sqe, tag_ignore);
  io_uring_submit_and_wait(_outside_ring, 1);
  io_uring_cqe* cqe = nullptr;
  while (io_uring_peek_cqe(_outside_ring, &cqe) == 0) io_uring_cqe_seen(_outside_ring, cqe);
}

sdk::task<int32_t> executor::submit_to(uint32_t target, std::function<sdk::task<int32_t>()> fn) {
  static_assert(sizeof(closure*) <= channel_msg::inline_bytes_max);
  // Service 0 always exists and target is checked here, so the call is
  // always delivered and the handler always frees the closure.
  SLUICE_ASSERT_MSG(target < _shard_count, "submit_to: no such shard");
  auto* cl = new closure{std::move(fn)};
  sdk::message req;
  req.bytes.assign(reinterpret_cast<const char*>(&cl), sizeof(cl));
  // Service 0 is the closure service (registered first, in the constructor).
  sdk::reply rep = co_await sdk::call(0, target, req);
  co_return rep.status;
}

// ---- shard -----------------------------------------------------------------

shard::shard(executor& exec, uint32_t id) : _exec(exec), _id(id) {
  _peers.resize(exec.shard_count());
}

shard::~shard() {
  if (_ring_ok) io_uring_queue_exit(&_ring);
  for (auto* r : _free_responders) delete r;
}

result<void> shard::init_ring(uint32_t entries) {
  // Prefer a ring only this thread submits to, whose completion work runs
  // when the thread asks for it (no interrupts of the loop); fall back for
  // kernels without those flags.
  const unsigned flag_sets[] = {
      IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
      IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
      IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
      0};
  int rc = -EINVAL;
  for (unsigned flags : flag_sets) {
    io_uring_params p{};
    p.flags = flags;
    rc = io_uring_queue_init_params(entries, &_ring, &p);
    if (rc != -EINVAL) break;
  }
  if (rc < 0) {
    std::string hint = rc == -EPERM || rc == -ENOSYS
                           ? " (io_uring is disabled: check /proc/sys/kernel/io_uring_disabled)"
                           : rc == -ENOMEM ? " (raise the locked-memory limit, ulimit -l, or lower ring_entries)"
                                           : "";
    return make_errno_error(-rc, "shard " + std::to_string(_id) + ": cannot create an io_uring ring of " +
                                     std::to_string(entries) + " entries: " + std::strerror(-rc) + hint);
  }
  _ring_ok = true;
  _ring_fd = _ring.ring_fd;
  return {};
}

io_uring_sqe* shard::get_sqe() noexcept {
  bump(_stats.sqes, 1);
  io_uring_sqe* sqe = io_uring_get_sqe(&_ring);
  while (sqe == nullptr) {
    const int rc = io_uring_submit(&_ring);
    SLUICE_ASSERT_MSG(rc >= 0 || rc == -EBUSY || rc == -EAGAIN || rc == -EINTR,
                      "io_uring_submit failed with a full submission queue");
    sqe = io_uring_get_sqe(&_ring);
  }
  return sqe;
}

int32_t shard::submit_io(const sluice_io_op& op, sluice_completion* c) noexcept {
  SLUICE_ASSERT(c != nullptr && c->on_complete != nullptr);
  SLUICE_ASSERT(reinterpret_cast<uintptr_t>(c) > 4096);
  if (op.len > UINT32_MAX && op.opcode != SLUICE_IO_FALLOCATE) return -EINVAL;
  static_assert(SLUICE_IO_OPCODE_MAX == SLUICE_IO_SENDMSG, "every opcode needs a case below");
  const auto len = static_cast<unsigned>(op.len);
  if (op.opcode > SLUICE_IO_OPCODE_MAX) return -EINVAL;
  io_uring_sqe* sqe = get_sqe();
  switch (static_cast<sluice_io_opcode>(op.opcode)) {
    case SLUICE_IO_NOP:
      io_uring_prep_nop(sqe);
      break;
    case SLUICE_IO_ACCEPT:
      io_uring_prep_accept(sqe, op.fd, static_cast<sockaddr*>(op.addr), op.addrlen, SOCK_CLOEXEC);
      break;
    case SLUICE_IO_CONNECT:
      io_uring_prep_connect(sqe, op.fd, static_cast<const sockaddr*>(op.addr), len);
      break;
    case SLUICE_IO_RECV:
      io_uring_prep_recv(sqe, op.fd, op.buf, len, static_cast<int>(op.flags));
      break;
    case SLUICE_IO_SEND:
      io_uring_prep_send(sqe, op.fd, op.buf, len, static_cast<int>(op.flags | MSG_NOSIGNAL));
      break;
    case SLUICE_IO_READ:
      io_uring_prep_read(sqe, op.fd, op.buf, len, op.offset);
      break;
    case SLUICE_IO_WRITE:
      io_uring_prep_write(sqe, op.fd, op.buf, len, op.offset);
      break;
    case SLUICE_IO_FSYNC:
      io_uring_prep_fsync(sqe, op.fd, 0);
      break;
    case SLUICE_IO_FDATASYNC:
      io_uring_prep_fsync(sqe, op.fd, IORING_FSYNC_DATASYNC);
      break;
    case SLUICE_IO_TIMEOUT: {
      static_assert(sizeof(__kernel_timespec) <= sizeof(c->host_scratch));
      auto* ts = reinterpret_cast<__kernel_timespec*>(c->host_scratch);
      ts->tv_sec = static_cast<int64_t>(op.timeout_ns / 1'000'000'000ull);
      ts->tv_nsec = static_cast<long long>(op.timeout_ns % 1'000'000'000ull);
      io_uring_prep_timeout(sqe, ts, 0, 0);
      break;
    }
    case SLUICE_IO_CLOSE:
      io_uring_prep_close(sqe, op.fd);
      break;
    case SLUICE_IO_OPENAT:
      io_uring_prep_openat(sqe, AT_FDCWD, static_cast<const char*>(op.buf),
                           static_cast<int>(op.flags), static_cast<mode_t>(op.len));
      break;
    case SLUICE_IO_FALLOCATE:
      io_uring_prep_fallocate(sqe, op.fd, static_cast<int>(op.flags), op.offset, op.len);
      break;
    case SLUICE_IO_MKDIRAT:
      io_uring_prep_mkdirat(sqe, AT_FDCWD, static_cast<const char*>(op.buf), static_cast<mode_t>(op.len));
      break;
    case SLUICE_IO_UNLINKAT:
      io_uring_prep_unlinkat(sqe, AT_FDCWD, static_cast<const char*>(op.buf), static_cast<int>(op.flags));
      break;
    case SLUICE_IO_RENAMEAT:
      io_uring_prep_renameat(sqe, AT_FDCWD, static_cast<const char*>(op.buf), AT_FDCWD,
                             static_cast<const char*>(op.addr), 0);
      break;
    case SLUICE_IO_STATX:
      io_uring_prep_statx(sqe, AT_FDCWD, static_cast<const char*>(op.buf), static_cast<int>(op.flags), len,
                          static_cast<struct statx*>(op.addr));
      break;
    case SLUICE_IO_SENDMSG:
      io_uring_prep_sendmsg(sqe, op.fd, static_cast<const msghdr*>(op.addr),
                            static_cast<unsigned>(op.flags | MSG_NOSIGNAL));
      break;
  }
  io_uring_sqe_set_data(sqe, c);
  return 0;
}

int32_t shard::cancel_io(sluice_completion* c) noexcept {
  io_uring_sqe* sqe = get_sqe();
  io_uring_prep_cancel(sqe, c, 0);
  sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
  io_uring_sqe_set_data64(sqe, tag_ignore);
  return 0;
}

void shard::post(sluice_completion* c) noexcept {
  SLUICE_ASSERT(c != nullptr && c->on_complete != nullptr);
  _posted.push_back(c);
}

void shard::fill_msg(channel_msg& m, const sluice_message* msg) noexcept {
  if (msg == nullptr) return;
  SLUICE_ASSERT(msg->bytes_len <= UINT32_MAX);
  m.msg_type = msg->type;
  m.bytes_len = static_cast<uint32_t>(msg->bytes_len);
  if (m.bytes_len > channel_msg::inline_bytes_max) {
    m.heap_bytes = static_cast<uint8_t*>(std::malloc(m.bytes_len));
    SLUICE_ASSERT(m.heap_bytes != nullptr);
    std::memcpy(m.heap_bytes, msg->bytes, m.bytes_len);
  } else if (m.bytes_len) {
    std::memcpy(m.inline_bytes, msg->bytes, m.bytes_len);
  }
  if (msg->buf) {
    buf_ref(msg->buf);
    m.buf = msg->buf;
  }
}

void shard::release_msg(channel_msg& m) noexcept {
  std::free(m.heap_bytes);
  m.heap_bytes = nullptr;
  if (m.buf) buf_unref(std::exchange(m.buf, nullptr));
}

sluice_message shard::view_of(const channel_msg& m) noexcept {
  sluice_message v{};
  v.type = m.msg_type;
  v.bytes = m.bytes();
  v.bytes_len = m.bytes_len;
  v.buf = m.buf;
  return v;
}

int32_t shard::call(const service_entry& svc, uint32_t target, const sluice_message* req,
                    sluice_reply* reply) noexcept {
  SLUICE_ASSERT(reply != nullptr && reply->on_reply != nullptr);
  if (target >= _exec.shard_count()) return SLUICE_ERR_INVALID;
  if (target == _id) {
    channel_msg& m = _local_requests.emplace_back();
    m.handler = svc.handler;
    m.handler_user = svc.user;
    m.reply = reply;
    m.from_shard = _id;
    fill_msg(m, req);
    return 0;
  }
  peer& p = _peers[target];
  if (p.outstanding >= _exec.opts().channel_capacity) return SLUICE_ERR_QUEUE_FULL;
  auto& q = _exec.request_queue(_id, target);
  channel_msg* m = q.try_claim();
  // Credits bound the requests in flight to a peer by the queue's capacity.
  SLUICE_ASSERT_MSG(m != nullptr, "request queue full despite credits");
  *m = channel_msg{};
  m->handler = svc.handler;
  m->handler_user = svc.user;
  m->reply = reply;
  m->from_shard = _id;
  fill_msg(*m, req);
  q.publish();
  ++p.outstanding;
  wake(target);
  return 0;
}

responder_impl* shard::alloc_responder() noexcept {
  responder_impl* r;
  if (_free_responders.empty()) {
    r = new responder_impl{};
  } else {
    r = _free_responders.back();
    _free_responders.pop_back();
  }
  SLUICE_ASSERT(!r->in_use);
  r->in_use = true;
  return r;
}

void shard::respond(responder_impl* r, int32_t status, const sluice_message* msg) noexcept {
  SLUICE_ASSERT_MSG(r != nullptr && r->in_use, "respond called twice or with a bad responder");
  const uint32_t origin = r->origin;
  sluice_reply* reply = r->reply;
  r->in_use = false;
  r->reply = nullptr;
  _free_responders.push_back(r);
  if (origin == _id) {
    channel_msg& m = _local_replies.emplace_back();
    m.reply = reply;
    m.status = status;
    m.from_shard = _id;
    fill_msg(m, msg);
    return;
  }
  auto& q = _exec.reply_queue(_id, origin);
  channel_msg* m = q.try_claim();
  // The origin holds a credit for every request it has in flight here, so
  // the reply queue cannot be full.
  SLUICE_ASSERT_MSG(m != nullptr, "reply queue full despite credits");
  *m = channel_msg{};
  m->reply = reply;
  m->status = status;
  m->from_shard = _id;
  fill_msg(*m, msg);
  q.publish();
  wake(origin);
}

void shard::wait_channel(uint32_t target, sluice_completion* c) noexcept {
  SLUICE_ASSERT(target < _exec.shard_count());
  peer& p = _peers[target];
  if (target == _id || p.outstanding < _exec.opts().channel_capacity) {
    post(c);
    return;
  }
  c->host_scratch[0] = 0;
  if (p.waiters_tail) p.waiters_tail->host_scratch[0] = reinterpret_cast<uint64_t>(c);
  else p.waiters_head = c;
  p.waiters_tail = c;
}

void shard::release_waiters(peer& p) noexcept {
  // Wake as many waiters as there are free credits, oldest first. A woken
  // waiter retries its call on its next turn; one that loses the credit to
  // a newcomer waits again, and the next reply wakes it.
  const uint32_t cap = _exec.opts().channel_capacity;
  uint32_t free = p.outstanding < cap ? cap - p.outstanding : 0;
  while (p.waiters_head && free > 0) {
    sluice_completion* c = p.waiters_head;
    p.waiters_head = reinterpret_cast<sluice_completion*>(c->host_scratch[0]);
    if (p.waiters_head == nullptr) p.waiters_tail = nullptr;
    post(c);
    --free;
  }
}

void shard::deliver_request(channel_msg& m) noexcept {
  responder_impl* r = alloc_responder();
  r->origin = m.from_shard;
  r->reply = m.reply;
  sluice_message v = view_of(m);
  m.handler(m.handler_user, _id, &v, reinterpret_cast<sluice_responder*>(r));
  release_msg(m);
}

void shard::deliver_reply(channel_msg& m) noexcept {
  sluice_message v = view_of(m);
  m.reply->on_reply(m.reply, m.status, &v);
  release_msg(m);
}

bool shard::run_posted() noexcept {
  if (_posted.empty()) return false;
  _posted_running.swap(_posted);
  for (sluice_completion* c : _posted_running) c->on_complete(c, 0);
  _posted_running.clear();
  return true;
}

bool shard::poll_channels() noexcept {
  constexpr int batch = 256;
  bool did = false;
  const uint32_t n = _exec.shard_count();
  for (uint32_t from = 0; from < n; ++from) {
    if (from == _id) continue;
    auto& replies = _exec.reply_queue(from, _id);
    int k = 0;
    for (channel_msg* m; k < batch && (m = replies.front()) != nullptr; ++k) {
      channel_msg copy = *m;
      replies.pop();
      peer& p = _peers[from];
      SLUICE_ASSERT(p.outstanding > 0);
      --p.outstanding;
      deliver_reply(copy);
    }
    bump(_stats.channel_in, static_cast<uint64_t>(k));
    if (k) {
      did = true;
      if (_peers[from].waiters_head) release_waiters(_peers[from]);
    }
    auto& requests = _exec.request_queue(from, _id);
    k = 0;
    for (channel_msg* m; k < batch && (m = requests.front()) != nullptr; ++k) {
      channel_msg copy = *m;
      requests.pop();
      deliver_request(copy);
    }
    bump(_stats.channel_in, static_cast<uint64_t>(k));
    did |= k != 0;
  }
  if (!_local_replies.empty()) {
    _local_running.swap(_local_replies);
    for (auto& m : _local_running) deliver_reply(m);
    _local_running.clear();
    did = true;
  }
  if (!_local_requests.empty()) {
    _local_running.swap(_local_requests);
    for (auto& m : _local_running) deliver_request(m);
    _local_running.clear();
    did = true;
  }
  return did;
}

bool shard::channels_pending() noexcept {
  const uint32_t n = _exec.shard_count();
  for (uint32_t from = 0; from < n; ++from) {
    if (from == _id) continue;
    if (_exec.reply_queue(from, _id).front() || _exec.request_queue(from, _id).front()) return true;
  }
  return false;
}

void shard::wake(uint32_t target) noexcept {
  if (target == _id) return;
  peer& p = _peers[target];
  if (!p.wake_pending) {
    p.wake_pending = true;
    _wake_targets.push_back(target);
  }
}

void shard::flush_wakes() noexcept {
  if (_wake_targets.empty()) return;
  // Pairs with the fence in run(): either the target sees our messages
  // before it sleeps, or we see it sleeping and ring it.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  for (uint32_t t : _wake_targets) {
    _peers[t].wake_pending = false;
    shard& s = _exec.shard_at(t);
    if (s.sleeping().load(std::memory_order_relaxed) && s.sleeping().exchange(false)) {
      io_uring_sqe* sqe = get_sqe();
      io_uring_prep_msg_ring(sqe, s.ring_fd(), 0, tag_wake, 0);
      sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
      io_uring_sqe_set_data64(sqe, tag_ignore);
    }
  }
  _wake_targets.clear();
}

bool shard::run_external() noexcept {
  if (!_external_pending.load(std::memory_order_acquire)) return false;
  std::vector<std::function<void()>> fns;
  {
    std::lock_guard lk(_external_mu);
    _external_pending.store(false, std::memory_order_relaxed);
    fns.swap(_external);
  }
  for (auto& fn : fns) fn();
  return true;
}

void shard::add_external(std::function<void()> fn) {
  std::lock_guard lk(_external_mu);
  _external.push_back(std::move(fn));
  _external_pending.store(true, std::memory_order_release);
}

void shard::request_exit() noexcept { _exit.store(true, std::memory_order_release); }

void shard::reap() noexcept {
  // Copy completions out and release the CQ before running any callback, so
  // callbacks are free to submit and the ring never sees a half-consumed CQ.
  struct done {
    uint64_t user_data;
    int32_t res;
  };
  done batch[256];
  for (;;) {
    unsigned n = 0;
    unsigned head;
    io_uring_cqe* cqe;
    io_uring_for_each_cqe(&_ring, head, cqe) {
      batch[n++] = done{cqe->user_data, cqe->res};
      if (n == std::size(batch)) break;
    }
    if (n == 0) return;
    io_uring_cq_advance(&_ring, n);
    bump(_stats.cqes, n);
    for (unsigned i = 0; i < n; ++i) {
      if (batch[i].user_data <= tag_wake) continue;
      auto* c = reinterpret_cast<sluice_completion*>(batch[i].user_data);
      c->on_complete(c, batch[i].res);
    }
    if (n < std::size(batch)) return;
  }
}

// Spins up to idle_poll_us for a channel message, an outside request or
// completion work, so a peer's message does not pay a cross-CPU wake-up.
// True when something arrived.
bool shard::idle_poll() noexcept {
  const uint32_t poll_us = _exec.opts().idle_poll_us;
  if (poll_us == 0) return false;
  const uint64_t deadline = sdk::now_ns() + uint64_t{poll_us} * 1000;
  do {
    for (int i = 0; i < 64; ++i) {
      if (channels_pending() || _external_pending.load(std::memory_order_relaxed) ||
          _exit.load(std::memory_order_relaxed) || io_uring_cq_ready(&_ring) ||
          (IO_URING_READ_ONCE(*_ring.sq.kflags) & IORING_SQ_TASKRUN))
        return true;
      __builtin_ia32_pause();
    }
  } while (sdk::now_ns() < deadline);
  return false;
}

void shard::run() {
  SLUICE_ASSERT(t_shard == this && _ring_ok);
  _stats.start_ns.store(sdk::now_ns(), std::memory_order_relaxed);
  for (;;) {
    bump(_stats.loops, 1);
    run_external();
    run_posted();
    poll_channels();
    flush_wakes();
    if (_exit.load(std::memory_order_acquire)) break;
    const bool ready = !_posted.empty() || !_local_requests.empty() || !_local_replies.empty();
    int rc;
    if (ready) {
      rc = io_uring_submit_and_get_events(&_ring);
    } else if (idle_poll()) {
      rc = io_uring_submit_and_get_events(&_ring);
    } else {
      _sleeping.store(true, std::memory_order_relaxed);
      std::atomic_thread_fence(std::memory_order_seq_cst);
      if (channels_pending() || _external_pending.load(std::memory_order_acquire) ||
          _exit.load(std::memory_order_acquire)) {
        _sleeping.store(false, std::memory_order_relaxed);
        rc = io_uring_submit_and_get_events(&_ring);
      } else {
        const uint64_t slept_from = sdk::now_ns();
        rc = io_uring_submit_and_wait(&_ring, 1);
        _sleeping.store(false, std::memory_order_relaxed);
        bump(_stats.sleep_ns, sdk::now_ns() - slept_from);
      }
    }
    SLUICE_ASSERT_MSG(rc >= 0 || rc == -EINTR || rc == -EBUSY || rc == -EAGAIN,
                      "io_uring_enter failed");
    reap();
  }
  // Submit what is queued (last wake-ups) so peers are not left asleep.
  io_uring_submit(&_ring);
}

}  // namespace sluice::executor
