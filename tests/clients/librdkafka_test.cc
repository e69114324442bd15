// librdkafka (the C API of Debian's librdkafka-dev) against a Sluice broker.
//
//   librdkafka_test [--bootstrap HOST:PORT] [gtest flags]     (or $SLUICE_BOOTSTRAP)
//
// Every expectation is Kafka's documented behaviour as librdkafka reports it:
//   metadata       one broker with the configured id and advertised host:port; it is the controller
//   admin          CreateTopics (partitions, configs, validate_only, TOPIC_ALREADY_EXISTS,
//                  INVALID_TOPIC_EXCEPTION), DescribeConfigs, AlterConfigs, CreatePartitions (grow;
//                  shrinking is INVALID_PARTITIONS), DeleteTopics (then Metadata no longer lists it)
//   produce        every codec x acks=all/1/0, keys (null, empty, bytes), values (null, empty, binary,
//                  up to 300 KB), headers (duplicates, null and binary values), explicit CreateTime
//                  timestamps; delivery reports with per-partition offsets 0, 1, 2, ...
//   consume        assign() from the beginning of each partition; every key, value, header,
//                  timestamp and offset compared (check.crcs=true verifies every batch's CRC)
//   offsets        query_watermark_offsets, offsets_for_times (earliest offset with timestamp >= T,
//                  -1 past the end), DeleteRecords (new low watermark, OFFSET_OUT_OF_RANGE past the end,
//                  consumption restarts at the low watermark)
#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

std::string g_bootstrap;
std::string g_advertised;
int32_t g_broker_id = 1;

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string unique_topic(const std::string& what) {
  static const std::string run = std::to_string(getpid()) + "-" + std::to_string(now_ms() % 1000000000);
  return "sluice-librdkafka-" + what + "-" + run;
}

// ---- RAII and small helpers -------------------------------------------------------------------------------------

// unique_ptr owners calling librdkafka's destroy functions.
template <auto destroy>
struct destroyer {
  template <class T>
  void operator()(T* p) const {
    destroy(p);
  }
};
using client = std::unique_ptr<rd_kafka_t, destroyer<rd_kafka_destroy>>;
using event = std::unique_ptr<rd_kafka_event_t, destroyer<rd_kafka_event_destroy>>;
using queue = std::unique_ptr<rd_kafka_queue_t, destroyer<rd_kafka_queue_destroy>>;
using admin_options = std::unique_ptr<rd_kafka_AdminOptions_t, destroyer<rd_kafka_AdminOptions_destroy>>;
using tp_list = std::unique_ptr<rd_kafka_topic_partition_list_t, destroyer<rd_kafka_topic_partition_list_destroy>>;
using metadata = std::unique_ptr<const rd_kafka_metadata_t, destroyer<rd_kafka_metadata_destroy>>;
using message = std::unique_ptr<rd_kafka_message_t, destroyer<rd_kafka_message_destroy>>;

using settings = std::vector<std::pair<std::string, std::string>>;

void error_cb(rd_kafka_t*, int err, const char* reason, void*) {
  // Transient errors (a refused connection, a missing coordinator) are logged by the test, not fatal:
  // the operation that needed the broker fails with its own error.
  std::fprintf(stderr, "librdkafka error: %s: %s\n", rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(err)),
               reason);
}

client make_client(rd_kafka_type_t type, const settings& extra,
                   void (*dr)(rd_kafka_t*, const rd_kafka_message_t*, void*) = nullptr) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char errstr[512];
  settings all{{"bootstrap.servers", g_bootstrap},
               {"client.id", "sluice-librdkafka-test"},
               {"socket.timeout.ms", "30000"},
               {"message.timeout.ms", "60000"},
               {"check.crcs", "true"}};
  all.insert(all.end(), extra.begin(), extra.end());
  for (const auto& [k, v] : all) {
    if (type == RD_KAFKA_PRODUCER && k == "check.crcs") continue;  // consumer-only property
    if (type == RD_KAFKA_CONSUMER && k == "message.timeout.ms") continue;
    if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
      ADD_FAILURE() << "config " << k << "=" << v << ": " << errstr;
    }
  }
  rd_kafka_conf_set_error_cb(conf, error_cb);
  if (dr) rd_kafka_conf_set_dr_msg_cb(conf, dr);
  rd_kafka_t* rk = rd_kafka_new(type, conf, errstr, sizeof(errstr));
  if (!rk) {
    rd_kafka_conf_destroy(conf);
    ADD_FAILURE() << "rd_kafka_new: " << errstr;
  }
  return client(rk);
}

// Waits for the admin result of `type` on q.
event wait_result(rd_kafka_queue_t* q, rd_kafka_event_type_t type, std::chrono::seconds timeout = 60s) {
  const auto deadline = clock_type::now() + timeout;
  while (clock_type::now() < deadline) {
    event ev(rd_kafka_queue_poll(q, 1000));
    if (!ev) continue;
    if (rd_kafka_event_type(ev.get()) == type) return ev;
  }
  ADD_FAILURE() << "no admin result within " << timeout.count() << " s";
  return nullptr;
}

admin_options options(rd_kafka_t* rk, rd_kafka_admin_op_t op, bool validate_only = false) {
  admin_options o(rd_kafka_AdminOptions_new(rk, op));
  char errstr[256];
  rd_kafka_AdminOptions_set_request_timeout(o.get(), 30000, errstr, sizeof(errstr));
  if (op == RD_KAFKA_ADMIN_OP_CREATETOPICS || op == RD_KAFKA_ADMIN_OP_DELETETOPICS ||
      op == RD_KAFKA_ADMIN_OP_CREATEPARTITIONS || op == RD_KAFKA_ADMIN_OP_DELETERECORDS)
    rd_kafka_AdminOptions_set_operation_timeout(o.get(), 30000, errstr, sizeof(errstr));
  if (validate_only) {
    EXPECT_EQ(rd_kafka_AdminOptions_set_validate_only(o.get(), 1, errstr, sizeof(errstr)), RD_KAFKA_RESP_ERR_NO_ERROR);
  }
  return o;
}

