#include "http_client.h"

#include <algorithm>
#include <cctype>

#include "args.h"
#include "cli_error.h"

#ifndef SLUICE_VERSION
#define SLUICE_VERSION "dev"
#endif

namespace sluice::cli {

namespace {

constexpr size_t head_bytes_max = 64 * 1024;

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

[[noreturn]] void bad_response(const std::string& why) { throw_failed("malformed HTTP response: " + why); }

}  // namespace

http_url parse_http_url(std::string_view text, std::string_view what) {
  http_url url;
  url.text = std::string(text);
  std::string_view rest = text;
  if (rest.starts_with("https://")) {
    throw_usage("bad URL '" + url.text + "' for " + std::string(what) + ": https is not supported, use http://");
  }
  if (!rest.starts_with("http://")) {
    throw_usage("bad URL '" + url.text + "' for " + std::string(what) + ": want http://HOST:PORT");
  }
  rest.remove_prefix(7);
  auto slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  if (slash != std::string_view::npos) {
    std::string_view path = rest.substr(slash);
    while (path.ends_with('/')) {
      path.remove_suffix(1);
    }
    url.base_path = std::string(path);
  }
  url.address = parse_host_port(authority, 80, what);
  return url;
}

std::optional<std::string> http_response::header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (iequals(key, name)) {
      return value;
    }
  }
  return std::nullopt;
}

void response_parser::parse_head(std::string_view head) {
  auto line_end = head.find("\r\n");
  std::string_view status_line = head.substr(0, line_end);
  // HTTP/1.1 200 OK
  if (!status_line.starts_with("HTTP/1.")) {
    bad_response("status line '" + std::string(status_line.substr(0, 80)) + "' is not HTTP/1.x");
  }
  auto sp = status_line.find(' ');
  if (sp == std::string_view::npos || status_line.size() < sp + 4) {
    bad_response("status line '" + std::string(status_line) + "' has no status code");
  }
  _response.status = static_cast<int>(parse_int(status_line.substr(sp + 1, 3), "the HTTP status code", 100, 999));
  _response.reason = std::string(trim(status_line.substr(std::min(status_line.size(), sp + 4))));
  std::string_view rest = line_end == std::string_view::npos ? std::string_view() : head.substr(line_end + 2);
  while (!rest.empty()) {
    auto end = rest.find("\r\n");
    std::string_view line = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 2);
    if (line.empty()) {
      continue;
    }
    auto colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      bad_response("header line '" + std::string(line.substr(0, 80)) + "' has no name");
    }
    _response.headers.emplace_back(std::string(line.substr(0, colon)), std::string(trim(line.substr(colon + 1))));
  }
  auto encoding = _response.header("Transfer-Encoding");
  auto length = _response.header("Content-Length");
  if (encoding && iequals(trim(*encoding), "chunked")) {
    _state = state::chunk_size;
  } else if (length) {
    _remaining = static_cast<size_t>(parse_int(*length, "the Content-Length header", 0, INT64_MAX));
    _state = _remaining == 0 ? state::done : state::fixed_body;
  } else if (_response.status == 204 || _response.status == 304 || _response.status < 200) {
    _state = state::done;
  } else {
    _state = state::until_eof;
  }
}

