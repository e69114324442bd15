// Loading plugin shared objects and checking their descriptors.
//
// Everything a plugin declares is checked before any hook runs: the entry
// symbol, the descriptor's size, ABI version and build signature, its name
// against the YAML entry, its hooks, and that every dependency is listed
// before it. Each refusal is one line naming the plugin, its file and what
// to do. Start-up only; not thread-safe.
#pragma once

#include <sluice/sdk/result.h>
#include "core/config/node_config.h"

#include <sluice/abi/sluice_abi.h>

#include <string>
#include <vector>

namespace sluice::plugin {

enum class errc {
  not_found = 1,
  dlopen_failed,
  no_entry_symbol,
  bad_descriptor,
  abi_mismatch,
  signature_mismatch,
  name_mismatch,
  missing_hook,
  dependency_missing,
  dependency_order,
};
const std::error_category& category() noexcept;
inline std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), category()}; }

struct loaded_plugin {
  config::plugin_entry entry;
  void* handle = nullptr;  // dlopen handle; closed by unload()
  const sluice_plugin_descriptor* desc = nullptr;
};

// Loads one plugin and checks it in isolation (not its dependencies).
result<loaded_plugin> load_one(const config::plugin_entry& entry);

// Loads every plugin of cfg in order and checks dependencies. On error
// nothing stays loaded.
result<std::vector<loaded_plugin>> load_all(const config::node_config& cfg);

void unload(loaded_plugin& p) noexcept;

}  // namespace sluice::plugin

template <>
struct std::is_error_code_enum<sluice::plugin::errc> : std::true_type {};
