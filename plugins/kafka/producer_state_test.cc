#include "producer_state.h"

#include <gtest/gtest.h>

#include <limits>

namespace sluice::kafka {
namespace {

producer_batch_info batch(int64_t pid, int16_t epoch, int32_t first_seq, int32_t count = 1, int64_t ts = 1000) {
  producer_batch_info b;
  b.producer_id = pid;
  b.producer_epoch = epoch;
  b.first_seq = first_seq;
  b.last_seq = increment_sequence(first_seq, count - 1);
  b.offset_count = count;
  b.max_timestamp = ts;
  return b;
}

sequence_verdict check_one(const producer_state_table& t, const producer_batch_info& b) {
  return t.check(std::span<const producer_batch_info>(&b, 1));
}

void record_one(producer_state_table& t, const producer_batch_info& b, int64_t base) {
  t.record(std::span<const producer_batch_info>(&b, 1), base);
}

TEST(producer_state, sequence_wraps_like_kafka) {
  EXPECT_EQ(increment_sequence(5, 3), 8);
  EXPECT_EQ(increment_sequence(std::numeric_limits<int32_t>::max(), 1), 0);
  EXPECT_EQ(increment_sequence(std::numeric_limits<int32_t>::max() - 1, 3), 1);
}

TEST(producer_state, in_order_batches_pass_and_are_recorded) {
  producer_state_table t;
  EXPECT_EQ(check_one(t, batch(7, 0, 0, 3)).error, error_code::none);
  record_one(t, batch(7, 0, 0, 3), 100);
  auto v = check_one(t, batch(7, 0, 3, 2));
  EXPECT_EQ(v.error, error_code::none);
  EXPECT_FALSE(v.duplicate);
  record_one(t, batch(7, 0, 3, 2), 103);
  const producer_entry& e = t.producers().at(7);
  EXPECT_EQ(e.epoch, 0);
  EXPECT_EQ(e.last_seq(), 4);
  EXPECT_EQ(e.last_offset(), 104);
}

TEST(producer_state, a_cached_batch_is_a_duplicate_with_its_original_offsets) {
  producer_state_table t;
  for (int i = 0; i < 6; ++i) record_one(t, batch(1, 0, i * 2, 2), 10 + i * 2);
  // Batches 1..5 are cached (the first was evicted after five).
  auto v = check_one(t, batch(1, 0, 4, 2));
  EXPECT_TRUE(v.duplicate);
  EXPECT_EQ(v.base_offset, 14);
  EXPECT_EQ(v.last_offset, 15);
  // The evicted one is no duplicate any more: out of order.
  v = check_one(t, batch(1, 0, 0, 2));
  EXPECT_FALSE(v.duplicate);
  EXPECT_EQ(v.error, error_code::out_of_order_sequence_number);
  // Same first sequence, different length: not a duplicate.
  EXPECT_EQ(check_one(t, batch(1, 0, 4, 1)).error, error_code::out_of_order_sequence_number);
}

TEST(producer_state, gaps_are_out_of_order) {
  producer_state_table t;
  record_one(t, batch(1, 0, 0, 1), 0);
  EXPECT_EQ(check_one(t, batch(1, 0, 2)).error, error_code::out_of_order_sequence_number);
  EXPECT_EQ(check_one(t, batch(1, 0, 1)).error, error_code::none);
}

TEST(producer_state, epochs_fence_and_restart_the_sequence) {
  producer_state_table t;
  record_one(t, batch(1, 3, 0, 5), 0);
  auto v = check_one(t, batch(1, 2, 5));
  EXPECT_EQ(v.error, error_code::invalid_producer_epoch);
  EXPECT_FALSE(v.message.empty());
  EXPECT_EQ(check_one(t, batch(1, 4, 5)).error, error_code::out_of_order_sequence_number);
  EXPECT_EQ(check_one(t, batch(1, 4, 0)).error, error_code::none);
  record_one(t, batch(1, 4, 0), 5);
  EXPECT_EQ(t.producers().at(1).epoch, 4);
  // The old epoch's batches are forgotten: its retry is fenced, not a duplicate.
  EXPECT_EQ(check_one(t, batch(1, 3, 0, 5)).error, error_code::invalid_producer_epoch);
}

TEST(producer_state, unknown_producers_may_start_anywhere_as_since_kip_360) {
  producer_state_table t;
  EXPECT_EQ(check_one(t, batch(9, 0, 42)).error, error_code::none);
  EXPECT_EQ(check_one(t, batch(9, 0, 0)).error, error_code::none);
}

TEST(producer_state, sequence_wraps_at_int32_max) {
  producer_state_table t;
  const int32_t max = std::numeric_limits<int32_t>::max();
  record_one(t, batch(1, 0, max - 1, 2), 0);  // max-1, max
  EXPECT_EQ(t.producers().at(1).last_seq(), max);
  EXPECT_EQ(check_one(t, batch(1, 0, 0)).error, error_code::none);
}

TEST(producer_state, batches_of_one_request_are_checked_in_turn) {
  producer_state_table t;
  record_one(t, batch(1, 0, 0, 2), 0);
  std::vector<producer_batch_info> ok{batch(1, 0, 2, 2), batch(-1, -1, -1, 3), batch(1, 0, 4, 1)};
  EXPECT_EQ(t.check(ok).error, error_code::none);
  std::vector<producer_batch_info> gap{batch(1, 0, 2, 2), batch(1, 0, 5, 1)};
  EXPECT_EQ(t.check(gap).error, error_code::out_of_order_sequence_number);
  // Recording assigns consecutive offsets, counting batches without producer too.
  t.record(ok, 2);
  const producer_entry& e = t.producers().at(1);
  EXPECT_EQ(e.batches.back().base_offset, 7);
  EXPECT_EQ(e.batches.back().last_offset, 7);
  EXPECT_EQ(e.last_seq(), 4);
}

TEST(producer_state, replay_keeps_the_newest_epoch) {
  producer_state_table t;
  t.replay(batch(1, 1, 0, 2), 0);
  t.replay(batch(1, 0, 7, 1), 2);  // older epoch: ignored
  t.replay(batch(1, 1, 2, 1), 3);
  t.replay(batch(-1, -1, -1, 4), 4);
  ASSERT_EQ(t.producers().size(), 1u);
  EXPECT_EQ(t.producers().at(1).last_seq(), 2);
  auto v = check_one(t, batch(1, 1, 0, 2));
  EXPECT_TRUE(v.duplicate);
  EXPECT_EQ(v.base_offset, 0);
  EXPECT_EQ(v.last_offset, 1);
}

}  // namespace
}  // namespace sluice::kafka
