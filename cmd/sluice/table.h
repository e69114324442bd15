#pragma once
// Human-readable output: aligned columns and "KEY  value" sections.

#include <ostream>
#include <string>
#include <utility>
#include <vector>

namespace sluice::cli {

// Columns are left-aligned and separated by two spaces; the last column is not
// padded. Rows shorter than the header are padded with empty cells; a cell
// with a newline or tab has it shown as a space so rows stay one line each.
class table {
 public:
  explicit table(std::vector<std::string> headers);
  void add_row(std::vector<std::string> cells);
  size_t size() const { return _rows.size(); }
  std::string render() const;

 private:
  std::vector<std::string> _headers;
  std::vector<std::vector<std::string>> _rows;
};

// "KEY  value" lines with the keys padded to one width.
std::string render_fields(const std::vector<std::pair<std::string, std::string>>& fields);

// A comma-separated list of integers ("0,1,2"), for replica lists.
std::string join_ints(const std::vector<int32_t>& values);

}  // namespace sluice::cli
