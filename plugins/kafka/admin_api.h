// The kafka plugin's admin HTTP routes (docs/ADMIN.md): brokers, cluster
// health, topics, partitions, consumer groups with lag, cluster_config; and
// its run-time metrics (bytes per topic, consumer-group lag). Registered
// through the host API (sdk/admin.h) at configure; admin_http serves them.
#pragma once

#include "broker.h"

#include <sluice/sdk/admin.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace sluice::kafka {

void register_admin_routes(broker& b, sdk::admin_routes& routes);

// The consumer protocol's assignment (ConsumerProtocolAssignment): the
// partitions given to a member; nullopt when bytes do not decode.
std::optional<std::vector<std::pair<std::string, int32_t>>> decode_consumer_assignment(const std::vector<uint8_t>& bytes);

}  // namespace sluice::kafka
