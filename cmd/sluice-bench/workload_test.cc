#include "workload.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <stdexcept>
#include <string>
#include <unistd.h>
#include <vector>

namespace sluice::bench {
namespace {

workload parse(std::vector<std::string> args) {
  workload w;
  EXPECT_TRUE(parse_command_line(w, args));
  return w;
}

std::string parse_error(std::vector<std::string> args) {
  workload w;
  try {
    parse_command_line(w, args);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

TEST(workload, defaults_pass_the_checks) {
  workload w;
  EXPECT_NO_THROW(check(w));
  EXPECT_EQ(w.topic_names(), std::vector<std::string>{"sluice-bench"});
  EXPECT_EQ(w.acks, "all");
}

TEST(workload, flags_set_every_kind_of_value) {
  const workload w = parse({"--bootstrap", "a:1,b:2", "--record-size=1KiB", "--partitions", "16", "--rate", "5000",
                            "--acks", "1", "--linger-ms", "0", "--batch-size", "64K", "--compression", "lz4",
                            "--key-distribution", "zipf", "--key-space", "100", "--zipf-exponent", "1.2",
                            "--producers", "2", "--consumers", "3", "--consumer-group", "g", "--duration", "2.5",
                            "--warmup", "0", "--topics", "3", "--topic", "t", "--producer-config",
                            "queue.buffering.max.kbytes=1024", "--mock", "--produce-only", "--out", "r.json",
                            "--topic-config", "segment.bytes=1048576", "--watch-pid", "42"});
  EXPECT_EQ(w.bootstrap, "a:1,b:2");
  EXPECT_EQ(w.record_size, 1024u);
  EXPECT_EQ(w.partitions, 16u);
  EXPECT_EQ(w.rate, 5000u);
  EXPECT_EQ(w.acks, "1");
  EXPECT_EQ(w.linger_ms, 0u);
  EXPECT_EQ(w.batch_size, 65536u);
  EXPECT_EQ(w.compression, "lz4");
  EXPECT_EQ(w.keys, key_distribution::zipf);
  EXPECT_EQ(w.key_space, 100u);
  EXPECT_DOUBLE_EQ(w.zipf_exponent, 1.2);
  EXPECT_EQ(w.producers, 2u);
  EXPECT_EQ(w.consumers, 3u);
  EXPECT_EQ(w.consumer_group, "g");
  EXPECT_DOUBLE_EQ(w.duration, 2.5);
  EXPECT_DOUBLE_EQ(w.warmup, 0.0);
  EXPECT_TRUE(w.mock);
  EXPECT_EQ(w.out, "r.json");
  EXPECT_EQ(w.watch_pid, 42u);
  ASSERT_EQ(w.topic_config.size(), 1u);
  EXPECT_EQ(w.topic_config[0].first, "segment.bytes");
  ASSERT_EQ(w.producer_config.size(), 1u);
  EXPECT_EQ(w.producer_config[0].first, "queue.buffering.max.kbytes");
  EXPECT_EQ(w.producer_config[0].second, "1024");
  EXPECT_EQ(w.topic_names(), (std::vector<std::string>{"t-0", "t-1", "t-2"}));
}

TEST(workload, mode_shortcuts_and_acks_alias) {
  EXPECT_EQ(parse({"--produce-only"}).mode, run_mode::produce_only);
  EXPECT_EQ(parse({"--consume-only"}).mode, run_mode::consume_only);
  EXPECT_EQ(parse({"--create-only"}).mode, run_mode::create_only);
  EXPECT_EQ(parse({"--mode", "produce-consume"}).mode, run_mode::produce_consume);
  EXPECT_EQ(parse({"--acks", "-1"}).acks, "all");
  EXPECT_FALSE(parse({"--no-create-topics"}).create_topics);
  EXPECT_TRUE(parse({"--idempotence"}).idempotence);
  EXPECT_FALSE(parse({"--idempotence=false"}).idempotence);
}

TEST(workload, errors_name_the_setting) {
  EXPECT_NE(parse_error({"--record-size", "4"}).find("record_size"), std::string::npos);
  EXPECT_NE(parse_error({"--acks", "2"}).find("acks: expected one of"), std::string::npos);
  EXPECT_NE(parse_error({"--partitions", "-1"}).find("partitions"), std::string::npos);
  EXPECT_NE(parse_error({"--nope", "1"}).find("unknown setting"), std::string::npos);
  EXPECT_NE(parse_error({"--rate"}).find("needs a value"), std::string::npos);
  EXPECT_NE(parse_error({"positional"}).find("unexpected argument"), std::string::npos);
  EXPECT_NE(parse_error({"--batch-size", "12X"}).find("batch_size"), std::string::npos);
  EXPECT_NE(parse_error({"--duration", "abc"}).find("expected a number"), std::string::npos);
  EXPECT_NE(parse_error({"--idempotence", "--acks", "1"}).find("needs acks=all"), std::string::npos);
  EXPECT_NE(parse_error({"--produce-only", "--producers", "0"}).find("producers"), std::string::npos);
  EXPECT_NE(parse_error({"--consume-only", "--mock"}).find("mock"), std::string::npos);
  EXPECT_NE(parse_error({"--mock"}).find("--produce-only"), std::string::npos);
  EXPECT_NE(parse_error({"--producer-config", "=x"}).find("KEY=VALUE"), std::string::npos);
}

TEST(workload, help_lists_every_setting_with_its_default) {
  workload w;
  EXPECT_FALSE(parse_command_line(w, std::vector<std::string>{"--help"}));
  const std::string h = help_text();
  for (const char* flag : {"--bootstrap", "--record-size", "--key-distribution", "--rate", "--acks", "--linger-ms",
                           "--batch-size", "--compression", "--idempotence", "--consumer-group", "--warmup",
                           "--mock", "--produce-only", "--out"})
    EXPECT_NE(h.find(flag), std::string::npos) << flag;
  EXPECT_NE(h.find("(default 1024)"), std::string::npos);
}

TEST(workload, parse_bytes_suffixes) {
  EXPECT_EQ(parse_bytes("100", "x"), 100u);
  EXPECT_EQ(parse_bytes("1K", "x"), 1024u);
  EXPECT_EQ(parse_bytes("2MiB", "x"), 2u << 20);
  EXPECT_EQ(parse_bytes("5G", "x"), 5ull << 30);
  EXPECT_THROW(parse_bytes("", "x"), std::invalid_argument);
  EXPECT_THROW(parse_bytes("1T", "x"), std::invalid_argument);
}

TEST(workload, yaml_sets_the_same_names_and_flags_override_it) {
  workload w;
  apply_yaml(w,
             "name: tail\n"
             "record-size: 100\n"
             "partitions: 4\n"
             "rate: 1000\n"
             "key_distribution: round-robin\n"
             "producer_config:\n"
             "  queue.buffering.max.ms: 1\n"
             "consumer_config:\n"
             "  fetch.min.bytes: 1\n"
             "topic_config:\n"
             "  retention.bytes: -1\n");
  EXPECT_EQ(w.name, "tail");
  EXPECT_EQ(w.record_size, 100u);
  EXPECT_EQ(w.partitions, 4u);
  EXPECT_EQ(w.keys, key_distribution::round_robin);
  ASSERT_EQ(w.producer_config.size(), 1u);
  EXPECT_EQ(w.producer_config[0].first, "queue.buffering.max.ms");
  ASSERT_EQ(w.consumer_config.size(), 1u);
  ASSERT_EQ(w.topic_config.size(), 1u);
  EXPECT_EQ(w.topic_config[0].second, "-1");

  char path[] = "/tmp/sluice-bench-workload-XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  std::ofstream(path) << "rate: 1000\npartitions: 4\n";
  workload f;
  EXPECT_TRUE(parse_command_line(f, std::vector<std::string>{"--workload", path, "--rate", "2000"}));
  EXPECT_EQ(f.rate, 2000u);
  EXPECT_EQ(f.partitions, 4u);
  workload late;
  EXPECT_THROW(parse_command_line(late, std::vector<std::string>{"--rate", "1", "--workload", path}),
               std::invalid_argument);
  std::remove(path);

  workload bad;
  EXPECT_THROW(apply_yaml(bad, "- a\n- b\n"), std::invalid_argument);
  EXPECT_THROW(apply_yaml(bad, "partitions: [1, 2]\n"), std::invalid_argument);
  EXPECT_THROW(apply_yaml(bad, "rate: {\n"), std::invalid_argument);
  EXPECT_THROW(apply_yaml(bad, "unknown_key: 1\n"), std::invalid_argument);
}

TEST(key_generator, distributions) {
  key_generator none(key_distribution::none, 10, 1.0, 1);
  EXPECT_EQ(none.next(), -1);

  key_generator rr(key_distribution::round_robin, 3, 1.0, 1);
  EXPECT_EQ(rr.next(), 0);
  EXPECT_EQ(rr.next(), 1);
  EXPECT_EQ(rr.next(), 2);
  EXPECT_EQ(rr.next(), 0);

  key_generator rnd(key_distribution::random, 10, 1.0, 1);
  std::map<int64_t, int> seen;
  for (int i = 0; i < 10000; ++i) ++seen[rnd.next()];
  EXPECT_EQ(seen.size(), 10u);
  for (const auto& [k, n] : seen) {
    EXPECT_GE(k, 0);
    EXPECT_LT(k, 10);
    EXPECT_GT(n, 800);  // ~1000 each
  }

  // Zipf with exponent 1 over 100 keys: key 0 has 1/H(100) = 19.3% of the draws, key 1 half of that.
  key_generator z(key_distribution::zipf, 100, 1.0, 7);
  std::vector<int> counts(100, 0);
  constexpr int draws = 100000;
  for (int i = 0; i < draws; ++i) {
    const int64_t k = z.next();
    ASSERT_GE(k, 0);
    ASSERT_LT(k, 100);
    ++counts[static_cast<size_t>(k)];
  }
  EXPECT_NEAR(counts[0] / double(draws), 0.193, 0.01);
  EXPECT_NEAR(counts[1] / double(counts[0]), 0.5, 0.05);
  EXPECT_GT(counts[0], counts[50] * 20);

  EXPECT_EQ(key_generator::key_text(42), "k00000042");
}

}  // namespace
}  // namespace sluice::bench
