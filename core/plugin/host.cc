#include "core/plugin/host.h"

#include "core/executor/shard.h"

#include <sluice/sdk/runtime.h>

#include <spdlog/spdlog.h>

#include <chrono>
#include <cstring>

namespace sluice::plugin {

namespace {

constexpr uint32_t main_slot = UINT32_MAX;

host* owner_of(sluice_host* h) noexcept { return static_cast<host*>(h->owner); }

uint32_t error_slot(const sluice_plugin_ctx* ctx) noexcept {
  const uint32_t s = executor::current_shard() ? sdk::this_shard() : main_slot;
  return s == main_slot ? static_cast<uint32_t>(ctx->errors.size() - 1) : s;
}

void api_log(sluice_plugin_ctx* ctx, uint32_t level, const char* msg, size_t len) {
  const auto lvl = static_cast<spdlog::level::level_enum>(level > uint32_t{SLUICE_LOG_ERROR} ? uint32_t{SLUICE_LOG_ERROR} : level);
  if (ctx && ctx->logger) ctx->logger->log(lvl, "{}", std::string_view(msg, len));
  else spdlog::log(lvl, "{}", std::string_view(msg, len));
}

void api_set_error(sluice_plugin_ctx* ctx, const char* msg, size_t len) {
  SLUICE_ASSERT(ctx != nullptr);
  ctx->errors[error_slot(ctx)].assign(msg, len);
}

int32_t api_register_service(sluice_plugin_ctx* ctx, const char* name, sluice_service_handler handler,
                             void* user) {
  host* h = host::of(ctx);
  if (!h->configuring() || name == nullptr || handler == nullptr) return SLUICE_ERR_INVALID;
  // Service names are "<plugin>.<service>", so two plugins never collide.
  const std::string prefix = ctx->name + ".";
  if (std::strncmp(name, prefix.c_str(), prefix.size()) != 0 || std::strlen(name) == prefix.size()) {
    ctx->logger->error("service name '{}' must start with '{}'", name, prefix);
    return SLUICE_ERR_INVALID;
  }
  auto id = h->exec().add_service(name, handler, user);
  if (!id) {
    ctx->logger->error("{}", id.err().message);
    return SLUICE_ERR_INVALID;
  }
  return id.value();
}

sluice_metric* api_metric_register(sluice_plugin_ctx* ctx, uint32_t kind, const char* name, const char* help) {
  host* h = host::of(ctx);
  if (!h->configuring() || name == nullptr || kind > SLUICE_METRIC_HISTOGRAM) return nullptr;
  return h->metrics().add(ctx->name, static_cast<sluice_metric_kind>(kind), name, help ? help : "");
}
void api_metric_add(sluice_metric* m, int64_t v) { m->owner->add_value(m, v); }
void api_metric_set(sluice_metric* m, int64_t v) { m->owner->set_value(m, v); }
void api_metric_visit(sluice_host* h, void (*fn)(void*, const sluice_metric_view*), void* user) {
  owner_of(h)->metrics().visit([&](const sluice_metric_view& v) { fn(user, &v); });
}

int32_t api_route_register(sluice_plugin_ctx* ctx, const char* method, const char* path, int32_t service_id,
                           uint32_t message_type) {
  if (ctx == nullptr || method == nullptr || path == nullptr) return SLUICE_ERR_INVALID;
  const std::string why = host::of(ctx)->add_route(*ctx, method, path, service_id, message_type);
  if (why.empty()) return SLUICE_OK;
  ctx->logger->error("cannot register admin route {} {}: {}", method, path, why);
  return SLUICE_ERR_INVALID;
}
void api_route_visit(sluice_host* h, void (*fn)(void*, const sluice_route_view*), void* user) {
  for (const auto& r : owner_of(h)->routes()) {
    const sluice_route_view v{r.plugin.c_str(), r.method.c_str(), r.path.c_str(), r.service_id, r.message_type};
    fn(user, &v);
  }
}
int32_t api_metrics_source_register(sluice_plugin_ctx* ctx, int32_t service_id, uint32_t message_type) {
  if (ctx == nullptr) return SLUICE_ERR_INVALID;
  const std::string why = host::of(ctx)->add_metrics_source(*ctx, service_id, message_type);
  if (why.empty()) return SLUICE_OK;
  ctx->logger->error("cannot register a metrics source: {}", why);
  return SLUICE_ERR_INVALID;
}
void api_metrics_source_visit(sluice_host* h, void (*fn)(void*, const sluice_metrics_source_view*), void* user) {
  for (const auto& m : owner_of(h)->metrics_sources()) {
    const sluice_metrics_source_view v{m.plugin.c_str(), m.service_id, m.message_type};
    fn(user, &v);
  }
}
void api_plugin_visit(sluice_host* h, void (*fn)(void*, const sluice_plugin_view*), void* user) {
  owner_of(h)->visit_plugins(fn, user);
}
void api_logger_visit(sluice_host* h, void (*fn)(void*, const char*, uint32_t), void* user) {
  owner_of(h)->visit_loggers(fn, user);
}
int32_t api_log_level_set(sluice_host* h, const char* logger, uint32_t level) {
  if (logger == nullptr || level > SLUICE_LOG_OFF) return SLUICE_ERR_INVALID;
  return owner_of(h)->set_log_level(logger, level) ? SLUICE_OK : SLUICE_ERR_INVALID;
}
const char* api_node_config_json(sluice_host* h) { return owner_of(h)->node_config_json().c_str(); }
const char* api_version(sluice_host*) { return SLUICE_VERSION; }
uint64_t api_start_time_ms(sluice_host* h) { return owner_of(h)->start_time_ms(); }

// spdlog's levels and the ABI's: the ABI has no "critical" (it reads as
// error) and its "off" is spdlog's.
spdlog::level::level_enum to_spdlog(uint32_t level) noexcept {
  return level >= SLUICE_LOG_OFF ? spdlog::level::off : static_cast<spdlog::level::level_enum>(level);
}
uint32_t from_spdlog(spdlog::level::level_enum l) noexcept {
  if (l == spdlog::level::off) return SLUICE_LOG_OFF;
  return l >= spdlog::level::err ? uint32_t{SLUICE_LOG_ERROR} : static_cast<uint32_t>(l);
}

// A route path: absolute, non-empty segments, each a literal or "{name}".
std::string check_route_path(const std::string& path) {
  if (path.empty() || path[0] != '/') return "the path must start with '/'";
  size_t pos = 1;
  while (pos <= path.size()) {
    size_t end = path.find('/', pos);
    if (end == std::string::npos) end = path.size();
    const std::string seg = path.substr(pos, end - pos);
    if (seg.empty()) return "the path has an empty segment";
    const bool open = seg.front() == '{', close = seg.back() == '}';
    if (open != close || (open && seg.size() < 3)) return "segment '" + seg + "' must be a literal or {name}";
    if (!open && seg.find_first_of("{}?#") != std::string::npos)
      return "segment '" + seg + "' has a character reserved for patterns";
    pos = end + 1;
  }
  return {};
}

// Two patterns clash when they match the same paths: equal after every
// {name} is replaced by one placeholder.
std::string route_shape(const std::string& path) {
  std::string out;
  bool in_param = false;
  for (char c : path) {
    if (c == '{') {
      in_param = true;
      out += '*';
    } else if (c == '}') {
      in_param = false;
    } else if (!in_param) {
      out += c;
    }
  }
  return out;
}

// Awaits a plugin's on_shard_stop, which completes `done` now or later.
class stop_awaiter final : private sluice_completion {
 public:
  stop_awaiter(const sluice_plugin_descriptor* d, void* instance, uint32_t shard) noexcept
      : _d(d), _instance(instance), _shard(shard) {
    on_complete = &stop_awaiter::complete;
    host_scratch[0] = host_scratch[1] = 0;
  }
  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> h) noexcept {
    _waiter = h;
    _d->on_shard_stop(_instance, _shard, this);
    if (_done) return false;  // completed synchronously
    _suspended = true;
    return true;
  }
  void await_resume() const noexcept {}

