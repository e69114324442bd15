#include "partition_group.h"

#include "batch_codec.h"
#include "record_batch.h"
#include "sluice/storage.pb.h"

#include <fcntl.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace sluice::raft::partition {

using sdk::task;
using namespace sluice::storage;

group_id group_of(const partition_key& k) noexcept {
  // FNV-1a over the topic, a separator, the partition and the revision.
  uint64_t h = 1469598103934665603ull;
  const auto mix = [&h](uint8_t b) {
    h ^= b;
    h *= 1099511628211ull;
  };
  for (char c : k.topic) mix(static_cast<uint8_t>(c));
  mix(0);
  for (int i = 0; i < 4; ++i) mix(static_cast<uint8_t>(static_cast<uint32_t>(k.partition) >> (8 * i)));
  for (int i = 0; i < 8; ++i) mix(static_cast<uint8_t>(static_cast<uint64_t>(k.revision) >> (8 * i)));
  return h == controller_group_id ? 1 : h;
}

struct partition_group::pending {
  sdk::buffer buf;
  int32_t acks = -1;
  term_id term;  // zero: any
  log_index first;
  log_index last;
  replicate_result res;
  sdk::event done;
  bool finished = false;

  void finish(replicate_result r) {
    if (finished) return;
    finished = true;
    res = std::move(r);
    done.set();
  }
};

namespace {

std::string storage_error(const sdk::reply& rep, const std::string& what) {
  Error e;
  std::string detail = rep.msg.bytes.empty() || !e.ParseFromString(rep.msg.bytes) ? "" : e.message();
  return what + " failed (storage status " + std::to_string(rep.status) + (detail.empty() ? "" : ": " + detail) + ")";
}

error make_io(std::string m) { return error{std::make_error_code(std::errc::io_error), std::move(m)}; }

}  // namespace

namespace {
membership voters_of(const std::vector<node_id>& replicas) {
  membership m;
  m.voters = replicas;
  m.normalize();
  return m;
}
}  // namespace

partition_group::partition_group(partition_key key, const std::vector<node_id>& bootstrap,
                                 std::vector<node_id> assigned, std::string overrides, const partition_settings& s,
                                 group_env& env, std::function<void(partition_group&)> on_change)
    : group(group_of(key), key.name(), env),
      _key(std::move(key)),
      _overrides(std::move(overrides)),
      _settings(s),
      _on_change(std::move(on_change)),
      _view(voters_of(bootstrap), s.tail_cache_bytes),
      _hs(s.state_dir + "/" + _key.topic + "-" + std::to_string(_key.partition) + "-" +
          std::to_string(_key.revision) + ".state"),
      _members_path(s.state_dir + "/" + _key.topic + "-" + std::to_string(_key.partition) + "-" +
                    std::to_string(_key.revision) + ".members") {
  PartitionId id;
  id.set_topic(_key.topic);
  id.set_partition(_key.partition);
  id.set_revision(_key.revision);
  _id_bytes = id.SerializeAsString();
  set_assigned(std::move(assigned));
}

void partition_group::set_assigned(std::vector<node_id> assigned) {
  _assigned = std::move(assigned);
  _preferred = _assigned.empty() ? node_id{} : _assigned.front();
  _move_ticks = 0;
}

task<result<void>> partition_group::load_confs() {
  const int32_t fd = co_await sdk::openat(_members_path.c_str(), O_RDONLY | O_CLOEXEC, 0);
  if (fd == -ENOENT) co_return result<void>{};  // no membership change yet
  if (fd < 0) co_return make_io("cannot open " + _members_path + ": " + std::strerror(-fd));
  std::string bytes;
  int32_t n = 0;
  do {
    const size_t at = bytes.size();
    bytes.resize(at + 65536);
    n = co_await sdk::read(fd, bytes.data() + at, 65536, at);
    bytes.resize(at + static_cast<size_t>(std::max(n, 0)));
  } while (n > 0 && bytes.size() < (16u << 20));
  (void)co_await sdk::close(fd);
  if (n < 0) co_return make_io("cannot read " + _members_path + ": " + std::strerror(-n));
  auto recs = decode_conf_records(bytes);
  if (!recs) co_return make_io(_members_path + ": " + recs.err().message);
  if (_view.set_confs(std::move(recs.value()))) co_return co_await write_confs(_view.confs());
  co_return result<void>{};
}

