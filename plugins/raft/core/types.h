// The vocabulary of the Raft core: strong ids, log entries, memberships,
// snapshots, hard state and messages (docs/RAFT.md).
//
// Everything here is a plain value: no I/O, no threads, no clock. Payloads
// are immutable bytes shared by reference, so copying an entry into a ready,
// into several messages and into the host's log costs a reference count,
// never the bytes (a host may wrap its own buffer, e.g. a sluice_buf).
//
// Index space. An entry occupies `count` consecutive indexes starting at
// `index` (a Kafka record batch: one index per record), and the next entry
// starts at last() + 1. Index 0 is "before the log" with term 0, so a
// partition maps Kafka offset o to Raft index o + 1 (docs/RAFT.md).
#pragma once

#include <sluice/sdk/assert.h>
#include <sluice/sdk/result.h>

#include <compare>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace sluice::raft {

// A 64-bit id that does not mix with the other ids or with plain integers.
template <typename Tag>
class strong_id {
 public:
  constexpr strong_id() noexcept = default;
  constexpr explicit strong_id(uint64_t v) noexcept : _v(v) {}
  constexpr uint64_t value() const noexcept { return _v; }
  constexpr bool is_zero() const noexcept { return _v == 0; }
  constexpr auto operator<=>(const strong_id&) const noexcept = default;

 private:
  uint64_t _v = 0;
};

struct node_tag {};
struct term_tag {};
struct index_tag {};
using node_id = strong_id<node_tag>;    // 0: none
using term_id = strong_id<term_tag>;    // 0: before any election
using log_index = strong_id<index_tag>; // 0: before the first entry

constexpr node_id no_node{};

inline constexpr term_id next_term(term_id t) noexcept { return term_id(t.value() + 1); }
inline constexpr log_index operator+(log_index i, uint64_t n) noexcept { return log_index(i.value() + n); }
inline constexpr log_index operator-(log_index i, uint64_t n) noexcept {
  SLUICE_ASSERT_MSG(i.value() >= n, "log_index underflow");
  return log_index(i.value() - n);
}

// ---- errors -------------------------------------------------------------------

enum class errc {
  not_leader = 1,           // propose/transfer/conf change on a node that is not the leader
  transfer_in_progress,     // the leader is handing leadership over; retry at the new leader
  conf_change_pending,      // a membership change is not yet committed (one at a time)
  conf_change_invalid,      // the change does not apply to the current membership
  compacted,                // the index is below the log's first index (use the snapshot)
  unavailable,              // past the log's end, or the host cannot read it right now
  snapshot_unavailable,     // the host has no snapshot to send right now
  invalid_argument,         // a bad count, node id or payload
};
const std::error_category& raft_category() noexcept;
inline std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), raft_category()}; }
inline error make_raft_error(errc code, std::string message) {
  return error{make_error_code(code), std::move(message)};
}

// ---- payloads and entries -------------------------------------------------------

// Immutable bytes shared by reference.
class payload {
 public:
  payload() noexcept = default;
  explicit payload(std::string bytes);
  // Bytes owned by `owner` (kept alive as long as any copy of this payload).
  payload(std::shared_ptr<const void> owner, const void* data, size_t size) noexcept
      : _owner(std::move(owner)), _data(static_cast<const char*>(data)), _size(size) {}

  std::string_view view() const noexcept { return {_data, _size}; }
  size_t size() const noexcept { return _size; }
  bool empty() const noexcept { return _size == 0; }
  bool operator==(const payload& o) const noexcept { return view() == o.view(); }

 private:
  std::shared_ptr<const void> _owner;
  const char* _data = nullptr;
  size_t _size = 0;
};

enum class entry_type : uint8_t {
  normal = 0,       // the host's bytes (a Kafka record batch)
  conf_change = 1,  // payload: encode_membership() of the new membership
  noop = 2,         // appended by every new leader in its term
};
const char* to_string(entry_type t) noexcept;

struct entry {
  term_id term;
  log_index index;     // the first index the entry occupies
  uint32_t count = 1;  // indexes it occupies, >= 1
  entry_type type = entry_type::normal;
  payload data;

  log_index last() const noexcept { return index + (count - 1); }
  // What max-bytes limits count for one entry.
  size_t bytes() const noexcept { return data.size() + 32; }
};

// ---- membership -------------------------------------------------------------------

