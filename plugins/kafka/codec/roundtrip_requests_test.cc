// Every request type at every version (see message_checks.h); requests and
// responses are separate units so they compile in parallel.
#include <cstdlib>
#include <fstream>
#include <string>

#include "message_checks.h"

TEST(KafkaCodecRoundTrip, EveryRequest) { sluice::kafka::testing::check_every_message<false>(); }

namespace sluice::kafka {
namespace {

using testing::fill_random;
using testing::rng;

// With SLUICE_KAFKA_WRITE_CORPUS=<dir>, writes fuzz seeds in the fuzzer's
// input format (tests/fuzz/kafka_request_fuzz.cc): a request header followed
// by a body, for a handful of APIs and versions.
TEST(KafkaCodecRoundTrip, WriteFuzzCorpus) {
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