task<result<void>> partition_group::write_confs(const std::vector<conf_record>& recs) {
  const std::string bytes = encode_conf_records(recs);
  if (const sdk::replace_file_error e = co_await sdk::replace_file(_members_path, bytes))
    co_return make_io(std::string("cannot ") + e.step + " " + _members_path + ": " + std::strerror(-e.rc));
  co_return result<void>{};
}

partition_group::~partition_group() {
  SLUICE_ASSERT_MSG(_waiting.empty() && _to_propose.empty(), "a partition group is closed before it is destroyed");
}

task<sdk::reply> partition_group::storage_call(uint32_t type, const std::string& body, sdk::buffer buf) {
  sdk::message m;
  m.type = type;
  m.bytes = body;
  m.buf = std::move(buf);
  co_return co_await sdk::call(_settings.storage_service, sdk::this_shard(), m);
}

task<result<void>> partition_group::open(node_id self, uint64_t seed, sdk::gate::holder h) {
  _self = self;
  auto hs = co_await _hs.open();
  if (!hs) co_return hs.err();

  OpenRequest open;
  open.mutable_id()->ParseFromString(_id_bytes);
  if (!_overrides.empty()) open.mutable_overrides()->ParseFromString(_overrides);
  open.set_repairable(true);
  sdk::reply rep = co_await storage_call(STORAGE_OPEN, open.SerializeAsString());
  LogState ls;
  if (rep.status != 0 || !ls.ParseFromString(rep.msg.bytes))
    co_return make_io(name() + ": " + storage_error(rep, "opening the log"));
  persisted_state st = hs.value();
  if (ls.has_damaged_from()) {
    if (auto r = co_await repair_at_open(ls, st); !r) co_return r.err();
  }

  PartitionRequest pr;
  pr.mutable_id()->ParseFromString(_id_bytes);
  rep = co_await storage_call(STORAGE_EPOCHS, pr.SerializeAsString());
  EpochTable table;
  if (rep.status != 0 || !table.ParseFromString(rep.msg.bytes))
    co_return make_io(name() + ": " + storage_error(rep, "reading the leader-epoch table"));
  std::vector<epoch_start> epochs;
  for (const auto& e : table.entries())
    if (e.epoch() >= 0 && (epochs.empty() || epochs.back().term < term_id(static_cast<uint64_t>(e.epoch()))))
      epochs.push_back(epoch_start{term_id(static_cast<uint64_t>(e.epoch())), index_of_offset(e.start_offset())});

  _view.reset(ls.start_offset(), ls.next_offset(), std::move(epochs), st.snapshot_term,
              hard_state{st.term, st.vote, log_index{}, repair_gate{st.gate_index, st.gate_term}});
  if (auto c = co_await load_confs(); !c) co_return c.err();
  _persisted = _view.last_index();
  _hw = ls.start_offset();
  _storage_start = ls.start_offset();
  _term = st.term;

  config cfg;
  cfg.self = self;
  cfg.bootstrap = _view.bootstrap();
  cfg.election_timeout_ticks = _settings.election_timeout_ticks;
  cfg.heartbeat_interval_ticks = _settings.heartbeat_interval_ticks;
  cfg.deliver_committed_entries = false;
  cfg.applied = _view.first_index() - 1;
  start(std::make_unique<raft_node>(cfg, _view, seed), std::move(h));
  co_return result<void>{};
}

