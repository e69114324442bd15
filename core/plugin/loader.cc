#include "core/plugin/loader.h"

#include <dlfcn.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace sluice::plugin {

static_assert(SLUICE_ABI_MAJOR_STR[0] - '0' == SLUICE_ABI_MAJOR && SLUICE_ABI_MAJOR_STR[1] == '\0',
              "SLUICE_ABI_MAJOR_STR must spell SLUICE_ABI_MAJOR");

namespace {
class category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "sluice.plugin"; }
  std::string message(int c) const override {
    switch (static_cast<errc>(c)) {
      case errc::not_found: return "plugin file not found";
      case errc::dlopen_failed: return "plugin could not be loaded";
      case errc::no_entry_symbol: return "no entry symbol";
      case errc::bad_descriptor: return "bad descriptor";
      case errc::abi_mismatch: return "ABI version mismatch";
      case errc::signature_mismatch: return "build signature mismatch";
      case errc::name_mismatch: return "name mismatch";
      case errc::missing_hook: return "missing hook";
      case errc::dependency_missing: return "dependency missing";
      case errc::dependency_order: return "dependency listed after its dependent";
    }
    return "unknown";
  }
};

std::string prefix(const config::plugin_entry& e) {
  return "plugin '" + e.name + "' (" + e.path + "): ";
}

error refuse(const config::plugin_entry& e, errc code, const std::string& what) {
  return make_error(make_error_code(code), prefix(e) + what);
}
}  // namespace

const std::error_category& category() noexcept {
  static const category_impl c;
  return c;
}

result<loaded_plugin> load_one(const config::plugin_entry& entry) {
  struct stat st{};
  if (::stat(entry.path.c_str(), &st) != 0) {
    const int err = errno;
    return refuse(entry, errc::not_found,
                  std::string(std::strerror(err)) +
                      (entry.path_given ? "; fix " + entry.key + ".path in the configuration"
                                        : "; build it, set " + entry.key + ".path, or set node.plugin_dir"));
  }
  if (!S_ISREG(st.st_mode)) return refuse(entry, errc::not_found, "not a regular file");

  // RTLD_LOCAL: plugins do not see each other's symbols; RTLD_NOW: an
  // unresolved symbol is a load error now, not a crash later.
  void* handle = ::dlopen(entry.path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* why = ::dlerror();
    return refuse(entry, errc::dlopen_failed,
                  std::string("cannot load: ") + (why ? why : "unknown dlopen error") +
                      " (is it a shared object built for this machine?)");
  }
  loaded_plugin p{entry, handle, nullptr};
  auto fail = [&](errc code, const std::string& what) -> result<loaded_plugin> {
    ::dlclose(handle);
    return refuse(entry, code, what);
  };

  auto* entry_fn = reinterpret_cast<sluice_plugin_entry_fn>(::dlsym(handle, SLUICE_PLUGIN_ENTRY_NAME));
  if (entry_fn == nullptr) {
    // A plugin of another ABI major exports another versioned name.
    for (int major = 0; major < 10; ++major) {
      if (major == static_cast<int>(SLUICE_ABI_MAJOR)) continue;
      const std::string other = "sluice_plugin_entry_v" + std::to_string(major);
      if (::dlsym(handle, other.c_str()) != nullptr)
        return fail(errc::abi_mismatch, "built for plugin ABI " + std::to_string(major) + ", this brokerd speaks ABI " +
                                            std::to_string(SLUICE_ABI_MAJOR) + "; rebuild it against this SDK");
    }
    return fail(errc::no_entry_symbol, "does not export " SLUICE_PLUGIN_ENTRY_NAME
                                       "; is it a Sluice plugin? (define it with SLUICE_PLUGIN in sluice/sdk/plugin.h)");
  }
  const sluice_plugin_descriptor* d = entry_fn();
  if (d == nullptr) return fail(errc::bad_descriptor, SLUICE_PLUGIN_ENTRY_NAME " returned no descriptor");
  // Read fields in layout order, checking the size before anything past it.
  if (d->struct_size < offsetof(sluice_plugin_descriptor, reserved))
    return fail(errc::bad_descriptor, "descriptor is " + std::to_string(d->struct_size) +
                                          " bytes, too small for ABI " + std::to_string(SLUICE_ABI_MAJOR));
  if (d->abi_major != SLUICE_ABI_MAJOR)
    return fail(errc::abi_mismatch, "built for plugin ABI " + std::to_string(d->abi_major) + "." +
                                        std::to_string(d->abi_minor) + ", this brokerd speaks ABI " +
                                        std::to_string(SLUICE_ABI_MAJOR) + "." + std::to_string(SLUICE_ABI_MINOR) +
                                        "; rebuild it against this SDK");
  if (d->abi_minor > SLUICE_ABI_MINOR)
    return fail(errc::abi_mismatch, "needs plugin ABI " + std::to_string(d->abi_major) + "." +
                                        std::to_string(d->abi_minor) + ", newer than this brokerd's " +
                                        std::to_string(SLUICE_ABI_MAJOR) + "." + std::to_string(SLUICE_ABI_MINOR) +
                                        "; upgrade brokerd");
  if (d->build_signature == nullptr || std::strcmp(d->build_signature, SLUICE_BUILD_SIGNATURE) != 0)
    return fail(errc::signature_mismatch,
                std::string("is not binary compatible: build signature \"") +
                    (d->build_signature ? d->build_signature : "(none)") + "\", brokerd's is \"" SLUICE_BUILD_SIGNATURE
                    "\"; rebuild it with the same compiler settings");
  if (d->name == nullptr || entry.name != d->name)
    return fail(errc::name_mismatch, std::string("declares the name \"") + (d->name ? d->name : "(none)") +
                                         "\", but the configuration lists it as \"" + entry.name + "\"");
  if (d->version == nullptr) return fail(errc::bad_descriptor, "descriptor has no version");
  const char* missing = d->on_configure == nullptr     ? "on_configure"
                        : d->on_shard_start == nullptr ? "on_shard_start"
                        : d->on_shard_stop == nullptr  ? "on_shard_stop"
                        : d->on_destroy == nullptr     ? "on_destroy"
                                                       : nullptr;
  if (missing) return fail(errc::missing_hook, std::string("descriptor has no ") + missing + " hook");
  p.desc = d;
  return p;
}

