// Decompression of record batch bodies in the four codecs Kafka clients use
// (attributes bits 0-2: 1 gzip, 2 snappy, 3 lz4, 4 zstd). The broker stores
// and serves batches as producers sent them; it decompresses only to look
// inside one (ListOffsets by timestamp). Output is capped so a hostile batch
// cannot make the broker allocate without bound.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace sluice::kafka {

// Appends the decompressed bytes of `in` to out. Returns "" or what went
// wrong ("lz4: ...", "output larger than N bytes", "unknown codec 6").
std::string decompress(int codec, std::span<const uint8_t> in, std::vector<uint8_t>& out, size_t max_out);

}  // namespace sluice::kafka
