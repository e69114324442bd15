// Plugin loading: every refusal case is reported with the plugin's name,
// its file and what to do; a valid plugin runs its whole lifecycle.
#include "core/config/node_config.h"
#include "core/plugin/host.h"
#include "core/plugin/loader.h"

#include <dlfcn.h>
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <string>

namespace sluice::plugin {
namespace {

config::plugin_entry entry(const std::string& name, const std::string& file, size_t index = 0) {
  config::plugin_entry e;
  e.name = name;
  e.path = std::string(SLUICE_FIXTURE_DIR) + "/" + file;
  e.path_given = true;
  e.key = "plugins[" + std::to_string(index) + "]";
  e.origin = "test.yaml:" + std::to_string(index + 2);
  return e;
}

// Loads one fixture and returns the refusal message (empty if it loaded).
std::string refusal(const config::plugin_entry& e, errc expected) {
  auto r = load_one(e);
  if (r.has_value()) {
    unload(r.value());
    return "";
  }
  EXPECT_EQ(r.err().code, make_error_code(expected)) << r.err().message;
  const std::string& m = r.err().message;
  EXPECT_NE(m.find("plugin '" + e.name + "'"), std::string::npos) << m;
  EXPECT_NE(m.find(e.path), std::string::npos) << "message must name the file: " << m;
  return m;
}

TEST(plugin_loader, valid_c_plugin_loads) {
  auto r = load_one(entry("fixture", "ok.so"));
  ASSERT_TRUE(r.has_value()) << r.err().message;
  EXPECT_STREQ(r.value().desc->name, "fixture");
  EXPECT_STREQ(r.value().desc->version, "1.0.0");
  unload(r.value());
}

TEST(plugin_loader, missing_file) {
  auto e = entry("fixture", "does_not_exist.so");
  std::string m = refusal(e, errc::not_found);
  EXPECT_NE(m.find("No such file"), std::string::npos) << m;
  EXPECT_NE(m.find("plugins[0].path"), std::string::npos) << m;
  // Without an explicit path the hint is to build it or set the path.
  e.path_given = false;
  m = refusal(e, errc::not_found);
  EXPECT_NE(m.find("build it"), std::string::npos) << m;
}

TEST(plugin_loader, not_a_shared_object) {
  std::string m = refusal(entry("fixture", "not_a_library.so"), errc::dlopen_failed);
  EXPECT_NE(m.find("cannot load"), std::string::npos) << m;
}

TEST(plugin_loader, no_entry_symbol) {
  std::string m = refusal(entry("fixture", "no_entry.so"), errc::no_entry_symbol);
  EXPECT_NE(m.find("does not export sluice_plugin_entry_v1"), std::string::npos) << m;
}

TEST(plugin_loader, entry_symbol_of_another_abi_major) {
  std::string m = refusal(entry("fixture", "entry_v2.so"), errc::abi_mismatch);
  EXPECT_NE(m.find("built for plugin ABI 2"), std::string::npos) << m;
}

TEST(plugin_loader, abi_major_mismatch_in_descriptor) {
  std::string m = refusal(entry("fixture", "abi_major.so"), errc::abi_mismatch);
  const std::string minor = std::to_string(SLUICE_ABI_MINOR);
  EXPECT_NE(m.find("built for plugin ABI 2." + minor + ", this brokerd speaks ABI 1." + minor), std::string::npos) << m;
}

TEST(plugin_loader, newer_abi_minor) {
  std::string m = refusal(entry("fixture", "abi_minor.so"), errc::abi_mismatch);
  EXPECT_NE(m.find("newer than this brokerd's"), std::string::npos) << m;
}

TEST(plugin_loader, null_and_truncated_descriptors) {
  refusal(entry("fixture", "null_descriptor.so"), errc::bad_descriptor);
  std::string m = refusal(entry("fixture", "small_descriptor.so"), errc::bad_descriptor);
  EXPECT_NE(m.find("too small"), std::string::npos) << m;
}

TEST(plugin_loader, build_signature_mismatch) {
  std::string m = refusal(entry("fixture", "bad_signature.so"), errc::signature_mismatch);
  EXPECT_NE(m.find("not binary compatible"), std::string::npos) << m;
}

TEST(plugin_loader, name_differs_from_configuration) {
  std::string m = refusal(entry("other", "ok.so"), errc::name_mismatch);
  EXPECT_NE(m.find("declares the name \"fixture\""), std::string::npos) << m;
}

TEST(plugin_loader, missing_hook) {
  std::string m = refusal(entry("fixture", "no_stop_hook.so"), errc::missing_hook);
  EXPECT_NE(m.find("on_shard_stop"), std::string::npos) << m;
}

TEST(plugin_loader, dependency_missing_or_listed_after) {
  config::node_config cfg;
  cfg.file = "test.yaml";
  cfg.plugins = {entry("dependent", "dependent.so", 0)};
  auto r = load_all(cfg);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.err().code, make_error_code(errc::dependency_missing));
  EXPECT_NE(r.err().message.find("depends on plugin 'fixture', which is not in the plugin list of test.yaml"),
            std::string::npos)
      << r.err().message;

