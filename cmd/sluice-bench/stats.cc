#include "stats.h"

#include <algorithm>
#include <cmath>

namespace sluice::bench {

namespace {

double us(uint64_t ns) { return std::round(static_cast<double>(ns) / 10.0) / 100.0; }  // 2 decimals

}  // namespace

latency_summary summarize(const latency_histogram& h) {
  latency_summary s;
  s.count = h.count();
  if (s.count == 0) return s;
  s.mean_us = std::round(h.mean() / 10.0) / 100.0;
  s.p50_us = us(h.quantile(0.50));
  s.p99_us = us(h.quantile(0.99));
  s.p999_us = us(h.quantile(0.999));
  s.p9999_us = us(h.quantile(0.9999));
  s.max_us = us(h.max());
  return s;
}

nlohmann::json to_json(const latency_summary& s) {
  return {{"count", s.count},     {"mean", s.mean_us},     {"p50", s.p50_us}, {"p99", s.p99_us},
          {"p99_9", s.p999_us},   {"p99_99", s.p9999_us},  {"max", s.max_us}};
}

series::series(uint32_t seconds) : _per_second(seconds), _records(seconds, 0), _bytes(seconds, 0) {}

void series::record_latency(int64_t second, uint64_t latency_ns) {
  if (second < 0 || second >= static_cast<int64_t>(_per_second.size())) return;
  auto& h = _per_second[static_cast<size_t>(second)];
  if (!h) h = std::make_unique<latency_histogram>();
  h->record(latency_ns);
  _total.record(latency_ns);
}

void series::count(int64_t second, uint64_t bytes) {
  if (second < 0 || second >= static_cast<int64_t>(_records.size())) return;
  ++_records[static_cast<size_t>(second)];
  _bytes[static_cast<size_t>(second)] += bytes;
  ++_record_sum;
  _byte_sum += bytes;
}

void series::merge(const series& o) {
  const size_t n = std::min(_records.size(), o._records.size());
  _total.merge(o._total);
  for (size_t i = 0; i < n; ++i) {
    _records[i] += o._records[i];
    _bytes[i] += o._bytes[i];
    if (o._per_second[i]) {
      if (!_per_second[i]) _per_second[i] = std::make_unique<latency_histogram>();
      _per_second[i]->merge(*o._per_second[i]);
    }
  }
  _record_sum += o._record_sum;
  _byte_sum += o._byte_sum;
}

nlohmann::json throughput_json(const series& s, double seconds, uint32_t full_seconds) {
  const double secs = seconds > 0 ? seconds : 1e-9;
  uint64_t lo = UINT64_MAX, hi = 0;
  double lo_b = 0, hi_b = 0;
  for (uint32_t i = 0; i < std::min(full_seconds, s.seconds()); ++i) {
    if (s.records_in(i) < lo) {
      lo = s.records_in(i);
      lo_b = static_cast<double>(s.bytes_in(i));
    }
    if (s.records_in(i) >= hi) {
      hi = s.records_in(i);
      hi_b = static_cast<double>(s.bytes_in(i));
    }
  }
  if (lo == UINT64_MAX) lo = 0;
  const auto r2 = [](double v) { return std::round(v * 100.0) / 100.0; };
  return {{"records", s.records()},
          {"bytes", s.bytes()},
          {"seconds", r2(seconds)},
          {"records_per_sec", r2(static_cast<double>(s.records()) / secs)},
          {"mb_per_sec", r2(static_cast<double>(s.bytes()) / secs / 1e6)},
          {"records_per_sec_min", lo},
          {"records_per_sec_max", hi},
          {"mb_per_sec_min", r2(lo_b / 1e6)},
          {"mb_per_sec_max", r2(hi_b / 1e6)}};
}

nlohmann::json per_second_json(const series& s, uint32_t full_seconds) {
  nlohmann::json out = nlohmann::json::array();
  for (uint32_t i = 0; i < std::min(full_seconds, s.seconds()); ++i) {
    nlohmann::json e = {{"t", i + 1},
                        {"records", s.records_in(i)},
                        {"mb", std::round(static_cast<double>(s.bytes_in(i)) / 1e4) / 100.0}};
    if (const latency_histogram* h = s.latency_in(i)) e["latency_us"] = to_json(summarize(*h));
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace sluice::bench
