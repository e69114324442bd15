#include "log_view.h"

#include "batch_codec.h"

#include <algorithm>
#include <string>

namespace sluice::raft::partition {

void log_view::reset(int64_t start_offset, int64_t next_offset, std::vector<epoch_start> epochs, term_id snapshot_term,
                     hard_state hs) {
  SLUICE_ASSERT_MSG(start_offset >= 0 && next_offset >= start_offset, "a log's bounds are ordered");
  _first = index_of_offset(start_offset);
  _last = log_index(static_cast<uint64_t>(next_offset));
  _epochs = std::move(epochs);
  for (size_t i = 1; i < _epochs.size(); ++i)
    SLUICE_ASSERT_MSG(_epochs[i - 1].term < _epochs[i].term && _epochs[i - 1].start < _epochs[i].start,
                      "the epoch table ascends");
  _snap_term = snapshot_term;
  _hard = hs;
  _confs.clear();
  _tail.clear();
  _tail_bytes = 0;
  _readback.clear();
  _want.reset();
}

void log_view::note_term(const entry& e) {
  if (_epochs.empty() || _epochs.back().term < e.term) {
    _epochs.push_back(epoch_start{e.term, e.index});
    return;
  }
  SLUICE_ASSERT_MSG(_epochs.back().term == e.term, "terms never decrease along a log");
}

void log_view::add_conf(std::vector<conf_record>& to, const entry& e) {
  if (e.type != entry_type::conf_change) return;
  auto m = decode_membership(e.data.view());
  SLUICE_ASSERT_MSG(m.has_value(), "a conf_change entry holds a valid membership");
  SLUICE_ASSERT_MSG(to.empty() || to.back().index < e.index, "membership records ascend");
  to.push_back(conf_record{e.index, e.term, std::move(m.value())});
}

std::vector<conf_record> log_view::confs_after(const std::vector<entry>& ents) const {
  std::vector<conf_record> out = _confs;
  for (const entry& e : ents) add_conf(out, e);
  return out;
}

bool log_view::set_confs(std::vector<conf_record> recs) {
  const std::vector<conf_record> before = _confs;
  _confs.clear();
  for (conf_record& r : recs) {
    if (r.index > _last) break;  // written to the file, never to the log
    if (r.index + 1 >= _first) {
      auto t = term(r.index);
      if (!t || t.value() != r.term) break;  // the log holds another entry there: it and all after were replaced
    }
    if (!_confs.empty()) SLUICE_ASSERT_MSG(_confs.back().index < r.index, "membership records ascend");
    _confs.push_back(std::move(r));
  }
  // Of the records before the log start, the latest is the snapshot's membership.
  size_t keep = 0;
  for (size_t k = 0; k < _confs.size(); ++k)
    if (_confs[k].index < _first) keep = k;
  _confs.erase(_confs.begin(), _confs.begin() + static_cast<ptrdiff_t>(keep));
  return _confs != before;
}

const conf_record* log_view::conf_at(log_index at) const {
  auto it = std::upper_bound(_confs.begin(), _confs.end(), at,
                             [](log_index v, const conf_record& r) { return v < r.index; });
  return it == _confs.begin() ? nullptr : &*std::prev(it);
}

std::optional<membership_record> log_view::last_membership(log_index at) const {
  const conf_record* r = conf_at(at);
  if (r == nullptr) return std::nullopt;
  return membership_record{r->index, r->members};
}

void log_view::appended(const std::vector<entry>& ents) {
  for (const entry& e : ents) {
    SLUICE_ASSERT_MSG(e.index == _last + 1, "appends continue the log");
    SLUICE_ASSERT(e.count >= 1);
    note_term(e);
    add_conf(_confs, e);
    _last = e.last();
    _tail.push_back(e);
    _tail_bytes += e.bytes();
  }
  trim_tail();
}

void log_view::trim_tail() {
  while (_tail.size() > 1 && _tail_bytes > _tail_bytes_max) {
    _tail_bytes -= _tail.front().bytes();
    _tail.pop_front();
  }
}

void log_view::truncated(log_index from) {
  SLUICE_ASSERT_MSG(from >= _first && from <= _last + 1, "a truncation point lies within the log");
  _last = from - 1;
  while (!_tail.empty() && _tail.back().index >= from) {
    _tail_bytes -= _tail.back().bytes();
    _tail.pop_back();
  }
  // An entry that straddles `from` cannot exist: truncation points are entry starts.
  SLUICE_ASSERT(_tail.empty() || _tail.back().last() == _last);
  while (!_epochs.empty() && _epochs.back().start >= from) _epochs.pop_back();
  while (!_readback.empty() && _readback.back().last() >= from) _readback.pop_back();
  while (!_confs.empty() && _confs.back().index >= from) _confs.pop_back();
}

void log_view::restored(const snapshot_meta& s) {
  _first = s.index + 1;
  _last = s.index;
  _snap_term = s.term;
  _epochs.clear();
  _tail.clear();
  _tail_bytes = 0;
  _readback.clear();
  _want.reset();
  _confs.assign(1, conf_record{s.index, s.term, s.members});
}

void log_view::prefix_removed(int64_t start_offset) {
  const log_index first = index_of_offset(start_offset);
  if (first <= _first) return;
  auto t = term(first - 1);
  _snap_term = t ? t.value() : _snap_term;
  _first = std::min(first, _last + 1);
  while (!_tail.empty() && _tail.front().index < _first) {
    _tail_bytes -= _tail.front().bytes();
    _tail.pop_front();
  }
  while (!_readback.empty() && _readback.front().index < _first) _readback.pop_front();
  while (_confs.size() > 1 && _confs[1].index < _first) _confs.erase(_confs.begin());
}

void log_view::fill_readback(std::vector<entry> ents) {
  _readback.clear();
  for (entry& e : ents) {
    if (e.index < _first || e.last() > _last) continue;
    if (!_readback.empty() && e.index != _readback.back().last() + 1) break;
    _readback.push_back(std::move(e));
  }
}

result<term_id> log_view::term(log_index i) const {
  if (i.is_zero()) return term_id{};
  if (i + 1 < _first)
    return make_raft_error(errc::compacted, "index " + std::to_string(i.value()) + " is before the log start");
  if (i > _last) return make_raft_error(errc::unavailable, "index " + std::to_string(i.value()) + " is past the end");
  auto it = std::upper_bound(_epochs.begin(), _epochs.end(), i,
                             [](log_index v, const epoch_start& e) { return v < e.start; });
  if (it == _epochs.begin()) return _snap_term;
  return std::prev(it)->term;
}

bool log_view::gather(const std::deque<entry>& from, log_index lo, log_index hi, uint64_t max_bytes,
                      std::vector<entry>& out) {
  if (from.empty() || lo < from.front().index || lo > from.back().last()) return false;
  auto it = std::upper_bound(from.begin(), from.end(), lo, [](log_index v, const entry& e) { return v < e.index; });
  SLUICE_ASSERT(it != from.begin());
  --it;
  uint64_t bytes = 0;
  for (; it != from.end() && it->index < hi; ++it) {
    if (!out.empty() && bytes + it->bytes() > max_bytes) break;
    bytes += it->bytes();
    out.push_back(*it);
  }
  return true;
}

result<std::vector<entry>> log_view::entries(log_index lo, log_index hi, uint64_t max_bytes) const {
  std::vector<entry> out;
  if (lo >= hi) return out;
  if (lo < _first) return make_raft_error(errc::compacted, "index " + std::to_string(lo.value()) + " is before the log start");
  if (lo > _last) return make_raft_error(errc::unavailable, "index " + std::to_string(lo.value()) + " is past the end");
  if (gather(_tail, lo, hi, max_bytes, out)) return out;
  if (gather(_readback, lo, hi, max_bytes, out)) {
    // Near the end of the window: read the next part ahead.
    if (out.back().last() >= _readback.back().last() && out.back().last() < _last) _want = out.back().last() + 1;
    return out;
  }
  _want = lo;
  return make_raft_error(errc::unavailable, "index " + std::to_string(lo.value()) + " is being read from disk");
}

log_index log_view::visible_end(log_index commit) const {
  auto it = std::upper_bound(_tail.begin(), _tail.end(), commit, [](log_index v, const entry& e) { return v < e.index; });
  while (it != _tail.begin()) {
    const entry& e = *std::prev(it);
    if (e.last() != commit || e.type == entry_type::normal) break;
    commit = e.index - 1;
    --it;
  }
  return commit;
}

snapshot_meta log_view::snapshot_meta_of() const {
  snapshot_meta m;
  m.index = _first - 1;
  auto t = term(m.index);
  m.term = t ? t.value() : _snap_term;
  const conf_record* r = conf_at(m.index);
  m.members = r ? r->members : _bootstrap;
  return m;
}

result<snapshot> log_view::current_snapshot() const {
  // A partition's "snapshot" is only the point its log starts after: the
  // records before it were removed by retention and are not sent.
  return snapshot{snapshot_meta_of(), payload()};
}

}  // namespace sluice::raft::partition
