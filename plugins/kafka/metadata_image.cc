#include "metadata_image.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <random>
#include <set>
#include <tuple>

namespace sluice::kafka {

namespace {
std::string hex(const topic_uuid& id) {
  static const char* digits = "0123456789abcdef";
  std::string s;
  for (uint8_t b : id) {
    s += digits[b >> 4];
    s += digits[b & 15];
  }
  return s;
}
bool unhex(const std::string& s, topic_uuid& out) {
  if (s.size() != 32) return false;
  auto v = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  for (size_t i = 0; i < 16; ++i) {
    int hi = v(s[2 * i]), lo = v(s[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return true;
}
}  // namespace

std::string image_to_json(const metadata_image& img) {
  nlohmann::json j;
  j["format"] = 1;
  j["version"] = img.version;
  j["next_revision"] = img.next_revision;
  j["next_producer_id"] = img.next_producer_id;
  j["cluster_id"] = img.cluster_id;
  j["cluster_config"] = img.cluster_config;
  auto& topics = j["topics"] = nlohmann::json::array();
  for (const auto& [name, t] : img.topics) {
    topics.push_back({{"name", t.name},
                      {"id", hex(t.id)},
                      {"partitions", t.partitions},
                      {"replication_factor", t.replication_factor},
                      {"revision", t.revision},
                      {"configs", t.configs},
                      {"replicas", t.replicas}});
  }
  auto& brokers = j["brokers"] = nlohmann::json::array();
  for (const auto& [id, b] : img.brokers)
    brokers.push_back({{"id", b.id}, {"host", b.host}, {"port", b.port}, {"rack", b.rack}, {"rpc_address", b.rpc_address},
                       {"maintenance", b.maintenance}});
  return j.dump(1) + "\n";
}

bool image_from_json(const std::string& text, metadata_image& out, std::string& error) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded()) {
    error = "not valid JSON";
    return false;
  }
  try {
    if (j.value("format", 0) != 1) {
      error = "unknown format " + j.value("format", nlohmann::json(nullptr)).dump() + " (expected 1)";
      return false;
    }
    metadata_image img;
    img.version = j.at("version").get<int64_t>();
    img.next_revision = j.at("next_revision").get<int64_t>();
    // Absent in images written before idempotent producers: none handed out.
    img.next_producer_id = j.value("next_producer_id", int64_t{0});
    if (img.next_producer_id < 0) {
      error = "negative next_producer_id";
      return false;
    }
    img.cluster_id = j.at("cluster_id").get<std::string>();
    // Absent in images written before the admin API's cluster_config.
    if (j.contains("cluster_config"))
      img.cluster_config = j.at("cluster_config").get<std::map<std::string, std::string>>();
    for (const auto& t : j.at("topics")) {
      topic_info ti;
      ti.name = t.at("name").get<std::string>();
      if (!unhex(t.at("id").get<std::string>(), ti.id)) {
        error = "topic " + ti.name + ": bad id";
        return false;
      }
      ti.partitions = t.at("partitions").get<int32_t>();
      ti.replication_factor = t.at("replication_factor").get<int16_t>();
      ti.revision = t.at("revision").get<int64_t>();
      ti.configs = t.at("configs").get<std::map<std::string, std::string>>();
      if (ti.partitions < 1 || !validate_topic_name(ti.name).empty() || ti.revision >= img.next_revision) {
        error = "topic " + ti.name + ": invalid partitions, name or revision";
        return false;
      }
      // Absent in single-node images.
      if (t.contains("replicas")) ti.replicas = t.at("replicas").get<std::vector<std::vector<int32_t>>>();
      if (!ti.replicas.empty() && ti.replicas.size() != static_cast<size_t>(ti.partitions)) {
        error = "topic " + ti.name + ": " + std::to_string(ti.replicas.size()) + " replica lists for " +
                std::to_string(ti.partitions) + " partitions";
        return false;
      }
      img.topics.emplace(ti.name, std::move(ti));
    }
    if (j.contains("brokers")) {
      for (const auto& b : j.at("brokers")) {
        broker_info bi;
        bi.id = b.at("id").get<int32_t>();
        bi.host = b.at("host").get<std::string>();
        bi.port = b.at("port").get<int32_t>();
        bi.rack = b.value("rack", std::string());
        bi.rpc_address = b.value("rpc_address", std::string());
        bi.maintenance = b.value("maintenance", false);
        if (bi.id < 0 || bi.port < 0 || bi.port > 65535) {
          error = "broker " + std::to_string(bi.id) + ": invalid id or port";
          return false;
        }
        img.brokers[bi.id] = std::move(bi);
      }
    }
    out = std::move(img);
    return true;
  } catch (const nlohmann::json::exception& e) {
    error = e.what();
    return false;
  }
}

std::vector<int32_t> replicas_of(const topic_info& t, int32_t partition, int32_t self) {
  if (partition >= 0 && static_cast<size_t>(partition) < t.replicas.size()) return t.replicas[static_cast<size_t>(partition)];
  return {self};
}

std::string assign_replicas(const metadata_image& img, const std::map<int32_t, broker_info>& brokers, int32_t first,
                            int32_t partitions, int16_t rf, std::vector<std::vector<int32_t>>& out) {
  if (rf < 1) return "Replication factor must be larger than 0.";
  if (static_cast<size_t>(rf) > brokers.size())
    return "Replication factor: " + std::to_string(rf) + " larger than available brokers: " +
           std::to_string(brokers.size()) + ".";
  // Load so far: replicas and preferred leaderships per broker.
  std::map<int32_t, int64_t> replicas, leaders;
  for (const auto& [id, _] : brokers) replicas[id] = leaders[id] = 0;
  for (const auto& [_, t] : img.topics)
    for (const auto& rs : t.replicas)
      for (size_t i = 0; i < rs.size(); ++i) {
        if (!replicas.count(rs[i])) continue;
        ++replicas[rs[i]];
        if (i == 0) ++leaders[rs[i]];
      }
  for (int32_t p = 0; p < partitions; ++p) {
    std::vector<int32_t> chosen;
    std::set<std::string> racks;
    // Leader: the broker leading the fewest partitions (then fewest replicas,
    // then lowest id); followers: fewest replicas, preferring unused racks.
    for (int16_t r = 0; r < rf; ++r) {
      int32_t best = -1;
      for (const auto& [id, b] : brokers) {
        if (std::find(chosen.begin(), chosen.end(), id) != chosen.end()) continue;
        if (best < 0) {
          best = id;
          continue;
        }
        const auto key = [&](int32_t n) {
          const broker_info& bi = brokers.at(n);
          const bool rack_used = !bi.rack.empty() && racks.count(bi.rack);
          return std::make_tuple(rack_used, r == 0 ? leaders[n] : 0, replicas[n], (n + p + first) % 1000003);
        };
        if (key(id) < key(best)) best = id;
      }
      chosen.push_back(best);
      ++replicas[best];
      if (r == 0) ++leaders[best];
      if (!brokers.at(best).rack.empty()) racks.insert(brokers.at(best).rack);
    }
    out.push_back(std::move(chosen));
  }
  return {};
}

topic_uuid random_uuid() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  topic_uuid id{};
  do {
    for (size_t i = 0; i < 16; i += 8) {
      uint64_t r = rng();
      for (size_t k = 0; k < 8; ++k) id[i + k] = static_cast<uint8_t>(r >> (8 * k));
    }
    id[6] = static_cast<uint8_t>((id[6] & 0x0f) | 0x40);
    id[8] = static_cast<uint8_t>((id[8] & 0x3f) | 0x80);
  } while (id == topic_uuid{});
  return id;
}

std::string uuid_to_base64(const topic_uuid& id) {
  static const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (uint8_t b : id) {
    acc = acc << 8 | b;
    bits += 8;
    while (bits >= 6) {
      out += a[(acc >> (bits - 6)) & 63];
      bits -= 6;
    }
  }
  if (bits > 0) out += a[(acc << (6 - bits)) & 63];
  return out;
}

std::string validate_topic_name(const std::string& name) {
  if (name.empty()) return "Topic name is illegal, it can't be empty";
  if (name == "." || name == "..") return "Topic name cannot be \".\" or \"..\"";
  if (name.size() > 249) return "Topic name is illegal, it can't be longer than 249 characters";
  for (char c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
          c == '-'))
      return "Topic name \"" + name + "\" is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'";
  return {};
}

uint32_t shard_of(const std::string& topic, int32_t partition, uint32_t shards) {
  uint32_t h = 2166136261u;  // FNV-1a
  for (unsigned char c : topic) h = (h ^ c) * 16777619u;
  return static_cast<uint32_t>((uint64_t{h} + static_cast<uint32_t>(partition)) % shards);
}

}  // namespace sluice::kafka
