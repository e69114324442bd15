#include "fault_hook.h"

namespace sluice::storage {

fault_hook& fault_hook::instance() noexcept {
  static fault_hook hook;
  return hook;
}

void fault_hook::rearm() noexcept {
  bool any = false;
  for (const rule& r : _rule)
    any |= r.err.load(std::memory_order_relaxed) != 0 && r.remaining.load(std::memory_order_relaxed) != 0;
  _armed.store(any, std::memory_order_relaxed);
}

void fault_hook::set(fault_op op, int32_t errno_value, int64_t count) noexcept {
  rule& r = _rule[idx(op)];
  r.remaining.store(errno_value == 0 ? 0 : count, std::memory_order_relaxed);
  r.err.store(errno_value, std::memory_order_relaxed);
  rearm();
}

void fault_hook::clear() noexcept {
  for (rule& r : _rule) {
    r.err.store(0, std::memory_order_relaxed);
    r.remaining.store(0, std::memory_order_relaxed);
  }
  _armed.store(false, std::memory_order_relaxed);
}

int32_t fault_hook::take_slow(fault_op op) noexcept {
  rule& r = _rule[idx(op)];
  const int32_t err = r.err.load(std::memory_order_relaxed);
  if (err == 0) return 0;
  int64_t left = r.remaining.load(std::memory_order_relaxed);
  for (;;) {
    if (left == 0) return 0;
    if (left < 0) break;  // unlimited
    if (r.remaining.compare_exchange_weak(left, left - 1, std::memory_order_relaxed)) {
      if (left == 1) rearm();
      break;
    }
  }
  r.injected.fetch_add(1, std::memory_order_relaxed);
  return -err;
}

}  // namespace sluice::storage