// The storage found damage at open (a bit flip, a closed segment cut
// short): the log is intact before `damaged_from` and nothing from there on
// is served. Record the repair gate (the last entry before the loss: this
// replica may have acknowledged all of it), durably, then cut the log at
// the damage; a crash in between finds the damage (or the storage's
// recorded cut) again and keeps the larger gate. The Raft node then starts
// in repair: it catches up from the leader like any lagging follower and
// is an ordinary voter once its log reaches the gate (docs/RAFT.md,
// "Repairing a replica").
task<result<void>> partition_group::repair_at_open(LogState& ls, persisted_state& st) {
  const int64_t cut = std::max(ls.damaged_from(), ls.start_offset());
  // Offset o is index o + 1: the last index the log held is its end offset
  // (before the damage: the storage's scan may have stopped at it).
  const log_index last(static_cast<uint64_t>(std::max(ls.next_offset(), ls.damaged_end())));
  // The last entry's term: the log's last epoch, raised to the persisted
  // term (an upper bound) because damage may hide the last batches' epochs.
  const term_id last_term = std::max(term_id(static_cast<uint64_t>(std::max(ls.last_epoch(), 0))), st.term);
  if (st.gate_index < last) {
    st.gate_index = last;
    st.gate_term = last_term;
    if (auto w = co_await _hs.write(st); !w) co_return w.err();
  }
  sdk::log_error("raft: " + name() + ": " + ls.damage() + ": cutting the log at offset " + std::to_string(cut) +
                 " (it ended at " + std::to_string(last.value()) +
                 ") and repairing it from the other replicas; until its log ends at " +
                 std::to_string(st.gate_index.value()) + " again this replica neither campaigns nor serves the lost offsets");
  TruncateRequest t;
  t.mutable_id()->ParseFromString(_id_bytes);
  t.set_offset(cut);
  sdk::reply rep = co_await storage_call(STORAGE_TRUNCATE_SUFFIX, t.SerializeAsString());
  if (rep.status != 0 || !ls.ParseFromString(rep.msg.bytes))
    co_return make_io(name() + ": " + storage_error(rep, "cutting the damaged suffix"));
  SLUICE_ASSERT(!ls.has_damaged_from() && ls.next_offset() == cut);
  co_return result<void>{};
}

task<void> partition_group::close(bool delete_data) {
  if (_closed) co_return;
  _closed = true;
  co_await stop();
  fail_waiters(replicate_status::shutting_down, name() + " is closing");
  co_await _tasks.close();
  PartitionRequest pr;
  pr.mutable_id()->ParseFromString(_id_bytes);
  co_await storage_call(delete_data ? STORAGE_REMOVE : STORAGE_CLOSE, pr.SerializeAsString());
  if (delete_data) {
    co_await _hs.remove();
    (void)co_await sdk::unlink(_members_path.c_str());
  } else
    co_await _hs.close();
}

replicate_result partition_group::base_result() const {
  replicate_result r;
  r.leader = _leader;
  r.term = _term;
  r.high_watermark = _hw;
  return r;
}

task<replicate_result> partition_group::replicate(sdk::buffer batches, int32_t acks, term_id term) {
  replicate_result bad = base_result();
  if (_closed || !running()) {
    bad.status = replicate_status::shutting_down;
    bad.message = name() + " is not running";
    co_return bad;
  }
  // The kafka plugin validated the batches; check only what proposing needs.
  const uint8_t* p = batches.data();
  uint64_t at = 0;
  while (at < batches.size()) {
    if (batches.size() - at < batch_header_bytes) break;
    const batch_header h = decode_header(p + at);
    if (h.batch_length <= 0 || h.size_bytes() > batches.size() - at || h.last_offset_delta < 0) break;
    at += h.size_bytes();
  }
  if (at != batches.size() || at == 0) {
    bad.status = replicate_status::invalid;
    bad.message = "the request's record batches do not parse";
    co_return bad;
  }
  if (_role != role::leader) {
    bad.status = replicate_status::not_leader;
    bad.message = name() + ": this broker is not the leader";
    co_return bad;
  }
  auto pend = std::make_shared<pending>();
  pend->buf = std::move(batches);
  pend->acks = acks;
  pend->term = term;
  _to_propose.push_back(pend);
  poke();
  co_await pend->done.wait();
  co_return std::move(pend->res);
}

task<bool> partition_group::confirm_leadership() {
  if (_closed || !running() || _role != role::leader) co_return false;
  auto c = std::make_shared<pending_confirm>();
  c->id = _next_confirm++;
  _confirms_to_start.push_back(c);
  poke();
  if (auto h = _tasks.try_enter()) {
    // Not confirmed within an election timeout: treat as deposed.
    const uint64_t ms = uint64_t{_settings.election_timeout_ticks} * _settings.tick_ms;
    sdk::spawn([](std::shared_ptr<pending_confirm> p, uint64_t wait_ms, sdk::gate::holder) -> task<void> {
      for (uint64_t waited = 0; waited < wait_ms && !p->finished; waited += 20) co_await sdk::sleep_ms(20);
      p->finish(false);
    }(c, ms, std::move(h)));
  } else {
    c->finish(false);
  }
  co_await c->done.wait();
  co_return c->ok;
}

