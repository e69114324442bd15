#include "transport.h"

#include <sluice/sdk/server.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>

namespace sluice::raft::rpc {

using sdk::task;

namespace {

std::string node_name(node_id n) { return "node " + std::to_string(n.value()); }

// Keepalive probes and TCP_USER_TIMEOUT bound how long a dead peer goes
// unnoticed (about timeout_ms). These setsockopt calls, like socket() in
// run_connection, reach the kernel directly: the host API has no socket
// creation yet (a seam the simulator will need).
void tune_socket(int fd, uint32_t timeout_ms) {
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
  const int idle_s = std::max<int>(1, static_cast<int>(timeout_ms / 3000));
  const int interval_s = std::max<int>(1, static_cast<int>(timeout_ms / 6000));
  const int probes = 2;
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle_s, sizeof(idle_s));
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval_s, sizeof(interval_s));
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &probes, sizeof(probes));
  const unsigned user_timeout = timeout_ms;
  ::setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout, sizeof(user_timeout));
}

std::string peer_address_of(int fd) {
  sdk::socket_address a;
  socklen_t len = sizeof(a.storage);
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&a.storage), &len) != 0) return "an unknown address";
  a.len = len;
  return a.to_string();
}

// Messages that carry log data are subject to back-pressure.
bool carries_data(const message& m) noexcept { return !m.entries.empty() || m.snap.has_value(); }

}  // namespace

std::optional<std::string> log_limiter::admit(uint64_t now_ns, uint64_t interval_ns) {
  if (now_ns < _next_ns) {
    ++_suppressed;
    return std::nullopt;
  }
  _next_ns = now_ns + interval_ns;
  std::string suffix =
      _suppressed ? " (" + std::to_string(_suppressed) + " similar lines left out)" : std::string();
  _suppressed = 0;
  return suffix;
}

void transport::warn(log_limiter& limiter, const std::string& line) {
  if (auto suffix = limiter.admit(sdk::now_ns())) sdk::log_warn(line + *suffix);
}

// The backoff jitter differs between brokers and between shards (the
// instances' addresses), and start() mixes in the clock.
transport::transport(transport_config cfg)
    : _cfg(std::move(cfg)), _rng(_cfg.self.value() * 0x9e3779b97f4a7c15ull ^ reinterpret_cast<uintptr_t>(this)) {
  SLUICE_ASSERT_MSG(!_cfg.self.is_zero(), "the transport needs this broker's node id");
  SLUICE_ASSERT(_cfg.frame_bytes_max >= 1024 && _cfg.frame_bytes_max <= frame_bytes_limit);
  SLUICE_ASSERT(_cfg.reconnect_backoff_min_ms > 0 && _cfg.reconnect_backoff_min_ms <= _cfg.reconnect_backoff_max_ms);
}

transport::~transport() {
  SLUICE_ASSERT_MSG(_tasks.count() == 0, "transport destroyed before stop() finished");
}

std::string transport::start(uint16_t* shared_port) {
  SLUICE_ASSERT(_listen_fd < 0 && !_stopping);
  uint16_t own_port = 0;
  std::string error;
  const int32_t fd =
      sdk::listen_on_shard(_cfg.listen, _cfg.listen_backlog, shared_port ? *shared_port : own_port, error, _cfg.listen_key);
  if (fd < 0) return error;
  _listen_fd = fd;
  _port = sdk::local_address(fd).port();
  _rng = rng(_cfg.self.value() ^ sdk::now_ns() ^ (uint64_t{sdk::this_shard()} << 48));
  sdk::spawn(sdk::accept_loop(
      fd, _stop, _tasks, [this](int32_t c, sdk::gate::holder h) { return serve(c, std::move(h)); },
      _tasks.try_enter()));
  sdk::spawn(expire_hellos(_tasks.try_enter()));
  return {};
}

// ---- the peer table -----------------------------------------------------------

transport::peer& transport::peer_of(node_id node) {
  auto& slot = _peers[node.value()];
  if (!slot) {
    slot = std::make_unique<peer>();
    slot->id = node;
    slot->stats.node = node;
  }
  return *slot;
}

void transport::set_peer(node_id node, const sdk::socket_address& address) {
  SLUICE_ASSERT(!node.is_zero());
  if (node == _cfg.self) return;  // the owner may pass the whole broker table; nothing is sent to ourselves
  peer& p = peer_of(node);
  if (p.address && p.address->len == address.len && std::memcmp(&p.address->storage, &address.storage, address.len) == 0)
    return;
  p.address = address;
  p.stats.address = address.to_string();
  abort_connection(p, "its address changed to " + p.stats.address);
}

