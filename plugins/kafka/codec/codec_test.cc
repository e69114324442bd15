// Generated codecs, checked for every message at every version: random
// round trips, truncation, unknown tagged fields, error paths.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <type_traits>
#include <typeinfo>

#include "fill_random.h"
#include "sluice/kafka/msg/all.h"

namespace sluice::kafka {
namespace {

using testing::fill_options;
using testing::fill_random;
using testing::rng;

template <class T>
std::vector<uint8_t> encode(const T& m, int16_t version) {
  writer w;
  m.encode(w, version);
  std::vector<uint8_t> out = w.flatten();
  EXPECT_EQ(out.size(), w.size());
  return out;
}

// Fills, encodes, decodes, compares, re-encodes; returns the encoding.
template <class T>
std::vector<uint8_t> round_trip(int16_t version, uint64_t seed, fill_options opt = {}) {
  T m;
  rng g(seed);
  fill_random(m, version, g, opt);
  const std::vector<uint8_t> bytes = encode(m, version);
  reader r(bytes);
  T d;
  const bool ok = d.decode(r, version);
  EXPECT_TRUE(ok) << r.error_message();
  if (!ok) return bytes;
  EXPECT_TRUE(r.at_end()) << typeid(T).name() << " v" << version << ": " << r.remaining()
                          << " bytes left";
  EXPECT_TRUE(d == m) << typeid(T).name() << " v" << version << " seed " << seed;
  EXPECT_EQ(encode(d, version), bytes) << typeid(T).name() << " v" << version;
  return bytes;
}

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

TEST(KafkaCodec, RoundTripEveryMessageEveryVersion) {
  size_t cases = 0;
  for_each_message([&](const msg::api_info&, auto t) {
    using T = typename decltype(t)::type;
    for (int16_t v = T::min_version; v <= T::max_version; ++v) {
      for (uint64_t seed = 1; seed <= 6; ++seed) {
        round_trip<T>(v, seed * 1000 + static_cast<uint64_t>(v));
        ++cases;
      }
      round_trip<T>(v, 77, {.tagged_defaults_sometimes = false, .nulls = false});
      if (::testing::Test::HasFailure()) return;
    }
  });
  EXPECT_GT(cases, 1000u);
}

TEST(KafkaCodec, HeadersRoundTrip) {
  for (int16_t v = 0; v <= 2; ++v) {
    for (uint64_t seed = 1; seed <= 8; ++seed) round_trip<msg::request_header>(v, seed);
  }
  for (int16_t v = 0; v <= 1; ++v) {
    for (uint64_t seed = 1; seed <= 8; ++seed) round_trip<msg::response_header>(v, seed);
  }
}

// Every strict prefix of a valid encoding must fail cleanly: no message
// ends with an optional part.
TEST(KafkaCodec, TruncatedEncodingsFail) {
  for_each_message([&](const msg::api_info& a, auto t) {
    using T = typename decltype(t)::type;
    // A sample: the lowest, first flexible and highest versions.
    for (int16_t v : {T::min_version, std::min(T::flexible_min_version, T::max_version), T::max_version}) {
      const std::vector<uint8_t> bytes = round_trip<T>(v, 4242 + static_cast<uint64_t>(a.api_key));
      for (size_t len = 0; len < bytes.size(); ++len) {
        reader r(std::span<const uint8_t>(bytes.data(), len));
        T d;
        ASSERT_FALSE(d.decode(r, v)) << typeid(T).name() << " v" << v << " len " << len;
        ASSERT_FALSE(r.ok());
        ASSERT_FALSE(r.error_message().empty());
      }
    }
  });
}

// Appends an unknown tag to the top-level tagged-field section of a flexible
// encoding whose tagged fields are all default (so the section is the single
// final 0 byte); the decoder must skip it.
TEST(KafkaCodec, UnknownTaggedFieldsAreSkipped) {
  size_t checked = 0;
  for_each_message([&](const msg::api_info&, auto t) {
    using T = typename decltype(t)::type;
    if (T::flexible_min_version > T::max_version) return;
    const int16_t v = T::max_version;
    T m;
    rng g(99);
    fill_random(m, v, g, {.tagged_defaults_sometimes = false, .nulls = true});
    std::vector<uint8_t> bytes = encode(m, v);
    ASSERT_FALSE(bytes.empty());
    ASSERT_EQ(bytes.back(), 0);
    bytes.back() = 2;  // two tagged fields
    for (uint8_t b : {0x81, 0x01, 3, 0xaa, 0xbb, 0xcc}) bytes.push_back(b);  // tag 129, 3 bytes
    for (uint8_t b : {0x64, 0}) bytes.push_back(b);                          // tag 100, empty
    reader r(bytes);
    T d;
    ASSERT_TRUE(d.decode(r, v)) << r.error_message();
    EXPECT_TRUE(r.at_end());
    EXPECT_TRUE(d == m);
    // A size running past the end is an error, not a skip.
    bytes.resize(bytes.size() - 2);
    bytes.back() = 0xcc;
    bytes[bytes.size() - 4] = 10;
    reader r2(std::span<const uint8_t>(bytes.data(), bytes.size()));
    EXPECT_FALSE(d.decode(r2, v));
    ++checked;
  });
  EXPECT_GT(checked, 100u);
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

// With SLUICE_KAFKA_WRITE_CORPUS=<dir>, writes fuzz seeds in the fuzzer's
// input format (tests/fuzz/kafka_request_fuzz.cc): a request header followed
// by a body, for a handful of APIs and versions.
TEST(KafkaCodec, WriteFuzzCorpus) {
  const char* dir = std::getenv("SLUICE_KAFKA_WRITE_CORPUS");
  if (dir == nullptr) GTEST_SKIP() << "set SLUICE_KAFKA_WRITE_CORPUS to write seeds";
  const std::pair<int16_t, int16_t> picks[] = {{0, 3}, {0, 9}, {0, 11}, {1, 4}, {1, 16},
                                               {3, 1}, {3, 12}, {18, 0}, {18, 3}, {18, 4},
                                               {19, 7}, {32, 4}, {60, 0}, {7, 0}, {75, 0}};
  for (auto [key, version] : picks) {
    msg::visit_request_type(key, [&](auto t) {
      using T = typename decltype(t)::type;
      if (version > T::max_version) return;
      T m;
      rng g(static_cast<uint64_t>(key) * 100 + static_cast<uint64_t>(version));
      fill_random(m, version, g);
      msg::request_header h;
      h.api_key = key;
      h.api_version = version;
      h.correlation_id = 42;
      h.client_id = "seed";
      writer w;
      h.encode(w, msg::request_header_version(key, version));
      m.encode(w, version);
      const std::vector<uint8_t> bytes = w.flatten();
      const std::string path = std::string(dir) + "/api" + std::to_string(key) + "_v" +
                               std::to_string(version);
      std::ofstream(path, std::ios::binary)
          .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    });
  }
}

}  // namespace
}  // namespace sluice::kafka