void partition_group::fail_confirms() {
  for (auto& c : _confirms_to_start) c->finish(false);
  _confirms_to_start.clear();
  for (auto& [_, c] : _confirms) c->finish(false);
  _confirms.clear();
}

result<void> partition_group::transfer(node_id target) {
  if (_role != role::leader) return make_raft_error(errc::not_leader, name() + ": not the leader");
  if (target.is_zero()) target = _view.members().voters.empty() ? node_id{} : _preferred;
  if (target.is_zero() || !_view.members().is_voter(target))
    return make_raft_error(errc::invalid_argument, name() + ": node " + std::to_string(target.value()) + " is not a replica");
  _transfer_to = target;
  poke();
  return result<void>{};
}

int64_t partition_group::repair_until_offset() const {
  const repair_gate g = node() ? node()->gate() : repair_gate{};
  return g.active() ? static_cast<int64_t>(g.index.value()) : -1;
}

bool partition_group::moving() const {
  if (_assigned.empty()) return false;
  const membership& m = _view.members();
  if (!m.learners.empty() || m.voters.size() != _assigned.size()) return true;
  for (node_id n : _assigned)
    if (!m.is_voter(n)) return true;
  return !_view.confs().empty() && _view.confs().back().index > _commit;
}

void partition_group::move_replicas() {
  const raft_node* n = node();
  if (!n || _role != role::leader || _assigned.empty() || _conf_to_propose) return;
  const membership& m = n->members();
  const auto assigned = [this](node_id id) { return std::find(_assigned.begin(), _assigned.end(), id) != _assigned.end(); };
  const node_status st = n->status();
  const auto caught_up = [&](node_id id) {
    for (const follower_status& f : st.followers)
      if (f.id == id) return f.recent_active && f.match >= st.commit;
    return false;
  };
  std::optional<conf_change> next;
  for (node_id id : _assigned)  // 1. each assigned replica joins as a learner
    if (!next && !m.contains(id)) next = conf_change{conf_change_type::add_learner, id};
  for (node_id id : m.learners)  // 2. and votes once it holds what is committed; unassigned learners go
    if (!next && (!assigned(id) || caught_up(id)))
      next = conf_change{assigned(id) ? conf_change_type::promote : conf_change_type::remove_voter, id};
  bool all_vote = true;
  for (node_id id : _assigned) all_vote &= m.is_voter(id);
  if (!next && all_vote) {
    for (node_id id : m.voters) {  // 3. then the replicas not assigned leave
      if (assigned(id)) continue;
      if (id != _self) {
        next = conf_change{conf_change_type::remove_voter, id};
        break;
      }
      // The leader cannot remove itself: it hands leadership to a caught-up
      // assigned replica (the preferred one first), which removes it.
      node_id to;
      for (node_id a : _assigned)
        if (caught_up(a) && (to.is_zero() || a == _preferred)) to = a;
      if (!to.is_zero()) _transfer_to = to;
      break;
    }
  }
  if (next) _conf_to_propose = next;
  if (next || !_transfer_to.is_zero()) poke();
}

