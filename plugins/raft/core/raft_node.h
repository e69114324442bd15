// raft_node: one member of one Raft group, as a pure state machine.
//
// The host drives it (docs/RAFT.md, "The ready/advance contract"):
//
//   tick()            every tick interval (the host's clock; ticks may skew)
//   step(msg)         for every message received from a peer
//   propose(...)      on the leader: append an entry (a Kafka record batch)
//   ready()           when has_ready(): what to persist, send and apply
//   advance(rd)       after the host has handled that ready
//
// Handling a ready, in this order:
//   1. rd.snap: install it (replace the state machine and the whole log).
//   2. rd.entries: if rd.truncate_from is set, delete every persisted entry
//      with index >= *rd.truncate_from (== rd.entries.front().index: a
//      conflicting suffix); then append rd.entries.
//   0. rd.early_messages: may be sent at once, before or while persisting
//      (a leader's appends and heartbeats: Raft thesis 10.2.1).
//   3. rd.hard: write it. Entries and hard state must be durable (fdatasync)
//      before step 4; if they are not written atomically, entries first.
//   4. rd.messages: send them.
//   5. rd.committed_entries (or, without deliver_committed_entries, entries
//      up to rd.commit): apply them in order.
//   6. advance(rd).
// Between ready() and advance() the host must not call tick, step, propose,
// propose_conf_change or transfer_leadership (it queues them); this is
// asserted. The leader counts its own log towards a commit only after the
// entries were reported durable by advance(), so a committed entry is on
// stable storage on a majority (acks=all), even though its appends may
// leave before its own fdatasync (they are early only once the leader's
// term is durable, so a restarted node never reuses the term).
//
// Thread-safety: none. A node belongs to one shard and is only touched
// there; it performs no I/O, reads no clock and draws randomness only from
// the generator seeded at construction.
#pragma once

#include "log_reader.h"
#include "progress.h"
#include "raft_log.h"
#include "rng.h"
#include "types.h"

#include <map>
#include <optional>
#include <vector>

namespace sluice::raft {

struct config {
  node_id self;
  // The membership of a brand-new group (used only when the log holds no
  // membership record: no conf_change entry and no snapshot). A node that
  // joins an existing group starts with an empty bootstrap and learns the
  // membership from the leader.
  membership bootstrap;
  uint32_t election_timeout_ticks = 10;   // randomised in [T, 2T) per term
  uint32_t heartbeat_interval_ticks = 1;  // < election_timeout_ticks
  bool pre_vote = true;       // no term inflation by a partitioned node
  bool check_quorum = true;   // a leader without a quorum for an election timeout steps down
  uint64_t append_bytes_max = 1 << 20;    // entries per append (at least one entry)
  uint32_t inflight_appends_max = 64;     // unacknowledged appends per follower
  uint64_t ready_apply_bytes_max = 64 << 20;  // committed entries per ready
  // true: ready.committed_entries carries the committed entries (a state
  // machine such as the controller). false: only ready.commit moves (a
  // partition: the log is the state; the high watermark is the commit).
  bool deliver_committed_entries = true;
  log_index applied;  // the host's state machine already holds this prefix
};

struct soft_state {
  node_id leader;
  raft::role role = role::follower;
  bool operator==(const soft_state&) const = default;
};

// A read_index request confirmed: the host may serve the read once its
// state machine has applied `index`.
struct read_state {
  uint64_t request_id = 0;
  log_index index;
};

struct ready {
  std::optional<soft_state> soft;   // when the leader or the role changed
  std::optional<hard_state> hard;   // to persist, when changed
  std::optional<snapshot> snap;     // to install before the entries
  std::vector<entry> entries;       // to append (see the header comment)
  std::optional<log_index> truncate_from;  // the entries replace persisted ones from here
  std::vector<message> early_messages;  // may be sent before persisting
  std::vector<message> messages;    // to send once entries and hard state are durable
  std::vector<entry> committed_entries;  // to apply, in order
  log_index commit;                 // the commit index (the high watermark)
  std::vector<read_state> read_states;  // confirmed read_index requests
};

struct follower_status {
  node_id id;
  bool learner = false;
  progress_state state = progress_state::probe;
  log_index match;
  log_index next;
  bool recent_active = false;
  uint32_t inflight = 0;
};

struct node_status {
  node_id self;
  raft::role role = role::follower;
  term_id term;
  node_id vote;
  node_id leader;
  node_id transferee;
  log_index commit;
  log_index applied;
  log_index first_index;
  log_index last_index;
  membership members;
  repair_gate gate;  // active while the node repairs a lost suffix
  std::vector<follower_status> followers;  // the leader's view; empty elsewhere
};

class raft_node {
 public:
  raft_node(config cfg, const log_reader& log, uint64_t seed);
  raft_node(const raft_node&) = delete;
  raft_node& operator=(const raft_node&) = delete;

  void tick();
  void step(const message& m);

