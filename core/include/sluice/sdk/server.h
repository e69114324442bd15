// The parts every TCP protocol plugin repeats: the accept loop, the idle
// sweeper and sending a whole buffer. A plugin keeps its connections in a
// std::list of its own type with at least these members:
//
//   sdk::abort_source abort;    // cancels the connection's I/O
//   uint64_t last_active_ns;    // updated by the plugin on traffic
//
//   sdk::spawn(sdk::accept_loop(fd, st.stop, st.tasks, [&](int32_t c, sdk::gate::holder h) {
//     return serve(st, c, std::move(h));
//   }, st.tasks.try_enter()));
//   sdk::spawn(sdk::sweep_idle(st.connections, idle_ms, st.stop, st.tasks.try_enter()));
#pragma once

#include <sluice/sdk/config.h>
#include <sluice/sdk/net.h>
#include <sluice/sdk/runtime.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <string>

namespace sluice::sdk {

// A HOST:PORT setting of cfg (fallback nullptr: required), parsed; a bad
// value is a config error naming the key and the accepted forms.
inline socket_address address_setting(config_map& cfg, const std::string& key, const char* fallback) {
  const std::string text = fallback ? cfg.get_string(key, fallback) : cfg.require_string(key);
  auto addr = parse_host_port(text);
  if (!addr)
    cfg.fail(cfg.get_node(key), key,
             "expected HOST:PORT with a numeric IPv4 host, [IPv6]:PORT or localhost:PORT, got \"" + text + "\"");
  return *addr;
}

// Listens on addr from the calling shard (SO_REUSEPORT, so every shard can).
// With port 0 the first shard to bind (shard 0, which starts first) lets the
// kernel pick a port and records it in shared_port; later shards join that
// port. Returns the fd, or -errno with error set to a one-line message for
// start() to return; `key` names the setting to change.
inline int32_t listen_on_shard(socket_address addr, int32_t backlog, uint16_t& shared_port, std::string& error,
                               const std::string& key) {
  if (addr.port() == 0 && shared_port != 0) addr.set_port(shared_port);
  const int32_t fd = api().tcp_listen(host(), addr.get(), addr.len, backlog, 1);
  if (fd < 0) {
    error = "cannot listen on " + addr.to_string() + ": " + std::strerror(-fd) +
            (fd == -EADDRINUSE ? " (another process uses the port: stop it or change `" + key + "`)" : "");
    return fd;
  }
  if (shared_port == 0) shared_port = local_address(fd).port();
  return fd;
}

// Accepts on listen_fd until stop is aborted; each connection runs
// serve(fd, holder) under tasks. Running out of descriptors or memory
// backs off for 100 ms instead of spinning.
inline task<void> accept_loop(int32_t listen_fd, abort_source& stop, gate& tasks,
                              std::function<task<void>(int32_t fd, gate::holder)> serve, gate::holder) {
  for (;;) {
    const int32_t fd = co_await accept(listen_fd, &stop);
    if (fd < 0) {
      if (fd == -ECANCELED || stop.abort_requested()) break;
      if (fd == -EMFILE || fd == -ENFILE || fd == -ENOBUFS || fd == -ENOMEM) {
        log_warn(std::string("accept: ") + std::strerror(-fd) + "; retrying in 100 ms");
        co_await sleep_ms(100, &stop);
      }
      continue;
    }
    auto holder = tasks.try_enter();
    if (!holder) {
      co_await close(fd);
      break;
    }
    spawn(serve(fd, std::move(holder)));
  }
}

// Aborts the connections with no traffic for timeout_ms, checking four
// times per timeout, until stop is aborted.
template <class Connections>
task<void> sweep_idle(Connections& connections, uint64_t timeout_ms, abort_source& stop, gate::holder) {
  const uint64_t timeout_ns = timeout_ms * 1'000'000;
  const uint64_t period_ms = std::max<uint64_t>(timeout_ms / 4, 25);
  while (co_await sleep_ms(period_ms, &stop) == -ETIME) {
    const uint64_t now = now_ns();
    for (auto& c : connections)
      if (now - c.last_active_ns > timeout_ns) c.abort.request_abort();
  }
}

// Sends all of data; false when the peer is gone or abort fired. A client
// that stops reading is cut off by the idle sweeper or by stop.
inline task<bool> send_all(int32_t fd, const std::string& data, abort_source& abort) {
  size_t off = 0;
  while (off < data.size()) {
    const int32_t w = co_await send(fd, data.data() + off, data.size() - off, &abort);
    if (w <= 0) co_return false;
    off += static_cast<size_t>(w);
  }
  co_return true;
}

}  // namespace sluice::sdk
