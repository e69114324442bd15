// The example protocol plugin: a line-based echo/ping service on its own TCP
// port, written the way every Sluice plugin is written.
//
//   - configure(): read settings (strictly: unknown keys and bad values are
//     errors naming the key), register a service and metrics;
//   - start(shard): each shard listens on the same address (SO_REUSEPORT)
//     and serves its own connections: nothing is shared between shards;
//   - STATS asks every shard for its counters through the "echo.stats"
//     service (typed channel messages with protobuf payloads);
//   - stop(shard): stop accepting, cancel idle reads, wait for every
//     connection to finish (a gate), close the listener.
//
// See README.md in this folder for the protocol and a walkthrough.
#include "echo_protocol.h"
#include "sluice/echo.pb.h"

#include <sluice/sdk/net.h>
#include <sluice/sdk/plugin.h>
#include <sluice/sdk/server.h>

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <list>
#include <string>

namespace sluice::echo {
namespace {

using sdk::task;

struct settings {
  sdk::socket_address listen;
  uint64_t max_line_bytes = 4096;
  uint64_t idle_timeout_ms = 300'000;
  uint64_t backlog = 1024;
};

// One connection's cancellation and idle clock.
struct connection {
  sdk::abort_source abort;
  uint64_t last_active_ns = 0;
};

// Everything one shard owns. Touched only by that shard.
struct shard_state {
  int listen_fd = -1;
  sdk::abort_source stop;  // cancels accept and the idle sweeper
  sdk::gate tasks;         // accept loop, sweeper and every connection
  std::list<connection> connections;
  uint64_t lines_total = 0;
  uint64_t connections_total = 0;
};

class echo_plugin final : public sdk::plugin {
 public:
  void configure(sdk::config_map& cfg) override {
    _settings.listen = sdk::address_setting(cfg, "listen", "127.0.0.1:9099");
    _settings.max_line_bytes = cfg.get_uint("max_line_bytes", _settings.max_line_bytes, 16, 1u << 20);
    _settings.idle_timeout_ms = cfg.get_uint("idle_timeout_ms", _settings.idle_timeout_ms, 100, 86'400'000);
    _settings.backlog = cfg.get_uint("backlog", _settings.backlog, 1, 65535);

    _stats_service = sdk::register_service("echo.stats", [this](uint32_t shard, sdk::message req) {
      return serve_stats(shard, std::move(req));
    });
    if (_stats_service < 0) throw sdk::config_error("cannot register the echo.stats service");
    _m_connections = sdk::register_metric(SLUICE_METRIC_GAUGE, "echo_connections", "Open echo connections");
    _m_lines = sdk::register_metric(SLUICE_METRIC_COUNTER, "echo_lines_total", "Request lines served");
    _m_line_bytes = sdk::register_metric(SLUICE_METRIC_HISTOGRAM, "echo_line_bytes", "Request line sizes in bytes");
    _shards.init(sdk::shard_count());
  }

  std::string start(uint32_t shard) override {
    shard_state& st = _shards.emplace(shard);
    // With port 0 the kernel picks a port on shard 0; the others join it.
    std::string error;
    const int32_t fd =
        sdk::listen_on_shard(_settings.listen, static_cast<int32_t>(_settings.backlog), _bound_port, error, "listen");
    if (fd < 0) {
      _shards.reset(shard);
      return error;
    }
    st.listen_fd = fd;
    if (shard == 0)
      sdk::log_info("echo listening on " + sdk::local_address(fd).to_string() + " (" +
                    std::to_string(sdk::shard_count()) + " shard(s))");
    sdk::spawn(sdk::accept_loop(
        fd, st.stop, st.tasks,
        [this, &st](int32_t c, sdk::gate::holder h) { return serve(st, c, std::move(h)); }, st.tasks.try_enter()));
    sdk::spawn(sdk::sweep_idle(st.connections, _settings.idle_timeout_ms, st.stop, st.tasks.try_enter()));
    return {};
  }

  task<void> stop(uint32_t shard) override {
    shard_state& st = _shards.at(shard);
    st.stop.request_abort();
    for (auto& c : st.connections) c.abort.request_abort();
    co_await st.tasks.close();
    co_await sdk::close(st.listen_fd);
    _shards.reset(shard);
  }

