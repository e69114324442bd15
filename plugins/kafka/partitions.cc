#include "partitions.h"

#include "batch_validation.h"
#include "record_batch.h"
#include "sluice/cluster.pb.h"
#include "sluice/storage.pb.h"

#include <sluice/sdk/assert.h>

#include <algorithm>
#include <cerrno>

namespace sluice::kafka {

using namespace sluice::storage;  // protobuf messages
using sdk::task;

struct partition_table::state {
  std::string topic;
  int32_t partition = 0;
  int64_t revision = 0;
  PartitionId id;
  bool opening = true;
  bool removed = false;
  error_code open_error = error_code::none;
  sdk::condition opened;
  int64_t log_start = 0;
  int64_t high_watermark = 0;  // single node: the log end; Raft will make it the commit index
  // ListOffsets -3: the largest timestamp of the data batches in
  // [log start, max_ts_scanned_to), and the base offset of the first batch
  // with it; read from the log (scan_max_timestamp), one scan at a time.
  int64_t max_timestamp = -1;
  int64_t max_timestamp_batch = -1;
  int64_t max_ts_scanned_to = -1;
  sdk::fifo_mutex max_ts_mu;
  uint64_t size_bytes = 0;
  log_settings settings;
  std::list<sdk::abort_source*> waiters;  // fetches waiting for data
  // Idempotent producers. Two connections may produce to this partition at
  // once (each request awaits the storage), so check, append and record of
  // batches with a producer id run under producer_mu: otherwise both could
  // pass the check with the same sequence and append twice.
  producer_state_table producers;
  sdk::fifo_mutex producer_mu;
  // A deferred flush failed: appended batches may not be durable, and
  // producer state already counts them, so every later produce fails
  // instead of answering a retry "duplicate" (the storage log has failed too).
  bool flush_failed = false;
  // Cluster mode: what the raft plugin last reported for this replica.
  int32_t leader = -1;
  int32_t leader_epoch = -1;
  bool is_leader = false;
  bool producers_ready = false;  // a new leader rebuilds producer state first
  int64_t last_appended = -1;    // the last offset this leader appended
  int32_t last_appended_epoch = -1;  // the term it was appended in
  uint64_t rebuild_generation = 0;
  sdk::condition changed;        // leader or high watermark moved
  int64_t move_done_sent_ms = 0;  // when this leader last reported its move done
  bool retiring = false;          // moved off this broker: retire_later() runs
  bool following_log_start = false;  // follow_log_start() is truncating
};

namespace {

std::string key_of(const std::string& topic, int32_t partition) {
  std::string k = topic;
  k.push_back('\0');
  k += std::to_string(partition);
  return k;
}

error_code error_of_status(int32_t status) {
  switch (status) {
    case STORAGE_STATUS_INVALID_BATCH: return error_code::corrupt_message;
    case STORAGE_STATUS_BATCH_TOO_LARGE: return error_code::message_too_large;
    case STORAGE_STATUS_OFFSET_OUT_OF_RANGE: return error_code::offset_out_of_range;
    case STORAGE_STATUS_DISK_FULL:
    case STORAGE_STATUS_IO_ERROR:
    case STORAGE_STATUS_CORRUPT:
    case STORAGE_STATUS_LOG_FAILED: return error_code::kafka_storage_error;
    case STORAGE_STATUS_CLOSED:
    case STORAGE_STATUS_UNKNOWN_PARTITION: return error_code::not_leader_or_follower;
    default: return error_code::unknown_server_error;
  }
}

std::string error_text(const sdk::reply& rep) {
  Error e;
  if (e.ParseFromString(rep.msg.bytes)) return e.message();
  return "storage status " + std::to_string(rep.status);
}

// The reply parsed into out, or the Kafka error for what went wrong.
template <class Reply>
error_code parse_reply(const sdk::reply& rep, Reply& out) {
  if (rep.status != 0) return error_of_status(rep.status);
  return out.ParseFromString(rep.msg.bytes) ? error_code::none : error_code::unknown_server_error;
}

// OPEN with the partition's topic configs as overrides (a re-open applies
// changed roll and retention limits to an open log).
OpenRequest open_request(const PartitionId& id, const log_settings& s) {
  OpenRequest open;
  *open.mutable_id() = id;
  LogOverrides* o = open.mutable_overrides();
  o->set_segment_bytes(static_cast<uint64_t>(s.segment_bytes));
  o->set_segment_ms(s.segment_ms);
  o->set_retention_bytes(s.retention_bytes);
  o->set_retention_ms(s.retention_ms);
  o->set_max_batch_bytes(std::max<uint32_t>(s.max_message_bytes, 1024));
  return open;
}

error_code error_of_cluster(int32_t status) {
  switch (status) {
    case cluster::CLUSTER_STATUS_OK: return error_code::none;
    case cluster::CLUSTER_STATUS_NOT_LEADER:
    case cluster::CLUSTER_STATUS_UNKNOWN_PARTITION:
    case cluster::CLUSTER_STATUS_SHUTTING_DOWN: return error_code::not_leader_or_follower;
    case cluster::CLUSTER_STATUS_TIMEOUT: return error_code::request_timed_out;
    case cluster::CLUSTER_STATUS_STORAGE_ERROR: return error_code::kafka_storage_error;
    default: return error_code::unknown_server_error;
  }
}

// A single node's only leader epoch (a cluster's is the Raft term).
constexpr int32_t leader_epoch_single_node = 0;

int64_t now_ms() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1'000'000;
}

}  // namespace

task<sdk::reply> partition_table::storage_call(uint32_t type, const std::string& body, sdk::buffer buf) {
  sdk::message m;
  m.type = type;
  m.bytes = body;
  m.buf = std::move(buf);
  co_return co_await sdk::call(_storage, sdk::this_shard(), m);
}

