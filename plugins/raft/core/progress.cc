#include "progress.h"

#include <algorithm>

namespace sluice::raft {

const char* to_string(progress_state s) noexcept {
  switch (s) {
    case progress_state::probe: return "probe";
    case progress_state::replicate: return "replicate";
    case progress_state::snapshot: return "snapshot";
  }
  return "?";
}

inflights::inflights(uint32_t capacity) : _ring(capacity) { SLUICE_ASSERT(capacity > 0); }

void inflights::add(log_index last) {
  SLUICE_ASSERT_MSG(!full(), "append sent to a follower whose in-flight window is full");
  if (_count > 0) {
    const log_index prev = _ring[(_start + _count - 1) % _ring.size()];
    SLUICE_ASSERT_MSG(prev < last, "in-flight appends must end at increasing indexes");
  }
  _ring[(_start + _count) % _ring.size()] = last;
  ++_count;
}

void inflights::free_le(log_index i) {
  while (_count > 0 && _ring[_start] <= i) {
    _start = static_cast<uint32_t>((_start + 1) % _ring.size());
    --_count;
  }
  if (_count == 0) _start = 0;
}

void inflights::free_first() {
  if (_count == 0) return;
  _start = static_cast<uint32_t>((_start + 1) % _ring.size());
  --_count;
}

void progress::become_probe() {
  if (state == progress_state::snapshot) {
    next = std::max(match + 1, pending_snapshot + 1);
  } else {
    next = match + 1;
  }
  state = progress_state::probe;
  probe_sent = false;
  pending_snapshot = log_index();
  in_flight.reset();
}

void progress::become_replicate() {
  state = progress_state::replicate;
  next = match + 1;
  probe_sent = false;
  in_flight.reset();
}

void progress::become_snapshot(log_index snapshot_index) {
  SLUICE_ASSERT(snapshot_index >= match);
  state = progress_state::snapshot;
  pending_snapshot = snapshot_index;
  snapshot_ticks = 0;
  probe_sent = false;
  in_flight.reset();
}

bool progress::maybe_update(log_index n) {
  bool updated = false;
  if (match < n) {
    match = n;
    updated = true;
    probe_sent = false;
  }
  next = std::max(next, n + 1);
  return updated;
}

bool progress::maybe_decr_to(log_index rejected, log_index match_hint) {
  if (state == progress_state::replicate) {
    // Stale: the rejection is for an append we know was matched since.
    if (rejected <= match) return false;
    next = match + 1;
    return true;
  }
  // Probe (or snapshot): only the answer to the latest probe counts.
  if (next - 1 != rejected) return false;
  next = std::max(std::min(rejected, match_hint + 1), match + 1);
  probe_sent = false;
  return true;
}

void progress::regress_to(log_index last) {
  SLUICE_ASSERT_MSG(last < match, "a regress lowers the match");
  match = last;
  next = last + 1;
  state = progress_state::probe;
  probe_sent = false;
  pending_snapshot = log_index();
  in_flight.reset();
}

bool progress::is_paused() const noexcept {
  switch (state) {
    case progress_state::probe: return probe_sent;
    case progress_state::replicate: return in_flight.full();
    case progress_state::snapshot: return true;
  }
  return true;
}

}  // namespace sluice::raft