bool transport::set_peer(node_id node, std::string_view host_port) {
  auto a = sdk::parse_host_port(std::string(host_port));
  if (!a) return false;
  set_peer(node, *a);
  return true;
}

void transport::remove_peer(node_id node) {
  auto it = _peers.find(node.value());
  if (it == _peers.end()) return;
  peer& p = *it->second;
  p.address.reset();
  p.stats.address.clear();
  abort_connection(p, "it left the peer table");
  p.wake.notify_all();  // an idle connection task exits
}

// ---- sending -----------------------------------------------------------------

// The peer to queue `bytes` for, or null (and counted) when refused.
transport::peer* transport::admit(node_id to, size_t bytes, bool bounded) {
  if (_stopping) return nullptr;
  auto it = _peers.find(to.value());
  if (it == _peers.end() || !it->second->address) {
    if (it != _peers.end()) ++it->second->stats.dropped;
    ++_counters.dropped_unknown_peer;
    return nullptr;
  }
  peer& p = *it->second;
  if (p.state == peer_state::backoff || frame_bytes_bound + bytes > _cfg.frame_bytes_max) {
    ++p.stats.dropped;
    return nullptr;
  }
  const uint64_t pending = p.queue_bytes + p.outbox_bytes;
  if (bounded && pending > 0 && pending + bytes > _cfg.peer_queue_bytes_max) {
    ++p.stats.refused;
    return nullptr;
  }
  if (p.state == peer_state::idle) start_connecting(p);
  p.queue_bytes += bytes;
  return &p;
}

bool transport::send(node_id to, group_id group, message msg) {
  peer* p = admit(to, message_bytes_bound(msg), carries_data(msg));
  if (p == nullptr) return false;
  p->queue.push_back(group_message{group, std::move(msg)});
  return true;
}

bool transport::send_app(node_id to, app_message msg) {
  peer* p = admit(to, app_bytes_bound(msg), true);
  if (p == nullptr) return false;
  p->apps.push_back(std::move(msg));
  return true;
}

void transport::flush() {
  const uint64_t now = sdk::now_ns();
  for (auto& [id, p] : _peers) {
    flush_peer(*p, now);
    // A writer that made no progress for peer_timeout_ms: the peer is stuck.
    if (p->state == peer_state::connected && !p->outbox.empty() &&
        now - p->last_progress_ns > uint64_t{_cfg.peer_timeout_ms} * 1'000'000) {
      abort_connection(*p, "nothing was written for " + std::to_string(_cfg.peer_timeout_ms) + " ms");
    }
  }
}

// Encodes the queue into frames of at most frame_bytes_max (one unless the
// queue is larger) and hands them to the writer.
void transport::flush_peer(peer& p, uint64_t now) {
  if (p.queue.empty() && p.apps.empty()) return;
  if (p.state != peer_state::connecting && p.state != peer_state::connected) {
    drop_all(p);
    return;
  }
  if (p.outbox.empty()) p.last_progress_ns = now;
  size_t mb = 0, ab = 0;  // the first message and app not yet in a frame
  size_t bound = frame_bytes_bound;
  auto emit = [&](size_t me, size_t ae) {
    outgoing o{encode_frame(std::span(p.queue).subspan(mb, me - mb), std::span(p.apps).subspan(ab, ae - ab)),
               (me - mb) + (ae - ab)};
    p.outbox_bytes += o.frame.size();
    p.outbox.push_back(std::move(o));
    mb = me;
    ab = ae;
    bound = frame_bytes_bound;
  };
  for (size_t k = 0; k < p.queue.size(); ++k) {
    const size_t b = message_bytes_bound(p.queue[k].msg);
    if (k > mb && bound + b > _cfg.frame_bytes_max) emit(k, ab);
    bound += b;
  }
  for (size_t k = 0; k < p.apps.size(); ++k) {
    const size_t b = app_bytes_bound(p.apps[k]);
    if ((k > ab || mb < p.queue.size()) && bound + b > _cfg.frame_bytes_max) emit(p.queue.size(), k);
    bound += b;
  }
  emit(p.queue.size(), p.apps.size());
  p.queue.clear();
  p.apps.clear();
  p.queue_bytes = 0;
  p.wake.notify_all();
}

