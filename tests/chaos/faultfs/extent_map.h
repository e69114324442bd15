// The bytes of one file that were written (or zeroed) since its last sync:
// non-overlapping extents over the file's offsets, each either data or zeros.
// A later write replaces what it covers. Reads fill the gaps from a callback
// (the backing file, or zeros). Not thread-safe: the owner locks.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>

namespace sluice::faultfs {

class extent_map {
 public:
  struct extent {
    uint64_t end = 0;
    bool zero = false;
    std::string data;  // end - start bytes unless zero
  };

  // Data at [off, off + bytes.size()).
  void put(uint64_t off, std::string_view bytes);
  // Zeros at [off, off + len).
  void zero(uint64_t off, uint64_t len);
  // Forgets everything at or past size.
  void truncate(uint64_t size);
  void clear() { _m.clear(); _data_bytes = 0; _zero_bytes = 0; }

  // Fills out[0, len) with the bytes at [off, off + len): extents where they
  // are, gap(offset, length, destination) for the rest.
  void read(uint64_t off, uint64_t len, char* out,
            const std::function<void(uint64_t, uint64_t, char*)>& gap) const;

  bool empty() const { return _m.empty(); }
  uint64_t data_bytes() const { return _data_bytes; }
  uint64_t zero_bytes() const { return _zero_bytes; }
  size_t count() const { return _m.size(); }
  // Ascending by start offset.
  const std::map<uint64_t, extent>& extents() const { return _m; }

  // Checks the invariants (ordered, non-overlapping, sizes match, counters
  // right); asserts on failure. For tests.
  void check() const;

 private:
  // Removes [a, b) from the map, splitting the extents that cross a or b.
  void carve(uint64_t a, uint64_t b);
  void account(const extent& e, uint64_t start, bool add);

  std::map<uint64_t, extent> _m;  // start -> extent
  uint64_t _data_bytes = 0;
  uint64_t _zero_bytes = 0;
};

}  // namespace sluice::faultfs
