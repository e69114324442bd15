// Per-message checks shared by the round-trip test units (one for requests,
// one for responses, so the heavy template instantiation compiles in
// parallel): random round trips at every version, truncation at every
// prefix, and skipping of unknown tagged fields.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <typeinfo>
#include <vector>

#include "fill_random.h"
#include "sluice/kafka/msg/all.h"
#include "sluice/kafka/wire.h"

namespace sluice::kafka::testing {

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

// Every strict prefix of a valid encoding must fail cleanly: no message ends
// with an optional part.
template <class T>
void check_truncation(int16_t version, uint64_t seed) {
  const std::vector<uint8_t> bytes = round_trip<T>(version, seed);
  for (size_t len = 0; len < bytes.size(); ++len) {
    reader r(bytes.data(), len);
    T d;
    ASSERT_FALSE(d.decode(r, version)) << typeid(T).name() << " v" << version << " len " << len;
    ASSERT_FALSE(r.ok());
    ASSERT_FALSE(r.error_message().empty());
  }
}

// Appends unknown tags to the top-level tagged-field section of a flexible
// encoding whose tagged fields are all default (so the section is the single
// final 0 byte); the decoder must skip them, and reject a size that runs past
// the end.
template <class T>
void check_unknown_tags(int16_t version) {
  T m;
  rng g(99);
  fill_random(m, version, g, {.tagged_defaults_sometimes = false, .nulls = true});
  std::vector<uint8_t> bytes = encode(m, version);
  ASSERT_FALSE(bytes.empty());
  ASSERT_EQ(bytes.back(), 0);
  bytes.back() = 2;                                                         // two tagged fields
  for (uint8_t b : {0x81, 0x01, 3, 0xaa, 0xbb, 0xcc}) bytes.push_back(b);  // tag 129, 3 bytes
  for (uint8_t b : {0x64, 0}) bytes.push_back(b);                          // tag 100, empty
  reader r(bytes);
  T d;
  ASSERT_TRUE(d.decode(r, version)) << r.error_message();
  EXPECT_TRUE(r.at_end());
  EXPECT_TRUE(d == m);
  bytes.resize(bytes.size() - 2);
  bytes[bytes.size() - 4] = 10;  // tag 129 now claims 10 bytes; 3 remain
  reader r2(bytes);
  EXPECT_FALSE(d.decode(r2, version));
}

// Everything above for one message type at every version.
template <class T>
void check_message(uint64_t salt) {
  for (int16_t v = T::min_version; v <= T::max_version; ++v) {
    for (uint64_t seed = 1; seed <= 6; ++seed) round_trip<T>(v, salt * 1000 + seed * 100 + v);
    round_trip<T>(v, 77, {.tagged_defaults_sometimes = false, .nulls = false});
    if (::testing::Test::HasFailure()) return;
  }
  // Truncation on a sample: the lowest, first flexible and highest versions.
  for (int16_t v : {T::min_version, std::min(T::flexible_min_version, T::max_version),
                    T::max_version}) {
    check_truncation<T>(v, 4242 + salt);
  }
  if (T::flexible_min_version <= T::max_version) check_unknown_tags<T>(T::max_version);
}

// check_message for the request (or response) type of every API.
template <bool responses>
void check_every_message() {
  size_t n = 0;
  for (const msg::api_info& a : msg::all_apis()) {
    auto check = [&](auto t) {
      using T = typename decltype(t)::type;
      SCOPED_TRACE(std::string(a.name) + (responses ? " response" : " request"));
      check_message<T>(static_cast<uint64_t>(a.api_key));
    };
    if constexpr (responses) {
      ASSERT_TRUE(msg::visit_response_type(a.api_key, check));
    } else {
      ASSERT_TRUE(msg::visit_request_type(a.api_key, check));
    }
    ++n;
  }
  EXPECT_GT(n, 80u);
}

}  // namespace sluice::kafka::testing
