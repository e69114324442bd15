// The storage plugin: serves partition logs (partition_log.h) to other
// plugins through the "storage.log" service (proto/sluice/storage.proto).
//
// A partition lives on the shard that opened it; callers send every request
// for it to that shard. Each shard owns its logs, a batch cache with its
// share of the memory budget, and a retention loop. Record batches arrive
// and leave as buffer handles; only control fields are protobuf.
#include "fault_hook.h"
#include "partition_log.h"
#include "sluice/storage.pb.h"

#include <nlohmann/json.hpp>
#include <sluice/sdk/admin.h>

#include <sluice/sdk/plugin.h>

#include <fcntl.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_map>

namespace sluice::storage {
namespace {

using sdk::task;

// Kafka's legal topic names: [a-zA-Z0-9._-]{1,249}, not "." or "..".
bool valid_topic(const std::string& t) {
  if (t.empty() || t.size() > 249 || t == "." || t == "..") return false;
  return std::all_of(t.begin(), t.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == '-';
  });
}

StorageStatus status_of(const error& e) {
  if (e.code.category() == storage_category()) return static_cast<StorageStatus>(e.code.value());
  return STORAGE_STATUS_IO_ERROR;
}

// One open (or opening) partition on a shard.
struct partition_entry {
  std::unique_ptr<partition_log> log;
  bool opening = true;
  error open_error;
  sdk::condition opened;
  int64_t revision = 0;
};

struct shard_state {
  explicit shard_state(uint64_t cache_bytes) : cache(cache_bytes) {}
  batch_cache cache;
  // Shared: a request keeps its partition alive while it waits on it.
  std::unordered_map<std::string, std::shared_ptr<partition_entry>> partitions;
  sdk::abort_source stop;
  sdk::gate tasks;
};

class storage_plugin final : public sdk::plugin {
 public:
  void configure(sdk::config_map& cfg) override {
    _root = std::string(sdk::api().data_dir(sdk::host())) + "/" + cfg.get_string("directory", "storage");
    log_config& d = _defaults;
    d.segment_bytes = cfg.get_uint("segment_bytes", d.segment_bytes, 64 << 10, 1ull << 40);
    d.segment_ms = static_cast<int64_t>(cfg.get_uint("segment_ms", static_cast<uint64_t>(d.segment_ms), 1, INT64_MAX));
    d.retention_bytes = get_limit(cfg, "retention_bytes", d.retention_bytes);
    d.retention_ms = get_limit(cfg, "retention_ms", d.retention_ms);
    d.index_interval_bytes =
        static_cast<uint32_t>(cfg.get_uint("index_interval_bytes", d.index_interval_bytes, 512, 1 << 24));
    d.max_batch_bytes = static_cast<uint32_t>(cfg.get_uint("max_batch_bytes", d.max_batch_bytes, 1024, 64 << 20));
    d.write_buffer_bytes =
        static_cast<uint32_t>(cfg.get_uint("write_buffer_bytes", d.write_buffer_bytes, 64 << 10, 256 << 20));
    d.read_chunk_bytes =
        static_cast<uint32_t>(cfg.get_uint("read_chunk_bytes", d.read_chunk_bytes, 4096, 64 << 20) / 4096 * 4096);
    d.verify_segments_on_open = cfg.get_bool("verify_segments_on_open", false);
    _cache_bytes = cfg.get_uint("cache_bytes", 256ull << 20, 0, 1ull << 40);
    _retention_check_ms = cfg.get_uint("retention_check_interval_ms", 60'000, 10, 86'400'000);
    // Fault tests only (docs/RELIABILITY.md): /v1/storage/faults injects
    // EIO or ENOSPC into partition writes and syncs.
    if (cfg.get_bool("fault_injection", false)) register_fault_routes();

    if (sdk::register_service("storage.log", [this](uint32_t shard, sdk::message req) {
          return serve(shard, std::move(req));
        }) < 0)
      throw sdk::config_error("cannot register the storage.log service");
    _m_appends = sdk::register_metric(SLUICE_METRIC_COUNTER, "storage_appends_total", "Append requests served");
    _m_append_bytes = sdk::register_metric(SLUICE_METRIC_COUNTER, "storage_append_bytes_total", "Bytes appended");
    _m_append_us = sdk::register_metric(SLUICE_METRIC_HISTOGRAM, "storage_append_latency_us",
                                        "Append (and flush, when asked) latency in microseconds");
    _m_reads = sdk::register_metric(SLUICE_METRIC_COUNTER, "storage_reads_total", "Read requests served");
    _m_read_bytes = sdk::register_metric(SLUICE_METRIC_COUNTER, "storage_read_bytes_total", "Bytes read");
    _m_errors = sdk::register_metric(SLUICE_METRIC_COUNTER, "storage_errors_total", "Requests that failed");
    _m_partitions = sdk::register_metric(SLUICE_METRIC_GAUGE, "storage_partitions", "Open partitions");
    _m_cache_bytes = sdk::register_metric(SLUICE_METRIC_GAUGE, "storage_cache_bytes", "Bytes in the batch caches");
    _m_cache_hits = sdk::register_metric(SLUICE_METRIC_COUNTER, "storage_cache_hits_total",
                                         "Reads served from the batch cache");
    _m_cache_misses = sdk::register_metric(SLUICE_METRIC_COUNTER, "storage_cache_misses_total",
                                           "Reads that went to disk");
    _m_segments = sdk::register_metric(SLUICE_METRIC_GAUGE, "storage_segments", "Segment files of open partitions");
    _m_flush_us = sdk::register_metric(SLUICE_METRIC_HISTOGRAM, "storage_flush_latency_us",
                                       "Time to make appended data durable (fdatasync, group commit), microseconds");
    _m_read_us = sdk::register_metric(SLUICE_METRIC_HISTOGRAM, "storage_read_latency_us",
                                      "Read request latency, microseconds");
    _shards.init(sdk::shard_count());
  }

  std::string start(uint32_t shard) override {
    // The cache budget is split between the shards.
    shard_state& st = _shards.emplace(shard, _cache_bytes / sdk::shard_count());
    if (shard == 0) {
      // Start-up only, before serving; durable, as every directory the
      // storage creates (a power loss must not take a new one away).
      if (const int32_t rc = sdk::mkdirs_durable_blocking(_root); rc < 0)
        return "cannot create the storage directory " + _root + ": " + std::strerror(-rc);
    }
    sdk::spawn(retention_loop(st, st.tasks.try_enter()));
    sdk::spawn(stats_loop(st, st.tasks.try_enter()));
    return {};
  }

  task<void> stop(uint32_t shard) override {
    shard_state& st = _shards.at(shard);
    st.stop.request_abort();
    co_await st.tasks.close();
    for (auto& [key, p] : st.partitions) {
      auto keep = p;
      while (keep->opening) co_await keep->opened.wait();
      if (keep->log) co_await keep->log->close();
    }
    _m_partitions.add(-static_cast<int64_t>(st.partitions.size()));
    st.partitions.clear();
    _shards.reset(shard);
  }

 private:
  void register_fault_routes() {
    _routes.init("storage.admin");
    const auto state = [] {
      fault_hook& h = fault_hook::instance();
      nlohmann::json j;
      for (auto [name, op] : {std::pair{"write", fault_op::write}, std::pair{"sync", fault_op::sync}}) {
        const int32_t e = h.error(op);
        j[name] = {{"error", e == 0 ? nlohmann::json(nullptr) : nlohmann::json(e == ENOSPC ? "ENOSPC" : e == EIO ? "EIO" : std::to_string(e))},
                   {"remaining", h.remaining(op)},
                   {"injected", h.injected(op)}};
      }
      return sdk::http_response::json(200, j.dump());
    };
    _routes.add("GET", "/v1/storage/faults", [state](sdk::http_request) -> task<sdk::http_response> { co_return state(); });
    _routes.add("DELETE", "/v1/storage/faults", [state](sdk::http_request) -> task<sdk::http_response> {
      fault_hook::instance().clear();
      co_return state();
    });
    // Body: {"op": "write"|"sync", "error": "EIO"|"ENOSPC"|null, "count": N (-1: until cleared)}.
    _routes.add("PUT", "/v1/storage/faults", [state](sdk::http_request req) -> task<sdk::http_response> {
      const nlohmann::json b = nlohmann::json::parse(req.body, nullptr, false);
      if (!b.is_object() || !b.contains("op") || !b["op"].is_string())
        co_return sdk::http_response::error(400, "the body must be {\"op\": \"write\"|\"sync\", \"error\": \"EIO\"|\"ENOSPC\"|null, \"count\": N}");
      const std::string op = b["op"].get<std::string>();
      if (op != "write" && op != "sync") co_return sdk::http_response::error(400, "op must be write or sync, got " + op);
      int32_t err = 0;
      if (b.contains("error") && !b["error"].is_null()) {
        const std::string e = b["error"].is_string() ? b["error"].get<std::string>() : "";
        if (e == "EIO") err = EIO;
        else if (e == "ENOSPC") err = ENOSPC;
        else co_return sdk::http_response::error(400, "error must be EIO, ENOSPC or null, got " + b["error"].dump());
      }
      int64_t count = -1;
      if (b.contains("count")) {
        if (!b["count"].is_number_integer() || b["count"].get<int64_t>() < -1)
          co_return sdk::http_response::error(400, "count must be an integer >= -1");
        count = b["count"].get<int64_t>();
      }
      fault_hook::instance().set(op == "write" ? fault_op::write : fault_op::sync, err, count);
      sdk::log_warn("storage: fault injection: " + op + (err ? " fails with " + std::string(err == EIO ? "EIO" : "ENOSPC") +
                                                                  (count < 0 ? " until cleared" : " " + std::to_string(count) + " time(s)")
                                                            : " back to normal"));
      co_return state();
    });
  }

  static int64_t get_limit(sdk::config_map& cfg, const std::string& key, int64_t fallback) {
    // -1 means "no limit"; YAML has no unsigned -1, so it is spelled out.
    if (cfg.has(key)) {
      YAML::Node n = cfg.get_node(key);
      if (n.IsScalar() && n.Scalar() == "-1") return -1;
    }
    return static_cast<int64_t>(cfg.get_uint(key, static_cast<uint64_t>(fallback), 0, INT64_MAX));
  }

  // Once a second: the gauges that are cheaper to sample than to track
  // (this shard's share), and the cache's hit counts since the last turn.
  task<void> stats_loop(shard_state& st, sdk::gate::holder) {
    uint64_t hits = 0, misses = 0;
    while (co_await sdk::sleep_ms(1000, &st.stop) == -ETIME) {
      int64_t segments = 0;
      for (const auto& [k, p] : st.partitions)
        if (p->log) segments += p->log->stats().segments;
      _m_segments.set(segments);
      _m_cache_bytes.set(static_cast<int64_t>(st.cache.bytes()));
      _m_cache_hits.add(static_cast<int64_t>(st.cache.hits() - hits));
      _m_cache_misses.add(static_cast<int64_t>(st.cache.misses() - misses));
      hits = st.cache.hits();
      misses = st.cache.misses();
    }
  }

  task<void> retention_loop(shard_state& st, sdk::gate::holder) {
    while (co_await sdk::sleep_ms(_retention_check_ms, &st.stop) == -ETIME) {
      const int64_t now = static_cast<int64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                   std::chrono::system_clock::now().time_since_epoch())
                                                   .count());
      std::vector<partition_log*> logs;
      for (auto& [k, p] : st.partitions)
        if (p->log) logs.push_back(p->log.get());
      for (partition_log* log : logs) {
        if (st.stop.abort_requested()) break;
        auto r = co_await log->apply_retention(now);
        if (!r) sdk::log_warn(r.err().message);
      }
      _m_cache_bytes.set(static_cast<int64_t>(st.cache.bytes()));
    }
  }

