// A latency histogram for the benchmark tools: log-linear buckets
// (HdrHistogram-like). Values below 128 are exact; above, each power of two
// is split into 64 buckets, so a percentile is off by at most 1/64 (1.6%)
// of its value. One per shard, merged at the end. Not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace sluice::bench {

class latency_histogram {
 public:
  static constexpr uint32_t sub_bits = 6;
  static constexpr uint64_t sub_count = uint64_t{1} << sub_bits;  // 64
  static constexpr uint64_t linear_limit = 2 * sub_count;          // 128: exact below
  static constexpr size_t bucket_count = linear_limit + (64 - (sub_bits + 1)) * sub_count;

  latency_histogram() : _buckets(bucket_count, 0) {}

  void record(uint64_t v) noexcept {
    ++_buckets[index_of(v)];
    ++_count;
    _sum += v;
    if (v > _max) _max = v;
  }
  void merge(const latency_histogram& o) noexcept {
    for (size_t i = 0; i < bucket_count; ++i) _buckets[i] += o._buckets[i];
    _count += o._count;
    _sum += o._sum;
    if (o._max > _max) _max = o._max;
  }
  uint64_t count() const noexcept { return _count; }
  uint64_t max() const noexcept { return _max; }
  double mean() const noexcept { return _count ? static_cast<double>(_sum) / static_cast<double>(_count) : 0.0; }

  // The value at quantile q (0 < q <= 1): the midpoint of the bucket holding
  // the ceil(q * count)-th smallest value, capped at the maximum seen.
  uint64_t quantile(double q) const noexcept {
    if (_count == 0) return 0;
    uint64_t rank = static_cast<uint64_t>(q * static_cast<double>(_count) + 0.999999);
    if (rank < 1) rank = 1;
    if (rank > _count) rank = _count;
    uint64_t seen = 0;
    for (size_t i = 0; i < bucket_count; ++i) {
      seen += _buckets[i];
      if (seen >= rank) {
        const uint64_t v = value_of(i);
        return v < _max ? v : _max;
      }
    }
    return _max;
  }

  static size_t index_of(uint64_t v) noexcept {
    if (v < linear_limit) return static_cast<size_t>(v);
    const uint32_t e = 63u - static_cast<uint32_t>(__builtin_clzll(v));  // >= sub_bits + 1
    const uint32_t shift = e - sub_bits;
    return static_cast<size_t>(linear_limit + (e - sub_bits - 1) * sub_count + ((v >> shift) - sub_count));
  }
  static uint64_t value_of(size_t idx) noexcept {
    if (idx < linear_limit) return idx;
    const uint64_t k = idx - linear_limit;
    const uint32_t e = static_cast<uint32_t>(k / sub_count) + sub_bits + 1;
    const uint32_t shift = e - sub_bits;
    const uint64_t lower = (sub_count + k % sub_count) << shift;
    return lower + ((uint64_t{1} << shift) >> 1);
  }

 private:
  std::vector<uint64_t> _buckets;
  uint64_t _count = 0;
  uint64_t _sum = 0;
  uint64_t _max = 0;
};

}  // namespace sluice::bench
