// The kafka plugin over raw sockets, with requests encoded by the generated
// codecs: ApiVersions negotiation (and its fallback), pipelining, acks=0,
// and bad input (oversized, truncated and malformed frames, unknown APIs and
// versions, batches whose CRC or length lies) that must close one connection
// or get the right error code while everyone else is served.
#include "kafka_test_util.h"

#include "record_batch.h"

#include <sluice/kafka/msg/api_versions.h>
#include <sluice/kafka/msg/headers.h>
#include <sluice/kafka/msg/metadata.h>
#include <sluice/kafka/msg/produce.h>
#include <sluice/kafka/msg/create_topics.h>
#include <sluice/kafka/msg/delete_topics.h>
#include <sluice/kafka/msg/describe_configs.h>
#include <sluice/kafka/msg/incremental_alter_configs.h>
#include <sluice/kafka/msg/delete_groups.h>
#include <sluice/kafka/msg/fetch.h>
#include <sluice/kafka/msg/heartbeat.h>
#include <sluice/kafka/msg/join_group.h>
#include <sluice/kafka/msg/offset_commit.h>
#include <sluice/kafka/msg/offset_fetch.h>
#include <sluice/kafka/msg/sync_group.h>
#include <sluice/kafka/msg/list_offsets.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <gtest/gtest.h>

#include <cctype>
#include <filesystem>
#include <map>
#include <tuple>
#include <fstream>
#include <thread>

namespace sluice::kafka {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

using testing::client;
using testing::kafka_broker;

// Every test shares one broker: starting brokerd under ASan takes a while.
kafka_broker* g_broker = nullptr;

class kafka_protocol : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    g_broker = new kafka_broker("kafka_protocol_test",
                                "      socket_request_max_bytes: 65536\n"
                                "      connections_max_idle_ms: 3000\n"
                                "      group_initial_rebalance_delay_ms: 0\n"
                                "      offsets_topic_num_partitions: 4\n");
  }
  static void TearDownTestSuite() {
    delete g_broker;
    g_broker = nullptr;
  }
  void SetUp() override { ASSERT_TRUE(g_broker->ready) << g_broker->log(); }
  uint16_t port() const { return g_broker->port; }

  // The broker still answers a fresh client.
  void expect_serving() {
    client c(port());
    ASSERT_TRUE(c.connected);
    msg::api_versions_request req;
    ASSERT_TRUE(c.send(req, 2, 7));
    msg::api_versions_response resp;
    ASSERT_TRUE(c.receive(resp, 18, 2, 7));
    EXPECT_EQ(resp.error_code, 0);
  }

  void create_topic(const std::string& name, int32_t partitions) {
    client c(port());
    msg::create_topics_request req;
    auto& t = req.topics.emplace_back();
    t.name = name;
    t.num_partitions = partitions;
    t.replication_factor = 1;
    req.timeout_ms = 10000;
    ASSERT_TRUE(c.send(req, 7, 1));
    msg::create_topics_response resp;
    ASSERT_TRUE(c.receive(resp, 19, 7, 1));
    ASSERT_EQ(resp.topics.size(), 1u);
    ASSERT_EQ(resp.topics[0].error_code, 0) << resp.topics[0].error_message.value_or("");
  }

  int16_t produce_error(const std::string& topic, const std::string& records, int16_t acks = 1) {
    client c(port());
    msg::produce_request req;
    req.acks = acks;
    req.timeout_ms = 10000;
    auto& t = req.topic_data.emplace_back();
    t.name = topic;
    auto& p = t.partition_data.emplace_back();
    p.index = 0;
    p.records = records_view::of(reinterpret_cast<const uint8_t*>(records.data()), records.size());
    // A frame the broker refuses may be cut off while it is still being sent.
    if (!c.send(req, 9, 5)) return -100;
    msg::produce_response resp;
    if (!c.receive(resp, 0, 9, 5)) return -100;
    return resp.responses.at(0).partition_responses.at(0).error_code;
  }
};