  static sdk::reply error_reply(StorageStatus status, const std::string& message) {
    sdk::reply rep;
    rep.status = status;
    Error e;
    e.set_message(message);
    e.SerializeToString(&rep.msg.bytes);
    return rep;
  }
  sdk::reply error_reply(const error& e) {
    _m_errors.add(1);
    return error_reply(status_of(e), e.message);
  }
  static sdk::reply ok_reply(uint32_t type, const google::protobuf::MessageLite& m) {
    sdk::reply rep;
    rep.msg.type = type;
    m.SerializeToString(&rep.msg.bytes);
    return rep;
  }
  static LogState state_of(const partition_log& log) {
    const log_stats s = log.stats();
    LogState st;
    st.set_start_offset(s.start_offset);
    st.set_next_offset(s.next_offset);
    st.set_flushed_offset(s.flushed_offset);
    st.set_size_bytes(s.size_bytes);
    st.set_segments(s.segments);
    st.set_failed(s.failed);
    st.set_last_epoch(s.last_epoch);
    if (s.damaged_from >= 0) {
      st.set_damaged_from(s.damaged_from);
      st.set_damaged_end(s.damaged_end);
      st.set_damage(log.damage());
    }
    return st;
  }
  static std::string key_of(const PartitionId& id) { return id.topic() + "/" + std::to_string(id.partition()); }

