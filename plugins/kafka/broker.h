// The kafka plugin's state and the pieces its request handlers share.
//
//   broker          one per process: settings, the metadata authority
//                   (shard 0), and per-shard state
//   shard_state     what one shard owns: its partitions, its copy of the
//                   metadata image, its listeners and connections
//   request_context what a handler knows about the request it serves
//   response        the encoded body plus the buffers it references
//
// Handlers (handlers_*.cc) decode with the generated codecs, do their work
// on the shards that own the partitions (broker::on_owner), and encode the
// response in the version the client asked for.
#pragma once

#include "errors.h"
#include "group_coordinator.h"
#include "kafka_config.h"
#include "metadata_image.h"
#include "partitions.h"
#include "topic_manager.h"

#include <sluice/kafka/wire.h>
#include <sluice/sdk/runtime.h>

#include <atomic>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace sluice::kafka {

struct connection_state {
  connection_state() = default;
  connection_state(const connection_state&) = delete;
  connection_state& operator=(const connection_state&) = delete;
  sdk::abort_source abort;
  // Responses leave in request order. A request whose handler deferred part
  // of its work (response::finish) gets sequence number n and sends when
  // sent == n; the connection meanwhile reads and starts later requests.
  uint64_t next_seq = 0;
  uint64_t sent = 0;
  uint32_t deferred = 0;  // finishes running
  sdk::condition turn;    // sent or deferred changed
  uint64_t last_active_ns = 0;
  size_t listener = 0;
  std::string peer;
  std::string client_software_name;
  std::string client_software_version;
};

// A fetch session (KIP-227): the partitions a client fetches, so later
// requests send only what changed and responses carry only partitions with
// news. Kept by the shard that serves the client's connection.
struct fetch_session {
  struct entry {
    std::string topic;
    uuid topic_id;
    int32_t partition = 0;
    int64_t fetch_offset = 0;
    int32_t max_bytes = 0;
    int64_t high_watermark = -1;  // as last sent, to tell what changed
    int64_t last_stable_offset = -1;
    int64_t log_start_offset = -1;
  };
  int32_t id = 0;
  int32_t next_epoch = 1;
  uint64_t last_used_ns = 0;
  std::vector<entry> parts;  // in the order the client added them
};

// Traffic of one topic through one shard's connections (the kafka metrics
// source sums the shards at scrape time).
struct topic_traffic {
  uint64_t bytes_in = 0;
  uint64_t records_in = 0;
  uint64_t bytes_out = 0;
};

struct shard_state {
  explicit shard_state(const kafka_config& base, int32_t storage_service)
      : cfg(base), parts(cfg, storage_service), groups(cfg, parts) {}
  shard_state(const shard_state&) = delete;
  shard_state& operator=(const shard_state&) = delete;
  // This shard's settings: the broker's plus the live cluster_config
  // overrides of `image` (set by broker::publish before the partitions see
  // the image). parts and groups read it by reference.
  kafka_config cfg;
  partition_table parts;
  group_coordinator groups;  // the groups whose offsets partition this shard owns
  image_ptr image;  // the metadata this shard serves from
  std::vector<int32_t> listen_fds;
  sdk::abort_source stop;
  sdk::gate tasks;
  std::list<connection_state> connections;
  std::map<int32_t, fetch_session> fetch_sessions;
  std::unordered_map<std::string, topic_traffic> traffic;
  // Cluster mode: the leader and leader epoch of every partition some shard
  // of this broker hosts, as last reported, and of the others as their
  // leaders announce them (key: broker::leader_key).
  std::unordered_map<std::string, std::pair<int32_t, int32_t>> leaders;
  // Cluster mode: Kafka's ISR as the partition's leader last reported or
  // announced it, with the term it was reported in (same keys).
  std::unordered_map<std::string, std::pair<int32_t, std::vector<int32_t>>> in_sync;
  // The block of producer ids this shard hands out (InitProducerId); shard
  // 0 reserves blocks durably (topic_manager::allocate_producer_ids).
  int64_t next_producer_id = 0;
  int64_t producer_id_block_end = 0;
};

struct request_context {
  int16_t api_key = 0;
  int16_t api_version = 0;
  int32_t correlation_id = 0;
  std::optional<std::string> client_id;
  connection_state* conn = nullptr;
};

