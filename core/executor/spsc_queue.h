// A bounded single-producer/single-consumer ring of T.
//
// Thread-safety: exactly one producer thread calls try_push/publish and
// exactly one consumer thread calls try_pop; nothing else touches it. Head
// and tail live on their own cache lines, and each side caches the other's
// index so that a push or pop usually touches no shared line at all.
#pragma once

#include <sluice/sdk/assert.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>

namespace sluice::executor {

inline constexpr std::size_t cache_line_bytes = 64;

template <typename T>
class spsc_queue {
 public:
  // capacity is rounded up to a power of two.
  explicit spsc_queue(uint32_t capacity) {
    SLUICE_ASSERT(capacity > 0 && capacity <= (1u << 24));
    uint32_t c = 1;
    while (c < capacity) c <<= 1;
    _mask = c - 1;
    _slots = std::make_unique<T[]>(c);
  }
  spsc_queue(const spsc_queue&) = delete;
  spsc_queue& operator=(const spsc_queue&) = delete;

  uint32_t capacity() const noexcept { return _mask + 1; }

  // Producer: a slot to fill, or nullptr when full. Call publish() after
  // filling one or more slots so the consumer sees them (batched publish).
  T* try_claim() noexcept {
    const uint64_t tail = _prod.tail;
    if (tail - _prod.cached_head > _mask) {
      _prod.cached_head = _head.load(std::memory_order_acquire);
      if (tail - _prod.cached_head > _mask) return nullptr;
    }
    _prod.tail = tail + 1;
    return &_slots[tail & _mask];
  }
  void publish() noexcept { _tail.store(_prod.tail, std::memory_order_release); }

  // Consumer: the oldest element, or nullptr when empty. The element stays
  // valid until pop().
  T* front() noexcept {
    const uint64_t head = _cons.head;
    if (head == _cons.cached_tail) {
      _cons.cached_tail = _tail.load(std::memory_order_acquire);
      if (head == _cons.cached_tail) return nullptr;
    }
    return &_slots[head & _mask];
  }
  void pop() noexcept {
    SLUICE_ASSERT(_cons.head != _cons.cached_tail);
    ++_cons.head;
    _head.store(_cons.head, std::memory_order_release);
  }
  // Any thread; approximate unless called by the consumer.
  bool empty_approx() const noexcept {
    return _head.load(std::memory_order_acquire) == _tail.load(std::memory_order_acquire);
  }
  // Entries queued, from any thread (approximate while both ends move).
  std::size_t size_approx() const noexcept {
    const uint64_t tail = _tail.load(std::memory_order_relaxed), head = _head.load(std::memory_order_relaxed);
    return tail > head ? static_cast<std::size_t>(tail - head) : 0;
  }

 private:
  alignas(cache_line_bytes) std::atomic<uint64_t> _head{0};  // written by consumer
  alignas(cache_line_bytes) std::atomic<uint64_t> _tail{0};  // written by producer
  alignas(cache_line_bytes) struct {
    uint64_t tail = 0;
    uint64_t cached_head = 0;
  } _prod;
  alignas(cache_line_bytes) struct {
    uint64_t head = 0;
    uint64_t cached_tail = 0;
  } _cons;
  uint32_t _mask = 0;
  std::unique_ptr<T[]> _slots;
};

}  // namespace sluice::executor