task<sdk::reply> partition_table::raft_call(uint32_t type, const std::string& body, sdk::buffer buf) {
  sdk::message m;
  m.type = type;
  m.bytes = body;
  m.buf = std::move(buf);
  co_return co_await sdk::call(_raft, sdk::this_shard(), m);
}

task<std::optional<LogState>> partition_table::log_state(const state& st) {
  PartitionRequest pr;
  *pr.mutable_id() = st.id;
  sdk::reply rep = co_await storage_call(STORAGE_STATE, pr.SerializeAsString());
  LogState ls;
  if (rep.status != 0 || !ls.ParseFromString(rep.msg.bytes)) co_return std::nullopt;
  co_return ls;
}

task<bool> partition_table::confirm_leader(const state& st) {
  cluster::GroupRequest gr;
  *gr.mutable_id() = st.id;
  sdk::reply rep = co_await raft_call(cluster::PARTITION_CONFIRM, gr.SerializeAsString());
  cluster::GroupState gs;
  co_return rep.status == 0 && gs.ParseFromString(rep.msg.bytes) && gs.status() == cluster::CLUSTER_STATUS_OK;
}

error_code partition_table::leader_check(const state& st) const {
  if (!clustered() || st.is_leader) return error_code::none;
  return error_code::not_leader_or_follower;
}

std::pair<int32_t, int32_t> partition_table::leader_of(const std::string& topic, int32_t partition) const {
  auto it = _parts.find(key_of(topic, partition));
  if (it == _parts.end() || it->second->opening) return {-1, -1};
  return {it->second->leader, it->second->leader_epoch};
}

void partition_table::on_group_update(const std::string& bytes) {
  cluster::GroupState gs;
  if (!gs.ParseFromString(bytes)) return;
  auto it = _parts.find(key_of(gs.id().topic(), gs.id().partition()));
  if (it == _parts.end() || it->second->revision != gs.id().revision()) return;
  std::shared_ptr<state> st = it->second;
  const bool was_leader = st->is_leader;
  const int32_t was_epoch = st->leader_epoch;
  st->leader = gs.leader();
  st->leader_epoch = static_cast<int32_t>(gs.term());
  st->is_leader = gs.leader() == _self && gs.role() == "leader" && !gs.failed();
  st->high_watermark = std::max(st->high_watermark, gs.high_watermark());
  if (gs.log_start_offset() > st->log_start) st->log_start = gs.log_start_offset();
  // Reports are coalesced: leading again in a later term means the log may
  // have changed in between (a transfer away and back), so rebuild then too.
  if (st->is_leader && (!was_leader || was_epoch != st->leader_epoch)) {
    st->producers_ready = false;
    sdk::spawn(become_leader(st));
  }
  if (!st->is_leader) st->producers_ready = false;
  st->changed.notify_all();
  wake(*st);
  check_move_done(*st, {gs.replicas().begin(), gs.replicas().end()}, {gs.assigned().begin(), gs.assigned().end()},
                  gs.moving());
}

void partition_table::check_move_done(state& st, const std::vector<int32_t>& voters,
                                      const std::vector<int32_t>& assigned, bool moving) {
  if (!st.is_leader || moving || !_move_done || !_image) return;
  const topic_info* t = _image->find(st.topic);
  if (!t || t->revision != st.revision || previous_of(*t, st.partition).empty()) return;
  if (assigned != replicas_of(*t, st.partition, _self)) return;  // the group has not heard of this assignment yet
  // One report per second at most (a lost one is sent again on a later update).
  const int64_t now = now_ms();
  if (now - st.move_done_sent_ms < 1000) return;
  st.move_done_sent_ms = now;
  _move_done(st.topic, st.revision, st.partition, voters);
}

task<sdk::reply> partition_table::ensure_group(const state& st, const topic_info& t) {
  cluster::EnsureRequest er;
  *er.mutable_id() = st.id;
  for (int32_t r : replicas_of(t, st.partition, _self)) er.add_replicas(r);
  // A brand-new group starts with the voters before the move in flight (or
  // the assignment); a replica not among them joins as a learner.
  std::vector<int32_t> bootstrap = previous_of(t, st.partition);
  if (bootstrap.empty()) bootstrap = replicas_of(t, st.partition, _self);
  if (std::find(bootstrap.begin(), bootstrap.end(), _self) != bootstrap.end())
    for (int32_t r : bootstrap) er.add_bootstrap(r);
  *er.mutable_overrides() = open_request(st.id, st.settings).overrides();
  co_return co_await raft_call(cluster::PARTITION_ENSURE, er.SerializeAsString());
}

// A new leader's producer state comes from its log, which holds every
// committed batch (and maybe uncommitted ones of the previous term, which
// its first entry commits).
task<void> partition_table::become_leader(std::shared_ptr<state> st) {
  int64_t end = st->high_watermark;
  if (const std::optional<LogState> ls = co_await log_state(*st)) {
    st->log_start = std::max(st->log_start, ls->start_offset());
    end = ls->next_offset();  // rebuild up to the log end
  }
  // Concurrent rebuilds (leadership lost and regained meanwhile): the last
  // one started wins; each fills its own table.
  const uint64_t gen = ++st->rebuild_generation;
  producer_state_table table;
  co_await rebuild_producers(*st, end, table);
  if (gen != st->rebuild_generation) co_return;
  st->producers = std::move(table);
  if (st->is_leader) st->producers_ready = true;
  st->changed.notify_all();
}

void partition_table::wake(state& st) {
  for (sdk::abort_source* w : st.waiters) w->request_abort();
  st.waiters.clear();
}

