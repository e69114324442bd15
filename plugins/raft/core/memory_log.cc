#include "memory_log.h"

#include <algorithm>
#include <string>

namespace sluice::raft {

log_index memory_log::last_index() const {
  return _entries.empty() ? _snap.meta.index : _entries.back().last();
}

size_t memory_log::position(log_index i) const {
  SLUICE_ASSERT(!_entries.empty() && i >= _entries.front().index && i <= _entries.back().last());
  auto it = std::upper_bound(_entries.begin(), _entries.end(), i,
                             [](log_index v, const entry& e) { return v < e.index; });
  SLUICE_ASSERT(it != _entries.begin());
  return static_cast<size_t>(it - _entries.begin()) - 1;
}

result<term_id> memory_log::term(log_index i) const {
  if (i == _snap.meta.index) return _snap.meta.term;
  if (i < _snap.meta.index) {
    return make_raft_error(errc::compacted, "index " + std::to_string(i.value()) + " is compacted");
  }
  if (i > last_index()) {
    return make_raft_error(errc::unavailable, "index " + std::to_string(i.value()) + " is past the end");
  }
  return _entries[position(i)].term;
}

result<std::vector<entry>> memory_log::entries(log_index lo, log_index hi, uint64_t bytes_max) const {
  std::vector<entry> out;
  if (lo >= hi) return out;
  if (lo < first_index()) {
    return make_raft_error(errc::compacted, "index " + std::to_string(lo.value()) + " is compacted");
  }
  if (lo > last_index()) {
    return make_raft_error(errc::unavailable, "index " + std::to_string(lo.value()) + " is past the end");
  }
  uint64_t bytes = 0;
  for (size_t p = position(lo); p < _entries.size() && _entries[p].index < hi; ++p) {
    if (!out.empty() && bytes + _entries[p].bytes() > bytes_max) break;
    bytes += _entries[p].bytes();
    out.push_back(_entries[p]);
  }
  return out;
}

std::optional<membership_record> memory_log::last_membership(log_index at) const {
  if (!_entries.empty() && at >= _entries.front().index) {
    const size_t from = at > _entries.back().last() ? _entries.size() - 1 : position(at);
    for (size_t p = from + 1; p-- > 0;) {
      const entry& e = _entries[p];
      if (e.type != entry_type::conf_change) continue;
      auto m = decode_membership(e.data.view());
      SLUICE_ASSERT_MSG(m.has_value(), "a stored conf_change entry holds a valid membership");
      return membership_record{e.index, std::move(m.value())};
    }
  }
  if (_snap.meta.members.voters.empty()) return std::nullopt;
  return membership_record{_snap.meta.index, _snap.meta.members};
}

void memory_log::persist(const ready& rd) {
  if (rd.snap) install_snapshot(*rd.snap);
  SLUICE_ASSERT(!rd.truncate_from || (*rd.truncate_from == rd.entries.front().index &&
                                      *rd.truncate_from <= last_index()));
  if (!rd.entries.empty()) append(rd.entries);
  if (rd.hard) set_hard_state(*rd.hard);
}

void memory_log::install_snapshot(const snapshot& s) {
  SLUICE_ASSERT_MSG(s.meta.index >= _snap.meta.index, "installing an older snapshot");
  _snap = s;
  _entries.clear();
}

void memory_log::append(const std::vector<entry>& ents) {
  SLUICE_ASSERT(!ents.empty());
  const log_index from = ents.front().index;
  SLUICE_ASSERT_MSG(from > _snap.meta.index, "appending below the snapshot");
  SLUICE_ASSERT_MSG(from <= last_index() + 1, "a gap in the log");
  if (from <= last_index()) {
    const size_t p = position(from);
    SLUICE_ASSERT_MSG(_entries[p].index == from, "truncation inside an entry");
    _entries.resize(p);
  }
  for (const entry& e : ents) {
    SLUICE_ASSERT_MSG(e.index == last_index() + 1, "entries must be contiguous");
    _entries.push_back(e);
  }
}

void memory_log::lose_suffix(log_index from) {
  SLUICE_ASSERT_MSG(from > _snap.meta.index && from <= last_index(), "losing entries outside the log");
  const size_t p = position(from);
  SLUICE_ASSERT_MSG(_entries[p].index == from, "a suffix starts at an entry");
  _entries.resize(p);
}

void memory_log::compact(log_index index, payload data) {
  if (index <= _snap.meta.index) return;
  SLUICE_ASSERT_MSG(index <= last_index(), "compacting past the log's end");
  const size_t p = position(index);
  SLUICE_ASSERT_MSG(_entries[p].last() == index, "compaction must end at an entry's last index");
  snapshot s;
  s.meta.index = index;
  s.meta.term = _entries[p].term;
  auto m = last_membership(index);
  if (m) s.meta.members = std::move(m->members);
  s.data = std::move(data);
  _snap = std::move(s);
  _entries.erase(_entries.begin(), _entries.begin() + static_cast<std::ptrdiff_t>(p + 1));
}

}  // namespace sluice::raft
