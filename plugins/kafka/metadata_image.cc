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
                      {"replicas", t.replicas},
                      {"previous", t.previous}});
  }
  auto& brokers = j["brokers"] = nlohmann::json::array();
  for (const auto& [id, b] : img.brokers)
    brokers.push_back({{"id", b.id}, {"host", b.host}, {"port", b.port}, {"rack", b.rack}, {"rpc_address", b.rpc_address},
                       {"maintenance", b.maintenance}, {"decommissioned", b.decommissioned}});
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
      if (t.contains("previous")) ti.previous = t.at("previous").get<std::vector<std::vector<int32_t>>>();
      if (!ti.previous.empty() && ti.previous.size() != ti.replicas.size()) {
        error = "topic " + ti.name + ": " + std::to_string(ti.previous.size()) + " previous replica lists for " +
                std::to_string(ti.replicas.size()) + " partitions";
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
        bi.decommissioned = b.value("decommissioned", false);
        if (bi.id < 0 || bi.port < 0 || bi.port > 65535) {
          error = "broker " + std::to_string(bi.id) + ": invalid id or port";
          return false;
        }
        img.brokers[bi.id] = std::move(bi);
      }
    }
    img.retired = retired_brokers(img);
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

std::string validate_assignment(const metadata_image& img, const std::vector<std::vector<int32_t>>& lists) {
  for (size_t p = 0; p < lists.size(); ++p) {
    const std::vector<int32_t>& rs = lists[p];
    const std::string where = "partition " + std::to_string(p) + "'s replicas: ";
    if (rs.empty()) return where + "empty";
    if (rs.size() != lists.front().size()) return where + "not as many as the first partition's";
    for (size_t i = 0; i < rs.size(); ++i) {
      if (std::find(rs.begin(), rs.begin() + static_cast<ptrdiff_t>(i), rs[i]) != rs.begin() + static_cast<ptrdiff_t>(i))
        return where + "broker " + std::to_string(rs[i]) + " listed twice";
      auto b = img.brokers.find(rs[i]);
      if (b == img.brokers.end()) return where + "no broker " + std::to_string(rs[i]) + " is registered";
      if (b->second.decommissioned) return where + "broker " + std::to_string(rs[i]) + " is decommissioned";
    }
  }
  return {};
}

std::vector<int32_t> previous_of(const topic_info& t, int32_t partition) {
  if (partition >= 0 && static_cast<size_t>(partition) < t.previous.size()) return t.previous[static_cast<size_t>(partition)];
  return {};
}

std::set<int32_t> retired_brokers(const metadata_image& img) {
  std::set<int32_t> out;
  for (const auto& [id, b] : img.brokers)
    if (b.decommissioned) out.insert(id);
  for (const auto& [_, t] : img.topics) {
    if (out.empty()) break;
    for (int32_t p = 0; p < t.partitions; ++p)
      for (int32_t r : hosts_of(t, p, 0)) out.erase(r);
  }
  return out;
}

std::vector<int32_t> hosts_of(const topic_info& t, int32_t partition, int32_t self) {
  std::vector<int32_t> out = replicas_of(t, partition, self);
  for (int32_t b : previous_of(t, partition))
    if (std::find(out.begin(), out.end(), b) == out.end()) out.push_back(b);
  return out;
}

