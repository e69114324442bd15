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

 private:
  sdk::task<void> lifecycle();
  sdk::task<int32_t> start_on(uint32_t shard, size_t plugin);
  sdk::task<int32_t> stop_on(uint32_t shard, size_t plugin);
  std::string error_of(size_t plugin, uint32_t shard) const;

  config::node_config _cfg;
  std::unique_ptr<executor::executor> _exec;
  std::unique_ptr<metrics::registry> _metrics;
  std::vector<loaded_plugin> _plugins;
  std::vector<std::unique_ptr<sluice_plugin_ctx>> _ctxs;
  sluice_host_api _api{};
  bool _configuring = false;
  bool _running = false;

  // shard 0 -> main thread: start outcome and exit
  std::mutex _mu;
  std::condition_variable _cv;
  bool _start_done = false;
  result<void> _start_result;
  sdk::event* _stop_event = nullptr;  // lives in lifecycle()'s frame, on shard 0
};

}  // namespace sluice::plugin