task<std::shared_ptr<partition_table::state>> partition_table::get(const std::string& topic, int32_t partition,
                                                                    error_code& err) {
  err = error_code::none;
  if (_closed) {
    err = error_code::not_leader_or_follower;
    co_return nullptr;
  }
  const topic_info* t = _image ? _image->find(topic) : nullptr;
  if (t == nullptr || partition < 0 || partition >= t->partitions) {
    err = error_code::unknown_topic_or_partition;
    co_return nullptr;
  }
  SLUICE_ASSERT(shard_of(topic, partition, sdk::shard_count()) == sdk::this_shard());
  if (clustered()) {
    const std::vector<int32_t> reps = hosts_of(*t, partition, _self);
    if (std::find(reps.begin(), reps.end(), _self) == reps.end()) {
      err = error_code::not_leader_or_follower;  // not a replica here
      co_return nullptr;
    }
  }
  const std::string key = key_of(topic, partition);
  if (auto it = _parts.find(key); it != _parts.end() && it->second->revision == t->revision) {
    std::shared_ptr<state> st = it->second;
    while (st->opening) co_await st->opened.wait();
    if (st->removed) err = error_code::unknown_topic_or_partition;
    else err = st->open_error;
    co_return err == error_code::none ? st : nullptr;
  }
  auto st = std::make_shared<state>();
  st->topic = topic;
  st->partition = partition;
  st->revision = t->revision;
  st->id.set_topic(topic);
  st->id.set_partition(partition);
  st->id.set_revision(t->revision);
  st->settings = effective_log_settings(_cfg, t->configs);
  _parts[key] = st;

  if (clustered()) {
    // The raft plugin opens the log and runs the partition's group; the
    // leader, term and high watermark arrive through on_group_update().
    sdk::reply rep = co_await ensure_group(*st, *t);
    cluster::GroupState gs;
    if (rep.status != 0 || !gs.ParseFromString(rep.msg.bytes) || gs.status() != cluster::CLUSTER_STATUS_OK) {
      sdk::log_error("kafka: cannot start the replica of " + topic + "-" + std::to_string(partition) + ": " +
                     (gs.message().empty() ? "raft status " + std::to_string(rep.status) : gs.message()));
      st->open_error = error_code::kafka_storage_error;
    } else {
      st->log_start = gs.log_start_offset();
      st->high_watermark = gs.high_watermark();
      st->leader = gs.leader();
      st->leader_epoch = static_cast<int32_t>(gs.term());
      st->opening = false;
      on_group_update(rep.msg.bytes);
    }
    st->opening = false;
    st->opened.notify_all();
    err = st->open_error;
    if (err != error_code::none) {
      if (auto it = _parts.find(key); it != _parts.end() && it->second == st) _parts.erase(it);
      co_return nullptr;
    }
    co_return st;
  }
  sdk::reply rep = co_await storage_call(STORAGE_OPEN, open_request(st->id, st->settings).SerializeAsString());
  LogState ls;
  if (rep.status != 0 || !ls.ParseFromString(rep.msg.bytes)) {
    sdk::log_error("kafka: cannot open " + topic + "-" + std::to_string(partition) + ": " + error_text(rep));
    st->open_error = rep.status != 0 ? error_of_status(rep.status) : error_code::kafka_storage_error;
    if (st->open_error == error_code::not_leader_or_follower) st->open_error = error_code::kafka_storage_error;
  } else {
    st->log_start = ls.start_offset();
    st->high_watermark = ls.next_offset();
    st->size_bytes = ls.size_bytes();
    // Before any produce is let in (they wait for `opened`).
    co_await rebuild_producers(*st, st->high_watermark, st->producers);
  }
  st->opening = false;
  st->opened.notify_all();
  err = st->open_error;
  if (err != error_code::none) {
    if (auto it = _parts.find(key); it != _parts.end() && it->second == st) _parts.erase(it);
    co_return nullptr;
  }
  co_return st;
}