 private:
  static void complete(sluice_completion* c, int32_t) noexcept {
    auto* self = static_cast<stop_awaiter*>(c);
    SLUICE_ASSERT_MSG(!self->_done, "on_shard_stop completed twice");
    self->_done = true;
    if (self->_suspended) self->_waiter.resume();
  }
  const sluice_plugin_descriptor* _d;
  void* _instance;
  uint32_t _shard;
  std::coroutine_handle<> _waiter;
  bool _done = false;
  bool _suspended = false;
};

}  // namespace

host::host(config::node_config cfg, std::string data_dir_abs, std::vector<loaded_plugin> plugins)
    : _cfg(std::move(cfg)), _plugins(std::move(plugins)) {
  executor::options o;
  o.shards = _cfg.shards;
  o.ring_entries = _cfg.ring_entries;
  o.channel_capacity = _cfg.channel_capacity;
  o.pin_threads = _cfg.pin_threads;
  o.cpus = _cfg.cpus;
  o.idle_poll_us = _cfg.idle_poll_us;
  _exec = std::make_unique<executor::executor>(o);
  _exec->c_host()->owner = this;
  _exec->c_host()->data_dir = std::move(data_dir_abs);
  _exec->c_host()->node_id = static_cast<int32_t>(_cfg.node_id);
  _metrics = std::make_unique<metrics::registry>(_exec->shard_count(), [] {
    auto* s = executor::current_shard();
    return s ? sdk::this_shard() : UINT32_MAX;
  });

  register_core_metrics();
  executor::executor::fill_api(_api);
  _api.log = &api_log;
  _api.set_error = &api_set_error;
  _api.register_service = &api_register_service;
  _api.metric_register = &api_metric_register;
  _api.metric_add = &api_metric_add;
  _api.metric_set = &api_metric_set;
  _api.metric_visit = &api_metric_visit;
  _api.route_register = &api_route_register;
  _api.route_visit = &api_route_visit;
  _api.metrics_source_register = &api_metrics_source_register;
  _api.metrics_source_visit = &api_metrics_source_visit;
  _api.plugin_visit = &api_plugin_visit;
  _api.logger_visit = &api_logger_visit;
  _api.log_level_set = &api_log_level_set;
  _api.node_config_json = &api_node_config_json;
  _api.version = &api_version;
  _api.start_time_ms = &api_start_time_ms;
  _node_config_json = config::to_json(_cfg);
  _start_time_ms = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                             std::chrono::system_clock::now().time_since_epoch())
                                             .count());
  sdk::bind(&_api, _exec->c_host(), nullptr);

  for (size_t i = 0; i < _plugins.size(); ++i) {
    auto ctx = std::make_unique<sluice_plugin_ctx>();
    ctx->owner = this;
    ctx->index = i;
    ctx->name = _plugins[i].entry.name;
    // Same sinks, level and (a)synchrony as the process's logger.
    ctx->logger = spdlog::default_logger()->clone(ctx->name);
    ctx->errors.resize(_exec->shard_count() + 1);
    ctx->started.assign(_exec->shard_count(), 0);
    _ctxs.push_back(std::move(ctx));
  }
}

