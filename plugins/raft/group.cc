#include "group.h"

namespace sluice::raft {

void group::start(std::unique_ptr<raft_node> node, sdk::gate::holder h) {
  SLUICE_ASSERT_MSG(!_node, "a group starts once");
  _node = std::move(node);
  _running = true;
  sdk::spawn(run(std::move(h)));
}

sdk::task<void> group::stop() {
  if (!_running) co_return;
  _stopping = true;
  _wake.notify_all();
  co_await _done.wait();
}

sdk::task<void> group::run(sdk::gate::holder) {
  raft_node& n = *_node;
  while (!_stopping) {
    for (; _ticks > 0; --_ticks) n.tick();
    if (!_inbox.empty()) {
      std::vector<message> in;
      in.swap(_inbox);
      for (const message& m : in) n.step(m);
    }
    on_round(n);
    if (!n.has_ready()) {
      co_await _wake.wait();
      continue;
    }
    ready rd = n.ready();
    for (const message& m : rd.early_messages) _env.send(m.to, _id, m);
    result<void> r = co_await persist(rd);
    if (!r) {
      sdk::log_error("raft: group " + _name + " stops: " + r.err().message +
                     "; the other replicas take over without this one");
      _failed = true;
      break;
    }
    for (const message& m : rd.messages) _env.send(m.to, _id, m);
    co_await applied(rd);
    n.advance(rd);
  }
  _running = false;
  _inbox.clear();
  on_stopped();
  _done.set();
}

}  // namespace sluice::raft
