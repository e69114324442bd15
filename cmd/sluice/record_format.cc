#include "record_format.h"

#include "cli_error.h"
#include "output.h"

namespace sluice::cli {

nlohmann::json record_to_json(const record_view& r) {
  auto text = [](const std::optional<std::string_view>& s) -> nlohmann::json {
    return s ? nlohmann::json(std::string(*s)) : nlohmann::json(nullptr);
  };
  nlohmann::json headers = nlohmann::json::array();
  for (const auto& [key, value] : r.headers) {
    headers.push_back({{"key", std::string(key)}, {"value", text(value)}});
  }
  return {{"topic", std::string(r.topic)},
          {"partition", r.partition},
          {"offset", r.offset},
          {"timestamp", r.timestamp_ms},
          {"key", text(r.key)},
          {"value", text(r.value)},
          {"headers", headers}};
}

record_template::record_template(std::string_view text) {
  std::string literal;
  auto flush = [&] {
    if (!literal.empty()) {
      _pieces.push_back({0, std::move(literal)});
      literal.clear();
    }
  };
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if ((c == '%' || c == '\\') && i + 1 >= text.size()) {
      throw_usage("bad --format '" + std::string(text) + "': it ends with a lone '" + c + "'");
    }
    if (c == '%') {
      char d = text[++i];
      if (d == '%') {
        literal += '%';
        continue;
      }
      if (std::string_view("tpoTkvKVh").find(d) == std::string_view::npos) {
        throw_usage("bad --format '" + std::string(text) + "': unknown directive %" + d +
                    " (known: %t %p %o %T %k %v %K %V %h %%)");
      }
      flush();
      _pieces.push_back({d, {}});
    } else if (c == '\\') {
      char e = text[++i];
      switch (e) {
        case 'n': literal += '\n'; break;
        case 't': literal += '\t'; break;
        case 'r': literal += '\r'; break;
        case '0': literal += '\0'; break;
        case '\\': literal += '\\'; break;
        default:
          throw_usage("bad --format '" + std::string(text) + "': unknown escape \\" + e + " (known: \\n \\t \\r \\0 \\\\)");
      }
    } else {
      literal += c;
    }
  }
  flush();
  _ends_with_newline = !_pieces.empty() && _pieces.back().directive == 0 && _pieces.back().text.ends_with('\n');
}

std::string record_template::render(const record_view& r) const {
  std::string out;
  for (const piece& p : _pieces) {
    switch (p.directive) {
      case 0: out += p.text; break;
      case 't': out += r.topic; break;
      case 'p': out += std::to_string(r.partition); break;
      case 'o': out += std::to_string(r.offset); break;
      case 'T': out += std::to_string(r.timestamp_ms); break;
      case 'k': out += r.key.value_or(""); break;
      case 'v': out += r.value.value_or(""); break;
      case 'K': out += r.key ? std::to_string(r.key->size()) : "-1"; break;
      case 'V': out += r.value ? std::to_string(r.value->size()) : "-1"; break;
      case 'h':
        for (size_t i = 0; i < r.headers.size(); ++i) {
          out += (i ? "," : "") + std::string(r.headers[i].first) + "=" +
                 std::string(r.headers[i].second.value_or(""));
        }
        break;
    }
  }
  return out;
}

record_formatter::record_formatter(std::string_view format) {
  if (format == "raw") {
    _kind = kind::raw;
  } else if (format == "json") {
    _kind = kind::json;
  } else if (format.find('%') != std::string_view::npos) {
    _kind = kind::templated;
    _template.emplace(format);
  } else {
    throw_usage("bad --format '" + std::string(format) + "': want raw, json or a template with %-directives such as '%k %v'");
  }
}

std::string record_formatter::render(const record_view& r) const {
  switch (_kind) {
    case kind::raw:
      return std::string(r.value.value_or("")) + "\n";
    case kind::json:
      return compact_json(record_to_json(r)) + "\n";
    case kind::templated: {
      std::string out = _template->render(r);
      if (!_template->ends_with_newline()) {
        out += '\n';
      }
      return out;
    }
  }
  return {};
}

}  // namespace sluice::cli