host::~host() {
  stop();
  for (size_t i = _plugins.size(); i-- > 0;) {
    if (_ctxs[i]->configured) _plugins[i].desc->on_destroy(_ctxs[i]->instance);
    _ctxs[i]->configured = false;
    unload(_plugins[i]);
  }
}

std::string host::error_of(size_t plugin, uint32_t shard) const {
  const auto& errs = _ctxs[plugin]->errors;
  return errs[shard == main_slot ? errs.size() - 1 : shard];
}

result<void> host::configure() {
  _configuring = true;
  for (size_t i = 0; i < _plugins.size(); ++i) {
    const loaded_plugin& p = _plugins[i];
    sluice_plugin_ctx& ctx = *_ctxs[i];
    const std::string path = p.entry.key + ".config";
    void* instance = nullptr;
    const int32_t rc = p.desc->on_configure(&ctx, &_api, _exec->c_host(), p.entry.config_yaml.data(),
                                            p.entry.config_yaml.size(), p.entry.origin.c_str(), path.c_str(),
                                            &instance);
    if (rc != 0) {
      _configuring = false;
      std::string why = error_of(i, main_slot);
      if (why.empty()) why = "on_configure failed with status " + std::to_string(rc);
      return make_error(std::make_error_code(std::errc::invalid_argument),
                        "plugin '" + p.entry.name + "' (" + p.entry.path + "): " + why);
    }
    ctx.instance = instance;
    ctx.configured = true;
    spdlog::debug("configured plugin {} {} from {}", p.entry.name, p.desc->version, p.entry.path);
  }
  _configuring = false;
  _metrics->freeze();
  // Which services each plugin registered ("<plugin>.<name>"), for plugin_visit.
  _service_names.assign(_plugins.size(), {});
  for (int32_t id = 0; const auto* svc = _exec->service(id); ++id)
    for (size_t i = 0; i < _plugins.size(); ++i)
      if (svc->name.rfind(_ctxs[i]->name + ".", 0) == 0) _service_names[i].push_back(svc->name);
  _service_ptrs.assign(_plugins.size(), {});
  for (size_t i = 0; i < _plugins.size(); ++i) {
    for (const auto& n : _service_names[i]) _service_ptrs[i].push_back(n.c_str());
    _service_ptrs[i].push_back(nullptr);
  }
  return {};
}