struct topic_outcome {
  rd_kafka_resp_err_t err;
  std::string message;
};
std::string describe(const topic_outcome& o) {
  return std::string(rd_kafka_err2name(o.err)) + (o.message.empty() ? "" : " (" + o.message + ")");
}

topic_outcome one_topic_result(const rd_kafka_topic_result_t** res, size_t n, const std::string& topic) {
  EXPECT_EQ(n, 1u);
  if (n != 1) return {RD_KAFKA_RESP_ERR__FAIL, "no result"};
  EXPECT_EQ(rd_kafka_topic_result_name(res[0]), topic);
  const char* msg = rd_kafka_topic_result_error_string(res[0]);
  return {rd_kafka_topic_result_error(res[0]), msg ? msg : ""};
}

// One topic-level admin operation on obj (which it destroys); returns that topic's outcome.
template <class T, class Call, class Results>
topic_outcome topic_admin(rd_kafka_t* rk, rd_kafka_admin_op_t op, rd_kafka_event_type_t type, const std::string& name,
                          T* obj, Call call, void (*destroy)(T*), Results results, bool validate_only = false) {
  queue q(rd_kafka_queue_new(rk));
  auto o = options(rk, op, validate_only);
  call(rk, &obj, 1, o.get(), q.get());
  destroy(obj);
  event ev = wait_result(q.get(), type);
  if (!ev) return {RD_KAFKA_RESP_ERR__TIMED_OUT, "no admin result"};
  if (rd_kafka_event_error(ev.get())) {
    const char* msg = rd_kafka_event_error_string(ev.get());
    return {rd_kafka_event_error(ev.get()), msg ? msg : ""};
  }
  size_t n = 0;
  auto res = results(ev.get(), &n);
  return one_topic_result(res, n, name);
}

topic_outcome create_topic(rd_kafka_t* rk, const std::string& name, int partitions, const settings& configs = {},
                           bool validate_only = false) {
  char errstr[512];
  rd_kafka_NewTopic_t* nt = rd_kafka_NewTopic_new(name.c_str(), partitions, 1, errstr, sizeof(errstr));
  if (!nt) return {RD_KAFKA_RESP_ERR__INVALID_ARG, errstr};
  for (const auto& [k, v] : configs)
    EXPECT_EQ(rd_kafka_NewTopic_set_config(nt, k.c_str(), v.c_str()), RD_KAFKA_RESP_ERR_NO_ERROR);
  return topic_admin(
      rk, RD_KAFKA_ADMIN_OP_CREATETOPICS, RD_KAFKA_EVENT_CREATETOPICS_RESULT, name, nt, rd_kafka_CreateTopics,
      rd_kafka_NewTopic_destroy,
      [](rd_kafka_event_t* e, size_t* n) {
        return rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(e), n);
      },
      validate_only);
}

topic_outcome delete_topic(rd_kafka_t* rk, const std::string& name) {
  return topic_admin(rk, RD_KAFKA_ADMIN_OP_DELETETOPICS, RD_KAFKA_EVENT_DELETETOPICS_RESULT, name,
                     rd_kafka_DeleteTopic_new(name.c_str()), rd_kafka_DeleteTopics, rd_kafka_DeleteTopic_destroy,
                     [](rd_kafka_event_t* e, size_t* n) {
                       return rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(e), n);
                     });
}

topic_outcome create_partitions(rd_kafka_t* rk, const std::string& name, int total) {
  char errstr[512];
  rd_kafka_NewPartitions_t* np = rd_kafka_NewPartitions_new(name.c_str(), total, errstr, sizeof(errstr));
  if (!np) return {RD_KAFKA_RESP_ERR__INVALID_ARG, errstr};
  return topic_admin(rk, RD_KAFKA_ADMIN_OP_CREATEPARTITIONS, RD_KAFKA_EVENT_CREATEPARTITIONS_RESULT, name, np,
                     rd_kafka_CreatePartitions, rd_kafka_NewPartitions_destroy,
                     [](rd_kafka_event_t* e, size_t* n) {
                       return rd_kafka_CreatePartitions_result_topics(rd_kafka_event_CreatePartitions_result(e), n);
                     });
}

struct config_entry {
  std::string value;
  rd_kafka_ConfigSource_t source;
  bool is_default;
};
struct described {
  rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
  std::map<std::string, config_entry> entries;
};

described describe_configs(rd_kafka_t* rk, rd_kafka_ResourceType_t type, const std::string& name) {
  described out;
  rd_kafka_ConfigResource_t* res = rd_kafka_ConfigResource_new(type, name.c_str());
  queue q(rd_kafka_queue_new(rk));
  auto o = options(rk, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS);
  rd_kafka_DescribeConfigs(rk, &res, 1, o.get(), q.get());
  rd_kafka_ConfigResource_destroy(res);
  event ev = wait_result(q.get(), RD_KAFKA_EVENT_DESCRIBECONFIGS_RESULT);
  if (!ev) return {RD_KAFKA_RESP_ERR__TIMED_OUT, {}};
  if (rd_kafka_event_error(ev.get())) return {rd_kafka_event_error(ev.get()), {}};
  size_t n = 0;
  auto rs = rd_kafka_DescribeConfigs_result_resources(rd_kafka_event_DescribeConfigs_result(ev.get()), &n);
  EXPECT_EQ(n, 1u);
  if (n != 1) return {RD_KAFKA_RESP_ERR__FAIL, {}};
  out.err = rd_kafka_ConfigResource_error(rs[0]);
  size_t cnt = 0;
  auto entries = rd_kafka_ConfigResource_configs(rs[0], &cnt);
  for (size_t i = 0; i < cnt; ++i) {
    const char* v = rd_kafka_ConfigEntry_value(entries[i]);
    out.entries[rd_kafka_ConfigEntry_name(entries[i])] = {v ? v : "<null>", rd_kafka_ConfigEntry_source(entries[i]),
                                                          rd_kafka_ConfigEntry_is_default(entries[i]) != 0};
  }
  return out;
}