TEST_F(kafka_protocol, api_versions_lists_what_is_served_and_records_the_client) {
  client c(port());
  msg::api_versions_request req;
  req.client_software_name = "sluice-test";
  req.client_software_version = "1.0";
  ASSERT_TRUE(c.send(req, 3, 42));
  msg::api_versions_response resp;
  ASSERT_TRUE(c.receive(resp, 18, 3, 42));
  EXPECT_EQ(resp.error_code, 0);
  bool produce = false, fetch = false, join_group = false;
  for (const auto& k : resp.api_keys) {
    EXPECT_LE(k.min_version, k.max_version);
    produce |= k.api_key == 0;
    fetch |= k.api_key == 1;
    join_group |= k.api_key == 11;
  }
  EXPECT_TRUE(produce && fetch && join_group);

  // KIP-511: an invalid software name is INVALID_REQUEST.
  req.client_software_name = "-bad name-";
  ASSERT_TRUE(c.send(req, 3, 43));
  ASSERT_TRUE(c.receive(resp, 18, 3, 43));
  EXPECT_EQ(resp.error_code, 42);
}

// docs/KAFKA.md's table of APIs and versions is what ApiVersions says.
TEST_F(kafka_protocol, the_documented_api_table_is_what_api_versions_advertises) {
  std::ifstream doc(std::string(SLUICE_SOURCE_DIR) + "/docs/KAFKA.md");
  ASSERT_TRUE(doc) << "docs/KAFKA.md";
  std::map<int16_t, std::pair<int16_t, int16_t>> documented;
  std::string line;
  bool in_table = false;
  while (std::getline(doc, line)) {
    if (line.find("<!-- api-table") != std::string::npos) in_table = true;
    else if (in_table && line.rfind("| ", 0) == 0) {
      // | Name | key | min | max | notes |
      std::vector<std::string> cells;
      size_t at = 1;
      while (at < line.size()) {
        const size_t bar = line.find('|', at);
        if (bar == std::string::npos) break;
        std::string c = line.substr(at, bar - at);
        while (!c.empty() && c.front() == ' ') c.erase(0, 1);
        while (!c.empty() && c.back() == ' ') c.pop_back();
        cells.push_back(c);
        at = bar + 1;
      }
      if (cells.size() >= 4 && !cells[1].empty() && std::isdigit(static_cast<unsigned char>(cells[1][0])))
        documented[static_cast<int16_t>(std::stoi(cells[1]))] = {static_cast<int16_t>(std::stoi(cells[2])),
                                                                 static_cast<int16_t>(std::stoi(cells[3]))};
    } else if (in_table && !documented.empty() && line.empty()) {
      break;
    }
  }
  ASSERT_FALSE(documented.empty());
  client c(port());
  msg::api_versions_request req;
  ASSERT_TRUE(c.send(req, 3, 1));
  msg::api_versions_response resp;
  ASSERT_TRUE(c.receive(resp, 18, 3, 1));
  std::map<int16_t, std::pair<int16_t, int16_t>> advertised;
  for (const auto& k : resp.api_keys) advertised[k.api_key] = {k.min_version, k.max_version};
  EXPECT_EQ(documented, advertised);
}

TEST_F(kafka_protocol, a_too_new_api_versions_gets_v0_with_unsupported_version) {
  client c(port());
  msg::api_versions_request req;
  std::vector<uint8_t> f = c.frame(req, 3, 9);
  f[6] = 0;
  f[7] = 99;  // api_version 99
  ASSERT_TRUE(c.send_raw(f));
  msg::api_versions_response resp;
  ASSERT_TRUE(c.receive(resp, 18, 0, 9));
  EXPECT_EQ(resp.error_code, 35);
  EXPECT_FALSE(resp.api_keys.empty());
}

TEST_F(kafka_protocol, pipelined_requests_are_answered_in_order) {
  client c(port());
  msg::metadata_request md;
  md.topics.emplace();  // no topics
  msg::api_versions_request av;
  for (int i = 0; i < 20; ++i) {
    if (i % 2) ASSERT_TRUE(c.send(md, 9, 100 + i));
    else ASSERT_TRUE(c.send(av, 3, 100 + i));
  }
  for (int i = 0; i < 20; ++i) {
    if (i % 2) {
      msg::metadata_response r;
      ASSERT_TRUE(c.receive(r, 3, 9, 100 + i));
      ASSERT_EQ(r.brokers.size(), 1u);
      EXPECT_EQ(r.brokers[0].port, port());
      EXPECT_EQ(r.brokers[0].host, "127.0.0.1");
    } else {
      msg::api_versions_response r;
      ASSERT_TRUE(c.receive(r, 18, 3, 100 + i));
    }
  }
}