void host::register_core_metrics() {
  // Per shard, read from the executor's loop statistics at scrape time.
  const uint32_t n = _exec->shard_count();
  for (uint32_t s = 0; s < n; ++s) {
    const std::string label = "{shard=\"" + std::to_string(s) + "\"}";
    const auto& st = _exec->shard_at(s).stats();
    auto counter = [&](const char* name, const char* help, std::function<int64_t()> fn) {
      const bool ok = _metrics->add_callback("core", SLUICE_METRIC_COUNTER, name + label, help, std::move(fn));
      SLUICE_ASSERT_MSG(ok, "core metric names are valid and unique");
    };
    counter("core_reactor_busy_us_total",
            "Time the shard's loop was not blocked waiting for work, microseconds (rate() / 1e6 is its utilisation)",
            [&st] {
              const uint64_t start = st.start_ns.load(std::memory_order_relaxed);
              if (start == 0) return int64_t{0};
              const uint64_t up = sdk::now_ns() - start, slept = st.sleep_ns.load(std::memory_order_relaxed);
              return static_cast<int64_t>((up > slept ? up - slept : 0) / 1000);
            });
    counter("core_reactor_loops_total", "Turns of the shard's loop",
            [&st] { return static_cast<int64_t>(st.loops.load(std::memory_order_relaxed)); });
    counter("core_io_submissions_total", "io_uring submission queue entries prepared by the shard",
            [&st] { return static_cast<int64_t>(st.sqes.load(std::memory_order_relaxed)); });
    counter("core_io_completions_total", "io_uring completions reaped by the shard",
            [&st] { return static_cast<int64_t>(st.cqes.load(std::memory_order_relaxed)); });
    counter("core_channel_messages_total", "Cross-shard requests and replies the shard received",
            [&st] { return static_cast<int64_t>(st.channel_in.load(std::memory_order_relaxed)); });
    const bool ok = _metrics->add_callback(
        "core", SLUICE_METRIC_GAUGE, "core_channel_queue_depth" + label,
        "Cross-shard requests and replies waiting in the shard's incoming channels", [this, s, n] {
          size_t depth = 0;
          for (uint32_t from = 0; from < n; ++from)
            if (from != s) depth += _exec->request_queue(from, s).size_approx() + _exec->reply_queue(from, s).size_approx();
          return static_cast<int64_t>(depth);
        });
    SLUICE_ASSERT(ok);
  }
}

std::string host::add_route(sluice_plugin_ctx& ctx, std::string method, std::string path, int32_t service_id,
                            uint32_t message_type) {
  if (!_configuring) return "routes are registered during configure only";
  if (method != "GET" && method != "PUT" && method != "POST" && method != "DELETE" && method != "PATCH")
    return "method must be GET, PUT, POST, DELETE or PATCH";
  if (std::string why = check_route_path(path); !why.empty()) return why;
  const auto* svc = _exec->service(service_id);
  if (svc == nullptr || svc->name.rfind(ctx.name + ".", 0) != 0) return "service id is not one of this plugin's";
  for (const route& r : _routes)
    if (r.method == method && route_shape(r.path) == route_shape(path))
      return "plugin '" + r.plugin + "' already serves " + r.method + " " + r.path;
  _routes.push_back({ctx.name, std::move(method), std::move(path), service_id, message_type});
  return {};
}

std::string host::add_metrics_source(sluice_plugin_ctx& ctx, int32_t service_id, uint32_t message_type) {
  if (!_configuring) return "metrics sources are registered during configure only";
  const auto* svc = _exec->service(service_id);
  if (svc == nullptr || svc->name.rfind(ctx.name + ".", 0) != 0) return "service id is not one of this plugin's";
  _metrics_sources.push_back({ctx.name, service_id, message_type});
  return {};
}

void host::visit_plugins(void (*fn)(void*, const sluice_plugin_view*), void* user) const {
  for (size_t i = 0; i < _plugins.size(); ++i) {
    const auto* d = _plugins[i].desc;
    static const char* const none[] = {nullptr};
    const sluice_plugin_view v{d->name,
                               d->version,
                               d->description,
                               _plugins[i].entry.path.c_str(),
                               d->abi_major,
                               d->abi_minor,
                               d->dependencies ? d->dependencies : none,
                               i < _service_ptrs.size() ? _service_ptrs[i].data() : none};
    fn(user, &v);
  }
}

void host::visit_loggers(void (*fn)(void*, const char*, uint32_t), void* user) const {
  fn(user, "sluice", from_spdlog(spdlog::default_logger()->level()));
  for (const auto& ctx : _ctxs) fn(user, ctx->name.c_str(), from_spdlog(ctx->logger->level()));
}