  // Leader only: appends an entry of `count` indexes (>= 1) and returns its
  // first index. errc::not_leader names the known leader, if any.
  result<log_index> propose(payload data, uint32_t count = 1);
  // Leader only: one single-server change at a time. The new membership
  // takes effect when appended (Raft dissertation, section 4.1); a leader
  // accepts the next change once this one and an entry of its own term are
  // committed. The leader may not remove itself: transfer leadership first.
  result<log_index> propose_conf_change(conf_change cc);
  // Leader only: brings `target` up to date, then sends it timeout_now. New
  // proposals fail with errc::transfer_in_progress until the transfer ends
  // (a new leader, or an election timeout later, aborted).
  result<void> transfer_leadership(node_id target);

  // Leader only: a linearizable read. The commit index now is confirmed by
  // a heartbeat round with a quorum, then reported in ready().read_states.
  // Needs an entry of the leader's term committed (errc::unavailable
  // before); requests pending when the node stops leading are dropped (the
  // host sees the role change in ready().soft and retries elsewhere).
  result<void> read_index(uint64_t request_id);

  bool has_ready() const;
  raft::ready ready();
  void advance(const raft::ready& rd);

  // Observers.
  node_id id() const noexcept { return _cfg.self; }
  raft::role current_role() const noexcept { return _role; }
  term_id term() const noexcept { return _term; }
  node_id leader() const noexcept { return _lead; }
  node_id transferee() const noexcept { return _transferee; }
  log_index commit_index() const noexcept { return _log.committed(); }
  log_index applied_index() const noexcept { return _log.applied(); }
  log_index first_index() const { return _log.first_index(); }
  log_index last_index() const { return _log.last_index(); }
  result<term_id> term_at(log_index i) const { return _log.term(i); }
  const membership& members() const noexcept { return _members; }
  const repair_gate& gate() const noexcept { return _gate; }
  node_status status() const;
  uint64_t dropped_messages() const noexcept { return _dropped; }

 private:
  enum class campaign_kind { pre_election, election, transfer };

  bool promotable() const;
  void maybe_clear_gate();
  bool gate_allows(log_index last, term_id t) const;
  void regress(node_id id, progress& pr, log_index last);
  bool valid(const message& m) const;
  void reset(term_id term);
  void become_follower(term_id term, node_id lead);
  void become_pre_candidate();
  void become_candidate();
  void become_leader();
  void campaign(campaign_kind kind);
  enum class poll_result { pending, won, lost };
  poll_result poll(node_id from, bool granted);

  void tick_election();
  void tick_heartbeat();
  bool quorum_active();

  void step_leader(const message& m);
  void step_candidate(const message& m);
  void step_follower(const message& m);
  void handle_vote_request(const message& m);
  void handle_append(const message& m);
  void handle_heartbeat(const message& m);
  void handle_snapshot(const message& m);
  void handle_append_resp(const message& m, progress& pr);
  void handle_heartbeat_resp(const message& m, progress& pr);
  void handle_snapshot_resp(const message& m, progress& pr);
  bool restore(const snapshot& s);

  void send(message m);
  bool send_append(node_id to, bool send_if_empty);
  bool send_snapshot(node_id to, progress& pr);
  void send_timeout_now(node_id to);
  void bcast_append();
  void bcast_heartbeat();
  bool maybe_commit();
  void abort_transfer();

  void append_as_leader(entry e);
  void on_appended(const std::vector<entry>& ents, size_t from);
  void on_truncated(log_index from);
  void set_members(const membership& m);
  void prune_conf_history();
  error not_leader_error() const;

  config _cfg;
  raft_log _log;
  rng _rng;

  term_id _term;
  node_id _vote;
  node_id _lead;
  raft::role _role = role::follower;

  membership _members;
  // Memberships of conf_change entries (and the snapshot) the node may still
  // need after a truncation: the latest committed one and every later one.
  std::vector<membership_record> _conf_history;

  std::map<node_id, progress> _progress;  // the leader's, including itself
  std::map<node_id, bool> _votes;

  uint32_t _election_elapsed = 0;
  uint32_t _heartbeat_elapsed = 0;
  uint32_t _randomized_election_timeout = 0;

  node_id _transferee;
  log_index _pending_conf_index;  // the leader's last conf_change entry
  log_index _term_start_index;    // the leader's no-op of this term

  struct pending_read {
    uint64_t request_id;
    log_index index;
    uint64_t seq;  // confirmed by heartbeat responses of this round or later
  };
  std::vector<pending_read> _pending_reads;  // in seq order
  std::vector<read_state> _read_states;
  uint64_t _heartbeat_seq = 0;
  void confirm_reads();

  std::vector<message> _msgs;
  bool _bcast_pending = false;
  bool _apply_retry = false;
  bool _ready_outstanding = false;
  hard_state _prev_hard;
  repair_gate _gate;      // see repair_gate (types.h)
  term_id _durable_term;  // the term of the last hard state the host persisted
  soft_state _prev_soft;
  uint64_t _dropped = 0;
};

}  // namespace sluice::raft