task<void> partition_table::apply_image(image_ptr img) {
  image_ptr previous = std::move(_image);
  _image = std::move(img);
  // Partitions whose topic is gone, or was re-created (new revision), or
  // lost partitions: remove their logs.
  std::vector<std::shared_ptr<state>> gone, changed, reassigned;
  for (auto it = _parts.begin(); it != _parts.end();) {
    const topic_info* t = _image->find(it->second->topic);
    if (t == nullptr || t->revision != it->second->revision || it->second->partition >= t->partitions) {
      gone.push_back(it->second);
      it = _parts.erase(it);
    } else {
      if (clustered()) {
        const std::vector<int32_t> h = hosts_of(*t, it->second->partition, _self);
        if (std::find(h.begin(), h.end(), _self) == h.end() && !it->second->retiring) {
          if (auto g = _tasks.try_enter()) {
            it->second->retiring = true;
            sdk::spawn(retire_later(it->second, std::move(g)));
          }
        }
      }
      const log_settings next = effective_log_settings(_cfg, t->configs);
      const log_settings& cur = it->second->settings;
      if (next.retention_ms != cur.retention_ms || next.retention_bytes != cur.retention_bytes ||
          next.segment_bytes != cur.segment_bytes || next.segment_ms != cur.segment_ms)
        changed.push_back(it->second);
      it->second->settings = next;
      if (clustered()) {
        const topic_info* old = previous ? previous->find(t->name) : nullptr;
        const int32_t p = it->second->partition;
        if (!old || replicas_of(*old, p, _self) != replicas_of(*t, p, _self) || previous_of(*old, p) != previous_of(*t, p))
          reassigned.push_back(it->second);
      }
      ++it;
    }
  }
  // Topic config changes reach the open logs (a re-open applies overrides).
  for (auto& st : changed) {
    while (st->opening) co_await st->opened.wait();
    if (st->open_error != error_code::none || st->removed) continue;
    sdk::reply rep = co_await storage_call(STORAGE_OPEN, open_request(st->id, st->settings).SerializeAsString());
    if (rep.status != 0)
      sdk::log_warn("kafka: applying new configs to " + st->topic + "-" + std::to_string(st->partition) + ": " +
                    error_text(rep));
  }
  // A move started, changed or ended: the group learns its new assignment.
  for (auto& st : reassigned) {
    while (st->opening) co_await st->opened.wait();
    const topic_info* t = _image->find(st->topic);
    if (st->open_error != error_code::none || st->removed || !t) continue;
    sdk::reply rep = co_await ensure_group(*st, *t);
    if (rep.status == 0) on_group_update(rep.msg.bytes);
  }
  for (auto& st : gone) co_await remove_replica(st);
  // Cluster mode: every replica this node holds runs its group, whether or
  // not clients use it (followers replicate, and any may become leader).
  if (clustered()) {
    for (const auto& [name, t] : _image->topics) {
      for (int32_t p = 0; p < t.partitions; ++p) {
        if (shard_of(name, p, sdk::shard_count()) != sdk::this_shard()) continue;
        const std::vector<int32_t> reps = hosts_of(t, p, _self);
        if (std::find(reps.begin(), reps.end(), _self) == reps.end()) continue;
        error_code err;
        (void)co_await get(name, p, err);
      }
    }
  }
  // Partitions of deleted (or shrunk, or re-created) topics that this shard
  // owns but never opened since start-up still have data on disk: open and
  // remove them too.
  if (!previous) co_return;
  for (const auto& [name, old] : previous->topics) {
    const topic_info* now = _image->find(name);
    const int32_t keep = now && now->revision == old.revision ? now->partitions : 0;
    for (int32_t p = keep; p < old.partitions; ++p) {
      if (shard_of(name, p, sdk::shard_count()) != sdk::this_shard()) continue;
      bool was_open = false;
      for (const auto& st : gone) was_open |= st->topic == name && st->partition == p && st->revision == old.revision;
      if (was_open) continue;
      PartitionRequest r;
      r.mutable_id()->set_topic(name);
      r.mutable_id()->set_partition(p);
      r.mutable_id()->set_revision(old.revision);
      OpenRequest open;
      *open.mutable_id() = r.id();
      sdk::reply rep = co_await storage_call(STORAGE_OPEN, open.SerializeAsString());
      if (rep.status == 0) rep = co_await storage_call(STORAGE_REMOVE, r.SerializeAsString());
      if (rep.status != 0)
        sdk::log_warn("kafka: removing " + name + "-" + std::to_string(p) + ": " + error_text(rep));
    }
  }
}

task<void> partition_table::remove_replica(std::shared_ptr<state> st) {
  while (st->opening) co_await st->opened.wait();
  st->removed = true;
  wake(*st);
  st->changed.notify_all();
  if (st->open_error != error_code::none) co_return;
  if (clustered()) {
    cluster::RemoveRequest r;
    *r.mutable_id() = st->id;
    r.set_delete_data(true);
    sdk::reply rep = co_await raft_call(cluster::PARTITION_REMOVE, r.SerializeAsString());
    if (rep.status != 0)
      sdk::log_warn("kafka: removing the replica of " + st->topic + "-" + std::to_string(st->partition) +
                    ": raft status " + std::to_string(rep.status));
    co_return;
  }
  PartitionRequest r;
  *r.mutable_id() = st->id;
  sdk::reply rep = co_await storage_call(STORAGE_REMOVE, r.SerializeAsString());
  if (rep.status != 0)
    sdk::log_warn("kafka: removing " + st->topic + "-" + std::to_string(st->partition) + ": " + error_text(rep));
}

task<void> partition_table::retire_later(std::shared_ptr<state> st, sdk::gate::holder) {
  constexpr uint64_t settle_ms = 5000;
  if (co_await sdk::sleep_ms(settle_ms, &_stop) != -ETIME) co_return;
  st->retiring = false;
  auto it = _parts.find(key_of(st->topic, st->partition));
  if (it == _parts.end() || it->second != st || !_image) co_return;
  const topic_info* t = _image->find(st->topic);
  if (t && t->revision == st->revision) {
    const std::vector<int32_t> h = hosts_of(*t, st->partition, _self);
    if (std::find(h.begin(), h.end(), _self) != h.end()) co_return;  // moved back meanwhile
  }
  _parts.erase(it);
  sdk::log_info("kafka: the replica of " + st->topic + "-" + std::to_string(st->partition) +
                " moved off this broker: removing it");
  co_await remove_replica(st);
}

