// partition_group: one partition's Raft group, whose log is the storage
// plugin's partition log (docs/RAFT.md, "Partition groups").
//
// Leader: replicate() stamps each producer batch with its offset and the
// current term (partitionLeaderEpoch), proposes it, and answers once the
// batch is written locally (acks=1) or committed, i.e. fsynced on a majority
// (acks=-1). Follower: appends what the leader sends at the leader's
// offsets. The commit index is the high watermark.
#pragma once

#include "../group.h"
#include "hard_state_file.h"
#include "batch_codec.h"
#include "log_view.h"

#include <sluice/sdk/runtime.h>

#include <deque>
#include <functional>
#include <map>
#include <set>
#include <memory>
#include <optional>
#include <string>

namespace sluice::storage {
class PartitionId;
class LogState;
}

namespace sluice::raft::partition {

struct partition_key {
  std::string topic;
  int32_t partition = 0;
  int64_t revision = 0;
  std::string name() const { return topic + "/" + std::to_string(partition); }
};

// The group id of a partition: the same on every broker.
group_id group_of(const partition_key& k) noexcept;

enum class replicate_status { ok, not_leader, storage_error, shutting_down, invalid };

struct replicate_result {
  replicate_status status = replicate_status::ok;
  std::string message;
  int64_t base_offset = -1;
  int64_t last_offset = -1;
  node_id leader;
  term_id term;
  int64_t high_watermark = -1;
};

struct partition_settings {
  int32_t storage_service = -1;
  std::string state_dir;  // <data_dir>/raft/partitions
  uint64_t tail_cache_bytes = 4u << 20;
  uint32_t election_timeout_ticks = 10;
  uint32_t heartbeat_interval_ticks = 1;
  uint32_t tick_ms = 100;
  // Leadership goes back to the first replica once it is caught up, checked
  // every this many ticks (0: never).
  uint32_t preferred_leader_check_ticks = 50;
};

class partition_group final : public group {
 public:
  // `on_change`: called after a round that changed the leader, term, high
  // watermark or membership (the plugin tells the kafka plugin).
  // bootstrap: the voters of a brand-new group (used only while the log
  // holds no membership); empty: this replica joins a running group, whose
  // leader adds it as a learner. assigned: the controller's replicas, the
  // first preferred; the leader moves the membership to them (a move).
  partition_group(partition_key key, const std::vector<node_id>& bootstrap, std::vector<node_id> assigned,
                  std::string overrides, const partition_settings& s, group_env& env,
                  std::function<void(partition_group&)> on_change);
  ~partition_group() override;

  // Opens the storage log and the hard state, then starts the driver.
  sdk::task<result<void>> open(node_id self, uint64_t seed, sdk::gate::holder h);
  // Stops the driver, fails the waiting producers, closes (or removes) the log.
  sdk::task<void> close(bool delete_data);

  // term non-zero: proposed only while this broker leads in that term.
  sdk::task<replicate_result> replicate(sdk::buffer batches, int32_t acks, term_id term = term_id{});
  // Leader only: true once a quorum confirmed this node still leads (a
  // read_index round), false if it does not, or after an election timeout.
  // For answers that a deposed leader must not give (an offset beyond its
  // log is out of range only if it still leads).
  sdk::task<bool> confirm_leadership();
  // Leadership transfer to target (no_node: the preferred replica).
  result<void> transfer(node_id target);

