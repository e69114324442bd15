#include "prometheus.h"

#include <sluice/sdk/runtime.h>

#include <cinttypes>
#include <cstdio>

namespace sluice::admin_http {
namespace {

std::string escape_help(const char* s) {
  std::string out;
  for (; s && *s; ++s) {
    if (*s == '\\') out += "\\\\";
    else if (*s == '\n') out += "\\n";
    else out += *s;
  }
  return out;
}

std::string number(int64_t v) { return std::to_string(v); }
std::string number(uint64_t v) { return std::to_string(v); }

}  // namespace

void append_prometheus(const sluice_metric_view& m, std::string& out) {
  std::string name = m.name ? m.name : "unnamed";
  if (name.rfind("sluice_", 0) != 0) name = "sluice_" + name;
  const char* type = m.kind == SLUICE_METRIC_COUNTER ? "counter" : m.kind == SLUICE_METRIC_GAUGE ? "gauge" : "histogram";
  out += "# HELP " + name + " " + escape_help(m.help) + " (plugin " + (m.plugin ? m.plugin : "core") + ")\n";
  out += "# TYPE " + name + " " + type + "\n";
  if (m.kind != SLUICE_METRIC_HISTOGRAM) {
    out += name + " " + number(m.value) + "\n";
    return;
  }
  // Bucket 0 holds the value 0; bucket i holds [2^(i-1), 2^i); the last
  // also holds everything larger. Cumulative counts up to each upper edge:
  // values are integers, so bucket i is <= 2^i - 1.
  uint64_t cumulative = 0;
  const uint32_t n = m.bucket_count;
  for (uint32_t i = 0; i + 1 < n; ++i) {
    cumulative += m.buckets ? m.buckets[i] : 0;
    const uint64_t le = i == 0 ? 0 : (i >= 64 ? UINT64_MAX : (uint64_t{1} << i) - 1);
    out += name + "_bucket{le=\"" + number(le) + "\"} " + number(cumulative) + "\n";
  }
  if (n > 0 && m.buckets) cumulative += m.buckets[n - 1];
  out += name + "_bucket{le=\"+Inf\"} " + number(cumulative) + "\n";
  out += name + "_sum " + number(m.sum) + "\n";
  out += name + "_count " + number(cumulative) + "\n";
}

std::string render_prometheus() {
  std::string out;
  sdk::api().metric_visit(
      sdk::host(), [](void* user, const sluice_metric_view* v) { append_prometheus(*v, *static_cast<std::string*>(user)); },
      &out);
  return out;
}

}  // namespace sluice::admin_http