task<produce_outcome> partition_table::produce(const std::string& topic, int32_t partition, sdk::buffer batches,
                                               int16_t acks, bool defer_flush) {
  produce_outcome out;
  auto st = co_await get(topic, partition, out.error);
  if (!st) co_return out;
  // A new leader answers once its producer state is rebuilt.
  while (st->is_leader && !st->producers_ready && !st->removed) co_await st->changed.wait();
  if ((out.error = leader_check(*st)) != error_code::none) co_return out;
  if (st->flush_failed) {
    out.error = error_code::kafka_storage_error;
    out.message = "an earlier flush of " + topic + "-" + std::to_string(partition) + " failed";
    co_return out;
  }
  // CRCs are checked once, by the storage's append, unless this path
  // rewrites the batches (LogAppendTime) before they get there.
  const bool rewrites = st->settings.log_append_time;
  const batch_validation v =
      validate_produce_records({batches.data(), batches.size()}, st->settings.max_message_bytes, rewrites);
  if (v.error != error_code::none) {
    out.error = v.error;
    out.message = v.message;
    co_return out;
  }
  // Idempotence: check under the partition's producer lock, held until the
  // append is recorded. Only idempotent batches take it, so plain produce
  // keeps its concurrency (and the storage's group commit).
  std::vector<producer_batch_info> infos;
  sdk::fifo_mutex::guard producer_guard;
  int64_t checked_in_term = 0;  // clustered idempotent batches: appended only in the term they were checked in
  if (v.idempotent) {
    infos = producer_batches_of({batches.data(), batches.size()});
    producer_guard = co_await st->producer_mu.lock();
    // Leadership may have moved (and come back, with a rebuild) while this
    // request waited for the lock: check against the current term's state.
    while (st->is_leader && !st->producers_ready && !st->removed) co_await st->changed.wait();
    if ((out.error = leader_check(*st)) != error_code::none) co_return out;
    checked_in_term = st->leader_epoch;
    const sequence_verdict sv = st->producers.check(infos);
    if (sv.error != error_code::none) {
      out.error = sv.error;
      out.message = sv.message;
      // These errors are fatal to the producer. A deposed leader that has
      // not heard of its successor yet (resumed from a pause) has stale
      // producer state: it answers them only once a quorum confirms it.
      if (clustered() && !co_await confirm_leader(*st)) out.error = error_code::not_leader_or_follower;
      co_return out;
    }
    if (sv.duplicate) {
      // Nothing is appended, so the storage will not check this copy: a
      // corrupt retry must still get CORRUPT_MESSAGE.
      if (!rewrites) {
        const batch_validation full =
            validate_produce_records({batches.data(), batches.size()}, st->settings.max_message_bytes);
        if (full.error != error_code::none) {
          out.error = full.error;
          out.message = full.message;
          co_return out;
        }
      }
      // Kafka's answer to a retry of a batch already in the log: success
      // with the offset it got the first time; nothing is appended.
      out.base_offset = sv.base_offset;
      out.log_start_offset = st->log_start;
      co_return out;
    }
  }
  if (st->settings.log_append_time) {
    out.log_append_time_ms = now_ms();
    stamp_log_append_time({batches.data(), batches.size()}, out.log_append_time_ms);
  }
  if (clustered()) {
    // acks=-1 answers once committed (a majority fsynced it); with
    // defer_flush, once appended by this leader, and flush() waits for the
    // commit.
    cluster::ReplicateRequest rr;
    *rr.mutable_id() = st->id;
    rr.set_acks(acks == -1 && !defer_flush ? -1 : 1);
    rr.set_term(checked_in_term);
    out.needs_flush = acks == -1 && defer_flush;
    sdk::reply rep = co_await raft_call(cluster::PARTITION_REPLICATE, rr.SerializeAsString(), std::move(batches));
    cluster::ReplicateReply reply;
    if (rep.status != 0 || !reply.ParseFromString(rep.msg.bytes)) {
      out.error = error_code::unknown_server_error;
      out.message = "raft status " + std::to_string(rep.status);
      co_return out;
    }
    if ((out.error = error_of_cluster(reply.status())) != error_code::none) {
      out.message = reply.message();
      if (st->removed) out.error = error_code::unknown_topic_or_partition;
      co_return out;
    }
    out.base_offset = reply.base_offset();
    if (v.idempotent) st->producers.record(infos, reply.base_offset(), out.log_append_time_ms);
    if (reply.last_offset() > st->last_appended) {
      st->last_appended = reply.last_offset();
      st->last_appended_epoch = static_cast<int32_t>(reply.leader_epoch());
    }
    st->high_watermark = std::max(st->high_watermark, reply.high_watermark());
    out.log_start_offset = st->log_start;
    wake(*st);
    co_return out;
  }
  AppendRequest a;
  *a.mutable_id() = st->id;
  a.set_leader_epoch(leader_epoch_single_node);  // as Metadata reports it
  a.set_flush(acks == -1 && !defer_flush);
  out.needs_flush = acks == -1 && defer_flush;
  sdk::reply rep = co_await storage_call(STORAGE_APPEND, a.SerializeAsString(), std::move(batches));
  AppendReply ar;
  if ((out.error = parse_reply(rep, ar)) != error_code::none) {
    out.message = error_text(rep);
    if (st->removed) out.error = error_code::unknown_topic_or_partition;
    co_return out;
  }
  out.base_offset = ar.base_offset();
  if (v.idempotent) st->producers.record(infos, ar.base_offset(), out.log_append_time_ms);
  st->high_watermark = std::max(st->high_watermark, ar.last_offset() + 1);
  out.log_start_offset = st->log_start;
  wake(*st);
  co_return out;
}

task<produce_outcome> partition_table::flush(const std::string& topic, int32_t partition) {
  produce_outcome out;
  auto st = co_await get(topic, partition, out.error);
  if (!st) co_return out;
  if (clustered()) {
    // Committed means: the high watermark passed it while this broker still
    // leads in the term it appended in. A new term (even with this broker
    // leading again) may have replaced the entry: indeterminate, the client
    // retries, and idempotence finds it if it survived.
    const int64_t need = st->last_appended;
    const int32_t epoch = st->last_appended_epoch;
    const auto same_term = [&] { return st->is_leader && st->leader_epoch == epoch && !st->removed; };
    while (st->high_watermark <= need && same_term()) co_await st->changed.wait();
    if (st->high_watermark > need && same_term()) co_return out;
    out.error = st->removed ? error_code::unknown_topic_or_partition : error_code::not_leader_or_follower;
    out.message = topic + "-" + std::to_string(partition) + ": leadership moved before the write committed";
    co_return out;
  }
  PartitionRequest r;
  *r.mutable_id() = st->id;
  sdk::reply rep = co_await storage_call(STORAGE_FLUSH, r.SerializeAsString());
  LogState ls;
  if ((out.error = parse_reply(rep, ls)) != error_code::none) {
    out.message = error_text(rep);
    if (st->removed) {
      out.error = error_code::unknown_topic_or_partition;
    } else {
      st->flush_failed = true;
      out.error = error_code::kafka_storage_error;
    }
  }
  co_return out;
}