 private:
  task<void> serve(shard_state& st, int32_t fd, sdk::gate::holder) {
    st.connections.emplace_front();
    auto self = st.connections.begin();
    self->last_active_ns = sdk::now_ns();
    ++st.connections_total;
    _m_connections.add(1);
    line_buffer in(_settings.max_line_bytes);
    std::string out;
    char chunk[4096];
    bool open = true;
    while (open) {
      const int32_t n = co_await sdk::recv(fd, chunk, sizeof(chunk), &self->abort);
      if (n <= 0) break;
      self->last_active_ns = sdk::now_ns();
      in.append(std::string_view(chunk, static_cast<size_t>(n)));
      std::string_view line;
      while (open && in.next(line)) {
        ++st.lines_total;
        _m_lines.add(1);
        _m_line_bytes.record(line.size());
        open = co_await answer(parse_line(line), out);
      }
      if (open && in.overflowed()) {
        out += "ERR line longer than " + std::to_string(_settings.max_line_bytes) + " bytes; closing\n";
        open = false;
      }
      if (!out.empty() && !co_await sdk::send_all(fd, out, self->abort)) break;
      out.clear();
    }
    _m_connections.add(-1);
    st.connections.erase(self);
    co_await sdk::close(fd);
  }

  // Appends the reply to out; false when the connection should close.
  task<bool> answer(const request& r, std::string& out) {
    switch (r.cmd) {
      case command::ping:
        out += "PONG\n";
        break;
      case command::echo:
        out.append(r.arg).push_back('\n');
        break;
      case command::shard:
        out += std::to_string(sdk::this_shard()) + "\n";
        break;
      case command::stats:
        out += co_await gather_stats();
        break;
      case command::quit:
        out += "BYE\n";
        co_return false;
      case command::empty:
        break;
      case command::unknown:
        out += "ERR unknown command '" + std::string(r.arg) + "'; try PING, ECHO, SHARD, STATS or QUIT\n";
        break;
    }
    co_return true;
  }

  // Sums every shard's counters, asking each over the echo.stats service.
  task<std::string> gather_stats() {
    uint64_t lines = 0, open = 0, total = 0;
    sdk::message req;
    req.type = STATS_MESSAGE_TYPE_REQUEST;
    StatsRequest().SerializeToString(&req.bytes);
    for (uint32_t s = 0; s < sdk::shard_count(); ++s) {
      sdk::reply rep = co_await sdk::call(_stats_service, s, req);
      StatsReply r;
      if (rep.status != 0 || rep.msg.type != STATS_MESSAGE_TYPE_REPLY || !r.ParseFromString(rep.msg.bytes))
        co_return "ERR shard " + std::to_string(s) + " did not answer\n";
      lines += r.lines_total();
      open += r.connections_open();
      total += r.connections_total();
    }
    co_return "lines=" + std::to_string(lines) + " connections=" + std::to_string(open) +
        " connections_total=" + std::to_string(total) + " shards=" + std::to_string(sdk::shard_count()) + "\n";
  }

  task<sdk::reply> serve_stats(uint32_t shard, sdk::message req) {
    sdk::reply rep;
    if (req.type != STATS_MESSAGE_TYPE_REQUEST) {
      rep.status = SLUICE_ERR_INVALID;
      co_return rep;
    }
    StatsReply r;
    r.set_shard(shard);
    if (_shards.has(shard)) {
      const shard_state& st = _shards.at(shard);
      r.set_lines_total(st.lines_total);
      r.set_connections_open(st.connections.size());
      r.set_connections_total(st.connections_total);
    }
    rep.msg.type = STATS_MESSAGE_TYPE_REPLY;
    r.SerializeToString(&rep.msg.bytes);
    co_return rep;
  }

  settings _settings;
  int32_t _stats_service = -1;
  uint16_t _bound_port = 0;  // written by shard 0's start, read by later starts
  sdk::per_shard<shard_state> _shards;
  sdk::metric _m_connections, _m_lines, _m_line_bytes;
};

}  // namespace
}  // namespace sluice::echo

SLUICE_PLUGIN(sluice::echo::echo_plugin, "echo", "0.1.0",
              "Example protocol plugin: a line-based echo and ping service on its own TCP port")
