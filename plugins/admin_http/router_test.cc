#include "router.h"

#include <gtest/gtest.h>

namespace sluice::admin_http {
namespace {

TEST(parse_target, decodes_path_and_query) {
  auto t = parse_target("/v1/topics/a%2Fb?dry_run=true&x=a+b&flag");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->path, "/v1/topics/a/b");
  EXPECT_EQ(t->raw_path, "/v1/topics/a%2Fb");
  EXPECT_EQ(t->query.at("dry_run"), "true");
  EXPECT_EQ(t->query.at("x"), "a b");
  EXPECT_EQ(t->query.at("flag"), "");
}

TEST(parse_target, refuses_bad_targets) {
  EXPECT_FALSE(parse_target(""));
  EXPECT_FALSE(parse_target("v1/topics"));
  EXPECT_FALSE(parse_target("http://host/v1"));
  EXPECT_FALSE(parse_target("/v1/%zz"));
  EXPECT_FALSE(parse_target("/v1/%4"));
  EXPECT_FALSE(parse_target("/v1/%00"));
  EXPECT_FALSE(parse_target("/v1?a=%"));
}

TEST(match_pattern, binds_segments) {
  std::map<std::string, std::string> p;
  EXPECT_TRUE(match_pattern("/v1/partitions/{topic}/{partition}", "/v1/partitions/t/3", p));
  EXPECT_EQ(p.at("topic"), "t");
  EXPECT_EQ(p.at("partition"), "3");
  EXPECT_FALSE(match_pattern("/v1/topics/{name}", "/v1/topics/", p));
  EXPECT_FALSE(match_pattern("/v1/topics/{name}", "/v1/topics/a/b", p));
  EXPECT_FALSE(match_pattern("/v1/topics", "/v1/topics/", p));
  EXPECT_TRUE(match_pattern("/", "/", p));
  // An encoded '/' stays inside its segment.
  EXPECT_TRUE(match_pattern("/v1/groups/{id}", "/v1/groups/a%2Fb", p));
  EXPECT_EQ(p.at("id"), "a/b");
  EXPECT_TRUE(match_pattern("/v1/gr%6Fups/{id}", "/v1/groups/x", p) == false);
  EXPECT_TRUE(match_pattern("/v1/groups/{id}", "/v1/gr%6Fups/x", p));
  EXPECT_FALSE(match_pattern("/v1/groups/{id}", "/v1/groups/%zz", p));
  EXPECT_FALSE(match_pattern("/", "/x", p));
}

TEST(route_table, literal_beats_parameter_and_reports_allowed_methods) {
  route_table t;
  t.add({"GET", "/v1/cluster_config/{key}", 1, 1, "a"});
  t.add({"GET", "/v1/cluster_config/schema", 1, 2, "a"});
  t.add({"PUT", "/v1/cluster_config/{key}", 1, 3, "a"});
  auto m = t.match("GET", "/v1/cluster_config/schema");
  ASSERT_NE(m.route, nullptr);
  EXPECT_EQ(m.route->message_type, 2u);
  m = t.match("GET", "/v1/cluster_config/x");
  ASSERT_NE(m.route, nullptr);
  EXPECT_EQ(m.route->message_type, 1u);
  EXPECT_EQ(m.params.at("key"), "x");
  m = t.match("DELETE", "/v1/cluster_config/x");
  EXPECT_EQ(m.route, nullptr);
  EXPECT_EQ(m.allowed, (std::vector<std::string>{"GET", "PUT"}));
  m = t.match("HEAD", "/v1/cluster_config/x");
  ASSERT_NE(m.route, nullptr);
  EXPECT_TRUE(t.match("GET", "/nope").allowed.empty());
}

TEST(auth, bearer_and_basic) {
  auth_settings none;
  EXPECT_TRUE(authorized(none, ""));
  auth_settings a{"s3cret", "admin", "pw"};
  EXPECT_TRUE(authorized(a, "Bearer s3cret"));
  EXPECT_TRUE(authorized(a, "bearer s3cret"));
  EXPECT_FALSE(authorized(a, "Bearer s3cre"));
  EXPECT_FALSE(authorized(a, "Bearer s3cretX"));
  EXPECT_FALSE(authorized(a, ""));
  EXPECT_TRUE(authorized(a, "Basic YWRtaW46cHc="));  // admin:pw
  EXPECT_FALSE(authorized(a, "Basic YWRtaW46cHg="));  // admin:px
  EXPECT_FALSE(authorized(a, "Basic !!!"));
  auth_settings token_only{"t", "", ""};
  EXPECT_FALSE(authorized(token_only, "Basic YWRtaW46cHc="));
}

TEST(base64, decodes_with_and_without_padding) {
  EXPECT_EQ(base64_decode("aGVsbG8="), "hello");
  EXPECT_EQ(base64_decode("aGVsbG8"), "hello");
  EXPECT_EQ(base64_decode(""), "");
  EXPECT_FALSE(base64_decode("a"));
}

}  // namespace
}  // namespace sluice::admin_http