TEST_F(kafka_protocol, acks_zero_gets_no_response_and_the_next_request_is_answered) {
  create_topic("acks0", 1);
  client c(port());
  const std::string batch = storage::make_test_batch(3, 10, 1000);
  msg::produce_request req;
  req.acks = 0;
  auto& t = req.topic_data.emplace_back();
  t.name = "acks0";
  auto& p = t.partition_data.emplace_back();
  p.records = records_view::of(reinterpret_cast<const uint8_t*>(batch.data()), batch.size());
  ASSERT_TRUE(c.send(req, 9, 1));
  msg::api_versions_request av;
  ASSERT_TRUE(c.send(av, 3, 2));
  msg::api_versions_response r;
  ASSERT_TRUE(c.receive(r, 18, 3, 2));  // the first frame back answers request 2
}

// acks=all requests pipelined on one connection overlap their flushes (the
// broker starts the next request while one waits for fdatasync) but the
// responses come back in request order, with offsets in that order; a
// metadata request between them waits its turn too.
TEST_F(kafka_protocol, pipelined_acks_all_produce_answers_in_order) {
  create_topic("pipelined", 2);
  client c(port());
  const std::string batch = storage::make_test_batch(5, 100, 1000);
  constexpr int32_t n = 40;
  for (int32_t i = 0; i < n; ++i) {
    if (i == n / 2) {
      msg::metadata_request m;
      ASSERT_TRUE(c.send(m, 9, 1000));
    }
    msg::produce_request req;
    req.acks = -1;
    req.timeout_ms = 10000;
    auto& t = req.topic_data.emplace_back();
    t.name = "pipelined";
    for (int32_t p = 0; p < 2; ++p) {
      auto& pd = t.partition_data.emplace_back();
      pd.index = p;
      pd.records = records_view::of(reinterpret_cast<const uint8_t*>(batch.data()), batch.size());
    }
    ASSERT_TRUE(c.send(req, 9, i));
  }
  int64_t last[2] = {-1, -1};
  for (int32_t i = 0; i < n; ++i) {
    if (i == n / 2) {
      msg::metadata_response m;
      ASSERT_TRUE(c.receive(m, 3, 9, 1000)) << "the metadata answer comes between produce " << i - 1 << " and " << i;
    }
    msg::produce_response resp;
    ASSERT_TRUE(c.receive(resp, 0, 9, i)) << "response " << i << " out of order";
    for (const auto& pr : resp.responses.at(0).partition_responses) {
      ASSERT_EQ(pr.error_code, 0);
      EXPECT_EQ(pr.base_offset, last[pr.index] + 1) << "partition " << pr.index << ", request " << i;
      last[pr.index] = pr.base_offset + 4;
    }
  }
}

TEST_F(kafka_protocol, produce_errors_name_what_is_wrong_with_the_batch) {
  create_topic("bad-batches", 1);
  const std::string good = storage::make_test_batch(4, 10, 1000);
  EXPECT_EQ(produce_error("bad-batches", good), 0);
  std::string crc = good;
  crc.back() ^= 0x40;
  EXPECT_EQ(produce_error("bad-batches", crc), 2);  // CORRUPT_MESSAGE
  std::string length = good;
  length[11] = static_cast<char>(length[11] + 7);  // batchLength says 7 bytes more than there are
  EXPECT_EQ(produce_error("bad-batches", length), 2);
  std::string magic = good;
  magic[16] = 1;
  EXPECT_EQ(produce_error("bad-batches", magic), 43);  // UNSUPPORTED_FOR_MESSAGE_FORMAT
  EXPECT_EQ(produce_error("no-such-topic", good), 3);  // UNKNOWN_TOPIC_OR_PARTITION
  EXPECT_EQ(produce_error("bad-batches", good, 5), 21);  // INVALID_REQUIRED_ACKS
  EXPECT_EQ(produce_error("bad-batches", std::string(1100 * 1024, 'x')), -100);  // frame above the 64 KiB limit: closed
  expect_serving();
}

