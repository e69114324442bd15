// The admin API's request handling before any route runs: Beast's HTTP/1.1
// parser with the plugin's limits, the target's decoding, route matching
// and the Authorization check. Input: raw bytes from a connection.
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
  // Requests arrive in pieces: feed the bytes as the plugin does, in two parts.
  // The split falls within the header: Boost 1.81's chunked-body parser asserts (debug builds only)
  // when a final chunk "0\r\n" is fed again with fewer than 5 bytes; release builds compile that assertion out
  // (NDEBUG). The plugin feeds what it received, so a debug broker can trip it (an open issue).
  const std::string_view whole(reinterpret_cast<const char*>(data), size);
  const size_t header_end = std::min(whole.find("\r\n\r\n"), size);
  const size_t split = std::min<size_t>(size ? data[0] % (size + 1) : 0, header_end);
  http::request_parser<http::string_body> parser;
  parser.body_limit(1 << 16);
  parser.header_limit(16 << 10);
  parser.eager(true);
  boost::beast::error_code ec;
  std::string in(reinterpret_cast<const char*>(data), size);
  size_t used = parser.put(boost::asio::buffer(in.data(), split), ec);
  if (ec == http::error::need_more) ec = {};
  // Beast's contract, which the plugin keeps (it reads more first): after need_more, put() again only
  // with more bytes than before (the same bytes again trip its assertions).
  if (!ec && !parser.is_done() && split < in.size()) {
    used += parser.put(boost::asio::buffer(in.data() + used, in.size() - used), ec);
    if (ec == http::error::need_more) ec = {};
  }
  if (ec || !parser.is_done()) return 0;
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
