// Serving one Kafka client connection (see connection.cc).
#pragma once

#include "broker.h"

namespace sluice::kafka {

sdk::task<void> serve_connection(broker& b, shard_state& sh, int32_t fd, size_t listener, sdk::gate::holder);

}  // namespace sluice::kafka
