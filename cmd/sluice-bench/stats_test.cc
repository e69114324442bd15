#include "stats.h"

#include <gtest/gtest.h>

#include <cstdint>

namespace sluice::bench {
namespace {

TEST(latency_histogram, exact_below_128_and_within_1_6_percent_above) {
  latency_histogram h;
  for (uint64_t v = 1; v <= 100; ++v) h.record(v);
  EXPECT_EQ(h.count(), 100u);
  EXPECT_EQ(h.quantile(0.5), 50u);
  EXPECT_EQ(h.quantile(0.99), 99u);
  EXPECT_EQ(h.quantile(1.0), 100u);
  EXPECT_EQ(h.max(), 100u);
  EXPECT_DOUBLE_EQ(h.mean(), 50.5);

  for (uint64_t v : {uint64_t{1000}, uint64_t{123456}, uint64_t{987654321}, uint64_t{1} << 40}) {
    const uint64_t back = latency_histogram::value_of(latency_histogram::index_of(v));
    EXPECT_NEAR(static_cast<double>(back), static_cast<double>(v), static_cast<double>(v) / 64.0) << v;
  }
  // Bucket indices grow with the value and stay in range.
  size_t prev = 0;
  for (uint64_t v = 1; v < (uint64_t{1} << 50); v = v * 3 / 2 + 1) {
    const size_t i = latency_histogram::index_of(v);
    EXPECT_GE(i, prev);
    EXPECT_LT(i, latency_histogram::bucket_count);
    prev = i;
  }
}

TEST(latency_histogram, tail_quantiles_and_merge) {
  latency_histogram a, b;
  for (int i = 0; i < 9990; ++i) a.record(100'000);    // 100 us
  for (int i = 0; i < 9; ++i) b.record(10'000'000);    // 10 ms
  b.record(50'000'000);                                // 50 ms
  a.merge(b);
  EXPECT_EQ(a.count(), 10000u);
  EXPECT_NEAR(a.quantile(0.99), 100'000, 1600);
  EXPECT_NEAR(a.quantile(0.999), 100'000, 1600);
  EXPECT_NEAR(a.quantile(0.9995), 10'000'000, 160'000);
  EXPECT_NEAR(a.quantile(0.9999), 10'000'000, 160'000);  // the 9,999th of 10,000
  EXPECT_EQ(a.quantile(1.0), 50'000'000u);
  EXPECT_EQ(a.max(), 50'000'000u);
}

TEST(series, counts_per_second_and_ignores_events_outside_the_window) {
  series s(3);
  s.count(0, 100);
  s.count(0, 100);
  s.count(2, 50);
  s.count(-1, 1000);  // warm-up
  s.count(3, 1000);   // after the end
  s.record_latency(0, 2'000'000);
  s.record_latency(2, 4'000'000);
  s.record_latency(5, 1);
  EXPECT_EQ(s.records(), 3u);
  EXPECT_EQ(s.bytes(), 250u);
  EXPECT_EQ(s.records_in(0), 2u);
  EXPECT_EQ(s.records_in(1), 0u);
  EXPECT_EQ(s.latency().count(), 2u);
  EXPECT_EQ(s.latency_in(1), nullptr);
  ASSERT_NE(s.latency_in(2), nullptr);

  series t(3);
  t.count(1, 10);
  t.record_latency(1, 3'000'000);
  s.merge(t);
  EXPECT_EQ(s.records(), 4u);
  EXPECT_EQ(s.records_in(1), 1u);
  EXPECT_EQ(s.latency().count(), 3u);
  ASSERT_NE(s.latency_in(1), nullptr);
}

TEST(series, json_summaries_in_microseconds) {
  series s(2);
  for (int i = 0; i < 1000; ++i) {
    s.count(i < 600 ? 0 : 1, 1000);
    s.record_latency(0, 100'000);
  }
  const auto sum = summarize(s.latency());
  EXPECT_EQ(sum.count, 1000u);
  EXPECT_NEAR(sum.p50_us, 100.0, 1.6);
  EXPECT_NEAR(sum.max_us, 100.0, 0.01);

  const auto tp = throughput_json(s, 2.0, 2);
  EXPECT_EQ(tp["records"], 1000);
  EXPECT_DOUBLE_EQ(tp["records_per_sec"].get<double>(), 500.0);
  EXPECT_DOUBLE_EQ(tp["mb_per_sec"].get<double>(), 0.5);
  EXPECT_EQ(tp["records_per_sec_min"], 400);
  EXPECT_EQ(tp["records_per_sec_max"], 600);

  const auto ps = per_second_json(s, 2);
  ASSERT_EQ(ps.size(), 2u);
  EXPECT_EQ(ps[0]["t"], 1);
  EXPECT_EQ(ps[0]["records"], 600);
  EXPECT_TRUE(ps[0].contains("latency_us"));
  EXPECT_FALSE(ps[1].contains("latency_us"));
  EXPECT_NEAR(ps[0]["latency_us"]["p99_99"].get<double>(), 100.0, 1.6);
}

}  // namespace
}  // namespace sluice::bench