rd_kafka_resp_err_t alter_topic_configs(rd_kafka_t* rk, const std::string& topic, const settings& configs) {
  rd_kafka_ConfigResource_t* res = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic.c_str());
  for (const auto& [k, v] : configs)
    EXPECT_EQ(rd_kafka_ConfigResource_set_config(res, k.c_str(), v.c_str()), RD_KAFKA_RESP_ERR_NO_ERROR);
  queue q(rd_kafka_queue_new(rk));
  auto o = options(rk, RD_KAFKA_ADMIN_OP_ALTERCONFIGS);
  rd_kafka_AlterConfigs(rk, &res, 1, o.get(), q.get());
  rd_kafka_ConfigResource_destroy(res);
  event ev = wait_result(q.get(), RD_KAFKA_EVENT_ALTERCONFIGS_RESULT);
  if (!ev) return RD_KAFKA_RESP_ERR__TIMED_OUT;
  if (rd_kafka_event_error(ev.get())) return rd_kafka_event_error(ev.get());
  size_t n = 0;
  auto rs = rd_kafka_AlterConfigs_result_resources(rd_kafka_event_AlterConfigs_result(ev.get()), &n);
  EXPECT_EQ(n, 1u);
  return n == 1 ? rd_kafka_ConfigResource_error(rs[0]) : RD_KAFKA_RESP_ERR__FAIL;
}

// Partition results of DeleteRecords: partition -> (error, new low watermark).
std::map<int32_t, std::pair<rd_kafka_resp_err_t, int64_t>> delete_records(
    rd_kafka_t* rk, const std::string& topic, const std::vector<std::pair<int32_t, int64_t>>& before) {
  std::map<int32_t, std::pair<rd_kafka_resp_err_t, int64_t>> out;
  tp_list l(rd_kafka_topic_partition_list_new(static_cast<int>(before.size())));
  for (auto [p, off] : before) rd_kafka_topic_partition_list_add(l.get(), topic.c_str(), p)->offset = off;
  rd_kafka_DeleteRecords_t* dr = rd_kafka_DeleteRecords_new(l.get());
  queue q(rd_kafka_queue_new(rk));
  auto o = options(rk, RD_KAFKA_ADMIN_OP_DELETERECORDS);
  rd_kafka_DeleteRecords(rk, &dr, 1, o.get(), q.get());
  rd_kafka_DeleteRecords_destroy(dr);
  event ev = wait_result(q.get(), RD_KAFKA_EVENT_DELETERECORDS_RESULT);
  if (!ev) return out;
  // A partition-level error also shows as the event's error; the per-partition results carry the detail.
  const rd_kafka_topic_partition_list_t* res =
      rd_kafka_DeleteRecords_result_offsets(rd_kafka_event_DeleteRecords_result(ev.get()));
  if (!res) {
    ADD_FAILURE() << "DeleteRecords failed: " << rd_kafka_err2name(rd_kafka_event_error(ev.get())) << " "
                  << (rd_kafka_event_error_string(ev.get()) ? rd_kafka_event_error_string(ev.get()) : "");
    return out;
  }
  for (int i = 0; i < res->cnt; ++i) out[res->elems[i].partition] = {res->elems[i].err, res->elems[i].offset};
  return out;
}

metadata fetch_metadata(rd_kafka_t* rk) {
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 1, nullptr, &md, 30000);
  EXPECT_EQ(err, RD_KAFKA_RESP_ERR_NO_ERROR) << "Metadata: " << rd_kafka_err2str(err);
  return metadata(err ? nullptr : md);
}

const rd_kafka_metadata_topic_t* find_topic(const rd_kafka_metadata_t* md, const std::string& name) {
  for (int i = 0; md && i < md->topic_cnt; ++i)
    if (name == md->topics[i].topic) return &md->topics[i];
  return nullptr;
}

// Polls Metadata until pred holds (topic changes become visible asynchronously in Kafka).
bool wait_metadata(rd_kafka_t* rk, const std::function<bool(const rd_kafka_metadata_t*)>& pred,
                   std::chrono::seconds timeout = 30s) {
  const auto deadline = clock_type::now() + timeout;
  for (;;) {
    metadata md = fetch_metadata(rk);
    if (md && pred(md.get())) return true;
    if (clock_type::now() >= deadline) return false;
    std::this_thread::sleep_for(200ms);
  }
}

bool partitions_ready(const rd_kafka_metadata_t* md, const std::string& topic, int count) {
  const auto* t = find_topic(md, topic);
  if (!t || t->err || t->partition_cnt != count) return false;
  for (int i = 0; i < t->partition_cnt; ++i)
    if (t->partitions[i].err || t->partitions[i].leader != g_broker_id) return false;
  return true;
}

std::pair<int64_t, int64_t> watermarks(rd_kafka_t* rk, const std::string& topic, int32_t p) {
  int64_t lo = -100, hi = -100;
  rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(rk, topic.c_str(), p, &lo, &hi, 30000);
  EXPECT_EQ(err, RD_KAFKA_RESP_ERR_NO_ERROR) << "query_watermark_offsets " << topic << "[" << p << "]";
  return {lo, hi};
}

// Known, documented deviations of the broker, listed per test in SLUICE_CLIENTS_KNOWN_GAPS by
// tests/clients/CMakeLists.txt: a listed gap tolerates exactly its own symptom and is reported.
std::set<std::string> g_known_gaps;
std::map<std::string, int> g_gaps_seen;
constexpr const char* gap_ts_compressed = "timestamp-in-compressed-batch";

bool known_gap(const std::string& gap, const std::string& msg) {
  if (!g_known_gaps.count(gap)) return false;
  if (g_gaps_seen[gap]++ < 3) std::printf("   KNOWN GAP %s: %s\n", gap.c_str(), msg.c_str());
  return true;
}

