#include "extent_map.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace sluice::faultfs {
namespace {

// What the file reads as: the extents over a "backing" of 'b' bytes.
std::string contents(const extent_map& m, uint64_t size) {
  std::string out(size, '?');
  m.read(0, size, out.data(), [](uint64_t, uint64_t len, char* dst) { std::fill(dst, dst + len, 'b'); });
  return out;
}

TEST(extent_map, writes_replace_what_they_cover) {
  extent_map m;
  m.put(10, "aaaa");
  m.put(12, "cc");
  m.put(8, "dd");
  m.check();
  EXPECT_EQ(contents(m, 16), "bbbbbbbbddaaccbb");
  EXPECT_EQ(m.data_bytes(), 6u);
}

TEST(extent_map, sequential_writes_merge) {
  extent_map m;
  for (int i = 0; i < 100; i++) m.put(uint64_t(i) * 4, "abcd");
  m.check();
  EXPECT_EQ(m.count(), 1u);
  EXPECT_EQ(m.data_bytes(), 400u);
}

TEST(extent_map, zeros_split_data_and_truncate_cuts) {
  extent_map m;
  m.put(0, "0123456789");
  m.zero(3, 4);
  m.check();
  EXPECT_EQ(contents(m, 10), std::string("012\0\0\0\0" "789", 10));
  EXPECT_EQ(m.data_bytes(), 6u);
  EXPECT_EQ(m.zero_bytes(), 4u);
  m.truncate(5);
  m.check();
  EXPECT_EQ(contents(m, 8), std::string("012\0\0bbb", 8));
  m.truncate(0);
  EXPECT_TRUE(m.empty());
  EXPECT_EQ(m.data_bytes() + m.zero_bytes(), 0u);
}

TEST(extent_map, reads_inside_one_extent_and_across_gaps) {
  extent_map m;
  m.put(4, "xyz");
  m.put(20, "pq");
  std::string out(6, '?');
  m.read(5, 6, out.data(), [](uint64_t off, uint64_t len, char* dst) {
    for (uint64_t i = 0; i < len; i++) dst[i] = char('0' + (off + i) % 10);
  });
  EXPECT_EQ(out, "yz7890");
  m.read(21, 1, out.data(), [](uint64_t, uint64_t, char*) { FAIL() << "no gap inside an extent"; });
  EXPECT_EQ(out[0], 'q');
}

// Random puts, zeros and truncates against a flat byte array.
TEST(extent_map, matches_a_flat_model) {
  std::mt19937_64 rng(42);
  for (int round = 0; round < 50; round++) {
    extent_map m;
    std::string flat(4096, 'b');
    for (int step = 0; step < 300; step++) {
      const uint64_t off = rng() % 4000;
      const uint64_t len = 1 + rng() % 96;
      switch (rng() % 8) {
        case 0: {
          const uint64_t to = rng() % 4096;
          m.truncate(to);
          for (uint64_t i = to; i < 4096; i++) flat[i] = 'b';  // what the gap callback gives
          break;
        }
        case 1:
          m.zero(off, len);
          for (uint64_t i = off; i < off + len; i++) flat[i] = '\0';
          break;
        default: {
          std::string data(len, '\0');
          for (auto& c : data) c = char('A' + rng() % 26);
          m.put(off, data);
          flat.replace(off, len, data);
          break;
        }
      }
      m.check();
      ASSERT_EQ(contents(m, 4096), flat) << "round " << round << " step " << step;
    }
  }
}

}  // namespace
}  // namespace sluice::faultfs
