#include "args.h"

#include <charconv>

#include "cli_error.h"

namespace sluice::cli {

namespace {

const std::vector<std::string> no_values;

std::string flag_name(const option_spec& spec) { return "--" + spec.long_name; }

}  // namespace

bool parsed_args::has(std::string_view long_name) const { return _values.find(long_name) != _values.end(); }

std::optional<std::string> parsed_args::value(std::string_view long_name) const {
  auto it = _values.find(long_name);
  if (it == _values.end() || it->second.empty()) {
    return std::nullopt;
  }
  return it->second.back();
}

const std::vector<std::string>& parsed_args::values(std::string_view long_name) const {
  auto it = _values.find(long_name);
  return it == _values.end() ? no_values : it->second;
}

int64_t parsed_args::int_value(std::string_view long_name, int64_t fallback, int64_t min, int64_t max) const {
  auto v = value(long_name);
  if (!v) {
    return fallback;
  }
  return parse_int(*v, "--" + std::string(long_name), min, max);
}

const option_spec* find_option(std::string_view token, std::span<const option_spec* const> specs) {
  if (token.starts_with("--")) {
    std::string_view name = token.substr(2);
    name = name.substr(0, name.find('='));
    for (const option_spec* spec : specs) {
      if (spec->long_name == name) {
        return spec;
      }
    }
    return nullptr;
  }
  if (token.size() >= 2 && token[0] == '-') {
    for (const option_spec* spec : specs) {
      if (spec->short_name != 0 && spec->short_name == token[1]) {
        return spec;
      }
    }
  }
  return nullptr;
}

parsed_args parse_options(std::span<const std::string> tokens, std::span<const option_spec* const> specs,
                          std::string_view command_name) {
  parsed_args result;
  bool options_ended = false;
  for (size_t i = 0; i < tokens.size(); ++i) {
    const std::string& token = tokens[i];
    if (options_ended || token == "-" || token.empty() || token[0] != '-') {
      result.add_positional(token);
      continue;
    }
    if (token == "--") {
      options_ended = true;
      continue;
    }
    const option_spec* spec = find_option(token, specs);
    if (spec == nullptr) {
      std::string shown = token.starts_with("--") ? token.substr(0, token.find('=')) : token.substr(0, 2);
      throw_usage("unknown flag " + shown + " for '" + std::string(command_name) + "' (see '" +
                  std::string(command_name) + " --help')");
    }
    const bool is_long = token.starts_with("--");
    std::optional<std::string> inline_value;
    if (is_long) {
      if (auto eq = token.find('='); eq != std::string::npos) {
        inline_value = token.substr(eq + 1);
      }
    } else if (token.size() > 2) {
      inline_value = token.substr(2);
    }
    const std::string shown = is_long ? flag_name(*spec) : std::string("-") + spec->short_name;
    if (spec->value_name.empty()) {
      if (inline_value) {
        throw_usage("flag " + shown + " of '" + std::string(command_name) + "' takes no value (got '" +
                    *inline_value + "')");
      }
      result.add_value(spec->long_name, "true");
      continue;
    }
    std::string value;
    if (inline_value) {
      value = *inline_value;
    } else if (i + 1 < tokens.size()) {
      value = tokens[++i];
    } else {
      throw_usage("flag " + shown + " of '" + std::string(command_name) + "' needs a value (" + spec->value_name +
                  ")");
    }
    if (!spec->repeatable && result.has(spec->long_name)) {
      throw_usage("flag " + flag_name(*spec) + " of '" + std::string(command_name) + "' given more than once");
    }
    result.add_value(spec->long_name, std::move(value));
  }
  return result;
}

int64_t parse_int(std::string_view text, std::string_view what, int64_t min, int64_t max) {
  int64_t value = 0;
  const char* begin = text.data();
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(begin, end, value);
  if (text.empty() || ec == std::errc::invalid_argument || ptr != end) {
    throw_usage("bad value '" + std::string(text) + "' for " + std::string(what) + ": want an integer");
  }
  if (ec == std::errc::result_out_of_range || value < min || value > max) {
    throw_usage("bad value '" + std::string(text) + "' for " + std::string(what) + ": want " +
                std::to_string(min) + ".." + std::to_string(max));
  }
  return value;
}

std::pair<std::string, std::string> parse_key_value(std::string_view text, std::string_view what) {
  auto eq = text.find('=');
  if (eq == std::string_view::npos || eq == 0) {
    throw_usage("bad value '" + std::string(text) + "' for " + std::string(what) + ": want KEY=VALUE");
  }
  return {std::string(text.substr(0, eq)), std::string(text.substr(eq + 1))};
}

std::vector<std::string> split_list(std::string_view text, char separator) {
  std::vector<std::string> items;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(separator, start);
    if (end == std::string_view::npos) {
      end = text.size();
    }
    if (end > start) {
      items.emplace_back(text.substr(start, end - start));
    }
    start = end + 1;
  }
  return items;
}

}  // namespace sluice::cli
