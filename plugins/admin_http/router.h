// Request routing for the admin API, without I/O (fuzzed by
// tests/fuzz/admin_http_fuzz.cc): splitting a target into a decoded path and
// query, matching route patterns ("/v1/topics/{topic}"), and checking the
// Authorization header.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::admin_http {

struct target {
  std::string raw_path;                      // as sent (segments still %-encoded): what routes match
  std::string path;                          // percent-decoded, for messages
  std::map<std::string, std::string> query;  // percent-decoded, '+' is a space
};
// nullopt for a target that is not an absolute path or has a bad %-escape
// or a decoded NUL.
std::optional<target> parse_target(std::string_view raw);

struct route_entry {
  std::string method;
  std::string pattern;
  int32_t service_id = -1;  // -1: served by admin_http itself
  uint32_t message_type = 0;
  std::string plugin;
};

struct match_result {
  const route_entry* route = nullptr;      // the route for this method, or null
  std::map<std::string, std::string> params;
  std::vector<std::string> allowed;        // methods of routes matching the path (for 405)
};

// Literal segments beat {name} segments at each position, so /v1/a/b wins
// over /v1/a/{x} for "/v1/a/b".
class route_table {
 public:
  void add(route_entry r) { _routes.push_back(std::move(r)); }
  // raw_path: segments percent-encoded, so "/v1/groups/a%2Fb" is two
  // segments after "v1" and binds id = "a/b".
  match_result match(std::string_view method, const std::string& raw_path) const;
  const std::vector<route_entry>& routes() const noexcept { return _routes; }

 private:
  std::vector<route_entry> _routes;
};

// Matches one pattern against a raw (percent-encoded) path: each segment is
// decoded after splitting; fills params (decoded) on success.
bool match_pattern(std::string_view pattern, std::string_view raw_path, std::map<std::string, std::string>& params);

struct auth_settings {
  std::string bearer_token;  // "" : not accepted
  std::string username;      // "" : basic auth not accepted
  std::string password;
  bool enabled() const noexcept { return !bearer_token.empty() || !username.empty(); }
};
// Whether the Authorization header value grants access.
bool authorized(const auth_settings& auth, std::string_view header);

std::optional<std::string> base64_decode(std::string_view in);

}  // namespace sluice::admin_http
