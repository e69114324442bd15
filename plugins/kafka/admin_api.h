// The kafka plugin's admin HTTP routes (docs/ADMIN.md): brokers, cluster
// health, topics, partitions, consumer groups with lag, cluster_config; and
// its run-time metrics (bytes per topic, consumer-group lag). Registered
// through the host API (sdk/admin.h) at configure; admin_http serves them.
#pragma once

#include "broker.h"

#include <sluice/sdk/admin.h>


namespace sluice::kafka {

void register_admin_routes(broker& b, sdk::admin_routes& routes);

}  // namespace sluice::kafka
