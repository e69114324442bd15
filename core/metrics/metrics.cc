#include "core/metrics/metrics.h"

#include <sluice/sdk/assert.h>

#include <bit>

namespace sluice::metrics {

namespace {
bool valid_base(const std::string& n) {
  // Prometheus metric name characters.
  if (n.empty() || (n[0] >= '0' && n[0] <= '9')) return false;
  for (char c : n)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == ':'))
      return false;
  return true;
}
// NAME or NAME{label="value",...}: label names like metric names (no ':'),
// values without quotes, backslashes or newlines.
bool valid_name(const std::string& n) {
  const size_t brace = n.find('{');
  if (brace == std::string::npos) return valid_base(n);
  if (!valid_base(n.substr(0, brace)) || n.back() != '}' || brace + 2 >= n.size()) return false;
  size_t at = brace + 1;
  while (at < n.size() - 1) {
    const size_t eq = n.find('=', at);
    if (eq == std::string::npos || eq == at || eq + 1 >= n.size() || n[eq + 1] != '"') return false;
    const std::string label = n.substr(at, eq - at);
    if (!valid_base(label) || label.find(':') != std::string::npos) return false;
    const size_t close = n.find('"', eq + 2);
    if (close == std::string::npos) return false;
    for (size_t i = eq + 2; i < close; ++i)
      if (n[i] == '\\' || n[i] == '\n') return false;
    at = close + 1;
    if (at < n.size() - 1) {
      if (n[at] != ',') return false;
      ++at;
    }
  }
  return at == n.size() - 1;
}
std::string base_of(const std::string& n) { return n.substr(0, n.find('{')); }
uint32_t bucket_of(uint64_t v) noexcept {
  const uint32_t b = v == 0 ? 0 : static_cast<uint32_t>(std::bit_width(v));
  return b < histogram_buckets ? b : histogram_buckets - 1;
}
}  // namespace

registry::registry(uint32_t shards, std::function<uint32_t()> shard_of)
    : _shards(shards), _shard_of(std::move(shard_of)) {
  SLUICE_ASSERT(_shards > 0);
}

registry::~registry() = default;

sluice_metric* registry::add(const std::string& plugin, sluice_metric_kind kind, const std::string& name,
                             const std::string& help) {
  if (_frozen || !valid_name(name) || kind > SLUICE_METRIC_HISTOGRAM) return nullptr;
  // A family (same base name, different labels) has one owner and one kind.
  for (const auto& m : _metrics)
    if (m->name == name || (base_of(m->name) == base_of(name) && (m->plugin != plugin || m->kind != kind)))
      return nullptr;
  auto m = std::make_unique<sluice_metric>();
  m->owner = this;
  m->plugin = plugin;
  m->name = name;
  m->help = help;
  m->kind = kind;
  m->index = static_cast<uint32_t>(_metrics.size());
  auto cells = std::make_unique<cell[]>(_shards + 1);
  if (kind == SLUICE_METRIC_HISTOGRAM)
    for (uint32_t i = 0; i <= _shards; ++i)
      cells[i].buckets = std::make_unique<std::atomic<uint64_t>[]>(histogram_buckets);
  _cells.push_back(std::move(cells));
  _callbacks.emplace_back();
  _metrics.push_back(std::move(m));
  return _metrics.back().get();
}

bool registry::add_callback(const std::string& plugin, sluice_metric_kind kind, const std::string& name,
                            const std::string& help, std::function<int64_t()> fn) {
  if (kind == SLUICE_METRIC_HISTOGRAM || !fn) return false;
  if (add(plugin, kind, name, help) == nullptr) return false;
  _callbacks.back() = std::move(fn);
  return true;
}

registry::cell& registry::cell_for(sluice_metric* m) noexcept {
  SLUICE_ASSERT(m != nullptr && m->owner == this && m->index < _cells.size());
  const uint32_t s = _shard_of();
  return _cells[m->index][s < _shards ? s : _shards];
}

void registry::add_value(sluice_metric* m, int64_t v) noexcept {
  cell& c = cell_for(m);
  const bool shared = _shard_of() >= _shards;
  auto bump = [shared](std::atomic<int64_t>& a, int64_t d) {
    if (shared) a.fetch_add(d, std::memory_order_relaxed);
    else a.store(a.load(std::memory_order_relaxed) + d, std::memory_order_relaxed);  // single writer
  };
  if (m->kind == SLUICE_METRIC_HISTOGRAM) {
    const uint64_t value = v < 0 ? 0 : static_cast<uint64_t>(v);
    auto& b = c.buckets[bucket_of(value)];
    if (shared) b.fetch_add(1, std::memory_order_relaxed);
    else b.store(b.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    bump(c.value, 1);
    bump(c.sum, static_cast<int64_t>(value));
    return;
  }
  SLUICE_ASSERT_MSG(m->kind == SLUICE_METRIC_GAUGE || v >= 0, "counters only go up");
  bump(c.value, v);
}

void registry::set_value(sluice_metric* m, int64_t v) noexcept {
  SLUICE_ASSERT_MSG(m->kind == SLUICE_METRIC_GAUGE, "metric_set is for gauges");
  // A gauge is the sum of what each shard set: a shard sets its own share.
  cell_for(m).value.store(v, std::memory_order_relaxed);
}

void registry::visit(const std::function<void(const sluice_metric_view&)>& fn) const {
  std::vector<uint64_t> buckets(histogram_buckets);
  for (size_t i = 0; i < _metrics.size(); ++i) {
    const sluice_metric& m = *_metrics[i];
    sluice_metric_view v{};
    v.plugin = m.plugin.c_str();
    v.name = m.name.c_str();
    v.help = m.help.c_str();
    v.kind = m.kind;
    std::fill(buckets.begin(), buckets.end(), 0);
    if (_callbacks[i]) {
      v.value = _callbacks[i]();
      fn(v);
      continue;
    }
    for (uint32_t s = 0; s <= _shards; ++s) {
      const cell& c = _cells[i][s];
      v.value += c.value.load(std::memory_order_relaxed);
      v.sum += c.sum.load(std::memory_order_relaxed);
      if (c.buckets)
        for (uint32_t b = 0; b < histogram_buckets; ++b) buckets[b] += c.buckets[b].load(std::memory_order_relaxed);
    }
    if (m.kind == SLUICE_METRIC_HISTOGRAM) {
      v.bucket_count = histogram_buckets;
      v.buckets = buckets.data();
    }
    fn(v);
  }
}

}  // namespace sluice::metrics