namespace {

bool eligible(const broker_info& b) { return !b.decommissioned; }

// Replicas per broker over every partition's assignment (eligible brokers
// start at zero, so one that holds nothing is counted).
std::map<int32_t, int64_t> replica_counts(const metadata_image& img) {
  std::map<int32_t, int64_t> n;
  for (const auto& [id, b] : img.brokers)
    if (eligible(b)) n[id] = 0;
  for (const auto& [_, t] : img.topics)
    for (const auto& rs : t.replicas)
      for (int32_t r : rs) ++n[r];
  return n;
}

// Replaces `from` with `to` in a partition's assignment, recording the
// replicas before the move (merged with those of a move in flight, so every
// broker that may be a member keeps its replica until the move is done).
void replace_replica(topic_info& t, int32_t p, int32_t from, int32_t to) {
  std::vector<int32_t> next = t.replicas[static_cast<size_t>(p)];
  std::replace(next.begin(), next.end(), from, to);
  if (t.previous.empty()) t.previous.resize(t.replicas.size());
  std::vector<int32_t>& prev = t.previous[static_cast<size_t>(p)];
  if (prev.empty()) prev = t.replicas[static_cast<size_t>(p)];
  else
    for (int32_t r : t.replicas[static_cast<size_t>(p)])
      if (std::find(prev.begin(), prev.end(), r) == prev.end()) prev.push_back(r);
  t.replicas[static_cast<size_t>(p)] = std::move(next);
}

// The eligible broker to take a replica of t/p instead of `from`: not a
// replica already, preferring a rack the other replicas do not use, then
// the fewest replicas, then the lowest id. -1 if none.
int32_t pick_target(const metadata_image& img, const std::map<int32_t, int64_t>& counts, const std::vector<int32_t>& reps,
                    int32_t from) {
  std::set<std::string> racks;
  for (int32_t r : reps)
    if (auto it = img.brokers.find(r); r != from && it != img.brokers.end() && !it->second.rack.empty())
      racks.insert(it->second.rack);
  int32_t best = -1;
  std::tuple<bool, int64_t, int32_t> best_key{};
  for (const auto& [id, b] : img.brokers) {
    if (!eligible(b) || id == from || std::find(reps.begin(), reps.end(), id) != reps.end()) continue;
    const auto c = counts.find(id);
    const std::tuple<bool, int64_t, int32_t> key{!b.rack.empty() && racks.count(b.rack) > 0,
                                                 c == counts.end() ? 0 : c->second, id};
    if (best < 0 || key < best_key) {
      best = id;
      best_key = key;
    }
  }
  return best;
}

}  // namespace

std::string start_move(metadata_image& img, const std::string& topic, int32_t partition,
                       const std::vector<int32_t>& replicas) {
  auto it = img.topics.find(topic);
  if (it == img.topics.end()) return "no topic " + topic;
  topic_info& t = it->second;
  if (partition < 0 || static_cast<size_t>(partition) >= t.replicas.size())
    return "topic " + topic + " has no partition " + std::to_string(partition);
  if (replicas.empty()) return "the replica list is empty";
  std::set<int32_t> seen;
  for (int32_t r : replicas) {
    if (!seen.insert(r).second) return "broker " + std::to_string(r) + " is listed twice";
    auto b = img.brokers.find(r);
    if (b == img.brokers.end()) return "no broker with id " + std::to_string(r) + " is registered";
  }
  std::vector<int32_t>& cur = t.replicas[static_cast<size_t>(partition)];
  if (cur == replicas) return {};
  if (t.previous.empty()) t.previous.resize(t.replicas.size());
  std::vector<int32_t>& prev = t.previous[static_cast<size_t>(partition)];
  if (prev.empty()) prev = cur;
  else
    for (int32_t r : cur)
      if (std::find(prev.begin(), prev.end(), r) == prev.end()) prev.push_back(r);
  cur = replicas;
  // Back to where it was: nothing moves any more.
  std::vector<int32_t> a = prev, b = cur;
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  if (a == b) prev.clear();
  return {};
}

bool finish_move(metadata_image& img, const std::string& topic, int64_t revision, int32_t partition,
                 const std::vector<int32_t>& voters) {
  auto it = img.topics.find(topic);
  if (it == img.topics.end() || it->second.revision != revision) return false;
  topic_info& t = it->second;
  if (partition < 0 || static_cast<size_t>(partition) >= t.previous.size() ||
      t.previous[static_cast<size_t>(partition)].empty())
    return false;
  std::vector<int32_t> want = t.replicas[static_cast<size_t>(partition)], got = voters;
  std::sort(want.begin(), want.end());
  std::sort(got.begin(), got.end());
  if (want != got) return false;
  t.previous[static_cast<size_t>(partition)].clear();
  if (std::all_of(t.previous.begin(), t.previous.end(), [](const auto& v) { return v.empty(); })) t.previous.clear();
  return true;
}

