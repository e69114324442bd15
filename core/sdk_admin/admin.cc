// sluice/sdk/admin.h: the admin route service of a plugin, and the wire
// encoding of its messages.
#include <sluice/sdk/admin.h>

#include "sluice/admin.pb.h"

#include <cstdio>
#include <stdexcept>

namespace sluice::sdk {

namespace {
constexpr uint32_t metrics_type_base = 0x10000;
}

std::string json_quote(std::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
          out += buf;
        } else {
          out += c;
        }
    }
  }
  out += '"';
  return out;
}

http_response http_response::error(int status, std::string_view message) {
  return json(status, "{\"code\":" + std::to_string(status) + ",\"message\":" + json_quote(message) + "}");
}

std::string encode(const http_request& r) {
  admin::HttpRequest m;
  m.set_method(r.method);
  m.set_path(r.path);
  for (const auto& [k, v] : r.params) (*m.mutable_params())[k] = v;
  for (const auto& [k, v] : r.query) (*m.mutable_query())[k] = v;
  m.set_body(r.body);
  return m.SerializeAsString();
}

std::string encode(const http_response& r) {
  admin::HttpResponse m;
  m.set_status(static_cast<uint32_t>(r.status));
  m.set_content_type(r.content_type);
  m.set_body(r.body);
  return m.SerializeAsString();
}

bool decode(std::string_view bytes, http_request& out) {
  admin::HttpRequest m;
  if (!m.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) return false;
  out.method = m.method();
  out.path = m.path();
  out.params.clear();
  out.query.clear();
  for (const auto& [k, v] : m.params()) out.params[k] = v;
  for (const auto& [k, v] : m.query()) out.query[k] = v;
  out.body = m.body();
  return true;
}

bool decode(std::string_view bytes, http_response& out) {
  admin::HttpResponse m;
  if (!m.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) return false;
  out.status = m.status() == 0 ? 200 : static_cast<int>(m.status());
  out.content_type = m.content_type().empty() ? "application/json" : m.content_type();
  out.body = m.body();
  return true;
}

void admin_routes::init(const char* service_name) {
  _service = register_service(service_name, [this](uint32_t, message req) -> task<reply> {
    reply rep;
    if (req.type >= metrics_type_base) {
      const size_t i = req.type - metrics_type_base;
      if (i >= _metrics.size()) {
        rep.status = SLUICE_ERR_INVALID;
        co_return rep;
      }
      rep.msg.bytes = co_await _metrics[i]();
      co_return rep;
    }
    http_request r;
    if (req.type == 0 || req.type > _routes.size() || !decode(req.bytes, r)) {
      rep.status = SLUICE_ERR_INVALID;
      co_return rep;
    }
    const http_response res = co_await _routes[req.type - 1](std::move(r));
    rep.msg.bytes = encode(res);
    co_return rep;
  });
  if (_service < 0) throw std::runtime_error(std::string("cannot register service ") + service_name);
}

void admin_routes::add(const char* method, const char* path, route_fn fn) {
  if (_service < 0) throw std::runtime_error("admin_routes::add before init");
  _routes.push_back(std::move(fn));
  const int32_t rc = api().route_register(g_binding.ctx, method, path, _service,
                                          static_cast<uint32_t>(_routes.size()));
  if (rc != SLUICE_OK) {
    _routes.pop_back();
    throw std::runtime_error(std::string("cannot register admin route ") + method + " " + path +
                             " (the log says why)");
  }
}

void admin_routes::add_metrics(metrics_fn fn) {
  if (_service < 0) throw std::runtime_error("admin_routes::add_metrics before init");
  _metrics.push_back(std::move(fn));
  const int32_t rc = api().metrics_source_register(g_binding.ctx, _service,
                                                   metrics_type_base + static_cast<uint32_t>(_metrics.size() - 1));
  if (rc != SLUICE_OK) {
    _metrics.pop_back();
    throw std::runtime_error("cannot register a metrics source (the log says why)");
  }
}

}  // namespace sluice::sdk