// offsets_for_times must find the earliest offset whose timestamp is >= T, inside compressed batches too.
void expect_offset_for_time(int64_t got, int64_t want, const std::string& what) {
  if (got == want) return;
  const std::string msg = what + ": got offset " + std::to_string(got) + ", want " + std::to_string(want);
  if (want >= 0 && got >= 0 && got < want && known_gap(gap_ts_compressed, msg + ": a compressed batch's first offset"))
    return;
  ADD_FAILURE() << msg;
}

int64_t offset_for_time(rd_kafka_t* rk, const std::string& topic, int32_t p, int64_t ts) {
  tp_list l(rd_kafka_topic_partition_list_new(1));
  rd_kafka_topic_partition_list_add(l.get(), topic.c_str(), p)->offset = ts;
  rd_kafka_resp_err_t err = rd_kafka_offsets_for_times(rk, l.get(), 30000);
  EXPECT_EQ(err, RD_KAFKA_RESP_ERR_NO_ERROR) << "offsets_for_times " << topic << "[" << p << "] ts " << ts;
  EXPECT_EQ(l->elems[0].err, RD_KAFKA_RESP_ERR_NO_ERROR) << rd_kafka_err2name(l->elems[0].err);
  return l->elems[0].offset;
}

// ---- records ----------------------------------------------------------------------------------------------------

using bytes = std::optional<std::string>;
using header_list = std::vector<std::pair<std::string, bytes>>;

struct record {
  std::string label;
  bytes key, value;
  header_list headers;
  int64_t timestamp = 0;
  int32_t want_partition = RD_KAFKA_PARTITION_UA;
  bool acks0 = false;
  // From the delivery report:
  bool reported = false;
  rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
  int32_t partition = -1;
  int64_t offset = -1;
};

std::string show(const bytes& b) {
  if (!b) return "null";
  std::string s = std::to_string(b->size()) + " bytes";
  if (b->size() <= 32) {
    s += " \"";
    for (unsigned char c : *b) {
      char buf[8];
      std::snprintf(buf, sizeof buf, (c >= 32 && c < 127) ? "%c" : "\\x%02x", c);
      s += buf;
    }
    s += "\"";
  }
  return s;
}

// "got X, want Y; first difference at byte N" without dumping large values.
std::string mismatch(const bytes& got, const bytes& want) {
  std::string s = "got " + show(got) + ", want " + show(want);
  if (got && want) {
    size_t i = 0;
    while (i < got->size() && i < want->size() && (*got)[i] == (*want)[i]) ++i;
    s += "; first difference at byte " + std::to_string(i);
  }
  return s;
}

std::string random_bytes(std::mt19937_64& r, size_t n) {
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(r() & 0xff);
  return s;
}

// Delivery reports, per partition in report order (librdkafka reports a partition's messages in order).
struct delivery_log {
  std::map<int32_t, std::vector<record*>> by_partition;
  size_t reports = 0;
};
delivery_log* g_dlog = nullptr;

void on_delivery(rd_kafka_t*, const rd_kafka_message_t* m, void*) {
  auto* rec = static_cast<record*>(m->_private);
  rec->reported = true;
  rec->err = m->err;
  rec->partition = m->partition;
  rec->offset = m->offset;
  ++g_dlog->reports;
  if (!m->err) g_dlog->by_partition[m->partition].push_back(rec);
}

// Produces recs with one producer; returns once every delivery report arrived.
void produce_all(const std::string& topic, std::vector<record>& recs, size_t from, size_t to, const settings& conf) {
  client p = make_client(RD_KAFKA_PRODUCER, conf, on_delivery);
  ASSERT_TRUE(p);
  for (size_t i = from; i < to; ++i) {
    record& r = recs[i];
    rd_kafka_headers_t* hdrs = nullptr;
    if (!r.headers.empty()) {
      hdrs = rd_kafka_headers_new(r.headers.size());
      for (const auto& [n, v] : r.headers)
        rd_kafka_header_add(hdrs, n.data(), static_cast<ssize_t>(n.size()), v ? v->data() : nullptr,
                            v ? static_cast<ssize_t>(v->size()) : 0);
    }
    // A null pointer is a null key or value; a non-null pointer with size 0 is an empty one.
    const void* key = r.key ? r.key->data() : nullptr;
    const size_t key_len = r.key ? r.key->size() : 0;
    void* value = r.value ? r.value->data() : nullptr;
    const size_t value_len = r.value ? r.value->size() : 0;
    for (;;) {
      rd_kafka_resp_err_t err = rd_kafka_producev(
          p.get(), RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_PARTITION(r.want_partition),
          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(key, key_len), RD_KAFKA_V_VALUE(value, value_len),
          RD_KAFKA_V_TIMESTAMP(r.timestamp), RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(&r), RD_KAFKA_V_END);
      if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        rd_kafka_poll(p.get(), 50);
        continue;
      }
      ASSERT_EQ(err, RD_KAFKA_RESP_ERR_NO_ERROR) << "producev " << r.label << ": " << rd_kafka_err2str(err);
      break;
    }
    rd_kafka_poll(p.get(), 0);
  }
  const rd_kafka_resp_err_t ferr = rd_kafka_flush(p.get(), 120000);
  ASSERT_EQ(ferr, RD_KAFKA_RESP_ERR_NO_ERROR) << "flush: " << rd_kafka_outq_len(p.get()) << " still queued";
  for (size_t i = from; i < to; ++i) {
    ASSERT_TRUE(recs[i].reported) << recs[i].label << ": no delivery report";
    ASSERT_EQ(recs[i].err, RD_KAFKA_RESP_ERR_NO_ERROR) << recs[i].label << ": " << rd_kafka_err2str(recs[i].err);
    if (recs[i].want_partition != RD_KAFKA_PARTITION_UA) {
      ASSERT_EQ(recs[i].partition, recs[i].want_partition) << recs[i].label;
    }
  }
}

