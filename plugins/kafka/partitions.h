// The partitions one shard owns (shard_of(topic, partition)), and every
// operation on them: produce, read, list offsets, delete records, wait for
// data. Each runs on the owning shard only, so a partition's state needs no
// lock; requests that arrive on other shards are forwarded here
// (request_router in broker.h).
//
// The log itself is the storage plugin's (`storage.log` service, called on
// this same shard). Leadership: in this single-node part every partition is
// led by this node with leader epoch 0; the Raft plugin will own that state.
#pragma once

#include "errors.h"
#include "kafka_config.h"
#include "metadata_image.h"
#include "producer_state.h"
#include "topic_configs.h"

#include <sluice/sdk/runtime.h>

#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace sluice::storage {
class LogState;  // proto/sluice/storage.proto
}

namespace sluice::kafka {

struct produce_outcome {
  error_code error = error_code::none;
  bool needs_flush = false;  // appended with defer_flush: call flush() before acknowledging
  std::string message;
  int64_t base_offset = -1;
  int64_t log_append_time_ms = -1;
  int64_t log_start_offset = -1;
};

struct read_outcome {
  error_code error = error_code::none;
  int64_t high_watermark = -1;
  int64_t last_stable_offset = -1;
  int64_t log_start_offset = -1;
  sdk::buffer batches;  // whole batches from the requested offset, or empty
};

struct offset_outcome {
  error_code error = error_code::none;
  int64_t offset = -1;
  int64_t timestamp = -1;
};

struct partition_summary {
  error_code error = error_code::none;
  int64_t log_start_offset = -1;
  int64_t high_watermark = -1;
  int64_t log_end_offset = -1;  // this replica's log end (next offset)
  int64_t size_bytes = 0;
};

// DescribeProducers: one idempotent producer as the partition knows it.
struct producer_description {
  int64_t producer_id = -1;
  int16_t producer_epoch = -1;
  int32_t last_sequence = -1;
  int64_t last_timestamp = -1;
};

struct producers_outcome {
  error_code error = error_code::none;
  std::vector<producer_description> producers;
};

struct fetch_position {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = 0;
};

class partition_table {
 public:
  partition_table(const kafka_config& cfg, int32_t storage_service) : _cfg(cfg), _storage(storage_service) {}

  // Cluster mode: partitions are Raft groups of the raft plugin (its
  // "raft.partition" service on this shard); this node serves the ones it
  // leads and answers NOT_LEADER_OR_FOLLOWER for the others.
  // move_done(topic, revision, partition, voters): this broker leads a
  // partition whose move is done (its group's voters are the assignment);
  // the broker tells the controller (topic_manager::finish_move).
  using move_done_fn = std::function<void(const std::string&, int64_t, int32_t, std::vector<int32_t>)>;
  void set_cluster(int32_t raft_service, int32_t self, move_done_fn move_done) {
    _raft = raft_service;
    _self = self;
    _move_done = std::move(move_done);
  }
  bool clustered() const noexcept { return _raft >= 0; }
  // Cluster mode: the raft plugin reports a group's leader, term and high
  // watermark (a serialized cluster.GroupState).
  void on_group_update(const std::string& group_state);
  // Cluster mode, on a follower: the partition's leader announced its log
  // start offset (in `term`); records below it were deleted there
  // (DeleteRecords), so they go here too, up to this replica's high
  // watermark. Kafka's followers follow the leader's log start the same way.
  sdk::task<void> follow_log_start(std::string topic, int32_t partition, int64_t revision, int32_t term,
                                   int64_t leader_log_start);
  // Whether follow_log_start() would truncate (cheap; called for every
  // announced partition).
  bool log_start_behind(const std::string& topic, int32_t partition, int64_t revision, int32_t term,
                        int64_t leader_log_start) const;
  // The leader and epoch this shard knows for a partition it hosts (-1: none).
  std::pair<int32_t, int32_t> leader_of(const std::string& topic, int32_t partition) const;

  // The metadata changed (on this shard): partitions of deleted or
  // re-created topics are removed from disk, config changes re-applied.
  sdk::task<void> apply_image(image_ptr img);
  const image_ptr& image() const noexcept { return _image; }

