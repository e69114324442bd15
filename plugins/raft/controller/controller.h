// controller: the controller group (group 0) on shard 0 of every broker that
// the configuration lists in raft.seeds (its voters).
//
// Its state machine belongs to the kafka plugin, which subscribes once it
// starts: every committed command is handed to that service in commit order,
// from the first one after the snapshot (a restart replays the whole log).
// The commands themselves are opaque here (docs/RAFT.md, "The controller").
// propose() runs on the leader; the plugin forwards proposals from other
// brokers to it.
#pragma once

#include "../group.h"
#include "controller_log.h"

#include <sluice/sdk/runtime.h>

#include <deque>
#include <functional>
#include <memory>
#include <string>

namespace sluice::raft::controller {

struct propose_result {
  bool ok = false;
  bool not_leader = false;
  std::string message;
  log_index index;
  node_id leader;
};

class controller_group final : public group {
 public:
  controller_group(std::string path, membership voters, uint32_t election_ticks, uint32_t heartbeat_ticks,
                   group_env& env);
  ~controller_group() override;

  sdk::task<result<void>> open(node_id self, uint64_t seed, sdk::gate::holder h);
  sdk::task<void> close();

  // Leader only: appends the command and returns once it is committed.
  sdk::task<propose_result> propose(std::string command);
  // The state machine: committed commands go to `apply(index, command)`
  // (awaited, in order); `restore(index, data)` replaces the state with a
  // snapshot (at start, or one installed from the leader) before the
  // commands after it; `snapshot()` answers the state as of the last
  // command applied, taken every `snapshot_entries` entries to compact the
  // log (0: never).
  struct state_machine {
    std::function<sdk::task<void>(log_index, std::string)> apply;
    std::function<sdk::task<void>(log_index, std::string)> restore;
    std::function<sdk::task<std::string>()> snapshot;
    uint64_t snapshot_entries = 0;
  };
  void subscribe(state_machine sm);

  // Leader only: makes `node` a learner (it receives the log, never votes)
  // unless it is a member already; one change at a time, retried by the
  // joining broker until it is in.
  void add_learner(node_id node) {
    _learner_requests.push_back(node);
    poke();
  }
  const membership& members() const noexcept { return _members; }

  node_id leader() const noexcept { return _leader; }
  term_id term() const noexcept { return _term; }
  role current_role() const noexcept { return _role; }
  log_index commit_index() const noexcept { return _commit; }
  log_index delivered_index() const noexcept { return _delivered; }

 protected:
  void on_round(raft_node& n) override;
  sdk::task<result<void>> persist(const ready& rd) override;
  sdk::task<void> applied(const ready& rd) override;
  void on_stopped() override;

 private:
  struct pending {
    std::string command;
    log_index index;
    propose_result res;
    sdk::event done;
    bool finished = false;
    void finish(propose_result r) {
      if (finished) return;
      finished = true;
      res = std::move(r);
      done.set();
    }
  };
  sdk::task<void> deliver(sdk::gate::holder);
  void fail_all(const std::string& why);

  controller_log _log;
  membership _voters;
  uint32_t _election_ticks;
  uint32_t _heartbeat_ticks;
  std::deque<std::shared_ptr<pending>> _to_propose;
  std::deque<std::shared_ptr<pending>> _waiting;
  std::vector<node_id> _learner_requests;
  membership _members;  // as of the last round
  state_machine _sm;
  log_index _delivered;
  log_index _commit;
  node_id _leader;
  term_id _term;
  role _role = role::follower;
  sdk::condition _committed;
  bool _closing = false;
  sdk::gate _tasks;
};

}  // namespace sluice::raft::controller
