#include "consumer_protocol.h"

#include <gtest/gtest.h>

namespace sluice::kafka {
namespace {

TEST(consumer_protocol, decodes_an_assignment_and_refuses_truncated_ones) {
  // version 1, one topic "ab" with partitions 0 and 2, null user data.
  const std::vector<uint8_t> bytes = {0, 1, 0, 0, 0, 1, 0, 2, 'a', 'b', 0, 0, 0, 2,
                                      0, 0, 0, 0, 0, 0, 0, 2, 0xff, 0xff, 0xff, 0xff};
  auto parts = decode_consumer_assignment(bytes);
  ASSERT_TRUE(parts);
  EXPECT_EQ(*parts, (std::vector<std::pair<std::string, int32_t>>{{"ab", 0}, {"ab", 2}}));
  EXPECT_TRUE(decode_consumer_assignment({})->empty());
  for (size_t n = 1; n < 22; ++n)
    EXPECT_FALSE(decode_consumer_assignment(std::vector<uint8_t>(bytes.begin(), bytes.begin() + n))) << n;
  EXPECT_FALSE(decode_consumer_assignment({0, 0, 0x7f, 0xff, 0xff, 0xff}));  // absurd topic count
}

}  // namespace
}  // namespace sluice::kafka
