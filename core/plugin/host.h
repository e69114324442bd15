// The plugin host: owns the executor, the metrics registry and the loaded
// plugins, implements the C host API for them, and runs their lifecycle.
//
//   configure()  main thread, plugins in list order (on_configure)
//   start()      shard 0 drives: each plugin on shard 0, then on the other
//                shards in parallel, in list order (on_shard_start)
//   stop()       reverse list order, each plugin on every shard before the
//                next (on_shard_stop), then every shard loop exits
//   ~host        main thread, reverse order (on_destroy), then dlclose
//
// Thread-safety: the public methods are called from the main thread. The
// C API functions run on whatever thread the plugin calls from and touch
// only shard-local or immutable state (or, during configure, main-thread
// state).
#pragma once

#include <sluice/sdk/result.h>
#include "core/config/node_config.h"
#include "core/executor/executor.h"
#include "core/metrics/metrics.h"
#include "core/plugin/loader.h"

#include <sluice/abi/sluice_abi.h>
#include <sluice/sdk/runtime.h>

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace spdlog {
class logger;
}

namespace sluice::plugin {

class host;

}  // namespace sluice::plugin

struct sluice_plugin_ctx {
  sluice::plugin::host* owner = nullptr;
  size_t index = 0;                         // position in the plugin list
  std::string name;
  std::shared_ptr<spdlog::logger> logger;
  std::vector<std::string> errors;          // per shard, + one for the main thread
  void* instance = nullptr;
  bool configured = false;
  std::vector<char> started;                // per shard
};

namespace sluice::plugin {

class host {
 public:
  host(config::node_config cfg, std::string data_dir_abs, std::vector<loaded_plugin> plugins);
  ~host();
  host(const host&) = delete;
  host& operator=(const host&) = delete;

  // Calls every plugin's on_configure in order.
  result<void> configure();
  // Starts the shards and every plugin on them; returns when all started,
  // or with the first failure (after stopping what had started).
  result<void> start();
  // Stops every plugin and the shards; returns when all threads exited.
  void stop();

  uint32_t shard_count() const noexcept { return _exec->shard_count(); }
  const sluice_host_api& api() const noexcept { return _api; }
  executor::executor& exec() noexcept { return *_exec; }
  metrics::registry& metrics() noexcept { return *_metrics; }
  const std::vector<loaded_plugin>& plugins() const noexcept { return _plugins; }

  // The C API's host-side functions need these.
  static host* of(sluice_plugin_ctx* ctx) noexcept { return ctx->owner; }
  bool configuring() const noexcept { return _configuring; }

  // Admin routes and metrics sources (ABI 1.3): added during configure,
  // immutable after, so any thread reads them without a lock.
  struct route {
    std::string plugin, method, path;
    int32_t service_id = -1;
    uint32_t message_type = 0;
  };
  struct metrics_source {
    std::string plugin;
    int32_t service_id = -1;
    uint32_t message_type = 0;
  };
  // "" or why the route is refused.
  std::string add_route(sluice_plugin_ctx& ctx, std::string method, std::string path, int32_t service_id,
                        uint32_t message_type);
  std::string add_metrics_source(sluice_plugin_ctx& ctx, int32_t service_id, uint32_t message_type);
  const std::vector<route>& routes() const noexcept { return _routes; }
  const std::vector<metrics_source>& metrics_sources() const noexcept { return _metrics_sources; }
  void visit_plugins(void (*fn)(void*, const sluice_plugin_view*), void* user) const;
  void visit_loggers(void (*fn)(void*, const char*, uint32_t), void* user) const;
  bool set_log_level(const std::string& logger, uint32_t level);
  const std::string& node_config_json() const noexcept { return _node_config_json; }
  uint64_t start_time_ms() const noexcept { return _start_time_ms; }

 private:
  sdk::task<void> lifecycle();
  sdk::task<int32_t> start_on(uint32_t shard, size_t plugin);
  sdk::task<int32_t> stop_on(uint32_t shard, size_t plugin);
  std::string error_of(size_t plugin, uint32_t shard) const;
  void register_core_metrics();

  config::node_config _cfg;
  std::unique_ptr<executor::executor> _exec;
  std::unique_ptr<metrics::registry> _metrics;
  std::vector<loaded_plugin> _plugins;
  std::vector<std::unique_ptr<sluice_plugin_ctx>> _ctxs;
  sluice_host_api _api{};
  bool _configuring = false;
  bool _running = false;
  std::vector<route> _routes;
  std::vector<metrics_source> _metrics_sources;
  std::string _node_config_json;
  uint64_t _start_time_ms = 0;
  // Per plugin, the services it registered (NULL-terminated, for plugin_visit).
  std::vector<std::vector<std::string>> _service_names;
  std::vector<std::vector<const char*>> _service_ptrs;

  // shard 0 -> main thread: start outcome and exit
  std::mutex _mu;
  std::condition_variable _cv;
  bool _start_done = false;
  result<void> _start_result;
  sdk::event* _stop_event = nullptr;  // lives in lifecycle()'s frame, on shard 0
};

}  // namespace sluice::plugin
