// A shard's cache of recently appended or read record batches, so that
// consumers reading the tail never touch the disk and the process never
// needs the kernel page cache. Entries share the appended buffers (no
// copy); the least recently used are evicted past the memory budget.
//
// Thread-safety: one cache per shard, used only by that shard.
#pragma once

#include <sluice/sdk/runtime.h>

#include <cstdint>
#include <list>
#include <map>
#include <unordered_map>

namespace sluice::storage {

class batch_cache {
 public:
  struct entry {
    const void* owner;
    int64_t base_offset;
    int64_t last_offset;
    sdk::buffer data;
    uint32_t offset;
    uint32_t length;
  };

  explicit batch_cache(uint64_t budget_bytes) : _budget(budget_bytes) {}
  batch_cache(const batch_cache&) = delete;
  batch_cache& operator=(const batch_cache&) = delete;

  void put(const void* owner, int64_t base_offset, int64_t last_offset, sdk::buffer data, uint32_t offset,
           uint32_t length);
  // The batch containing offset, refreshed as recently used; or nullptr.
  const entry* find(const void* owner, int64_t offset);
  // Forgets owner's batches that end below `below` (all by default).
  void drop(const void* owner, int64_t below = INT64_MAX);
  // Forgets owner's batches that end at or after `from` (a suffix truncation).
  void drop_from(const void* owner, int64_t from);

  uint64_t bytes() const noexcept { return _bytes; }
  uint64_t budget() const noexcept { return _budget; }
  uint64_t hits() const noexcept { return _hits; }
  uint64_t misses() const noexcept { return _misses; }
  size_t entries() const noexcept { return _lru.size(); }

 private:
  using lru_list = std::list<entry>;
  template <typename Pred>
  void drop_if(const void* owner, Pred doomed);
  void evict_to(uint64_t target);
  void erase(lru_list::iterator it);

  uint64_t _budget;
  uint64_t _bytes = 0;
  uint64_t _hits = 0, _misses = 0;
  lru_list _lru;  // front: most recently used
  std::unordered_map<const void*, std::map<int64_t, lru_list::iterator>> _by_owner;
};

}  // namespace sluice::storage
