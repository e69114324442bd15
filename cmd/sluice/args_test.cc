#include "args.h"

#include <gtest/gtest.h>

#include "cli_error.h"

namespace sluice::cli {
namespace {

std::vector<option_spec> specs_owned = {
    {"partitions", 'p', "N", "partitions"},
    {"config", 'c', "KEY=VALUE", "config", true},
    {"json", 0, "", "json"},
    {"offset", 'o', "OFFSET", "offset"},
};

std::vector<const option_spec*> specs() {
  std::vector<const option_spec*> out;
  for (const auto& s : specs_owned) {
    out.push_back(&s);
  }
  return out;
}

parsed_args parse(std::vector<std::string> tokens) {
  auto s = specs();
  return parse_options(tokens, s, "sluice test");
}

exit_code code_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const cli_error& e) {
    return e.code();
  }
  return exit_code::ok;
}

std::string message_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const cli_error& e) {
    return e.what();
  }
  return "";
}

TEST(args, long_short_inline_and_separate_values) {
  auto a = parse({"orders", "--partitions", "3", "-c", "a=1", "--config=b=2", "-cc=3", "--json"});
  EXPECT_EQ(a.positionals(), std::vector<std::string>{"orders"});
  EXPECT_EQ(a.value("partitions"), "3");
  EXPECT_EQ(a.values("config"), (std::vector<std::string>{"a=1", "b=2", "c=3"}));
  EXPECT_TRUE(a.has("json"));
  EXPECT_FALSE(a.has("offset"));
  EXPECT_EQ(a.int_value("partitions", -1, 1, 10), 3);
  EXPECT_EQ(a.int_value("offset", -7, 0, 10), -7);
  EXPECT_EQ(parse({"-p5"}).value("partitions"), "5");
}

TEST(args, a_value_may_start_with_a_dash) {
  auto a = parse({"--offset", "-10", "t"});
  EXPECT_EQ(a.value("offset"), "-10");
  EXPECT_EQ(a.positionals(), std::vector<std::string>{"t"});
}

TEST(args, double_dash_ends_options) {
  auto a = parse({"--", "--json", "-p"});
  EXPECT_FALSE(a.has("json"));
  EXPECT_EQ(a.positionals(), (std::vector<std::string>{"--json", "-p"}));
}

TEST(args, errors_are_usage_errors_naming_the_flag) {
  EXPECT_EQ(code_of([] { parse({"--nope"}); }), exit_code::usage);
  EXPECT_NE(message_of([] { parse({"--nope=1"}); }).find("unknown flag --nope for 'sluice test'"), std::string::npos);
  EXPECT_NE(message_of([] { parse({"-x"}); }).find("unknown flag -x"), std::string::npos);
  EXPECT_NE(message_of([] { parse({"--partitions"}); }).find("--partitions of 'sluice test' needs a value (N)"),
            std::string::npos);
  EXPECT_NE(message_of([] { parse({"--json=yes"}); }).find("takes no value"), std::string::npos);
  EXPECT_NE(message_of([] { parse({"-p", "1", "-p", "2"}); }).find("given more than once"), std::string::npos);
  EXPECT_NE(message_of([] { parse({"-p", "x"}).int_value("partitions", 0, 1, 5); })
                .find("bad value 'x' for --partitions: want an integer"),
            std::string::npos);
  EXPECT_NE(message_of([] { parse({"-p", "9"}).int_value("partitions", 0, 1, 5); }).find("want 1..5"),
            std::string::npos);
}

TEST(args, typed_values) {
  EXPECT_EQ(parse_int("-42", "x", INT64_MIN, INT64_MAX), -42);
  EXPECT_EQ(code_of([] { parse_int("", "x", 0, 1); }), exit_code::usage);
  EXPECT_EQ(code_of([] { parse_int("12a", "x", 0, 100); }), exit_code::usage);
  EXPECT_EQ(code_of([] { parse_int("99999999999999999999", "x", INT64_MIN, INT64_MAX); }), exit_code::usage);
  EXPECT_EQ(parse_key_value("a=b=c", "-c"), (std::pair<std::string, std::string>{"a", "b=c"}));
  EXPECT_EQ(parse_key_value("a=", "-c"), (std::pair<std::string, std::string>{"a", ""}));
  EXPECT_EQ(code_of([] { parse_key_value("=b", "-c"); }), exit_code::usage);
  EXPECT_EQ(code_of([] { parse_key_value("ab", "-c"); }), exit_code::usage);
  EXPECT_EQ(split_list("a,,b,"), (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(split_list("").empty());
}

}  // namespace
}  // namespace sluice::cli