void transport::drop_all(peer& p) {
  uint64_t n = p.queue.size() + p.apps.size();
  for (const outgoing& o : p.outbox) n += o.messages;
  p.stats.dropped += n;
  p.queue.clear();
  p.apps.clear();
  p.outbox.clear();
  p.queue_bytes = p.outbox_bytes = p.front_written = 0;
}

// ---- outbound connections ----------------------------------------------------------

void transport::start_connecting(peer& p) {
  SLUICE_ASSERT(p.state == peer_state::idle);
  p.state = peer_state::connecting;
  if (p.task_running) {
    p.wake.notify_all();
    return;
  }
  sdk::gate::holder h = _tasks.try_enter();
  if (!h) return;
  p.task_running = true;
  sdk::spawn(run_peer(p, std::move(h)));
}

void transport::abort_connection(peer& p, std::string reason) {
  if (p.conn_abort && !p.conn_abort->abort_requested()) {
    p.close_reason = std::move(reason);
    p.conn_abort->request_abort();
  }
  p.wake.notify_all();
}

// The life of the connection to one peer: connect on demand, run it until
// it fails, back off, and again; until stop() or the peer is removed.
task<void> transport::run_peer(peer& p, sdk::gate::holder) {
  uint32_t backoff_ms = _cfg.reconnect_backoff_min_ms;
  for (;;) {
    while (!_stopping && p.address && p.state == peer_state::idle) co_await p.wake.wait();
    if (_stopping || !p.address) break;
    const uint64_t began = sdk::now_ns();
    const bool was_up = co_await run_connection(p);
    drop_all(p);
    if (_stopping) break;
    // A connection that stayed up for a while resets the backoff.
    if (was_up && sdk::now_ns() - began >= uint64_t{_cfg.reconnect_backoff_max_ms} * 1'000'000)
      backoff_ms = _cfg.reconnect_backoff_min_ms;
    p.state = peer_state::backoff;
    co_await sdk::sleep_ms(_rng.between(backoff_ms / 2 + 1, backoff_ms), &_stop);
    backoff_ms = std::min(backoff_ms * 2, _cfg.reconnect_backoff_max_ms);
    p.state = peer_state::idle;
  }
  drop_all(p);
  p.state = peer_state::idle;
  p.task_running = false;
}

// One connection: connect, hello, write until it fails. True when it was
// established.
task<bool> transport::run_connection(peer& p) {
  const sdk::socket_address addr = *p.address;
  const std::string where = node_name(p.id) + " at " + addr.to_string();
  p.conn_abort = std::make_unique<sdk::abort_source>();
  sdk::abort_source& abort = *p.conn_abort;
  p.close_reason.clear();
  const int fd = ::socket(addr.storage.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    ++p.stats.connect_failures;
    warn(p.log, "raft rpc: cannot create a socket for " + where + ": " + std::strerror(errno));
    co_return false;
  }
  tune_socket(fd, _cfg.peer_timeout_ms);
  const int32_t rc = co_await sdk::connect(fd, addr.get(), addr.len, &abort);
  if (rc < 0 || _stopping) {
    if (!_stopping && !abort.abort_requested()) {
      ++p.stats.connect_failures;
      warn(p.log, "raft rpc: cannot connect to " + where + ": " + std::strerror(-rc) + "; retrying with backoff");
      p.failing = true;
    }
    co_await sdk::close(fd);
    co_return false;
  }
  if (p.failing) sdk::log_info("raft rpc: connected to " + where);
  p.failing = false;
  p.state = peer_state::connected;
  p.stats.connected = true;
  ++p.stats.connects;
  p.last_progress_ns = sdk::now_ns();

  // The hello goes first, before anything flushed while connecting.
  outgoing hello{encode_hello({_cfg.cluster_id, _cfg.self, sdk::this_shard(), protocol_version, p.id}), 0};
  p.outbox_bytes += hello.frame.size();
  p.outbox.push_front(std::move(hello));

  sdk::event watcher_done;
  if (sdk::gate::holder h = _tasks.try_enter()) {
    sdk::spawn(watch_close(p, fd, abort, watcher_done, std::move(h)));
  } else {
    watcher_done.set();
    abort.request_abort();
  }
  co_await write_frames(p, fd, abort);
  abort.request_abort();
  co_await watcher_done.wait();
  co_await sdk::close(fd);
  p.stats.connected = false;
  ++p.stats.disconnects;
  if (!_stopping) {
    uint64_t lost = p.queue.size() + p.apps.size();
    for (const outgoing& o : p.outbox) lost += o.messages;
    warn(p.log, "raft rpc: lost the connection to " + where + ": " +
                    (p.close_reason.empty() ? std::string("closed") : p.close_reason) + "; dropping " +
                    std::to_string(lost) + " queued messages");
  }
  p.conn_abort.reset();
  co_return true;
}

