// Runs one workload against a Kafka cluster (or librdkafka's mock cluster)
// and returns its result as JSON (the format is described in
// docs/PERFORMANCE.md). Progress lines go to stderr.
//
// Threads: one per producer and one per consumer, each with its own
// librdkafka handle and its own statistics (stats.h), merged after they
// stopped; the calling thread creates topics, starts and stops them, and
// samples the process's CPU time at the edges of the measured window.
#pragma once

#include "workload.h"

#include <nlohmann/json.hpp>

namespace sluice::bench {

// The result; "ok" is false when the run measured nothing or a record failed.
// Throws std::runtime_error when it cannot start (bad librdkafka setting,
// topics that cannot be created, brokers that cannot be reached).
nlohmann::json run_workload(const workload& w);

// The workload's settings as JSON (copied into the result).
nlohmann::json workload_json(const workload& w);

}  // namespace sluice::bench
