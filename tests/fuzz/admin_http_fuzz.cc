// The admin API's request handling before any route runs: Beast's HTTP/1.1
// parser with the plugin's limits, the target's decoding, route matching
// and the Authorization check. Input: raw bytes from a connection.
#include "request_feed.h"
#include "router.h"

#include <boost/beast/http.hpp>

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>

namespace http = boost::beast::http;
using namespace sluice::admin_http;

namespace {

const route_table& table() {
  static const route_table t = [] {
    route_table t;
    for (const char* p : {"/v1/status/live", "/metrics", "/v1/topics", "/v1/topics/{name}",
                          "/v1/partitions/{topic}/{partition}", "/v1/cluster_config", "/v1/cluster_config/schema",
                          "/v1/loggers/{name}", "/", "/console/{file}"})
      t.add({"GET", p, 1, 1, "fuzz"});
    t.add({"PUT", "/v1/cluster_config", 1, 2, "fuzz"});
    t.add({"PUT", "/v1/loggers/{name}", 1, 3, "fuzz"});
    return t;
  }();
  return t;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Requests arrive in pieces: feed the bytes as the plugin does (feed_request), received in up to three
  // parts split anywhere (the first two bytes choose where).
  const size_t a = size ? data[0] % (size + 1) : 0;
  const size_t b = size > 1 ? a + data[1] % (size - a + 1) : size;
  http::request_parser<http::string_body> parser;
  parser.body_limit(1 << 16);
  parser.header_limit(16 << 10);
  parser.eager(true);
  boost::beast::error_code ec;
  const char* bytes = reinterpret_cast<const char*>(data);
  std::string in;
  bool done = false;
  for (const auto& [from, to] : {std::pair{size_t{0}, a}, std::pair{a, b}, std::pair{b, size}}) {
    if (from == to) continue;
    in.append(bytes + from, to - from);
    if ((done = feed_request(parser, in, ec))) break;
  }
  if (!done || ec) return 0;
  auto req = parser.release();
  auto t = parse_target(req.target());
  if (!t) return 0;
  const match_result m = table().match(std::string(req.method_string()), t->raw_path);
  if (m.route) {
    std::map<std::string, std::string> params;
    if (!match_pattern(m.route->pattern, t->raw_path, params) || params != m.params) __builtin_trap();
  }
  const auth_settings auth{"token", "user", "pass"};
  (void)authorized(auth, req[http::field::authorization]);
  return 0;
}
