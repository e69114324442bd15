#include "core/executor/buffer.h"

#include <sluice/sdk/assert.h>

#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <new>

namespace sluice::executor {

namespace {
// The public part first, so a sluice_buf* is also a buf_impl*.
struct buf_impl {
  sluice_buf pub;
  std::atomic<uint32_t> refs;
  uint32_t magic;
};
constexpr uint32_t buf_magic = 0x5b0ffe75;
static_assert(offsetof(buf_impl, pub) == 0);

buf_impl* impl(sluice_buf* b) {
  auto* i = reinterpret_cast<buf_impl*>(b);
  SLUICE_ASSERT_MSG(i->magic == buf_magic, "not a live sluice_buf");
  return i;
}
}  // namespace

sluice_buf* buf_alloc(sluice_host*, uint64_t capacity, uint32_t alignment) {
  if (alignment == 0) alignment = alignof(std::max_align_t);
  if ((alignment & (alignment - 1)) != 0) return nullptr;
  if (alignment < sizeof(void*)) alignment = sizeof(void*);
  // Round up so O_DIRECT buffers can always be written whole.
  const uint64_t bytes = capacity == 0 ? alignment : (capacity + alignment - 1) / alignment * alignment;
  void* data = nullptr;
  if (posix_memalign(&data, alignment, bytes) != 0) return nullptr;
  auto* b = new (std::nothrow) buf_impl{};
  if (b == nullptr) {
    std::free(data);
    return nullptr;
  }
  b->pub.data = static_cast<uint8_t*>(data);
  b->pub.size = 0;
  b->pub.capacity = bytes;
  b->pub.alignment = alignment;
  b->refs.store(1, std::memory_order_relaxed);
  b->magic = buf_magic;
  return &b->pub;
}

void buf_ref(sluice_buf* buf) {
  uint32_t before = impl(buf)->refs.fetch_add(1, std::memory_order_relaxed);
  SLUICE_ASSERT(before > 0);
}

void buf_unref(sluice_buf* buf) {
  buf_impl* b = impl(buf);
  uint32_t before = b->refs.fetch_sub(1, std::memory_order_acq_rel);
  SLUICE_ASSERT(before > 0);
  if (before == 1) {
    b->magic = 0;
    std::free(b->pub.data);
    delete b;
  }
}

uint32_t buf_refs(const sluice_buf* buf) {
  return reinterpret_cast<const buf_impl*>(buf)->refs.load(std::memory_order_acquire);
}

}  // namespace sluice::executor