// Checks delivery-report offsets: for acks != 0, the k-th message of a partition has offset `first + k`.
void check_delivery_offsets(const delivery_log& log, int64_t first = 0) {
  for (const auto& [p, recs] : log.by_partition) {
    for (size_t k = 0; k < recs.size(); ++k) {
      if (recs[k]->acks0) continue;  // acks=0: no response, so no offset to report
      ASSERT_EQ(recs[k]->offset, first + static_cast<int64_t>(k))
          << recs[k]->label << " in partition " << p << ": delivery-report offsets must be 0, 1, 2, ... in order";
    }
  }
}

// acks=0 gives no acknowledgement: poll the high watermarks until they count every message reported sent.
void wait_high_watermarks(rd_kafka_t* rk, const std::string& topic, const delivery_log& log, int partitions) {
  const auto deadline = clock_type::now() + 60s;
  for (;;) {
    std::string got;
    bool all = true;
    for (int32_t p = 0; p < partitions; ++p) {
      const auto it = log.by_partition.find(p);
      const int64_t want = it == log.by_partition.end() ? 0 : static_cast<int64_t>(it->second.size());
      const int64_t hi = watermarks(rk, topic, p).second;
      all = all && hi == want;
      got += " [" + std::to_string(p) + "] " + std::to_string(hi) + "/" + std::to_string(want);
    }
    if (all) return;
    ASSERT_LT(clock_type::now(), deadline) << "high watermarks never reached the messages sent:" << got;
    std::this_thread::sleep_for(100ms);
  }
}

header_list message_headers(const rd_kafka_message_t* m) {
  header_list out;
  rd_kafka_headers_t* h = nullptr;
  if (rd_kafka_message_headers(m, &h) != RD_KAFKA_RESP_ERR_NO_ERROR) return out;
  const char* name;
  const void* val;
  size_t size;
  for (size_t i = 0; rd_kafka_header_get_all(h, i, &name, &val, &size) == RD_KAFKA_RESP_ERR_NO_ERROR; ++i)
    out.emplace_back(name, val ? bytes(std::string(static_cast<const char*>(val), size)) : std::nullopt);
  return out;
}

std::string show(const header_list& h) {
  std::string s = "[";
  for (const auto& [n, v] : h) s += (s.size() > 1 ? ", " : "") + n + "=" + show(v);
  return s + "]";
}

// Consumes partitions of topic from `start` (per partition) with assign(), comparing each message with
// want[p][offset - start]. The consumer has a group.id (librdkafka's assign() needs one) but never
// subscribes or commits, so no group coordinator is involved.
void consume_and_check(const std::string& topic, const std::map<int32_t, std::vector<record*>>& want,
                       const std::map<int32_t, int64_t>& start) {
  client c = make_client(RD_KAFKA_CONSUMER, {{"group.id", unique_topic("assign-only")},
                                             {"enable.auto.commit", "false"},
                                             {"enable.auto.offset.store", "false"},
                                             {"enable.partition.eof", "true"},
                                             {"auto.offset.reset", "error"},
                                             {"fetch.wait.max.ms", "100"}});
  ASSERT_TRUE(c);
  tp_list l(rd_kafka_topic_partition_list_new(static_cast<int>(want.size())));
  std::map<int32_t, int64_t> next;
  for (const auto& [p, recs] : want) {
    const int64_t s = start.count(p) ? start.at(p) : 0;
    rd_kafka_topic_partition_list_add(l.get(), topic.c_str(), p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    next[p] = s;
  }
  ASSERT_EQ(rd_kafka_assign(c.get(), l.get()), RD_KAFKA_RESP_ERR_NO_ERROR);
  auto done = [&] {
    for (const auto& [p, recs] : want)
      if (next[p] < (start.count(p) ? start.at(p) : 0) + static_cast<int64_t>(recs.size())) return false;
    return true;
  };
  size_t checked = 0;
  const auto deadline = clock_type::now() + 180s;
  while (!done()) {
    ASSERT_LT(clock_type::now(), deadline) << "consumed " << checked << " messages; timed out";
    message m(rd_kafka_consumer_poll(c.get(), 500));
    if (!m) continue;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      const int32_t p = m->partition;
      const int64_t end = (start.count(p) ? start.at(p) : 0) + static_cast<int64_t>(want.at(p).size());
      ASSERT_GE(next[p], end) << topic << "[" << p << "] ended at offset " << m->offset << " after " << next[p]
                              << ", but " << end << " messages were produced to it";
      continue;
    }
    ASSERT_EQ(m->err, RD_KAFKA_RESP_ERR_NO_ERROR)
        << "consume " << topic << "[" << m->partition << "] at " << m->offset << ": " << rd_kafka_message_errstr(m.get());
    const int32_t p = m->partition;
    ASSERT_TRUE(want.count(p)) << "message from an unassigned partition " << p;
    ASSERT_EQ(m->offset, next[p]) << topic << "[" << p << "]: offsets must be consecutive";
    const int64_t s = start.count(p) ? start.at(p) : 0;
    ASSERT_LT(m->offset - s, static_cast<int64_t>(want.at(p).size())) << "more messages than produced in " << p;
    const record& r = *want.at(p)[static_cast<size_t>(m->offset - s)];
    const std::string at = topic + "[" + std::to_string(p) + "]@" + std::to_string(m->offset) + " (" + r.label + ")";
    const bytes key = m->key ? bytes(std::string(static_cast<const char*>(m->key), m->key_len)) : std::nullopt;
    const bytes value =
        m->payload ? bytes(std::string(static_cast<const char*>(m->payload), m->len)) : std::nullopt;
    ASSERT_TRUE(key == r.key) << at << " key: " << mismatch(key, r.key);
    ASSERT_TRUE(value == r.value) << at << " value: " << mismatch(value, r.value);
    const header_list h = message_headers(m.get());
    ASSERT_TRUE(h == r.headers) << at << " headers: got " << show(h) << ", want " << show(r.headers);
    rd_kafka_timestamp_type_t tstype;
    const int64_t ts = rd_kafka_message_timestamp(m.get(), &tstype);
    ASSERT_EQ(tstype, RD_KAFKA_TIMESTAMP_CREATE_TIME) << at;
    ASSERT_EQ(ts, r.timestamp) << at << " timestamp";
    if (!r.acks0) {
      ASSERT_EQ(m->offset, r.offset) << at << ": offset differs from the delivery report";
    }
    ++next[p];
    ++checked;
  }
  rd_kafka_consumer_close(c.get());
}