  // acks: -1 waits for fdatasync, 1 for the write, 0 like 1 (no response
  // is sent, but the append still completes before the next request).
  // Batches with a producer id pass the idempotence checks first
  // (producer_state.h); a duplicate gets its original base offset and is
  // not appended again.
  //
  // defer_flush (acks -1 only): return once the batches are appended (their
  // order in the log is fixed) without waiting for fdatasync; the caller
  // acknowledges after flush(). A connection's next produce request then
  // overlaps this one's flush, and their syncs are shared (group commit).
  sdk::task<produce_outcome> produce(const std::string& topic, int32_t partition, sdk::buffer batches,
                                     int16_t acks, bool defer_flush = false);
  // Returns once everything appended to the partition so far is on stable
  // storage (concurrent calls share one fdatasync). A failure fails every
  // later produce to the partition (KAFKA_STORAGE_ERROR). Cluster mode: once
  // it is committed (the high watermark passed it).
  sdk::task<produce_outcome> flush(const std::string& topic, int32_t partition);
  sdk::task<read_outcome> read(const std::string& topic, int32_t partition, int64_t offset, uint64_t max_bytes);
  // timestamp: -1 latest, -2 earliest, -3 max timestamp, else the first
  // offset whose record timestamp is >= it.
  sdk::task<offset_outcome> list_offset(const std::string& topic, int32_t partition, int64_t timestamp);
  // DeleteRecords: offset -1 means the high watermark. Returns the new low
  // watermark in outcome.offset.
  sdk::task<offset_outcome> delete_records(const std::string& topic, int32_t partition, int64_t offset);
  // OffsetForLeaderEpoch (cluster mode, leader only): the largest epoch <=
  // `epoch` in outcome.timestamp and where the next epoch starts (the log end
  // for the latest) in outcome.offset; -1/-1 for an epoch above every known.
  sdk::task<offset_outcome> epoch_end(const std::string& topic, int32_t partition, int32_t epoch);
  sdk::task<partition_summary> summary(const std::string& topic, int32_t partition);
  sdk::task<producers_outcome> describe_producers(const std::string& topic, int32_t partition);
  // Returns once any position has data beyond its offset (or its
  // partition went away), or after timeout_ms.
  sdk::task<void> wait_for_data(const std::vector<fetch_position>& positions, uint64_t timeout_ms);
  // Closes every partition (shard stop); later requests get
  // NOT_LEADER_OR_FOLLOWER, which clients retry elsewhere.
  sdk::task<void> close_all();

 private:
  struct state;
  sdk::task<std::shared_ptr<state>> get(const std::string& topic, int32_t partition, error_code& err);
  sdk::task<sdk::reply> storage_call(uint32_t type, const std::string& body, sdk::buffer buf = {});
  void wake(state& st);
  sdk::task<void> rebuild_producers(state& st, int64_t end, producer_state_table& into);
  sdk::task<void> become_leader(std::shared_ptr<state> st);
  sdk::task<sdk::reply> raft_call(uint32_t type, const std::string& body, sdk::buffer buf = {});
  // Cluster mode: starts (or updates the assignment of) the partition's group.
  sdk::task<sdk::reply> ensure_group(const state& st, const topic_info& t);
  void check_move_done(state& st, const std::vector<int32_t>& voters, const std::vector<int32_t>& assigned, bool moving);
  // Stops the partition's replica here and deletes its data.
  sdk::task<void> remove_replica(std::shared_ptr<state> st);
  // Cluster mode: a replica moved off this broker is removed only if the
  // image still says so a while later: a restarting broker replays old
  // images (a move away and back) before it reaches the current one.
  sdk::task<void> retire_later(std::shared_ptr<state> st, sdk::gate::holder);
  error_code leader_check(const state& st) const;
  // The storage's LogState of the partition (nullopt if the call failed).
  sdk::task<std::optional<storage::LogState>> log_state(const state& st);
  // ListOffsets -3 (max timestamp), and the log scan behind it (false when
  // the log could not be read).
  sdk::task<offset_outcome> find_max_timestamp(state& st);
  sdk::task<bool> scan_max_timestamp(state& st);
  // Cluster mode: a read_index round confirms this broker still leads.
  sdk::task<bool> confirm_leader(const state& st);

  const kafka_config& _cfg;
  int32_t _storage;
  int32_t _raft = -1;
  int32_t _self = 0;
  move_done_fn _move_done;
  sdk::gate _tasks;
  sdk::abort_source _stop;
  image_ptr _image;
  bool _closed = false;
  std::unordered_map<std::string, std::shared_ptr<state>> _parts;  // key: topic + '\0' + partition
};

}  // namespace sluice::kafka
