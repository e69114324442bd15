// Writing a plugin in C++: derive from sdk::plugin and name it with
// SLUICE_PLUGIN. The macro emits the static descriptor and the one exported
// entry symbol, and turns the C hooks into calls on your class, so no
// exception or C++ type ever crosses the ABI.
//
//   class my_plugin final : public sluice::sdk::plugin {
//     void configure(sluice::sdk::config_map& cfg) override;   // main thread
//     std::string start(uint32_t shard) override;              // each shard
//     sluice::sdk::task<void> stop(uint32_t shard) override;   // each shard
//   };
//   SLUICE_PLUGIN(my_plugin, "my_plugin", "0.1.0", "What it does", "storage")
//
// The trailing arguments name the plugins this one depends on (they must be
// listed before it in the YAML). See plugins/echo for a complete example and
// docs/ARCHITECTURE.md for the lifecycle.
#pragma once

#include <sluice/abi/sluice_abi.h>
#include <sluice/sdk/config.h>
#include <sluice/sdk/runtime.h>

#include <cstring>
#include <exception>
#include <memory>
#include <string>

namespace sluice::sdk {

class plugin {
 public:
  virtual ~plugin() = default;
  // Main thread, before any shard runs. Read settings from cfg (a bad value
  // throws config_error with the file and key), register services and
  // metrics. Unread keys are rejected after it returns.
  virtual void configure(config_map& cfg) = 0;
  // On each shard, shard 0 first. Return "" on success, or a one-line error
  // that says what failed and what to do.
  virtual std::string start(uint32_t shard) = 0;
  // On each shard where start succeeded: stop accepting work, finish or
  // cancel what is in flight, release the shard's resources.
  virtual task<void> stop(uint32_t shard) = 0;
};

namespace detail {

inline void report(const char* what) noexcept {
  api().set_error(g_binding.ctx, what, std::strlen(what));
}

template <typename P>
struct plugin_glue {
  static int32_t on_configure(sluice_plugin_ctx* ctx, const sluice_host_api* host_api, sluice_host* h,
                              const char* yaml, size_t len, const char* origin, const char* config_path,
                              void** instance_out) {
    if (host_api == nullptr || host_api->struct_size < sizeof(sluice_host_api)) return SLUICE_ERR_INVALID;
    bind(host_api, h, ctx);
    try {
      auto p = std::make_unique<P>();
      config_map cfg = config_map::parse(std::string(yaml, len), origin, config_path);
      p->configure(cfg);
      cfg.finish();
      *instance_out = p.release();
      return SLUICE_OK;
    } catch (const std::exception& e) {
      report(e.what());
    } catch (...) {
      report("configure threw an unknown exception");
    }
    return SLUICE_ERR_CONFIG;
  }
  static int32_t on_shard_start(void* instance, uint32_t shard) {
    try {
      std::string err = static_cast<P*>(instance)->start(shard);
      if (err.empty()) return SLUICE_OK;
      report(err.c_str());
    } catch (const std::exception& e) {
      report(e.what());
    } catch (...) {
      report("start threw an unknown exception");
    }
    return SLUICE_ERR_START;
  }
  static void on_shard_stop(void* instance, uint32_t shard, sluice_completion* done) {
    spawn([](P* p, uint32_t shard, sluice_completion* done) -> task<void> {
      co_await p->stop(shard);
      done->on_complete(done, SLUICE_OK);
    }(static_cast<P*>(instance), shard, done));
  }
  static void on_destroy(void* instance) {
    delete static_cast<P*>(instance);
    g_services.clear();
  }
};

}  // namespace detail
}  // namespace sluice::sdk

#define SLUICE_PLUGIN(CLASS, NAME, VERSION, DESCRIPTION, ...)                                   \
  namespace {                                                                                  \
  const char* const sluice_plugin_dependencies_[] = {__VA_ARGS__ __VA_OPT__(, ) nullptr};     \
  const sluice_plugin_descriptor sluice_plugin_descriptor_ = {                                 \
      sizeof(sluice_plugin_descriptor),                                                        \
      SLUICE_ABI_MAJOR,                                                                        \
      SLUICE_ABI_MINOR,                                                                        \
      0,                                                                                       \
      SLUICE_BUILD_SIGNATURE,                                                                  \
      NAME,                                                                                    \
      VERSION,                                                                                 \
      DESCRIPTION,                                                                             \
      sluice_plugin_dependencies_,                                                             \
      &::sluice::sdk::detail::plugin_glue<CLASS>::on_configure,                                \
      &::sluice::sdk::detail::plugin_glue<CLASS>::on_shard_start,                              \
      &::sluice::sdk::detail::plugin_glue<CLASS>::on_shard_stop,                               \
      &::sluice::sdk::detail::plugin_glue<CLASS>::on_destroy,                                  \
      {}};                                                                                     \
  }                                                                                            \
  extern "C" SLUICE_EXPORT const sluice_plugin_descriptor* SLUICE_PLUGIN_ENTRY(void) {         \
    return &sluice_plugin_descriptor_;                                                         \
  }
