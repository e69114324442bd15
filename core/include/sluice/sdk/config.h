// Strict YAML configuration reading, shared by the core (node settings) and
// plugins (their `config:` subtree).
//
// Every value is read through a config_map, which knows the file and the
// key path it came from, so an error names both: 
//   config/sluice.yaml:7: node.shards: expected an unsigned integer, got "many"
// finish() rejects keys nobody read (typos do not pass silently).
//
// Start-up only: errors are thrown as config_error, which the caller turns
// into a message and an exit code (plugins: on_configure returns non-zero).
// Never used on shard threads.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <limits>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace sluice::sdk {

class config_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class config_map {
 public:
  // origin: the file name; path: the key path of node ("" at the root).
  config_map(YAML::Node node, std::string origin, std::string path)
      : _node(std::move(node)), _origin(std::move(origin)), _path(std::move(path)) {
    if (_node.IsDefined() && !_node.IsNull() && !_node.IsMap())
      fail(_node, "expected a mapping of settings");
  }

  // Parses YAML text re-emitted by the host (a plugin's config subtree). Its
  // line numbers are not the file's, so errors name origin (the host passes
  // "file:line" of the subtree) and the key path instead. Empty text is an
  // empty map.
  static config_map parse(const std::string& text, std::string origin, std::string path) {
    YAML::Node root;
    try {
      root = YAML::Load(text);
    } catch (const YAML::Exception& e) {
      throw config_error(origin + ": " + path + ": invalid YAML: " + e.msg);
    }
    config_map m(root, std::move(origin), std::move(path));
    m._show_lines = false;
    return m;
  }

  const std::string& origin() const noexcept { return _origin; }
  const std::string& path() const noexcept { return _path; }
  bool has(const std::string& key) const {
    const YAML::Node& node = _node;
    return node && node.IsMap() && node[key] && !node[key].IsNull();
  }

  std::string get_string(const std::string& key, const std::string& fallback) {
    YAML::Node n = take(key);
    if (!n) return fallback;
    if (!n.IsScalar()) fail(n, key, "expected a string");
    return n.Scalar();
  }
  std::string require_string(const std::string& key) {
    if (!has(key)) fail(_node, key, "is required");
    return get_string(key, "");
  }
  uint64_t get_uint(const std::string& key, uint64_t fallback, uint64_t min = 0,
                    uint64_t max = std::numeric_limits<uint64_t>::max()) {
    YAML::Node n = take(key);
    if (!n) return fallback;
    return scalar_uint(n, key, min, max);
  }
  // A signed integer in [min, max] (Kafka-style settings use -1 for "none").
  int64_t get_int(const std::string& key, int64_t fallback, int64_t min = std::numeric_limits<int64_t>::min(),
                  int64_t max = std::numeric_limits<int64_t>::max()) {
    YAML::Node n = take(key);
    if (!n) return fallback;
    if (!n.IsScalar()) fail(n, key, "expected an integer");
    const std::string& s = n.Scalar();
    const bool negative = !s.empty() && s[0] == '-';
    const std::string digits = negative ? s.substr(1) : s;
    uint64_t v = 0;
    bool ok = !digits.empty() && digits.size() <= 19;
    for (char c : digits) {
      if (c < '0' || c > '9') {
        ok = false;
        break;
      }
      v = v * 10 + static_cast<uint64_t>(c - '0');
    }
    ok = ok && v <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
    if (!ok) fail(n, key, "expected an integer, got \"" + s + "\"");
    const int64_t x = negative ? -static_cast<int64_t>(v) : static_cast<int64_t>(v);
    if (x < min || x > max)
      fail(n, key, "must be between " + std::to_string(min) + " and " + std::to_string(max) + ", got " + s);
    return x;
  }
  // A list of unsigned integers (or nothing: an empty list), each in [min, max].
  std::vector<uint64_t> get_uint_list(const std::string& key, uint64_t min = 0,
                                      uint64_t max = std::numeric_limits<uint64_t>::max()) {
    YAML::Node n = take(key);
    std::vector<uint64_t> out;
    if (!n || n.IsNull()) return out;
    if (!n.IsSequence()) fail(n, key, "expected a list of unsigned integers");
    for (size_t i = 0; i < n.size(); ++i) out.push_back(scalar_uint(n[i], key + "[" + std::to_string(i) + "]", min, max));
    return out;
  }
  bool get_bool(const std::string& key, bool fallback) {
    YAML::Node n = take(key);
    if (!n) return fallback;
    if (n.IsScalar()) {
      const std::string& s = n.Scalar();
      if (s == "true" || s == "yes" || s == "on") return true;
      if (s == "false" || s == "no" || s == "off") return false;
    }
    fail(n, key, "expected true or false, got \"" + (n.IsScalar() ? n.Scalar() : std::string("a collection")) + "\"");
  }
  // One of `allowed`.
  std::string get_enum(const std::string& key, const std::string& fallback,
                       const std::vector<std::string>& allowed) {
    std::string v = get_string(key, fallback);
    for (const auto& a : allowed)
      if (a == v) return v;
    std::string list;
    for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
    const YAML::Node& node = _node;
    fail(node[key], key, "expected one of " + list + ", got \"" + v + "\"");
  }
  config_map get_map(const std::string& key) {
    YAML::Node n = take(key);
    config_map m(n.IsDefined() ? n : YAML::Node(YAML::NodeType::Map), _origin, join(key));
    m._show_lines = _show_lines;
    return m;
  }
  // A sequence (or nothing): the nodes, for the caller to wrap.
  std::vector<YAML::Node> get_list(const std::string& key) {
    YAML::Node n = take(key);
    std::vector<YAML::Node> out;
    if (!n || n.IsNull()) return out;
    if (!n.IsSequence()) fail(n, key, "expected a list");
    for (const auto& item : n) out.push_back(item);
    return out;
  }
  // The raw node under key (not checked), marked as read.
  YAML::Node get_node(const std::string& key) { return take(key); }

