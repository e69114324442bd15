#include "kafka_client.h"

#include <algorithm>
#include <cstdio>
#include <map>

#include "net.h"

namespace sluice::cli {

namespace {

// Where librdkafka's name differs from Kafka's (the protocol guide's error table).
const std::map<int, const char*>& kafka_names() {
  static const std::map<int, const char*> names = {
      {-1, "UNKNOWN_SERVER_ERROR"},
      {0, "NONE"},
      {2, "CORRUPT_MESSAGE"},
      {3, "UNKNOWN_TOPIC_OR_PARTITION"},
      {4, "INVALID_FETCH_SIZE"},
      {6, "NOT_LEADER_OR_FOLLOWER"},
      {10, "MESSAGE_TOO_LARGE"},
      {11, "STALE_CONTROLLER_EPOCH"},
      {17, "INVALID_TOPIC_EXCEPTION"},
      {98, "SNAPSHOT_NOT_FOUND"},
      {99, "POSITION_OUT_OF_RANGE"},
      {100, "UNKNOWN_TOPIC_ID"},
      {101, "DUPLICATE_BROKER_REGISTRATION"},
      {102, "BROKER_ID_NOT_REGISTERED"},
      {103, "INCONSISTENT_TOPIC_ID"},
      {104, "INCONSISTENT_CLUSTER_ID"},
      {105, "TRANSACTIONAL_ID_NOT_FOUND"},
      {106, "FETCH_SESSION_TOPIC_ID_ERROR"},
      {107, "INELIGIBLE_REPLICA"},
      {108, "NEW_LEADER_ELECTED"},
  };
  return names;
}

const std::string internal_topics[] = {"__consumer_offsets", "__transaction_state"};

}  // namespace

std::string kafka_error_name(rd_kafka_resp_err_t err) {
  if (auto it = kafka_names().find(static_cast<int>(err)); it != kafka_names().end()) {
    return it->second;
  }
  return rd_kafka_err2name(err);
}

exit_code exit_code_for(rd_kafka_resp_err_t err) {
  constexpr int unknown_topic_id = 100;  // newer than librdkafka 2.0.2's enum
  if (static_cast<int>(err) == unknown_topic_id) {
    return exit_code::not_found;
  }
  switch (err) {
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TIMED_OUT_QUEUE:
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
    case RD_KAFKA_RESP_ERR__RESOLVE:
    case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
      return exit_code::unreachable;
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    case RD_KAFKA_RESP_ERR_GROUP_ID_NOT_FOUND:
      return exit_code::not_found;
    default:
      return exit_code::failed;
  }
}

void throw_kafka(rd_kafka_resp_err_t err, const std::string& context, const std::string& message) {
  std::string text = context + ": " + kafka_error_name(err);
  const std::string detail = message.empty() ? rd_kafka_err2str(err) : message;
  if (!detail.empty()) {
    text += ": " + detail;
  }
  throw cli_error(exit_code_for(err), text);
}

void check_brokers_reachable(const settings& s) {
  const deadline until = deadline_after_ms(std::min(s.timeout_ms, 10000));
  std::string errors;
  for (const std::string& item : split_list(s.brokers)) {
    host_port hp = parse_host_port(item, 9092, "--brokers");
    try {
      tcp_connection probe(hp, until, "broker " + hp.to_string());
      return;
    } catch (const cli_error& e) {
      errors += std::string(errors.empty() ? "" : "; ") + e.what();
    }
  }
  throw_unreachable(errors + " (brokers from " + s.brokers_source + ")");
}

int32_t topic_info::replication_factor() const {
  return partitions.empty() ? 0 : static_cast<int32_t>(partitions.front().replicas.size());
}

std::vector<int32_t> topic_info::partition_ids() const {
  std::vector<int32_t> ids;
  for (const auto& p : partitions) {
    ids.push_back(p.id);
  }
  return ids;
}

const topic_info* cluster_metadata::find_topic(const std::string& name) const {
  for (const auto& t : topics) {
    if (t.name == name && t.error != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
      return &t;
    }
  }
  return nullptr;
}

const topic_info& cluster_metadata::require_topic(const std::string& name) const {
  const topic_info* t = find_topic(name);
  if (t == nullptr) {
    throw_not_found("topic '" + name + "' does not exist");
  }
  if (t->error != RD_KAFKA_RESP_ERR_NO_ERROR) {
    throw_kafka(t->error, "cannot read the metadata of topic '" + name + "'");
  }
  return *t;
}

kafka_client::kafka_client(const settings& s, rd_kafka_type_t type,
                           const std::vector<std::pair<std::string, std::string>>& properties,
                           const configure_fn& configure)
    : _settings(s) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char errstr[512];
  auto set = [&](const std::string& name, const std::string& value, bool from_user) {
    if (rd_kafka_conf_set(conf, name.c_str(), value.c_str(), errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      if (from_user) {
        throw_usage("bad -X " + name + "=" + value + ": " + errstr);
      }
      throw_failed("cannot configure librdkafka (" + name + "=" + value + "): " + errstr);
    }
  };
  set("bootstrap.servers", s.brokers, false);
  set("client.id", "sluice-cli", false);
  set("socket.timeout.ms", std::to_string(std::max(s.timeout_ms, 10)), false);
  // Connect errors come back as exit code 3; do not retry a dead address for long.
  set("reconnect.backoff.max.ms", "1000", false);
  for (const auto& [name, value] : properties) {
    set(name, value, false);
  }
  for (const auto& [name, value] : s.kafka_properties) {
    set(name, value, true);
  }
  rd_kafka_conf_set_opaque(conf, this);
  rd_kafka_conf_set_error_cb(conf, &kafka_client::on_error);
  rd_kafka_conf_set_log_cb(conf, &kafka_client::on_log);
  if (configure) {
    configure(conf);
  }
  _rk = rd_kafka_new(type, conf, errstr, sizeof errstr);
  if (_rk == nullptr) {
    rd_kafka_conf_destroy(conf);
    throw_failed(std::string("cannot create the Kafka client: ") + errstr);
  }
}

kafka_client::~kafka_client() {
  if (_rk != nullptr) {
    rd_kafka_destroy(_rk);
  }
}

void kafka_client::on_error(rd_kafka_t*, int err, const char* reason, void* opaque) {
  auto* self = static_cast<kafka_client*>(opaque);
  self->_last_error_code = static_cast<rd_kafka_resp_err_t>(err);
  self->_last_error = kafka_error_name(self->_last_error_code) + ": " + reason;
  if (self->_settings.verbose) {
    std::fprintf(stderr, "sluice: librdkafka: %s\n", self->_last_error.c_str());
  }
}

void kafka_client::on_log(const rd_kafka_t* rk, int level, const char* fac, const char* buf) {
  auto* self = static_cast<kafka_client*>(rd_kafka_opaque(rk));
  if (self != nullptr && self->_settings.verbose) {
    std::fprintf(stderr, "sluice: librdkafka %d %s: %s\n", level, fac, buf);
  }
}

void kafka_client::throw_timeout(const std::string& what) const {
  std::string text = what + ": no answer from the brokers (" + _settings.brokers + ", from " +
                     _settings.brokers_source + ") within " + std::to_string(_settings.timeout_ms) + " ms";
  if (!_last_error.empty()) {
    text += " (last error: " + _last_error + ")";
  }
  throw_unreachable(text);
}

cluster_metadata kafka_client::metadata() {
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_resp_err_t err = rd_kafka_metadata(_rk, 1, nullptr, &md, _settings.timeout_ms);
  if (err == RD_KAFKA_RESP_ERR__TIMED_OUT || err == RD_KAFKA_RESP_ERR__TRANSPORT) {
    throw_timeout("cannot read the cluster metadata");
  }
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    throw_kafka(err, "cannot read the cluster metadata");
  }
  cluster_metadata result;
  for (int i = 0; i < md->broker_cnt; ++i) {
    result.brokers.push_back({md->brokers[i].id, md->brokers[i].host, md->brokers[i].port});
  }
  for (int i = 0; i < md->topic_cnt; ++i) {
    const rd_kafka_metadata_topic_t& t = md->topics[i];
    topic_info info;
    info.name = t.topic;
    info.error = t.err;
    info.internal = std::find(std::begin(internal_topics), std::end(internal_topics), info.name) !=
                    std::end(internal_topics);
    for (int p = 0; p < t.partition_cnt; ++p) {
      const rd_kafka_metadata_partition_t& mp = t.partitions[p];
      partition_info pi;
      pi.id = mp.id;
      pi.leader = mp.leader;
      pi.replicas.assign(mp.replicas, mp.replicas + mp.replica_cnt);
      pi.isr.assign(mp.isrs, mp.isrs + mp.isr_cnt);
      pi.error = mp.err;
      info.partitions.push_back(std::move(pi));
    }
    std::sort(info.partitions.begin(), info.partitions.end(),
              [](const partition_info& a, const partition_info& b) { return a.id < b.id; });
    result.topics.push_back(std::move(info));
  }
  rd_kafka_metadata_destroy(md);
  std::sort(result.brokers.begin(), result.brokers.end(),
            [](const broker_info& a, const broker_info& b) { return a.id < b.id; });
  std::sort(result.topics.begin(), result.topics.end(),
            [](const topic_info& a, const topic_info& b) { return a.name < b.name; });
  return result;
}

