// The idempotent producer over raw sockets: InitProducerId, a retried
// batch answered with its original offset and stored once, out-of-order
// sequences and fenced epochs refused, DescribeProducers, and a restart of
// brokerd that keeps deduplicating (producer state rebuilt from the log)
// and never hands out a producer id twice.
#include "kafka_test_util.h"

#include "crc32c.h"
#include "record_batch.h"

#include <sluice/kafka/msg/create_topics.h>
#include <sluice/kafka/msg/describe_producers.h>
#include <sluice/kafka/msg/headers.h>
#include <sluice/kafka/msg/init_producer_id.h>
#include <sluice/kafka/msg/list_offsets.h>
#include <sluice/kafka/msg/produce.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace sluice::kafka {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

using testing::client;
using testing::kafka_broker;

// An uncompressed batch of `count` records from producer (pid, epoch) with
// sequences first_seq.., CRC fixed after the producer fields are set.
std::string idempotent_batch(int64_t pid, int16_t epoch, int32_t first_seq, int32_t count) {
  std::string b = storage::make_test_batch(count, 16, 1'700'000'000'000);
  auto* p = reinterpret_cast<uint8_t*>(b.data());
  storage::write_be64(p + 43, pid);
  storage::write_be16(p + 51, epoch);
  storage::write_be32(p + 53, first_seq);
  const uint32_t crc = storage::crc32c(0, p + storage::batch_crc_start, b.size() - storage::batch_crc_start);
  storage::write_be32(p + 17, static_cast<int32_t>(crc));
  return b;
}

struct produce_result {
  int16_t error = -100;  // -100: no answer
  int64_t base_offset = -1;
};

kafka_broker* g_broker = nullptr;

class kafka_idempotence : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { g_broker = new kafka_broker("kafka_idempotence_test"); }
  static void TearDownTestSuite() {
    delete g_broker;
    g_broker = nullptr;
  }
  void SetUp() override { ASSERT_TRUE(g_broker->ready) << g_broker->log(); }
  uint16_t port() const { return g_broker->port; }

  void create_topic(const std::string& name) {
    client c(port());
    msg::create_topics_request req;
    auto& t = req.topics.emplace_back();
    t.name = name;
    t.num_partitions = 1;
    t.replication_factor = 1;
    req.timeout_ms = 10000;
    ASSERT_TRUE(c.send(req, 7, 1));
    msg::create_topics_response resp;
    ASSERT_TRUE(c.receive(resp, 19, 7, 1));
    ASSERT_EQ(resp.topics.size(), 1u);
    ASSERT_EQ(resp.topics[0].error_code, 0) << resp.topics[0].error_message.value_or("");
  }

  msg::init_producer_id_response init_producer_id(std::optional<std::string> transactional_id = std::nullopt,
                                                   int16_t version = 4) {
    client c(port());
    msg::init_producer_id_request req;
    req.transactional_id = std::move(transactional_id);
    req.transaction_timeout_ms = 60000;
    msg::init_producer_id_response resp;
    EXPECT_TRUE(c.send(req, version, 3));
    EXPECT_TRUE(c.receive(resp, 22, version, 3));
    return resp;
  }

  produce_result produce(const std::string& topic, const std::string& records) {
    client c(port());
    msg::produce_request req;
    req.acks = -1;
    req.timeout_ms = 10000;
    auto& t = req.topic_data.emplace_back();
    t.name = topic;
    auto& p = t.partition_data.emplace_back();
    p.index = 0;
    p.records = records_view::of(reinterpret_cast<const uint8_t*>(records.data()), records.size());
    produce_result out;
    if (!c.send(req, 9, 5)) return out;
    msg::produce_response resp;
    if (!c.receive(resp, 0, 9, 5)) return out;
    out.error = resp.responses.at(0).partition_responses.at(0).error_code;
    out.base_offset = resp.responses.at(0).partition_responses.at(0).base_offset;
    return out;
  }

  int64_t log_end(const std::string& topic) {
    client c(port());
    msg::list_offsets_request req;
    req.replica_id = -1;
    auto& t = req.topics.emplace_back();
    t.name = topic;
    t.partitions.emplace_back().timestamp = -1;
    EXPECT_TRUE(c.send(req, 7, 9));
    msg::list_offsets_response resp;
    if (!c.receive(resp, 2, 7, 9)) return -1;
    return resp.topics.at(0).partitions.at(0).offset;
  }

  std::vector<msg::describe_producers_response::producer_state> describe_producers(const std::string& topic) {
    client c(port());
    msg::describe_producers_request req;
    auto& t = req.topics.emplace_back();
    t.name = topic;
    t.partition_indexes = {0};
    EXPECT_TRUE(c.send(req, 0, 11));
    msg::describe_producers_response resp;
    if (!c.receive(resp, 61, 0, 11)) return {};
    EXPECT_EQ(resp.topics.at(0).partitions.at(0).error_code, 0);
    return resp.topics.at(0).partitions.at(0).active_producers;
  }
};

