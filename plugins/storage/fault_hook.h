// fault_hook: I/O errors injected into the storage's writes and syncs, for
// fault tests (docs/RELIABILITY.md, "Disk faults"). LD_PRELOAD cannot reach
// io_uring, so the storage asks this hook before each write and each
// fdatasync/fsync of a partition's files. Off (one relaxed load per call)
// unless the storage plugin's `fault_injection: true` armed it and a test
// set a rule through the admin API (PUT /v1/storage/faults).
#pragma once

#include <atomic>
#include <cstdint>

namespace sluice::storage {

enum class fault_op : uint8_t { write = 0, sync = 1 };
inline constexpr int fault_ops = 2;

class fault_hook {
 public:
  // The process's hook (every shard shares it; the rules are atomics).
  static fault_hook& instance() noexcept;

  // errno_value (EIO, ENOSPC, ...; 0 clears) for the next `count` calls of
  // op (-1: every call until cleared).
  void set(fault_op op, int32_t errno_value, int64_t count) noexcept;
  void clear() noexcept;

  // 0, or -errno to return instead of doing the call (counts it down).
  int32_t take(fault_op op) noexcept {
    if (!_armed.load(std::memory_order_relaxed)) return 0;
    return take_slow(op);
  }

  int32_t error(fault_op op) const noexcept { return _rule[idx(op)].err.load(std::memory_order_relaxed); }
  int64_t remaining(fault_op op) const noexcept { return _rule[idx(op)].remaining.load(std::memory_order_relaxed); }
  uint64_t injected(fault_op op) const noexcept { return _rule[idx(op)].injected.load(std::memory_order_relaxed); }

 private:
  struct rule {
    std::atomic<int32_t> err{0};
    std::atomic<int64_t> remaining{0};  // -1: unlimited
    std::atomic<uint64_t> injected{0};
  };
  static constexpr int idx(fault_op op) noexcept { return static_cast<int>(op); }
  int32_t take_slow(fault_op op) noexcept;
  void rearm() noexcept;

  std::atomic<bool> _armed{false};
  rule _rule[fault_ops];
};

}  // namespace sluice::storage