struct response {
  writer body;
  std::vector<sdk::buffer> keep;  // buffers body references (record data)
  bool send = true;               // false: acks=0 produce, nothing goes back
  bool close = false;             // close the connection after this one
  uint32_t errors = 0;            // error codes in the answer (kafka_request_errors_total)
  // Deferred second half of a handler (Produce with acks=-1: waiting for the
  // flush, then encoding). The connection runs it beside the requests that
  // follow and sends the response in order. It must own what it uses: the
  // request frame is gone by then.
  std::function<sdk::task<void>(response&)> finish;
};

class broker {
 public:
  // The settings in force since start: the YAML's with the restart-only
  // cluster_config overrides applied. Per-shard effective values, with the
  // live overrides, are shard_state::cfg.
  kafka_config cfg;
  kafka_config yaml_cfg;  // the YAML's alone: the base of cluster_config changes
  int32_t node_id = 0;
  int32_t storage_service = -1;
  // Cluster mode (the raft plugin is loaded): its services, and the
  // controller's leader as last seen (-1: none known).
  int32_t raft_partition = -1;
  int32_t raft_controller = -1;
  int32_t controller_id = -1;  // written on shard 0, read anywhere (advisory)
  std::atomic<bool> metadata_ready{false};  // cluster mode: the image caught up with the controller
  bool clustered() const noexcept { return raft_partition >= 0; }
  // Cluster mode: the leader and epoch of a partition as this shard knows
  // them ({-1, -1} when unknown).
  std::pair<int32_t, int32_t> leader_of(const std::string& topic, int32_t partition);
  // Cluster mode: the ISR the partition's current leader reported for its
  // term (at most a leader announcement old), empty when none is known.
  std::vector<int32_t> in_sync_of(const std::string& topic, int32_t partition);
  // Records an ISR reported for `key` in `term` (a later term replaces it).
  void note_in_sync(const std::string& key, int32_t term, std::vector<int32_t> isr);
  // True when `key` (leader_key()) names a topic of `img` at its revision.
  static bool leader_key_current(const metadata_image& img, const std::string& key);
  // The key of shard_state::leaders.
  // (A re-created topic's partitions are new groups whose terms start over.)
  static std::string leader_key(const std::string& topic, int32_t partition, int64_t revision) {
    std::string key = topic;
    key.push_back('\0');
    key += std::to_string(partition);
    key.push_back('\0');
    key += std::to_string(revision);
    return key;
  }
  sdk::shard_invoker invoker;
  std::unique_ptr<topic_manager> topics;  // shard 0 only
  sdk::per_shard<shard_state> shards;
  std::vector<uint16_t> bound_ports;  // per listener, once shard 0 bound it

  // Metrics (registered at configure; per-shard cells, summed at scrape).
  struct api_metrics {
    sdk::metric requests;    // kafka_requests_total{api="..."}
    sdk::metric latency_us;  // kafka_request_latency_us{api="..."}
    sdk::metric errors;      // kafka_request_errors_total{api="..."}
  };
  std::vector<api_metrics> metrics_by_api;  // indexed by API key; empty entries for APIs not served
  sdk::metric m_connections, m_connections_total, m_bad_requests, m_bytes_in, m_bytes_out;

  shard_state& local() { return shards.local(); }
  const image_ptr& image() { return local().image; }

  // Runs fn(parts) on the shard that owns topic/partition.
  sdk::task<void> on_owner(const std::string& topic, int32_t partition,
                           std::function<sdk::task<void>(partition_table&)> fn);
  // Runs fn on the shard coordinating group_id (its __consumer_offsets partition's owner).
  sdk::task<void> on_group(const std::string& group_id, std::function<sdk::task<void>(group_coordinator&)> fn);
  // Runs fn on shard 0 (the metadata authority) and waits.
  sdk::task<void> on_controller(std::function<sdk::task<void>(topic_manager&)> fn);
  // Installs img on every shard (called by the topic manager on shard 0).
  sdk::task<void> publish(image_ptr img);

  // The host and port this node advertises for a listener.
  std::pair<std::string, int32_t> advertised(size_t listener) const;

  // Long poll: returns once any position has data (each shard's list is
  // watched on that shard), or after timeout_ms.
  sdk::task<void> wait_for_data(std::map<uint32_t, std::vector<fetch_position>> by_shard, uint64_t timeout_ms);

