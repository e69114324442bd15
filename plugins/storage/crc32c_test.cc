#include "crc32c.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace sluice::storage {
namespace {

TEST(crc32c, known_vectors) {
  EXPECT_EQ(crc32c(0, "123456789", 9), 0xe3069283u);  // RFC 3720 check value
  EXPECT_EQ(crc32c_portable(0, "123456789", 9), 0xe3069283u);
  EXPECT_EQ(crc32c(0, "", 0), 0u);
  std::vector<uint8_t> zeros(32, 0);
  EXPECT_EQ(crc32c(0, zeros.data(), zeros.size()), 0x8a9136aau);  // RFC 3720 B.4
}

TEST(crc32c, accelerated_matches_portable_at_every_length_and_split) {
  std::mt19937_64 rng(42);
  std::vector<uint8_t> buf(3 * 2048 * 3 + 333);
  for (auto& b : buf) b = static_cast<uint8_t>(rng());
  for (size_t len : {0u, 1u, 7u, 8u, 9u, 63u, 64u, 4095u, 6143u, 6144u, 6145u, 12288u, 18000u, 18765u}) {
    if (len > buf.size()) continue;
    EXPECT_EQ(crc32c(0, buf.data(), len), crc32c_portable(0, buf.data(), len)) << len;
  }
  // Extending a checksum in pieces equals computing it at once.
  const uint32_t whole = crc32c(0, buf.data(), buf.size());
  for (size_t cut : {1u, 100u, 6144u, 7000u}) {
    uint32_t c = crc32c(0, buf.data(), cut);
    c = crc32c(c, buf.data() + cut, buf.size() - cut);
    EXPECT_EQ(c, whole) << cut;
  }
}

}  // namespace
}  // namespace sluice::storage
