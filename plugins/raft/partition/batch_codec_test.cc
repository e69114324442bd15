#include "batch_codec.h"

#include "record_batch.h"

#include <gtest/gtest.h>

namespace sluice::raft::partition {
namespace {

std::shared_ptr<const void> own(const std::string& s) { return std::make_shared<std::string>(s); }

result<entry> decode(const std::string& bytes) {
  auto owner = std::make_shared<std::string>(bytes);
  return entry_from_batch(owner, reinterpret_cast<const uint8_t*>(owner->data()), owner->size());
}

TEST(batch_codec, noop_is_a_valid_control_batch_and_round_trips) {
  entry e{term_id(7), log_index(43), 1, entry_type::noop, payload()};
  const std::string b = encode_control_batch(e);
  storage::batch_header h;
  ASSERT_EQ(storage::check_batch(reinterpret_cast<const uint8_t*>(b.data()), b.size(), 1 << 20, &h),
            storage::batch_check::ok);
  EXPECT_EQ(h.base_offset, 42);
  EXPECT_EQ(h.leader_epoch, 7);
  EXPECT_TRUE(h.is_control());
  EXPECT_EQ(h.record_count, 1);
  auto d = decode(b);
  ASSERT_TRUE(d) << d.err().message;
  EXPECT_EQ(d.value().type, entry_type::noop);
  EXPECT_EQ(d.value().index, log_index(43));
  EXPECT_EQ(d.value().term, term_id(7));
  EXPECT_EQ(d.value().count, 1u);
  EXPECT_TRUE(d.value().data.empty());
  // Deterministic: every replica stores the same bytes.
  EXPECT_EQ(encode_control_batch(e), b);
}

TEST(batch_codec, conf_change_carries_the_membership) {
  membership m;
  m.voters = {node_id(1), node_id(2), node_id(3)};
  m.learners = {node_id(9)};
  entry e{term_id(2), log_index(1), 1, entry_type::conf_change, payload(encode_membership(m))};
  const std::string b = encode_control_batch(e);
  storage::batch_header h;
  ASSERT_EQ(storage::check_batch(reinterpret_cast<const uint8_t*>(b.data()), b.size(), 1 << 20, &h),
            storage::batch_check::ok);
  auto d = decode(b);
  ASSERT_TRUE(d) << d.err().message;
  EXPECT_EQ(d.value().type, entry_type::conf_change);
  auto back = decode_membership(d.value().data.view());
  ASSERT_TRUE(back);
  EXPECT_EQ(back.value(), m);
}

TEST(batch_codec, producer_batches_are_normal_entries_sharing_the_bytes) {
  std::string b = storage::make_test_batch(5, 10, 1000);
  stamp_batch(reinterpret_cast<uint8_t*>(b.data()), 100, term_id(3));
  auto owner = std::make_shared<std::string>(b);
  auto d = entry_from_batch(owner, reinterpret_cast<const uint8_t*>(owner->data()), owner->size());
  ASSERT_TRUE(d);
  EXPECT_EQ(d.value().type, entry_type::normal);
  EXPECT_EQ(d.value().index, log_index(101));
  EXPECT_EQ(d.value().count, 5u);
  EXPECT_EQ(d.value().last(), log_index(105));
  EXPECT_EQ(d.value().term, term_id(3));
  EXPECT_EQ(d.value().data.view().data(), owner->data());  // no copy
  // Stamping is outside the CRC.
  storage::batch_header h;
  EXPECT_EQ(storage::check_batch(reinterpret_cast<const uint8_t*>(b.data()), b.size(), 1 << 20, &h),
            storage::batch_check::ok);
}

TEST(batch_codec, malformed_batches_are_errors_not_crashes) {
  EXPECT_FALSE(decode("short"));
  std::string b = encode_control_batch(entry{term_id(1), log_index(1), 1, entry_type::noop, payload()});
  EXPECT_FALSE(decode(b.substr(0, b.size() - 1)));  // length disagrees with the header
  // A control batch whose key is cut off.
  std::string cut = b;
  cut.resize(storage::batch_header_bytes + 2);
  storage::write_be32(reinterpret_cast<uint8_t*>(cut.data()) + 8,
                      static_cast<int32_t>(cut.size() - storage::batch_length_field_end));
  auto d = decode(cut);
  ASSERT_FALSE(d);
  EXPECT_NE(d.err().message.find("no readable key"), std::string::npos);
  (void)own;
}

}  // namespace
}  // namespace sluice::raft::partition
