// PUT /v1/cluster_config bodies (sluice_kafka_admin_core): any JSON, or not
// JSON, gets a verdict; an accepted change applies and re-renders; and the
// consumer-protocol assignment decoder on the same bytes.
#include "cluster_config.h"
#include "consumer_protocol.h"

#include <cstdint>
#include <string_view>

using namespace sluice::kafka;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  const kafka_config base;
  const cluster_config_change c = validate_cluster_config_put(body, base, {{"num_partitions", "3"}});
  if (c.ok()) {
    const kafka_config eff = apply_cluster_config(base, c.upsert);
    (void)cluster_config_json(eff);
    // Every accepted value is canonical: validating it again gives the same.
    for (const auto& [k, v] : c.upsert) {
      const cluster_setting* s = find_cluster_setting(k);
      if (!s || setting_value(eff, *s) != v) __builtin_trap();
    }
  }
  (void)decode_consumer_assignment(std::vector<uint8_t>(data, data + size));
  return 0;
}
