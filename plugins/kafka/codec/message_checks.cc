#include "message_checks.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace sluice::kafka::testing {

std::vector<uint8_t> encode(const message_ops& ops, const void* m, int16_t version) {
  writer w;
  ops.encode(m, w, version);
  std::vector<uint8_t> out = w.flatten();
  EXPECT_EQ(out.size(), w.size());
  return out;
}

std::vector<uint8_t> round_trip(const message_ops& ops, int16_t version, uint64_t seed,
                                fill_options opt) {
  const auto m = ops.create();
  rng g(seed);
  ops.fill(m.get(), version, g, opt);
  const std::vector<uint8_t> bytes = encode(ops, m.get(), version);
  reader r(bytes);
  const auto d = ops.create();
  const bool ok = ops.decode(d.get(), r, version);
  EXPECT_TRUE(ok) << r.error_message();
  if (!ok) return bytes;
  EXPECT_TRUE(r.at_end()) << ops.type_name << " v" << version << ": " << r.remaining()
                          << " bytes left";
  EXPECT_TRUE(ops.equal(d.get(), m.get())) << ops.type_name << " v" << version << " seed " << seed;
  EXPECT_EQ(encode(ops, d.get(), version), bytes) << ops.type_name << " v" << version;
  return bytes;
}

namespace {

// Every strict prefix of a valid encoding must fail cleanly: no message ends
// with an optional part.
void check_truncation(const message_ops& ops, int16_t version, uint64_t seed) {
  const std::vector<uint8_t> bytes = round_trip(ops, version, seed);
  const auto d = ops.create();
  for (size_t len = 0; len < bytes.size(); ++len) {
    reader r(bytes.data(), len);
    ASSERT_FALSE(ops.decode(d.get(), r, version)) << ops.type_name << " v" << version << " len " << len;
    ASSERT_FALSE(r.ok());
    ASSERT_FALSE(r.error_message().empty());
  }
}

// Appends unknown tags to the top-level tagged-field section of a flexible
// encoding whose tagged fields are all default (so the section is the single
// final 0 byte); the decoder must skip them, and reject a size that runs past
// the end.
void check_unknown_tags(const message_ops& ops, int16_t version) {
  const auto m = ops.create();
  rng g(99);
  ops.fill(m.get(), version, g, {.tagged_defaults_sometimes = false, .nulls = true});
  std::vector<uint8_t> bytes = encode(ops, m.get(), version);
  ASSERT_FALSE(bytes.empty());
  ASSERT_EQ(bytes.back(), 0);
  bytes.back() = 2;                                                         // two tagged fields
  for (uint8_t b : {0x81, 0x01, 3, 0xaa, 0xbb, 0xcc}) bytes.push_back(b);  // tag 129, 3 bytes
  for (uint8_t b : {0x64, 0}) bytes.push_back(b);                          // tag 100, empty
  reader r(bytes);
  const auto d = ops.create();
  ASSERT_TRUE(ops.decode(d.get(), r, version)) << r.error_message();
  EXPECT_TRUE(r.at_end());
  EXPECT_TRUE(ops.equal(d.get(), m.get()));
  bytes.resize(bytes.size() - 2);
  bytes[bytes.size() - 4] = 10;  // tag 129 now claims 10 bytes; 3 remain
  reader r2(bytes);
  EXPECT_FALSE(ops.decode(d.get(), r2, version));
}

}  // namespace

void check_message(const message_ops& ops, uint64_t salt) {
  for (int16_t v = ops.min_version; v <= ops.max_version; ++v) {
    for (uint64_t seed = 1; seed <= 6; ++seed) round_trip(ops, v, salt * 1000 + seed * 100 + v);
    round_trip(ops, v, 77, {.tagged_defaults_sometimes = false, .nulls = false});
    if (::testing::Test::HasFailure()) return;
  }
  // Truncation on a sample: the lowest, first flexible and highest versions.
  for (int16_t v : {ops.min_version, std::min(ops.flexible_min_version, ops.max_version),
                    ops.max_version}) {
    check_truncation(ops, v, 4242 + salt);
  }
  if (ops.flexible_min_version <= ops.max_version) check_unknown_tags(ops, ops.max_version);
}

}  // namespace sluice::kafka::testing
