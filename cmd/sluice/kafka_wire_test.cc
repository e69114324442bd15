#include "kafka_wire.h"

#include <gtest/gtest.h>

#include "cli_error.h"

namespace sluice::cli {
namespace {

std::string bytes(std::initializer_list<int> values) {
  std::string out;
  for (int v : values) {
    out.push_back(static_cast<char>(v));
  }
  return out;
}

TEST(kafka_wire, encodes_incremental_alter_configs_v0) {
  std::vector<config_change> changes = {{"retention.ms", config_operation::set, "1000"},
                                        {"cleanup.policy", config_operation::remove, std::nullopt}};
  std::string frame = encode_incremental_alter_configs(7, "cli", "t1", changes, true);
  std::string expected =
      bytes({0, 44, 0, 0, 0, 0, 0, 7, 0, 3}) + "cli" +  // header v1: key 44, version 0, correlation 7, client id
      bytes({0, 0, 0, 1, 2, 0, 2}) + "t1" +            // one resource: TOPIC "t1"
      bytes({0, 0, 0, 2, 0, 12}) + "retention.ms" + bytes({0, 0, 4}) + "1000" +  // SET
      bytes({0, 14}) + "cleanup.policy" + bytes({1, 0xff, 0xff}) +              // DELETE, null value
      bytes({1});                                                                // validate_only
  ASSERT_EQ(frame.size(), expected.size() + 4);
  EXPECT_EQ(frame.substr(0, 4), bytes({0, 0, 0, static_cast<int>(expected.size())}));
  EXPECT_EQ(frame.substr(4), expected);
}

TEST(kafka_wire, decodes_the_response) {
  std::string body = bytes({0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 2}) +  // correlation 7, throttle 0, two results
                     bytes({0, 40, 0, 3}) + "bad" + bytes({2, 0, 1}) + "a" +  // INVALID_CONFIG "bad" TOPIC a
                     bytes({0, 0, 0xff, 0xff, 2, 0, 1}) + "b";               // NONE, null message, TOPIC b
  auto results = decode_incremental_alter_configs(body, 7);
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].error_code, 40);
  EXPECT_EQ(results[0].error_message, "bad");
  EXPECT_EQ(results[0].resource_type, 2);
  EXPECT_EQ(results[0].resource_name, "a");
  EXPECT_EQ(results[1].error_code, 0);
  EXPECT_FALSE(results[1].error_message.has_value());
  EXPECT_EQ(results[1].resource_name, "b");
}

TEST(kafka_wire, truncated_or_mismatched_responses_fail) {
  auto code = [](const std::string& body, int32_t id) {
    try {
      decode_incremental_alter_configs(body, id);
    } catch (const cli_error& e) {
      return e.code();
    }
    return exit_code::ok;
  };
  std::string ok = bytes({0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0});
  EXPECT_EQ(code(ok, 7), exit_code::ok);
  EXPECT_EQ(code(ok, 8), exit_code::failed);
  EXPECT_EQ(code(ok.substr(0, 10), 7), exit_code::failed);
  EXPECT_EQ(code(bytes({0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0}), 7), exit_code::failed);
}

}  // namespace
}  // namespace sluice::cli
