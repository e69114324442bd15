#include "prometheus.h"

#include <sluice/sdk/runtime.h>

#include <map>
#include <vector>

namespace sluice::admin_http {
namespace {

std::string escape_help(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

// One registered metric, copied out of the borrowed view.
struct sample {
  std::string plugin, help, labels;  // labels: the text between the braces, or ""
  uint32_t kind = 0;
  int64_t value = 0, sum = 0;
  std::vector<uint64_t> buckets;
};

struct family {
  std::string name;  // with the sluice_ prefix
  std::vector<sample> members;
};

std::string with_labels(const std::string& labels, const std::string& extra = "") {
  if (labels.empty() && extra.empty()) return "";
  return "{" + labels + (!labels.empty() && !extra.empty() ? "," : "") + extra + "}";
}

void append_family(const family& f, std::string& out) {
  const sample& first = f.members.front();
  const char* type = first.kind == SLUICE_METRIC_COUNTER ? "counter"
                     : first.kind == SLUICE_METRIC_GAUGE ? "gauge"
                                                         : "histogram";
  out += "# HELP " + f.name + " " + escape_help(first.help) + " (plugin " + first.plugin + ")\n";
  out += "# TYPE " + f.name + " " + type + "\n";
  for (const sample& s : f.members) {
    if (s.kind != SLUICE_METRIC_HISTOGRAM) {
      out += f.name + with_labels(s.labels) + " " + std::to_string(s.value) + "\n";
      continue;
    }
    // Bucket 0 holds the value 0; bucket i holds [2^(i-1), 2^i); the last
    // also holds everything larger. Values are integers, so bucket i is
    // everything <= 2^i - 1: cumulative counts at those edges.
    uint64_t cumulative = 0;
    const size_t n = s.buckets.size();
    for (size_t i = 0; i + 1 < n; ++i) {
      cumulative += s.buckets[i];
      const uint64_t le = i == 0 ? 0 : (i >= 64 ? UINT64_MAX : (uint64_t{1} << i) - 1);
      out += f.name + "_bucket" + with_labels(s.labels, "le=\"" + std::to_string(le) + "\"") + " " +
             std::to_string(cumulative) + "\n";
    }
    if (n > 0) cumulative += s.buckets[n - 1];
    out += f.name + "_bucket" + with_labels(s.labels, "le=\"+Inf\"") + " " + std::to_string(cumulative) + "\n";
    out += f.name + "_sum" + with_labels(s.labels) + " " + std::to_string(s.sum) + "\n";
    out += f.name + "_count" + with_labels(s.labels) + " " + std::to_string(cumulative) + "\n";
  }
}

}  // namespace

std::string render_prometheus() {
  // Prometheus wants every line of a family together; the registry lists
  // metrics in registration order, so group them by base name first.
  std::vector<family> families;
  std::map<std::string, size_t> index;
  std::pair<std::vector<family>*, std::map<std::string, size_t>*> state{&families, &index};
  sdk::api().metric_visit(
      sdk::host(),
      [](void* user, const sluice_metric_view* v) {
        auto& [fams, idx] = *static_cast<std::pair<std::vector<family>*, std::map<std::string, size_t>*>*>(user);
        const std::string full = v->name ? v->name : "unnamed";
        const size_t brace = full.find('{');
        std::string base = full.substr(0, brace);
        if (base.rfind("sluice_", 0) != 0) base = "sluice_" + base;
        auto [it, added] = idx->emplace(base, fams->size());
        if (added) fams->push_back({base, {}});
        sample s;
        s.plugin = v->plugin ? v->plugin : "core";
        s.help = v->help ? v->help : "";
        s.labels = brace == std::string::npos ? "" : full.substr(brace + 1, full.size() - brace - 2);
        s.kind = v->kind;
        s.value = v->value;
        s.sum = v->sum;
        if (v->kind == SLUICE_METRIC_HISTOGRAM && v->buckets) s.buckets.assign(v->buckets, v->buckets + v->bucket_count);
        (*fams)[it->second].members.push_back(std::move(s));
      },
      &state);
  std::string out;
  for (const family& f : families) append_family(f, out);
  return out;
}

}  // namespace sluice::admin_http
