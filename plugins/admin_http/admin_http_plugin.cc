// The `admin_http` plugin: the admin REST API and Prometheus metrics on their
// own listener (default 127.0.0.1:9644).
//
// HTTP/1.1 is parsed and serialised with Boost.Beast, but the bytes move
// through the shard's io_uring ring (sdk::recv / sdk::send): Beast's parser
// is fed from the connection's buffer, no Asio io_context or thread pool
// runs. Every shard listens (SO_REUSEPORT) and serves its own connections.
//
// This first part serves /v1/status/live, /v1/status/ready and /metrics;
// every error is a JSON body {"code", "message"}. docs/ADMIN.md lists the
// endpoints.
#include "prometheus.h"

#include <sluice/sdk/net.h>
#include <sluice/sdk/plugin.h>
#include <sluice/sdk/server.h>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <list>
#include <sstream>
#include <string>

namespace sluice::admin_http {
namespace {

namespace http = boost::beast::http;
using sdk::task;

struct settings {
  sdk::socket_address listen;
  uint64_t max_body_bytes = 1 << 20;
  uint64_t max_header_bytes = 16 << 10;
  uint64_t idle_timeout_ms = 60'000;
  uint64_t backlog = 256;
};

struct connection {
  sdk::abort_source abort;
  uint64_t last_active_ns = 0;
};

struct shard_state {
  int listen_fd = -1;
  sdk::abort_source stop;
  sdk::gate tasks;
  std::list<connection> connections;
};

using response = http::response<http::string_body>;

response json_response(http::status status, const nlohmann::json& body, unsigned version, bool keep_alive) {
  response res{status, version};
  res.set(http::field::server, "sluice");
  res.set(http::field::content_type, "application/json");
  res.keep_alive(keep_alive);
  res.body() = body.dump();
  res.prepare_payload();
  return res;
}

response error_response(http::status status, const std::string& message, unsigned version, bool keep_alive) {
  return json_response(status, {{"code", static_cast<int>(status)}, {"message", message}}, version, keep_alive);
}

class admin_http_plugin final : public sdk::plugin {
 public:
  void configure(sdk::config_map& cfg) override {
    const std::string listen = cfg.get_string("listen", "127.0.0.1:9644");
    auto addr = sdk::parse_host_port(listen);
    if (!addr)
      cfg.fail(cfg.get_node("listen"), "listen",
               "expected HOST:PORT with a numeric IPv4 host, [IPv6]:PORT or localhost:PORT, got \"" + listen + "\"");
    _settings.listen = *addr;
    _settings.max_body_bytes = cfg.get_uint("max_body_bytes", _settings.max_body_bytes, 0, 64u << 20);
    _settings.idle_timeout_ms = cfg.get_uint("idle_timeout_ms", _settings.idle_timeout_ms, 100, 86'400'000);
    _settings.backlog = cfg.get_uint("backlog", _settings.backlog, 1, 65535);
    _m_requests = sdk::register_metric(SLUICE_METRIC_COUNTER, "admin_http_requests_total", "Admin HTTP requests served");
    _m_errors = sdk::register_metric(SLUICE_METRIC_COUNTER, "admin_http_errors_total",
                                     "Admin HTTP requests answered with a 4xx or 5xx status");
    _shards.init(sdk::shard_count());
  }

  std::string start(uint32_t shard) override {
    shard_state& st = _shards.emplace(shard);
    std::string error;
    const int32_t fd =
        sdk::listen_on_shard(_settings.listen, static_cast<int32_t>(_settings.backlog), _bound_port, error, "listen");
    if (fd < 0) {
      _shards.reset(shard);
      return error;
    }
    st.listen_fd = fd;
    if (shard == 0) sdk::log_info("admin API listening on http://" + sdk::local_address(fd).to_string() + "/");
    _started.fetch_add(1);
    sdk::spawn(sdk::accept_loop(
        fd, st.stop, st.tasks,
        [this, &st](int32_t c, sdk::gate::holder h) { return serve(st, c, std::move(h)); }, st.tasks.try_enter()));
    // Slow or half-open connections are cut after idle_timeout_ms.
    sdk::spawn(sdk::sweep_idle(st.connections, _settings.idle_timeout_ms, st.stop, st.tasks.try_enter()));
    return {};
  }

