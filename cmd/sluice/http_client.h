#pragma once
// A small blocking HTTP/1.1 client for the admin API (docs/ADMIN.md): one
// request per connection (Connection: close), bodies framed by
// Content-Length, chunked transfer coding, or the end of the stream.
// Plain http only.

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "net.h"

namespace sluice::cli {

struct http_url {
  host_port address;
  std::string base_path;  // "" or "/prefix" (no trailing slash)
  std::string text;       // as given, for messages
};

// "http://HOST[:PORT][/prefix]" (port 80 when absent). `what` names the
// setting in errors ("--admin").
http_url parse_http_url(std::string_view text, std::string_view what);

using http_headers = std::vector<std::pair<std::string, std::string>>;

struct http_response {
  int status = 0;
  std::string reason;
  http_headers headers;
  std::string body;
  // The first header with this name (case-insensitive).
  std::optional<std::string> header(std::string_view name) const;
};

// Incremental response parser: feed() bytes as they arrive until it returns
// true; at the end of the stream call finish(). Malformed input is
// exit_code::failed naming what is wrong.
class response_parser {
 public:
  bool feed(std::string_view bytes);
  // The stream ended: completes a body delimited by the end of the stream, or
  // fails when the response is cut short.
  void finish();
  bool complete() const { return _state == state::done; }
  http_response& response() { return _response; }

 private:
  enum class state { headers, fixed_body, chunk_size, chunk_data, chunk_data_end, trailers, until_eof, done };
  void parse_head(std::string_view head);
  bool step();
  state _state = state::headers;
  std::string _buffer;
  size_t _remaining = 0;
  http_response _response;
};

struct http_request {
  std::string method = "GET";
  std::string target;  // "/v1/brokers" (appended to the URL's base path)
  http_headers headers;
  std::string body;  // sent with Content-Length when not empty or when method != GET
};

// Sends one request and reads the whole response before timeout_ms.
http_response http_call(const http_url& url, const http_request& request, int timeout_ms);

// Base64 of bytes (for Authorization: Basic).
std::string base64_encode(std::string_view bytes);

}  // namespace sluice::cli
