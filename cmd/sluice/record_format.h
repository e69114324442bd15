#pragma once
// How `sluice consume` prints records: raw values, JSON lines, or a template
// such as '%k %v %p %o' (kcat-like).

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice::cli {

struct record_view {
  std::string_view topic;
  int32_t partition = 0;
  int64_t offset = 0;
  int64_t timestamp_ms = -1;
  std::optional<std::string_view> key;    // nullopt: null key
  std::optional<std::string_view> value;  // nullopt: null value (tombstone)
  std::vector<std::pair<std::string_view, std::optional<std::string_view>>> headers;
};

// The record as a JSON object: topic, partition, offset, timestamp, key,
// value, headers ([{"key", "value"}], in order). Null key/value are null.
nlohmann::json record_to_json(const record_view& r);

// A parsed --format template. Directives: %t topic, %p partition, %o offset,
// %T timestamp (ms), %k key, %v value, %K key length, %V value length,
// %h headers (k=v,k=v), %% a percent sign; escapes \n \t \r \\ \0. A record
// is printed as the template followed by a newline, unless the template
// already ends with \n.
class record_template {
 public:
  // Unknown directives or escapes are usage errors naming them.
  explicit record_template(std::string_view text);
  std::string render(const record_view& r) const;
  bool ends_with_newline() const { return _ends_with_newline; }

 private:
  bool _ends_with_newline = false;
  struct piece {
    char directive = 0;  // 0: literal text
    std::string text;
  };
  std::vector<piece> _pieces;
};

// --format raw|json|TEMPLATE.
class record_formatter {
 public:
  explicit record_formatter(std::string_view format);
  std::string render(const record_view& r) const;  // with the trailing newline

 private:
  enum class kind { raw, json, templated } _kind;
  std::optional<record_template> _template;
};

}  // namespace sluice::cli