  // The open partition for id on this shard (kept alive by the returned
  // pointer), or nullptr and an error reply.
  task<std::shared_ptr<partition_entry>> find(shard_state& st, const PartitionId& id, sdk::reply& err) {
    auto it = st.partitions.find(key_of(id));
    if (it == st.partitions.end() || it->second->revision != id.revision()) {
      err = error_reply(STORAGE_STATUS_UNKNOWN_PARTITION,
                        "partition " + key_of(id) + " (revision " + std::to_string(id.revision()) +
                            ") is not open on shard " + std::to_string(sdk::this_shard()));
      co_return nullptr;
    }
    std::shared_ptr<partition_entry> p = it->second;
    while (p->opening) co_await p->opened.wait();
    if (!p->log) {
      err = error_reply(p->open_error);
      co_return nullptr;
    }
    co_return p;
  }

  template <typename M>
  static bool decode(const sdk::message& req, M& m) {
    return m.ParseFromString(req.bytes);
  }

  task<sdk::reply> serve(uint32_t shard, sdk::message req) {
    if (!_shards.has(shard)) co_return error_reply(STORAGE_STATUS_CLOSED, "storage is stopping");
    shard_state& st = _shards.at(shard);
    auto hold = st.tasks.try_enter();
    if (!hold) co_return error_reply(STORAGE_STATUS_CLOSED, "storage is stopping");
    const auto bad = [](const char* what) {
      return error_reply(STORAGE_STATUS_BAD_REQUEST, std::string("undecodable ") + what);
    };
    sdk::reply err;
    switch (req.type) {
      case STORAGE_OPEN: {
        OpenRequest r;
        if (!decode(req, r)) co_return bad("OpenRequest");
        co_return co_await open(st, r);
      }
      case STORAGE_APPEND: {
        AppendRequest r;
        if (!decode(req, r)) co_return bad("AppendRequest");
        auto entry = co_await find(st, r.id(), err);
        if (!entry) co_return err;
        if (r.has_leader_epoch() && r.leader_epoch() < 0)
          co_return error_reply(STORAGE_STATUS_BAD_REQUEST,
                                "AppendRequest.leader_epoch is " + std::to_string(r.leader_epoch()) +
                                    ": a leader epoch to stamp is >= 0 (leave it unset to keep the batches' own)");
        partition_log* log = entry->log.get();
        const uint64_t t0 = sdk::now_ns();
        const uint64_t bytes = req.buf ? req.buf.size() : 0;
        append_options opts;
        opts.keep_offsets = r.keep_offsets();
        if (r.has_leader_epoch()) opts.leader_epoch = r.leader_epoch();
        auto a = co_await log->append(std::move(req.buf), opts);
        if (!a) co_return error_reply(a.err());
        AppendReply out;
        out.set_base_offset(a.value().base_offset);
        out.set_last_offset(a.value().last_offset);
        out.set_max_timestamp(a.value().max_timestamp);
        out.set_batches(a.value().batches);
        if (r.flush()) {
          const uint64_t f0 = sdk::now_ns();
          auto f = co_await log->flush();
          if (!f) co_return error_reply(f.err());
          _m_flush_us.record((sdk::now_ns() - f0) / 1000);
        }
        out.set_flushed_offset(log->stats().flushed_offset);
        _m_appends.add(1);
        _m_append_bytes.add(static_cast<int64_t>(bytes));
        _m_append_us.record((sdk::now_ns() - t0) / 1000);
        co_return ok_reply(STORAGE_APPEND, out);
      }
      case STORAGE_FLUSH: {
        PartitionRequest r;
        if (!decode(req, r)) co_return bad("PartitionRequest");
        auto entry = co_await find(st, r.id(), err);
        if (!entry) co_return err;
        partition_log* log = entry->log.get();
        const uint64_t f0 = sdk::now_ns();
        auto f = co_await log->flush();
        if (!f) co_return error_reply(f.err());
        _m_flush_us.record((sdk::now_ns() - f0) / 1000);
        co_return ok_reply(STORAGE_FLUSH, state_of(*log));
      }
      case STORAGE_READ: {
        ReadRequest r;
        if (!decode(req, r)) co_return bad("ReadRequest");
        auto entry = co_await find(st, r.id(), err);
        if (!entry) co_return err;
        partition_log* log = entry->log.get();
        const uint64_t r0 = sdk::now_ns();
        auto rd = co_await log->read(r.offset(), r.max_bytes(), r.max_offset() > 0 ? r.max_offset() : INT64_MAX);
        if (!rd) co_return error_reply(rd.err());
        ReadReply out;
        *out.mutable_state() = state_of(*log);
        out.set_first_offset(rd.value().first_offset);
        out.set_next_offset(rd.value().next_offset);
        sdk::reply rep = ok_reply(STORAGE_READ, out);
        // One buffer crosses the channel: a single slice goes by reference,
        // several are joined.
        const auto& slices = rd.value().slices;
        if (slices.size() == 1 && slices[0].offset == 0 && slices[0].length == slices[0].data.size()) {
          rep.msg.buf = slices[0].data;
        } else if (!slices.empty()) {
          rep.msg.buf = sdk::buffer::allocate(rd.value().bytes);
          uint64_t at = 0;
          for (const auto& s : slices) {
            std::memcpy(rep.msg.buf.data() + at, s.data.data() + s.offset, s.length);
            at += s.length;
          }
          rep.msg.buf.set_size(at);
        }
        _m_reads.add(1);
        _m_read_bytes.add(static_cast<int64_t>(rd.value().bytes));
        _m_read_us.record((sdk::now_ns() - r0) / 1000);
        co_return rep;
      }
      case STORAGE_OFFSET_FOR_TIME: {
        TimestampRequest r;
        if (!decode(req, r)) co_return bad("TimestampRequest");
        auto entry = co_await find(st, r.id(), err);
        if (!entry) co_return err;
        partition_log* log = entry->log.get();
        auto o = co_await log->offset_for_timestamp(r.timestamp());
        if (!o) co_return error_reply(o.err());
        TimestampReply out;
        out.set_offset(o.value());
        co_return ok_reply(STORAGE_OFFSET_FOR_TIME, out);
      }
      case STORAGE_TRUNCATE_PREFIX:
      case STORAGE_TRUNCATE_SUFFIX: {
        TruncateRequest r;
        if (!decode(req, r)) co_return bad("TruncateRequest");
        auto entry = co_await find(st, r.id(), err);
        if (!entry) co_return err;
        partition_log* log = entry->log.get();
        result<void> t;
        if (req.type == STORAGE_TRUNCATE_PREFIX) {
          t = co_await log->truncate_prefix(r.offset());
        } else {
          t = co_await log->truncate_suffix(r.offset());
        }
        if (!t) co_return error_reply(t.err());
        co_return ok_reply(req.type, state_of(*log));
      }
      case STORAGE_EPOCHS: {
        PartitionRequest r;
        if (!decode(req, r)) co_return bad("PartitionRequest");
        auto entry = co_await find(st, r.id(), err);
        if (!entry) co_return err;
        EpochTable out;
        for (const epoch_entry& e : entry->log->epochs()) {
          Epoch* o = out.add_entries();
          o->set_epoch(e.epoch);
          o->set_start_offset(e.start_offset);
        }
        co_return ok_reply(STORAGE_EPOCHS, out);
      }
      case STORAGE_STATE: {
        PartitionRequest r;
        if (!decode(req, r)) co_return bad("PartitionRequest");
        auto entry = co_await find(st, r.id(), err);
        if (!entry) co_return err;
        partition_log* log = entry->log.get();
        co_return ok_reply(STORAGE_STATE, state_of(*log));
      }
      case STORAGE_CLOSE:
      case STORAGE_REMOVE: {
        PartitionRequest r;
        if (!decode(req, r)) co_return bad("PartitionRequest");
        auto entry = co_await find(st, r.id(), err);
        if (!entry) co_return err;
        partition_log* log = entry->log.get();
        // Take it out of the map first so no new request reaches it.
        st.partitions.erase(key_of(r.id()));
        _m_partitions.add(-1);
        LogState state = state_of(*log);
        if (req.type == STORAGE_REMOVE) {
          auto rm = co_await entry->log->remove();
          if (!rm) co_return error_reply(rm.err());
          state = LogState();
          // The topic's directory goes with its last partition (other
          // partitions, possibly on other shards, keep it: ENOTEMPTY).
          const std::string topic_dir = _root + "/" + r.id().topic();
          (void)co_await sdk::unlink(topic_dir.c_str(), AT_REMOVEDIR);
        } else {
          co_await entry->log->close();
        }
        co_return ok_reply(req.type, state);
      }
      default:
        co_return error_reply(STORAGE_STATUS_BAD_REQUEST, "unknown message type " + std::to_string(req.type));
    }
  }

