// The metadata image's JSON form, topic names, UUIDs and shard placement.
#include "metadata_image.h"
#include "topic_configs.h"

#include <gtest/gtest.h>

#include <set>

namespace sluice::kafka {
namespace {

TEST(metadata_image, round_trips_through_json) {
  metadata_image img;
  img.version = 7;
  img.next_revision = 4;
  img.cluster_id = "abc";
  topic_info t;
  t.name = "orders";
  t.id = random_uuid();
  t.partitions = 3;
  t.revision = 3;
  t.configs = {{"retention.ms", "1000"}};
  img.topics.emplace(t.name, t);
  metadata_image back;
  std::string error;
  ASSERT_TRUE(image_from_json(image_to_json(img), back, error)) << error;
  EXPECT_EQ(back.version, 7);
  ASSERT_NE(back.find("orders"), nullptr);
  EXPECT_EQ(back.find("orders")->id, t.id);
  EXPECT_EQ(back.find(t.id)->configs.at("retention.ms"), "1000");
}

TEST(metadata_image, keeps_the_next_producer_id_and_reads_files_without_it) {
  metadata_image img;
  img.cluster_id = "abc";
  img.next_producer_id = 3000;
  metadata_image back;
  std::string error;
  ASSERT_TRUE(image_from_json(image_to_json(img), back, error)) << error;
  EXPECT_EQ(back.next_producer_id, 3000);
  // An image written before idempotent producers: no id handed out yet.
  ASSERT_TRUE(image_from_json(R"({"format":1,"version":1,"next_revision":1,"cluster_id":"x","topics":[]})", back,
                              error))
      << error;
  EXPECT_EQ(back.next_producer_id, 0);
}

TEST(metadata_image, rejects_damaged_files_with_a_reason) {
  metadata_image out;
  std::string error;
  EXPECT_FALSE(image_from_json("{", out, error));
  EXPECT_EQ(error, "not valid JSON");
  EXPECT_FALSE(image_from_json(R"({"format": 9})", out, error));
  EXPECT_NE(error.find("unknown format"), std::string::npos);
  EXPECT_FALSE(image_from_json(
      R"({"format":1,"version":1,"next_revision":2,"cluster_id":"x","topics":[{"name":"a/b","id":"00000000000000000000000000000001","partitions":1,"replication_factor":1,"revision":1,"configs":{}}]})",
      out, error));
  EXPECT_NE(error.find("a/b"), std::string::npos);
}

TEST(metadata_image, topic_names_follow_kafka_rules) {
  EXPECT_EQ(validate_topic_name("orders.v1_x-y"), "");
  EXPECT_NE(validate_topic_name(""), "");
  EXPECT_NE(validate_topic_name(".."), "");
  EXPECT_NE(validate_topic_name("a b"), "");
  EXPECT_NE(validate_topic_name(std::string(250, 'a')), "");
}

TEST(metadata_image, uuids_are_distinct_v4_and_encode_like_kafka) {
  std::set<topic_uuid> seen;
  for (int i = 0; i < 100; ++i) {
    topic_uuid u = random_uuid();
    EXPECT_EQ(u[6] >> 4, 4);
    EXPECT_TRUE(seen.insert(u).second);
  }
  topic_uuid zero{};
  EXPECT_EQ(uuid_to_base64(zero), "AAAAAAAAAAAAAAAAAAAAAA");  // 22 chars, no padding
}

TEST(metadata_image, consecutive_partitions_spread_over_shards) {
  std::set<uint32_t> shards;
  for (int32_t p = 0; p < 4; ++p) shards.insert(shard_of("t", p, 4));
  EXPECT_EQ(shards.size(), 4u);
  EXPECT_EQ(shard_of("t", 1, 4), shard_of("t", 1, 4));
}

TEST(topic_configs, validation_names_the_config) {
  EXPECT_EQ(validate_topic_config("retention.ms", std::string("-1")), "");
  EXPECT_EQ(validate_topic_config("cleanup.policy", std::string("compact,delete")), "");
  EXPECT_NE(validate_topic_config("retention.ms", std::string("soon")).find("retention.ms"), std::string::npos);
  EXPECT_NE(validate_topic_config("segment.bytes", std::string("100")).find("65536"), std::string::npos);
  EXPECT_NE(validate_topic_config("no.such.config", std::string("1")).find("Unknown"), std::string::npos);
  EXPECT_EQ(validate_topic_config("retention.ms", std::nullopt), "");  // delete an override
  kafka_config broker;
  const log_settings s = effective_log_settings(broker, {{"retention.bytes", "12345"}});
  EXPECT_EQ(s.retention_bytes, 12345);
  EXPECT_EQ(s.retention_ms, broker.log_retention_ms);
}

}  // namespace
}  // namespace sluice::kafka
