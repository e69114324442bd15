// The `admin_http` plugin: the admin REST API and Prometheus metrics on their
// own listener (default 127.0.0.1:9644).
//
// HTTP/1.1 is parsed and serialised with Boost.Beast, but the bytes move
// through the shard's io_uring ring (sdk::recv / sdk::send): Beast's parser
// is fed from the connection's buffer, no Asio io_context or thread pool
// runs. Every shard listens (SO_REUSEPORT) and serves its own connections.
//
// Routes come from two places: the ones this plugin serves itself (status,
// metrics, plugins, loggers, node config, the console) and the ones other
// plugins registered through the host API (sdk/admin.h), which are called
// as services on the shard that received the request. Every error is a
// JSON body {"code", "message"}. docs/ADMIN.md lists the endpoints.
#include "console_assets.h"
#include "prometheus.h"
#include "request_feed.h"
#include "router.h"

#include <sluice/sdk/admin.h>
#include <sluice/sdk/net.h>
#include <sluice/sdk/plugin.h>
#include <sluice/sdk/server.h>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <algorithm>
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
  auth_settings auth;
  bool console = true;
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
    _settings.listen = sdk::address_setting(cfg, "listen", "127.0.0.1:9644");
    _settings.max_body_bytes = cfg.get_uint("max_body_bytes", _settings.max_body_bytes, 0, 64u << 20);
    _settings.idle_timeout_ms = cfg.get_uint("idle_timeout_ms", _settings.idle_timeout_ms, 100, 86'400'000);
    _settings.backlog = cfg.get_uint("backlog", _settings.backlog, 1, 65535);
    _settings.console = cfg.get_bool("console", true);
    if (cfg.has("auth")) {
      sdk::config_map auth = cfg.get_map("auth");
      _settings.auth.bearer_token = auth.get_string("bearer_token", "");
      if (auth.has("basic")) {
        sdk::config_map basic = auth.get_map("basic");
        _settings.auth.username = basic.require_string("username");
        _settings.auth.password = basic.require_string("password");
        if (_settings.auth.username.empty() || _settings.auth.username.find(':') != std::string::npos)
          basic.fail(basic.get_node("username"), "username", "must be non-empty and without ':'");
        basic.finish();
      }
      if (!_settings.auth.enabled())
        auth.fail(cfg.get_node("auth"), "auth", "needs bearer_token or basic (or remove the section)");
      auth.finish();
    }
    _m_requests = sdk::register_metric(SLUICE_METRIC_COUNTER, "admin_http_requests_total", "Admin HTTP requests served");
    _m_errors = sdk::register_metric(SLUICE_METRIC_COUNTER, "admin_http_errors_total",
                                     "Admin HTTP requests answered with a 4xx or 5xx status");
    _shards.init(sdk::shard_count());
  }

  std::string start(uint32_t shard) override {
    shard_state& st = _shards.emplace(shard);
    // Every plugin has configured by now, so the routes are final; shard 0
    // starts before the others, which then only read the table.
    if (shard == 0) build_routes();
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
        if (feed_request(parser, in, ec)) break;
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
        res = co_await route(req);
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

  // Built-in routes: service_id -1, message_type one of these.
  enum builtin : uint32_t {
    b_live = 1, b_ready, b_metrics, b_plugins, b_loggers, b_logger_put, b_logger_get, b_node_config,
    b_routes, b_console_index, b_console_file
  };

  void build_routes() {
    auto add = [this](const char* method, const char* pattern, builtin b) {
      _routes.add({method, pattern, -1, b, "admin_http"});
    };
    add("GET", "/v1/status/live", b_live);
    add("GET", "/v1/status/ready", b_ready);
    add("GET", "/metrics", b_metrics);
    add("GET", "/v1/plugins", b_plugins);
    add("GET", "/v1/loggers", b_loggers);
    add("GET", "/v1/loggers/{name}", b_logger_get);
    add("PUT", "/v1/loggers/{name}", b_logger_put);
    add("GET", "/v1/node_config", b_node_config);
    add("GET", "/v1/routes", b_routes);
    if (_settings.console) {
      add("GET", "/", b_console_index);
      add("GET", "/console/{file}", b_console_file);
    }
    sdk::api().route_visit(
        sdk::host(),
        [](void* user, const sluice_route_view* r) {
          static_cast<route_table*>(user)->add({r->method, r->path, r->service_id, r->message_type, r->plugin});
        },
        &_routes);
  }

  struct reply_parts {
    int status = 200;
    std::string content_type = "application/json";
    std::string body;
  };

  static reply_parts json_reply(int status, const nlohmann::json& body) {
    return {status, "application/json", body.dump()};
  }
  static reply_parts error_reply(int status, const std::string& message) {
    return json_reply(status, {{"code", status}, {"message", message}});
  }

  task<response> route(const http::request<http::string_body>& req) {
    const unsigned v = req.version();
    const bool keep = req.keep_alive();
    const std::string method(req.method_string());
    auto finish = [&](reply_parts r) {
      response res{static_cast<http::status>(r.status), v};
      res.set(http::field::server, "sluice");
      res.set(http::field::content_type, r.content_type);
      res.keep_alive(keep);
      if (req.method() != http::verb::head) res.body() = std::move(r.body);
      res.prepare_payload();
      if (req.method() == http::verb::head) res.content_length(r.body.size());
      return res;
    };
    auto t = parse_target(req.target());
    if (!t) co_return finish(error_reply(400, "malformed request target"));
    // Probes stay open; everything else needs credentials when auth is set.
    if (t->path.rfind("/v1/status/", 0) != 0 && !authorized(_settings.auth, req[http::field::authorization])) {
      auto res = finish(error_reply(401, "missing or wrong credentials for " + t->path));
      res.set(http::field::www_authenticate,
              _settings.auth.username.empty() ? "Bearer realm=\"sluice\"" : "Basic realm=\"sluice\"");
      co_return res;
    }
    match_result m = _routes.match(method, t->raw_path);
    if (m.route == nullptr) {
      if (m.allowed.empty()) co_return finish(error_reply(404, "no route for " + t->path));
      std::string allow;
      for (const auto& a : m.allowed) allow += (allow.empty() ? "" : ", ") + a + (a == "GET" ? ", HEAD" : "");
      auto res = finish(error_reply(405, method + " is not allowed on " + t->path));
      res.set(http::field::allow, allow);
      co_return res;
    }
    if (m.route->service_id < 0 && m.route->message_type == b_metrics) {
      // (GCC 12 miscompiles a co_await inside a braced initialiser: keep it a statement.)
      std::string text = co_await metrics_text();
      co_return finish({200, "text/plain; version=0.0.4; charset=utf-8", std::move(text)});
    }
    if (m.route->service_id < 0) co_return finish(serve_builtin(static_cast<builtin>(m.route->message_type), *t, m, req));
    // A plugin's route: call its service on this shard.
    sdk::http_request hr;
    hr.method = req.method() == http::verb::head ? "GET" : method;
    hr.path = t->path;
    hr.params = std::move(m.params);
    hr.query = std::move(t->query);
    hr.body = req.body();
    sdk::message msg;
    msg.type = m.route->message_type;
    msg.bytes = sdk::encode(hr);
    const sdk::reply rep = co_await sdk::call(m.route->service_id, sdk::this_shard(), msg);
    sdk::http_response out;
    if (rep.status != 0 || !sdk::decode(rep.msg.bytes, out))
      co_return finish(error_reply(503, "plugin '" + m.route->plugin + "' could not answer (status " +
                                            std::to_string(rep.status) + ")"));
    co_return finish({out.status, out.content_type, std::move(out.body)});
  }

  reply_parts serve_builtin(builtin b, const target& t, const match_result& m,
                            const http::request<http::string_body>& req) {
    switch (b) {
      case b_live:
        return json_reply(200, {{"status", "live"}});
      case b_ready: {
        // Ready once every shard listens and no drain has begun.
        const bool ready = _started.load() == sdk::shard_count() && !_stopping.load();
        return json_reply(ready ? 200 : 503, {{"status", ready ? "ready" : "not ready"}});
      }
      case b_metrics:
        break;  // asynchronous: route() serves it (metrics_text)
      case b_plugins:
        return json_reply(200, plugins_json());
      case b_loggers:
        return json_reply(200, loggers_json());
      case b_logger_get: {
        for (const auto& l : loggers_json())
          if (l["name"] == m.params.at("name")) return json_reply(200, l);
        return error_reply(404, "no logger named '" + m.params.at("name") + "'");
      }
      case b_logger_put:
        return put_logger(m.params.at("name"), req.body());
      case b_node_config:
        return {200, "application/json", sdk::api().node_config_json(sdk::host())};
      case b_routes: {
        nlohmann::json out = nlohmann::json::array();
        for (const auto& r : _routes.routes())
          out.push_back({{"method", r.method}, {"path", r.pattern}, {"plugin", r.plugin}});
        return json_reply(200, out);
      }
      case b_console_index:
      case b_console_file: {
        const std::string name = b == b_console_index ? "index.html" : m.params.at("file");
        for (const console_asset& a : console_assets())
          if (a.name == name) return {200, std::string(a.content_type), std::string(a.data)};
        return error_reply(404, b == b_console_index ? "the console is not part of this build"
                                                     : "no console file " + name);
      }
    }
    (void)t;
    return error_reply(500, "unknown built-in route");
  }

  static nlohmann::json plugins_json() {
    nlohmann::json out = nlohmann::json::array();
    sdk::api().plugin_visit(
        sdk::host(),
        [](void* user, const sluice_plugin_view* p) {
          auto& arr = *static_cast<nlohmann::json*>(user);
          nlohmann::json deps = nlohmann::json::array(), services = nlohmann::json::array();
          for (auto d = p->dependencies; d && *d; ++d) deps.push_back(*d);
          for (auto sv = p->services; sv && *sv; ++sv) services.push_back(*sv);
          arr.push_back({{"name", p->name},
                         {"version", p->version},
                         {"description", p->description},
                         {"abi_version", std::to_string(p->abi_major) + "." + std::to_string(p->abi_minor)},
                         {"file", p->file},
                         {"dependencies", deps},
                         {"services", services},
                         {"routes", nlohmann::json::array()}});
        },
        &out);
    sdk::api().route_visit(
        sdk::host(),
        [](void* user, const sluice_route_view* r) {
          for (auto& p : *static_cast<nlohmann::json*>(user))
            if (p["name"] == r->plugin) p["routes"].push_back(std::string(r->method) + " " + r->path);
        },
        &out);
    return out;
  }

  static constexpr const char* level_names[] = {"trace", "debug", "info", "warn", "error", "off"};

  static nlohmann::json loggers_json() {
    nlohmann::json out = nlohmann::json::array();
    sdk::api().logger_visit(
        sdk::host(),
        [](void* user, const char* name, uint32_t level) {
          static_cast<nlohmann::json*>(user)->push_back(
              {{"name", name}, {"level", level_names[std::min<uint32_t>(level, SLUICE_LOG_OFF)]}});
        },
        &out);
    return out;
  }

  static reply_parts put_logger(const std::string& name, const std::string& body) {
    const nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return error_reply(400, "the body must be a JSON object {\"level\": ...}");
    if (!j.contains("level") || !j["level"].is_string())
      return error_reply(400, "\"level\" is required: one of trace, debug, info, warn, error, off");
    const std::string level = j["level"];
    uint32_t l = 0;
    while (l <= SLUICE_LOG_OFF && level != level_names[l]) ++l;
    if (l > SLUICE_LOG_OFF)
      return error_reply(400, "unknown level \"" + level + "\": one of trace, debug, info, warn, error, off");
    for (const auto& [key, value] : j.items())
      if (key != "level") return error_reply(400, "unknown key \"" + key + "\" (only \"level\")");
    if (sdk::api().log_level_set(sdk::host(), name.c_str(), l) != SLUICE_OK)
      return error_reply(404, "no logger named '" + name + "'");
    sdk::log_info("logger " + name + " set to " + level);
    return json_reply(200, {{"name", name}, {"level", level}});
  }

  // /metrics: the registry, then every plugin's metrics source.
  task<std::string> metrics_text() {
    std::string text = render_prometheus();
    std::vector<std::pair<int32_t, uint32_t>> sources;
    sdk::api().metrics_source_visit(
        sdk::host(),
        [](void* user, const sluice_metrics_source_view* s) {
          static_cast<std::vector<std::pair<int32_t, uint32_t>>*>(user)->emplace_back(s->service_id, s->message_type);
        },
        &sources);
    for (const auto& [service, type] : sources) {
      sdk::message msg;
      msg.type = type;
      const sdk::reply rep = co_await sdk::call(service, sdk::this_shard(), msg);
      if (rep.status == 0) text += rep.msg.bytes;
    }
    co_return text;
  }

  settings _settings;
  route_table _routes;
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