TEST_F(kafka_protocol, bad_frames_close_only_their_connection) {
  {
    client c(port());  // larger than socket_request_max_bytes
    ASSERT_TRUE(c.send_raw({0x00, 0x10, 0x00, 0x00, 0, 18, 0, 0}));
    EXPECT_TRUE(c.closed_by_broker());
  }
  {
    client c(port());  // negative size
    ASSERT_TRUE(c.send_raw({0xff, 0xff, 0xff, 0xf0}));
    EXPECT_TRUE(c.closed_by_broker());
  }
  {
    client c(port());  // unknown API key
    msg::api_versions_request req;
    std::vector<uint8_t> f = c.frame(req, 0, 1);
    f[4] = 0x27;
    f[5] = 0x0f;  // 9999
    ASSERT_TRUE(c.send_raw(f));
    EXPECT_TRUE(c.closed_by_broker());
  }
  {
    client c(port());  // Metadata v99
    msg::metadata_request req;
    std::vector<uint8_t> f = c.frame(req, 9, 1);
    f[6] = 0;
    f[7] = 99;
    ASSERT_TRUE(c.send_raw(f));
    EXPECT_TRUE(c.closed_by_broker());
  }
  {
    client c(port());  // Metadata v1 whose topic array has length -5
    msg::metadata_request req;
    req.topics.emplace();
    std::vector<uint8_t> f = c.frame(req, 1, 1);
    // The body is the last 4 bytes: the array length.
    f[f.size() - 4] = 0xff;
    f[f.size() - 3] = 0xff;
    f[f.size() - 2] = 0xff;
    f[f.size() - 1] = 0xfb;
    ASSERT_TRUE(c.send_raw(f));
    EXPECT_TRUE(c.closed_by_broker());
  }
  {
    client c(port());  // truncated: the size promises more than arrives
    ASSERT_TRUE(c.send_raw({0, 0, 0, 100, 0, 18, 0, 0, 0, 0}));
  }  // closes while the broker waits for the rest
  expect_serving();
  const std::string log = g_broker->log();
  EXPECT_NE(log.find("outside [8, socket_request_max_bytes=65536]"), std::string::npos) << log;
  EXPECT_NE(log.find("unknown API key 9999"), std::string::npos) << log;
  EXPECT_NE(log.find("Metadata (key 3) v99 is not supported"), std::string::npos) << log;
  EXPECT_NE(log.find("malformed request"), std::string::npos) << log;
}

TEST_F(kafka_protocol, incremental_alter_configs_sets_and_deletes_topic_configs) {
  create_topic("configs", 1);
  client c(port());
  auto alter = [&](std::vector<std::tuple<std::string, int8_t, std::optional<std::string>>> ops, int32_t id) {
    msg::incremental_alter_configs_request req;
    auto& r = req.resources.emplace_back();
    r.resource_type = 2;  // topic
    r.resource_name = "configs";
    for (auto& [name, op, value] : ops) {
      auto& cfg = r.configs.emplace_back();
      cfg.name = name;
      cfg.config_operation = op;
      cfg.value = value;
    }
    EXPECT_TRUE(c.send(req, 1, id));
    msg::incremental_alter_configs_response resp;
    EXPECT_TRUE(c.receive(resp, 44, 1, id));
    return resp.responses.at(0);
  };
  auto describe = [&](int32_t id) {
    msg::describe_configs_request req;
    auto& r = req.resources.emplace_back();
    r.resource_type = 2;
    r.resource_name = "configs";
    EXPECT_TRUE(c.send(req, 4, id));
    msg::describe_configs_response resp;
    EXPECT_TRUE(c.receive(resp, 32, 4, id));
    std::map<std::string, std::pair<std::string, int8_t>> out;  // name -> value, source
    for (const auto& cfg : resp.results.at(0).configs) out[cfg.name] = {cfg.value.value_or(""), cfg.config_source};
    return out;
  };
  EXPECT_EQ(alter({{"retention.ms", 0, "1234"}, {"segment.bytes", 0, "1048576"}}, 1).error_code, 0);
  auto d = describe(2);
  EXPECT_EQ(d["retention.ms"], (std::pair<std::string, int8_t>{"1234", 1}));  // DYNAMIC_TOPIC_CONFIG
  EXPECT_EQ(d["segment.bytes"].first, "1048576");
  // SET keeps the other overrides; DELETE restores the default.
  EXPECT_EQ(alter({{"retention.ms", 1, std::nullopt}}, 3).error_code, 0);
  d = describe(4);
  EXPECT_EQ(d["retention.ms"].second, 5);  // DEFAULT_CONFIG
  EXPECT_EQ(d["segment.bytes"].first, "1048576");
  // Bad values and unknown names are INVALID_CONFIG naming the config.
  auto bad = alter({{"retention.ms", 0, "soon"}}, 5);
  EXPECT_EQ(bad.error_code, 40);
  EXPECT_NE(bad.error_message.value_or("").find("retention.ms"), std::string::npos);
  EXPECT_EQ(alter({{"no.such.config", 0, "1"}}, 6).error_code, 40);
}

