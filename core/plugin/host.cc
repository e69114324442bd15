#include "core/plugin/host.h"

#include <sluice/sdk/runtime.h>

#include <spdlog/spdlog.h>

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

  executor::executor::fill_api(_api);
  _api.log = &api_log;
  _api.set_error = &api_set_error;
  _api.register_service = &api_register_service;
  _api.metric_register = &api_metric_register;
  _api.metric_add = &api_metric_add;
  _api.metric_set = &api_metric_set;
  _api.metric_visit = &api_metric_visit;
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
  return {};
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
