#include "record_batch.h"

#include <gtest/gtest.h>

namespace sluice::storage {
namespace {

const uint8_t* bytes(const std::string& s) { return reinterpret_cast<const uint8_t*>(s.data()); }

TEST(record_batch, test_batches_are_valid_v2) {
  std::string b = make_test_batch(5, 100, 1'700'000'000'000);
  batch_header h;
  ASSERT_EQ(check_batch(bytes(b), b.size(), 1 << 20, &h), batch_check::ok);
  EXPECT_EQ(h.magic, 2);
  EXPECT_EQ(h.record_count, 5);
  EXPECT_EQ(h.last_offset_delta, 4);
  EXPECT_EQ(h.first_timestamp, 1'700'000'000'000);
  EXPECT_EQ(h.max_timestamp, 1'700'000'000'004);
  EXPECT_EQ(h.size_bytes(), b.size());
}

TEST(record_batch, broker_fields_are_outside_the_crc) {
  std::string b = make_test_batch(1, 10, 0);
  auto* p = reinterpret_cast<uint8_t*>(b.data());
  set_base_offset(p, 123456789);
  set_leader_epoch(p, 7);
  batch_header h;
  ASSERT_EQ(check_batch(p, b.size(), 1 << 20, &h), batch_check::ok);
  EXPECT_EQ(h.base_offset, 123456789);
  EXPECT_EQ(h.leader_epoch, 7);
}

TEST(record_batch, every_corruption_is_caught) {
  const std::string good = make_test_batch(3, 20, 0);
  // Every byte covered by the CRC, flipped, fails the check.
  for (size_t i = batch_crc_start; i < good.size(); ++i) {
    std::string b = good;
    b[i] = static_cast<char>(b[i] ^ 0x40);
    EXPECT_NE(check_batch(bytes(b), b.size(), 1 << 20, nullptr), batch_check::ok) << i;
  }
  std::string b = good;
  b[16] = 1;
  EXPECT_EQ(check_batch(bytes(b), b.size(), 1 << 20, nullptr), batch_check::bad_magic);
  EXPECT_EQ(check_batch(bytes(good), good.size() - 1, 1 << 20, nullptr), batch_check::truncated);
  EXPECT_EQ(check_batch(bytes(good), 30, 1 << 20, nullptr), batch_check::truncated);
  EXPECT_EQ(check_batch(bytes(good), good.size(), 64, nullptr), batch_check::bad_length);
  b = good;
  write_be32(reinterpret_cast<uint8_t*>(b.data()) + 8, 3);  // batchLength below a header
  EXPECT_EQ(check_batch(bytes(b), b.size(), 1 << 20, nullptr), batch_check::bad_length);
}

}  // namespace
}  // namespace sluice::storage
