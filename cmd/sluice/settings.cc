#include "settings.h"

#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <filesystem>
#include <map>

#include "cli_error.h"

namespace sluice::cli {

namespace {

using profile_values = std::map<std::string, std::string>;

const char* const profile_keys[] = {"brokers", "admin", "admin_token", "admin_user", "admin_password"};

profile_values load_profile(const std::string& path) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    throw_usage("cannot read the profile file " + path);
  } catch (const YAML::Exception& e) {
    throw_usage("the profile file " + path + " is not valid YAML: " + e.what());
  }
  profile_values values;
  if (root.IsNull()) {
    return values;
  }
  if (!root.IsMap()) {
    throw_usage("the profile file " + path + " must be a YAML map (brokers: ..., admin: ...)");
  }
  for (const auto& entry : root) {
    const std::string key = entry.first.as<std::string>();
    bool known = false;
    for (const char* k : profile_keys) {
      known = known || key == k;
    }
    if (!known) {
      throw_usage("unknown key '" + key + "' in the profile file " + path +
                  " (known: brokers, admin, admin_token, admin_user, admin_password)");
    }
    if (!entry.second.IsScalar()) {
      throw_usage("key '" + key + "' in the profile file " + path + " must be a string");
    }
    values[key] = entry.second.as<std::string>();
  }
  return values;
}

// The profile file to read, or "" for none.
std::string profile_path(const parsed_args& args, const env_lookup& env) {
  if (auto flag = args.value("profile")) {
    return *flag;
  }
  if (auto var = env("SLUICE_PROFILE")) {
    return *var;
  }
  if (auto home = env("HOME")) {
    std::string path = *home + "/.config/sluice/profile.yaml";
    std::error_code ec;
    if (std::filesystem::exists(path, ec)) {
      return path;
    }
  }
  return "";
}

// The first of flag, environment variable and profile key that is set.
void resolve_one(std::string& value, std::string* source, const parsed_args& args, const char* flag,
                 const env_lookup& env, const char* var, const profile_values& profile, const char* key,
                 const std::string& profile_file) {
  if (auto v = args.value(flag)) {
    value = *v;
    if (source) *source = std::string("--") + flag;
  } else if (auto e = env(var)) {
    value = *e;
    if (source) *source = std::string("$") + var;
  } else if (auto it = profile.find(key); it != profile.end()) {
    value = it->second;
    if (source) *source = "profile " + profile_file;
  }
}

}  // namespace

std::optional<std::string> process_env(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') {
    return std::nullopt;
  }
  return std::string(v);
}

const std::vector<option_spec>& global_options() {
  static const std::vector<option_spec> options = {
      {"brokers", 0, "HOST:PORT[,...]", "Kafka bootstrap brokers (env SLUICE_BROKERS; default 127.0.0.1:9092)"},
      {"admin", 0, "URL", "admin API base URL (env SLUICE_ADMIN; default http://127.0.0.1:9644)"},
      {"admin-token", 0, "TOKEN", "admin API bearer token (env SLUICE_ADMIN_TOKEN)"},
      {"admin-user", 0, "USER", "admin API basic-auth user (env SLUICE_ADMIN_USER)"},
      {"admin-password", 0, "PASSWORD", "admin API basic-auth password (env SLUICE_ADMIN_PASSWORD)"},
      {"profile", 0, "FILE", "profile file (env SLUICE_PROFILE; default ~/.config/sluice/profile.yaml)"},
      {"json", 0, "", "machine-readable JSON on stdout"},
      {"timeout-ms", 0, "MS", "how long to wait for the broker or admin API (default 15000)"},
      {"verbose", 'v', "", "more output (librdkafka's log, produced offsets)"},
      {"property", 'X', "NAME=VALUE", "a librdkafka client property, e.g. -X socket.timeout.ms=5000 (repeatable)",
       true},
      {"help", 'h', "", "show help for the command"},
  };
  return options;
}

settings resolve_settings(const parsed_args& args, const env_lookup& env) {
  settings s;
  const std::string path = profile_path(args, env);
  const profile_values profile = path.empty() ? profile_values{} : load_profile(path);

  resolve_one(s.brokers, &s.brokers_source, args, "brokers", env, "SLUICE_BROKERS", profile, "brokers", path);
  resolve_one(s.admin, &s.admin_source, args, "admin", env, "SLUICE_ADMIN", profile, "admin", path);
  resolve_one(s.admin_token, nullptr, args, "admin-token", env, "SLUICE_ADMIN_TOKEN", profile, "admin_token", path);
  resolve_one(s.admin_user, nullptr, args, "admin-user", env, "SLUICE_ADMIN_USER", profile, "admin_user", path);
  resolve_one(s.admin_password, nullptr, args, "admin-password", env, "SLUICE_ADMIN_PASSWORD", profile,
              "admin_password", path);
  if (s.brokers.empty()) {
    throw_usage("no brokers given (" + s.brokers_source + " is empty)");
  }
  if (!s.admin_password.empty() && s.admin_user.empty()) {
    throw_usage("an admin password is set but no user: pass --admin-user too");
  }
  s.timeout_ms = static_cast<int>(args.int_value("timeout-ms", default_timeout_ms, 1, 3'600'000));
  for (const std::string& p : args.values("property")) {
    s.kafka_properties.push_back(parse_key_value(p, "-X"));
  }
  s.json = args.has("json");
  s.verbose = args.has("verbose");
  return s;
}

}  // namespace sluice::cli