task<read_outcome> partition_table::read(const std::string& topic, int32_t partition, int64_t offset,
                                         uint64_t max_bytes) {
  read_outcome out;
  auto st = co_await get(topic, partition, out.error);
  if (!st) co_return out;
  if ((out.error = leader_check(*st)) != error_code::none) co_return out;
  out.log_start_offset = st->log_start;
  out.high_watermark = st->high_watermark;
  out.last_stable_offset = st->high_watermark;
  if (offset < st->log_start) {
    out.error = error_code::offset_out_of_range;
    co_return out;
  }
  if (offset > st->high_watermark) {
    // Out of range only past the log end, as Kafka: between the high
    // watermark and the log end (a leader whose commit index lags, e.g.
    // just elected or resumed after a pause) the answer is empty.
    int64_t log_end = st->high_watermark;
    if (clustered())
      if (const std::optional<LogState> ls = co_await log_state(*st)) log_end = ls->next_offset();
    if (offset > log_end) {
      out.error = error_code::offset_out_of_range;
      // A deposed leader that has not heard of its successor yet (resumed
      // from a pause) must not send the client back to its reset policy:
      // out of range only once a quorum confirms it still leads.
      if (clustered() && !co_await confirm_leader(*st)) out.error = error_code::not_leader_or_follower;
    }
    co_return out;
  }
  if (offset == st->high_watermark || max_bytes == 0) co_return out;
  ReadRequest r;
  *r.mutable_id() = st->id;
  r.set_offset(offset);
  r.set_max_bytes(max_bytes);
  r.set_max_offset(st->high_watermark);
  sdk::reply rep = co_await storage_call(STORAGE_READ, r.SerializeAsString());
  ReadReply rr;
  if ((out.error = parse_reply(rep, rr)) != error_code::none) {
    if (out.error == error_code::offset_out_of_range) {
      // Retention may have moved the start since our last look.
      out.log_start_offset = st->log_start = std::max(st->log_start, rr.state().start_offset());
    }
    co_return out;
  }
  st->log_start = rr.state().start_offset();
  out.log_start_offset = st->log_start;
  out.batches = std::move(rep.msg.buf);
  co_return out;
}

task<offset_outcome> partition_table::list_offset(const std::string& topic, int32_t partition, int64_t timestamp) {
  offset_outcome out;
  auto st = co_await get(topic, partition, out.error);
  if (!st) co_return out;
  if ((out.error = leader_check(*st)) != error_code::none) co_return out;
  // Refresh the start offset: retention runs in the storage.
  if (const std::optional<LogState> ls = co_await log_state(*st)) st->log_start = ls->start_offset();
  if (timestamp == -2) {
    out.offset = st->log_start;
    co_return out;
  }
  if (timestamp == -1) {
    // A deposed leader that has not heard of its successor yet (resumed
    // from a pause) would answer a stale end: it answers once a quorum
    // confirms it still leads (one heartbeat round).
    if (clustered() && !co_await confirm_leader(*st)) {
      out.error = error_code::not_leader_or_follower;
      co_return out;
    }
    out.offset = st->high_watermark;
    co_return out;
  }
  if (timestamp == -3) co_return co_await find_max_timestamp(*st);
  if (timestamp < 0) {
    out.error = error_code::invalid_request;
    co_return out;
  }
  TimestampRequest tr;
  *tr.mutable_id() = st->id;
  tr.set_timestamp(timestamp);
  sdk::reply rep = co_await storage_call(STORAGE_OFFSET_FOR_TIME, tr.SerializeAsString());
  TimestampReply reply;
  if ((out.error = parse_reply(rep, reply)) != error_code::none) {
    co_return out;
  }
  if (reply.offset() < 0) co_return out;  // no record at or after: offset -1
  // The storage finds the batch; the record inside it is found here.
  out.offset = std::max(reply.offset(), st->log_start);
  ReadRequest r;
  *r.mutable_id() = st->id;
  r.set_offset(out.offset);
  r.set_max_bytes(1);
  sdk::reply rrep = co_await storage_call(STORAGE_READ, r.SerializeAsString());
  if (rrep.status == 0 && rrep.msg.buf) {
    bool compressed = false;
    const auto& b = rrep.msg.buf;
    int64_t found_ts = -1;
    const int64_t exact = first_offset_at_or_after({b.data(), b.size()}, timestamp, &compressed, &found_ts);
    if (exact >= out.offset) out.offset = exact;
    out.timestamp = found_ts;
  }
  co_return out;
}

// KIP-734: the record with the largest timestamp below the high watermark
// (the first one, if several share it) and its offset; -1/-1 for none. The
// batch is found by scan_max_timestamp, the record inside it here (as for
// a lookup by timestamp).
task<offset_outcome> partition_table::find_max_timestamp(state& st) {
  offset_outcome out;
  auto guard = co_await st.max_ts_mu.lock();
  if (!co_await scan_max_timestamp(st)) {
    out.error = error_code::kafka_storage_error;
    co_return out;
  }
  if (st.max_timestamp_batch < 0) co_return out;
  out.offset = std::max(st.max_timestamp_batch, st.log_start);
  out.timestamp = st.max_timestamp;
  ReadRequest r;
  *r.mutable_id() = st.id;
  r.set_offset(out.offset);
  r.set_max_bytes(1);  // the whole batch holding it
  sdk::reply rep = co_await storage_call(STORAGE_READ, r.SerializeAsString());
  if (rep.status == 0 && rep.msg.buf) {
    bool compressed = false;
    int64_t found_ts = -1;
    const int64_t exact =
        first_offset_at_or_after({rep.msg.buf.data(), rep.msg.buf.size()}, st.max_timestamp, &compressed, &found_ts);
    if (exact >= out.offset) {
      out.offset = exact;
      out.timestamp = found_ts;
    }
  }
  co_return out;
}

