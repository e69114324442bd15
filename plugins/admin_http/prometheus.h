// Prometheus text exposition (format 0.0.4) of the core's metrics registry.
// Counters and gauges map one to one; the registry's log2-bucketed
// histograms become Prometheus histograms with cumulative `le` buckets at
// the bucket edges 0, 1, 3, 7, 15, ... (2^i - 1) and +Inf.
#pragma once

#include <string>

namespace sluice::admin_http {

// Every registered metric, summed over shards (host metric_visit), grouped
// into families by base name: NAME{label="value"} registrations of one
// family share its HELP and TYPE lines. Names get the prefix "sluice_"
// unless they have it.
std::string render_prometheus();

}  // namespace sluice::admin_http
