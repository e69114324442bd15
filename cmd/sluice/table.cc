#include "table.h"

#include <algorithm>

namespace sluice::cli {

namespace {

std::string one_line(std::string cell) {
  std::replace_if(cell.begin(), cell.end(), [](char c) { return c == '\n' || c == '\r' || c == '\t'; }, ' ');
  return cell;
}

void append_row(std::string& out, const std::vector<std::string>& cells, const std::vector<size_t>& widths) {
  for (size_t i = 0; i < widths.size(); ++i) {
    const std::string& cell = i < cells.size() ? cells[i] : std::string();
    out += cell;
    if (i + 1 < widths.size()) {
      out.append(widths[i] - cell.size() + 2, ' ');
    }
  }
  while (!out.empty() && out.back() == ' ') {
    out.pop_back();
  }
  out += '\n';
}

}  // namespace

table::table(std::vector<std::string> headers) : _headers(std::move(headers)) {}

void table::add_row(std::vector<std::string> cells) {
  for (auto& cell : cells) {
    cell = one_line(std::move(cell));
  }
  cells.resize(std::max(cells.size(), _headers.size()));
  _rows.push_back(std::move(cells));
}

std::string table::render() const {
  std::vector<size_t> widths(_headers.size());
  for (size_t i = 0; i < _headers.size(); ++i) {
    widths[i] = _headers[i].size();
  }
  for (const auto& row : _rows) {
    widths.resize(std::max(widths.size(), row.size()), 0);
    for (size_t i = 0; i < row.size(); ++i) {
      widths[i] = std::max(widths[i], row[i].size());
    }
  }
  std::string out;
  append_row(out, _headers, widths);
  for (const auto& row : _rows) {
    append_row(out, row, widths);
  }
  return out;
}

std::string render_fields(const std::vector<std::pair<std::string, std::string>>& fields) {
  size_t width = 0;
  for (const auto& [key, value] : fields) {
    width = std::max(width, key.size());
  }
  std::string out;
  for (const auto& [key, value] : fields) {
    out += key;
    out.append(width - key.size() + 2, ' ');
    out += one_line(value);
    out += '\n';
  }
  return out;
}

std::string join_ints(const std::vector<int32_t>& values) {
  std::string out;
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) {
      out += ',';
    }
    out += std::to_string(values[i]);
  }
  return out;
}

}  // namespace sluice::cli