void kafka_client::require_topic_for_produce(const std::string& topic) {
  rd_kafka_topic_t* rkt = rd_kafka_topic_new(_rk, topic.c_str(), nullptr);
  if (rkt == nullptr) {
    throw_kafka(rd_kafka_last_error(), "cannot produce to topic '" + topic + "'");
  }
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_resp_err_t err = rd_kafka_metadata(_rk, 0, rkt, &md, _settings.timeout_ms);
  rd_kafka_topic_destroy(rkt);
  if (err == RD_KAFKA_RESP_ERR__TIMED_OUT || err == RD_KAFKA_RESP_ERR__TRANSPORT) {
    throw_timeout("cannot read the metadata of topic '" + topic + "'");
  }
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    throw_kafka(err, "cannot read the metadata of topic '" + topic + "'");
  }
  rd_kafka_resp_err_t topic_err = md->topic_cnt == 1 ? md->topics[0].err : RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
  rd_kafka_metadata_destroy(md);
  if (topic_err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
    throw_not_found("topic '" + topic + "' does not exist (and the broker does not create topics on use)");
  }
  // LEADER_NOT_AVAILABLE right after auto-creation is fine: librdkafka waits for the leader.
  if (topic_err != RD_KAFKA_RESP_ERR_NO_ERROR && topic_err != RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE) {
    throw_kafka(topic_err, "cannot produce to topic '" + topic + "'");
  }
}