TEST_F(kafka_idempotence, init_producer_id_hands_out_distinct_ids_and_refuses_transactions) {
  const auto a = init_producer_id();
  const auto b = init_producer_id(std::nullopt, 2);
  EXPECT_EQ(a.error_code, 0);
  EXPECT_EQ(b.error_code, 0);
  EXPECT_GE(a.producer_id, 0);
  EXPECT_GE(b.producer_id, 0);
  EXPECT_NE(a.producer_id, b.producer_id);
  EXPECT_EQ(a.producer_epoch, 0);
  const auto txn = init_producer_id("my-transactions");
  EXPECT_EQ(txn.error_code, 53);  // TRANSACTIONAL_ID_AUTHORIZATION_FAILED: no transactions
  EXPECT_EQ(txn.producer_id, -1);
}

TEST_F(kafka_idempotence, a_retried_batch_gets_its_original_offset_and_is_stored_once) {
  create_topic("idem-dup");
  const int64_t pid = init_producer_id().producer_id;
  const std::string first = idempotent_batch(pid, 0, 0, 3);
  auto r = produce("idem-dup", first);
  ASSERT_EQ(r.error, 0);
  EXPECT_EQ(r.base_offset, 0);
  r = produce("idem-dup", idempotent_batch(pid, 0, 3, 2));
  ASSERT_EQ(r.error, 0);
  EXPECT_EQ(r.base_offset, 3);
  // Both retried: success with the offsets they got the first time.
  r = produce("idem-dup", first);
  EXPECT_EQ(r.error, 0);
  EXPECT_EQ(r.base_offset, 0);
  r = produce("idem-dup", idempotent_batch(pid, 0, 3, 2));
  EXPECT_EQ(r.error, 0);
  EXPECT_EQ(r.base_offset, 3);
  EXPECT_EQ(log_end("idem-dup"), 5);

  const auto producers = describe_producers("idem-dup");
  ASSERT_EQ(producers.size(), 1u);
  EXPECT_EQ(producers[0].producer_id, pid);
  EXPECT_EQ(producers[0].producer_epoch, 0);
  EXPECT_EQ(producers[0].last_sequence, 4);
  EXPECT_GT(producers[0].last_timestamp, 0);
  EXPECT_EQ(producers[0].coordinator_epoch, -1);
  EXPECT_EQ(producers[0].current_txn_start_offset, -1);
}

TEST_F(kafka_idempotence, gaps_and_old_epochs_are_refused) {
  create_topic("idem-order");
  const int64_t pid = init_producer_id().producer_id;
  ASSERT_EQ(produce("idem-order", idempotent_batch(pid, 0, 0, 1)).error, 0);
  EXPECT_EQ(produce("idem-order", idempotent_batch(pid, 0, 5, 1)).error, 45);  // OUT_OF_ORDER_SEQUENCE_NUMBER
  // A new epoch starts its sequence at 0.
  EXPECT_EQ(produce("idem-order", idempotent_batch(pid, 1, 1, 1)).error, 45);
  ASSERT_EQ(produce("idem-order", idempotent_batch(pid, 1, 0, 1)).error, 0);
  EXPECT_EQ(produce("idem-order", idempotent_batch(pid, 0, 1, 1)).error, 47);  // INVALID_PRODUCER_EPOCH
  EXPECT_EQ(log_end("idem-order"), 2);
}

TEST_F(kafka_idempotence, a_restart_keeps_deduplicating_and_never_reuses_a_producer_id) {
  create_topic("idem-restart");
  std::vector<int64_t> before;
  for (int i = 0; i < 4; ++i) before.push_back(init_producer_id().producer_id);
  const int64_t pid = before[0];
  ASSERT_EQ(produce("idem-restart", idempotent_batch(pid, 0, 0, 4)).error, 0);
  ASSERT_EQ(produce("idem-restart", idempotent_batch(pid, 0, 4, 4)).error, 0);
  ASSERT_EQ(produce("idem-restart", storage::make_test_batch(2, 8, 1'700'000'000'000)).error, 0);

  g_broker->stop();
  g_broker->start();
  ASSERT_TRUE(g_broker->ready) << g_broker->log();

  // The retry arrives after the restart: still a duplicate.
  auto r = produce("idem-restart", idempotent_batch(pid, 0, 4, 4));
  EXPECT_EQ(r.error, 0);
  EXPECT_EQ(r.base_offset, 4);
  EXPECT_EQ(log_end("idem-restart"), 10);
  EXPECT_EQ(produce("idem-restart", idempotent_batch(pid, 0, 9, 1)).error, 45);
  r = produce("idem-restart", idempotent_batch(pid, 0, 8, 1));
  EXPECT_EQ(r.error, 0);
  EXPECT_EQ(r.base_offset, 10);
  const auto producers = describe_producers("idem-restart");
  ASSERT_EQ(producers.size(), 1u);
  EXPECT_EQ(producers[0].last_sequence, 8);

  for (int i = 0; i < 4; ++i) {
    const int64_t id = init_producer_id().producer_id;
    ASSERT_GE(id, 0);
    for (int64_t old : before) EXPECT_NE(id, old);
  }
}

}  // namespace
}  // namespace sluice::kafka
