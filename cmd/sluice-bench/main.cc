// sluice-bench: an OpenMessaging-Benchmark-style load generator on librdkafka:
// producers and consumers with a workload from flags or a YAML file, and a
// JSON result (produce acknowledgement and end-to-end latency percentiles,
// throughput, per second). See --help, and docs/PERFORMANCE.md for the
// standard workloads scripts/bench.sh runs with it.
#include "runner.h"
#include "workload.h"

#include <cstdio>
#include <exception>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

void print_summary(const nlohmann::json& r) {
  const auto lat = [](const nlohmann::json& l) {
    char buf[256];
    std::snprintf(buf, sizeof buf, "p50 %.0f  p99 %.0f  p99.9 %.0f  p99.99 %.0f  max %.0f us",
                  l.value("p50", 0.0), l.value("p99", 0.0), l.value("p99_9", 0.0), l.value("p99_99", 0.0),
                  l.value("max", 0.0));
    return std::string(buf);
  };
  if (r.contains("produce")) {
    const auto& p = r["produce"];
    std::fprintf(stderr, "sluice-bench: produced %.0f records/s, %.2f MB/s; ack latency %s\n",
                 p.value("records_per_sec", 0.0), p.value("mb_per_sec", 0.0), lat(p["ack_latency_us"]).c_str());
  }
  if (r.contains("consume")) {
    const auto& c = r["consume"];
    std::fprintf(stderr, "sluice-bench: consumed %.0f records/s, %.2f MB/s%s%s\n", c.value("records_per_sec", 0.0),
                 c.value("mb_per_sec", 0.0), c.contains("e2e_latency_us") ? "; end-to-end latency " : "",
                 c.contains("e2e_latency_us") ? lat(c["e2e_latency_us"]).c_str() : "");
  }
  if (r.contains("first_error"))
    std::fprintf(stderr, "sluice-bench: %llu failure(s), the first: %s\n",
                 static_cast<unsigned long long>(r.value("failures", 0ull)),
                 r["first_error"].get<std::string>().c_str());
}

}  // namespace

int main(int argc, char** argv) {
  sluice::bench::workload w;
  try {
    const std::vector<std::string> args(argv + 1, argv + argc);
    if (!sluice::bench::parse_command_line(w, args)) {
      std::fputs(sluice::bench::help_text().c_str(), stdout);
      return 0;
    }
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "sluice-bench: %s\n", e.what());
    return 2;
  }
  nlohmann::json result;
  try {
    result = sluice::bench::run_workload(w);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sluice-bench: %s\n", e.what());
    return 1;
  }
  print_summary(result);
  const std::string text = result.dump() + "\n";
  if (w.out.empty()) {
    std::fputs(text.c_str(), stdout);
  } else {
    std::ofstream f(w.out);
    f << text;
    if (!f) {
      std::fprintf(stderr, "sluice-bench: cannot write %s\n", w.out.c_str());
      return 1;
    }
  }
  return result.value("ok", false) ? 0 : 1;
}