  cfg.plugins = {entry("dependent", "dependent.so", 0), entry("fixture", "ok.so", 1)};
  r = load_all(cfg);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.err().code, make_error_code(errc::dependency_order));
  EXPECT_NE(r.err().message.find("lists after it; move 'fixture' above 'dependent'"), std::string::npos)
      << r.err().message;

  cfg.plugins = {entry("fixture", "ok.so", 0), entry("dependent", "dependent.so", 1)};
  r = load_all(cfg);
  ASSERT_TRUE(r.has_value()) << r.err().message;
  for (auto& p : r.value()) unload(p);
}

int* counter(const std::string& file, const char* name) {
  void* h = dlopen((std::string(SLUICE_FIXTURE_DIR) + "/" + file).c_str(), RTLD_NOW | RTLD_NOLOAD);
  if (!h) return nullptr;
  // Keeps the reference RTLD_NOLOAD took, so the counters outlive the host.
  return static_cast<int*>(dlsym(h, name));
}

config::node_config two_shards(std::vector<config::plugin_entry> plugins) {
  config::node_config cfg;
  cfg.file = "test.yaml";
  cfg.shards = 2;
  cfg.pin_threads = false;
  cfg.ring_entries = 64;
  cfg.plugins = std::move(plugins);
  return cfg;
}

TEST(plugin_host, full_lifecycle_of_a_c_plugin) {
  auto cfg = two_shards({entry("fixture", "ok.so")});
  auto loaded = load_all(cfg);
  ASSERT_TRUE(loaded.has_value());
  int* destroyed = nullptr;
  int d0 = 0;
  {
    host h(cfg, std::filesystem::current_path().string(), std::move(loaded).value());
    int* configured = counter("ok.so", "fixture_configured");
    int* started = counter("ok.so", "fixture_started");
    int* stopped = counter("ok.so", "fixture_stopped");
    destroyed = counter("ok.so", "fixture_destroyed");
    ASSERT_TRUE(configured && started && stopped && destroyed);
    const int c0 = *configured, s0 = *started, t0 = *stopped;
    d0 = *destroyed;
    ASSERT_TRUE(h.configure().has_value());
    EXPECT_EQ(*configured, c0 + 1);
    ASSERT_TRUE(h.start().has_value());
    EXPECT_EQ(*started, s0 + 2);  // on both shards
    h.stop();
    EXPECT_EQ(*stopped, t0 + 2);
    EXPECT_EQ(*destroyed, d0);  // not before the host goes away
  }
  EXPECT_EQ(*destroyed, d0 + 1);
}

TEST(plugin_host, configure_failure_names_plugin_and_key) {
  auto cfg = two_shards({entry("fixture", "configure_fails.so")});
  auto loaded = load_all(cfg);
  ASSERT_TRUE(loaded.has_value());
  host h(cfg, ".", std::move(loaded).value());
  auto r = h.configure();
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.err().message.find("plugin 'fixture'"), std::string::npos) << r.err().message;
  EXPECT_NE(r.err().message.find("test.yaml:2: plugins[0].config.mode: fixture refuses"), std::string::npos)
      << r.err().message;
}

TEST(plugin_host, start_failure_on_one_shard_stops_what_started) {
  auto cfg = two_shards({entry("fixture", "start_fails.so")});
  auto loaded = load_all(cfg);
  ASSERT_TRUE(loaded.has_value());
  host h(cfg, ".", std::move(loaded).value());
  ASSERT_TRUE(h.configure().has_value());
  int* started = counter("start_fails.so", "fixture_started");
  int* stopped = counter("start_fails.so", "fixture_stopped");
  ASSERT_TRUE(started && stopped);
  auto r = h.start();
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.err().message.find("failed to start on shard 1"), std::string::npos) << r.err().message;
  EXPECT_EQ(*started, 1);  // shard 0 only
  EXPECT_EQ(*stopped, 1);  // and shard 0 was stopped again
}

TEST(plugin_host, echo_plugin_rejects_bad_settings_with_the_key) {
  config::plugin_entry e;
  e.name = "echo";
  e.path = std::string(SLUICE_PLUGIN_DIR) + "/libsluice_echo.so";
  e.key = "plugins[0]";
  e.origin = "test.yaml:3";
  for (auto [yaml, expect] : std::vector<std::pair<std::string, std::string>>{
           {"listen: nowhere", "test.yaml:3: plugins[0].config.listen: expected HOST:PORT"},
           {"listen: 127.0.0.1:70000", "plugins[0].config.listen: expected HOST:PORT"},
           {"max_line_bytes: 2", "plugins[0].config.max_line_bytes: must be between 16 and"},
           {"idle_timeout: 5", "plugins[0].config.idle_timeout: unknown key"},
           {"[1, 2]", "plugins[0].config: expected a mapping"}}) {
    e.config_yaml = yaml;
    auto cfg = two_shards({e});
    auto loaded = load_all(cfg);
    ASSERT_TRUE(loaded.has_value()) << loaded.err().message;
    host h(cfg, ".", std::move(loaded).value());
    auto r = h.configure();
    ASSERT_FALSE(r.has_value()) << yaml;
    EXPECT_NE(r.err().message.find(expect), std::string::npos) << r.err().message;
  }
}

}  // namespace
}  // namespace sluice::plugin
