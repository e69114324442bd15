#pragma once
// Output helpers shared by the commands.

#include <nlohmann/json.hpp>

#include <ostream>
#include <string>

namespace sluice::cli {

// JSON on one document: indented by 2, invalid UTF-8 replaced by U+FFFD.
void print_json(std::ostream& out, const nlohmann::json& j);
// Compact (one line), for streams of records.
std::string compact_json(const nlohmann::json& j);

}  // namespace sluice::cli
