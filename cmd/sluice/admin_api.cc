#include "admin_api.h"

#include "cli_error.h"

namespace sluice::cli {

admin_api::admin_api(const settings& s)
    : _url(parse_http_url(s.admin, s.admin_source == "default" ? "--admin" : s.admin_source)),
      _source(s.admin_source),
      _timeout_ms(s.timeout_ms) {
  if (!s.admin_token.empty()) {
    _authorization = "Bearer " + s.admin_token;
  } else if (!s.admin_user.empty()) {
    _authorization = "Basic " + base64_encode(s.admin_user + ":" + s.admin_password);
  }
}

nlohmann::json admin_api::get(const std::string& path, const std::string& object) const {
  return call("GET", path, "", object);
}

nlohmann::json admin_api::put(const std::string& path, const nlohmann::json& body) const {
  return call("PUT", path, body.dump(), "");
}

nlohmann::json admin_api::call(const std::string& method, const std::string& path, const std::string& body,
                               const std::string& object) const {
  http_request request;
  request.method = method;
  request.target = path;
  request.body = body;
  if (!body.empty()) {
    request.headers.emplace_back("Content-Type", "application/json");
  }
  if (!_authorization.empty()) {
    request.headers.emplace_back("Authorization", _authorization);
  }
  http_response response;
  try {
    response = http_call(_url, request, _timeout_ms);
  } catch (const cli_error& e) {
    if (e.code() == exit_code::unreachable) {
      throw_unreachable(std::string(e.what()) + " (admin URL from " + _source + ")");
    }
    throw;
  }
  const std::string where = method + " " + _url.text + path;
  nlohmann::json parsed = nlohmann::json::parse(response.body, nullptr, false);
  if (response.status >= 200 && response.status < 300) {
    if (parsed.is_discarded()) {
      throw_failed(where + " answered " + std::to_string(response.status) + " with a body that is not JSON");
    }
    return parsed;
  }
  std::string message;
  if (!parsed.is_discarded() && parsed.is_object() && parsed.contains("message") && parsed["message"].is_string()) {
    message = parsed["message"].get<std::string>();
  } else {
    message = response.body.substr(0, 200);
  }
  if (!parsed.is_discarded() && parsed.is_object() && parsed.contains("errors") && parsed["errors"].is_object()) {
    for (const auto& [key, reason] : parsed["errors"].items()) {
      message += "\n  " + key + ": " + (reason.is_string() ? reason.get<std::string>() : reason.dump());
    }
  }
  const std::string status = std::to_string(response.status);
  switch (response.status) {
    case 401:
      throw_failed(where + ": 401 unauthorized: " + message +
                   " (pass --admin-token, or --admin-user and --admin-password)");
    case 404:
      if (!object.empty()) {
        throw_not_found(object + " does not exist (" + where + ": 404 " + message + ")");
      }
      throw_failed(where + ": 404 " + message + " (does this broker serve that route? see docs/ADMIN.md)");
    default:
      throw_failed(where + ": " + status + " " + message);
  }
}

}  // namespace sluice::cli