result<std::vector<loaded_plugin>> load_all(const config::node_config& cfg) {
  std::vector<loaded_plugin> out;
  auto unload_all = [&] {
    for (auto& p : out) unload(p);
  };
  for (size_t i = 0; i < cfg.plugins.size(); ++i) {
    auto p = load_one(cfg.plugins[i]);
    if (!p) {
      unload_all();
      return p.err();
    }
    loaded_plugin lp = std::move(p).value();
    for (const char* const* dep = lp.desc->dependencies; dep && *dep; ++dep) {
      const std::string want = *dep;
      bool before = false;
      for (const auto& q : out) before |= q.entry.name == want;
      if (before) continue;
      bool after = false;
      for (size_t j = i + 1; j < cfg.plugins.size(); ++j) after |= cfg.plugins[j].name == want;
      error e = after ? refuse(lp.entry, errc::dependency_order,
                               "depends on plugin '" + want + "', which " + cfg.file +
                                   " lists after it; move '" + want + "' above '" + lp.entry.name + "'")
                      : refuse(lp.entry, errc::dependency_missing,
                               "depends on plugin '" + want + "', which is not in the plugin list of " + cfg.file +
                                   "; add it above '" + lp.entry.name + "'");
      unload(lp);
      unload_all();
      return e;
    }
    out.push_back(std::move(lp));
  }
  return out;
}

void unload(loaded_plugin& p) noexcept {
  if (p.handle) ::dlclose(p.handle);
  p.handle = nullptr;
  p.desc = nullptr;
}

}  // namespace sluice::plugin
