#include "types.h"

#include <algorithm>

namespace sluice::raft {

namespace {

class category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "sluice.raft"; }
  std::string message(int c) const override {
    switch (static_cast<errc>(c)) {
      case errc::not_leader: return "not the leader";
      case errc::transfer_in_progress: return "leadership transfer in progress";
      case errc::conf_change_pending: return "a membership change is pending";
      case errc::conf_change_invalid: return "invalid membership change";
      case errc::compacted: return "log compacted";
      case errc::unavailable: return "log entries unavailable";
      case errc::snapshot_unavailable: return "snapshot unavailable";
      case errc::invalid_argument: return "invalid argument";
    }
    return "unknown";
  }
};

void put_u32(std::string& out, uint32_t v) {
  for (int k = 0; k < 4; ++k) out.push_back(static_cast<char>((v >> (8 * k)) & 0xff));
}
void put_u64(std::string& out, uint64_t v) {
  for (int k = 0; k < 8; ++k) out.push_back(static_cast<char>((v >> (8 * k)) & 0xff));
}
bool get_u64(std::string_view& in, uint64_t& v, size_t width) {
  if (in.size() < width) return false;
  v = 0;
  for (size_t k = 0; k < width; ++k) v |= static_cast<uint64_t>(static_cast<uint8_t>(in[k])) << (8 * k);
  in.remove_prefix(width);
  return true;
}

bool sorted_contains(const std::vector<node_id>& v, node_id n) { return std::binary_search(v.begin(), v.end(), n); }

void sort_unique(std::vector<node_id>& v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
}

}  // namespace

const std::error_category& raft_category() noexcept {
  static const category_impl c;
  return c;
}

payload::payload(std::string bytes) {
  auto owned = std::make_shared<const std::string>(std::move(bytes));
  _data = owned->data();
  _size = owned->size();
  _owner = std::move(owned);
}

const char* to_string(entry_type t) noexcept {
  switch (t) {
    case entry_type::normal: return "normal";
    case entry_type::conf_change: return "conf";
    case entry_type::noop: return "noop";
  }
  return "?";
}

bool membership::is_voter(node_id n) const noexcept { return sorted_contains(voters, n); }
bool membership::is_learner(node_id n) const noexcept { return sorted_contains(learners, n); }

void membership::normalize() {
  sort_unique(voters);
  sort_unique(learners);
  for (node_id n : learners) SLUICE_ASSERT_MSG(!is_voter(n), "a node is both voter and learner");
  for (node_id n : voters) SLUICE_ASSERT_MSG(!n.is_zero(), "node id 0 is reserved");
  for (node_id n : learners) SLUICE_ASSERT_MSG(!n.is_zero(), "node id 0 is reserved");
}

std::string to_string(const membership& m) {
  std::string s = "voters{";
  for (size_t k = 0; k < m.voters.size(); ++k) s += (k ? "," : "") + std::to_string(m.voters[k].value());
  s += "} learners{";
  for (size_t k = 0; k < m.learners.size(); ++k) s += (k ? "," : "") + std::to_string(m.learners[k].value());
  return s + "}";
}

std::string encode_membership(const membership& m) {
  std::string out;
  out.reserve(9 + 8 * (m.voters.size() + m.learners.size()));
  out.push_back(1);
  put_u32(out, static_cast<uint32_t>(m.voters.size()));
  for (node_id n : m.voters) put_u64(out, n.value());
  put_u32(out, static_cast<uint32_t>(m.learners.size()));
  for (node_id n : m.learners) put_u64(out, n.value());
  return out;
}

result<membership> decode_membership(std::string_view in) {
  auto bad = [](const char* what) {
    return make_raft_error(errc::invalid_argument, std::string("membership payload: ") + what);
  };
  if (in.empty() || in[0] != 1) return bad("unknown version");
  in.remove_prefix(1);
  membership m;
  for (auto* list : {&m.voters, &m.learners}) {
    uint64_t n = 0;
    if (!get_u64(in, n, 4)) return bad("truncated count");
    if (n > in.size() / 8) return bad("count larger than the payload");
    for (uint64_t k = 0; k < n; ++k) {
      uint64_t id = 0;
      (void)get_u64(in, id, 8);
      if (id == 0) return bad("node id 0");
      list->push_back(node_id(id));
    }
    if (!std::is_sorted(list->begin(), list->end()) ||
        std::adjacent_find(list->begin(), list->end()) != list->end()) {
      return bad("ids not sorted and unique");
    }
  }
  if (!in.empty()) return bad("trailing bytes");
  for (node_id n : m.learners) {
    if (m.is_voter(n)) return bad("a node is both voter and learner");
  }
  return m;
}

const char* to_string(conf_change_type t) noexcept {
  switch (t) {
    case conf_change_type::add_voter: return "add_voter";
    case conf_change_type::remove_voter: return "remove_voter";
    case conf_change_type::add_learner: return "add_learner";
    case conf_change_type::promote: return "promote";
  }
  return "?";
}

const char* to_string(role r) noexcept {
  switch (r) {
    case role::follower: return "follower";
    case role::pre_candidate: return "pre_candidate";
    case role::candidate: return "candidate";
    case role::leader: return "leader";
  }
  return "?";
}

const char* to_string(message_type t) noexcept {
  switch (t) {
    case message_type::pre_vote: return "pre_vote";
    case message_type::pre_vote_resp: return "pre_vote_resp";
    case message_type::vote: return "vote";
    case message_type::vote_resp: return "vote_resp";
    case message_type::append: return "append";
    case message_type::append_resp: return "append_resp";
    case message_type::heartbeat: return "heartbeat";
    case message_type::heartbeat_resp: return "heartbeat_resp";
    case message_type::install_snapshot: return "install_snapshot";
    case message_type::install_snapshot_resp: return "install_snapshot_resp";
    case message_type::timeout_now: return "timeout_now";
  }
  return "?";
}

std::string describe(const message& m) {
  std::string s = to_string(m.type);
  s += ' ' + std::to_string(m.from.value()) + "->" + std::to_string(m.to.value());
  s += " t=" + std::to_string(m.term.value());
  auto field = [&s](const char* name, uint64_t v) { s += ' ' + std::string(name) + '=' + std::to_string(v); };
  switch (m.type) {
    case message_type::pre_vote:
    case message_type::vote:
      field("last", m.index.value());
      field("lt", m.log_term.value());
      if (m.transfer) s += " transfer";
      break;
    case message_type::pre_vote_resp:
    case message_type::vote_resp:
      s += m.reject ? " reject" : " grant";
      break;
    case message_type::append:
      field("prev", m.index.value());
      field("lt", m.log_term.value());
      field("commit", m.commit.value());
      field("n", m.entries.size());
      if (!m.entries.empty()) field("last", m.entries.back().last().value());
      break;
    case message_type::append_resp:
      field("idx", m.index.value());
      if (m.reject) {
        s += " reject";
        field("hint", m.reject_hint.value());
        field("ht", m.log_term.value());
      }
      break;
    case message_type::heartbeat:
      field("commit", m.commit.value());
      field("seq", m.seq);
      break;
    case message_type::heartbeat_resp:
      field("seq", m.seq);
      break;
    case message_type::install_snapshot:
      if (m.snap) {
        field("idx", m.snap->meta.index.value());
        field("st", m.snap->meta.term.value());
      }
      break;
    case message_type::install_snapshot_resp:
      field("idx", m.index.value());
      break;
    case message_type::timeout_now:
      break;
  }
  return s;
}

}  // namespace sluice::raft