// Writes the outbox until the connection is aborted or a write fails: all
// frames waiting at once in one sendmsg (up to IOV_MAX pieces).
task<void> transport::write_frames(peer& p, int32_t fd, sdk::abort_source& abort) {
  std::vector<iovec> iov;
  for (;;) {
    while (p.outbox.empty() && !abort.abort_requested()) co_await p.wake.wait();
    if (abort.abort_requested()) co_return;
    iov.clear();
    for (const outgoing& o : p.outbox) {
      o.frame.append_iovecs(iov);
      if (iov.size() >= IOV_MAX) break;
    }
    // Skip what a partial write already sent of the first frame.
    size_t first = 0;
    for (uint64_t skip = p.front_written; skip > 0;) {
      if (skip >= iov[first].iov_len) {
        skip -= iov[first].iov_len;
        ++first;
      } else {
        iov[first].iov_base = static_cast<char*>(iov[first].iov_base) + skip;
        iov[first].iov_len -= skip;
        skip = 0;
      }
    }
    msghdr m{};
    m.msg_iov = iov.data() + first;
    m.msg_iovlen = std::min<size_t>(iov.size() - first, IOV_MAX);
    const int32_t n = co_await sdk::sendmsg(fd, &m, &abort);
    if (n <= 0) {
      if (!abort.abort_requested()) p.close_reason = n == 0 ? "sent nothing" : std::string(std::strerror(-n));
      co_return;
    }
    p.last_progress_ns = sdk::now_ns();
    // Retire the frames written in full.
    uint64_t left = static_cast<uint64_t>(n);
    while (left > 0) {
      SLUICE_ASSERT(!p.outbox.empty());
      outgoing& o = p.outbox.front();
      const uint64_t rest = o.frame.size() - p.front_written;
      if (left < rest) {
        p.front_written += left;
        break;
      }
      left -= rest;
      ++p.stats.frames_sent;
      p.stats.bytes_sent += o.frame.size();
      p.stats.messages_sent += o.messages;
      p.outbox_bytes -= o.frame.size();
      p.front_written = 0;
      p.outbox.pop_front();
    }
  }
}

// The peer never writes on this connection: a completed read means it
// closed (or broke the protocol), which ends the connection at once rather
// than at the next failed write.
task<void> transport::watch_close(peer& p, int32_t fd, sdk::abort_source& abort, sdk::event& done,
                                  sdk::gate::holder) {
  char buf[64];
  const int32_t n = co_await sdk::recv(fd, buf, sizeof(buf), &abort);
  if (!abort.abort_requested()) {
    abort_connection(p, n == 0   ? "closed by the peer"
                        : n > 0  ? "the peer sent bytes on an outbound connection"
                                 : std::string(std::strerror(-n)));
  }
  done.set();
}

// ---- inbound connections -------------------------------------------------------------

std::string transport::check_hello(const hello_message& h) const {
  if (h.version != protocol_version) {
    return "protocol version " + std::to_string(h.version) + " is not supported (this broker speaks " +
           std::to_string(protocol_version) + ")";
  }
  if (h.cluster_id != _cfg.cluster_id) {
    return "cluster id '" + h.cluster_id + "' is not this cluster's '" + _cfg.cluster_id + "'";
  }
  if (h.target != _cfg.self) {
    return "it meant to reach node " + std::to_string(h.target.value()) + " but this is node " +
           std::to_string(_cfg.self.value()) + " (stale peer address?)";
  }
  if (h.node == _cfg.self) return "it claims this broker's own node id";
  return {};
}

void transport::deliver(inbound& c, decoded_frame& f, size_t bytes) {
  peer_stats& st = peer_of(c.from).stats;
  ++st.frames_received;
  st.bytes_received += bytes;
  st.messages_received += f.messages.size() + f.apps.size();
  for (group_message& gm : f.messages) {
    if (_stopping) return;
    if (_on_raft) _on_raft(c.from, gm.group, std::move(gm.msg));
  }
  for (const app_message& a : f.apps) {
    if (_stopping) return;
    if (_on_app) _on_app(c.from, a);
  }
}

