#include "batch_cache.h"

namespace sluice::storage {

void batch_cache::put(const void* owner, int64_t base_offset, int64_t last_offset, sdk::buffer data,
                      uint32_t offset, uint32_t length) {
  SLUICE_ASSERT(last_offset >= base_offset);
  if (length > _budget) return;
  auto& index = _by_owner[owner];
  if (auto old = index.find(base_offset); old != index.end()) erase(old->second);
  evict_to(_budget - length);
  _lru.push_front(entry{owner, base_offset, last_offset, std::move(data), offset, length});
  _by_owner[owner][base_offset] = _lru.begin();  // re-lookup: evict_to may have dropped `index`
  _bytes += length;
}

const batch_cache::entry* batch_cache::find(const void* owner, int64_t offset) {
  auto o = _by_owner.find(owner);
  if (o != _by_owner.end()) {
    auto it = o->second.upper_bound(offset);
    if (it != o->second.begin()) {
      auto e = std::prev(it)->second;
      if (offset >= e->base_offset && offset <= e->last_offset) {
        _lru.splice(_lru.begin(), _lru, e);
        ++_hits;
        return &*e;
      }
    }
  }
  ++_misses;
  return nullptr;
}

template <typename Pred>
void batch_cache::drop_if(const void* owner, Pred is_doomed) {
  auto o = _by_owner.find(owner);
  if (o == _by_owner.end()) return;
  std::vector<lru_list::iterator> doomed;
  for (auto& [base, it] : o->second)
    if (is_doomed(*it)) doomed.push_back(it);
  for (auto it : doomed) erase(it);
}

void batch_cache::drop(const void* owner, int64_t below) {
  drop_if(owner, [below](const entry& e) { return e.last_offset < below; });
}

void batch_cache::drop_from(const void* owner, int64_t from) {
  drop_if(owner, [from](const entry& e) { return e.last_offset >= from; });
}

void batch_cache::evict_to(uint64_t target) {
  while (_bytes > target && !_lru.empty()) erase(std::prev(_lru.end()));
}

void batch_cache::erase(lru_list::iterator it) {
  auto o = _by_owner.find(it->owner);
  SLUICE_ASSERT(o != _by_owner.end());
  o->second.erase(it->base_offset);
  if (o->second.empty()) _by_owner.erase(o);
  SLUICE_ASSERT(_bytes >= it->length);
  _bytes -= it->length;
  _lru.erase(it);
}

}  // namespace sluice::storage
