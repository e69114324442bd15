#include "controller.h"

namespace sluice::raft::controller {

using sdk::task;

controller_group::controller_group(std::string path, membership voters, uint32_t election_ticks,
                                   uint32_t heartbeat_ticks, group_env& env)
    : group(controller_group_id, "controller", env),
      _log(std::move(path), voters),
      _voters(std::move(voters)),
      _election_ticks(election_ticks),
      _heartbeat_ticks(heartbeat_ticks) {}

controller_group::~controller_group() {
  SLUICE_ASSERT_MSG(_waiting.empty() && _to_propose.empty(), "the controller is closed before it is destroyed");
}

task<result<void>> controller_group::open(node_id self, uint64_t seed, sdk::gate::holder h) {
  auto r = co_await _log.open();
  if (!r) co_return r.err();
  config cfg;
  cfg.self = self;
  cfg.bootstrap = _voters;
  cfg.election_timeout_ticks = _election_ticks;
  cfg.heartbeat_interval_ticks = _heartbeat_ticks;
  cfg.deliver_committed_entries = false;  // deliver() reads the log itself, from the start
  // deliver() restores the snapshot (if any) first, then applies what follows.
  _delivered = log_index{};
  cfg.applied = log_index{};
  start(std::make_unique<raft_node>(cfg, _log.log(), seed), std::move(h));
  co_return result<void>{};
}

task<void> controller_group::close() {
  if (_closing) co_return;
  _closing = true;
  co_await stop();
  fail_all("the controller is shutting down");
  _committed.notify_all();
  co_await _tasks.close();
  co_await _log.close();
}

void controller_group::subscribe(state_machine sm) {
  SLUICE_ASSERT_MSG(!_sm.apply, "one subscriber");
  SLUICE_ASSERT(sm.apply && sm.restore && sm.snapshot);
  _sm = std::move(sm);
  if (auto h = _tasks.try_enter()) sdk::spawn(deliver(std::move(h)));
}

task<propose_result> controller_group::propose(std::string command) {
  auto p = std::make_shared<pending>();
  p->command = std::move(command);
  if (_closing || !running()) {
    p->res.message = "the controller is not running";
    co_return p->res;
  }
  _to_propose.push_back(p);
  poke();
  co_await p->done.wait();
  co_return std::move(p->res);
}

void controller_group::on_round(raft_node& n) {
  for (node_id id : std::exchange(_learner_requests, {})) {
    if (n.current_role() != role::leader || n.members().contains(id)) continue;
    auto r = n.propose_conf_change(conf_change{conf_change_type::add_learner, id});
    if (r) sdk::log_info("raft: controller: adding broker " + std::to_string(id.value()) + " as a learner");
    else sdk::log_debug("raft: controller: adding learner " + std::to_string(id.value()) + ": " + r.err().message);
  }
  while (!_to_propose.empty()) {
    auto p = _to_propose.front();
    _to_propose.pop_front();
    auto r = n.propose(payload(std::move(p->command)));
    if (!r) {
      propose_result out;
      out.not_leader = r.err().code == make_error_code(errc::not_leader) ||
                       r.err().code == make_error_code(errc::transfer_in_progress);
      out.leader = n.leader();
      out.message = r.err().message;
      p->finish(std::move(out));
      continue;
    }
    p->index = r.value();
    _waiting.push_back(std::move(p));
  }
}

task<result<void>> controller_group::persist(const ready& rd) { co_return co_await _log.persist(rd); }

task<void> controller_group::applied(const ready& rd) {
  raft_node& n = mutable_node();
  const bool was_leader = _role == role::leader;
  _term = n.term();
  _leader = n.leader();
  _role = n.current_role();
  _members = n.members();
  if (rd.commit > _commit) {
    _commit = rd.commit;
    _committed.notify_all();
  }
  while (!_waiting.empty() && _waiting.front()->index <= _commit) {
    propose_result out;
    out.ok = true;
    out.index = _waiting.front()->index;
    out.leader = _leader;
    _waiting.front()->finish(std::move(out));
    _waiting.pop_front();
  }
  if (was_leader && _role != role::leader) fail_all("the controller lost its leadership; retry at the new leader");
  co_return;
}

void controller_group::fail_all(const std::string& why) {
  for (auto* q : {&_waiting, &_to_propose}) {
    for (auto& p : *q) {
      propose_result out;
      out.not_leader = true;
      out.leader = _leader;
      out.message = why;
      p->finish(std::move(out));
    }
    q->clear();
  }
}

void controller_group::on_stopped() { fail_all(failed() ? "the controller stopped on a storage error" : "the controller is shutting down"); }

task<void> controller_group::deliver(sdk::gate::holder) {
  while (!_closing) {
    // A snapshot beyond what the state machine holds (at start, or one the
    // leader installed): the state machine starts over from it.
    const snapshot& snap = _log.log().stored_snapshot();
    if (snap.meta.index > _delivered) {
      const log_index at = snap.meta.index;
      co_await _sm.restore(at, std::string(snap.data.view()));
      _delivered = at;
      continue;
    }
    if (_delivered >= _commit) {
      co_await _committed.wait();
      continue;
    }
    // Copy what to deliver first: the log may change while apply() waits.
    auto got = _log.log().entries(_delivered + 1, _commit + 1, 4u << 20);
    if (!got) {
      // Compacted meanwhile: the snapshot comes first (next turn).
      if (_log.log().stored_snapshot().meta.index <= _delivered) {
        sdk::log_error("raft: controller: cannot read committed entries: " + got.err().message);
        co_await _committed.wait();
      }
      continue;
    }
    for (const entry& e : got.value()) {
      if (e.type == entry_type::normal) co_await _sm.apply(e.index, std::string(e.data.view()));
      _delivered = e.last();
      if (_closing) co_return;
    }
    // Compaction: the state as of _delivered replaces the log up to it.
    if (_sm.snapshot_entries > 0 &&
        _delivered.value() - _log.log().stored_snapshot().meta.index.value() >= _sm.snapshot_entries) {
      const log_index at = _delivered;
      std::string data = co_await _sm.snapshot();
      if (at != _delivered || _closing) continue;  // something applied meanwhile: take it next time
      auto r = co_await _log.compact(at, std::move(data));
      if (!r)
        sdk::log_warn("raft: controller: compacting the log failed (it stays whole): " + r.err().message);
      else
        sdk::log_info("raft: controller: log compacted into a snapshot at index " + std::to_string(at.value()));
    }
  }
}

}  // namespace sluice::raft::controller