partition_list_ptr make_partition_list(const std::vector<topic_partition>& partitions, int64_t offset) {
  partition_list_ptr list(rd_kafka_topic_partition_list_new(static_cast<int>(partitions.size())));
  for (const auto& tp : partitions) {
    rd_kafka_topic_partition_list_add(list.get(), tp.topic.c_str(), tp.partition)->offset = offset;
  }
  return list;
}

std::map<topic_partition, int64_t> kafka_client::offsets_for_timestamp(
    const std::vector<topic_partition>& partitions, int64_t timestamp_ms) {
  std::map<topic_partition, int64_t> result;
  if (partitions.empty()) {
    return result;
  }
  // ListOffsets with the timestamp (or -1 latest, -2 earliest), batched per leader.
  partition_list_ptr list = make_partition_list(partitions, timestamp_ms);
  rd_kafka_resp_err_t err = rd_kafka_offsets_for_times(_rk, list.get(), _settings.timeout_ms);
  if (err == RD_KAFKA_RESP_ERR__TIMED_OUT || err == RD_KAFKA_RESP_ERR__TRANSPORT) {
    throw_timeout("cannot list offsets");
  }
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    throw_kafka(err, "cannot list offsets");
  }
  for (int i = 0; i < list->cnt; ++i) {
    const rd_kafka_topic_partition_t& p = list->elems[i];
    if (p.err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      throw_kafka(p.err, "cannot list the offsets of " + std::string(p.topic) + "/" + std::to_string(p.partition));
    }
    result[{p.topic, p.partition}] = p.offset;
  }
  return result;
}

std::map<topic_partition, watermarks> kafka_client::query_watermarks(const std::vector<topic_partition>& partitions) {
  auto earliest = offsets_for_timestamp(partitions, RD_KAFKA_OFFSET_BEGINNING);
  auto latest = offsets_for_timestamp(partitions, RD_KAFKA_OFFSET_END);
  std::map<topic_partition, watermarks> result;
  for (const auto& tp : partitions) {
    result[tp] = watermarks{earliest[tp], latest[tp]};
  }
  return result;
}

event_ptr kafka_client::run_admin(rd_kafka_admin_op_t op, const std::string& what,
                                  const std::function<void(rd_kafka_AdminOptions_t*, rd_kafka_queue_t*)>& start,
                                  bool validate_only) {
  rd_kafka_AdminOptions_t* options = rd_kafka_AdminOptions_new(_rk, op);
  char errstr[512];
  rd_kafka_AdminOptions_set_request_timeout(options, _settings.timeout_ms, errstr, sizeof errstr);
  // Only some requests have an operation timeout or validate_only; the others refuse them, which is fine.
  rd_kafka_AdminOptions_set_operation_timeout(options, _settings.timeout_ms, errstr, sizeof errstr);
  if (validate_only &&
      rd_kafka_AdminOptions_set_validate_only(options, 1, errstr, sizeof errstr) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    rd_kafka_AdminOptions_destroy(options);
    throw_usage(what + ": --dry-run is not supported here (" + errstr + ")");
  }
  rd_kafka_queue_t* queue = rd_kafka_queue_new(_rk);
  start(options, queue);
  // The request times out on its own after timeout_ms; the margin covers connecting.
  rd_kafka_event_t* ev = rd_kafka_queue_poll(queue, _settings.timeout_ms + 5000);
  rd_kafka_queue_destroy(queue);
  rd_kafka_AdminOptions_destroy(options);
  if (ev == nullptr) {
    throw_timeout(what);
  }
  event_ptr result(ev);
  rd_kafka_resp_err_t err = rd_kafka_event_error(ev);
  if (err == RD_KAFKA_RESP_ERR__TIMED_OUT || err == RD_KAFKA_RESP_ERR__TRANSPORT) {
    throw_timeout(what);
  }
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    const char* message = rd_kafka_event_error_string(ev);
    throw_kafka(err, what, message ? message : "");
  }
  return result;
}

}  // namespace sluice::cli