// Reads the batch headers the last scan did not see, up to the high
// watermark; from the log start again once retention (or DeleteRecords)
// removed the batch it had found. Committed batches never change, so what
// was scanned stays true on this replica whichever broker leads.
task<bool> partition_table::scan_max_timestamp(state& st) {
  if (st.max_ts_scanned_to < st.log_start || (st.max_timestamp_batch >= 0 && st.max_timestamp_batch < st.log_start)) {
    st.max_ts_scanned_to = st.log_start;
    st.max_timestamp = -1;
    st.max_timestamp_batch = -1;
  }
  constexpr uint64_t chunk_bytes = 4u << 20;
  const int64_t end = st.high_watermark;
  while (st.max_ts_scanned_to < end) {
    ReadRequest r;
    *r.mutable_id() = st.id;
    r.set_offset(st.max_ts_scanned_to);
    r.set_max_bytes(chunk_bytes);
    r.set_max_offset(end);
    sdk::reply rep = co_await storage_call(STORAGE_READ, r.SerializeAsString());
    if (rep.status != 0 || !rep.msg.buf || rep.msg.buf.size() == 0) {
      sdk::log_warn("kafka: " + st.topic + "-" + std::to_string(st.partition) +
                    ": reading batch timestamps at offset " + std::to_string(st.max_ts_scanned_to) + ": " +
                    (rep.status != 0 ? error_text(rep) : std::string("no data")));
      co_return false;
    }
    const uint8_t* p = rep.msg.buf.data();
    const size_t n = rep.msg.buf.size();
    const int64_t before = st.max_ts_scanned_to;
    for (size_t at = 0; at + storage::batch_header_bytes <= n;) {
      const storage::batch_header h = storage::decode_header(p + at);
      if (h.batch_length <= 0 || at + h.size_bytes() > n || h.base_offset >= end) break;
      if (!h.is_control() && h.max_timestamp > st.max_timestamp) {
        st.max_timestamp = h.max_timestamp;
        st.max_timestamp_batch = h.base_offset;
      }
      st.max_ts_scanned_to = std::max(st.max_ts_scanned_to, h.last_offset() + 1);
      at += h.size_bytes();
    }
    if (st.max_ts_scanned_to == before) co_return false;  // no whole batch: never loop forever
  }
  co_return true;
}

task<offset_outcome> partition_table::delete_records(const std::string& topic, int32_t partition, int64_t offset) {
  offset_outcome out;
  auto st = co_await get(topic, partition, out.error);
  if (!st) co_return out;
  if ((out.error = leader_check(*st)) != error_code::none) co_return out;
  if (offset == -1) offset = st->high_watermark;
  if (offset < 0 || offset > st->high_watermark) {
    out.error = error_code::offset_out_of_range;
    co_return out;
  }
  if (offset <= st->log_start) {
    out.offset = st->log_start;
    co_return out;
  }
  TruncateRequest t;
  *t.mutable_id() = st->id;
  t.set_offset(offset);
  sdk::reply rep = co_await storage_call(STORAGE_TRUNCATE_PREFIX, t.SerializeAsString());
  LogState ls;
  if ((out.error = parse_reply(rep, ls)) != error_code::none) {
    co_return out;
  }
  st->log_start = ls.start_offset();
  out.offset = st->log_start;
  co_return out;
}

bool partition_table::log_start_behind(const std::string& topic, int32_t partition, int64_t revision, int32_t term,
                                       int64_t leader_log_start) const {
  auto it = _parts.find(key_of(topic, partition));
  if (it == _parts.end()) return false;
  const state& st = *it->second;
  if (st.revision != revision || st.opening || st.removed || st.open_error != error_code::none || st.is_leader ||
      st.following_log_start || term < st.leader_epoch)
    return false;
  // Only what this replica knows to be committed (the leader deletes below
  // its own high watermark, which may be ahead of this one's).
  return std::min(leader_log_start, st.high_watermark) > st.log_start;
}

task<void> partition_table::follow_log_start(std::string topic, int32_t partition, int64_t revision, int32_t term,
                                             int64_t leader_log_start) {
  if (!log_start_behind(topic, partition, revision, term, leader_log_start)) co_return;
  std::shared_ptr<state> st = _parts.find(key_of(topic, partition))->second;
  const int64_t target = std::min(leader_log_start, st->high_watermark);
  st->following_log_start = true;
  TruncateRequest t;
  *t.mutable_id() = st->id;
  t.set_offset(target);
  const sdk::reply rep = co_await storage_call(STORAGE_TRUNCATE_PREFIX, t.SerializeAsString());
  st->following_log_start = false;
  LogState ls;
  if (parse_reply(rep, ls) != error_code::none) {
    sdk::log_warn("kafka: " + topic + "-" + std::to_string(partition) + ": cannot move the log start to the leader's " +
                  std::to_string(target) + ": " + error_text(rep));
    co_return;
  }
  st->log_start = std::max(st->log_start, ls.start_offset());
}