TEST_F(kafka_protocol, a_group_member_joins_syncs_commits_and_is_held_to_its_generation) {
  create_topic("group-topic", 2);
  client c(port());
  msg::join_group_request join;
  join.group_id = "g-raw";
  join.session_timeout_ms = 10000;
  join.rebalance_timeout_ms = 10000;
  join.protocol_type = "consumer";
  auto& proto = join.protocols.emplace_back();
  proto.name = "range";
  proto.metadata = {0, 1, 2};
  // KIP-394: the first join (v4+) only hands out a member id.
  ASSERT_TRUE(c.send(join, 5, 1));
  msg::join_group_response jr;
  ASSERT_TRUE(c.receive(jr, 11, 5, 1));
  ASSERT_EQ(jr.error_code, 79);  // MEMBER_ID_REQUIRED
  ASSERT_FALSE(jr.member_id.empty());
  join.member_id = jr.member_id;
  ASSERT_TRUE(c.send(join, 5, 2));
  ASSERT_TRUE(c.receive(jr, 11, 5, 2));
  ASSERT_EQ(jr.error_code, 0);
  EXPECT_EQ(jr.leader, join.member_id);
  EXPECT_EQ(jr.protocol_name.value_or(""), "range");
  ASSERT_EQ(jr.members.size(), 1u);  // the leader sees every member's metadata
  EXPECT_EQ(jr.members[0].metadata, (std::vector<uint8_t>{0, 1, 2}));
  const int32_t generation = jr.generation_id;

  msg::sync_group_request sync;
  sync.group_id = "g-raw";
  sync.generation_id = generation;
  sync.member_id = join.member_id;
  auto& a = sync.assignments.emplace_back();
  a.member_id = join.member_id;
  a.assignment = {9, 9};
  ASSERT_TRUE(c.send(sync, 3, 3));
  msg::sync_group_response sr;
  ASSERT_TRUE(c.receive(sr, 14, 3, 3));
  EXPECT_EQ(sr.error_code, 0);
  EXPECT_EQ(sr.assignment, (std::vector<uint8_t>{9, 9}));

  msg::heartbeat_request hb;
  hb.group_id = "g-raw";
  hb.generation_id = generation;
  hb.member_id = join.member_id;
  msg::heartbeat_response hr;
  ASSERT_TRUE(c.send(hb, 3, 4));
  ASSERT_TRUE(c.receive(hr, 12, 3, 4));
  EXPECT_EQ(hr.error_code, 0);
  hb.generation_id = generation + 5;
  ASSERT_TRUE(c.send(hb, 3, 5));
  ASSERT_TRUE(c.receive(hr, 12, 3, 5));
  EXPECT_EQ(hr.error_code, 22);  // ILLEGAL_GENERATION
  hb.member_id = "nobody";
  ASSERT_TRUE(c.send(hb, 3, 6));
  ASSERT_TRUE(c.receive(hr, 12, 3, 6));
  EXPECT_EQ(hr.error_code, 25);  // UNKNOWN_MEMBER_ID

  // Commits are held to the member and generation; fetch returns them.
  msg::offset_commit_request commit;
  commit.group_id = "g-raw";
  commit.generation_id_or_member_epoch = generation;
  commit.member_id = join.member_id;
  auto& ct = commit.topics.emplace_back();
  ct.name = "group-topic";
  auto& cp = ct.partitions.emplace_back();
  cp.partition_index = 1;
  cp.committed_offset = 42;
  cp.committed_metadata = "m";
  ASSERT_TRUE(c.send(commit, 8, 7));
  msg::offset_commit_response cr;
  ASSERT_TRUE(c.receive(cr, 8, 8, 7));
  EXPECT_EQ(cr.topics.at(0).partitions.at(0).error_code, 0);
  commit.generation_id_or_member_epoch = generation - 1;
  ASSERT_TRUE(c.send(commit, 8, 8));
  ASSERT_TRUE(c.receive(cr, 8, 8, 8));
  EXPECT_EQ(cr.topics.at(0).partitions.at(0).error_code, 22);

  msg::offset_fetch_request fetch;
  auto& fg = fetch.groups.emplace_back();
  fg.group_id = "g-raw";
  ASSERT_TRUE(c.send(fetch, 8, 9));
  msg::offset_fetch_response fr;
  ASSERT_TRUE(c.receive(fr, 9, 8, 9));
  ASSERT_EQ(fr.groups.size(), 1u);
  ASSERT_EQ(fr.groups[0].topics.size(), 1u);
  EXPECT_EQ(fr.groups[0].topics[0].partitions.at(0).partition_index, 1);
  EXPECT_EQ(fr.groups[0].topics[0].partitions.at(0).committed_offset, 42);
  EXPECT_EQ(fr.groups[0].topics[0].partitions.at(0).metadata.value_or(""), "m");

  // A group with members cannot be deleted.
  msg::delete_groups_request del;
  del.groups_names = {"g-raw", "no-such-group"};
  ASSERT_TRUE(c.send(del, 2, 10));
  msg::delete_groups_response dr;
  ASSERT_TRUE(c.receive(dr, 42, 2, 10));
  ASSERT_EQ(dr.results.size(), 2u);
  EXPECT_EQ(dr.results[0].error_code, 68);  // NON_EMPTY_GROUP
  EXPECT_EQ(dr.results[1].error_code, 69);  // GROUP_ID_NOT_FOUND
}

