#include "raft_log.h"

#include <algorithm>
#include <string>

namespace sluice::raft {

namespace {

// An entry may follow `prev` (its predecessor's last index and term).
void check_follows(log_index prev_last, term_id prev_term, const entry& e) {
  SLUICE_ASSERT_MSG(e.count >= 1, "an entry occupies at least one index");
  SLUICE_ASSERT_MSG(e.index == prev_last + 1, "entries must be contiguous");
  SLUICE_ASSERT_MSG(e.term >= prev_term, "terms must not decrease along the log");
  SLUICE_ASSERT_MSG(!e.term.is_zero(), "an entry has a term");
}

}  // namespace

log_index raft_log::first_index() const {
  if (_unstable_snap) return _unstable_snap->meta.index + 1;
  return _reader.first_index();
}

log_index raft_log::last_index() const {
  if (!_unstable.empty()) return _unstable.back().last();
  if (_unstable_snap) return _unstable_snap->meta.index;
  return _reader.last_index();
}

term_id raft_log::last_term() const {
  auto t = term(last_index());
  SLUICE_ASSERT_MSG(t.has_value(), "the last index always has a term");
  return t.value();
}

const entry& raft_log::unstable_at(log_index i) const {
  SLUICE_ASSERT(!_unstable.empty());
  SLUICE_ASSERT(i >= _unstable.front().index && i <= _unstable.back().last());
  auto it = std::upper_bound(_unstable.begin(), _unstable.end(), i,
                             [](log_index v, const entry& e) { return v < e.index; });
  SLUICE_ASSERT(it != _unstable.begin());
  --it;
  SLUICE_ASSERT(it->index <= i && i <= it->last());
  return *it;
}

result<term_id> raft_log::term(log_index i) const {
  if (_unstable_snap) {
    if (i == _unstable_snap->meta.index) return _unstable_snap->meta.term;
    if (i < _unstable_snap->meta.index) {
      return make_raft_error(errc::compacted, "index " + std::to_string(i.value()) + " is below the snapshot");
    }
  }
  if (i > last_index()) {
    return make_raft_error(errc::unavailable, "index " + std::to_string(i.value()) + " is past the log's end");
  }
  if (!_unstable.empty() && i >= _unstable.front().index) return unstable_at(i).term;
  SLUICE_ASSERT_MSG(!_unstable_snap, "an index above a pending snapshot must be unstable");
  return _reader.term(i);
}

bool raft_log::match_term(log_index i, term_id t) const {
  auto ti = term(i);
  return ti.has_value() && ti.value() == t;
}

bool raft_log::is_up_to_date(log_index last, term_id t) const {
  const term_id lt = last_term();
  return t > lt || (t == lt && last >= last_index());
}

result<std::vector<entry>> raft_log::entries(log_index lo, log_index hi, uint64_t bytes_max) const {
  std::vector<entry> out;
  if (lo >= hi) return out;
  if (lo < first_index()) {
    return make_raft_error(errc::compacted, "index " + std::to_string(lo.value()) + " is compacted");
  }
  const log_index last = last_index();
  if (lo > last) {
    return make_raft_error(errc::unavailable, "index " + std::to_string(lo.value()) + " is past the log's end");
  }
  hi = std::min(hi, last + 1);
  uint64_t bytes = 0;
  const log_index unstable_start = !_unstable.empty() ? _unstable.front().index
                                   : _unstable_snap   ? _unstable_snap->meta.index + 1
                                                      : _reader.last_index() + 1;
  if (!_unstable_snap && lo < unstable_start) {
    const log_index stable_hi = std::min(hi, unstable_start);
    auto r = _reader.entries(lo, stable_hi, bytes_max);
    if (!r) return r.err();
    out = std::move(r.value());
    SLUICE_ASSERT_MSG(!out.empty(), "log_reader::entries returned nothing for a non-empty range");
    SLUICE_ASSERT_MSG(out.front().index <= lo && lo <= out.front().last(),
                      "log_reader::entries must start with the entry containing lo");
    for (const auto& e : out) bytes += e.bytes();
    const log_index end = out.back().last() + 1;
    SLUICE_ASSERT_MSG(end <= stable_hi, "log_reader::entries returned an entry past hi");
    if (end < stable_hi) return out;  // stopped by bytes_max
    lo = end;
  }
  if (lo < hi) {
    SLUICE_ASSERT(!_unstable.empty());
    const entry* p = &unstable_at(lo);
    const entry* end = _unstable.data() + _unstable.size();
    for (; p != end && p->index < hi; ++p) {
      if (!out.empty() && bytes + p->bytes() > bytes_max) break;
      bytes += p->bytes();
      out.push_back(*p);
    }
  }
  return out;
}

std::pair<log_index, term_id> raft_log::find_conflict_by_term(log_index i, term_id t) const {
  SLUICE_ASSERT(i <= last_index());
  log_index lo = first_index() - 1;
  if (i < lo) return {i, term_id()};  // compacted: the caller falls back to a snapshot
  auto ti = term(i);
  SLUICE_ASSERT(ti.has_value());
  if (ti.value() <= t) return {i, ti.value()};
  auto tlo = term(lo);
  SLUICE_ASSERT(tlo.has_value());
  if (tlo.value() > t) return {lo, tlo.value()};
  log_index hi = i;  // term(lo) <= t < term(hi)
  while (hi.value() - lo.value() > 1) {
    const log_index mid(lo.value() + (hi.value() - lo.value()) / 2);
    auto tm = term(mid);
    SLUICE_ASSERT(tm.has_value());
    if (tm.value() <= t) {
      lo = mid;
    } else {
      hi = mid;
    }
  }
  return {lo, term(lo).value()};
}

size_t raft_log::find_conflict(const std::vector<entry>& ents) const {
  for (size_t k = 0; k < ents.size(); ++k) {
    if (!match_term(ents[k].index, ents[k].term)) return k;
  }
  return ents.size();
}

void raft_log::init(log_index committed, log_index applied) {
  SLUICE_ASSERT_MSG(applied <= committed, "applied past commit");
  SLUICE_ASSERT_MSG(committed <= last_index(), "commit past the log's end");
  _committed = committed;
  _applied = applied;
}

void raft_log::commit_to(log_index i) {
  if (i <= _committed) return;  // commit never decreases
  SLUICE_ASSERT_MSG(i <= last_index(), "commit past the log's end");
  _committed = i;
}

void raft_log::applied_to(log_index i) {
  SLUICE_ASSERT_MSG(i >= _applied, "applied index went backwards");
  SLUICE_ASSERT_MSG(i <= _committed, "applied an entry that is not committed");
  _applied = i;
}

void raft_log::append(entry e) {
  const log_index last = last_index();
  check_follows(last, last_term(), e);
  _unstable.push_back(std::move(e));
}

void raft_log::truncate_and_append(const std::vector<entry>& ents, size_t from) {
  SLUICE_ASSERT(from < ents.size());
  const log_index after = ents[from].index;
  SLUICE_ASSERT_MSG(after > _committed, "truncating a committed entry");
  SLUICE_ASSERT_MSG(after <= last_index() + 1, "appending past the log's end");
  if (_unstable.empty() || after <= _unstable.front().index) {
    _unstable.clear();
  } else {
    // Keep the unstable entries before `after`, which must start an entry.
    size_t keep = _unstable.size();
    if (after <= _unstable.back().last()) {
      const entry& e = unstable_at(after);
      SLUICE_ASSERT_MSG(e.index == after, "truncation inside an entry");
      keep = static_cast<size_t>(&e - _unstable.data());
    }
    _unstable.resize(keep);
  }
  const log_index prev = after - 1;
  auto prev_term = term(prev);
  SLUICE_ASSERT_MSG(prev_term.has_value(), "the entry before an append must exist");
  log_index prev_last = prev;
  term_id pt = prev_term.value();
  for (size_t k = from; k < ents.size(); ++k) {
    check_follows(prev_last, pt, ents[k]);
    prev_last = ents[k].last();
    pt = ents[k].term;
    _unstable.push_back(ents[k]);
  }
}

void raft_log::restore(const snapshot& s) {
  SLUICE_ASSERT_MSG(s.meta.index > _committed, "restoring a snapshot behind the commit index");
  _unstable_snap = s;
  _unstable.clear();
  _committed = s.meta.index;
}

bool raft_log::unstable_truncates() const {
  return !_unstable_snap && !_unstable.empty() && _unstable.front().index <= _reader.last_index();
}

void raft_log::stable_to(const std::optional<snapshot>& snap, const std::vector<entry>& ents) {
  if (snap) {
    SLUICE_ASSERT_MSG(_unstable_snap && _unstable_snap->meta.index == snap->meta.index,
                      "advance: a snapshot that was not in the ready");
    SLUICE_ASSERT_MSG(_reader.snapshot_meta_of().index == snap->meta.index &&
                          _reader.first_index() == snap->meta.index + 1,
                      "advance: the host did not install the snapshot");
    _unstable_snap.reset();
    _applied = std::max(_applied, snap->meta.index);
  }
  if (!ents.empty()) {
    SLUICE_ASSERT_MSG(_unstable.size() == ents.size() && _unstable.front().index == ents.front().index,
                      "advance: entries differ from the ready's");
    const entry& back = ents.back();
    SLUICE_ASSERT_MSG(_reader.last_index() == back.last(), "advance: the host's last index is not the ready's");
    auto t = _reader.term(back.last());
    SLUICE_ASSERT_MSG(t.has_value() && t.value() == back.term, "advance: the host's last term is not the ready's");
    _unstable.clear();
  }
}

log_index raft_log::stable_match() const {
  if (_unstable_snap) return log_index();
  const log_index stable_last = _reader.last_index();
  if (_unstable.empty()) return stable_last;
  return std::min(stable_last, _unstable.front().index - 1);
}

}  // namespace sluice::raft
