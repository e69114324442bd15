// The leader-epoch table's rules and partition.meta's bytes (the layout
// docs/STORAGE.md documents, checked byte by byte).
#include "partition_meta.h"

#include "crc32c.h"
#include "record_batch.h"

#include <gtest/gtest.h>

namespace sluice::storage {
namespace {

using entries = std::vector<epoch_entry>;

TEST(epoch_table, an_entry_where_the_epoch_first_exceeds_the_last) {
  epoch_table t;
  EXPECT_FALSE(t.observe(-1, 0));  // no epoch: no entry
  EXPECT_EQ(t.last_epoch(), -1);
  EXPECT_TRUE(t.observe(0, 2));
  EXPECT_FALSE(t.observe(0, 5));  // the same epoch
  EXPECT_TRUE(t.observe(3, 7));
  EXPECT_FALSE(t.observe(2, 9));  // lower than the last: Kafka's follower ignores it
  EXPECT_FALSE(t.observe(-1, 10));
  EXPECT_TRUE(t.observe(4, 12));
  EXPECT_EQ(t.entries(), (entries{{0, 2}, {3, 7}, {4, 12}}));
  EXPECT_EQ(t.last_epoch(), 4);
  EXPECT_EQ(t.covering(1), nullptr);
  EXPECT_EQ(t.covering(7)->epoch, 3);
  EXPECT_EQ(t.covering(11)->epoch, 3);
  EXPECT_EQ(t.covering(1000)->epoch, 4);
}

TEST(epoch_table, truncations) {
  epoch_table t;
  t.assign(entries{{1, 0}, {2, 10}, {5, 20}});
  epoch_table u = t;
  u.truncate_suffix(20);  // an entry starting at the new end goes
  EXPECT_EQ(u.entries(), (entries{{1, 0}, {2, 10}}));
  u.truncate_suffix(11);  // one starting before it stays
  EXPECT_EQ(u.entries(), (entries{{1, 0}, {2, 10}}));
  u.truncate_suffix(0);
  EXPECT_TRUE(u.empty());

  u = t;
  u.truncate_prefix(15);  // the covering entry is clipped, the ones before it go
  EXPECT_EQ(u.entries(), (entries{{2, 15}, {5, 20}}));
  u.truncate_prefix(20);
  EXPECT_EQ(u.entries(), (entries{{5, 20}}));
  u.truncate_prefix(100);  // past the last entry's start: it still covers
  EXPECT_EQ(u.entries(), (entries{{5, 100}}));
  // A batch at that start replaces the clipped entry (it has no batch).
  EXPECT_TRUE(u.observe(6, 100));
  EXPECT_EQ(u.entries(), (entries{{6, 100}}));

  u.assign(entries{{3, 50}});
  u.truncate_prefix(10);  // every entry starts after it: nothing to clip
  EXPECT_EQ(u.entries(), (entries{{3, 50}}));
}

TEST(epoch_table, validity) {
  EXPECT_TRUE(epoch_table::valid({}, 0));
  EXPECT_TRUE(epoch_table::valid({{0, 0}, {1, 1}}, 0));
  EXPECT_FALSE(epoch_table::valid({{1, 0}, {1, 5}}, 0));  // epochs must grow
  EXPECT_FALSE(epoch_table::valid({{1, 5}, {2, 5}}, 0));  // offsets must grow
  EXPECT_FALSE(epoch_table::valid({{-1, 0}}, 0));
  EXPECT_FALSE(epoch_table::valid({{1, 3}}, 4));          // below the log start
}

TEST(partition_meta, version_2_bytes) {
  partition_meta m;
  m.start_offset = 0x0102030405060708;
  m.truncating_to = -1;
  m.epochs = {{7, 0x0102030405060708}, {9, 0x0102030405060800}};
  const std::string bytes = encode_meta(m);
  ASSERT_EQ(bytes.size(), meta_header_bytes + 2 * meta_entry_bytes);
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  EXPECT_EQ(static_cast<uint32_t>(read_be32(p)), 0x534c504du);  // "SLPM"
  EXPECT_EQ(std::string(bytes.data(), 4), "SLPM");
  EXPECT_EQ(read_be32(p + 4), 2);
  EXPECT_EQ(read_be64(p + 8), m.start_offset);
  EXPECT_EQ(read_be64(p + 16), -1);
  EXPECT_EQ(read_be32(p + 24), 2);
  uint32_t crc = crc32c(0, p, 28);
  crc = crc32c(crc, p + 32, 24);
  EXPECT_EQ(static_cast<uint32_t>(read_be32(p + 28)), crc);
  EXPECT_EQ(read_be32(p + 32), 7);
  EXPECT_EQ(read_be64(p + 36), 0x0102030405060708);
  EXPECT_EQ(read_be32(p + 44), 9);
  EXPECT_EQ(read_be64(p + 48), 0x0102030405060800);

  std::string why;
  auto back = decode_meta(p, bytes.size(), &why);
  ASSERT_TRUE(back.has_value()) << why;
  EXPECT_EQ(back->version, meta_version);
  EXPECT_EQ(back->start_offset, m.start_offset);
  EXPECT_EQ(back->truncating_to, -1);
  EXPECT_EQ(back->epochs, m.epochs);

  m.truncating_to = m.start_offset + 3;
  back = decode_meta(reinterpret_cast<const uint8_t*>(encode_meta(m).data()), bytes.size(), &why);
  ASSERT_TRUE(back.has_value()) << why;
  EXPECT_EQ(back->truncating_to, m.start_offset + 3);
}

TEST(partition_meta, every_damage_is_refused) {
  partition_meta m;
  m.start_offset = 40;
  m.epochs = {{1, 40}, {4, 90}};
  const std::string good = encode_meta(m);
  for (size_t i = 0; i < good.size(); ++i) {
    for (uint8_t flip : {uint8_t{0x01}, uint8_t{0x80}, uint8_t{0xff}}) {
      std::string bad = good;
      bad[i] = static_cast<char>(bad[i] ^ flip);
      EXPECT_FALSE(decode_meta(reinterpret_cast<const uint8_t*>(bad.data()), bad.size(), nullptr).has_value())
          << "a flip of byte " << i;
    }
  }
  for (size_t n = 0; n < good.size(); ++n)
    EXPECT_FALSE(decode_meta(reinterpret_cast<const uint8_t*>(good.data()), n, nullptr).has_value())
        << "truncated to " << n << " bytes";
  // Consistent bytes (CRC right) with inconsistent contents are refused too.
  std::string why;
  partition_meta out_of_order = m;
  out_of_order.epochs = {{1, 40}, {4, 90}};
  std::string bytes = encode_meta(out_of_order);
  auto* p = reinterpret_cast<uint8_t*>(bytes.data());
  write_be32(p + 44, 1);  // the second entry's epoch equals the first's
  uint32_t crc = crc32c(0, p, 28);
  crc = crc32c(crc, p + 32, bytes.size() - 32);
  write_be32(p + 28, static_cast<int32_t>(crc));
  EXPECT_FALSE(decode_meta(p, bytes.size(), &why).has_value());
  EXPECT_EQ(why, "epoch entries out of order");
}

TEST(partition_meta, version_1_is_read) {
  uint8_t v1[24] = {};
  write_be32(v1, static_cast<int32_t>(meta_magic));
  write_be32(v1 + 4, 1);
  write_be64(v1 + 8, 1234);
  write_be32(v1 + 16, static_cast<int32_t>(crc32c(0, v1, 16)));
  std::string why;
  auto m = decode_meta(v1, sizeof(v1), &why);
  ASSERT_TRUE(m.has_value()) << why;
  EXPECT_EQ(m->version, 1u);
  EXPECT_EQ(m->start_offset, 1234);
  EXPECT_TRUE(m->epochs.empty());
  v1[9] ^= 1;
  EXPECT_FALSE(decode_meta(v1, sizeof(v1), &why).has_value());
  EXPECT_EQ(why, "CRC32C mismatch");
}

}  // namespace
}  // namespace sluice::storage
