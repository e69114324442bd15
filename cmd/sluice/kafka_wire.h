#pragma once
// The one Kafka request the CLI writes itself: IncrementalAlterConfigs
// (API key 44, version 0), which librdkafka 2.0.2 does not offer. Encoding
// and decoding are pure functions (unit-tested); incremental_alter_configs()
// sends the request to the first bootstrap broker that accepts a connection.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "settings.h"

namespace sluice::cli {

enum class config_operation : int8_t { set = 0, remove = 1, append = 2, subtract = 3 };
inline constexpr int8_t resource_type_topic = 2;
inline constexpr int16_t incremental_alter_configs_key = 44;

struct config_change {
  std::string name;
  config_operation operation = config_operation::set;
  std::optional<std::string> value;  // none for remove
};

struct alter_configs_result {
  int16_t error_code = 0;
  std::optional<std::string> error_message;
  int8_t resource_type = 0;
  std::string resource_name;
};

// The whole request frame (4-byte size included), header v1, body v0.
std::string encode_incremental_alter_configs(int32_t correlation_id, std::string_view client_id,
                                             std::string_view topic, std::span<const config_change> changes,
                                             bool validate_only);

// Decodes a response body (after the 4-byte size). A wrong correlation id or
// a truncated body is exit_code::failed.
std::vector<alter_configs_result> decode_incremental_alter_configs(std::string_view body,
                                                                    int32_t expected_correlation_id);

std::vector<alter_configs_result> incremental_alter_configs(const settings& s, std::string_view topic,
                                                            std::span<const config_change> changes,
                                                            bool validate_only);

}  // namespace sluice::cli
