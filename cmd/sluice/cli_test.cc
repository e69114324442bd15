// The dispatcher, help and exit codes, without a broker.

#include <gtest/gtest.h>

#include <sstream>

#include "cli_error.h"
#include "command.h"
#include "command_util.h"

namespace sluice::cli {
namespace {

struct run_result {
  int rc;
  std::string out;
  std::string err;
};

run_result run(std::vector<std::string> argv) {
  std::istringstream in;
  std::ostringstream out, err;
  auto no_env = [](const char* name) -> std::optional<std::string> {
    return std::string(name) == "HOME" ? std::optional<std::string>("/nonexistent") : std::nullopt;
  };
  int rc = run_cli(argv, no_env, in, out, err);
  return {rc, out.str(), err.str()};
}

TEST(cli, help_everywhere_exits_0_with_usage_and_examples) {
  for (const auto& c : all_commands().commands) {
    std::vector<std::string> argv = c.path;
    argv.push_back("--help");
    run_result r = run(argv);
    std::string name = "sluice";
    for (const auto& w : c.path) name += " " + w;
    EXPECT_EQ(r.rc, 0) << name;
    EXPECT_NE(r.out.find("Usage:\n  " + name), std::string::npos) << name;
    EXPECT_NE(r.out.find("Examples:\n  "), std::string::npos) << name;
    EXPECT_NE(r.out.find("Exit codes:"), std::string::npos) << name;
    EXPECT_FALSE(c.examples.empty()) << name;
  }
  for (const auto& g : all_commands().groups) {
    std::vector<std::string> argv = g.path;
    argv.push_back("-h");
    run_result r = run(argv);
    EXPECT_EQ(r.rc, 0);
    EXPECT_NE(r.out.find("Commands:"), std::string::npos);
  }
  run_result top = run({"--help"});
  EXPECT_EQ(top.rc, 0);
  for (const char* word : {"topic", "produce", "consume", "group", "cluster", "broker"}) {
    EXPECT_NE(top.out.find(std::string("  ") + word + " "), std::string::npos) << word;
  }
  // --help wins over missing arguments and comes after global flags too.
  EXPECT_EQ(run({"--brokers", "x:1", "topic", "describe", "--help"}).rc, 0);
}

// Runs argv; expects exit 2 and, when given, the fragment in stderr.
void expect_usage(std::vector<std::string> argv, const std::string& fragment = "") {
  run_result r = run(argv);
  std::string line;
  for (const auto& a : argv) line += a + " ";
  EXPECT_EQ(r.rc, 2) << line << r.err;
  EXPECT_NE(r.err.find(fragment), std::string::npos) << line << r.err;
}

TEST(cli, usage_errors_exit_2_and_name_the_problem) {
  expect_usage({}, "'sluice' needs a command: topic, produce");
  expect_usage({"topic", "frobnicate"}, "unknown command 'sluice topic frobnicate'");
  expect_usage({"topic", "create", "t", "--bogus"}, "unknown flag --bogus for 'sluice topic create'");
  expect_usage({"--bogus", "topic", "list"}, "unknown flag --bogus");
  expect_usage({"topic", "describe"}, "missing arguments (usage: sluice topic describe NAME");
  expect_usage({"topic", "describe", "a", "b"}, "unexpected argument 'b'");
  expect_usage({"topic", "create", "t", "-p", "zero"}, "bad value 'zero' for --partitions");
  expect_usage({"consume", "t", "--format", "%q"}, "unknown directive %q");
  expect_usage({"consume", "t", "--offset", "sometime"}, "--offset");
  expect_usage({"produce", "t", "--key", "k", "--key-delimiter", ":"}, "cannot be used together");
  expect_usage({"produce", "t", "--acks", "2"}, "--acks");
  expect_usage({"--brokers", "host:notaport", "topic", "list"}, "the port in --brokers");
  expect_usage({"--admin", "ftp://x", "broker", "list"}, "want http://HOST:PORT");
  expect_usage({"cluster", "config", "set", "a", "1", "b"}, "'b' has no value");
  expect_usage({"topic", "alter-config", "t"}, "at least one --set");
}

TEST(cli, unreachable_brokers_and_admin_api_exit_3) {
  run_result r = run({"--brokers", "127.0.0.1:1", "topic", "list"});
  EXPECT_EQ(r.rc, 3) << r.err;
  EXPECT_NE(r.err.find("127.0.0.1:1"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("from --brokers"), std::string::npos) << r.err;
  r = run({"--admin", "http://127.0.0.1:1", "broker", "list"});
  EXPECT_EQ(r.rc, 3) << r.err;
  EXPECT_NE(r.err.find("cannot reach the admin API at http://127.0.0.1:1"), std::string::npos) << r.err;
}

TEST(cli, cluster_setting_values_are_typed_from_the_schema) {
  const nlohmann::json integer = {{"type", "integer"}, {"minimum", 1}, {"maximum", 100}};
  EXPECT_EQ(typed_setting_value("k", "42", integer), 42);
  EXPECT_THROW(typed_setting_value("k", "0", integer), cli_error);
  EXPECT_THROW(typed_setting_value("k", "x", integer), cli_error);
  EXPECT_EQ(typed_setting_value("k", "true", {{"type", "boolean"}}), true);
  EXPECT_THROW(typed_setting_value("k", "yes", {{"type", "boolean"}}), cli_error);
  EXPECT_EQ(typed_setting_value("k", "0.5", {{"type", "number"}}), 0.5);
  EXPECT_EQ(typed_setting_value("k", "a,b", {{"type", "array"}}), nlohmann::json({"a", "b"}));
  EXPECT_EQ(typed_setting_value("k", "[1,2]", {{"type", "array"}}), nlohmann::json({1, 2}));
  EXPECT_EQ(typed_setting_value("k", "delete", {{"type", "string"}, {"enum", {"delete", "compact"}}}), "delete");
  try {
    typed_setting_value("log_cleanup_policy", "squash", {{"type", "string"}, {"enum", {"delete", "compact"}}});
    FAIL();
  } catch (const cli_error& e) {
    EXPECT_EQ(e.code(), exit_code::usage);
    EXPECT_NE(std::string(e.what()).find("cluster setting log_cleanup_policy"), std::string::npos);
  }
}

}  // namespace
}  // namespace sluice::cli
