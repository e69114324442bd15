// The echo plugin's line protocol, kept free of I/O so it can be unit
// tested and fuzzed.
//
// Requests are lines ending in "\n" (a trailing "\r" is ignored):
//   PING          -> PONG
//   ECHO <text>   -> <text>
//   SHARD         -> the id of the shard serving this connection
//   STATS         -> lines=<n> connections=<n> shards=<n>, summed over all
//                    shards through the echo.stats service
//   QUIT          -> BYE, then the server closes the connection
// Commands are case-insensitive. Anything else gets "ERR ..." and the
// connection stays open; a line longer than max_line_bytes gets "ERR ..."
// and the connection is closed.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace sluice::echo {

enum class command { ping, echo, shard, stats, quit, empty, unknown };

struct request {
  command cmd = command::unknown;
  std::string_view arg;   // ECHO's text; the unknown command's name
};

inline bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'a' && x <= 'z') x = static_cast<char>(x - 'a' + 'A');
    if (y >= 'a' && y <= 'z') y = static_cast<char>(y - 'a' + 'A');
    if (x != y) return false;
  }
  return true;
}

// line excludes the "\n".
inline request parse_line(std::string_view line) noexcept {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.empty()) return {command::empty, {}};
  const size_t sp = line.find(' ');
  const std::string_view word = line.substr(0, sp);
  const std::string_view rest = sp == std::string_view::npos ? std::string_view() : line.substr(sp + 1);
  if (iequals(word, "PING")) return {command::ping, {}};
  if (iequals(word, "ECHO")) return {command::echo, rest};
  if (iequals(word, "SHARD")) return {command::shard, {}};
  if (iequals(word, "STATS")) return {command::stats, {}};
  if (iequals(word, "QUIT")) return {command::quit, {}};
  return {command::unknown, word.substr(0, 64)};
}

// Accumulates received bytes and hands out complete lines.
class line_buffer {
 public:
  explicit line_buffer(size_t max_line_bytes) : _max(max_line_bytes) {}

  void append(std::string_view bytes) { _buf.append(bytes); }

  // The next complete line (without "\n"), valid until the next call to
  // next() or append(); false when no complete line is buffered or the next
  // line is longer than the limit (then overflowed() is true).
  bool next(std::string_view& line) {
    if (_consumed) {
      _buf.erase(0, _consumed);
      _consumed = 0;
    }
    const size_t nl = _buf.find('\n');
    if (nl == std::string::npos || nl > _max) return false;
    line = std::string_view(_buf).substr(0, nl);
    _consumed = nl + 1;
    return true;
  }

  // True when an unterminated line (or a terminated one) exceeds the limit.
  bool overflowed() const noexcept {
    const size_t nl = _buf.find('\n', _consumed);
    const size_t pending = (nl == std::string::npos ? _buf.size() : nl) - _consumed;
    return pending > _max;
  }

 private:
  size_t _max;
  std::string _buf;
  size_t _consumed = 0;
};

}  // namespace sluice::echo
