#include "record_format.h"

#include <gtest/gtest.h>

#include "cli_error.h"

namespace sluice::cli {
namespace {

record_view sample() {
  record_view r;
  r.topic = "orders";
  r.partition = 2;
  r.offset = 41;
  r.timestamp_ms = 1700000000123;
  r.key = "k1";
  r.value = "hello world";
  r.headers = {{"source", "web"}, {"trace", std::nullopt}};
  return r;
}

TEST(record_format, raw_prints_the_value_and_a_newline) {
  EXPECT_EQ(record_formatter("raw").render(sample()), "hello world\n");
  record_view tombstone = sample();
  tombstone.value.reset();
  EXPECT_EQ(record_formatter("raw").render(tombstone), "\n");
}

TEST(record_format, json_has_every_field_and_nulls) {
  auto j = nlohmann::json::parse(record_formatter("json").render(sample()));
  EXPECT_EQ(j["topic"], "orders");
  EXPECT_EQ(j["partition"], 2);
  EXPECT_EQ(j["offset"], 41);
  EXPECT_EQ(j["timestamp"], 1700000000123);
  EXPECT_EQ(j["key"], "k1");
  EXPECT_EQ(j["value"], "hello world");
  ASSERT_EQ(j["headers"].size(), 2u);
  EXPECT_EQ(j["headers"][0]["key"], "source");
  EXPECT_TRUE(j["headers"][1]["value"].is_null());
  record_view r = sample();
  r.key.reset();
  EXPECT_TRUE(record_to_json(r)["key"].is_null());
}

TEST(record_format, json_replaces_invalid_utf8) {
  record_view r = sample();
  r.value = std::string_view("\xff\xfe", 2);
  std::string line = record_formatter("json").render(r);
  EXPECT_NE(line.find("\xef\xbf\xbd"), std::string::npos);  // U+FFFD
}

TEST(record_format, templates) {
  EXPECT_EQ(record_formatter("%k %v %p %o").render(sample()), "k1 hello world 2 41\n");
  EXPECT_EQ(record_formatter("%t/%p@%o %T %K %V %h 100%%\\n").render(sample()),
            "orders/2@41 1700000000123 2 11 source=web,trace= 100%\n");
  EXPECT_EQ(record_formatter("%v\\t%k\\n\\n").render(sample()), "hello world\tk1\n\n");
  record_view nulls = sample();
  nulls.key.reset();
  nulls.value.reset();
  EXPECT_EQ(record_formatter("[%k][%v] %K %V").render(nulls), "[][] -1 -1\n");
  // A value ending in a newline still gets the record's newline.
  record_view multi = sample();
  multi.value = "line\n";
  EXPECT_EQ(record_formatter("%v").render(multi), "line\n\n");
}

TEST(record_format, bad_formats_are_usage_errors_naming_the_problem) {
  auto message = [](const char* f) -> std::string {
    try {
      record_formatter{f};
    } catch (const cli_error& e) {
      EXPECT_EQ(e.code(), exit_code::usage);
      return e.what();
    }
    return "";
  };
  EXPECT_NE(message("%x").find("unknown directive %x"), std::string::npos);
  EXPECT_NE(message("%v\\q").find("unknown escape \\q"), std::string::npos);
  EXPECT_NE(message("%v%").find("lone '%'"), std::string::npos);
  EXPECT_NE(message("yaml").find("want raw, json or a template"), std::string::npos);
}

}  // namespace
}  // namespace sluice::cli
