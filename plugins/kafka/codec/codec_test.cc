// Generated codecs: the api table, headers, error paths, fuzz seeds. The
// per-message round trips are in roundtrip_{requests,responses}_test.cc.
#include <gtest/gtest.h>

#include <string>
#include <type_traits>
#include <typeinfo>

#include "message_checks.h"
#include "sluice/kafka/msg/all.h"

namespace sluice::kafka {
namespace {

using testing::encode;
using testing::round_trip;

template <class F>
void for_each_message(F&& f) {
  for (const msg::api_info& a : msg::all_apis()) {
    ASSERT_TRUE(msg::visit_request_type(a.api_key, [&](auto t) { f(a, t); }));
    ASSERT_TRUE(msg::visit_response_type(a.api_key, [&](auto t) { f(a, t); }));
  }
}

TEST(KafkaCodec, ApiTableMatchesTypes) {
  size_t n = 0;
  int16_t prev = -1;
  for_each_message([&](const msg::api_info& a, auto t) {
    using T = typename decltype(t)::type;
    EXPECT_EQ(T::api_key, a.api_key);
    EXPECT_EQ(T::min_version, a.min_version);
    EXPECT_EQ(T::max_version, a.max_version);
    EXPECT_EQ(T::flexible_min_version, a.flexible_min_version);
    EXPECT_EQ(msg::find_api(a.api_key), &a);
    ++n;
  });
  for (const msg::api_info& a : msg::all_apis()) {
    EXPECT_GT(a.api_key, prev);
    prev = a.api_key;
  }
  EXPECT_EQ(n, 2 * msg::all_apis().size());
  EXPECT_EQ(msg::find_api(-1), nullptr);
  EXPECT_EQ(msg::find_api(30000), nullptr);
  const msg::api_info* produce = msg::find_api(0);
  ASSERT_NE(produce, nullptr);
  EXPECT_STREQ(produce->name, "Produce");
  EXPECT_EQ(produce->deprecated_max_version, 6);
  EXPECT_TRUE(produce->listeners & msg::listener_broker);
  EXPECT_FALSE(produce->listeners & msg::listener_controller);
}

TEST(KafkaCodec, HeadersRoundTrip) {
  for (int16_t v = 0; v <= 2; ++v) {
    for (uint64_t seed = 1; seed <= 8; ++seed) round_trip<msg::request_header>(v, seed);
  }
  for (int16_t v = 0; v <= 1; ++v) {
    for (uint64_t seed = 1; seed <= 8; ++seed) round_trip<msg::response_header>(v, seed);
  }
}

TEST(KafkaCodec, ErrorMessageNamesTheField) {
  msg::produce_request p;
  p.acks = -1;
  p.timeout_ms = 1000;
  p.topic_data.resize(1);
  p.topic_data[0].name = "orders";
  std::vector<uint8_t> bytes = encode(p, 9);
  // Header fields: transactional_id (compact null: 1 byte), acks 2, timeout 4,
  // topic_data count 1, then the name's compact length.
  ASSERT_EQ(bytes[7], 2);  // 1 topic
  ASSERT_EQ(bytes[8], 7);  // "orders" + 1
  bytes[8] = 0xf1;         // 70000 + 1 as an unsigned varint: f1 a2 04
  bytes.insert(bytes.begin() + 9, {0xa2, 0x04});
  bytes.resize(9 + 2 + 12);
  reader r(bytes);
  msg::produce_request d;
  ASSERT_FALSE(d.decode(r, 9));
  EXPECT_EQ(r.error(), errc::truncated);
  EXPECT_EQ(r.error_message(),
            "produce_request v9: topic_data[0].name: string length 70000 exceeds remaining 12 bytes");
  // Later reads fail fast and keep the first error.
  int32_t x = 0;
  EXPECT_FALSE(r.read_int32(x));
  EXPECT_EQ(r.error(), errc::truncated);
}

TEST(KafkaCodec, UnsupportedVersionAndUnknownKey) {
  const std::vector<uint8_t> empty;
  reader r(empty);
  msg::produce_request p;
  EXPECT_FALSE(p.decode(r, 12));
  EXPECT_EQ(r.error(), errc::unsupported_version);
  reader r2(empty);
  EXPECT_FALSE(msg::decode_request_body(9999, 0, r2));
  EXPECT_EQ(r2.error(), errc::unknown_api_key);
  reader r3(empty);
  EXPECT_FALSE(msg::decode_request_body(0, -1, r3));
  EXPECT_EQ(r3.error(), errc::unsupported_version);
}

TEST(KafkaCodec, NonNullableNullIsRejected) {
  // MetadataRequest v1: topics is nullable; its elements' names are not.
  const std::vector<uint8_t> bytes = {0, 0, 0, 1, 0xff, 0xff};
  reader r(bytes);
  msg::metadata_request m;
  ASSERT_FALSE(m.decode(r, 1));
  EXPECT_EQ(r.error(), errc::null_not_allowed);
  EXPECT_EQ(r.error_message(),
            "metadata_request v1: topics[0].name: null string in a non-nullable field");
}

TEST(KafkaCodec, HeaderVersions) {
  EXPECT_EQ(msg::request_header_version(0, 8), 1);
  EXPECT_EQ(msg::request_header_version(0, 9), 2);
  EXPECT_EQ(msg::request_header_version(7, 0), 0);
  EXPECT_EQ(msg::request_header_version(7, 1), 1);
  EXPECT_EQ(msg::request_header_version(18, 3), 2);
  EXPECT_EQ(msg::request_header_version(18, 99), 2);
  EXPECT_EQ(msg::request_header_version(-5, 0), -1);
  EXPECT_EQ(msg::response_header_version(18, 3), 0);
  EXPECT_EQ(msg::response_header_version(18, 0), 0);
  EXPECT_EQ(msg::response_header_version(0, 9), 1);
  EXPECT_EQ(msg::response_header_version(0, 8), 0);
  EXPECT_EQ(msg::response_header_version(3, 9), 1);
  EXPECT_EQ(msg::response_header_version(3, 8), 0);
}

}  // namespace
}  // namespace sluice::kafka
