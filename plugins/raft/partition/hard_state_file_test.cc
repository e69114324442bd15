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

TEST(hard_state_slot, a_repair_gate_makes_a_version_2_slot_and_round_trips) {
  persisted_state s{term_id(7), node_id(3), log_index(1000), term_id(5), log_index(4242), term_id(6)};
  const std::string slot = encode_hard_state_slot(s, 9);
  ASSERT_EQ(slot.size(), hard_state_slot_bytes);
  EXPECT_EQ(slot[4], 2) << "version 2";
  auto d = decode_hard_state_slot(reinterpret_cast<const uint8_t*>(slot.data()), slot.size());
  ASSERT_TRUE(d);
  EXPECT_EQ(d->first, s);
  for (size_t i = 0; i < 68; ++i) {
    std::string bad = slot;
    bad[i] = static_cast<char>(bad[i] ^ 0x01);
    EXPECT_FALSE(decode_hard_state_slot(reinterpret_cast<const uint8_t*>(bad.data()), bad.size())) << "byte " << i;
  }
  // Without a gate the slot stays version 1, byte for byte as before.
  s.gate_index = log_index();
  s.gate_term = term_id();
  EXPECT_EQ(encode_hard_state_slot(s, 9)[4], 1);
}

TEST(conf_records, round_trip_and_reject_damage) {
  membership a;
  a.voters = {node_id(1), node_id(2), node_id(3)};
  membership b = a;
  b.learners = {node_id(7)};
  const std::vector<conf_record> recs{{log_index(5), term_id(2), a}, {log_index(9), term_id(3), b}};
  const std::string bytes = encode_conf_records(recs);
  auto back = decode_conf_records(bytes);
  ASSERT_TRUE(back) << back.err().message;
  EXPECT_EQ(back.value(), recs);
  EXPECT_TRUE(decode_conf_records("").value().empty());
  std::string flipped = bytes;
  flipped[20] ^= 1;
  auto bad = decode_conf_records(flipped);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.err().message.find("CRC"), std::string::npos);
  EXPECT_FALSE(decode_conf_records(bytes.substr(0, bytes.size() - 3)));
  EXPECT_FALSE(decode_conf_records(std::string(32, 'x')));
}

}  // namespace
}  // namespace sluice::raft::partition
