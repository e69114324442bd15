// group: drives one raft_node on its shard (docs/RAFT.md, "The ready/advance
// contract").
//
// Everything that touches the node runs in one driver coroutine per group:
// ticks and received messages are queued by tick()/step() and fed to the
// node by the driver, so nothing reaches the node between ready() and
// advance(). Each round the driver takes a ready and:
//   1. sends its early messages (a leader's appends leave before its own
//      fdatasync);
//   2. persists it (persist(): snapshot, truncation, entries, hard state,
//      durable on return);
//   3. sends its messages (votes and acknowledgements leave only after
//      that);
//   4. lets the subclass apply what committed (applied());
//   5. advances the node.
// Proposals queued meanwhile are proposed at the start of the next round,
// so concurrent producers share one append and one fdatasync.
//
// A failed persist (an I/O error) stops the group: it no longer answers, so
// the other replicas elect a leader without it; the error is logged once.
#pragma once

#include "raft_node.h"

#include <sluice/sdk/runtime.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace sluice::raft {

using group_id = uint64_t;
inline constexpr group_id controller_group_id = 0;

// What a group needs from its shard: sending (queued, the shard flushes the
// transport once per loop turn) and its tick.
struct group_env {
  std::function<void(node_id to, group_id group, const message& m)> send;
};

class group {
 public:
  group(group_id id, std::string name, group_env& env) : _id(id), _name(std::move(name)), _env(env) {}
  group(const group&) = delete;
  group& operator=(const group&) = delete;
  virtual ~group() = default;

  group_id id() const noexcept { return _id; }
  const std::string& name() const noexcept { return _name; }
  bool failed() const noexcept { return _failed; }
  bool running() const noexcept { return _node != nullptr && !_stopping; }

  // The driver runs until stop(); `node` reads this group's log.
  void start(std::unique_ptr<raft_node> node, sdk::gate::holder h);
  void tick() {
    ++_ticks;
    _wake.notify_all();
  }
  void step(message m) {
    if (_failed || _stopping) return;
    _inbox.push_back(std::move(m));
    _wake.notify_all();
  }
  // Wakes the driver to call on_round() (e.g. new proposals are queued).
  void poke() { _wake.notify_all(); }
  // Stops the driver after its current round; waits for it.
  sdk::task<void> stop();

  // The node's state as of the last round (never during one).
  const raft_node* node() const noexcept { return _node.get(); }
  node_status status() const { return _node->status(); }

 protected:
  // Called at the start of every round, when the node may be used (propose,
  // transfer_leadership, ...).
  virtual void on_round(raft_node&) {}
  // Makes rd's snapshot, truncation, entries and hard state durable.
  virtual sdk::task<result<void>> persist(const ready& rd) = 0;
  // After the messages went out: apply committed entries, tell waiters,
  // report leadership changes. The node is not usable until it returns.
  virtual sdk::task<void> applied(const ready& rd) = 0;
  // The group stopped on an error, or stop() was called.
  virtual void on_stopped() {}

  raft_node& mutable_node() noexcept { return *_node; }

 private:
  sdk::task<void> run(sdk::gate::holder);

  group_id _id;
  std::string _name;
  group_env& _env;
  std::unique_ptr<raft_node> _node;
  std::vector<message> _inbox;
  uint32_t _ticks = 0;
  sdk::condition _wake;
  sdk::event _done;
  bool _stopping = false;
  bool _failed = false;
  bool _running = false;
};

}  // namespace sluice::raft