// ---- tests ------------------------------------------------------------------------------------------------------

TEST(librdkafka, metadata_lists_the_broker) {
  client rk = make_client(RD_KAFKA_PRODUCER, {});
  ASSERT_TRUE(rk);
  metadata md = fetch_metadata(rk.get());
  ASSERT_TRUE(md);
  ASSERT_EQ(md->broker_cnt, 1);
  EXPECT_EQ(md->brokers[0].id, g_broker_id);
  EXPECT_EQ(std::string(md->brokers[0].host) + ":" + std::to_string(md->brokers[0].port), g_advertised)
      << "the advertised address";
  EXPECT_EQ(md->orig_broker_id, g_broker_id);
  EXPECT_EQ(rd_kafka_controllerid(rk.get(), 10000), g_broker_id) << "a single-node cluster is its own controller";
}

TEST(librdkafka, admin_create_describe_alter_grow_delete) {
  client rk = make_client(RD_KAFKA_PRODUCER, {});
  ASSERT_TRUE(rk);
  const std::string topic = unique_topic("admin");

  auto o = create_topic(rk.get(), topic, 3, {{"retention.ms", "3600000"}, {"cleanup.policy", "delete"}});
  ASSERT_EQ(o.err, RD_KAFKA_RESP_ERR_NO_ERROR) << "CreateTopics: " << describe(o);
  ASSERT_TRUE(wait_metadata(rk.get(), [&](auto* md) { return partitions_ready(md, topic, 3); }))
      << topic << " never showed 3 partitions led by broker " << g_broker_id << " in Metadata";
  {
    metadata md = fetch_metadata(rk.get());
    const auto* t = find_topic(md.get(), topic);
    ASSERT_NE(t, nullptr);
    for (int i = 0; i < t->partition_cnt; ++i) {
      EXPECT_EQ(t->partitions[i].id, i);
      ASSERT_EQ(t->partitions[i].replica_cnt, 1);
      EXPECT_EQ(t->partitions[i].replicas[0], g_broker_id);
      ASSERT_EQ(t->partitions[i].isr_cnt, 1);
      EXPECT_EQ(t->partitions[i].isrs[0], g_broker_id);
    }
  }

  o = create_topic(rk.get(), topic, 3);
  EXPECT_EQ(o.err, RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) << describe(o);

  const std::string never = unique_topic("validate-only");
  o = create_topic(rk.get(), never, 2, {}, /*validate_only=*/true);
  EXPECT_EQ(o.err, RD_KAFKA_RESP_ERR_NO_ERROR) << "CreateTopics validate_only: " << describe(o);
  {
    metadata md = fetch_metadata(rk.get());
    EXPECT_EQ(find_topic(md.get(), never), nullptr) << "validate_only must not create " << never;
  }

  o = create_topic(rk.get(), "bad name?" + unique_topic("x"), 1);
  EXPECT_EQ(o.err, RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION) << "a topic name with ' ' and '?': " << describe(o);

  described d = describe_configs(rk.get(), RD_KAFKA_RESOURCE_TOPIC, topic);
  ASSERT_EQ(d.err, RD_KAFKA_RESP_ERR_NO_ERROR) << rd_kafka_err2name(d.err);
  ASSERT_TRUE(d.entries.count("retention.ms")) << "DescribeConfigs lacks retention.ms";
  EXPECT_EQ(d.entries["retention.ms"].value, "3600000");
  EXPECT_EQ(d.entries["retention.ms"].source, RD_KAFKA_CONFIG_SOURCE_DYNAMIC_TOPIC_CONFIG);
  EXPECT_FALSE(d.entries["retention.ms"].is_default);
  ASSERT_TRUE(d.entries.count("cleanup.policy")) << "DescribeConfigs lacks cleanup.policy";
  EXPECT_EQ(d.entries["cleanup.policy"].value, "delete");

  // AlterConfigs (non-incremental) replaces the topic's whole dynamic config.
  ASSERT_EQ(alter_topic_configs(rk.get(), topic, {{"retention.ms", "7200000"}}), RD_KAFKA_RESP_ERR_NO_ERROR);
  d = describe_configs(rk.get(), RD_KAFKA_RESOURCE_TOPIC, topic);
  ASSERT_TRUE(d.entries.count("retention.ms"));
  EXPECT_EQ(d.entries["retention.ms"].value, "7200000");

  d = describe_configs(rk.get(), RD_KAFKA_RESOURCE_TOPIC, unique_topic("no-such-topic"));
  EXPECT_EQ(d.err, RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) << rd_kafka_err2name(d.err);

  d = describe_configs(rk.get(), RD_KAFKA_RESOURCE_BROKER, std::to_string(g_broker_id));
  EXPECT_EQ(d.err, RD_KAFKA_RESP_ERR_NO_ERROR) << rd_kafka_err2name(d.err);
  EXPECT_FALSE(d.entries.empty()) << "DescribeConfigs of broker " << g_broker_id << " returned no configs";

  o = create_partitions(rk.get(), topic, 5);
  ASSERT_EQ(o.err, RD_KAFKA_RESP_ERR_NO_ERROR) << "CreatePartitions to 5: " << describe(o);
  EXPECT_TRUE(wait_metadata(rk.get(), [&](auto* md) { return partitions_ready(md, topic, 5); }))
      << topic << " never showed 5 partitions in Metadata";
  o = create_partitions(rk.get(), topic, 4);
  EXPECT_EQ(o.err, RD_KAFKA_RESP_ERR_INVALID_PARTITIONS) << "shrinking 5 -> 4: " << describe(o);

  o = delete_topic(rk.get(), topic);
  ASSERT_EQ(o.err, RD_KAFKA_RESP_ERR_NO_ERROR) << "DeleteTopics: " << describe(o);
  EXPECT_TRUE(wait_metadata(rk.get(), [&](auto* md) { return find_topic(md, topic) == nullptr; }))
      << topic << " is still listed in Metadata 30 s after DeleteTopics";
  o = delete_topic(rk.get(), topic);
  EXPECT_EQ(o.err, RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) << "deleting it again: " << describe(o);
}

