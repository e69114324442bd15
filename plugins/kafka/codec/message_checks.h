// Per-message checks for the round-trip test units: random round trips at
// every version, truncation at every prefix, skipping of unknown tagged
// fields. The checks themselves are compiled once (message_checks.cc) and
// work through a small table of per-type functions (message_ops), so each
// message type costs only a handful of tiny instantiations.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>
#include <typeinfo>
#include <vector>

#include "fill_random.h"
#include "sluice/kafka/msg/all.h"
#include "sluice/kafka/wire.h"

namespace sluice::kafka::testing {

struct message_ops {
  const char* type_name;
  int16_t min_version;
  int16_t max_version;
  int16_t flexible_min_version;
  std::shared_ptr<void> (*create)();
  void (*fill)(void* m, int16_t version, rng& g, fill_options opt);
  void (*encode)(const void* m, writer& w, int16_t version);
  bool (*decode)(void* m, reader& r, int16_t version);
  bool (*equal)(const void* a, const void* b);
};

template <class T>
const message_ops& ops_of() {
  static const message_ops ops{
      typeid(T).name(),
      T::min_version,
      T::max_version,
      T::flexible_min_version,
      [] { return std::shared_ptr<void>(std::make_shared<T>()); },
      [](void* m, int16_t v, rng& g, fill_options o) { fill_random(*static_cast<T*>(m), v, g, o); },
      [](const void* m, writer& w, int16_t v) { static_cast<const T*>(m)->encode(w, v); },
      [](void* m, reader& r, int16_t v) { return static_cast<T*>(m)->decode(r, v); },
      [](const void* a, const void* b) { return *static_cast<const T*>(a) == *static_cast<const T*>(b); },
  };
  return ops;
}

std::vector<uint8_t> encode(const message_ops& ops, const void* m, int16_t version);
// Fills, encodes, decodes, compares, re-encodes; returns the encoding.
std::vector<uint8_t> round_trip(const message_ops& ops, int16_t version, uint64_t seed,
                                fill_options opt = {});
// Everything for one message type at every version.
void check_message(const message_ops& ops, uint64_t salt);

template <class T>
std::vector<uint8_t> encode(const T& m, int16_t version) {
  return encode(ops_of<T>(), &m, version);
}

template <class T>
std::vector<uint8_t> round_trip(int16_t version, uint64_t seed, fill_options opt = {}) {
  return round_trip(ops_of<T>(), version, seed, opt);
}

// check_message for the request (or response) type of every API.
template <bool responses>
void check_every_message() {
  for (const msg::api_info& a : msg::all_apis()) {
    const message_ops* ops = nullptr;
    auto pick = [&](auto t) { ops = &ops_of<typename decltype(t)::type>(); };
    if constexpr (responses) {
      msg::visit_response_type(a.api_key, pick);
    } else {
      msg::visit_request_type(a.api_key, pick);
    }
    ASSERT_NE(ops, nullptr) << a.name;
    SCOPED_TRACE(std::string(a.name) + (responses ? " response" : " request"));
    check_message(*ops, static_cast<uint64_t>(a.api_key));
  }
}

}  // namespace sluice::kafka::testing
