#pragma once
// The admin HTTP API (docs/ADMIN.md) as JSON calls, with its errors mapped
// to exit codes: unreachable 3, 404 for a looked-up object 4, any other
// non-2xx 1 (with the API's {"code", "message"} in the error).

#include <nlohmann/json.hpp>

#include <string>

#include "http_client.h"
#include "settings.h"

namespace sluice::cli {

class admin_api {
 public:
  explicit admin_api(const settings& s);

  // GET path. `object` describes what a 404 means ("group 'g'"): with it a
  // 404 is exit_code::not_found "<object> does not exist"; without it a 404
  // means the route is missing (exit_code::failed).
  nlohmann::json get(const std::string& path, const std::string& object = "") const;
  // PUT path with a JSON body. A 400 with "errors": {key: reason} lists every key.
  nlohmann::json put(const std::string& path, const nlohmann::json& body) const;

  const std::string& base_url() const { return _url.text; }

 private:
  nlohmann::json call(const std::string& method, const std::string& path, const std::string& body,
                      const std::string& object) const;
  http_url _url;
  std::string _source;
  std::string _authorization;  // header value or ""
  int _timeout_ms;
};

}  // namespace sluice::cli