void partition_group::tick_preferred() {
  if (_role == role::leader && ++_move_ticks >= 5) {
    _move_ticks = 0;
    move_replicas();
  }
  // The storage's retention moves the log start on its own, and so does a
  // follower following its leader's DeleteRecords: every replica looks every
  // few seconds (the leader, so followers behind it get the snapshot point;
  // the leader announces it, see raft_plugin's announce_leaders).
  if (++_start_ticks >= 50 && !_closed) {
    _start_ticks = 0;
    if (auto h = _tasks.try_enter())
      sdk::spawn([](partition_group& g, sdk::gate::holder) -> task<void> { co_await g.refresh_log_start(); }(
          *this, std::move(h)));
  }
  const auto in_maintenance = [this](node_id n) { return _maintenance && _maintenance->count(n.value()) > 0; };
  if (_role == role::leader && in_maintenance(_self)) {
    // Drain: every half second, hand over to a caught-up replica that is
    // not in maintenance (the preferred one first).
    if (++_drain_ticks < 5 || !node()) return;
    _drain_ticks = 0;
    const node_status st = node()->status();
    node_id target;
    for (const follower_status& f : st.followers) {
      if (f.id == _self || f.learner || !f.recent_active || f.match != st.last_index || in_maintenance(f.id)) continue;
      if (target.is_zero() || f.id == _preferred) target = f.id;
    }
    if (!target.is_zero()) {
      _transfer_to = target;
      poke();
    }
    return;
  }
  if (_settings.preferred_leader_check_ticks == 0 || _role != role::leader || _preferred == _self ||
      _preferred.is_zero() || in_maintenance(_preferred))
    return;
  if (++_preferred_ticks < _settings.preferred_leader_check_ticks) return;
  _preferred_ticks = 0;
  const raft_node* n = node();
  if (!n) return;
  for (const follower_status& f : n->status().followers)
    if (f.id == _preferred && !f.learner && f.recent_active && f.match == n->last_index()) {
      _transfer_to = _preferred;
      poke();
    }
}

void partition_group::on_round(raft_node& n) {
  while (!_confirms_to_start.empty()) {
    auto c = _confirms_to_start.front();
    _confirms_to_start.pop_front();
    if (c->finished) continue;
    if (n.current_role() != role::leader || !n.read_index(c->id)) {
      c->finish(false);  // not leading, or no entry of its term committed yet
      continue;
    }
    _confirms.emplace(c->id, std::move(c));
  }
  for (auto it = _confirms.begin(); it != _confirms.end();)
    it = it->second->finished ? _confirms.erase(it) : std::next(it);
  if (_conf_to_propose) {
    const conf_change cc = *std::exchange(_conf_to_propose, std::nullopt);
    if (n.current_role() == role::leader) {
      auto r = n.propose_conf_change(cc);
      const std::string what = std::string(to_string(cc.type)) + " " + std::to_string(cc.node.value());
      if (r)
        sdk::log_info("raft: " + name() + ": moving replicas: " + what + " (membership " + to_string(n.members()) + ")");
      else
        sdk::log_debug("raft: " + name() + ": moving replicas: " + what + ": " + r.err().message);
    }
  }
  if (!_transfer_to.is_zero()) {
    const node_id t = std::exchange(_transfer_to, node_id{});
    if (n.current_role() == role::leader && t != _self) {
      auto r = n.transfer_leadership(t);
      if (!r) sdk::log_debug("raft: " + name() + ": transfer to " + std::to_string(t.value()) + ": " + r.err().message);
    }
  }
  while (!_to_propose.empty()) {
    std::shared_ptr<pending> pend = _to_propose.front();
    _to_propose.pop_front();
    if (n.current_role() != role::leader || (!pend->term.is_zero() && pend->term != n.term())) {
      replicate_result r = base_result();
      r.status = replicate_status::not_leader;
      r.leader = n.leader();
      r.message = name() + ": leadership moved" +
                  (pend->term.is_zero() ? std::string()
                                        : " (the batches were checked in term " + std::to_string(pend->term.value()) +
                                              ", this is term " + std::to_string(n.term().value()) + ")");
      pend->finish(std::move(r));
      continue;
    }
    auto owner = std::make_shared<sdk::buffer>(pend->buf);
    uint8_t* p = pend->buf.data();
    uint64_t at = 0;
    bool ok = true;
    while (at < pend->buf.size()) {
      const batch_header h = decode_header(p + at);
      const log_index idx = n.last_index() + 1;
      stamp_batch(p + at, offset_of_index(idx), n.term());
      auto r = n.propose(payload(owner, p + at, h.size_bytes()), static_cast<uint32_t>(h.last_offset_delta) + 1);
      if (!r) {
        replicate_result rr = base_result();
        rr.status = replicate_status::not_leader;
        rr.leader = n.leader();
        rr.message = name() + ": " + r.err().message;
        pend->finish(std::move(rr));
        ok = false;
        break;
      }
      SLUICE_ASSERT_MSG(r.value() == idx, "a proposal lands at the end of the leader's log");
      if (pend->first.is_zero()) pend->first = idx;
      pend->last = idx + static_cast<uint64_t>(h.last_offset_delta);
      at += h.size_bytes();
    }
    if (ok) _waiting.push_back(std::move(pend));
  }
}

