#include "router.h"

#include <algorithm>
#include <cctype>

namespace sluice::admin_http {

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::string> percent_decode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%') {
      if (i + 2 >= s.size()) return std::nullopt;
      const int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      c = static_cast<char>(hi * 16 + lo);
      if (c == '\0') return std::nullopt;
      i += 2;
    } else if (c == '+' && plus_is_space) {
      c = ' ';
    }
    out += c;
  }
  return out;
}

// Splits on '/', keeping empty segments except the leading one.
std::vector<std::string_view> segments(std::string_view path) {
  std::vector<std::string_view> out;
  if (!path.empty() && path[0] == '/') path.remove_prefix(1);
  size_t pos = 0;
  while (true) {
    const size_t end = path.find('/', pos);
    out.push_back(path.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos));
    if (end == std::string_view::npos) break;
    pos = end + 1;
  }
  return out;
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  // Time depends on a's length only, not on where the first difference is.
  unsigned diff = a.size() == b.size() ? 0u : 1u;
  for (size_t i = 0; i < a.size(); ++i)
    diff |= static_cast<unsigned>(static_cast<unsigned char>(a[i]) ^ static_cast<unsigned char>(i < b.size() ? b[i] : 0));
  return diff == 0;
}

}  // namespace

std::optional<target> parse_target(std::string_view raw) {
  if (raw.empty() || raw[0] != '/') return std::nullopt;
  const size_t q = raw.find('?');
  target t;
  t.raw_path = std::string(raw.substr(0, q));
  auto path = percent_decode(t.raw_path, false);
  if (!path) return std::nullopt;
  t.path = std::move(*path);
  if (q == std::string_view::npos) return t;
  std::string_view query = raw.substr(q + 1);
  const size_t hash = query.find('#');
  if (hash != std::string_view::npos) query = query.substr(0, hash);
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    if (pair.empty()) continue;
    const size_t eq = pair.find('=');
    auto key = percent_decode(pair.substr(0, eq), true);
    auto value = percent_decode(eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1), true);
    if (!key || !value) return std::nullopt;
    t.query[*key] = *value;
  }
  return t;
}

bool match_pattern(std::string_view pattern, std::string_view raw_path, std::map<std::string, std::string>& params) {
  const auto ps = segments(pattern), xs = segments(raw_path);
  if (ps.size() != xs.size()) return false;
  std::map<std::string, std::string> found;
  for (size_t i = 0; i < ps.size(); ++i) {
    const std::string_view p = ps[i];
    auto seg = percent_decode(xs[i], false);
    if (!seg) return false;
    if (p.size() >= 3 && p.front() == '{' && p.back() == '}') {
      if (seg->empty()) return false;
      found.emplace(std::string(p.substr(1, p.size() - 2)), std::move(*seg));
    } else if (p != *seg) {
      return false;
    }
  }
  params = std::move(found);
  return true;
}

match_result route_table::match(std::string_view method, const std::string& path) const {
  match_result out;
  // Specificity: the first segment where one pattern has a literal and the
  // other a parameter decides.
  auto literal_mask = [](const std::string& pattern) {
    std::vector<bool> m;
    for (auto s : segments(pattern)) m.push_back(!(s.size() >= 3 && s.front() == '{'));
    return m;
  };
  std::vector<bool> best_mask;
  for (const route_entry& r : _routes) {
    std::map<std::string, std::string> params;
    if (!match_pattern(r.pattern, path, params)) continue;
    const std::string m = r.method;
    if (std::find(out.allowed.begin(), out.allowed.end(), m) == out.allowed.end()) out.allowed.push_back(m);
    const bool method_ok = r.method == method || (method == "HEAD" && r.method == "GET");
    if (!method_ok) continue;
    auto mask = literal_mask(r.pattern);
    if (out.route == nullptr || mask > best_mask) {
      out.route = &r;
      out.params = std::move(params);
      best_mask = std::move(mask);
    }
  }
  return out;
}

std::optional<std::string> base64_decode(std::string_view in) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  while (!in.empty() && in.back() == '=') in.remove_suffix(1);
  if (in.size() % 4 == 1) return std::nullopt;
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    const int v = value(c);
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return out;
}

bool authorized(const auth_settings& auth, std::string_view header) {
  if (!auth.enabled()) return true;
  auto starts = [&](std::string_view scheme) {
    if (header.size() <= scheme.size()) return false;
    for (size_t i = 0; i < scheme.size(); ++i)
      if (std::tolower(static_cast<unsigned char>(header[i])) != scheme[i]) return false;
    return header[scheme.size()] == ' ';
  };
  if (!auth.bearer_token.empty() && starts("bearer")) {
    std::string_view token = header.substr(7);
    while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
    return constant_time_equal(token, auth.bearer_token);
  }
  if (!auth.username.empty() && starts("basic")) {
    std::string_view enc = header.substr(6);
    while (!enc.empty() && enc.front() == ' ') enc.remove_prefix(1);
    const auto dec = base64_decode(enc);
    if (!dec) return false;
    return constant_time_equal(*dec, auth.username + ":" + auth.password);
  }
  return false;
}

}  // namespace sluice::admin_http
