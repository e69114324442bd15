// libFuzzer target: any bytes as a node configuration file must produce a
// configuration or an error message naming the file, never a crash.
#include "core/config/node_config.h"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto r = sluice::config::parse_node_config(std::string_view(reinterpret_cast<const char*>(data), size),
                                             "fuzz.yaml");
  if (!r.has_value() && r.err().message.rfind("fuzz.yaml", 0) != 0) std::abort();  // must name the file
  if (r.has_value()) {
    for (const auto& p : r.value().plugins)
      if (p.name.empty()) std::abort();
  }
  return 0;
}