task<result<void>> partition_group::append(const std::vector<entry>& ents) {
  uint64_t total = 0;
  std::vector<std::string> control(ents.size());
  for (size_t i = 0; i < ents.size(); ++i) {
    if (ents[i].type == entry_type::normal) {
      total += ents[i].data.size();
    } else {
      control[i] = encode_control_batch(ents[i]);
      total += control[i].size();
    }
  }
  sdk::buffer buf = sdk::buffer::allocate(total, 4096);
  uint64_t at = 0;
  for (size_t i = 0; i < ents.size(); ++i) {
    const std::string_view bytes = ents[i].type == entry_type::normal ? ents[i].data.view() : std::string_view(control[i]);
    std::memcpy(buf.data() + at, bytes.data(), bytes.size());
    // Every batch must sit where its entry says: the leader stamped it, and
    // a follower checks what it received (the storage checks the CRC).
    if (bytes.size() < batch_header_bytes)
      co_return make_raft_error(errc::invalid_argument, name() + ": entry " + std::to_string(ents[i].index.value()) +
                                                            " holds " + std::to_string(bytes.size()) +
                                                            " bytes, less than a batch header");
    const batch_header h = decode_header(buf.data() + at);
    if (h.size_bytes() != bytes.size() || h.base_offset != offset_of_index(ents[i].index) ||
        static_cast<uint32_t>(h.last_offset_delta) + 1 != ents[i].count)
      co_return make_raft_error(errc::invalid_argument,
                                name() + ": entry " + std::to_string(ents[i].index.value()) + " holds a batch at offset " +
                                    std::to_string(h.base_offset));
    at += bytes.size();
  }
  buf.set_size(total);
  AppendRequest a;
  a.mutable_id()->ParseFromString(_id_bytes);
  a.set_keep_offsets(true);
  sdk::reply rep = co_await storage_call(STORAGE_APPEND, a.SerializeAsString(), std::move(buf));
  if (rep.status != 0) co_return make_io(name() + ": " + storage_error(rep, "appending"));
  co_return result<void>{};
}