  const partition_key& key() const noexcept { return _key; }
  // The membership in effect (as persisted in this replica's log).
  const membership& replicas() const noexcept { return _view.members(); }
  // The controller's assignment changed (a move started, or was cancelled).
  void set_assigned(std::vector<node_id> assigned);
  const std::vector<node_id>& assigned() const noexcept { return _assigned; }
  // True while the membership differs from the assignment or its last
  // change is not committed.
  bool moving() const;
  // A repair in progress (docs/RAFT.md, "Repairing a replica"): the log end
  // offset the replica must reach again before it is an ordinary voter; -1
  // when none.
  int64_t repair_until_offset() const;
  int64_t high_watermark() const noexcept { return _hw; }
  log_index commit_index() const noexcept { return _commit; }
  int64_t log_start_offset() const noexcept { return offset_of_index(_view.first_index()); }
  // The storage's log start offset as last read (Kafka's log start: it may
  // lie inside the entry the Raft log starts with, after DeleteRecords).
  int64_t storage_log_start() const noexcept { return _storage_start; }
  int64_t log_end_offset() const noexcept { return static_cast<int64_t>(_view.last_index().value()); }
  node_id leader() const noexcept { return _leader; }
  term_id term() const noexcept { return _term; }
  role current_role() const noexcept { return _role; }

  // Per tick: preferred-leader return, maintenance drain, replica moves.
  void tick_preferred();
  // The brokers in maintenance mode (the shard's set, updated in place): a
  // leader in it hands leadership to a caught-up replica outside it, and no
  // leadership goes back to a preferred replica in it.
  void set_maintenance(const std::set<uint64_t>* m) noexcept { _maintenance = m; }

 protected:
  void on_round(raft_node& n) override;
  sdk::task<result<void>> persist(const ready& rd) override;
  sdk::task<void> applied(const ready& rd) override;
  void on_stopped() override;

 private:
  struct pending;
  struct pending_confirm {
    uint64_t id = 0;
    bool ok = false;
    bool finished = false;
    sdk::event done;
    void finish(bool v) {
      if (finished) return;
      finished = true;
      ok = v;
      done.set();
    }
  };
  void fail_confirms();
  // Leader: the next single-server step from the membership towards the
  // assignment (add a learner, promote it once caught up, remove what is
  // not assigned; a leader that is not assigned hands leadership over).
  void move_replicas();
  sdk::task<result<void>> load_confs();
  sdk::task<result<void>> repair_at_open(storage::LogState& ls, persisted_state& st);
  sdk::task<result<void>> write_confs(const std::vector<conf_record>& recs);
  sdk::task<sdk::reply> storage_call(uint32_t type, const std::string& body, sdk::buffer buf = {});
  sdk::task<result<void>> append(const std::vector<entry>& ents);
  sdk::task<void> read_back(log_index from, sdk::gate::holder);
  sdk::task<void> refresh_log_start();
  void fail_waiters(replicate_status st, const std::string& why, log_index from = log_index{});
  void complete_waiters();
  replicate_result base_result() const;

  partition_key _key;
  std::string _id_bytes;  // serialized storage PartitionId
  std::string _overrides;  // serialized LogOverrides
  partition_settings _settings;
  std::function<void(partition_group&)> _on_change;
  log_view _view;
  hard_state_file _hs;
  std::string _members_path;  // the .members file (conf_records)
  std::vector<node_id> _assigned;
  std::optional<conf_change> _conf_to_propose;
  uint32_t _move_ticks = 0;
  node_id _self;

  std::deque<std::shared_ptr<pending>> _to_propose;
  std::deque<std::shared_ptr<pending>> _waiting;  // proposed, by index
  log_index _persisted;  // last index appended to the storage (written, maybe not fsynced)
  int64_t _hw = 0;     // the high watermark reported (see applied())
  log_index _commit;   // the commit index
  node_id _leader;
  term_id _term;
  role _role = role::follower;
  bool _reading = false;
  bool _closed = false;
  uint32_t _preferred_ticks = 0;
  uint32_t _start_ticks = 0;
  int64_t _storage_start = 0;  // the storage's log start offset (may be inside the first entry)
  node_id _preferred;
  node_id _transfer_to;
  const std::set<uint64_t>* _maintenance = nullptr;
  uint32_t _drain_ticks = 0;
  std::deque<std::shared_ptr<pending_confirm>> _confirms_to_start;
  std::map<uint64_t, std::shared_ptr<pending_confirm>> _confirms;  // started, by read_index request id
  uint64_t _next_confirm = 1;
  sdk::gate _tasks;
};

}  // namespace sluice::raft::partition