// Voters and learners, each sorted and unique, disjoint.
struct membership {
  std::vector<node_id> voters;
  std::vector<node_id> learners;

  bool is_voter(node_id n) const noexcept;
  bool is_learner(node_id n) const noexcept;
  bool contains(node_id n) const noexcept { return is_voter(n) || is_learner(n); }
  size_t quorum() const noexcept { return voters.size() / 2 + 1; }
  // Sorts, removes duplicates; asserts voters and learners are disjoint.
  void normalize();
  bool operator==(const membership&) const = default;
};
std::string to_string(const membership& m);

// The payload of a conf_change entry. Little-endian:
//   u8 version=1, u32 voters, u64 x voters, u32 learners, u64 x learners.
std::string encode_membership(const membership& m);
result<membership> decode_membership(std::string_view bytes);

enum class conf_change_type : uint8_t {
  add_voter,     // straight to voter (prefer add_learner, then promote)
  remove_voter,  // removes a voter or a learner; the leader may not remove itself
  add_learner,
  promote,       // learner -> voter
};
struct conf_change {
  conf_change_type type = conf_change_type::add_learner;
  node_id node;
};
const char* to_string(conf_change_type t) noexcept;

// ---- snapshots and persisted state ---------------------------------------------------

struct snapshot_meta {
  log_index index;  // the last index the snapshot covers (an entry's last())
  term_id term;     // that entry's term
  membership members;  // the membership in effect at index
};
struct snapshot {
  snapshot_meta meta;
  payload data;  // opaque, chosen by the host (empty for a partition)
};

// A replica that lost a suffix of its log it may have acknowledged (a
// damaged segment cut at open; docs/RAFT.md, "Repairing a replica"): its
// last entry before the loss. While the log ends before `index` the node
// neither campaigns nor votes for a candidate whose log is behind that
// entry, and takes a leader's commit index only up to its own log. Zero:
// no repair.
struct repair_gate {
  log_index index;  // the last index the log held before the loss
  term_id term;     // that entry's term
  bool active() const noexcept { return !index.is_zero(); }
  bool operator==(const repair_gate&) const = default;
};

// What must be durable before the messages of the same ready are sent.
struct hard_state {
  term_id term;
  node_id vote;      // the candidate voted for in `term`, or none
  log_index commit;  // may be persisted lazily: losing it is safe
  // Set by the host before it cuts a damaged suffix; the core clears it
  // once the log reaches gate.index again. Its removal must be durable
  // only after the entries of the same ready are.
  repair_gate gate;
  bool operator==(const hard_state&) const = default;
};

// A conf_change entry (or a snapshot) and the membership it sets.
struct membership_record {
  log_index index;
  membership members;
};

// ---- roles and messages -----------------------------------------------------------

enum class role : uint8_t { follower, pre_candidate, candidate, leader };
const char* to_string(role r) noexcept;

enum class message_type : uint8_t {
  pre_vote,           // term: the term the sender would campaign in; index/log_term: its last entry
  pre_vote_resp,      // term: the request's term when granted, the responder's when rejected
  vote,               // same fields as pre_vote
  vote_resp,
  append,             // index/log_term: the entry before `entries`; commit: the leader's
  append_resp,        // ok: index = last index matched; reject: index = rejected prev,
                      //     reject_hint/log_term = a hint for backtracking
  heartbeat,          // term, commit (min(commit, the follower's match)) and seq
  heartbeat_resp,     // term and the heartbeat's seq (confirms leadership for read_index)
  install_snapshot,   // snap
  install_snapshot_resp,  // index: the follower's last index after handling it
  timeout_now,        // leadership transfer: campaign now, ignoring leases
};
const char* to_string(message_type t) noexcept;

struct message {
  message_type type = message_type::heartbeat;
  node_id from;
  node_id to;
  term_id term;
  log_index index;
  term_id log_term;
  log_index commit;
  log_index reject_hint;
  uint64_t seq = 0;       // heartbeat(_resp): the leader's heartbeat round
  bool reject = false;
  bool transfer = false;  // (pre_)vote of a campaign started by timeout_now
  std::vector<entry> entries;
  std::optional<snapshot> snap;
};
// One line for traces: "append 1->2 t=3 idx=7 lt=2 commit=6 n=2".
std::string describe(const message& m);

}  // namespace sluice::raft

template <>
struct std::is_error_code_enum<sluice::raft::errc> : std::true_type {};