task<result<void>> partition_group::persist(const ready& rd) {
  if (rd.snap) {
    // The leader's log starts after the snapshot point: continue there.
    TruncateRequest t;
    t.mutable_id()->ParseFromString(_id_bytes);
    t.set_offset(static_cast<int64_t>(rd.snap->meta.index.value()));
    sdk::reply rep = co_await storage_call(STORAGE_TRUNCATE_PREFIX, t.SerializeAsString());
    if (rep.status != 0) co_return make_io(name() + ": " + storage_error(rep, "resetting the log to the leader's start"));
    _view.restored(rd.snap->meta);
    if (auto w = co_await write_confs(_view.confs()); !w) co_return w.err();
    _persisted = rd.snap->meta.index;
    persisted_state st = _hs.current();
    st.snapshot_index = rd.snap->meta.index;
    st.snapshot_term = rd.snap->meta.term;
    if (rd.hard) {
      st.term = std::max(st.term, rd.hard->term);
      st.vote = rd.hard->term == st.term ? rd.hard->vote : st.vote;
    }
    auto w = co_await _hs.write(st);
    if (!w) co_return w.err();
  }
  if (!rd.entries.empty()) {
    bool confs_cut = false;
    if (rd.truncate_from) {
      const log_index from = *rd.truncate_from;
      SLUICE_ASSERT(from == rd.entries.front().index);
      if (from <= _view.last_index()) {
        TruncateRequest t;
        t.mutable_id()->ParseFromString(_id_bytes);
        t.set_offset(offset_of_index(from));
        sdk::reply rep = co_await storage_call(STORAGE_TRUNCATE_SUFFIX, t.SerializeAsString());
        if (rep.status != 0) co_return make_io(name() + ": " + storage_error(rep, "truncating a conflicting suffix"));
        const size_t confs_before = _view.confs().size();
        _view.truncated(from);
        confs_cut = _view.confs().size() != confs_before;
        _persisted = from - 1;
        fail_waiters(replicate_status::not_leader, name() + ": the entry was replaced by a new leader's", from);
      }
    }
    SLUICE_ASSERT_MSG(rd.entries.front().index == _view.last_index() + 1, "a ready's entries continue the stored log");
    // Membership records reach the .members file before their entries reach
    // the log (opening drops records the log does not hold).
    const bool conf = std::any_of(rd.entries.begin(), rd.entries.end(),
                                  [](const entry& e) { return e.type == entry_type::conf_change; });
    if (conf || confs_cut) {
      // A named local: GCC 12 destroys a temporary in a co_await operand twice.
      const std::vector<conf_record> recs = conf ? _view.confs_after(rd.entries) : _view.confs();
      auto w = co_await write_confs(recs);
      if (!w) co_return w.err();
    }
    auto a = co_await append(rd.entries);
    if (!a) co_return a.err();
    _view.appended(rd.entries);
    _persisted = _view.last_index();
    complete_waiters();  // acks=1: written by the leader
  }
  // The core only ever clears a gate (the host sets it, at open).
  const bool gate_cleared = rd.hard && !rd.hard->gate.active() && !_hs.current().gate_index.is_zero();
  SLUICE_ASSERT(!rd.hard || !rd.hard->gate.active() || rd.hard->gate.index == _hs.current().gate_index);
  if (rd.hard) {
    persisted_state st = _hs.current();
    if (rd.hard->term != st.term || rd.hard->vote != st.vote) {
      st.term = rd.hard->term;
      st.vote = rd.hard->vote;
      auto w = co_await _hs.write(st);
      if (!w) co_return w.err();
    }
    _view.set_hard_state(*rd.hard);
  }
  if (!rd.entries.empty()) {
    PartitionRequest pr;
    pr.mutable_id()->ParseFromString(_id_bytes);
    sdk::reply rep = co_await storage_call(STORAGE_FLUSH, pr.SerializeAsString());
    if (rep.status != 0) co_return make_io(name() + ": " + storage_error(rep, "fdatasync"));
  }
  if (gate_cleared) {
    // Only once the entries that reach the gate are durable.
    persisted_state st = _hs.current();
    const log_index was = st.gate_index;
    st.gate_index = log_index();
    st.gate_term = term_id();
    auto w = co_await _hs.write(st);
    if (!w) co_return w.err();
    sdk::log_info("raft: " + name() + ": repaired: the log reached offset " + std::to_string(was.value()) +
                  " again; this replica is an ordinary voter again");
  }
  co_return result<void>{};
}

void partition_group::complete_waiters() {
  for (auto it = _waiting.begin(); it != _waiting.end();) {
    pending& p = **it;
    const bool done = p.acks == -1 ? p.last <= _commit : p.last <= _persisted;
    if (!done) {
      ++it;
      continue;
    }
    replicate_result r = base_result();
    r.base_offset = offset_of_index(p.first);
    r.last_offset = offset_of_index(p.last);
    p.finish(std::move(r));
    it = _waiting.erase(it);
  }
}

void partition_group::fail_waiters(replicate_status st, const std::string& why, log_index from) {
  const auto fail = [&](pending& p) {
    replicate_result r = base_result();
    r.status = st;
    r.message = why;
    p.finish(std::move(r));
  };
  for (auto it = _waiting.begin(); it != _waiting.end();) {
    if (!from.is_zero() && (*it)->last < from) {
      ++it;
      continue;
    }
    fail(**it);
    it = _waiting.erase(it);
  }
  if (from.is_zero()) {
    for (auto& p : _to_propose) fail(*p);
    _to_propose.clear();
  }
}

