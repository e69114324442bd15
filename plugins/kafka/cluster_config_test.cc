#include "cluster_config.h"

#include <nlohmann/json.hpp>

#include <gtest/gtest.h>

namespace sluice::kafka {
namespace {

TEST(cluster_config, schema_lists_every_setting_with_type_default_and_restart_flag) {
  const auto schema = nlohmann::json::parse(cluster_config_schema_json());
  ASSERT_EQ(schema.size(), cluster_settings().size());
  EXPECT_EQ(schema["log_retention_ms"]["type"], "integer");
  EXPECT_EQ(schema["log_retention_ms"]["default"], 7LL * 24 * 3600 * 1000);
  EXPECT_EQ(schema["log_retention_ms"]["needs_restart"], false);
  EXPECT_EQ(schema["auto_create_topics_enable"]["type"], "boolean");
  EXPECT_EQ(schema["max_request_bytes"]["needs_restart"], true);
  EXPECT_EQ(schema["log_message_timestamp_type"]["enum"].size(), 2u);
}

TEST(cluster_config, put_accepts_typed_and_string_values) {
  const kafka_config base;
  auto c = validate_cluster_config_put(
      R"({"upsert": {"log_retention_ms": 1000, "auto_create_topics_enable": "false", "num_partitions": "3"}})", base,
      {});
  ASSERT_TRUE(c.ok()) << c.error;
  EXPECT_EQ(c.upsert.at("log_retention_ms"), "1000");
  EXPECT_EQ(c.upsert.at("auto_create_topics_enable"), "false");
  const kafka_config eff = apply_cluster_config(base, c.upsert);
  EXPECT_EQ(eff.log_retention_ms, 1000);
  EXPECT_FALSE(eff.auto_create_topics_enable);
  EXPECT_EQ(eff.num_partitions, 3);
}

TEST(cluster_config, put_errors_name_every_bad_key) {
  const kafka_config base;
  auto c = validate_cluster_config_put(
      R"({"upsert": {"nope": 1, "num_partitions": 0, "log_cleanup_policy": "shred", "auto_create_topics_enable": 2},
          "remove": ["also_nope"]})",
      base, {});
  EXPECT_FALSE(c.ok());
  EXPECT_TRUE(c.error.empty());
  EXPECT_EQ(c.errors.size(), 5u);
  EXPECT_NE(c.errors.at("num_partitions").find("between 1 and"), std::string::npos);
  EXPECT_NE(c.errors.at("log_cleanup_policy").find("shred"), std::string::npos);
  EXPECT_TRUE(c.errors.count("nope"));
  EXPECT_TRUE(c.errors.count("also_nope"));
}

TEST(cluster_config, malformed_bodies_are_refused) {
  const kafka_config base;
  for (const char* body : {"", "[]", "{", R"({"upsert": []})", R"({"remove": {}})", R"({"remove": [1]})",
                           R"({"other": {}})"})
    EXPECT_FALSE(validate_cluster_config_put(body, base, {}).error.empty()) << body;
}

TEST(cluster_config, cross_setting_rule_sees_the_result) {
  const kafka_config base;
  auto c = validate_cluster_config_put(R"({"upsert": {"group_min_session_timeout_ms": 2000000}})", base, {});
  EXPECT_FALSE(c.ok());
  EXPECT_TRUE(c.errors.count("group_min_session_timeout_ms"));
  c = validate_cluster_config_put(R"({"upsert": {"group_min_session_timeout_ms": 2000000,
                                                  "group_max_session_timeout_ms": 3000000}})",
                                  base, {});
  EXPECT_TRUE(c.ok());
}

TEST(cluster_config, live_and_restart_settings_apply_separately) {
  kafka_config base;
  const std::map<std::string, std::string> o = {{"max_request_bytes", "4096"}, {"num_partitions", "7"}};
  const kafka_config at_start = apply_cluster_config(base, o, which_settings::restart_only);
  EXPECT_EQ(at_start.max_request_bytes, 4096u);
  EXPECT_EQ(at_start.num_partitions, base.num_partitions);
  const kafka_config live = apply_live_cluster_config(at_start, o);
  EXPECT_EQ(live.num_partitions, 7);
  // Removing the live override reverts to the base value.
  EXPECT_EQ(apply_live_cluster_config(at_start, {}).num_partitions, base.num_partitions);
}

}  // namespace
}  // namespace sluice::kafka
