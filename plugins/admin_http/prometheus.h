// Prometheus text exposition (format 0.0.4) of the core's metrics registry.
// Counters and gauges map one to one; the registry's log2-bucketed
// histograms become Prometheus histograms with cumulative `le` buckets at
// the bucket edges 0, 1, 2, 4, 8, ... and +Inf.
#pragma once

#include <sluice/abi/sluice_abi.h>

#include <string>

namespace sluice::admin_http {

// Appends one metric family (HELP, TYPE and samples) to out. The metric's
// name gets the prefix "sluice_" unless it already has it.
void append_prometheus(const sluice_metric_view& m, std::string& out);

// Every registered metric, summed over shards (host metric_visit).
std::string render_prometheus();

}  // namespace sluice::admin_http