TEST(librdkafka, produce_every_codec_and_acks_then_consume_every_byte) {
  client admin = make_client(RD_KAFKA_PRODUCER, {});
  ASSERT_TRUE(admin);
  const std::string topic = unique_topic("codecs");
  constexpr int partitions = 3;
  auto o = create_topic(admin.get(), topic, partitions);
  ASSERT_EQ(o.err, RD_KAFKA_RESP_ERR_NO_ERROR) << describe(o);
  ASSERT_TRUE(wait_metadata(admin.get(), [&](auto* md) { return partitions_ready(md, topic, partitions); }));

  const std::vector<std::string> codecs{"none", "gzip", "snappy", "lz4", "zstd"};
  const std::vector<std::string> acks{"all", "1", "0"};
  constexpr size_t per_run = 400;
  std::vector<record> recs;
  recs.reserve(codecs.size() * acks.size() * per_run);
  std::mt19937_64 rng(20240601);
  // Explicit CreateTime timestamps, increasing in production order and recent (inside retention).
  const int64_t base_ts = now_ms() - 10 * 60 * 1000;
  for (const auto& codec : codecs) {
    for (const auto& a : acks) {
      for (size_t i = 0; i < per_run; ++i) {
        record r;
        r.label = codec + "/acks=" + a + "/#" + std::to_string(i);
        r.acks0 = a == "0";
        r.timestamp = base_ts + static_cast<int64_t>(recs.size());
        r.want_partition = i % 4 == 3 ? RD_KAFKA_PARTITION_UA : static_cast<int32_t>(i % partitions);
        if (i % 50 == 0)
          r.key = std::nullopt;
        else if (i % 50 == 1)
          r.key = std::string();
        else
          r.key = "key-" + codec + "-" + a + "-" + std::to_string(i) + random_bytes(rng, rng() % 16);
        if (i % 97 == 5)
          r.value = std::nullopt;
        else if (i % 10 == 0)
          r.value = std::string();
        else if (i % 150 == 7)
          r.value = random_bytes(rng, 100000 + rng() % 200000);
        else if (i % 3 == 0)
          r.value = std::string(1 + rng() % 3000, static_cast<char>('a' + i % 26));  // compressible
        else
          r.value = random_bytes(rng, 1 + rng() % 3000);
        if (i % 5 != 0)
          r.headers = {{"seq", std::to_string(i)}, {"dup", std::string("a")}, {"dup", std::string("b")},
                       {"bin", random_bytes(rng, 16)}, {"null-value", std::nullopt}, {"empty", std::string()}};
        recs.push_back(std::move(r));
      }
    }
  }

  delivery_log log;
  g_dlog = &log;
  size_t at = 0;
  for (const auto& codec : codecs) {
    for (const auto& a : acks) {
      SCOPED_TRACE("compression.codec=" + codec + " acks=" + a);
      produce_all(topic, recs, at, at + per_run,
                  {{"compression.codec", codec}, {"acks", a}, {"linger.ms", "5"}, {"batch.num.messages", "100"}});
      at += per_run;
      if (HasFatalFailure()) return;
      if (a == "0") wait_high_watermarks(admin.get(), topic, log, partitions);
      if (HasFatalFailure()) return;
    }
  }
  g_dlog = nullptr;
  ASSERT_EQ(log.reports, recs.size());
  check_delivery_offsets(log);
  if (HasFatalFailure()) return;

  for (int32_t p = 0; p < partitions; ++p) {
    auto [lo, hi] = watermarks(admin.get(), topic, p);
    EXPECT_EQ(lo, 0) << "low watermark of partition " << p;
    EXPECT_EQ(hi, static_cast<int64_t>(log.by_partition[p].size())) << "high watermark of partition " << p;
  }

  consume_and_check(topic, log.by_partition, {});
  if (HasFatalFailure()) return;

  // offsets_for_times: the earliest offset whose timestamp is >= T. Timestamps increase with the offset in
  // every partition here, so a record's own timestamp finds exactly that record.
  for (int32_t p = 0; p < partitions; ++p) {
    const auto& v = log.by_partition[p];
    ASSERT_FALSE(v.empty());
    for (size_t k : {size_t{0}, size_t{1}, v.size() / 3, v.size() / 2, v.size() - 1}) {
      const std::string at = "partition " + std::to_string(p) + ", ";
      expect_offset_for_time(offset_for_time(admin.get(), topic, p, v[k]->timestamp), static_cast<int64_t>(k),
                             at + "timestamp of " + v[k]->label);
      if (k > 0 && v[k]->timestamp - 1 > v[k - 1]->timestamp) {
        expect_offset_for_time(offset_for_time(admin.get(), topic, p, v[k]->timestamp - 1), static_cast<int64_t>(k),
                               at + "a timestamp between two records, before " + v[k]->label);
      }
    }
    EXPECT_EQ(offset_for_time(admin.get(), topic, p, v.front()->timestamp - 3600000), 0);
    EXPECT_EQ(offset_for_time(admin.get(), topic, p, v.back()->timestamp + 1), -1)
        << "past the last timestamp there is no offset (-1)";
  }
}

