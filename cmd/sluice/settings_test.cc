#include "settings.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>

#include "cli_error.h"

namespace sluice::cli {
namespace {

class settings_test : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sluice_cli_settings_test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    _dir = tmpl;
    _env["HOME"] = _dir;  // no ~/.config/sluice/profile.yaml unless a test writes one
  }
  void TearDown() override { std::system(("rm -rf " + _dir).c_str()); }

  std::string write_profile(const std::string& name, const std::string& text) {
    std::string path = _dir + "/" + name;
    std::ofstream(path) << text;
    return path;
  }

  settings resolve(std::vector<std::string> tokens) {
    std::vector<const option_spec*> specs;
    for (const auto& o : global_options()) {
      specs.push_back(&o);
    }
    parsed_args args = parse_options(tokens, specs, "sluice test");
    return resolve_settings(args, [this](const char* name) -> std::optional<std::string> {
      auto it = _env.find(name);
      return it == _env.end() ? std::nullopt : std::optional<std::string>(it->second);
    });
  }

  std::string _dir;
  std::map<std::string, std::string> _env;
};

TEST_F(settings_test, defaults) {
  settings s = resolve({});
  EXPECT_EQ(s.brokers, "127.0.0.1:9092");
  EXPECT_EQ(s.brokers_source, "default");
  EXPECT_EQ(s.admin, "http://127.0.0.1:9644");
  EXPECT_EQ(s.admin_token, "");
  EXPECT_EQ(s.timeout_ms, default_timeout_ms);
  EXPECT_FALSE(s.json);
}

TEST_F(settings_test, flags_win_over_environment_which_wins_over_the_profile) {
  _env["SLUICE_PROFILE"] = write_profile("p.yaml", "brokers: profile:1\nadmin: http://profile:2\nadmin_token: ptoken\n");
  settings s = resolve({});
  EXPECT_EQ(s.brokers, "profile:1");
  EXPECT_EQ(s.brokers_source, "profile " + _dir + "/p.yaml");
  EXPECT_EQ(s.admin, "http://profile:2");
  EXPECT_EQ(s.admin_token, "ptoken");

  _env["SLUICE_BROKERS"] = "env:1";
  _env["SLUICE_ADMIN_TOKEN"] = "etoken";
  s = resolve({});
  EXPECT_EQ(s.brokers, "env:1");
  EXPECT_EQ(s.brokers_source, "$SLUICE_BROKERS");
  EXPECT_EQ(s.admin, "http://profile:2");
  EXPECT_EQ(s.admin_token, "etoken");

  s = resolve({"--brokers", "flag:1", "--admin=http://flag:2", "--json", "--timeout-ms", "500", "-X", "a.b=c"});
  EXPECT_EQ(s.brokers, "flag:1");
  EXPECT_EQ(s.brokers_source, "--brokers");
  EXPECT_EQ(s.admin, "http://flag:2");
  EXPECT_TRUE(s.json);
  EXPECT_EQ(s.timeout_ms, 500);
  ASSERT_EQ(s.kafka_properties.size(), 1u);
  EXPECT_EQ(s.kafka_properties[0].first, "a.b");
}

TEST_F(settings_test, profile_flag_and_the_default_profile_path) {
  std::system(("mkdir -p " + _dir + "/.config/sluice").c_str());
  write_profile(".config/sluice/profile.yaml", "brokers: home:9092\n");
  EXPECT_EQ(resolve({}).brokers, "home:9092");
  std::string other = write_profile("other.yaml", "brokers: other:9092\nadmin_user: u\nadmin_password: p\n");
  settings s = resolve({"--profile", other});
  EXPECT_EQ(s.brokers, "other:9092");
  EXPECT_EQ(s.admin_user, "u");
  EXPECT_EQ(s.admin_password, "p");
}

TEST_F(settings_test, bad_profiles_are_usage_errors_naming_the_problem) {
  auto message = [&](std::vector<std::string> tokens) -> std::string {
    try {
      resolve(std::move(tokens));
    } catch (const cli_error& e) {
      EXPECT_EQ(e.code(), exit_code::usage);
      return e.what();
    }
    return "";
  };
  EXPECT_NE(message({"--profile", _dir + "/missing.yaml"}).find("cannot read the profile file"), std::string::npos);
  std::string typo = write_profile("typo.yaml", "broker: x:1\n");
  EXPECT_NE(message({"--profile", typo}).find("unknown key 'broker' in the profile file"), std::string::npos);
  std::string list = write_profile("list.yaml", "- a\n- b\n");
  EXPECT_NE(message({"--profile", list}).find("must be a YAML map"), std::string::npos);
  std::string bad = write_profile("bad.yaml", "brokers: [unclosed\n");
  EXPECT_NE(message({"--profile", bad}).find("is not valid YAML"), std::string::npos);
  EXPECT_NE(message({"--admin-password", "p"}).find("no user"), std::string::npos);
  EXPECT_NE(message({"--timeout-ms", "0"}).find("--timeout-ms"), std::string::npos);
  EXPECT_NE(message({"-X", "novalue"}).find("want KEY=VALUE"), std::string::npos);
}

}  // namespace
}  // namespace sluice::cli