  log_config with_overrides(const LogOverrides& o) const {
    log_config cfg = _defaults;
    if (o.has_segment_bytes()) cfg.segment_bytes = std::max<uint64_t>(o.segment_bytes(), 64 << 10);
    if (o.has_segment_ms()) cfg.segment_ms = std::max<int64_t>(o.segment_ms(), 1);
    if (o.has_retention_bytes()) cfg.retention_bytes = o.retention_bytes();
    if (o.has_retention_ms()) cfg.retention_ms = o.retention_ms();
    if (o.has_max_batch_bytes()) cfg.max_batch_bytes = std::max<uint32_t>(o.max_batch_bytes(), 1024);
    return cfg;
  }

  task<sdk::reply> open(shard_state& st, const OpenRequest& r) {
    const PartitionId& id = r.id();
    if (!valid_topic(id.topic()) || id.partition() < 0 || id.revision() < 0)
      co_return error_reply(STORAGE_STATUS_BAD_REQUEST,
                            "invalid partition '" + id.topic() + "'/" + std::to_string(id.partition()) +
                                ": topic names are 1-249 of [a-zA-Z0-9._-], partitions and revisions >= 0");
    const std::string key = key_of(id);
    if (auto it = st.partitions.find(key); it != st.partitions.end()) {
      if (it->second->revision != id.revision())
        co_return error_reply(STORAGE_STATUS_BAD_REQUEST, "partition " + key + " is open with revision " +
                                                              std::to_string(it->second->revision));
      sdk::reply err;
      auto existing = co_await find(st, id, err);
      if (!existing) co_return err;
      // Re-opening with overrides changes the limits of the open log.
      if (r.has_overrides()) {
        const log_config cfg = with_overrides(r.overrides());
        existing->log->set_limits(cfg.segment_bytes, cfg.segment_ms, cfg.retention_bytes, cfg.retention_ms);
      }
      co_return ok_reply(STORAGE_OPEN, state_of(*existing->log));
    }
    auto entry = std::make_shared<partition_entry>();
    entry->revision = id.revision();
    partition_entry& p = *entry;
    st.partitions.emplace(key, entry);

    log_config cfg = with_overrides(r.overrides());
    cfg.repairable = r.repairable();

    const std::string topic_dir = _root + "/" + id.topic();
    const int32_t rc = co_await sdk::mkdir_durable(topic_dir);
    if (rc < 0) {
      p.open_error = error{make_error_code(errc::io_error), "cannot create " + topic_dir + ": " + std::strerror(-rc)};
    } else {
      const std::string dir = topic_dir + "/" + std::to_string(id.partition()) + "_" + std::to_string(id.revision());
      auto log = co_await partition_log::open(dir, key, cfg, &st.cache);
      if (log) p.log = std::move(log).value();
      else p.open_error = log.err();
    }
    p.opening = false;
    p.opened.notify_all();
    if (!p.log) {
      const error e = p.open_error;
      st.partitions.erase(key);
      co_return error_reply(e);
    }
    _m_partitions.add(1);
    co_return ok_reply(STORAGE_OPEN, state_of(*p.log));
  }

  std::string _root;
  log_config _defaults;
  sdk::admin_routes _routes;
  uint64_t _cache_bytes = 0;
  uint64_t _retention_check_ms = 60'000;
  sdk::per_shard<shard_state> _shards;
  sdk::metric _m_cache_hits, _m_cache_misses, _m_segments, _m_flush_us, _m_read_us;
  sdk::metric _m_appends, _m_append_bytes, _m_append_us, _m_reads, _m_read_bytes, _m_errors, _m_partitions,
      _m_cache_bytes;
};

}  // namespace
}  // namespace sluice::storage

SLUICE_PLUGIN(sluice::storage::storage_plugin, "storage", "0.1.0",
              "Durable partition logs: O_DIRECT segments of Kafka record batches with group commit")