  // Creates the topics that are missing, when auto-creation is on (Metadata,
  // Produce). Returns the image after the creation.
  sdk::task<image_ptr> auto_create(const std::vector<std::string>& names);
};

// Encodes a response whose error is its top-level error_code, counting it
// for kafka_request_errors_total.
template <class Resp>
void encode_answer(const Resp& resp, int16_t version, response& out) {
  out.errors += resp.error_code != 0;
  resp.encode(out.body, version);
}

// Runs every task in fns concurrently and returns when all finished.
sdk::task<void> run_all(std::vector<std::function<sdk::task<void>()>> fns);

// The request handlers, one per API key; false if the body does not decode
// (the connection is then closed, as Kafka does).
using handler_fn = sdk::task<bool> (*)(broker&, request_context&, reader&, response&);

struct api_handler {
  int16_t api_key;
  int16_t min_version;
  int16_t max_version;
  handler_fn fn;
};

// Every API this broker serves, with the versions it supports (already
// clipped to the spec's range). ApiVersions advertises exactly these.
const std::vector<api_handler>& api_handlers();
const api_handler* find_handler(int16_t api_key);

// handlers_meta.cc
sdk::task<bool> handle_api_versions(broker&, request_context&, reader&, response&);
sdk::task<bool> handle_metadata(broker&, request_context&, reader&, response&);
sdk::task<bool> handle_create_topics(broker&, request_context&, reader&, response&);
sdk::task<bool> handle_delete_topics(broker&, request_context&, reader&, response&);
sdk::task<bool> handle_create_partitions(broker&, request_context&, reader&, response&);
sdk::task<bool> handle_describe_configs(broker&, request_context&, reader&, response&);
sdk::task<bool> handle_alter_configs(broker&, request_context&, reader&, response&);
sdk::task<bool> handle_incremental_alter_configs(broker&, request_context&, reader&, response&);
sdk::task<bool> handle_describe_cluster(broker&, request_context&, reader&, response&);
sdk::task<bool> handle_describe_log_dirs(broker&, request_context&, reader&, response&);
// handlers_reassign.cc
sdk::task<bool> handle_alter_partition_reassignments(broker&, request_context&, reader&, response&);
sdk::task<bool> handle_list_partition_reassignments(broker&, request_context&, reader&, response&);
// handlers_group.cc
sdk::task<bool> handle_find_coordinator(broker&, request_context&, reader&, response&);
sdk::task<bool> handle_join_group(broker&, request_context&, reader&, response&);
sdk::task<bool> handle_sync_group(broker&, request_context&, reader&, response&);
sdk::task<bool> handle_heartbeat(broker&, request_context&, reader&, response&);
sdk::task<bool> handle_leave_group(broker&, request_context&, reader&, response&);
sdk::task<bool> handle_offset_commit(broker&, request_context&, reader&, response&);
sdk::task<bool> handle_offset_fetch(broker&, request_context&, reader&, response&);
sdk::task<bool> handle_describe_groups(broker&, request_context&, reader&, response&);
sdk::task<bool> handle_list_groups(broker&, request_context&, reader&, response&);
sdk::task<bool> handle_delete_groups(broker&, request_context&, reader&, response&);
sdk::task<bool> handle_offset_delete(broker&, request_context&, reader&, response&);
// handlers_producer.cc
sdk::task<bool> handle_init_producer_id(broker&, request_context&, reader&, response&);
sdk::task<bool> handle_describe_producers(broker&, request_context&, reader&, response&);
// handlers_data.cc
sdk::task<bool> handle_produce(broker&, request_context&, reader&, response&);
sdk::task<bool> handle_fetch(broker&, request_context&, reader&, response&);
sdk::task<bool> handle_list_offsets(broker&, request_context&, reader&, response&);
sdk::task<bool> handle_offset_for_leader_epoch(broker&, request_context&, reader&, response&);
sdk::task<bool> handle_delete_records(broker&, request_context&, reader&, response&);

// The ApiVersions answer to a client that asked for a version this broker
// does not know: version 0, UNSUPPORTED_VERSION and the supported ranges.
void unsupported_api_versions_response(response& out);

}  // namespace sluice::kafka