  // Rejects keys that were never read.
  void finish() const {
    if (!_node || !_node.IsMap()) return;
    for (const auto& kv : _node) {
      const std::string key = kv.first.Scalar();
      if (_read.count(key)) continue;
      std::string known;
      for (const auto& k : _read) known += (known.empty() ? "" : ", ") + k;
      fail(kv.first, key, "unknown key" + (known.empty() ? std::string() : " (known keys: " + known + ")"));
    }
  }

  [[noreturn]] void fail(const YAML::Node& at, const std::string& key, const std::string& what) const {
    throw config_error(where(at) + join(key) + ": " + what);
  }
  [[noreturn]] void fail(const YAML::Node& at, const std::string& what) const {
    throw config_error(where(at) + (_path.empty() ? std::string("(top level)") : _path) + ": " + what);
  }

  std::string join(const std::string& key) const { return _path.empty() ? key : _path + "." + key; }

 private:
  uint64_t scalar_uint(const YAML::Node& n, const std::string& key, uint64_t min, uint64_t max) {
    if (!n.IsScalar()) fail(n, key, "expected an unsigned integer");
    const std::string& s = n.Scalar();
    uint64_t v = 0;
    bool ok = !s.empty() && s.size() <= 20;
    for (char c : s) {
      if (c < '0' || c > '9') {
        ok = false;
        break;
      }
      const uint64_t d = static_cast<uint64_t>(c - '0');
      if (v > (std::numeric_limits<uint64_t>::max() - d) / 10) {
        ok = false;
        break;
      }
      v = v * 10 + d;
    }
    if (!ok) fail(n, key, "expected an unsigned integer, got \"" + s + "\"");
    if (v < min || v > max)
      fail(n, key, "must be between " + std::to_string(min) + " and " + std::to_string(max) + ", got " + s);
    return v;
  }

  YAML::Node take(const std::string& key) {
    _read.insert(key);
    // A default YAML::Node is a *defined* null; "unset" must be undefined.
    const YAML::Node unset(YAML::NodeType::Undefined);
    if (!_node || !_node.IsMap()) return unset;
    const YAML::Node& node = _node;  // const access never inserts
    YAML::Node n = node[key];
    if (!n || n.IsNull()) return unset;  // `key:` with no value counts as unset
    return n;
  }
  std::string where(const YAML::Node& at) const {
    std::string w = _origin;
    if (_show_lines && at && at.Mark().line >= 0) w += ":" + std::to_string(at.Mark().line + 1);
    return w + ": ";
  }

  YAML::Node _node;
  std::string _origin;
  std::string _path;
  std::set<std::string> _read;
  bool _show_lines = true;
};

}  // namespace sluice::sdk
