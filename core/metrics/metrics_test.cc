#include "core/metrics/metrics.h"

#include <gtest/gtest.h>

#include <map>
#include <thread>

namespace sluice::metrics {
namespace {

thread_local uint32_t t_shard = UINT32_MAX;

struct snapshot {
  int64_t value = 0, sum = 0;
  std::vector<uint64_t> buckets;
};
std::map<std::string, snapshot> read(const registry& r) {
  std::map<std::string, snapshot> out;
  r.visit([&](const sluice_metric_view& v) {
    snapshot s{v.value, v.sum, {}};
    if (v.buckets) s.buckets.assign(v.buckets, v.buckets + v.bucket_count);
    out[v.name] = s;
  });
  return out;
}

TEST(metrics, counters_sum_over_shards_and_outside_threads) {
  registry r(2, [] { return t_shard; });
  sluice_metric* c = r.add("test", SLUICE_METRIC_COUNTER, "requests_total", "Requests");
  ASSERT_NE(c, nullptr);
  r.freeze();
  std::thread a([&] { t_shard = 0; for (int i = 0; i < 1000; ++i) r.add_value(c, 1); });
  std::thread b([&] { t_shard = 1; for (int i = 0; i < 1000; ++i) r.add_value(c, 2); });
  a.join();
  b.join();
  r.add_value(c, 5);  // main thread: the shared slot
  EXPECT_EQ(read(r)["requests_total"].value, 3005);
}

TEST(metrics, callback_metrics_are_read_at_scrape_time) {
  registry r(2, [] { return t_shard; });
  std::atomic<int64_t> depth{4};
  ASSERT_TRUE(r.add_callback("core", SLUICE_METRIC_GAUGE, "queue_depth{shard=\"0\"}", "Depth", [&] { return depth.load(); }));
  EXPECT_FALSE(r.add_callback("core", SLUICE_METRIC_HISTOGRAM, "h", "no histograms", [] { return 0; }));
  EXPECT_FALSE(r.add_callback("core", SLUICE_METRIC_GAUGE, "queue_depth{shard=\"0\"}", "taken", [] { return 0; }));
  EXPECT_EQ(read(r)["queue_depth{shard=\"0\"}"].value, 4);
  depth = 9;
  EXPECT_EQ(read(r)["queue_depth{shard=\"0\"}"].value, 9);
}

TEST(metrics, gauges_are_each_shards_share) {
  registry r(2, [] { return t_shard; });
  sluice_metric* g = r.add("test", SLUICE_METRIC_GAUGE, "connections", "Open connections");
  std::thread([&] { t_shard = 0; r.set_value(g, 7); r.add_value(g, -2); }).join();
  std::thread([&] { t_shard = 1; r.set_value(g, 3); }).join();
  EXPECT_EQ(read(r)["connections"].value, 8);
}

TEST(metrics, histograms_bucket_by_power_of_two) {
  registry r(1, [] { return t_shard; });
  sluice_metric* h = r.add("test", SLUICE_METRIC_HISTOGRAM, "latency_us", "Latency");
  std::thread([&] {
    t_shard = 0;
    for (int64_t v : {0, 1, 3, 4, 1000}) r.add_value(h, v);
  }).join();
  snapshot s = read(r)["latency_us"];
  EXPECT_EQ(s.value, 5);
  EXPECT_EQ(s.sum, 1008);
  ASSERT_EQ(s.buckets.size(), histogram_buckets);
  EXPECT_EQ(s.buckets[0], 1u);   // 0
  EXPECT_EQ(s.buckets[1], 1u);   // 1
  EXPECT_EQ(s.buckets[2], 1u);   // 3 < 4
  EXPECT_EQ(s.buckets[3], 1u);   // 4 < 8
  EXPECT_EQ(s.buckets[10], 1u);  // 1000 < 1024
}

TEST(metrics, registration_rules) {
  registry r(1, [] { return t_shard; });
  EXPECT_NE(r.add("a", SLUICE_METRIC_COUNTER, "x_total", ""), nullptr);
  EXPECT_EQ(r.add("b", SLUICE_METRIC_COUNTER, "x_total", ""), nullptr);  // duplicate
  EXPECT_EQ(r.add("a", SLUICE_METRIC_COUNTER, "bad name", ""), nullptr);
  EXPECT_EQ(r.add("a", SLUICE_METRIC_COUNTER, "9lives", ""), nullptr);
  // Labelled members of one family: same owner and kind, distinct labels.
  EXPECT_NE(r.add("a", SLUICE_METRIC_COUNTER, "req_total{api=\"Produce\"}", ""), nullptr);
  EXPECT_NE(r.add("a", SLUICE_METRIC_COUNTER, "req_total{api=\"Fetch\",listener=\"p\"}", ""), nullptr);
  EXPECT_EQ(r.add("a", SLUICE_METRIC_COUNTER, "req_total{api=\"Produce\"}", ""), nullptr);  // duplicate
  EXPECT_EQ(r.add("b", SLUICE_METRIC_COUNTER, "req_total{api=\"Other\"}", ""), nullptr);    // another owner
  EXPECT_EQ(r.add("a", SLUICE_METRIC_GAUGE, "req_total{api=\"Gauge\"}", ""), nullptr);      // another kind
  EXPECT_EQ(r.add("a", SLUICE_METRIC_COUNTER, "req_total{api=Produce}", ""), nullptr);       // unquoted
  EXPECT_EQ(r.add("a", SLUICE_METRIC_COUNTER, "req_total{api=\"a\\b\"}", ""), nullptr);   // backslash
  EXPECT_EQ(r.add("a", SLUICE_METRIC_COUNTER, "req_total{}", ""), nullptr);
  EXPECT_EQ(r.add("a", SLUICE_METRIC_COUNTER, "req_total{9x=\"1\"}", ""), nullptr);
  r.freeze();
  EXPECT_EQ(r.add("a", SLUICE_METRIC_COUNTER, "late_total", ""), nullptr);
  EXPECT_EQ(r.size(), 3u);
}

}  // namespace
}  // namespace sluice::metrics