TEST_F(kafka_protocol, idle_connections_are_closed_after_connections_max_idle_ms) {
  client idle(port());
  ASSERT_TRUE(idle.connected);
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(idle.closed_by_broker());  // blocks up to the 10 s receive timeout
  const auto waited = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(waited, 2500ms);
  EXPECT_LT(waited, 9s);
}

TEST_F(kafka_protocol, a_deleted_topic_leaves_no_files_and_its_name_starts_afresh) {
  create_topic("recycled", 2);
  ASSERT_EQ(produce_error("recycled", storage::make_test_batch(5, 10, 1000)), 0);
  const fs::path dir = fs::path(g_broker->data_dir()) / "storage" / "recycled";
  ASSERT_TRUE(fs::exists(dir));
  {
    client c(port());
    msg::delete_topics_request req;
    req.topic_names = {"recycled"};
    req.timeout_ms = 10000;
    ASSERT_TRUE(c.send(req, 5, 1));
    msg::delete_topics_response resp;
    ASSERT_TRUE(c.receive(resp, 20, 5, 1));
    ASSERT_EQ(resp.responses.size(), 1u);
    EXPECT_EQ(resp.responses[0].error_code, 0);
  }
  EXPECT_FALSE(fs::exists(dir)) << "partition data of a deleted topic is still on disk";
  create_topic("recycled", 1);
  client c(port());
  msg::list_offsets_request req;
  req.replica_id = -1;
  auto& t = req.topics.emplace_back();
  t.name = "recycled";
  auto& p = t.partitions.emplace_back();
  p.partition_index = 0;
  p.timestamp = -1;  // latest
  ASSERT_TRUE(c.send(req, 7, 2));
  msg::list_offsets_response resp;
  ASSERT_TRUE(c.receive(resp, 2, 7, 2));
  EXPECT_EQ(resp.topics.at(0).partitions.at(0).error_code, 0);
  EXPECT_EQ(resp.topics.at(0).partitions.at(0).offset, 0);
}