task<void> transport::serve(int32_t fd, sdk::gate::holder) {
  _inbound.emplace_front();
  const auto self = _inbound.begin();
  inbound& c = *self;
  c.opened_ns = sdk::now_ns();
  c.address = peer_address_of(fd);
  ++_counters.inbound_accepted;
  ++_counters.inbound_open;
  tune_socket(fd, _cfg.peer_timeout_ms);
  frame_reader reader(_cfg.frame_bytes_max);
  std::string refusal;  // why this side closes the connection
  node_id claimed;      // the node id of the hello, even a refused one
  while (refusal.empty() && !_stopping) {
    const std::span<char> room = reader.prepare();
    const int32_t n = co_await sdk::recv(fd, room.data(), room.size(), &c.abort);
    if (n <= 0) {
      if (c.late) refusal = "no hello within " + std::to_string(_cfg.hello_timeout_ms) + " ms";
      break;
    }
    reader.commit(static_cast<size_t>(n));
    while (refusal.empty() && !_stopping) {
      auto next = reader.next();
      if (!next) {
        refusal = next.err().message;
        break;
      }
      if (!next.value()) break;
      const frame_view view = std::move(*next.value());
      auto frame = decode_frame(view);
      if (!frame) {
        refusal = "bad frame: " + frame.err().message;
        break;
      }
      decoded_frame& f = frame.value();
      if (!c.greeted) {
        if (f.hello) claimed = f.hello->node;
        if (!f.hello) {
          refusal = "the first frame is not a hello";
        } else if (std::string why = check_hello(*f.hello); !why.empty()) {
          refusal = "hello from " + node_name(f.hello->node) + " shard " + std::to_string(f.hello->shard) + ": " + why;
        } else {
          c.greeted = true;
          c.from = f.hello->node;
        }
        continue;
      }
      if (f.hello) {
        refusal = "a second hello";
        break;
      }
      deliver(c, f, view.size + length_field_bytes);
    }
  }
  if (!refusal.empty()) {
    ++_counters.inbound_rejected;
    // One limiter per claimed node id (a bounded number of them).
    const uint64_t key = _refusal_log.size() < 256 || _refusal_log.count(claimed.value()) ? claimed.value() : 0;
    warn(_refusal_log[key], "raft rpc: closing the connection from " + c.address +
                                            (c.greeted ? " (" + node_name(c.from) + ")" : std::string()) + ": " +
                                            refusal);
  }
  --_counters.inbound_open;
  _inbound.erase(self);
  co_await sdk::close(fd);
}

// Closes inbound connections that did not say hello in time.
task<void> transport::expire_hellos(sdk::gate::holder) {
  const uint64_t timeout_ns = uint64_t{_cfg.hello_timeout_ms} * 1'000'000;
  const uint64_t period_ms = std::max<uint64_t>(_cfg.hello_timeout_ms / 4, 25);
  while (co_await sdk::sleep_ms(period_ms, &_stop) == -ETIME) {
    const uint64_t now = sdk::now_ns();
    for (inbound& c : _inbound) {
      if (!c.greeted && !c.late && now - c.opened_ns > timeout_ns) {
        c.late = true;
        c.abort.request_abort();
      }
    }
  }
}

// ---- stopping and stats ---------------------------------------------------------------

task<void> transport::stop() {
  SLUICE_ASSERT(!_stopping);
  _stopping = true;
  _stop.request_abort();
  for (auto& [id, p] : _peers) abort_connection(*p, "stopping");
  for (inbound& c : _inbound) c.abort.request_abort();
  co_await _tasks.close();
  if (_listen_fd >= 0) {
    co_await sdk::close(_listen_fd);
    _listen_fd = -1;
  }
  for (auto& [id, p] : _peers) drop_all(*p);
}

transport_stats transport::stats() const {
  transport_stats out = _counters;
  out.peers.reserve(_peers.size());
  for (const auto& [id, p] : _peers) {
    out.peers.push_back(p->stats);
    out.peers.back().queued_bytes = p->queue_bytes + p->outbox_bytes;
  }
  return out;
}

}  // namespace sluice::raft::rpc