  task<void> stop(uint32_t shard) override {
    shard_state& st = _shards.at(shard);
    _stopping.store(true);
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
    std::string in;  // received, not yet parsed
    char chunk[16 * 1024];
    bool open = true;
    while (open) {
      http::request_parser<http::string_body> parser;
      parser.body_limit(_settings.max_body_bytes);
      parser.header_limit(static_cast<uint32_t>(_settings.max_header_bytes));
      parser.eager(true);
      boost::beast::error_code ec;
      // Feed the parser until one request is complete.
      while (!parser.is_done()) {
        if (!in.empty()) {
          const size_t used = parser.put(boost::asio::buffer(in.data(), in.size()), ec);
          in.erase(0, used);
          if (ec == http::error::need_more) ec = {};
          if (ec || parser.is_done()) break;
        }
        const int32_t n = co_await sdk::recv(fd, chunk, sizeof(chunk), &self->abort);
        if (n <= 0) {
          open = false;
          break;
        }
        self->last_active_ns = sdk::now_ns();
        in.append(chunk, static_cast<size_t>(n));
      }
      if (!open) break;
      response res;
      if (ec) {
        // Malformed or too large: answer once, then close.
        const bool too_large = ec == http::error::body_limit || ec == http::error::header_limit;
        res = error_response(too_large ? http::status::payload_too_large : http::status::bad_request,
                             "cannot parse the request: " + ec.message(), 11, false);
        open = false;
      } else {
        auto req = parser.release();
        res = route(req);
        open = req.keep_alive();
      }
      _m_requests.add(1);
      if (res.result_int() >= 400) _m_errors.add(1);
      std::ostringstream os;
      os << res;
      const std::string out = os.str();
      if (!co_await sdk::send_all(fd, out, self->abort)) break;
    }
    st.connections.erase(self);
    co_await sdk::close(fd);
  }

  response route(const http::request<http::string_body>& req) {
    const std::string target(req.target());
    const std::string path = target.substr(0, target.find('?'));
    const unsigned v = req.version();
    const bool keep = req.keep_alive();
    auto only_get = [&]() -> std::optional<response> {
      if (req.method() == http::verb::get || req.method() == http::verb::head) return std::nullopt;
      auto r = error_response(http::status::method_not_allowed,
                              std::string(req.method_string()) + " is not allowed on " + path, v, keep);
      r.set(http::field::allow, "GET, HEAD");
      return r;
    };
    if (path == "/v1/status/live") {
      if (auto r = only_get()) return *r;
      return json_response(http::status::ok, {{"status", "live"}}, v, keep);
    }
    if (path == "/v1/status/ready") {
      if (auto r = only_get()) return *r;
      // Ready once every shard listens and no drain has begun.
      const bool ready = _started.load() == sdk::shard_count() && !_stopping.load();
      return json_response(ready ? http::status::ok : http::status::service_unavailable,
                           {{"status", ready ? "ready" : "not ready"}}, v, keep);
    }
    if (path == "/metrics") {
      if (auto r = only_get()) return *r;
      response res{http::status::ok, v};
      res.set(http::field::server, "sluice");
      res.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
      res.keep_alive(keep);
      res.body() = render_prometheus();
      res.prepare_payload();
      return res;
    }
    return error_response(http::status::not_found, "no route for " + path, v, keep);
  }

  settings _settings;
  uint16_t _bound_port = 0;
  std::atomic<uint32_t> _started{0};
  std::atomic<bool> _stopping{false};
  sdk::per_shard<shard_state> _shards;
  sdk::metric _m_requests, _m_errors;
};

}  // namespace
}  // namespace sluice::admin_http

SLUICE_PLUGIN(sluice::admin_http::admin_http_plugin, "admin_http", "0.1.0",
              "Admin REST API and Prometheus metrics over HTTP (Boost.Beast on the shards' io_uring rings)")
