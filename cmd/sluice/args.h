#pragma once
// Command-line options: their specs, the parser, and typed value parsers.
//
// Syntax: --name VALUE, --name=VALUE, -x VALUE, -xVALUE, boolean --flag, and
// "--" ending the options. A value is taken from the next token even when it
// starts with '-' (so --offset -10 works). Every error is a usage error
// (exit 2) naming the flag and the command.

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice::cli {

struct option_spec {
  std::string long_name;   // without the dashes: "partitions"
  char short_name = 0;     // 'p', or 0 for none
  std::string value_name;  // "N"; empty for a boolean flag
  std::string help;
  bool repeatable = false;
};

class parsed_args {
 public:
  const std::vector<std::string>& positionals() const { return _positionals; }
  bool has(std::string_view long_name) const;
  // The value given (the last one for a repeatable flag), or nullopt.
  std::optional<std::string> value(std::string_view long_name) const;
  // Every value given, in order (empty when none).
  const std::vector<std::string>& values(std::string_view long_name) const;
  // An integer value in [min, max], or fallback when the flag is absent.
  int64_t int_value(std::string_view long_name, int64_t fallback, int64_t min, int64_t max) const;

  void add_positional(std::string value) { _positionals.push_back(std::move(value)); }
  void add_value(const std::string& long_name, std::string value) { _values[long_name].push_back(std::move(value)); }

 private:
  std::vector<std::string> _positionals;
  std::map<std::string, std::vector<std::string>, std::less<>> _values;
};

// Parses tokens against specs. command_name ("sluice topic create") is used in
// error messages. A boolean flag is recorded with the value "true".
parsed_args parse_options(std::span<const std::string> tokens, std::span<const option_spec* const> specs,
                          std::string_view command_name);

// The spec matching a token such as "--brokers=x", "--brokers", "-p3" or "-p", or nullptr.
const option_spec* find_option(std::string_view token, std::span<const option_spec* const> specs);

// Typed values. `what` names the flag or argument in the error ("--partitions").
int64_t parse_int(std::string_view text, std::string_view what, int64_t min, int64_t max);
// "key=value" split at the first '='; the key must not be empty.
std::pair<std::string, std::string> parse_key_value(std::string_view text, std::string_view what);
// "a,b,c" (empty items dropped).
std::vector<std::string> split_list(std::string_view text, char separator = ',');

}  // namespace sluice::cli
