#include "hard_state_slot.h"

#include <gtest/gtest.h>

namespace sluice::raft::partition {
namespace {

TEST(hard_state_slot, round_trips) {
  persisted_state s{term_id(7), node_id(3), log_index(1000), term_id(5)};
  const std::string slot = encode_hard_state_slot(s, 42);
  ASSERT_EQ(slot.size(), hard_state_slot_bytes);
  auto d = decode_hard_state_slot(reinterpret_cast<const uint8_t*>(slot.data()), slot.size());
  ASSERT_TRUE(d);
  EXPECT_EQ(d->first, s);
  EXPECT_EQ(d->second, 42u);
}

TEST(hard_state_slot, torn_or_foreign_slots_are_rejected) {
  const std::string slot = encode_hard_state_slot(persisted_state{term_id(1), node_id(1), {}, {}}, 1);
  const std::string zeros(hard_state_slot_bytes, '\0');
  EXPECT_FALSE(decode_hard_state_slot(reinterpret_cast<const uint8_t*>(zeros.data()), zeros.size()));
  for (size_t i = 0; i < 52; ++i) {
    std::string bad = slot;
    bad[i] = static_cast<char>(bad[i] ^ 0x10);
    EXPECT_FALSE(decode_hard_state_slot(reinterpret_cast<const uint8_t*>(bad.data()), bad.size())) << "byte " << i;
  }
  EXPECT_FALSE(decode_hard_state_slot(reinterpret_cast<const uint8_t*>(slot.data()), 20));
}

}  // namespace
}  // namespace sluice::raft::partition
