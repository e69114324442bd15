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

// A cluster image of `brokers` brokers (ids 1..n) and one topic.
metadata_image cluster_of(int32_t brokers, std::vector<std::vector<int32_t>> replicas) {
  metadata_image img;
  img.next_revision = 2;
  for (int32_t id = 1; id <= brokers; ++id) img.brokers[id] = broker_info{id, "127.0.0.1", 9000 + id};
  topic_info t;
  t.name = "t";
  t.partitions = static_cast<int32_t>(replicas.size());
  t.replication_factor = static_cast<int16_t>(replicas.front().size());
  t.revision = 1;
  t.replicas = std::move(replicas);
  img.topics["t"] = t;
  return img;
}

TEST(replica_moves, a_move_keeps_the_leaving_replicas_until_the_leader_reports_it_done) {
  metadata_image img = cluster_of(4, {{1, 2, 3}, {1, 2, 3}});
  ASSERT_EQ(start_move(img, "t", 0, {4, 2, 3}), "");
  const topic_info& t = img.topics.at("t");
  EXPECT_EQ(t.replicas[0], (std::vector<int32_t>{4, 2, 3}));
  EXPECT_EQ(previous_of(t, 0), (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(hosts_of(t, 0, 1), (std::vector<int32_t>{4, 2, 3, 1}));
  EXPECT_TRUE(previous_of(t, 1).empty());
  // The target changes in flight: every possible member stays a host.
  ASSERT_EQ(start_move(img, "t", 0, {2, 3, 1}), "");
  EXPECT_EQ(hosts_of(t, 0, 1).size(), 4u);
  EXPECT_FALSE(finish_move(img, "t", 1, 0, {2, 3, 4}));  // not the assignment
  EXPECT_FALSE(finish_move(img, "t", 7, 0, {1, 2, 3}));  // another incarnation of the topic
  EXPECT_TRUE(finish_move(img, "t", 1, 0, {1, 2, 3}));
  EXPECT_TRUE(t.previous.empty());
  // JSON keeps a move in flight.
  ASSERT_EQ(start_move(img, "t", 1, {1, 2, 4}), "");
  metadata_image back;
  std::string error;
  ASSERT_TRUE(image_from_json(image_to_json(img), back, error)) << error;
  EXPECT_EQ(back.topics.at("t").previous, t.previous);
  EXPECT_NE(start_move(img, "t", 0, {1, 1, 2}), "");  // repeated broker
  EXPECT_NE(start_move(img, "t", 0, {1, 2, 9}), "");  // unknown broker
  EXPECT_NE(start_move(img, "t", 5, {1, 2, 3}), "");  // no such partition
}

TEST(replica_moves, decommission_moves_every_replica_to_the_least_loaded_brokers) {
  metadata_image img = cluster_of(5, {{1, 2, 3}, {2, 3, 1}, {3, 1, 2}, {1, 2, 3}});
  img.brokers[1].decommissioned = true;
  int32_t moves = 0;
  ASSERT_EQ(move_off_broker(img, 1, moves), "");
  EXPECT_EQ(moves, 4);
  std::map<int32_t, int> count;
  for (const auto& rs : img.topics.at("t").replicas) {
    EXPECT_EQ(std::count(rs.begin(), rs.end(), 1), 0);
    for (int32_t r : rs) ++count[r];
  }
  EXPECT_EQ(count[4], 2);  // the four replicas spread over brokers 4 and 5
  EXPECT_EQ(count[5], 2);
  // New topics skip a decommissioned broker.
  std::vector<std::vector<int32_t>> out;
  ASSERT_EQ(assign_replicas(img, img.brokers, 0, 8, 3, out), "");
  for (const auto& rs : out) EXPECT_EQ(std::count(rs.begin(), rs.end(), 1), 0);
  // Nowhere to go: three brokers, replication factor 3.
  metadata_image small = cluster_of(3, {{1, 2, 3}});
  EXPECT_NE(move_off_broker(small, 1, moves), "");
}

TEST(replica_moves, a_decommissioned_broker_retires_once_no_partition_lists_it) {
  metadata_image img = cluster_of(4, {{1, 2, 3}, {2, 3, 4}});
  img.brokers[1].decommissioned = true;
  EXPECT_EQ(retired_brokers(img), std::set<int32_t>{});  // still holds partition 0
  int32_t moves = 0;
  ASSERT_EQ(move_off_broker(img, 1, moves), "");
  EXPECT_EQ(retired_brokers(img), std::set<int32_t>{});  // a leaving replica of the move in flight
  const topic_info& t = img.topics.at("t");
  ASSERT_TRUE(finish_move(img, "t", t.revision, 0, replicas_of(t, 0, 0)));
  EXPECT_EQ(retired_brokers(img), std::set<int32_t>{1});
  // Images from the controller's log carry it (image_from_json derives it).
  metadata_image back;
  std::string error;
  ASSERT_TRUE(image_from_json(image_to_json(img), back, error)) << error;
  EXPECT_EQ(back.retired, std::set<int32_t>{1});
  img.brokers[1].decommissioned = false;  // recommissioned
  EXPECT_EQ(retired_brokers(img), std::set<int32_t>{});
}

TEST(replica_moves, rebalance_gives_a_new_broker_its_share) {
  metadata_image img = cluster_of(4, {{1, 2, 3}, {2, 3, 1}, {3, 1, 2}, {1, 2, 3}, {2, 3, 1}, {3, 1, 2}});
  int32_t moves = 0;
  rebalance_replicas(img, moves);
  std::map<int32_t, int> count;
  for (const auto& rs : img.topics.at("t").replicas) {
    EXPECT_EQ(std::set<int32_t>(rs.begin(), rs.end()).size(), 3u);  // still three distinct replicas
    for (int32_t r : rs) ++count[r];
  }
  EXPECT_EQ(moves, 4);  // 18 replicas over 4 brokers: 4 or 5 each
  for (int32_t id = 1; id <= 4; ++id) EXPECT_TRUE(count[id] == 4 || count[id] == 5) << id << ": " << count[id];
  rebalance_replicas(img, moves);
  EXPECT_EQ(moves, 0);  // balanced, and the moving partitions are left alone
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
