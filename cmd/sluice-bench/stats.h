// What sluice-bench measures, per thread, merged at the end: a latency
// histogram over the measured window and one per second of it, and the
// records and bytes counted per second. Latencies are nanoseconds in,
// microseconds out. Not thread-safe: one series per producer or consumer
// thread, merged after the threads stopped.
#pragma once

#include "latency_histogram.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <vector>

namespace sluice::bench {

struct latency_summary {
  uint64_t count = 0;
  double mean_us = 0, p50_us = 0, p99_us = 0, p999_us = 0, p9999_us = 0, max_us = 0;
};

latency_summary summarize(const latency_histogram& h);
nlohmann::json to_json(const latency_summary& s);

class series {
 public:
  // `seconds` one-second slots; events outside [0, seconds) are not counted.
  explicit series(uint32_t seconds);

  // A latency observed for an event of second `second` (the send time's).
  void record_latency(int64_t second, uint64_t latency_ns);
  // One record of `bytes` counted in second `second` (the completion time's).
  void count(int64_t second, uint64_t bytes);

  void merge(const series& o);

  uint32_t seconds() const { return static_cast<uint32_t>(_records.size()); }
  const latency_histogram& latency() const { return _total; }
  uint64_t records() const { return _record_sum; }
  uint64_t bytes() const { return _byte_sum; }
  uint64_t records_in(uint32_t second) const { return _records[second]; }
  uint64_t bytes_in(uint32_t second) const { return _bytes[second]; }
  // The latency histogram of one second, or nullptr when it saw none.
  const latency_histogram* latency_in(uint32_t second) const { return _per_second[second].get(); }

 private:
  latency_histogram _total;
  std::vector<std::unique_ptr<latency_histogram>> _per_second;  // allocated on first use (30 KB each)
  std::vector<uint64_t> _records, _bytes;
  uint64_t _record_sum = 0, _byte_sum = 0;
};

// Throughput of a series over `seconds` of measured time, and its per-second
// minimum and maximum over the first `full_seconds` slots (whole seconds).
nlohmann::json throughput_json(const series& s, double seconds, uint32_t full_seconds);

// One entry per second: {"t": i + 1, "records", "mb", "latency_us": {...}}.
nlohmann::json per_second_json(const series& s, uint32_t full_seconds);

}  // namespace sluice::bench
