#include "core/config/node_config.h"

#include <gtest/gtest.h>

#include <filesystem>

namespace sluice::config {
namespace {

std::string error_of(const std::string& yaml) {
  auto r = parse_node_config(yaml, "test.yaml");
  EXPECT_FALSE(r.has_value()) << "parsed, but should not have: " << yaml;
  return r.has_value() ? std::string() : r.err().message;
}

TEST(node_config, defaults_and_plugins_in_order) {
  auto r = parse_node_config(
      "node:\n  data_dir: /var/lib/sluice\n  shards: 2\nplugins:\n  - name: echo\n    config:\n      listen: "
      "127.0.0.1:9099\n  - name: other\n    path: lib/x.so\n",
      "dir/sluice.yaml");
  ASSERT_TRUE(r.has_value()) << r.err().message;
  const node_config& c = r.value();
  EXPECT_EQ(c.data_dir, "/var/lib/sluice");
  EXPECT_EQ(c.shards, 2u);
  EXPECT_EQ(c.ring_entries, 1024u);
  EXPECT_TRUE(c.pin_threads);
  EXPECT_TRUE(c.cpus.empty());
  ASSERT_EQ(c.plugins.size(), 2u);
  EXPECT_EQ(c.plugins[0].name, "echo");
  EXPECT_NE(c.plugins[0].config_yaml.find("listen: 127.0.0.1:9099"), std::string::npos);
  EXPECT_EQ(c.plugins[0].origin, "dir/sluice.yaml:5");
  EXPECT_EQ(c.plugins[1].name, "other");
  EXPECT_TRUE(c.plugins[1].config_yaml.empty());

  node_config copy = c;
  resolve_plugin_paths(copy, "/opt/sluice/lib/sluice/plugins");
  EXPECT_EQ(copy.plugins[0].path, "/opt/sluice/lib/sluice/plugins/libsluice_echo.so");
  // Relative to the config file, made absolute for dlopen.
  EXPECT_EQ(copy.plugins[1].path, (std::filesystem::current_path() / "dir/lib/x.so").string());
}

TEST(node_config, json_form_types_scalars_and_redacts_secrets) {
  auto r = parse_node_config(
      "node:\n  shards: 2\nplugins:\n  - name: admin_http\n    config:\n      listen: 127.0.0.1:9644\n"
      "      console: false\n      auth: { bearer_token: tok, basic: { username: u, password: pw } }\n"
      "      list: [1, -2, x]\n",
      "n.yaml");
  ASSERT_TRUE(r.has_value()) << r.err().message;
  const std::string j = to_json(r.value());
  EXPECT_NE(j.find("\"shards\":2"), std::string::npos) << j;
  EXPECT_NE(j.find("\"console\":false"), std::string::npos) << j;
  EXPECT_NE(j.find("\"list\":[1,-2,\"x\"]"), std::string::npos) << j;
  EXPECT_NE(j.find("\"listen\":\"127.0.0.1:9644\""), std::string::npos) << j;
  EXPECT_NE(j.find("\"bearer_token\":\"[redacted]\""), std::string::npos) << j;
  EXPECT_NE(j.find("\"password\":\"[redacted]\""), std::string::npos) << j;
  EXPECT_EQ(j.find("tok\""), std::string::npos) << j;
  EXPECT_EQ(j.find("pw\""), std::string::npos) << j;
  EXPECT_NE(j.find("\"username\":\"u\""), std::string::npos) << j;
}

TEST(node_config, malformed_yaml_names_file_and_line) {
  std::string e = error_of("node:\n  shards: [1, 2\n");
  EXPECT_NE(e.find("test.yaml:"), std::string::npos) << e;
  EXPECT_NE(e.find("invalid YAML"), std::string::npos) << e;
}

TEST(node_config, unknown_key_is_named_with_its_line) {
  std::string e = error_of("node:\n  shard: 2\nplugins: []\n");
  EXPECT_NE(e.find("test.yaml:2: node.shard: unknown key"), std::string::npos) << e;
  EXPECT_NE(e.find("shards"), std::string::npos) << e;  // suggests the known keys

  e = error_of("nodes:\n  shards: 2\n");
  EXPECT_NE(e.find("test.yaml:1: nodes: unknown key"), std::string::npos) << e;

  e = error_of("plugins:\n  - name: echo\n    confg: {}\n");
  EXPECT_NE(e.find("plugins[0].confg: unknown key"), std::string::npos) << e;
}

TEST(node_config, wrong_types_are_named) {
  EXPECT_NE(error_of("node:\n  shards: many\n").find("test.yaml:2: node.shards: expected an unsigned integer, got \"many\""),
            std::string::npos);
  EXPECT_NE(error_of("node:\n  shards: -1\n").find("node.shards: expected an unsigned integer"), std::string::npos);
  EXPECT_NE(error_of("node:\n  shards: 5000\n").find("node.shards: must be between 0 and 1024"), std::string::npos);
  EXPECT_NE(error_of("node:\n  pin_threads: maybe\n").find("node.pin_threads: expected true or false"),
            std::string::npos);
  EXPECT_NE(error_of("node:\n  cpus: 3\n").find("node.cpus: expected a list of unsigned integers"),
            std::string::npos);
  EXPECT_NE(error_of("node:\n  cpus: [0, x]\n").find("node.cpus[1]: expected an unsigned integer, got \"x\""),
            std::string::npos);
  EXPECT_NE(error_of("node:\n  data_dir: [a, b]\n").find("node.data_dir: expected a string"), std::string::npos);
  EXPECT_NE(error_of("node: 7\n").find("node: expected a mapping"), std::string::npos);
  EXPECT_NE(error_of("node:\n  log_level: loud\n").find("node.log_level: expected one of trace, debug"),
            std::string::npos);
  EXPECT_NE(error_of("plugins: echo\n").find("plugins: expected a list"), std::string::npos);
  EXPECT_NE(error_of("plugins:\n  - echo\n").find("plugins[0]: expected a mapping"), std::string::npos);
  EXPECT_NE(error_of("plugins:\n  - path: x.so\n").find("plugins[0].name: is required"), std::string::npos);
  EXPECT_NE(error_of("plugins:\n  - name: echo\n    config: 3\n").find("plugins[0].config: expected a mapping"),
            std::string::npos);
}

TEST(node_config, duplicate_and_bad_plugin_names) {
  EXPECT_NE(error_of("plugins:\n  - name: echo\n  - name: echo\n").find("listed twice"), std::string::npos);
  EXPECT_NE(error_of("plugins:\n  - name: ../evil\n").find("is not a plugin name"), std::string::npos);
}

TEST(node_config, empty_values_mean_unset) {
  auto r = parse_node_config("node:\nplugins:\n  - name: echo\n    config:\n    path:\n", "t.yaml");
  ASSERT_TRUE(r.has_value()) << r.err().message;
  EXPECT_EQ(r.value().shards, 0u);
  EXPECT_TRUE(r.value().plugins[0].config_yaml.empty());
  EXPECT_FALSE(r.value().plugins[0].path_given);
  r = parse_node_config("node:\n  cpus: [1, 0]\n", "t.yaml");
  ASSERT_TRUE(r.has_value()) << r.err().message;
  EXPECT_EQ(r.value().cpus, (std::vector<uint32_t>{1, 0}));
  r = parse_node_config("node:\n  shards:\n  data_dir: /d\n", "t.yaml");
  ASSERT_TRUE(r.has_value()) << r.err().message;
  EXPECT_EQ(r.value().data_dir, "/d");
}

TEST(node_config, empty_file_is_an_error) {
  EXPECT_NE(error_of("").find("the file is empty"), std::string::npos);
  EXPECT_NE(error_of("# only a comment\n").find("the file is empty"), std::string::npos);
}

TEST(node_config, missing_file_names_the_path) {
  auto r = load_node_config("/nonexistent/sluice.yaml");
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.err().message.find("/nonexistent/sluice.yaml: cannot read"), std::string::npos);
}

}  // namespace
}  // namespace sluice::config
