// libFuzzer target: what the storage reads back from disk at start-up
// (docs/STORAGE.md, "Recovery"), over arbitrary bytes:
//   mode 0: a segment's bytes scanned as recovery does (check_batch from the
//           start, stop at the first invalid batch), indexing every valid
//           batch; the rebuilt index must survive serialize/deserialize and
//           locate() must answer positions inside the scanned bytes;
//   mode 1: an index file (segment_index::deserialize);
//   mode 2: a partition.meta file (decode_meta), re-encoded when accepted.
// None may crash, assert or read out of bounds.
#include "index.h"
#include "partition_meta.h"
#include "record_batch.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>

using namespace sluice::storage;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t mode = data[0] % 3;
  const uint8_t* p = data + 1;
  const size_t n = size - 1;
  if (mode == 0) {
    segment_index idx(0, 512);
    size_t pos = 0;
    int64_t expect = 0;
    while (pos < n) {
      batch_header h;
      if (check_batch(p + pos, n - pos, 1 << 20, &h) != batch_check::ok) break;
      if (h.base_offset != expect) break;  // recovery ends the log where offsets stop continuing
      idx.add_batch(h.base_offset, h.max_timestamp, static_cast<uint32_t>(pos), static_cast<uint32_t>(h.size_bytes()));
      expect = h.base_offset + h.last_offset_delta + 1;
      pos += h.size_bytes();
    }
    const std::string file = idx.serialize(pos, expect);
    segment_index back(0, 512);
    auto loaded = back.deserialize(reinterpret_cast<const uint8_t*>(file.data()), file.size());
    if (!loaded || loaded->segment_bytes != pos || loaded->next_offset != expect) __builtin_trap();
    if (back.offsets().size() != idx.offsets().size()) __builtin_trap();
    // At most about 1000 probes: a batch may claim 2^31 offsets (a harness that stepped by 7 timed out).
    const int64_t step = std::max<int64_t>(7, expect / 1000);
    for (int64_t o = 0; o < expect; o += step)
      if (back.locate(o).position > pos) __builtin_trap();
  } else if (mode == 1) {
    segment_index idx(100, 4096);
    auto loaded = idx.deserialize(p, n);
    if (loaded) (void)idx.locate(150);
  } else {
    std::string why;
    auto m = decode_meta(p, n, &why);
    if (m) {
      const std::string again = encode_meta(*m);
      if (!decode_meta(reinterpret_cast<const uint8_t*>(again.data()), again.size(), &why)) __builtin_trap();
    }
  }
  return 0;
}