TEST(librdkafka, delete_records_moves_the_low_watermark) {
  client admin = make_client(RD_KAFKA_PRODUCER, {});
  ASSERT_TRUE(admin);
  const std::string topic = unique_topic("delete-records");
  auto o = create_topic(admin.get(), topic, 2);
  ASSERT_EQ(o.err, RD_KAFKA_RESP_ERR_NO_ERROR) << describe(o);
  ASSERT_TRUE(wait_metadata(admin.get(), [&](auto* md) { return partitions_ready(md, topic, 2); }));

  std::vector<record> recs;
  std::mt19937_64 rng(7);
  const int64_t base_ts = now_ms() - 60000;
  for (int i = 0; i < 1010; ++i) {
    record r;
    r.label = "#" + std::to_string(i);
    r.want_partition = i < 1000 ? 0 : 1;
    r.key = "k" + std::to_string(i);
    r.value = random_bytes(rng, 1 + rng() % 2000);
    r.timestamp = base_ts + i;
    recs.push_back(std::move(r));
  }
  delivery_log log;
  g_dlog = &log;
  produce_all(topic, recs, 0, recs.size(), {{"acks", "all"}, {"linger.ms", "5"}});
  g_dlog = nullptr;
  if (HasFatalFailure()) return;
  check_delivery_offsets(log);
  if (HasFatalFailure()) return;

  auto res = delete_records(admin.get(), topic, {{0, 600}, {1, RD_KAFKA_OFFSET_END}});
  ASSERT_EQ(res.size(), 2u);
  EXPECT_EQ(res[0].first, RD_KAFKA_RESP_ERR_NO_ERROR) << rd_kafka_err2name(res[0].first);
  EXPECT_EQ(res[0].second, 600) << "the new low watermark of partition 0";
  EXPECT_EQ(res[1].first, RD_KAFKA_RESP_ERR_NO_ERROR) << rd_kafka_err2name(res[1].first);
  EXPECT_EQ(res[1].second, 10) << "deleting up to the end (-1) moves the low watermark to the high watermark";

  EXPECT_EQ(watermarks(admin.get(), topic, 0), std::make_pair(int64_t{600}, int64_t{1000}));
  EXPECT_EQ(watermarks(admin.get(), topic, 1), std::make_pair(int64_t{10}, int64_t{10}));

  res = delete_records(admin.get(), topic, {{0, 5000}});
  ASSERT_EQ(res.size(), 1u);
  EXPECT_EQ(res[0].first, RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE) << "deleting past the high watermark: "
                                                                  << rd_kafka_err2name(res[0].first);
  EXPECT_EQ(watermarks(admin.get(), topic, 0).first, 600) << "a failed DeleteRecords must not move the watermark";

  // A timestamp before every record finds the first offset still in the log.
  EXPECT_EQ(offset_for_time(admin.get(), topic, 0, base_ts - 1000), 600);
  EXPECT_EQ(offset_for_time(admin.get(), topic, 0, base_ts + 700), 700);

  // Consuming from the beginning starts at the low watermark.
  std::map<int32_t, std::vector<record*>> want;
  for (size_t k = 600; k < log.by_partition[0].size(); ++k) want[0].push_back(log.by_partition[0][k]);
  consume_and_check(topic, want, {{0, 600}});
}

bool reachable(const std::string& hostport, std::string* why) {
  const auto colon = hostport.rfind(':');
  if (colon == std::string::npos) {
    *why = "expected HOST:PORT";
    return false;
  }
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* ai = nullptr;
  const int rc = getaddrinfo(hostport.substr(0, colon).c_str(), hostport.substr(colon + 1).c_str(), &hints, &ai);
  if (rc != 0) {
    *why = gai_strerror(rc);
    return false;
  }
  const int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const bool ok = fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) == 0;
  if (!ok) *why = std::strerror(errno);
  if (fd >= 0) close(fd);
  freeaddrinfo(ai);
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (const char* e = std::getenv("SLUICE_BOOTSTRAP")) g_bootstrap = e;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--bootstrap" && i + 1 < argc)
      g_bootstrap = argv[++i];
    else if (a.rfind("--bootstrap=", 0) == 0)
      g_bootstrap = a.substr(12);
    else if (a[0] != '-')
      g_bootstrap = a;
  }
  if (g_bootstrap.empty()) {
    std::fprintf(stderr, "usage: %s [--bootstrap HOST:PORT] [gtest flags]   (or set SLUICE_BOOTSTRAP)\n", argv[0]);
    return 2;
  }
  if (const char* e = std::getenv("SLUICE_BROKER_ID")) g_broker_id = std::atoi(e);
  if (const char* e = std::getenv("SLUICE_CLIENTS_KNOWN_GAPS")) {
    std::string list = e;
    for (size_t at = 0; at <= list.size();) {
      const size_t comma = std::min(list.find(',', at), list.size());
      if (comma > at) g_known_gaps.insert(list.substr(at, comma - at));
      at = comma + 1;
    }
  }
  const char* adv = std::getenv("SLUICE_ADVERTISED");
  g_advertised = adv ? adv : g_bootstrap;
  std::string why;
  if (!reachable(g_bootstrap, &why)) {
    std::fprintf(stderr,
                 "FAILED: cannot connect to the broker at %s: %s -- is brokerd running with the kafka plugin "
                 "listening there? (tests/clients/run_with_broker.py starts one)\n",
                 g_bootstrap.c_str(), why.c_str());
    return 1;
  }
  std::printf("librdkafka %s against %s (broker id %d)\n", rd_kafka_version_str(), g_bootstrap.c_str(), g_broker_id);
  const int rc = RUN_ALL_TESTS();
  for (const auto& gap : g_known_gaps) {
    if (g_gaps_seen.count(gap))
      std::printf("KNOWN GAP %s: tolerated %d time(s) (SLUICE_CLIENTS_KNOWN_GAPS)\n", gap.c_str(), g_gaps_seen[gap]);
    else
      std::printf("NOTE: known gap %s was not observed in this run; if the broker fixed it, remove it from "
                  "SLUICE_CLIENTS_KNOWN_GAPS for this test in tests/clients/CMakeLists.txt\n", gap.c_str());
  }
  rd_kafka_wait_destroyed(10000);
  return rc;
}
