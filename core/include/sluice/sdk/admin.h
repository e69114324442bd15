// Admin HTTP routes and metrics sources for plugin authors (ABI 1.3).
//
//   sdk::admin_routes routes;                        // a member of the plugin
//   void configure(sdk::config_map&) override {
//     routes.init("myplugin.admin");                 // one service per plugin
//     routes.add("GET", "/v1/widgets/{id}", [this](sdk::http_request req) -> sdk::task<sdk::http_response> {
//       co_return sdk::http_response::json(200, "{\"id\":\"" + req.params["id"] + "\"}");
//     });
//     routes.add_metrics([this]() -> sdk::task<std::string> { co_return "# TYPE ...\n"; });
//   }
//
// The plugin that serves HTTP (admin_http) matches the request, then calls
// the handler on the shard that received it; the handler may hop to other
// shards itself. Messages are sluice.admin.HttpRequest/HttpResponse
// (proto/sluice/admin.proto), encoded by the sluice_sdk_admin library that a
// plugin using this header links; protobuf stays out of this header.
#pragma once

#include <sluice/sdk/runtime.h>

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::sdk {

struct http_request {
  std::string method;
  std::string path;
  std::map<std::string, std::string> params;  // the route's {name} segments
  std::map<std::string, std::string> query;
  std::string body;
};

struct http_response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;

  static http_response json(int status, std::string body) { return {status, "application/json", std::move(body)}; }
  // {"code": status, "message": message}, the admin API's error body.
  static http_response error(int status, std::string_view message);
};

// Wire encoding of the two messages (sluice_sdk_admin).
std::string encode(const http_request& r);
std::string encode(const http_response& r);
bool decode(std::string_view bytes, http_request& out);
bool decode(std::string_view bytes, http_response& out);
// s as a JSON string literal, with quotes (for hand-built bodies).
std::string json_quote(std::string_view s);

using route_fn = std::function<task<http_response>(http_request)>;
using metrics_fn = std::function<task<std::string>()>;

class admin_routes {
 public:
  // During configure: registers the plugin's admin service under
  // service_name ("<plugin>.admin"). Throws std::runtime_error on failure.
  void init(const char* service_name);
  // During configure. Throws std::runtime_error naming the route when the
  // host refuses it (bad pattern, taken by another plugin).
  void add(const char* method, const char* path, route_fn fn);
  // During configure: fn's text is appended to /metrics at every scrape.
  void add_metrics(metrics_fn fn);

 private:
  int32_t _service = -1;
  std::vector<route_fn> _routes;      // message type i + 1
  std::vector<metrics_fn> _metrics;   // message type 0x10000 + i
};

}  // namespace sluice::sdk
