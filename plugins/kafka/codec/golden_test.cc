// Golden encodings written out by hand from the Kafka protocol guide's rules
// (proto/kafka/SCHEMA-FORMAT.md and the JSON specs): classic strings are an
// int16 length, classic arrays and bytes an int32 count/length (-1 = null),
// compact ones an unsigned varint of length + 1 (0 = null), and every
// structure in a flexible version ends with a tagged-field section
// (count, then tag / size / value, each an unsigned varint).
#include <gtest/gtest.h>

#include <cstring>
#include <type_traits>

#include "sluice/kafka/msg/api_versions.h"
#include "sluice/kafka/msg/headers.h"
#include "sluice/kafka/msg/metadata.h"
#include "sluice/kafka/msg/produce.h"

namespace sluice::kafka {
namespace {

using bytes = std::vector<uint8_t>;

bytes cat(std::initializer_list<bytes> parts) {
  bytes out;
  for (const bytes& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

template <class T>
bytes encode(const T& m, int16_t version) {
  writer w;
  m.encode(w, version);
  return w.flatten();
}

// Encodes header + body and compares with expected, then decodes both back
// (request headers through decode_request_header, which picks the version).
template <class H, class M>
void check_frame(const bytes& expected, const H& h, int16_t header_version, const M& m,
                 int16_t version) {
  writer w;
  h.encode(w, header_version);
  m.encode(w, version);
  EXPECT_EQ(w.flatten(), expected);

  reader r(expected);
  H dh;
  if constexpr (std::is_same_v<H, msg::request_header>) {
    ASSERT_TRUE(msg::decode_request_header(r, dh)) << r.error_message();
  } else {
    ASSERT_TRUE(dh.decode(r, header_version)) << r.error_message();
  }
  EXPECT_EQ(dh, h);
  M dm;
  ASSERT_TRUE(dm.decode(r, version)) << r.error_message();
  EXPECT_EQ(dm, m);
  EXPECT_TRUE(r.at_end());
}

// ApiVersionsRequest v3 is flexible, so it takes request header v2 -- whose
// client_id is still a classic (int16-length) string.
TEST(KafkaGolden, ApiVersionsRequestV3WithHeaderV2) {
  const bytes expected = cat({
      {0x00, 0x12},                          // api_key 18
      {0x00, 0x03},                          // api_version 3
      {0x00, 0x00, 0x00, 0x2a},              // correlation_id 42
      {0x00, 0x05, 'r', 'd', 'k', 'a', 'f'}, // client_id "rdkaf": int16 length, not compact
      {0x00},                                // header tagged fields: none
      {0x07, 's', 'l', 'u', 'i', 'c', 'e'},  // client_software_name: compact, 6 + 1
      {0x04, '0', '.', '1'},                 // client_software_version: compact, 3 + 1
      {0x00},                                // body tagged fields: none
  });
  ASSERT_EQ(msg::request_header_version(18, 3), 2);

  msg::request_header h;
  h.api_key = 18;
  h.api_version = 3;
  h.correlation_id = 42;
  h.client_id = "rdkaf";
  msg::api_versions_request req;
  req.client_software_name = "sluice";
  req.client_software_version = "0.1";
  check_frame(expected, h, 2, req, 3);
}

// MetadataRequest v1: not flexible; header v1; topics is a classic array,
// nullable from v1 (null = every topic).
TEST(KafkaGolden, MetadataRequestV1) {
  const bytes header = {
      0x00, 0x03,              // api_key 3
      0x00, 0x01,              // api_version 1
      0x00, 0x00, 0x00, 0x07,  // correlation_id 7
      0x00, 0x01, 'c',         // client_id "c"
  };
  const bytes body = {
      0x00, 0x00, 0x00, 0x02,        // topics: 2 elements
      0x00, 0x03, 'f', 'o', 'o',     // [0].name "foo"
      0x00, 0x02, 'b', 'a',          // [1].name "ba"
  };
  ASSERT_EQ(msg::request_header_version(3, 1), 1);
  msg::request_header h{.api_key = 3, .api_version = 1, .correlation_id = 7, .client_id = "c"};
  msg::metadata_request m;
  m.topics.emplace();
  m.topics->push_back({.name = "foo"});
  m.topics->push_back({.name = "ba"});
  check_frame(cat({header, body}), h, 1, m, 1);

  // Null topics: int32 -1.
  msg::metadata_request all;
  all.topics.reset();
  EXPECT_EQ(encode(all, 1), (bytes{0xff, 0xff, 0xff, 0xff}));
  // v0 has no nullable topics: null is written as an empty array.
  EXPECT_EQ(encode(all, 0), (bytes{0x00, 0x00, 0x00, 0x00}));
}

// ProduceRequest v3 with a records field: the record bytes are referenced by
// the writer, not copied, and decoding points into the input buffer.
TEST(KafkaGolden, ProduceRequestV3Records) {
  const uint8_t batch[] = {0xde, 0xad, 0xbe, 0xef, 0x01};
  const bytes expected = {
      0xff, 0xff,              // transactional_id: null (int16 -1)
      0xff, 0xff,              // acks -1
      0x00, 0x00, 0x03, 0xe8,  // timeout_ms 1000
      0x00, 0x00, 0x00, 0x01,  // topic_data: 1 element
      0x00, 0x01, 't',         //   name "t"
      0x00, 0x00, 0x00, 0x01,  //   partition_data: 1 element
      0x00, 0x00, 0x00, 0x02,  //     index 2
      0x00, 0x00, 0x00, 0x05,  //     records: int32 length 5
      0xde, 0xad, 0xbe, 0xef, 0x01,
  };
  msg::produce_request p;
  p.acks = -1;
  p.timeout_ms = 1000;
  auto& t = p.topic_data.emplace_back();
  t.name = "t";
  auto& part = t.partition_data.emplace_back();
  part.index = 2;
  part.records = records_view::of(batch, sizeof batch);

  writer w;
  const patch_position frame = w.reserve_int32();
  p.encode(w, 3);
  w.patch_int32(frame, static_cast<int32_t>(w.size() - 4));
  const bytes out = w.flatten();
  ASSERT_EQ(out.size(), 4 + expected.size());
  EXPECT_EQ(bytes(out.begin(), out.begin() + 4), (bytes{0x00, 0x00, 0x00, 0x20}));  // 32
  EXPECT_EQ(bytes(out.begin() + 4, out.end()), expected);
  // Two segments: the writer's own bytes, then the batch itself.
  const std::vector<iovec> iov = w.iovecs();
  ASSERT_EQ(iov.size(), 2u);
  EXPECT_EQ(iov[1].iov_base, static_cast<const void*>(batch));
  EXPECT_EQ(iov[1].iov_len, sizeof batch);
  EXPECT_EQ(iov[0].iov_len + iov[1].iov_len, w.size());

  reader r(expected);
  msg::produce_request d;
  ASSERT_TRUE(d.decode(r, 3)) << r.error_message();
  EXPECT_EQ(d, p);
  EXPECT_FALSE(d.transactional_id.has_value());
  const records_view& rv = d.topic_data[0].partition_data[0].records;
  EXPECT_FALSE(rv.is_null);
  EXPECT_EQ(rv.data, expected.data() + 27);  // a view into the input
  EXPECT_EQ(rv.size, 5u);

  // Null records: int32 -1.
  p.topic_data[0].partition_data[0].records = records_view{};
  const bytes null_rec = encode(p, 3);
  EXPECT_EQ(bytes(null_rec.end() - 4, null_rec.end()), (bytes{0xff, 0xff, 0xff, 0xff}));
}

// ApiVersionsResponse v3: flexible body, but always response header v0 (no
// tagged fields in the header), so clients can parse it before they know
// which versions the broker speaks. Tagged fields are written only when they
// differ from their default, in tag order.
TEST(KafkaGolden, ApiVersionsResponseV3) {
  const bytes expected = cat({
      {0x00, 0x00, 0x00, 0x07},  // response header v0: correlation_id 7
      {0x00, 0x00},              // error_code 0
      {0x03},                    // api_keys: compact, 2 + 1
      {0x00, 0x00, 0x00, 0x00, 0x00, 0x0b, 0x00},  // Produce 0-11, no tagged fields
      {0x00, 0x12, 0x00, 0x00, 0x00, 0x04, 0x00},  // ApiVersions 0-4, no tagged fields
      {0x00, 0x00, 0x00, 0x64},  // throttle_time_ms 100
      {0x02},                    // 2 tagged fields
      {0x00, 0x08},              // tag 0 (supported_features), 8 bytes:
      {0x02, 0x02, 'x', 0x00, 0x01, 0x00, 0x02, 0x00},  //  1 element: "x" 1-2, no tags
      {0x01, 0x08},              // tag 1 (finalized_features_epoch), 8 bytes:
      {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05},  //  5
      // tag 2 (finalized_features, empty) and tag 3 (zk_migration_ready,
      // false) hold their defaults and are omitted.
  });
  ASSERT_EQ(msg::response_header_version(18, 3), 0);
  msg::response_header h{.correlation_id = 7};
  msg::api_versions_response m;
  m.api_keys.push_back({.api_key = 0, .min_version = 0, .max_version = 11});
  m.api_keys.push_back({.api_key = 18, .min_version = 0, .max_version = 4});
  m.throttle_time_ms = 100;
  m.supported_features.push_back({.name = "x", .min_version = 1, .max_version = 2});
  m.finalized_features_epoch = 5;
  EXPECT_EQ(m.zk_migration_ready, false);
  check_frame(expected, h, 0, m, 3);

  // With every tagged field at its default the section is a single 0.
  msg::api_versions_response plain;
  EXPECT_EQ(plain.finalized_features_epoch, -1);
  EXPECT_EQ(encode(plain, 3), (bytes{0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00}));
}

// A flexible request header (v2) with a null client_id and an unknown tag.
TEST(KafkaGolden, RequestHeaderV2NullClientIdAndUnknownTag) {
  const bytes in = {
      0x00, 0x00, 0x00, 0x09,  // Produce v9: header v2
      0x00, 0x00, 0x00, 0x01,  // correlation_id 1
      0xff, 0xff,              // client_id null (int16 -1)
      0x01, 0x05, 0x02, 0xaa, 0xbb,  // 1 tagged field: tag 5, 2 bytes
  };
  reader r(in);
  msg::request_header h;
  ASSERT_TRUE(msg::decode_request_header(r, h)) << r.error_message();
  EXPECT_EQ(h.api_key, 0);
  EXPECT_EQ(h.api_version, 9);
  EXPECT_EQ(h.correlation_id, 1);
  EXPECT_FALSE(h.client_id.has_value());
  EXPECT_TRUE(r.at_end());
  // Re-encoding drops the unknown tag.
  EXPECT_EQ(encode(h, 2), (bytes{0, 0, 0, 9, 0, 0, 0, 1, 0xff, 0xff, 0x00}));
}

TEST(KafkaGolden, RequestHeaderUnknownKey) {
  const bytes in = {0x7f, 0x00, 0x00, 0x01, 0, 0, 0, 1, 0, 0};
  reader r(in);
  msg::request_header h;
  EXPECT_FALSE(msg::decode_request_header(r, h));
  EXPECT_EQ(r.error(), errc::unknown_api_key);
  EXPECT_EQ(h.api_key, 0x7f00);
  EXPECT_EQ(h.api_version, 1);
}

}  // namespace
}  // namespace sluice::kafka
