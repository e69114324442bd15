// The kafka plugin's settings: defaults, listeners, and errors naming keys.
#include "kafka_config.h"

#include <gtest/gtest.h>

namespace sluice::kafka {
namespace {

kafka_config parse(const std::string& yaml) {
  auto cfg = sdk::config_map::parse(yaml, "sluice.yaml:7", "plugins[1].config");
  kafka_config c = parse_kafka_config(cfg);
  cfg.finish();
  return c;
}

std::string error_of(const std::string& yaml) {
  try {
    parse(yaml);
  } catch (const sdk::config_error& e) {
    return e.what();
  }
  return "";
}

TEST(kafka_config, defaults_listen_on_loopback_9092) {
  kafka_config c = parse("");
  ASSERT_EQ(c.listeners.size(), 1u);
  EXPECT_EQ(c.listeners[0].address.to_string(), "127.0.0.1:9092");
  EXPECT_TRUE(c.auto_create_topics_enable);
  EXPECT_EQ(c.num_partitions, 1);
}

TEST(kafka_config, listeners_with_advertised_addresses) {
  kafka_config c = parse(
      "listeners:\n  - name: INTERNAL\n    address: 0.0.0.0:9092\n    advertised_address: broker1.example.com:19092\n"
      "num_partitions: 6\nlog_retention_ms: -1\n");
  EXPECT_EQ(c.listeners[0].name, "INTERNAL");
  EXPECT_EQ(c.listeners[0].advertised_host, "broker1.example.com");
  EXPECT_EQ(c.listeners[0].advertised_port, 19092);
  EXPECT_EQ(c.num_partitions, 6);
  EXPECT_EQ(c.log_retention_ms, -1);
}

TEST(kafka_config, errors_name_the_key) {
  EXPECT_NE(error_of("listeners:\n  - address: nowhere\n").find("listeners[0].address"), std::string::npos);
  EXPECT_NE(error_of("num_partitions: 0\n").find("num_partitions: must be between 1"), std::string::npos);
  EXPECT_NE(error_of("log_retention_ms: -5\n").find("log_retention_ms"), std::string::npos);
  EXPECT_NE(error_of("auto_create_topics: true\n").find("unknown key"), std::string::npos);
}

}  // namespace
}  // namespace sluice::kafka
