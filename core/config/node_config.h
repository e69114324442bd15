// The node's YAML configuration: node-wide settings and the ordered list of
// plugins to load, each with its own `config:` subtree.
//
//   node:
//     id: 0
//     data_dir: ./data
//     shards: 0            # 0: one per CPU
//     ...
//   plugins:
//     - name: echo
//       path: ...           # optional; default <plugin_dir>/libsluice_<name>.so
//       config: { ... }     # given to the plugin as YAML text
//
// docs/CONFIG.md lists every key. Start-up only; not thread-safe.
#pragma once

#include <sluice/sdk/result.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::config {

struct plugin_entry {
  std::string name;
  std::string path;         // absolute or as given; resolved by resolve_plugin_paths
  bool path_given = false;  // `path:` was set in the file
  std::string config_yaml;  // the `config:` subtree re-emitted as YAML (may be empty)
  std::string origin;       // "file:line" of the entry, for messages
  std::string key;          // "plugins[i]", for messages
};

struct node_config {
  std::string file;  // the file it was read from
  uint32_t node_id = 0;
  std::string data_dir = "./data";
  uint32_t shards = 0;
  uint32_t ring_entries = 1024;
  uint32_t channel_capacity = 1024;
  bool pin_threads = true;
  std::vector<uint32_t> cpus;  // CPU of shard i is cpus[i % size]; empty: the allowed CPUs in order
  uint32_t idle_poll_us = 0;
  std::string log_level = "info";
  std::string plugin_dir;  // "" : <directory of brokerd>/../lib/sluice/plugins
  std::vector<plugin_entry> plugins;
};

// Parses text as read from `file`. Every error names the file, the line and
// the key.
result<node_config> parse_node_config(std::string_view text, const std::string& file);

// Reads and parses file.
result<node_config> load_node_config(const std::string& file);

// Fills in each plugin's absolute path (dlopen treats a bare file name as a
// library search): `path:` relative to the config file's directory, or
// <plugin_dir>/libsluice_<name>.so.
void resolve_plugin_paths(node_config& cfg, const std::string& default_plugin_dir);

// The configuration as one JSON document (GET /v1/node_config): the node's
// settings and each plugin's name, path and `config:` subtree. Scalars that
// read as booleans or integers become JSON booleans and numbers. The value
// of every key whose name contains "password", "token" or "secret" is
// replaced by "[redacted]".
std::string to_json(const node_config& cfg);

}  // namespace sluice::config