bool host::set_log_level(const std::string& logger, uint32_t level) {
  if (logger == "sluice") {
    spdlog::default_logger()->set_level(to_spdlog(level));
    return true;
  }
  for (const auto& ctx : _ctxs)
    if (ctx->name == logger) {
      ctx->logger->set_level(to_spdlog(level));
      return true;
    }
  return false;
}

sdk::task<int32_t> host::start_on(uint32_t shard, size_t i) {
  co_return co_await _exec->submit_to(shard, [this, shard, i]() -> sdk::task<int32_t> {
    sluice_plugin_ctx& ctx = *_ctxs[i];
    const int32_t rc = _plugins[i].desc->on_shard_start(ctx.instance, shard);
    if (rc == 0) ctx.started[shard] = 1;
    co_return rc;
  });
}

sdk::task<int32_t> host::stop_on(uint32_t shard, size_t i) {
  co_return co_await _exec->submit_to(shard, [this, shard, i]() -> sdk::task<int32_t> {
    sluice_plugin_ctx& ctx = *_ctxs[i];
    if (!ctx.started[shard]) co_return 0;
    co_await stop_awaiter(_plugins[i].desc, ctx.instance, shard);
    ctx.started[shard] = 0;
    co_return 0;
  });
}

sdk::task<void> host::lifecycle() {
  sdk::event stop_event;
  result<void> outcome;
  size_t touched = 0;  // plugins that started on at least one shard
  const uint32_t shards = _exec->shard_count();
  for (size_t i = 0; i < _plugins.size() && outcome; ++i) {
    touched = i + 1;
    // Shard 0 first (it may claim resources the others then join), then the rest at once.
    std::vector<int32_t> rcs(shards, 0);
    rcs[0] = co_await start_on(0, i);
    if (rcs[0] == 0 && shards > 1) {
      sdk::gate g;
      for (uint32_t s = 1; s < shards; ++s)
        sdk::spawn([](host* self, uint32_t s, size_t i, int32_t& rc, sdk::gate::holder) -> sdk::task<void> {
          rc = co_await self->start_on(s, i);
        }(this, s, i, rcs[s], g.try_enter()));
      co_await g.close();
    }
    for (uint32_t s = 0; s < shards && outcome; ++s) {
      if (rcs[s] == 0) continue;
      std::string why = error_of(i, s);
      if (why.empty()) why = "on_shard_start failed with status " + std::to_string(rcs[s]);
      outcome = make_error(std::make_error_code(std::errc::io_error),
                           "plugin '" + _plugins[i].entry.name + "' (" + _plugins[i].entry.path +
                               ") failed to start on shard " + std::to_string(s) + ": " + why);
    }
    if (outcome) spdlog::info("started plugin {} {} on {} shard(s)", _plugins[i].entry.name,
                              _plugins[i].desc->version, shards);
  }
  const bool ok = outcome.has_value();
  {
    std::lock_guard lk(_mu);
    _start_done = true;
    _start_result = std::move(outcome);
    _stop_event = &stop_event;
  }
  _cv.notify_all();
  if (ok) co_await stop_event.wait();

  for (size_t i = touched; i-- > 0;) {
    bool any = false;
    for (uint32_t s = 0; s < shards; ++s) any |= _ctxs[i]->started[s] != 0;
    if (!any) continue;
    sdk::gate g;
    for (uint32_t s = 0; s < shards; ++s)
      sdk::spawn([](host* self, uint32_t s, size_t i, sdk::gate::holder) -> sdk::task<void> {
        co_await self->stop_on(s, i);
      }(this, s, i, g.try_enter()));
    co_await g.close();
    spdlog::info("stopped plugin {}", _plugins[i].entry.name);
  }
  {
    std::lock_guard lk(_mu);
    _stop_event = nullptr;
  }
  _exec->request_exit();
}

result<void> host::start() {
  SLUICE_ASSERT(!_running);
  auto r = _exec->start([this] { return lifecycle(); });
  if (!r) return r.err();
  _running = true;
  std::unique_lock lk(_mu);
  _cv.wait(lk, [&] { return _start_done; });
  if (!_start_result) {
    lk.unlock();
    _exec->join();  // lifecycle stopped what had started and asked the shards to exit
    _running = false;
    return _start_result.err();
  }
  return {};
}

void host::stop() {
  if (!_running) return;
  _exec->run_from_outside(0, [this] {
    std::lock_guard lk(_mu);
    if (_stop_event) _stop_event->set();
  });
  _exec->join();
  _running = false;
}

}  // namespace sluice::plugin