task<offset_outcome> partition_table::epoch_end(const std::string& topic, int32_t partition, int32_t epoch) {
  offset_outcome out;
  auto st = co_await get(topic, partition, out.error);
  if (!st) co_return out;
  if ((out.error = leader_check(*st)) != error_code::none) co_return out;
  PartitionRequest pr;
  *pr.mutable_id() = st->id;
  sdk::reply rep = co_await storage_call(STORAGE_EPOCHS, pr.SerializeAsString());
  EpochTable table;
  if ((out.error = parse_reply(rep, table)) != error_code::none) co_return out;
  const std::optional<LogState> ls = co_await log_state(*st);
  if (!ls) {
    out.error = error_code::kafka_storage_error;
    co_return out;
  }
  const auto& e = table.entries();
  out.offset = -1;
  out.timestamp = -1;
  if (epoch < 0 || e.empty()) co_return out;
  if (e[e.size() - 1].epoch() == epoch) {
    out.timestamp = epoch;
    out.offset = ls->next_offset();
    co_return out;
  }
  int higher = -1;
  for (int i = 0; i < e.size(); ++i)
    if (e[i].epoch() > epoch) {
      higher = i;
      break;
    }
  if (higher < 0) co_return out;  // above every known epoch
  out.timestamp = higher == 0 ? epoch : e[higher - 1].epoch();
  out.offset = e[higher].start_offset();
  co_return out;
}

task<partition_summary> partition_table::summary(const std::string& topic, int32_t partition) {
  partition_summary out;
  auto st = co_await get(topic, partition, out.error);
  if (!st) co_return out;
  out.log_end_offset = st->high_watermark;
  if (const std::optional<LogState> ls = co_await log_state(*st)) {
    st->log_start = ls->start_offset();
    st->size_bytes = ls->size_bytes();
    out.log_end_offset = ls->next_offset();
  }
  out.log_start_offset = st->log_start;
  out.high_watermark = st->high_watermark;
  out.size_bytes = static_cast<int64_t>(st->size_bytes);
  co_return out;
}

task<producers_outcome> partition_table::describe_producers(const std::string& topic, int32_t partition) {
  producers_outcome out;
  auto st = co_await get(topic, partition, out.error);
  if (!st) co_return out;
  for (const auto& [id, e] : st->producers.producers())
    out.producers.push_back({id, e.epoch, e.last_seq(), e.last_timestamp()});
  co_return out;
}

// Producer state is not snapshotted (Kafka writes .snapshot files at segment
// rolls): it is rebuilt by reading every batch header from the log start.
// Reads return whole batches, so each header sits at a known place.
task<void> partition_table::rebuild_producers(state& st, int64_t end, producer_state_table& into) {
  constexpr uint64_t chunk_bytes = 4u << 20;
  int64_t offset = st.log_start;
  int64_t batches = 0;
  while (offset < end) {
    ReadRequest r;
    *r.mutable_id() = st.id;
    r.set_offset(offset);
    r.set_max_bytes(chunk_bytes);
    r.set_max_offset(end);
    sdk::reply rep = co_await storage_call(STORAGE_READ, r.SerializeAsString());
    if (rep.status != 0 || !rep.msg.buf || rep.msg.buf.size() == 0) {
      // Producers whose batches were not seen are unknown: their next
      // batch is accepted whatever its sequence (as in Kafka after
      // retention removed their state), so this degrades, never blocks.
      sdk::log_warn("kafka: " + st.topic + "-" + std::to_string(st.partition) +
                    ": producer state rebuilt only up to offset " + std::to_string(offset) + ": " +
                    (rep.status != 0 ? error_text(rep) : std::string("no data")));
      break;
    }
    const uint8_t* p = rep.msg.buf.data();
    const size_t n = rep.msg.buf.size();
    const int64_t before = offset;
    for (size_t at = 0; at + storage::batch_header_bytes <= n;) {
      const storage::batch_header h = storage::decode_header(p + at);
      if (h.batch_length <= 0 || at + h.size_bytes() > n) break;
      if (h.producer_id >= 0 && !h.is_control()) {
        into.replay(producer_batch_at(p + at), h.base_offset);
        ++batches;
      }
      offset = std::max(offset, h.last_offset() + 1);
      at += h.size_bytes();
    }
    if (offset == before) break;  // no whole batch: never loop forever
  }
  if (batches > 0)
    sdk::log_info("kafka: " + st.topic + "-" + std::to_string(st.partition) + ": " +
                  std::to_string(into.producers().size()) + " producer(s) restored from " +
                  std::to_string(batches) + " batch(es)");
}

task<void> partition_table::wait_for_data(const std::vector<fetch_position>& positions, uint64_t timeout_ms) {
  sdk::abort_source woken;
  std::vector<std::shared_ptr<state>> registered;
  for (const auto& p : positions) {
    error_code err;
    auto st = co_await get(p.topic, p.partition, err);
    if (!st || st->high_watermark > p.offset || p.offset < st->log_start || leader_check(*st) != error_code::none)
      co_return;  // ready (or an error to report)
    registered.push_back(st);
  }
  for (auto& st : registered) st->waiters.push_back(&woken);
  (void)co_await sdk::sleep_ms(timeout_ms, &woken);
  for (auto& st : registered) st->waiters.remove(&woken);
}

task<void> partition_table::close_all() {
  _closed = true;
  _stop.request_abort();
  co_await _tasks.close();
  for (auto& [key, st] : _parts) {
    while (st->opening) co_await st->opened.wait();
    wake(*st);
    st->removed = true;  // producers waiting for a commit give up
    st->changed.notify_all();
    // Cluster mode: the raft plugin owns the logs and closes them when it stops.
    if (st->open_error != error_code::none || clustered()) continue;
    PartitionRequest r;
    *r.mutable_id() = st->id;
    (void)co_await storage_call(STORAGE_CLOSE, r.SerializeAsString());
  }
  _parts.clear();
}

}  // namespace sluice::kafka
