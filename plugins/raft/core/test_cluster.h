// test_cluster: a synchronous harness for the core's unit tests. Nodes with
// memory_logs, a FIFO network with blocked links, and the host's ready loop.
// (The simulator in plugins/raft/sim/ is the asynchronous, faulty version.)
#pragma once

#include "memory_log.h"
#include "raft_node.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace sluice::raft::testing {

inline node_id n(uint64_t v) { return node_id(v); }
inline log_index idx(uint64_t v) { return log_index(v); }
inline term_id tm(uint64_t v) { return term_id(v); }

struct test_node {
  std::unique_ptr<memory_log> log;
  std::unique_ptr<raft_node> raft;
  config cfg;
  std::vector<entry> applied;  // normal entries applied, in order
  bool up = true;
};

class test_cluster {
 public:
  // Nodes 1..size; the first `voters` are the bootstrap voters, the rest
  // start with no membership (they join later).
  explicit test_cluster(uint64_t size, uint64_t voters = 0, std::function<void(config&)> tweak = {})
      : _tweak(std::move(tweak)) {
    if (voters == 0) voters = size;
    for (uint64_t k = 1; k <= voters; ++k) _bootstrap.voters.push_back(n(k));
    for (uint64_t k = 1; k <= size; ++k) {
      auto& tn = _nodes[k];
      tn.log = std::make_unique<memory_log>(k <= voters ? _bootstrap : membership{});
      start(k);
    }
  }

  raft_node& operator[](uint64_t id) { return *_nodes.at(id).raft; }
  test_node& node(uint64_t id) { return _nodes.at(id); }
  memory_log& log(uint64_t id) { return *_nodes.at(id).log; }

  // (Re)creates node id's raft_node from its persisted log.
  void start(uint64_t id, log_index applied = log_index()) {
    auto& tn = _nodes.at(id);
    tn.cfg = config{};
    tn.cfg.self = n(id);
    tn.cfg.election_timeout_ticks = 10;
    tn.cfg.heartbeat_interval_ticks = 1;
    tn.cfg.applied = applied;
    if (_tweak) _tweak(tn.cfg);
    tn.raft = std::make_unique<raft_node>(tn.cfg, *tn.log, 1000 + id);
    tn.up = true;
  }

  void block(uint64_t from, uint64_t to) { _blocked.insert({from, to}); }
  void isolate(uint64_t id) {
    for (auto& [k, _] : _nodes) {
      if (k == id) continue;
      block(id, k);
      block(k, id);
    }
  }
  void heal() { _blocked.clear(); }
  // Messages of this type are dropped (in any direction) while set.
  void drop_type(std::optional<message_type> t) { _drop_type = t; }

  // Handles every pending ready of node id (persist, queue messages, apply).
  void process(uint64_t id) {
    auto& tn = _nodes.at(id);
    while (tn.up && tn.raft->has_ready()) handle(id, tn.raft->ready());
  }
  // What the host does with one ready.
  void handle(uint64_t id, ready rd) {
    auto& tn = _nodes.at(id);
    for (auto& m : rd.early_messages) _queue.push_back(m);
    tn.log->persist(rd);
    for (auto& m : rd.messages) _queue.push_back(m);
    for (const auto& e : rd.committed_entries) {
      if (e.type == entry_type::normal) tn.applied.push_back(e);
    }
    tn.raft->advance(rd);
  }

  // Delivers messages until the network is quiet.
  void deliver_all(size_t limit = 100000) {
    for (size_t round = 0; round < limit; ++round) {
      for (auto& [id, _] : _nodes) process(id);
      if (_queue.empty()) return;
      message m = std::move(_queue.front());
      _queue.pop_front();
      if (_blocked.count({m.from.value(), m.to.value()}) || (_drop_type && m.type == *_drop_type)) continue;
      auto& target = _nodes.at(m.to.value());
      if (!target.up) continue;
      if (_observer) _observer(m);
      target.raft->step(m);
    }
    FAIL() << "the network did not quiesce";
  }
  // Takes the queued messages without delivering them.
  std::vector<message> take_queue() {
    for (auto& [id, _] : _nodes) process(id);
    std::vector<message> out(_queue.begin(), _queue.end());
    _queue.clear();
    return out;
  }
  void observe(std::function<void(const message&)> f) { _observer = std::move(f); }

  void tick(uint64_t id, uint32_t times = 1) {
    for (uint32_t k = 0; k < times; ++k) {
      if (_nodes.at(id).up) _nodes.at(id).raft->tick();
      deliver_all();
    }
  }
  void tick_all(uint32_t times = 1) {
    for (uint32_t k = 0; k < times; ++k) {
      for (auto& [id, tn] : _nodes) {
        if (tn.up) tn.raft->tick();
      }
      deliver_all();
    }
  }
  // Ticks only `id` until it leads (at most 3 election timeouts).
  void elect(uint64_t id) {
    for (int k = 0; k < 60 && (*this)[id].current_role() != role::leader; ++k) tick(id);
    ASSERT_EQ((*this)[id].current_role(), role::leader) << "node " << id << " did not win";
  }
  // Makes node id campaign at once, as a leadership transfer does (a
  // timeout_now ignores the followers' leases, so the others need not tick).
  void timeout_now(uint64_t id) {
    message m;
    m.type = message_type::timeout_now;
    m.from = n(id == 1 ? 2 : 1);
    m.to = n(id);
    m.term = std::max((*this)[id].term(), term_id(1));
    (*this)[id].step(m);
  }
  void force_elect(uint64_t id) {
    timeout_now(id);
    deliver_all();
    ASSERT_EQ((*this)[id].current_role(), role::leader) << "node " << id << " did not win";
  }
  log_index propose(uint64_t id, const std::string& data, uint32_t count = 1) {
    auto r = (*this)[id].propose(payload(data), count);
    EXPECT_TRUE(r.has_value()) << (r ? "" : r.err().message);
    deliver_all();
    return r ? r.value() : log_index();
  }
  void crash(uint64_t id) { _nodes.at(id).up = false; }
  std::vector<uint64_t> ids() const {
    std::vector<uint64_t> v;
    for (auto& [id, _] : _nodes) v.push_back(id);
    return v;
  }

 private:
  std::map<uint64_t, test_node> _nodes;
  membership _bootstrap;
  std::function<void(config&)> _tweak;
  std::deque<message> _queue;
  std::set<std::pair<uint64_t, uint64_t>> _blocked;
  std::optional<message_type> _drop_type;
  std::function<void(const message&)> _observer;
};

}  // namespace sluice::raft::testing