TEST_F(kafka_protocol, fetch_sessions_send_only_what_changed) {
  create_topic("sessions", 2);
  ASSERT_EQ(produce_error("sessions", storage::make_test_batch(3, 10, 1000)), 0);  // partition 0 only
  client c(port());
  auto fetch = [&](int32_t session_id, int32_t epoch, std::vector<int32_t> partitions, std::vector<int32_t> forget,
                   int32_t correlation_id) {
    msg::fetch_request req;
    req.replica_id = -1;
    req.max_wait_ms = 0;
    req.min_bytes = 1;
    req.max_bytes = 1 << 20;
    req.session_id = session_id;
    req.session_epoch = epoch;
    if (!partitions.empty()) {
      auto& t = req.topics.emplace_back();
      t.topic = "sessions";
      for (int32_t p : partitions) {
        auto& fp = t.partitions.emplace_back();
        fp.partition = p;
        fp.fetch_offset = 0;
        fp.partition_max_bytes = 1 << 20;
      }
    }
    if (!forget.empty()) {
      auto& f = req.forgotten_topics_data.emplace_back();
      f.topic = "sessions";
      f.partitions = forget;
    }
    EXPECT_TRUE(c.send(req, 11, correlation_id));
    msg::fetch_response resp;
    EXPECT_TRUE(c.receive(resp, 1, 11, correlation_id));
    return resp;
  };
  // A full fetch with epoch 0 opens a session and answers every partition.
  msg::fetch_response full = fetch(0, 0, {0, 1}, {}, 1);
  ASSERT_EQ(full.error_code, 0);
  ASSERT_NE(full.session_id, 0);
  ASSERT_EQ(full.responses.size(), 1u);
  ASSERT_EQ(full.responses[0].partitions.size(), 2u);
  EXPECT_EQ(full.responses[0].partitions[0].high_watermark, 3);
  EXPECT_GT(full.responses[0].partitions[0].records.size, 0u);
  // Incremental, nothing new in the request: partition 0's records come
  // again (its fetch offset is still 0), partition 1 has no news: left out.
  msg::fetch_response inc = fetch(full.session_id, 1, {}, {}, 2);
  ASSERT_EQ(inc.error_code, 0);
  EXPECT_EQ(inc.session_id, full.session_id);
  ASSERT_EQ(inc.responses.size(), 1u);
  ASSERT_EQ(inc.responses[0].partitions.size(), 1u);
  EXPECT_EQ(inc.responses[0].partitions[0].partition_index, 0);
  // Forget partition 0: nothing left with news.
  inc = fetch(full.session_id, 2, {}, {0}, 3);
  ASSERT_EQ(inc.error_code, 0);
  EXPECT_TRUE(inc.responses.empty());
  // New data on partition 1 shows up in the session.
  {
    client p(port());
    msg::produce_request req;
    req.acks = 1;
    const std::string b = storage::make_test_batch(2, 5, 2000);
    auto& t = req.topic_data.emplace_back();
    t.name = "sessions";
    auto& pd = t.partition_data.emplace_back();
    pd.index = 1;
    pd.records = records_view::of(reinterpret_cast<const uint8_t*>(b.data()), b.size());
    ASSERT_TRUE(p.send(req, 9, 1));
    msg::produce_response r;
    ASSERT_TRUE(p.receive(r, 0, 9, 1));
  }
  inc = fetch(full.session_id, 3, {}, {}, 4);
  ASSERT_EQ(inc.responses.size(), 1u);
  ASSERT_EQ(inc.responses[0].partitions.size(), 1u);
  EXPECT_EQ(inc.responses[0].partitions[0].partition_index, 1);
  EXPECT_EQ(inc.responses[0].partitions[0].high_watermark, 2);
  // A wrong epoch and an unknown session are errors; epoch -1 closes it.
  EXPECT_EQ(fetch(full.session_id, 9, {}, {}, 5).error_code, 71);  // INVALID_FETCH_SESSION_EPOCH
  EXPECT_EQ(fetch(full.session_id ^ 0x1234, 1, {}, {}, 6).error_code, 70);  // FETCH_SESSION_ID_NOT_FOUND
  msg::fetch_response closed = fetch(full.session_id, -1, {0}, {}, 7);
  EXPECT_EQ(closed.error_code, 0);
  EXPECT_EQ(closed.session_id, 0);
  EXPECT_EQ(fetch(full.session_id, 4, {}, {}, 8).error_code, 70);
}

}  // namespace
}  // namespace sluice::kafka
