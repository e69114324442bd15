// Metrics registry: counters, gauges and log2-bucketed histograms that
// plugins register during configure and update on their shards.
//
// Thread-safety: registration happens on the main thread before shards
// start (freeze() ends it). Each metric keeps one cell per shard, written
// only by that shard with relaxed atomics (no read-modify-write, no shared
// cache lines on the hot path), plus one cell shared by non-shard threads
// (atomic adds). visit() may run on any thread and sums the cells.
#pragma once

#include <sluice/abi/sluice_abi.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace sluice::metrics {

inline constexpr uint32_t histogram_buckets = 64;  // bucket 0: value 0; bucket i: [2^(i-1), 2^i)

class registry;

}  // namespace sluice::metrics

struct sluice_metric {
  sluice::metrics::registry* owner = nullptr;
  std::string plugin;
  std::string name;
  std::string help;
  sluice_metric_kind kind = SLUICE_METRIC_COUNTER;
  uint32_t index = 0;
};

namespace sluice::metrics {

class registry {
 public:
  // shard_of() returns the calling thread's shard or UINT32_MAX.
  registry(uint32_t shards, std::function<uint32_t()> shard_of);
  ~registry();

  // nullptr when the name is taken, the name is invalid, or after freeze().
  sluice_metric* add(const std::string& plugin, sluice_metric_kind kind, const std::string& name,
                     const std::string& help);
  // A metric whose value is read at scrape time (core-internal: the host's
  // own counters, e.g. the executor's loop statistics). fn runs on the
  // scraping thread and must only read atomics. false when the name is
  // taken or invalid, or after freeze().
  bool add_callback(const std::string& plugin, sluice_metric_kind kind, const std::string& name,
                    const std::string& help, std::function<int64_t()> fn);
  void freeze() noexcept { _frozen = true; }

  void add_value(sluice_metric* m, int64_t v) noexcept;
  void set_value(sluice_metric* m, int64_t v) noexcept;
  void visit(const std::function<void(const sluice_metric_view&)>& fn) const;
  size_t size() const noexcept { return _metrics.size(); }

 private:
  struct alignas(64) cell {
    std::atomic<int64_t> value{0};
    std::atomic<int64_t> sum{0};
    std::unique_ptr<std::atomic<uint64_t>[]> buckets;  // histograms only
  };
  cell& cell_for(sluice_metric* m) noexcept;

  uint32_t _shards;
  std::function<uint32_t()> _shard_of;
  bool _frozen = false;
  std::vector<std::unique_ptr<sluice_metric>> _metrics;
  // _cells[metric][slot]; slot == _shards is the non-shard slot.
  std::vector<std::unique_ptr<cell[]>> _cells;
  std::vector<std::function<int64_t()>> _callbacks;  // by metric index; empty for pushed metrics
};

}  // namespace sluice::metrics
