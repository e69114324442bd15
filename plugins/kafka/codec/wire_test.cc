// The wire runtime on its own: primitive encodings, bounds checks, error
// reporting, and the writer's chunk list.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "sluice/kafka/wire.h"

namespace sluice::kafka {
namespace {

using bytes = std::vector<uint8_t>;

template <class F>
bytes written(F&& f) {
  writer w;
  f(w);
  return w.flatten();
}

TEST(KafkaWire, FixedWidthBigEndian) {
  EXPECT_EQ(written([](writer& w) { w.write_int16(0x1234); }), (bytes{0x12, 0x34}));
  EXPECT_EQ(written([](writer& w) { w.write_int32(-2); }), (bytes{0xff, 0xff, 0xff, 0xfe}));
  EXPECT_EQ(written([](writer& w) { w.write_int64(0x0102030405060708); }),
            (bytes{1, 2, 3, 4, 5, 6, 7, 8}));
  EXPECT_EQ(written([](writer& w) { w.write_uint16(0xfffe); }), (bytes{0xff, 0xfe}));
  EXPECT_EQ(written([](writer& w) { w.write_uint32(0x80000001); }), (bytes{0x80, 0, 0, 1}));
  EXPECT_EQ(written([](writer& w) { w.write_float64(1.0); }),
            (bytes{0x3f, 0xf0, 0, 0, 0, 0, 0, 0}));

  const bytes in = {0x80, 0xff, 0xfe, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0, 0x02};
  reader r(in);
  int8_t a = 0;
  uint16_t b = 0;
  double c = 0;
  bool d = false;
  ASSERT_TRUE(r.read_int8(a));
  ASSERT_TRUE(r.read_uint16(b));
  ASSERT_TRUE(r.read_float64(c));
  ASSERT_TRUE(r.read_bool(d));
  EXPECT_EQ(a, -128);
  EXPECT_EQ(b, 0xfffe);
  EXPECT_EQ(c, 1.0);
  EXPECT_TRUE(d);
  EXPECT_TRUE(r.at_end());
}

TEST(KafkaWire, Varints) {
  // Zigzag: 0 -> 0, -1 -> 1, 1 -> 2, -64 -> 127, 64 -> 128 (80 01).
  EXPECT_EQ(written([](writer& w) { w.write_varint(0); }), (bytes{0x00}));
  EXPECT_EQ(written([](writer& w) { w.write_varint(-1); }), (bytes{0x01}));
  EXPECT_EQ(written([](writer& w) { w.write_varint(1); }), (bytes{0x02}));
  EXPECT_EQ(written([](writer& w) { w.write_varint(-64); }), (bytes{0x7f}));
  EXPECT_EQ(written([](writer& w) { w.write_varint(64); }), (bytes{0x80, 0x01}));
  EXPECT_EQ(written([](writer& w) { w.write_unsigned_varint(300); }), (bytes{0xac, 0x02}));
  EXPECT_EQ(written([](writer& w) { w.write_varint(std::numeric_limits<int32_t>::min()); }),
            (bytes{0xff, 0xff, 0xff, 0xff, 0x0f}));
  EXPECT_EQ(written([](writer& w) { w.write_varlong(std::numeric_limits<int64_t>::max()); }),
            (bytes{0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}));

  for (int64_t v : {int64_t{0}, int64_t{-1}, int64_t{1} << 40, std::numeric_limits<int64_t>::min(),
                    std::numeric_limits<int64_t>::max()}) {
    const bytes b = written([&](writer& w) { w.write_varlong(v); });
    reader r(b);
    int64_t out = 0;
    ASSERT_TRUE(r.read_varlong(out));
    EXPECT_EQ(out, v);
    EXPECT_TRUE(r.at_end());
  }
  for (int32_t v : {0, -1, 1, 12345, std::numeric_limits<int32_t>::min(),
                    std::numeric_limits<int32_t>::max()}) {
    const bytes b = written([&](writer& w) { w.write_varint(v); });
    reader r(b);
    int32_t out = 0;
    ASSERT_TRUE(r.read_varint(out));
    EXPECT_EQ(out, v);
  }
}

TEST(KafkaWire, BadVarints) {
  const bytes too_long = {0x80, 0x80, 0x80, 0x80, 0x80, 0x01};
  reader r(too_long);
  uint32_t u = 0;
  EXPECT_FALSE(r.read_unsigned_varint(u));
  EXPECT_EQ(r.error(), errc::invalid_varint);

  const bytes overflow = {0xff, 0xff, 0xff, 0xff, 0x7f};  // > 32 bits
  reader r2(overflow);
  EXPECT_FALSE(r2.read_unsigned_varint(u));
  EXPECT_EQ(r2.error(), errc::invalid_varint);

  const bytes cut = {0x80, 0x80};
  reader r3(cut);
  int64_t l = 0;
  EXPECT_FALSE(r3.read_varlong(l));
  EXPECT_EQ(r3.error(), errc::truncated);
}

TEST(KafkaWire, StringsAndBytes) {
  EXPECT_EQ(written([](writer& w) { w.write_string("ab", false); }), (bytes{0, 2, 'a', 'b'}));
  EXPECT_EQ(written([](writer& w) { w.write_string("ab", true); }), (bytes{3, 'a', 'b'}));
  EXPECT_EQ(written([](writer& w) { w.write_null_string(false); }), (bytes{0xff, 0xff}));
  EXPECT_EQ(written([](writer& w) { w.write_null_string(true); }), (bytes{0}));
  EXPECT_EQ(written([](writer& w) { w.write_bytes(bytes{7}, false); }), (bytes{0, 0, 0, 1, 7}));
  EXPECT_EQ(written([](writer& w) { w.write_null_bytes(false); }), (bytes{0xff, 0xff, 0xff, 0xff}));

  const bytes in = {0, 2, 'h', 'i', 0, 0xff, 0xff, 0};
  reader r(in);
  std::string s;
  std::optional<std::string> n1 = "x";
  std::optional<std::string> n2 = "y";
  ASSERT_TRUE(r.read_string(s, false));
  EXPECT_EQ(s, "hi");
  ASSERT_TRUE(r.read_nullable_string(n1, true));  // compact 0 = null
  EXPECT_FALSE(n1.has_value());
  ASSERT_TRUE(r.read_nullable_string(n2, false));  // ff ff = null
  EXPECT_FALSE(n2.has_value());
  EXPECT_FALSE(r.read_string(s, true));  // compact null where not nullable
  EXPECT_EQ(r.error(), errc::null_not_allowed);
}

TEST(KafkaWire, LengthsAreChecked) {
  const bytes neg = {0xff, 0xfe};  // int16 -2
  reader r(neg);
  std::string s;
  EXPECT_FALSE(r.read_string(s, false));
  EXPECT_EQ(r.error(), errc::invalid_length);
  EXPECT_EQ(r.error_message(), "string length -2 is negative");

  const bytes big = {0x00, 0x00, 0x10, 0x00, 1, 2};  // bytes of 4096, 2 remaining
  reader r2(big);
  std::vector<uint8_t> b;
  EXPECT_FALSE(r2.read_bytes(b, false));
  EXPECT_EQ(r2.error(), errc::truncated);
  EXPECT_EQ(r2.error_message(), "bytes length 4096 exceeds remaining 2 bytes");
  EXPECT_EQ(r2.position(), 4u);

  const bytes arr = {0x7f, 0xff, 0xff, 0xff};  // 2^31-1 elements
  reader r3(arr);
  int32_t n = 0;
  EXPECT_FALSE(r3.read_array_length(n, false, false));
  EXPECT_EQ(r3.error(), errc::truncated);

  const bytes null_arr = {0xff, 0xff, 0xff, 0xff};
  reader r4(null_arr);
  EXPECT_FALSE(r4.read_array_length(n, false, false));
  EXPECT_EQ(r4.error(), errc::null_not_allowed);
  reader r5(null_arr);
  ASSERT_TRUE(r5.read_array_length(n, false, true));
  EXPECT_EQ(n, -1);

  const bytes neg_arr = {0xff, 0xff, 0xff, 0xfe};
  reader r6(neg_arr);
  EXPECT_FALSE(r6.read_array_length(n, false, true));
  EXPECT_EQ(r6.error(), errc::invalid_length);

  const bytes compact_null = {0x00};
  reader r7(compact_null);
  ASSERT_TRUE(r7.read_array_length(n, true, true));
  EXPECT_EQ(n, -1);
}

TEST(KafkaWire, FirstErrorSticks) {
  const bytes in = {1, 2, 3};
  reader r(in);
  int32_t x = 0;
  EXPECT_FALSE(r.read_int32(x));
  EXPECT_EQ(r.error(), errc::truncated);
  const std::string first = r.error_message();
  EXPECT_EQ(first, "int32 needs 4 bytes, 3 remaining");
  int8_t y = 0;
  EXPECT_FALSE(r.read_int8(y));  // bytes remain, but the reader has failed
  EXPECT_EQ(r.error_message(), first);
  EXPECT_EQ(r.position(), 0u);
}

TEST(KafkaWire, SkipTaggedFields) {
  const bytes in = {0x02, 0x00, 0x01, 0xaa, 0x05, 0x00, 0x09};
  reader r(in);
  ASSERT_TRUE(r.skip_tagged_fields());
  int8_t x = 0;
  ASSERT_TRUE(r.read_int8(x));
  EXPECT_EQ(x, 9);
  const bytes bad = {0x01, 0x00, 0x05, 0xaa};
  reader r2(bad);
  EXPECT_FALSE(r2.skip_tagged_fields());
}

TEST(KafkaWire, WriterChunks) {
  const uint8_t ext1[] = {0xe1, 0xe2};
  const uint8_t ext2[] = {0xf1};
  writer w;
  const patch_position len = w.reserve_int32();
  w.write_int8(1);
  w.append_external(ext1, sizeof ext1);
  w.append_external(ext2, sizeof ext2);
  w.append_external(ext2, 0);  // ignored
  w.write_int16(0x0203);
  w.patch_int32(len, static_cast<int32_t>(w.size() - 4));
  EXPECT_EQ(w.size(), 10u);
  EXPECT_EQ(w.flatten(), (bytes{0, 0, 0, 6, 1, 0xe1, 0xe2, 0xf1, 2, 3}));
  const auto iov = w.iovecs();
  ASSERT_EQ(iov.size(), 4u);
  EXPECT_EQ(iov[0].iov_len, 5u);
  EXPECT_EQ(iov[1].iov_base, static_cast<const void*>(ext1));
  EXPECT_EQ(iov[2].iov_base, static_cast<const void*>(ext2));
  EXPECT_EQ(iov[3].iov_len, 2u);

  writer outer;
  outer.write_int8(9);
  outer.append(w);
  EXPECT_EQ(outer.size(), 11u);
  EXPECT_EQ(outer.flatten(), (bytes{9, 0, 0, 0, 6, 1, 0xe1, 0xe2, 0xf1, 2, 3}));
  EXPECT_EQ(outer.iovecs()[1].iov_base, static_cast<const void*>(ext1));  // still external

  w.clear();
  EXPECT_EQ(w.size(), 0u);
  EXPECT_TRUE(w.iovecs().empty());
}

TEST(KafkaWire, RecordsView) {
  const uint8_t a[] = {1, 2, 3};
  const uint8_t b[] = {1, 2, 3};
  EXPECT_EQ(records_view::of(a, 3), records_view::of(b, 3));  // by content
  EXPECT_NE(records_view::of(a, 3), records_view::of(b, 2));
  EXPECT_NE(records_view::of(a, 0), records_view{});  // empty is not null
  EXPECT_EQ(records_view{}, records_view{});
  EXPECT_EQ(written([&](writer& w) { w.write_records(records_view::of(a, 3), true); }),
            (bytes{4, 1, 2, 3}));
  EXPECT_EQ(written([](writer& w) { w.write_records(records_view{}, true); }), (bytes{0}));
}

}  // namespace
}  // namespace sluice::kafka
