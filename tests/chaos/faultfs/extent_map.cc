#include "extent_map.h"

#include <sluice/sdk/assert.h>

#include <cstring>

namespace sluice::faultfs {

namespace {
// Sequential writes append to the data extent they continue, up to this size;
// larger extents would make every split copy a lot.
constexpr uint64_t merge_limit = 1 << 20;
}  // namespace

void extent_map::account(const extent& e, uint64_t start, bool add) {
  uint64_t& counter = e.zero ? _zero_bytes : _data_bytes;
  const uint64_t len = e.end - start;
  SLUICE_ASSERT(add || counter >= len);
  counter = add ? counter + len : counter - len;
}

void extent_map::carve(uint64_t a, uint64_t b) {
  if (a >= b) return;
  auto it = _m.lower_bound(a);
  if (it != _m.begin()) {
    auto prev = std::prev(it);
    if (prev->second.end > a) it = prev;  // starts before a and reaches into [a, b)
  }
  while (it != _m.end() && it->first < b) {
    const uint64_t start = it->first;
    extent e = std::move(it->second);
    account(e, start, false);
    it = _m.erase(it);
    if (start < a) {  // keep [start, a)
      extent left{a, e.zero, e.zero ? std::string() : e.data.substr(0, a - start)};
      account(left, start, true);
      _m.emplace(start, std::move(left));
    }
    if (e.end > b) {  // keep [b, end)
      extent right{e.end, e.zero, e.zero ? std::string() : e.data.substr(b - start)};
      account(right, b, true);
      it = _m.emplace(b, std::move(right)).first;
      ++it;
    }
  }
}

void extent_map::put(uint64_t off, std::string_view bytes) {
  if (bytes.empty()) return;
  const uint64_t end = off + bytes.size();
  carve(off, end);
  auto it = _m.lower_bound(off);
  if (it != _m.begin()) {
    auto prev = std::prev(it);
    extent& p = prev->second;
    if (!p.zero && p.end == off && p.data.size() + bytes.size() <= merge_limit) {
      p.data.append(bytes.data(), bytes.size());
      p.end = end;
      _data_bytes += bytes.size();
      return;
    }
  }
  extent e{end, false, std::string(bytes)};
  account(e, off, true);
  _m.emplace(off, std::move(e));
}

void extent_map::zero(uint64_t off, uint64_t len) {
  if (len == 0) return;
  carve(off, off + len);
  extent e{off + len, true, {}};
  account(e, off, true);
  _m.emplace(off, std::move(e));
}

void extent_map::truncate(uint64_t size) {
  carve(size, UINT64_MAX);
}

void extent_map::read(uint64_t off, uint64_t len, char* out,
                      const std::function<void(uint64_t, uint64_t, char*)>& gap) const {
  const uint64_t end = off + len;
  uint64_t at = off;
  auto it = _m.lower_bound(off);
  if (it != _m.begin() && std::prev(it)->second.end > off) --it;
  for (; at < end; ++it) {
    const bool have = it != _m.end() && it->first < end;
    const uint64_t next = have ? std::max(it->first, at) : end;
    if (next > at) gap(at, next - at, out + (at - off));
    if (!have) break;
    const uint64_t stop = std::min(it->second.end, end);
    char* dst = out + (next - off);
    if (it->second.zero) std::memset(dst, 0, stop - next);
    else std::memcpy(dst, it->second.data.data() + (next - it->first), stop - next);
    at = stop;
  }
}

void extent_map::check() const {
  uint64_t prev_end = 0, data = 0, zeros = 0;
  for (const auto& [start, e] : _m) {
    SLUICE_ASSERT(start >= prev_end);
    SLUICE_ASSERT(e.end > start);
    if (e.zero) {
      SLUICE_ASSERT(e.data.empty());
      zeros += e.end - start;
    } else {
      SLUICE_ASSERT(e.data.size() == e.end - start);
      data += e.end - start;
    }
    prev_end = e.end;
  }
  SLUICE_ASSERT(data == _data_bytes);
  SLUICE_ASSERT(zeros == _zero_bytes);
}

}  // namespace sluice::faultfs