task<void> partition_group::applied(const ready& rd) {
  raft_node& n = mutable_node();
  bool changed = false;
  if (rd.commit > _commit) {
    _commit = rd.commit;
    changed = true;  // the kafka plugin also follows the raw commit (group loading)
  }
  // The high watermark clients see stops before committed control batches
  // at the end of the log (a new leader's noop): a consumer, which skips
  // them, reaches the high watermark (lag 0) instead of stopping one short
  // until the next record. Data committed after them moves it past them.
  const auto hw = static_cast<int64_t>(_view.visible_end(_commit).value());
  if (hw > _hw) {
    _hw = hw;
    changed = true;
  }
  if (n.term() != _term || n.leader() != _leader || n.current_role() != _role) {
    const bool was_leader = _role == role::leader;
    _term = n.term();
    _leader = n.leader();
    _role = n.current_role();
    changed = true;
    if (was_leader && _role != role::leader)
      fail_waiters(replicate_status::not_leader, name() + ": this broker is no longer the leader");
    if (_role == role::leader) _preferred_ticks = 0;
  }
  for (const read_state& rs : rd.read_states) {
    if (auto it = _confirms.find(rs.request_id); it != _confirms.end()) {
      it->second->finish(_role == role::leader);
      _confirms.erase(it);
    }
  }
  if (_role != role::leader) fail_confirms();
  complete_waiters();
  if (changed && _on_change) _on_change(*this);
  if (auto want = _view.wanted_read(); want && !_reading) {
    if (auto h = _tasks.try_enter()) {
      _reading = true;
      _view.clear_wanted();
      sdk::spawn(read_back(*want, std::move(h)));
    }
  }
  co_return;
}

task<void> partition_group::refresh_log_start() {
  PartitionRequest pr;
  pr.mutable_id()->ParseFromString(_id_bytes);
  sdk::reply rep = co_await storage_call(STORAGE_STATE, pr.SerializeAsString());
  LogState ls;
  if (rep.status != 0 || !ls.ParseFromString(rep.msg.bytes)) co_return;
  // Raft's log starts at an entry (a batch): DeleteRecords may have put the
  // log start inside one, which then stays whole in the Raft log.
  int64_t start = ls.start_offset();
  if (start == _storage_start) co_return;  // unchanged: no read (every replica looks every 50 ticks)
  _storage_start = start;
  if (start < ls.next_offset()) {
    ReadRequest r;
    r.mutable_id()->ParseFromString(_id_bytes);
    r.set_offset(start);
    r.set_max_bytes(1);
    sdk::reply rd = co_await storage_call(STORAGE_READ, r.SerializeAsString());
    if (rd.status == 0 && rd.msg.buf && rd.msg.buf.size() >= batch_header_bytes)
      start = std::min(start, decode_header(rd.msg.buf.data()).base_offset);
  }
  _view.prefix_removed(start);
}

task<void> partition_group::read_back(log_index from, sdk::gate::holder) {
  ReadRequest r;
  r.mutable_id()->ParseFromString(_id_bytes);
  // The storage refuses offsets below its log start, which may lie inside
  // the entry the Raft log starts with: ask for the start, get that entry.
  r.set_offset(std::max(offset_of_index(from), _storage_start));
  r.set_max_bytes(1u << 20);
  sdk::reply rep = co_await storage_call(STORAGE_READ, r.SerializeAsString());
  _reading = false;
  if (rep.status == STORAGE_STATUS_OFFSET_OUT_OF_RANGE) {
    // Retention or DeleteRecords moved the log start past what the follower
    // needs: from now on it is sent the snapshot point instead.
    co_await refresh_log_start();
    poke();
    co_return;
  }
  if (rep.status != 0 || !rep.msg.buf) {
    sdk::log_debug("raft: " + name() + ": " + storage_error(rep, "reading entries for a follower"));
    co_return;
  }
  auto owner = std::make_shared<sdk::buffer>(rep.msg.buf);
  const uint8_t* p = owner->data();
  std::vector<entry> ents;
  uint64_t at = 0;
  while (owner->size() - at >= batch_header_bytes) {
    const batch_header h = decode_header(p + at);
    if (h.batch_length <= 0 || h.size_bytes() > owner->size() - at) break;
    auto e = entry_from_batch(owner, p + at, h.size_bytes());
    if (!e) {
      sdk::log_error("raft: " + name() + ": " + e.err().message);
      break;
    }
    ents.push_back(std::move(e.value()));
    at += h.size_bytes();
  }
  _view.fill_readback(std::move(ents));
  poke();
}

void partition_group::on_stopped() {
  fail_confirms();
  fail_waiters(failed() ? replicate_status::storage_error : replicate_status::shutting_down,
               name() + (failed() ? " stopped on a storage error" : " is closing"));
  if (failed()) {
    _role = role::follower;
    _leader = node_id{};
    if (_on_change) _on_change(*this);
  }
}

}  // namespace sluice::raft::partition