// Runs the state machine on _buffer; false when it needs more bytes.
bool response_parser::step() {
  switch (_state) {
    case state::headers: {
      auto end = _buffer.find("\r\n\r\n");
      if (end == std::string::npos) {
        if (_buffer.size() > head_bytes_max) {
          bad_response("headers larger than 64 KiB");
        }
        return false;
      }
      std::string head = _buffer.substr(0, end);
      _buffer.erase(0, end + 4);
      parse_head(head);
      return true;
    }
    case state::fixed_body:
    case state::chunk_data: {
      size_t take = std::min(_remaining, _buffer.size());
      _response.body.append(_buffer, 0, take);
      _buffer.erase(0, take);
      _remaining -= take;
      if (_remaining > 0) {
        return false;
      }
      _state = _state == state::fixed_body ? state::done : state::chunk_data_end;
      return true;
    }
    case state::chunk_size: {
      auto end = _buffer.find("\r\n");
      if (end == std::string::npos) {
        return false;
      }
      std::string_view line = std::string_view(_buffer).substr(0, end);
      line = line.substr(0, line.find(';'));  // chunk extensions
      line = trim(line);
      size_t size = 0;
      if (line.empty() || line.size() > 15) {
        bad_response("bad chunk size '" + std::string(line) + "'");
      }
      for (char c : line) {
        if (!std::isxdigit(static_cast<unsigned char>(c))) {
          bad_response("bad chunk size '" + std::string(line) + "'");
        }
        size = size * 16 + static_cast<size_t>(std::isdigit(static_cast<unsigned char>(c))
                                                   ? c - '0'
                                                   : std::tolower(static_cast<unsigned char>(c)) - 'a' + 10);
      }
      _buffer.erase(0, end + 2);
      _remaining = size;
      _state = size == 0 ? state::trailers : state::chunk_data;
      return true;
    }
    case state::chunk_data_end:
      if (_buffer.size() < 2) {
        return false;
      }
      if (_buffer.compare(0, 2, "\r\n") != 0) {
        bad_response("a chunk does not end with CRLF");
      }
      _buffer.erase(0, 2);
      _state = state::chunk_size;
      return true;
    case state::trailers: {
      auto end = _buffer.find("\r\n");
      if (end == std::string::npos) {
        return false;
      }
      _buffer.erase(0, end + 2);
      if (end == 0) {
        _state = state::done;
      }
      return true;
    }
    case state::until_eof:
      _response.body += _buffer;
      _buffer.clear();
      return false;
    case state::done:
      return false;
  }
  return false;
}

bool response_parser::feed(std::string_view bytes) {
  _buffer.append(bytes);
  while (step()) {
  }
  return complete();
}

void response_parser::finish() {
  if (_state == state::until_eof) {
    _state = state::done;
    return;
  }
  if (_state != state::done) {
    bad_response(_state == state::headers ? "the connection closed before the headers ended"
                                          : "the connection closed before the body ended");
  }
}

http_response http_call(const http_url& url, const http_request& request, int timeout_ms) {
  const deadline until = deadline_after_ms(timeout_ms);
  tcp_connection conn(url.address, until, "the admin API at " + url.text);
  std::string out = request.method + " " + url.base_path + request.target + " HTTP/1.1\r\n";
  out += "Host: " + url.address.to_string() + "\r\n";
  out += "User-Agent: sluice-cli/" SLUICE_VERSION "\r\n";
  out += "Accept: application/json\r\n";
  out += "Connection: close\r\n";
  for (const auto& [name, value] : request.headers) {
    out += name + ": " + value + "\r\n";
  }
  if (!request.body.empty() || request.method != "GET") {
    out += "Content-Length: " + std::to_string(request.body.size()) + "\r\n";
  }
  out += "\r\n";
  out += request.body;
  conn.send_all(out);

  response_parser parser;
  std::string chunk;
  while (!parser.complete()) {
    chunk.clear();
    if (conn.receive_some(chunk) == 0) {
      parser.finish();
      break;
    }
    parser.feed(chunk);
  }
  return std::move(parser.response());
}

std::string base64_encode(std::string_view bytes) {
  static constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    uint32_t v = (uint32_t(uint8_t(bytes[i])) << 16) | (uint32_t(uint8_t(bytes[i + 1])) << 8) | uint8_t(bytes[i + 2]);
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    out += alphabet[v & 63];
  }
  if (size_t left = bytes.size() - i; left > 0) {
    uint32_t v = uint32_t(uint8_t(bytes[i])) << 16;
    if (left == 2) {
      v |= uint32_t(uint8_t(bytes[i + 1])) << 8;
    }
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += left == 2 ? alphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

}  // namespace sluice::cli
