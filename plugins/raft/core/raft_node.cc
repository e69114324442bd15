#include "raft_node.h"

#include <algorithm>
#include <string>

namespace sluice::raft {

namespace {

std::string id_str(node_id n) { return std::to_string(n.value()); }

message_type response_to(message_type t) {
  switch (t) {
    case message_type::pre_vote: return message_type::pre_vote_resp;
    case message_type::vote: return message_type::vote_resp;
    default: SLUICE_PANIC("no response type");
  }
}

bool from_leader(message_type t) {
  return t == message_type::append || t == message_type::heartbeat || t == message_type::install_snapshot;
}

}  // namespace

// ---- construction -------------------------------------------------------------------

raft_node::raft_node(config cfg, const log_reader& log, uint64_t seed)
    : _cfg(std::move(cfg)), _log(log), _rng(seed ^ (_cfg.self.value() * 0x9e3779b97f4a7c15ull)) {
  SLUICE_ASSERT_MSG(!_cfg.self.is_zero(), "node id 0 is reserved");
  SLUICE_ASSERT_MSG(_cfg.heartbeat_interval_ticks >= 1, "heartbeat_interval_ticks must be >= 1");
  SLUICE_ASSERT_MSG(_cfg.election_timeout_ticks > _cfg.heartbeat_interval_ticks,
                    "election_timeout_ticks must exceed heartbeat_interval_ticks");
  SLUICE_ASSERT_MSG(_cfg.inflight_appends_max >= 1, "inflight_appends_max must be >= 1");
  _cfg.bootstrap.normalize();

  const hard_state hs = log.initial_hard_state();
  const log_index last = _log.last_index();
  const log_index snap_index = _log.first_index() - 1;
  // A repairing node cut a damaged suffix after recording its gate: its
  // persisted commit may lie past what is left (it is clamped, never used).
  SLUICE_ASSERT_MSG(hs.commit <= last || hs.gate.active(),
                    "persisted commit past the persisted log (hard state written before entries?)");
  SLUICE_ASSERT_MSG(_cfg.applied <= last, "config.applied past the persisted log");
  SLUICE_ASSERT_MSG(!hs.gate.active() || hs.gate.index >= snap_index, "a repair gate below the snapshot");
  _term = hs.term;
  _vote = hs.vote;
  _gate = hs.gate;
  // Entries of a term later than the persisted term: the host wrote the
  // entries of a ready but crashed before its hard state. The term was
  // reached, and the node may have voted in it (for itself, as a leader that
  // appended its no-op): adopt the term and count the vote as cast.
  const term_id last_term = _log.last_term();
  if (last_term > _term) {
    _term = last_term;
    _vote = _cfg.self;
  }
  const log_index applied = std::max(_cfg.applied, snap_index);
  _log.init(std::max({std::min(hs.commit, last), snap_index, applied}), applied);
  maybe_clear_gate();

  if (auto rec = log.last_membership(last)) {
    SLUICE_ASSERT(rec->index <= last);
    rec->members.normalize();
    _conf_history.push_back(std::move(*rec));
  } else {
    _conf_history.push_back({log_index(), _cfg.bootstrap});
  }
  _members = _conf_history.back().members;

  _prev_hard = hs;
  _durable_term = hs.term;
  _prev_soft = soft_state{no_node, role::follower};
  reset(_term);
  _role = role::follower;
}

// ---- roles ------------------------------------------------------------------------

bool raft_node::promotable() const {
  // A repairing node may lack entries it acknowledged: it does not campaign.
  return _members.is_voter(_cfg.self) && !_log.unstable_snapshot().has_value() && !_gate.active();
}

void raft_node::maybe_clear_gate() {
  // The log reached the entry the node held before the loss again, from
  // leaders of a term at least ours: it holds every entry it ever
  // acknowledged (docs/RAFT.md, "Repairing a replica"). The hard state of
  // the ready that persists these entries carries the cleared gate.
  if (_gate.active() && _log.last_index() >= _gate.index) _gate = repair_gate{};
}

bool raft_node::gate_allows(log_index last, term_id t) const {
  // A repairing voter judges a candidate against the log it had before the
  // loss (it may have acknowledged every entry of it): the candidate must
  // be at least as up to date as that last entry too.
  return !_gate.active() || t > _gate.term || (t == _gate.term && last >= _gate.index);
}

void raft_node::reset(term_id term) {
  SLUICE_ASSERT_MSG(term >= _term, "terms never decrease");
  if (term != _term) {
    _term = term;
    _vote = no_node;
  }
  _lead = no_node;
  _election_elapsed = 0;
  _heartbeat_elapsed = 0;
  _randomized_election_timeout =
      _cfg.election_timeout_ticks + static_cast<uint32_t>(_rng.below(_cfg.election_timeout_ticks));
  _transferee = no_node;
  _votes.clear();
  _progress.clear();
  _bcast_pending = false;
  _pending_reads.clear();
}

void raft_node::become_follower(term_id term, node_id lead) {
  reset(term);
  _lead = lead;
  _role = role::follower;
}

void raft_node::become_pre_candidate() {
  SLUICE_ASSERT_MSG(_role != role::leader, "a leader does not campaign");
  // Neither the term nor the vote changes: a pre-election only asks.
  _votes.clear();
  _progress.clear();
  _lead = no_node;
  _role = role::pre_candidate;
}

void raft_node::become_candidate() {
  SLUICE_ASSERT_MSG(_role != role::leader, "a leader does not campaign");
  reset(next_term(_term));
  _vote = _cfg.self;
  _role = role::candidate;
}

void raft_node::become_leader() {
  SLUICE_ASSERT_MSG(_role == role::candidate, "only a candidate becomes leader");
  SLUICE_ASSERT(_vote == _cfg.self);
  reset(_term);
  _role = role::leader;
  _lead = _cfg.self;
  const log_index last = _log.last_index();
  auto add = [&](node_id n, bool learner) {
    auto [it, inserted] = _progress.emplace(n, progress(_cfg.inflight_appends_max));
    SLUICE_ASSERT(inserted);
    it->second.learner = learner;
    it->second.next = last + 1;
    if (n == _cfg.self) {
      it->second.match = _log.stable_match();
      it->second.recent_active = true;
      it->second.become_replicate();
    }
  };
  for (node_id n : _members.voters) add(n, false);
  for (node_id n : _members.learners) add(n, true);
  SLUICE_ASSERT_MSG(_progress.count(_cfg.self) == 1, "a leader is a voter");
  // Every entry before the no-op may hold an uncommitted membership change
  // from an earlier leader: no new change until the no-op commits.
  _pending_conf_index = last;
  append_as_leader(entry{_term, last + 1, 1, entry_type::noop, payload()});
  _term_start_index = last + 1;
  _bcast_pending = true;
}

void raft_node::campaign(campaign_kind kind) {
  if (!promotable()) return;
  term_id t;
  message_type type;
  if (kind == campaign_kind::pre_election) {
    become_pre_candidate();
    type = message_type::pre_vote;
    t = next_term(_term);
  } else {
    become_candidate();
    type = message_type::vote;
    t = _term;
  }
  if (poll(_cfg.self, true) == poll_result::won) {
    // A single voter.
    if (kind == campaign_kind::pre_election) {
      campaign(campaign_kind::election);
    } else {
      become_leader();
    }
    return;
  }
  const log_index last = _log.last_index();
  const term_id last_term = _log.last_term();
  for (node_id n : _members.voters) {
    if (n == _cfg.self) continue;
    message m;
    m.type = type;
    m.to = n;
    m.term = t;
    m.index = last;
    m.log_term = last_term;
    m.transfer = kind == campaign_kind::transfer;
    send(std::move(m));
  }
}

raft_node::poll_result raft_node::poll(node_id from, bool granted) {
  _votes.emplace(from, granted);  // the first answer counts
  size_t yes = 0;
  size_t no = 0;
  for (node_id n : _members.voters) {
    auto it = _votes.find(n);
    if (it == _votes.end()) continue;
    (it->second ? yes : no) += 1;
  }
  const size_t q = _members.quorum();
  if (yes >= q) return poll_result::won;
  if (_members.voters.size() - no < q) return poll_result::lost;
  return poll_result::pending;
}

// ---- ticks ------------------------------------------------------------------------

void raft_node::tick() {
  SLUICE_ASSERT_MSG(!_ready_outstanding, "tick() between ready() and advance()");
  _apply_retry = false;
  if (_role == role::leader) {
    tick_heartbeat();
  } else {
    tick_election();
  }
}

void raft_node::tick_election() {
  ++_election_elapsed;
  if (promotable() && _election_elapsed >= _randomized_election_timeout) {
    _election_elapsed = 0;
    campaign(_cfg.pre_vote ? campaign_kind::pre_election : campaign_kind::election);
  }
}

void raft_node::tick_heartbeat() {
  ++_heartbeat_elapsed;
  ++_election_elapsed;
  for (auto& [id, pr] : _progress) {
    if (pr.state == progress_state::snapshot && ++pr.snapshot_ticks >= 2 * _cfg.election_timeout_ticks) {
      pr.become_probe();  // the snapshot (or its answer) was lost: try again
    }
  }
  if (_election_elapsed >= _cfg.election_timeout_ticks) {
    _election_elapsed = 0;
    if (_cfg.check_quorum && !quorum_active()) {
      become_follower(_term, no_node);
      return;
    }
    if (!_transferee.is_zero()) abort_transfer();
  }
  if (_heartbeat_elapsed >= _cfg.heartbeat_interval_ticks) {
    _heartbeat_elapsed = 0;
    bcast_heartbeat();
  }
  for (auto& [id, pr] : _progress) {
    if (id == _cfg.self || !pr.read_pending) continue;
    pr.read_pending = false;
    send_append(id, false);
  }
}

bool raft_node::quorum_active() {
  size_t active = 0;
  for (node_id n : _members.voters) {
    auto it = _progress.find(n);
    SLUICE_ASSERT_MSG(it != _progress.end(), "a leader tracks every voter");
    if (n == _cfg.self || it->second.recent_active) ++active;
  }
  for (auto& [id, pr] : _progress) {
    if (id != _cfg.self) pr.recent_active = false;
  }
  return active >= _members.quorum();
}

// ---- messages in ---------------------------------------------------------------------

bool raft_node::valid(const message& m) const {
  if (m.to != _cfg.self || m.from.is_zero() || m.from == _cfg.self || m.term.is_zero()) return false;
  if (!m.entries.empty()) {
    if (m.type != message_type::append) return false;
    log_index prev_last = m.index;
    term_id prev_term = m.log_term;
    for (const entry& e : m.entries) {
      if (e.count == 0 || e.index != prev_last + 1 || e.term < prev_term || e.term > m.term) return false;
      if (e.last() < e.index) return false;  // overflow
      prev_last = e.last();
      prev_term = e.term;
    }
  }
  if (m.type == message_type::append && m.log_term > m.term) return false;
  if (m.type == message_type::install_snapshot && (!m.snap || m.snap->meta.term > m.term)) return false;
  return true;
}

void raft_node::step(const message& m) {
  SLUICE_ASSERT_MSG(!_ready_outstanding, "step() between ready() and advance()");
  if (!valid(m)) {
    ++_dropped;
    return;
  }
  if (m.term > _term) {
    if (m.type == message_type::pre_vote || m.type == message_type::vote) {
      // A node that hears from a leader does not let a candidate depose it
      // (check_quorum's lease), unless leadership is being transferred.
      const bool in_lease = _cfg.check_quorum && !_lead.is_zero() && _election_elapsed < _cfg.election_timeout_ticks;
      if (in_lease && !m.transfer) return;
    }
    if (m.type == message_type::pre_vote) {
      // A pre-vote does not change our term.
    } else if (m.type == message_type::pre_vote_resp && !m.reject) {
      // Granted pre-votes carry the term we would campaign in.
    } else {
      become_follower(m.term, from_leader(m.type) ? m.from : no_node);
    }
  } else if (m.term < _term) {
    if ((_cfg.check_quorum || _cfg.pre_vote) &&
        (m.type == message_type::append || m.type == message_type::heartbeat)) {
      // A deposed leader (or one cut off while we moved on) learns our term.
      message r;
      r.type = message_type::heartbeat_resp;
      r.to = m.from;
      send(std::move(r));
    } else if (m.type == message_type::pre_vote) {
      message r;
      r.type = message_type::pre_vote_resp;
      r.to = m.from;
      r.term = _term;
      r.reject = true;
      send(std::move(r));
    }
    return;
  }

  if (m.type == message_type::pre_vote || m.type == message_type::vote) {
    handle_vote_request(m);
    return;
  }
  if (m.term != _term) {
    // Only a granted pre-vote answer carries a later term; it matters to a
    // pre-candidate alone (a late one may reach a follower or a leader).
    SLUICE_ASSERT(m.type == message_type::pre_vote_resp && m.term > _term);
    if (_role != role::pre_candidate) return;
  }
  switch (_role) {
    case role::leader: step_leader(m); break;
    case role::pre_candidate:
    case role::candidate: step_candidate(m); break;
    case role::follower: step_follower(m); break;
  }
}

void raft_node::handle_vote_request(const message& m) {
  const bool can_vote = _vote == m.from || (_vote.is_zero() && _lead.is_zero()) ||
                        (m.type == message_type::pre_vote && m.term > _term);
  message r;
  r.type = response_to(m.type);
  r.to = m.from;
  if (can_vote && _log.is_up_to_date(m.index, m.log_term) && gate_allows(m.index, m.log_term)) {
    r.term = m.term;
    if (m.type == message_type::vote) {
      SLUICE_ASSERT_MSG(m.term == _term, "a vote is granted in our own term");
      SLUICE_ASSERT_MSG(_vote.is_zero() || _vote == m.from, "one vote per term");
      _election_elapsed = 0;
      _vote = m.from;
    }
  } else {
    r.term = _term;
    r.reject = true;
  }
  send(std::move(r));
}

void raft_node::step_leader(const message& m) {
  SLUICE_ASSERT(m.term == _term);
  if (from_leader(m.type)) SLUICE_PANIC("two leaders in one term");
  auto it = _progress.find(m.from);
  if (it == _progress.end()) return;  // not a member (any more)
  progress& pr = it->second;
  switch (m.type) {
    case message_type::append_resp: handle_append_resp(m, pr); break;
    case message_type::heartbeat_resp: handle_heartbeat_resp(m, pr); break;
    case message_type::install_snapshot_resp: handle_snapshot_resp(m, pr); break;
    default: break;  // stale votes, timeout_now
  }
}

void raft_node::step_candidate(const message& m) {
  if (from_leader(m.type)) {
    SLUICE_ASSERT(m.term == _term);
    become_follower(_term, m.from);
    step_follower(m);
    return;
  }
  const bool mine = (_role == role::pre_candidate && m.type == message_type::pre_vote_resp) ||
                    (_role == role::candidate && m.type == message_type::vote_resp);
  if (!mine) return;
  // A granted pre-vote carries the term we campaign in; anything else ours.
  const term_id expected = (_role == role::pre_candidate && !m.reject) ? next_term(_term) : _term;
  if (m.term != expected) return;
  switch (poll(m.from, !m.reject)) {
    case poll_result::won:
      if (_role == role::pre_candidate) {
        campaign(campaign_kind::election);
      } else {
        become_leader();
      }
      break;
    case poll_result::lost: become_follower(_term, no_node); break;
    case poll_result::pending: break;
  }
}

void raft_node::step_follower(const message& m) {
  SLUICE_ASSERT(m.term == _term);
  switch (m.type) {
    case message_type::append:
      _election_elapsed = 0;
      _lead = m.from;
      handle_append(m);
      break;
    case message_type::heartbeat:
      _election_elapsed = 0;
      _lead = m.from;
      handle_heartbeat(m);
      break;
    case message_type::install_snapshot:
      _election_elapsed = 0;
      _lead = m.from;
      handle_snapshot(m);
      break;
    case message_type::timeout_now:
      campaign(campaign_kind::transfer);
      break;
    default: break;
  }
}

void raft_node::handle_append(const message& m) {
  message r;
  r.type = message_type::append_resp;
  r.to = m.from;
  if (m.index < _log.committed()) {
    r.index = _log.committed();
    send(std::move(r));
    return;
  }
  if (!_log.match_term(m.index, m.log_term)) {
    const log_index hint = std::min(m.index, _log.last_index());
    auto [hint_index, hint_term] = _log.find_conflict_by_term(hint, m.log_term);
    r.index = m.index;
    r.reject = true;
    r.reject_hint = hint_index;
    r.log_term = hint_term;
    send(std::move(r));
    return;
  }
  const log_index last_new = m.entries.empty() ? m.index : m.entries.back().last();
  const size_t conflict = _log.find_conflict(m.entries);
  if (conflict < m.entries.size()) {
    const log_index at = m.entries[conflict].index;
    SLUICE_ASSERT_MSG(at > _log.committed(), "a leader's entry conflicts with a committed entry");
    const bool truncating = at <= _log.last_index();
    _log.truncate_and_append(m.entries, conflict);
    if (truncating) on_truncated(at);
    on_appended(m.entries, conflict);
    maybe_clear_gate();
  }
  _log.commit_to(std::min(m.commit, last_new));
  r.index = last_new;
  send(std::move(r));
}

void raft_node::handle_heartbeat(const message& m) {
  message r;
  r.type = message_type::heartbeat_resp;
  r.to = m.from;
  r.seq = m.seq;
  if (m.commit > _log.last_index()) {
    // The leader sends min(commit, our match): we held it, durably, unless
    // we lost a suffix since (a repairing node; its gate covers every
    // index it acknowledged). Our log up to its end still matches the
    // leader's: take the commit that far, and tell the leader where our
    // log really ends, so that it lowers our match and sends the rest.
    SLUICE_ASSERT_MSG(_gate.active(), "heartbeat commit past our log");
    _log.commit_to(_log.last_index());
    r.reject = true;
    r.reject_hint = _log.last_index();
  } else {
    _log.commit_to(m.commit);
  }
  send(std::move(r));
}

void raft_node::handle_snapshot(const message& m) {
  message r;
  r.type = message_type::install_snapshot_resp;
  r.to = m.from;
  r.index = restore(*m.snap) ? _log.last_index() : _log.committed();
  send(std::move(r));
}

bool raft_node::restore(const snapshot& s) {
  if (s.meta.index <= _log.committed()) return false;
  if (_log.match_term(s.meta.index, s.meta.term)) {
    // We have the snapshot's last entry: only the commit moves.
    _log.commit_to(s.meta.index);
    return false;
  }
  SLUICE_ASSERT_MSG(_role == role::follower, "only a follower installs a snapshot");
  _log.restore(s);
  maybe_clear_gate();
  membership m = s.meta.members;
  m.normalize();
  _conf_history.clear();
  _conf_history.push_back({s.meta.index, m});
  set_members(m);
  return true;
}

void raft_node::handle_append_resp(const message& m, progress& pr) {
  pr.recent_active = true;
  if (m.reject && m.index >= pr.match && m.reject_hint < pr.match) {
    // An append whose previous entry is at or past the match the follower
    // acknowledged is refused, and the follower's log ends before that
    // match: it lost a suffix (a repair). The hint is then its last index
    // (its log matches ours up to there, and its last term is at most
    // ours at the refused index). A rejection of an older append (below
    // the match: stale, overtaken by an acknowledgement) is not one.
    regress(m.from, pr, m.reject_hint);
    return;
  }
  if (m.reject) {
    log_index next_probe = m.reject_hint;
    if (!m.log_term.is_zero() && m.reject_hint <= _log.last_index()) {
      next_probe = _log.find_conflict_by_term(m.reject_hint, m.log_term).first;
    }
    if (pr.maybe_decr_to(m.index, next_probe)) {
      if (pr.state == progress_state::replicate) pr.become_probe();
      send_append(m.from, true);
    }
    return;
  }
  SLUICE_ASSERT_MSG(m.index <= _log.last_index(), "a follower acknowledged an index past the leader's log");
  const bool was_paused = pr.is_paused();
  const bool updated = pr.maybe_update(m.index);
  // A probe answered at the match we already knew still ends the probe.
  if (!updated && !(pr.state == progress_state::probe && pr.match == m.index)) return;
  switch (pr.state) {
    case progress_state::probe: pr.become_replicate(); break;
    case progress_state::snapshot:
      if (pr.match + 1 >= _log.first_index()) {
        pr.become_probe();
        pr.become_replicate();
      }
      break;
    case progress_state::replicate: pr.in_flight.free_le(m.index); break;
  }
  if (maybe_commit()) {
    _bcast_pending = true;
  } else if (was_paused) {
    send_append(m.from, true);
  }
  while (send_append(m.from, false)) {
  }
  if (m.from == _transferee && pr.match == _log.last_index()) send_timeout_now(m.from);
}

void raft_node::handle_heartbeat_resp(const message& m, progress& pr) {
  pr.recent_active = true;
  pr.probe_sent = false;
  if (m.seq > pr.heartbeat_seq) {
    SLUICE_ASSERT_MSG(m.seq <= _heartbeat_seq, "a heartbeat answer from the future");
    pr.heartbeat_seq = m.seq;
    confirm_reads();
  }
  if (m.reject) {
    // A repairing follower's log ends before the commit we sent it.
    if (m.reject_hint < pr.match) regress(m.from, pr, m.reject_hint);
    return;
  }
  if (pr.state == progress_state::replicate && pr.in_flight.full()) pr.in_flight.free_first();
  if (pr.match < _log.last_index()) send_append(m.from, true);
}

void raft_node::handle_snapshot_resp(const message& m, progress& pr) {
  pr.recent_active = true;
  if (m.index <= _log.last_index()) pr.maybe_update(m.index);
  if (pr.state == progress_state::snapshot) pr.become_probe();
  send_append(m.from, true);
}

// ---- messages out ---------------------------------------------------------------------

void raft_node::send(message m) {
  m.from = _cfg.self;
  SLUICE_ASSERT_MSG(!m.to.is_zero() && m.to != _cfg.self, "messages go to another node");
  if (m.type != message_type::pre_vote && m.type != message_type::pre_vote_resp) {
    SLUICE_ASSERT_MSG(m.term.is_zero() || m.term == _term, "a message carries our term");
    m.term = _term;
  }
  SLUICE_ASSERT(!m.term.is_zero());
  _msgs.push_back(std::move(m));
}

bool raft_node::send_append(node_id to, bool send_if_empty) {
  auto it = _progress.find(to);
  SLUICE_ASSERT(it != _progress.end() && to != _cfg.self);
  progress& pr = it->second;
  if (pr.is_paused()) return false;
  const log_index last = _log.last_index();
  SLUICE_ASSERT_MSG(pr.match <= last, "a follower's match is past the leader's log");
  SLUICE_ASSERT_MSG(pr.next > pr.match && pr.next <= last + 1, "next out of range");
  if (pr.next < _log.first_index()) return send_snapshot(to, pr);
  std::vector<entry> ents;
  if (pr.next <= last) {
    auto r = _log.entries(pr.next, last + 1, _cfg.append_bytes_max);
    if (!r) {
      if (r.err().code == errc::compacted) return send_snapshot(to, pr);
      pr.read_pending = true;
      return false;
    }
    ents = std::move(r.value());
    SLUICE_ASSERT(!ents.empty());
    // next may point inside an entry after a backtracking hint: send whole entries.
    const log_index start = ents.front().index;
    SLUICE_ASSERT(start <= pr.next && start > pr.match);
    pr.next = start;
  }
  if (ents.empty() && !send_if_empty) return false;
  const log_index prev = pr.next - 1;
  auto prev_term = _log.term(prev);
  if (!prev_term) {
    if (prev_term.err().code == errc::compacted) return send_snapshot(to, pr);
    pr.read_pending = true;
    return false;
  }
  message m;
  m.type = message_type::append;
  m.to = to;
  m.index = prev;
  m.log_term = prev_term.value();
  m.commit = _log.committed();
  if (!ents.empty()) {
    const log_index sent_last = ents.back().last();
    if (pr.state == progress_state::replicate) {
      pr.next = sent_last + 1;
      pr.in_flight.add(sent_last);
    } else {
      pr.probe_sent = true;
    }
  } else if (pr.state == progress_state::probe) {
    pr.probe_sent = true;
  }
  m.entries = std::move(ents);
  send(std::move(m));
  return true;
}

bool raft_node::send_snapshot(node_id to, progress& pr) {
  if (!pr.recent_active) return false;  // do not ship a snapshot to a node that may be down
  auto s = _log.reader().current_snapshot();
  if (!s) {
    pr.read_pending = true;
    return false;
  }
  SLUICE_ASSERT_MSG(s.value().meta.index >= pr.match, "a snapshot behind the follower's match");
  pr.become_snapshot(s.value().meta.index);
  message m;
  m.type = message_type::install_snapshot;
  m.to = to;
  m.snap = std::move(s.value());
  send(std::move(m));
  return true;
}

void raft_node::send_timeout_now(node_id to) {
  message m;
  m.type = message_type::timeout_now;
  m.to = to;
  send(std::move(m));
}

void raft_node::bcast_append() {
  for (auto& [id, pr] : _progress) {
    if (id != _cfg.self) send_append(id, true);
  }
}

void raft_node::bcast_heartbeat() {
  ++_heartbeat_seq;
  _progress.at(_cfg.self).heartbeat_seq = _heartbeat_seq;
  for (auto& [id, pr] : _progress) {
    if (id == _cfg.self) continue;
    message m;
    m.type = message_type::heartbeat;
    m.to = id;
    m.commit = std::min(pr.match, _log.committed());
    m.seq = _heartbeat_seq;
    send(std::move(m));
  }
}

void raft_node::confirm_reads() {
  size_t done = 0;
  for (; done < _pending_reads.size(); ++done) {
    const pending_read& r = _pending_reads[done];
    size_t acks = 0;
    for (node_id n : _members.voters) {
      if (_progress.at(n).heartbeat_seq >= r.seq) ++acks;
    }
    if (acks < _members.quorum()) break;  // later rounds cannot be confirmed before earlier ones
    _read_states.push_back(read_state{r.request_id, r.index});
  }
  _pending_reads.erase(_pending_reads.begin(), _pending_reads.begin() + static_cast<std::ptrdiff_t>(done));
}

result<void> raft_node::read_index(uint64_t request_id) {
  SLUICE_ASSERT_MSG(!_ready_outstanding, "read_index() between ready() and advance()");
  if (_role != role::leader) return not_leader_error();
  if (_log.committed() < _term_start_index) {
    return make_raft_error(errc::unavailable, "the leader has not committed an entry of its term yet");
  }
  // Reads are confirmed in request order: a read may not overtake an earlier one.
  _pending_reads.push_back(pending_read{request_id, _log.committed(), _heartbeat_seq + 1});
  bcast_heartbeat();
  confirm_reads();  // a single voter confirms at once
  return {};
}

bool raft_node::maybe_commit() {
  SLUICE_ASSERT(_role == role::leader);
  std::vector<log_index> matches;
  matches.reserve(_members.voters.size());
  for (node_id n : _members.voters) {
    auto it = _progress.find(n);
    SLUICE_ASSERT_MSG(it != _progress.end(), "a leader tracks every voter");
    matches.push_back(it->second.match);
  }
  std::sort(matches.begin(), matches.end(), std::greater<>());
  const log_index candidate = matches[_members.quorum() - 1];
  if (candidate <= _log.committed()) return false;
  // Only entries of the current term are committed by counting (Raft 5.4.2).
  auto t = _log.term(candidate);
  SLUICE_ASSERT(t.has_value());
  if (t.value() != _term) return false;
  _log.commit_to(candidate);
  return true;
}

void raft_node::abort_transfer() { _transferee = no_node; }

void raft_node::regress(node_id id, progress& pr, log_index last) {
  SLUICE_ASSERT(_role == role::leader && id != _cfg.self);
  SLUICE_ASSERT_MSG(last < pr.match, "a regress lowers the match");
  // A match is an entry's last index. A rejection that is stale (a
  // duplicate, or overtaken by an acknowledgement) may name an index
  // inside an entry: back to the end of the entry before it. Lowering a
  // match is always safe (fewer counted for commits); one that is still
  // too high is lowered again by the next rejection.
  log_index to = last;
  if (to >= _log.first_index()) {
    auto e = _log.entries(to, _log.last_index() + 1, 1);  // the entry holding `to` (at least one)
    if (!e) return;  // not in memory now: the next rejection tries again
    if (e.value().front().last() != to) to = e.value().front().index - 1;
  }
  // The commit index stays: it never goes back (the follower's gate keeps
  // it from voting for a log without what it acknowledged).
  pr.regress_to(to);
  if (id == _transferee) abort_transfer();
  send_append(id, true);
}

// ---- proposals ------------------------------------------------------------------------

error raft_node::not_leader_error() const {
  std::string msg = "node " + id_str(_cfg.self) + " is not the leader";
  msg += _lead.is_zero() ? " (no leader known)" : "; the leader is node " + id_str(_lead);
  return make_raft_error(errc::not_leader, std::move(msg));
}

void raft_node::append_as_leader(entry e) {
  SLUICE_ASSERT(_role == role::leader);
  SLUICE_ASSERT_MSG(e.term == _term, "a leader appends entries of its own term only");
  _log.append(std::move(e));
}

result<log_index> raft_node::propose(payload data, uint32_t count) {
  SLUICE_ASSERT_MSG(!_ready_outstanding, "propose() between ready() and advance()");
  if (count == 0) return make_raft_error(errc::invalid_argument, "an entry occupies at least one index");
  if (_role != role::leader) return not_leader_error();
  if (!_transferee.is_zero()) {
    return make_raft_error(errc::transfer_in_progress,
                           "leadership is moving to node " + id_str(_transferee));
  }
  const log_index index = _log.last_index() + 1;
  append_as_leader(entry{_term, index, count, entry_type::normal, std::move(data)});
  _bcast_pending = true;
  return index;
}

result<log_index> raft_node::propose_conf_change(conf_change cc) {
  SLUICE_ASSERT_MSG(!_ready_outstanding, "propose_conf_change() between ready() and advance()");
  if (_role != role::leader) return not_leader_error();
  if (!_transferee.is_zero()) {
    return make_raft_error(errc::transfer_in_progress,
                           "leadership is moving to node " + id_str(_transferee));
  }
  if (_pending_conf_index > _log.committed() || _log.committed() < _term_start_index) {
    return make_raft_error(errc::conf_change_pending,
                           "the previous membership change (or this leader's first entry) is not committed yet");
  }
  const node_id n = cc.node;
  auto invalid = [&](const char* why) {
    return make_raft_error(errc::conf_change_invalid,
                           std::string(to_string(cc.type)) + " node " + id_str(n) + ": " + why);
  };
  if (n.is_zero()) return invalid("node id 0 is reserved");
  membership next = _members;
  auto erase = [](std::vector<node_id>& v, node_id x) { v.erase(std::remove(v.begin(), v.end(), x), v.end()); };
  switch (cc.type) {
    case conf_change_type::add_voter:
      if (_members.contains(n)) return invalid("already a member (promote a learner)");
      next.voters.push_back(n);
      break;
    case conf_change_type::add_learner:
      if (_members.contains(n)) return invalid("already a member");
      next.learners.push_back(n);
      break;
    case conf_change_type::promote:
      if (!_members.is_learner(n)) return invalid("not a learner");
      erase(next.learners, n);
      next.voters.push_back(n);
      break;
    case conf_change_type::remove_voter:
      if (!_members.contains(n)) return invalid("not a member");
      if (n == _cfg.self) return invalid("the leader cannot remove itself; transfer leadership first");
      erase(next.voters, n);
      erase(next.learners, n);
      break;
  }
  next.normalize();
  SLUICE_ASSERT(next.is_voter(_cfg.self));
  const log_index index = _log.last_index() + 1;
  std::vector<entry> ents{entry{_term, index, 1, entry_type::conf_change, payload(encode_membership(next))}};
  append_as_leader(ents.front());
  on_appended(ents, 0);
  _pending_conf_index = index;
  _bcast_pending = true;
  if (maybe_commit()) _bcast_pending = true;  // a smaller quorum may commit at once
  return index;
}

result<void> raft_node::transfer_leadership(node_id target) {
  SLUICE_ASSERT_MSG(!_ready_outstanding, "transfer_leadership() between ready() and advance()");
  if (_role != role::leader) return not_leader_error();
  if (target == _cfg.self) return {};
  if (!_members.is_voter(target)) {
    return make_raft_error(errc::invalid_argument, "node " + id_str(target) + " is not a voter");
  }
  if (_transferee == target) return {};
  _transferee = target;
  _election_elapsed = 0;  // the transfer must finish within an election timeout
  const progress& pr = _progress.at(target);
  if (pr.match == _log.last_index()) {
    send_timeout_now(target);
  } else {
    send_append(target, true);
  }
  return {};
}

// ---- membership -----------------------------------------------------------------------

void raft_node::set_members(const membership& m) {
  _members = m;
  if (_role != role::leader) return;
  // The leader tracks exactly the members.
  for (auto it = _progress.begin(); it != _progress.end();) {
    it = m.contains(it->first) ? std::next(it) : _progress.erase(it);
  }
  const log_index last = _log.last_index();
  auto track = [&](node_id n, bool learner) {
    auto it = _progress.find(n);
    if (it == _progress.end()) {
      it = _progress.emplace(n, progress(_cfg.inflight_appends_max)).first;
      it->second.next = last;  // probe from the conf_change entry
      it->second.recent_active = true;
    }
    it->second.learner = learner;
  };
  for (node_id n : m.voters) track(n, false);
  for (node_id n : m.learners) track(n, true);
  if (!_transferee.is_zero() && !m.is_voter(_transferee)) abort_transfer();
}

void raft_node::on_appended(const std::vector<entry>& ents, size_t from) {
  for (size_t k = from; k < ents.size(); ++k) {
    const entry& e = ents[k];
    if (e.type != entry_type::conf_change) continue;
    auto m = decode_membership(e.data.view());
    SLUICE_ASSERT_MSG(m.has_value(), "a conf_change entry holds a valid membership");
    SLUICE_ASSERT(_conf_history.empty() || _conf_history.back().index < e.index);
    _conf_history.push_back({e.index, m.value()});
    set_members(m.value());
  }
  prune_conf_history();
}

void raft_node::on_truncated(log_index from) {
  SLUICE_ASSERT_MSG(_role != role::leader, "a leader never truncates its log");
  const size_t before = _conf_history.size();
  while (!_conf_history.empty() && _conf_history.back().index >= from) _conf_history.pop_back();
  if (_conf_history.size() == before) return;
  if (_conf_history.empty()) {
    auto rec = _log.reader().last_membership(from - 1);
    _conf_history.push_back(rec ? std::move(*rec) : membership_record{log_index(), _cfg.bootstrap});
    _conf_history.back().members.normalize();
  }
  set_members(_conf_history.back().members);
}

void raft_node::prune_conf_history() {
  // Keep the latest record at or below the commit index and every later one.
  size_t keep_from = 0;
  for (size_t k = 0; k < _conf_history.size(); ++k) {
    if (_conf_history[k].index <= _log.committed()) keep_from = k;
  }
  if (keep_from > 0) _conf_history.erase(_conf_history.begin(), _conf_history.begin() + keep_from);
}

// ---- ready / advance ----------------------------------------------------------------------

bool raft_node::has_ready() const {
  if (_ready_outstanding) return false;
  if (_bcast_pending && _role == role::leader) return true;
  if (soft_state{_lead, _role} != _prev_soft) return true;
  if (hard_state{_term, _vote, _log.committed(), _gate} != _prev_hard) return true;
  if (_log.unstable_snapshot() || !_log.unstable_entries().empty() || !_msgs.empty()) return true;
  if (!_read_states.empty()) return true;
  return !_apply_retry && _log.applied() < _log.committed();
}

raft::ready raft_node::ready() {
  SLUICE_ASSERT_MSG(!_ready_outstanding, "ready() twice without advance()");
  if (_bcast_pending) {
    _bcast_pending = false;
    if (_role == role::leader) bcast_append();
  }
  raft::ready rd;
  const soft_state ss{_lead, _role};
  if (ss != _prev_soft) {
    rd.soft = ss;
    _prev_soft = ss;
  }
  const hard_state hs{_term, _vote, _log.committed(), _gate};
  if (hs != _prev_hard) {
    SLUICE_ASSERT_MSG(hs.term >= _prev_hard.term, "terms never decrease");
    SLUICE_ASSERT_MSG(hs.term != _prev_hard.term || _prev_hard.vote.is_zero() || hs.vote == _prev_hard.vote,
                      "a vote never changes within a term");
    rd.hard = hs;
    _prev_hard = hs;
  }
  rd.snap = _log.unstable_snapshot();
  rd.entries = _log.unstable_entries();
  if (_log.unstable_truncates()) rd.truncate_from = rd.entries.front().index;
  // A leader's appends and heartbeats need not wait for its own disk: it
  // counts itself only after advance(). Not before its term is durable,
  // though: a node that lost its term could lead that term again.
  for (message& m : _msgs) {
    const bool leader_message = m.type == message_type::append || m.type == message_type::heartbeat ||
                                m.type == message_type::install_snapshot || m.type == message_type::timeout_now;
    const bool early = leader_message && m.term == _durable_term && (!rd.hard || rd.hard->term == _durable_term);
    (early ? rd.early_messages : rd.messages).push_back(std::move(m));
  }
  _msgs.clear();
  rd.commit = _log.committed();
  rd.read_states = std::move(_read_states);
  _read_states.clear();
  if (_cfg.deliver_committed_entries && !rd.snap && _log.applied() < _log.committed()) {
    auto r = _log.entries(_log.applied() + 1, _log.committed() + 1, _cfg.ready_apply_bytes_max);
    if (r) {
      rd.committed_entries = std::move(r.value());
      SLUICE_ASSERT(rd.committed_entries.front().index == _log.applied() + 1);
      SLUICE_ASSERT(rd.committed_entries.back().last() <= _log.committed());
    } else {
      SLUICE_ASSERT_MSG(r.err().code == errc::unavailable, "committed entries compacted before they were applied");
      _apply_retry = true;
    }
  }
  _ready_outstanding = true;
  return rd;
}

void raft_node::advance(const raft::ready& rd) {
  SLUICE_ASSERT_MSG(_ready_outstanding, "advance() without ready()");
  _ready_outstanding = false;
  _log.stable_to(rd.snap, rd.entries);
  if (rd.hard) _durable_term = rd.hard->term;
  if (!rd.committed_entries.empty()) {
    _log.applied_to(rd.committed_entries.back().last());
  } else if (!_cfg.deliver_committed_entries && !rd.snap) {
    _log.applied_to(rd.commit);
  }
  if (_role == role::leader) {
    progress& self = _progress.at(_cfg.self);
    const log_index durable = _log.stable_match();
    SLUICE_ASSERT_MSG(durable >= self.match, "the leader's durable log shrank");
    self.maybe_update(durable);
    if (maybe_commit()) _bcast_pending = true;
  }
  prune_conf_history();
}

// ---- status -------------------------------------------------------------------------------

node_status raft_node::status() const {
  node_status s;
  s.self = _cfg.self;
  s.role = _role;
  s.term = _term;
  s.vote = _vote;
  s.leader = _lead;
  s.transferee = _transferee;
  s.commit = _log.committed();
  s.applied = _log.applied();
  s.first_index = _log.first_index();
  s.last_index = _log.last_index();
  s.members = _members;
  s.gate = _gate;
  if (_role == role::leader) {
    for (const auto& [id, pr] : _progress) {
      if (id == _cfg.self) continue;
      s.followers.push_back(follower_status{id, pr.learner, pr.state, pr.match, pr.next, pr.recent_active,
                                            pr.in_flight.count()});
    }
  }
  return s;
}

}  // namespace sluice::raft