std::string move_off_broker(metadata_image& img, int32_t id, int32_t& moves) {
  moves = 0;
  std::map<int32_t, int64_t> counts = replica_counts(img);
  for (auto& [name, t] : img.topics) {
    for (size_t p = 0; p < t.replicas.size(); ++p) {
      const std::vector<int32_t>& reps = t.replicas[p];
      if (std::find(reps.begin(), reps.end(), id) == reps.end()) continue;
      const int32_t to = pick_target(img, counts, reps, id);
      if (to < 0)
        return "no broker can take the replica of " + name + "-" + std::to_string(p) + " (every other eligible broker holds one)";
      replace_replica(t, static_cast<int32_t>(p), id, to);
      --counts[id];
      ++counts[to];
      ++moves;
    }
  }
  return {};
}

void rebalance_replicas(metadata_image& img, int32_t& moves) {
  moves = 0;
  std::map<int32_t, int64_t> total = replica_counts(img);
  for (auto it = total.begin(); it != total.end();) {
    auto b = img.brokers.find(it->first);
    it = b == img.brokers.end() || !eligible(b->second) ? total.erase(it) : std::next(it);
  }
  if (total.size() < 2) return;
  // Topic by topic, so every topic's load spreads (and with it the total):
  // from the broker holding most of its replicas to the one holding fewest,
  // ties broken by the brokers' totals.
  for (auto& [_, t] : img.topics) {
    std::map<int32_t, int64_t> mine;
    for (const auto& [id, n] : total) mine[id] = 0;
    for (const auto& rs : t.replicas)
      for (int32_t r : rs)
        if (mine.count(r)) ++mine[r];
    for (size_t guard = 0; guard < t.replicas.size() * 8; ++guard) {
      const auto key = [&](int32_t id) { return std::make_pair(mine[id], total[id]); };
      int32_t hi = mine.begin()->first, lo = hi;
      for (const auto& [id, _n] : mine) {
        if (key(id) > key(hi)) hi = id;
        if (key(id) < key(lo)) lo = id;
      }
      if (mine[hi] - mine[lo] <= 1) break;
      bool moved = false;
      for (size_t p = 0; p < t.replicas.size() && !moved; ++p) {
        const std::vector<int32_t>& reps = t.replicas[p];
        // Only partitions not moving already, and never onto a broker that holds it.
        if (!previous_of(t, static_cast<int32_t>(p)).empty() || std::find(reps.begin(), reps.end(), hi) == reps.end() ||
            std::find(reps.begin(), reps.end(), lo) != reps.end())
          continue;
        replace_replica(t, static_cast<int32_t>(p), hi, lo);
        moved = true;
      }
      if (!moved) break;  // nothing more can move between these two
      --mine[hi], --total[hi];
      ++mine[lo], ++total[lo];
      ++moves;
    }
  }
}

std::string assign_replicas(const metadata_image& img, const std::map<int32_t, broker_info>& all_brokers,
                            int32_t first, int32_t partitions, int16_t rf, std::vector<std::vector<int32_t>>& out) {
  std::map<int32_t, broker_info> brokers;
  for (const auto& [id, b] : all_brokers)
    if (eligible(b)) brokers.emplace(id, b);
  if (rf < 1) return "Replication factor must be larger than 0.";
  if (static_cast<size_t>(rf) > brokers.size())
    return "Replication factor: " + std::to_string(rf) + " larger than available brokers: " +
           std::to_string(brokers.size()) + (brokers.size() != all_brokers.size() ? " (not counting decommissioned ones)" : "") + ".";
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
