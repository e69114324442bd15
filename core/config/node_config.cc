#include "core/config/node_config.h"

#include <sluice/sdk/config.h>

#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include <sched.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace sluice::config {

namespace {
std::error_code config_errc() { return std::make_error_code(std::errc::invalid_argument); }

bool valid_plugin_name(const std::string& n) {
  if (n.empty() || n.size() > 64) return false;
  for (char c : n)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) return false;
  return true;
}
}  // namespace

result<node_config> parse_node_config(std::string_view text, const std::string& file) {
  node_config cfg;
  cfg.file = file;
  try {
    YAML::Node root;
    try {
      root = YAML::Load(std::string(text));
    } catch (const YAML::Exception& e) {
      return make_error(config_errc(), file + ":" + std::to_string(e.mark.line + 1) +
                                           ": invalid YAML: " + e.msg);
    }
    if (!root || root.IsNull())
      return make_error(config_errc(), file + ": the file is empty; it needs at least a `plugins:` list");
    sdk::config_map top(root, file, "");

    sdk::config_map node = top.get_map("node");
    cfg.node_id = static_cast<uint32_t>(node.get_uint("id", 0, 0, INT32_MAX));
    cfg.data_dir = node.get_string("data_dir", cfg.data_dir);
    if (cfg.data_dir.empty()) node.fail(node.get_node("data_dir"), "data_dir", "must not be empty");
    cfg.shards = static_cast<uint32_t>(node.get_uint("shards", 0, 0, 1024));
    cfg.ring_entries = static_cast<uint32_t>(node.get_uint("ring_entries", cfg.ring_entries, 8, 32768));
    cfg.channel_capacity =
        static_cast<uint32_t>(node.get_uint("channel_capacity", cfg.channel_capacity, 1, 1u << 20));
    cfg.pin_threads = node.get_bool("pin_threads", cfg.pin_threads);
    for (uint64_t cpu : node.get_uint_list("cpus", 0, CPU_SETSIZE - 1)) cfg.cpus.push_back(static_cast<uint32_t>(cpu));
    cfg.idle_poll_us = static_cast<uint32_t>(node.get_uint("idle_poll_us", 0, 0, 1'000'000));
    cfg.log_level = node.get_enum("log_level", cfg.log_level, {"trace", "debug", "info", "warn", "error"});
    cfg.plugin_dir = node.get_string("plugin_dir", "");
    node.finish();

    auto plugins = top.get_list("plugins");
    for (size_t i = 0; i < plugins.size(); ++i) {
      const std::string key = "plugins[" + std::to_string(i) + "]";
      const YAML::Node& item = plugins[i];
      if (!item.IsMap()) top.fail(item, key, "expected a mapping with at least `name:`");
      sdk::config_map p(item, file, key);
      plugin_entry e;
      e.key = key;
      e.origin = file + ":" + std::to_string(item.Mark().line + 1);
      e.name = p.require_string("name");
      if (!valid_plugin_name(e.name))
        p.fail(item["name"], "name", "\"" + e.name + "\" is not a plugin name (lowercase letters, digits, _ and -)");
      for (const auto& other : cfg.plugins)
        if (other.name == e.name) p.fail(item["name"], "name", "plugin \"" + e.name + "\" is listed twice");
      e.path = p.get_string("path", "");
      e.path_given = !e.path.empty();
      YAML::Node sub = p.get_node("config");
      if (sub) {
        if (!sub.IsMap()) p.fail(sub, "config", "expected a mapping of the plugin's settings");
        YAML::Emitter out;
        out << sub;
        e.config_yaml = out.c_str();
      }
      p.finish();
      cfg.plugins.push_back(std::move(e));
    }
    top.finish();
  } catch (const sdk::config_error& e) {
    return make_error(config_errc(), e.what());
  } catch (const YAML::Exception& e) {
    return make_error(config_errc(), file + ": " + e.what());
  }
  return cfg;
}

result<node_config> load_node_config(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    const int err = errno;
    return make_errno_error(err, file + ": cannot read the configuration file: " + std::strerror(err) +
                                     " (pass an existing file with --config)");
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return parse_node_config(ss.str(), file);
}

void resolve_plugin_paths(node_config& cfg, const std::string& default_plugin_dir) {
  namespace fs = std::filesystem;
  const fs::path base = fs::path(cfg.file).parent_path();
  const fs::path dir = cfg.plugin_dir.empty() ? fs::path(default_plugin_dir)
                                              : (fs::path(cfg.plugin_dir).is_absolute() ? fs::path(cfg.plugin_dir)
                                                                                         : base / cfg.plugin_dir);
  for (auto& p : cfg.plugins) {
    if (p.path_given) {
      fs::path given(p.path);
      if (given.is_relative()) p.path = fs::absolute(base / given).lexically_normal().string();
    } else {
      p.path = fs::absolute(dir / ("libsluice_" + p.name + ".so")).lexically_normal().string();
    }
  }
}

namespace {

bool is_secret_key(std::string key) {
  for (char& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return key.find("password") != std::string::npos || key.find("token") != std::string::npos ||
         key.find("secret") != std::string::npos;
}

nlohmann::json scalar_to_json(const std::string& v) {
  if (v == "true") return true;
  if (v == "false") return false;
  if (!v.empty() && v.size() < 19) {
    size_t i = v[0] == '-' ? 1 : 0;
    bool digits = i < v.size();
    for (size_t j = i; j < v.size(); ++j) digits = digits && v[j] >= '0' && v[j] <= '9';
    if (digits) return std::stoll(v);
  }
  return v;
}

nlohmann::json yaml_to_json(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map: {
      nlohmann::json out = nlohmann::json::object();
      for (const auto& kv : n) {
        const std::string key = kv.first.as<std::string>();
        out[key] = is_secret_key(key) ? nlohmann::json("[redacted]") : yaml_to_json(kv.second);
      }
      return out;
    }
    case YAML::NodeType::Sequence: {
      nlohmann::json out = nlohmann::json::array();
      for (const auto& e : n) out.push_back(yaml_to_json(e));
      return out;
    }
    case YAML::NodeType::Scalar:
      return scalar_to_json(n.Scalar());
    default:
      return nullptr;
  }
}

}  // namespace

std::string to_json(const node_config& cfg) {
  nlohmann::json node = {{"id", cfg.node_id},
                         {"data_dir", cfg.data_dir},
                         {"shards", cfg.shards},
                         {"ring_entries", cfg.ring_entries},
                         {"channel_capacity", cfg.channel_capacity},
                         {"pin_threads", cfg.pin_threads},
                         {"cpus", cfg.cpus},
                         {"idle_poll_us", cfg.idle_poll_us},
                         {"log_level", cfg.log_level},
                         {"plugin_dir", cfg.plugin_dir}};
  nlohmann::json plugins = nlohmann::json::array();
  for (const plugin_entry& p : cfg.plugins) {
    nlohmann::json config = nlohmann::json::object();
    if (!p.config_yaml.empty()) {
      try {
        config = yaml_to_json(YAML::Load(p.config_yaml));
      } catch (const YAML::Exception&) {
        config = "[unreadable]";  // it parsed at load time; cannot happen
      }
    }
    plugins.push_back({{"name", p.name}, {"path", p.path}, {"config", config}});
  }
  return nlohmann::json{{"file", cfg.file}, {"node", node}, {"plugins", plugins}}.dump();
}

}  // namespace sluice::config
