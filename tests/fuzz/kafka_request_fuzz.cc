// libFuzzer target: the Kafka codec on arbitrary request frames (the bytes
// after the 4-byte size prefix: a request header, then the body of whatever
// api key and version the header names). Whatever decodes must re-encode to
// something that decodes to an equal message, and re-encode to the same
// bytes again.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "sluice/kafka/msg/all.h"

namespace {

using namespace sluice::kafka;

[[noreturn]] void die(const char* what, const msg::request_header& h) {
  std::fprintf(stderr, "kafka_request_fuzz: %s (api %d v%d)\n", what, h.api_key, h.api_version);
  std::abort();
}

template <class T>
void check_body(const msg::request_header& h, reader& r) {
  T m;
  if (!m.decode(r, h.api_version)) {
    if (r.ok() || r.error_message().empty()) die("decode failed without an error", h);
    return;
  }
  if (!r.ok()) die("decode succeeded with an error set", h);

  const int16_t hv = msg::request_header_version(h.api_key, h.api_version);
  writer w1;
  h.encode(w1, hv);
  m.encode(w1, h.api_version);
  const std::vector<uint8_t> b1 = w1.flatten();
  if (b1.size() != w1.size()) die("writer size mismatch", h);

  reader r2(b1);
  msg::request_header h2;
  T m2;
  if (!msg::decode_request_header(r2, h2)) die("re-encoded header does not decode", h);
  if (!m2.decode(r2, h2.api_version)) die("re-encoded body does not decode", h);
  if (!r2.at_end()) die("re-encoded frame has trailing bytes", h);
  if (!(h2 == h)) die("header differs after a round trip", h);
  // A float64 NaN is not equal to itself; such a message is compared through
  // its bytes below only.
  if (!(m2 == m) && (m2 == m2)) die("body differs after a round trip", h);

  writer w2;
  h2.encode(w2, hv);
  m2.encode(w2, h2.api_version);
  if (w2.flatten() != b1) die("second encoding differs", h);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  reader r(data, size);
  msg::request_header h;
  if (!msg::decode_request_header(r, h)) {
    if (r.ok()) die("header decode failed without an error", h);
    return 0;
  }
  // The type-erased entry point must agree with the typed one.
  reader generic(r.remaining_bytes());
  const bool generic_ok = msg::decode_request_body(h.api_key, h.api_version, generic);

  reader typed(r.remaining_bytes());
  const bool known = msg::visit_request_type(h.api_key, [&](auto t) {
    check_body<typename decltype(t)::type>(h, typed);
  });
  if (!known) die("header decoded for an unknown api key", h);
  if (generic_ok != typed.ok()) die("decode_request_body disagrees with the typed decode", h);
  return 0;
}
