#pragma once
// librdkafka (C API) for the CLI: one client handle with the settings'
// brokers and properties, metadata, offsets, admin requests, and the mapping
// of Kafka errors to exit codes and Kafka's error names.

#include <librdkafka/rdkafka.h>

#include <compare>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cli_error.h"
#include "settings.h"

namespace sluice::cli {

// Kafka's name for a broker error ("UNKNOWN_TOPIC_OR_PARTITION"), or
// librdkafka's for a local one ("_TIMED_OUT").
std::string kafka_error_name(rd_kafka_resp_err_t err);
// unreachable for timeouts and transport errors, not_found for unknown
// topics, partitions and groups, failed otherwise.
exit_code exit_code_for(rd_kafka_resp_err_t err);
// Throws "<context>: <NAME>: <message>" with exit_code_for(err). An empty
// message is replaced by librdkafka's description of err.
[[noreturn]] void throw_kafka(rd_kafka_resp_err_t err, const std::string& context, const std::string& message = "");

// Tries a TCP connection to each bootstrap broker; exit_code::unreachable
// naming every address and why when none accepts.
void check_brokers_reachable(const settings& s);

struct topic_partition {
  std::string topic;
  int32_t partition = 0;
  auto operator<=>(const topic_partition&) const = default;
};

struct partition_info {
  int32_t id = 0;
  int32_t leader = -1;
  std::vector<int32_t> replicas;
  std::vector<int32_t> isr;
  rd_kafka_resp_err_t error = RD_KAFKA_RESP_ERR_NO_ERROR;
};

struct topic_info {
  std::string name;
  std::vector<partition_info> partitions;  // sorted by id
  rd_kafka_resp_err_t error = RD_KAFKA_RESP_ERR_NO_ERROR;
  bool internal = false;  // __consumer_offsets, __transaction_state
  int32_t replication_factor() const;
  std::vector<int32_t> partition_ids() const;
};

struct broker_info {
  int32_t id = 0;
  std::string host;
  int port = 0;
};

struct cluster_metadata {
  std::vector<broker_info> brokers;  // sorted by id
  std::vector<topic_info> topics;    // sorted by name
  // The topic, or exit_code::not_found naming it.
  const topic_info& require_topic(const std::string& name) const;
  const topic_info* find_topic(const std::string& name) const;
};

struct watermarks {
  int64_t log_start = -1;
  int64_t high = -1;
};

// Frees an admin result event.
struct event_deleter {
  void operator()(rd_kafka_event_t* ev) const { rd_kafka_event_destroy(ev); }
};
using event_ptr = std::unique_ptr<rd_kafka_event_t, event_deleter>;

// Owns one librdkafka object freed by `destroy` (admin request objects:
// rd_ptr<rd_kafka_NewTopic_t, rd_kafka_NewTopic_destroy>).
template <typename T, void (*destroy)(T*)>
struct rd_deleter {
  void operator()(T* p) const { destroy(p); }
};
template <typename T, void (*destroy)(T*)>
using rd_ptr = std::unique_ptr<T, rd_deleter<T, destroy>>;

// The raw pointers of owned objects, for librdkafka's array arguments.
template <typename T, void (*destroy)(T*)>
std::vector<T*> raw_pointers(const std::vector<rd_ptr<T, destroy>>& owned) {
  std::vector<T*> raw;
  for (const auto& p : owned) {
    raw.push_back(p.get());
  }
  return raw;
}

// Frees a partition list.
struct partition_list_deleter {
  void operator()(rd_kafka_topic_partition_list_t* list) const { rd_kafka_topic_partition_list_destroy(list); }
};
using partition_list_ptr = std::unique_ptr<rd_kafka_topic_partition_list_t, partition_list_deleter>;

class kafka_client {
 public:
  // Called with the configuration before the handle is created (callbacks, properties).
  using configure_fn = std::function<void(rd_kafka_conf_t*)>;

  // A producer handle (also used for admin requests and metadata) or a consumer.
  // `properties` are set before the user's -X properties, which win.
  kafka_client(const settings& s, rd_kafka_type_t type,
               const std::vector<std::pair<std::string, std::string>>& properties = {},
               const configure_fn& configure = nullptr);
  ~kafka_client();
  kafka_client(const kafka_client&) = delete;
  kafka_client& operator=(const kafka_client&) = delete;

  rd_kafka_t* handle() const { return _rk; }
  const settings& config() const { return _settings; }
  // The opaque a configure_fn's callbacks receive is this client; user_state() is for the command.
  void* user_state() const { return _user_state; }
  void set_user_state(void* state) { _user_state = state; }
  // The last error librdkafka reported through its error callback (e.g. all brokers down), or "".
  const std::string& last_error() const { return _last_error; }
  rd_kafka_resp_err_t last_error_code() const { return _last_error_code; }

  // Metadata for every topic (never auto-creates).
  cluster_metadata metadata();
  // Metadata for one topic, the way a producer asks for it (the broker may
  // auto-create it). Exit 4 when the topic does not exist afterwards.
  void require_topic_for_produce(const std::string& topic);
  // Log start and high watermark of each partition.
  std::map<topic_partition, watermarks> query_watermarks(const std::vector<topic_partition>& partitions);
  // The first offset whose timestamp is >= timestamp_ms in each partition (-1: none; past the end).
  std::map<topic_partition, int64_t> offsets_for_timestamp(const std::vector<topic_partition>& partitions,
                                                           int64_t timestamp_ms);

  // Runs one admin request: `start` calls rd_kafka_<Op>(handle, ..., options, queue).
  // Waits for the result event; a request-level error is thrown with `what` as context.
  event_ptr run_admin(rd_kafka_admin_op_t op, const std::string& what,
                      const std::function<void(rd_kafka_AdminOptions_t*, rd_kafka_queue_t*)>& start,
                      bool validate_only = false);

  // Throws a timeout error that adds last_error() when it tells more.
  [[noreturn]] void throw_timeout(const std::string& what) const;

 private:
  static void on_error(rd_kafka_t* rk, int err, const char* reason, void* opaque);
  static void on_log(const rd_kafka_t* rk, int level, const char* fac, const char* buf);

  settings _settings;
  rd_kafka_t* _rk = nullptr;
  void* _user_state = nullptr;
  std::string _last_error;
  rd_kafka_resp_err_t _last_error_code = RD_KAFKA_RESP_ERR_NO_ERROR;
};

partition_list_ptr make_partition_list(const std::vector<topic_partition>& partitions, int64_t offset);

}  // namespace sluice::cli
