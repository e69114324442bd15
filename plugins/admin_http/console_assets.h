// The web console's files (plugins/admin_http/console/), embedded into the
// plugin at build time by embed_console.cmake, so the broker serves them
// without a path to look them up at run time.
#pragma once

#include <string_view>
#include <vector>

namespace sluice::admin_http {

struct console_asset {
  std::string_view name;          // file name, e.g. "app.js"
  std::string_view content_type;  // e.g. "text/javascript; charset=utf-8"
  std::string_view data;
};

const std::vector<console_asset>& console_assets();

}  // namespace sluice::admin_http
