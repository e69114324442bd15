#include "topic_manager.h"

#include "cluster_config.h"

#include "topic_configs.h"

#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

namespace sluice::kafka {

using sdk::task;

std::string topic_manager::load() {
  if (clustered()) {
    // The image is rebuilt from the controller's committed commands.
    _image = std::make_shared<const metadata_image>();
    return {};
  }
  if (const int32_t rc = sdk::mkdirs_durable_blocking(_dir); rc < 0)
    return "cannot create " + _dir + ": " + std::strerror(-rc);
  const std::string file = _dir + "/metadata.json";
  std::ifstream in(file);
  metadata_image img;
  if (in) {
    std::stringstream ss;
    ss << in.rdbuf();
    std::string error;
    if (!image_from_json(ss.str(), img, error))
      return file + ": " + error + " (restore it from a backup, or move it away to start with no topics)";
  } else {
    img.cluster_id = _cfg.cluster_id.empty() ? uuid_to_base64(random_uuid()) : _cfg.cluster_id;
  }
  if (!_cfg.cluster_id.empty() && _cfg.cluster_id != img.cluster_id)
    return "cluster_id \"" + _cfg.cluster_id + "\" in the configuration differs from \"" + img.cluster_id +
           "\" in " + file + ": this data directory belongs to another cluster";
  _image = std::make_shared<const metadata_image>(std::move(img));
  return {};
}

task<std::string> topic_manager::persist(const metadata_image& img) {
  const std::string text = image_to_json(img);
  const std::string dst = _dir + "/metadata.json";
  if (const sdk::replace_file_error e = co_await sdk::replace_file(dst, text))
    co_return std::string(e.step) + " " + dst + ": " + std::strerror(-e.rc);
  co_return std::string();
}

task<op_result> topic_manager::commit_local(metadata_image next) {
  const std::string err = co_await persist(next);
  if (!err.empty()) {
    sdk::log_error("kafka: cannot save topic metadata: " + err);
    co_return op_result{error_code::kafka_storage_error, "cannot save topic metadata: " + err};
  }
  _image = std::make_shared<const metadata_image>(std::move(next));
  co_await _publish(_image);
  co_return op_result{};
}

task<op_result> topic_manager::change(mutation m) {
  auto guard = co_await _mu.lock();
  for (int attempt = 0; attempt < 20; ++attempt) {
    const image_ptr cur = _image;
    metadata_image next = *cur;
    op_result r = m(*cur, next);
    if (r.error != error_code::none || r.unchanged) co_return r;
    next.version = cur->version + 1;
    if (!clustered()) co_return co_await commit_local(std::move(next));

    // A compare-and-set on the image version: the command applies only if
    // no other change committed since `cur` (docs/RAFT.md, "The controller").
    if (next.cluster_id.empty()) next.cluster_id = _cfg.cluster_id.empty() ? uuid_to_base64(random_uuid()) : _cfg.cluster_id;
    if (_nonce_prefix.empty()) _nonce_prefix = uuid_to_base64(random_uuid()) + "-";
    const std::string nonce = _nonce_prefix + std::to_string(_next_nonce++);
    nlohmann::json cmd;
    cmd["op"] = "set_image";
    cmd["base_version"] = cur->version;
    cmd["nonce"] = nonce;
    cmd["image"] = image_to_json(next);
    controller_link::proposed p = co_await _link.propose(cmd.dump());
    if (!p.ok) co_return op_result{p.error, p.message};
    co_await wait_applied(p.index);
    auto it = _outcomes.find(nonce);
    const bool won = it != _outcomes.end() && it->second;
    if (it != _outcomes.end()) _outcomes.erase(it);
    if (won) co_return op_result{};
    // Another change committed first: recompute from the new image.
  }
  co_return op_result{error_code::request_timed_out, "too many concurrent metadata changes; retry"};
}

task<void> topic_manager::wait_applied(uint64_t index) {
  while (_applied < index) co_await _applied_cv.wait();
}

task<void> topic_manager::apply(uint64_t index, const std::string& command) {
  nlohmann::json cmd = nlohmann::json::parse(command, nullptr, false);
  std::string error;
  metadata_image next;
  if (cmd.is_discarded() || !cmd.is_object() || cmd.value("op", "") != "set_image" || !cmd.contains("image") ||
      !cmd["image"].is_string() || !cmd.contains("base_version") || !cmd["base_version"].is_number_integer()) {
    error = "not a set_image command";
  } else if (!image_from_json(cmd["image"].get<std::string>(), next, error)) {
    error = "its image does not parse: " + error;
  }
  if (!error.empty()) {
    // Every broker skips it the same way: the state machines stay equal.
    sdk::log_error("kafka: controller command " + std::to_string(index) + " skipped: " + error);
  } else {
    const bool won = cmd["base_version"].get<int64_t>() == _image->version && next.version == _image->version + 1;
    if (cmd.contains("nonce") && cmd["nonce"].is_string()) {
      const std::string nonce = cmd["nonce"].get<std::string>();
      // A command may commit twice (a forwarded proposal retried after a
      // timeout): the first copy decides.
      if (nonce.rfind(_nonce_prefix, 0) == 0 && !_nonce_prefix.empty()) _outcomes.emplace(nonce, won);
    }
    if (won) {
      _image = std::make_shared<const metadata_image>(std::move(next));
      co_await _publish(_image);
    }
  }
  _applied = index;
  _applied_cv.notify_all();
}

task<void> topic_manager::restore(uint64_t index, const std::string& image_json) {
  metadata_image img;
  std::string error;
  if (!image_from_json(image_json, img, error)) {
    // Every broker would refuse the same bytes: log it, keep the old state.
    sdk::log_error("kafka: controller snapshot at " + std::to_string(index) + " does not parse: " + error);
  } else {
    _image = std::make_shared<const metadata_image>(std::move(img));
    co_await _publish(_image);
  }
  _applied = index;
  _applied_cv.notify_all();
}

task<op_result> topic_manager::register_broker(const broker_info& b) {
  co_return co_await change([&b](const metadata_image& cur, metadata_image& next) {
    auto it = cur.brokers.find(b.id);
    if (it != cur.brokers.end() && it->second.host == b.host && it->second.port == b.port &&
        it->second.rack == b.rack && it->second.rpc_address == b.rpc_address)
      return op_result{error_code::none, {}, true};
    broker_info nb = b;
    if (it != cur.brokers.end()) {  // survive restarts
      nb.maintenance = it->second.maintenance;
      nb.decommissioned = it->second.decommissioned;
    }
    next.brokers[b.id] = nb;
    return op_result{};
  });
}

task<op_result> topic_manager::set_maintenance(int32_t id, bool on) {
  co_return co_await change([id, on](const metadata_image& cur, metadata_image& next) {
    auto it = cur.brokers.find(id);
    if (it == cur.brokers.end())
      return op_result{error_code::invalid_request, "no broker with id " + std::to_string(id) + " is registered"};
    if (it->second.maintenance == on) return op_result{error_code::none, {}, true};
    next.brokers[id].maintenance = on;
    return op_result{};
  });
}

task<op_result> topic_manager::move_partition(const std::string& topic, int32_t partition,
                                              std::vector<int32_t> replicas) {
  co_return co_await change([&](const metadata_image& cur, metadata_image& next) {
    const topic_info* t = cur.find(topic);
    if (!t || partition < 0 || partition >= t->partitions)
      return op_result{error_code::unknown_topic_or_partition, "no partition " + topic + "-" + std::to_string(partition)};
    if (replicas.size() != static_cast<size_t>(t->replication_factor))
      return op_result{error_code::invalid_replica_assignment,
                       std::to_string(replicas.size()) + " replicas for a topic of replication factor " +
                           std::to_string(t->replication_factor)};
    for (int32_t r : replicas)
      if (auto b = cur.brokers.find(r); b != cur.brokers.end() && b->second.decommissioned)
        return op_result{error_code::invalid_replica_assignment, "broker " + std::to_string(r) + " is decommissioned"};
    if (std::string why = start_move(next, topic, partition, replicas); !why.empty())
      return op_result{error_code::invalid_replica_assignment, why};
    if (next.topics.at(topic).replicas == t->replicas && next.topics.at(topic).previous == t->previous)
      return op_result{error_code::none, {}, true};
    return op_result{};
  });
}

task<op_result> topic_manager::cancel_move(const std::string& topic, int32_t partition) {
  co_return co_await change([&](const metadata_image& cur, metadata_image& next) {
    const topic_info* t = cur.find(topic);
    if (!t || partition < 0 || partition >= t->partitions)
      return op_result{error_code::unknown_topic_or_partition, "no partition " + topic + "-" + std::to_string(partition)};
    const std::vector<int32_t> prev = previous_of(*t, partition);
    if (prev.empty())
      return op_result{error_code::no_reassignment_in_progress,
                       topic + "-" + std::to_string(partition) + " is not moving"};
    // The replicas before the move come first in `previous` (brokers of
    // an earlier target, merged in, follow them).
    const size_t rf = t->replicas[static_cast<size_t>(partition)].size();
    const std::vector<int32_t> back(prev.begin(), prev.begin() + static_cast<ptrdiff_t>(std::min(rf, prev.size())));
    if (std::string why = start_move(next, topic, partition, back); !why.empty())
      return op_result{error_code::invalid_replica_assignment, why};
    return op_result{};
  });
}

task<op_result> topic_manager::finish_move(const std::string& topic, int64_t revision, int32_t partition,
                                           std::vector<int32_t> voters) {
  co_return co_await change([&](const metadata_image&, metadata_image& next) {
    if (!kafka::finish_move(next, topic, revision, partition, voters)) return op_result{error_code::none, {}, true};
    return op_result{};
  });
}

task<op_result> topic_manager::set_decommissioned(int32_t id, bool on, int32_t* moves) {
  *moves = 0;
  co_return co_await change([id, on, moves](const metadata_image& cur, metadata_image& next) {
    auto it = cur.brokers.find(id);
    if (it == cur.brokers.end())
      return op_result{error_code::invalid_request, "no broker with id " + std::to_string(id) + " is registered"};
    next.brokers[id].decommissioned = on;
    if (on) {
      if (std::string why = move_off_broker(next, id, *moves); !why.empty())
        return op_result{error_code::invalid_replica_assignment, "cannot decommission broker " + std::to_string(id) + ": " + why};
    } else {
      // Recommission: moves off it that are still in flight go back.
      for (auto& [name, t] : next.topics)
        for (size_t p = 0; p < t.previous.size(); ++p) {
          const std::vector<int32_t> prev = t.previous[p];
          const std::vector<int32_t>& reps = t.replicas[p];
          if (std::find(prev.begin(), prev.end(), id) == prev.end() || std::find(reps.begin(), reps.end(), id) != reps.end())
            continue;
          std::vector<int32_t> back;
          for (int32_t r : prev)
            if (back.size() < reps.size()) back.push_back(r);
          (void)start_move(next, name, static_cast<int32_t>(p), back);
          ++*moves;
        }
    }
    if (it->second.decommissioned == on && *moves == 0) return op_result{error_code::none, {}, true};
    return op_result{};
  });
}

task<op_result> topic_manager::rebalance(int32_t* moves) {
  *moves = 0;
  co_return co_await change([moves](const metadata_image&, metadata_image& next) {
    rebalance_replicas(next, *moves);
    return op_result{error_code::none, {}, *moves == 0};
  });
}

task<op_result> topic_manager::create_topic(const create_topic_spec& spec) {
  if (std::string why = validate_topic_name(spec.name); !why.empty())
    co_return op_result{error_code::invalid_topic_exception, why};
  for (const auto& [k, v] : spec.configs)
    if (std::string why = validate_topic_config(k, v); !why.empty()) co_return op_result{error_code::invalid_config, why};
  const bool cluster = clustered();
  co_return co_await change([&](const metadata_image& cur, metadata_image& next) -> op_result {
    if (cur.find(spec.name)) return op_result{error_code::topic_already_exists, "Topic '" + spec.name + "' already exists."};
    const kafka_config cfg = apply_live_cluster_config(_cfg, cur.cluster_config);
    const int32_t partitions = spec.partitions == -1 ? cfg.num_partitions : spec.partitions;
    int16_t rf = spec.replication_factor == -1 ? cfg.default_replication_factor : spec.replication_factor;
    if (partitions <= 0 || partitions > 100000)
      return op_result{error_code::invalid_partitions, "Number of partitions must be between 1 and 100000."};
    if (rf <= 0) return op_result{error_code::invalid_replication_factor, "Replication factor must be larger than 0."};
    std::vector<std::vector<int32_t>> replicas;
    if (cluster) {
      // The internal offsets topic takes what the cluster has, up to its setting.
      if (spec.name == "__consumer_offsets" && spec.replication_factor == -1)
        rf = static_cast<int16_t>(std::min<size_t>(static_cast<size_t>(rf), std::max<size_t>(1, cur.brokers.size())));
      if (!spec.assignments.empty()) {
        if (std::string why = validate_assignment(cur, spec.assignments); !why.empty())
          return op_result{error_code::invalid_replica_assignment, why};
        replicas = spec.assignments;
        rf = static_cast<int16_t>(replicas.front().size());
      } else if (std::string why = assign_replicas(cur, cur.brokers, 0, partitions, rf, replicas); !why.empty()) {
        return op_result{error_code::invalid_replication_factor, why};
      }
    } else if (rf > 1) {
      return op_result{error_code::invalid_replication_factor,
                       "Replication factor: " + std::to_string(rf) + " larger than available brokers: 1."};
    }
    if (spec.validate_only) return op_result{error_code::none, {}, true};
    topic_info t;
    t.name = spec.name;
    t.id = random_uuid();
    t.partitions = partitions;
    t.replication_factor = rf;
    t.revision = next.next_revision++;
    t.configs = spec.configs;
    t.replicas = std::move(replicas);
    next.topics.emplace(t.name, std::move(t));
    return op_result{};
  });
}

task<op_result> topic_manager::delete_topic(const std::string& name) {
  co_return co_await change([&](const metadata_image& cur, metadata_image& next) -> op_result {
    if (!cur.find(name))
      return op_result{error_code::unknown_topic_or_partition, "This server does not host this topic-partition."};
    next.topics.erase(name);
    return op_result{};
  });
}

task<op_result> topic_manager::create_partitions(const std::string& name, int32_t count, bool validate_only,
                                                 std::vector<std::vector<int32_t>> assignments) {
  const bool cluster = clustered();
  co_return co_await change([&](const metadata_image& cur, metadata_image& next) -> op_result {
    const topic_info* t = cur.find(name);
    if (!t) return op_result{error_code::unknown_topic_or_partition, "The topic '" + name + "' does not exist."};
    if (count == t->partitions)
      return op_result{error_code::invalid_partitions, "Topic already has " + std::to_string(count) + " partitions."};
    if (count < t->partitions)
      return op_result{error_code::invalid_partitions, "Topic currently has " + std::to_string(t->partitions) +
                                                           " partitions, which is higher than the requested " +
                                                           std::to_string(count) + "."};
    if (count > 100000) return op_result{error_code::invalid_partitions, "At most 100000 partitions per topic."};
    std::vector<std::vector<int32_t>> more;
    if (cluster && !assignments.empty()) {
      if (assignments.size() != static_cast<size_t>(count - t->partitions))
        return op_result{error_code::invalid_replica_assignment,
                         std::to_string(assignments.size()) + " replica lists for " +
                             std::to_string(count - t->partitions) + " new partitions"};
      if (std::string why = validate_assignment(cur, assignments); !why.empty())
        return op_result{error_code::invalid_replica_assignment, why};
      if (assignments.front().size() != static_cast<size_t>(t->replication_factor))
        return op_result{error_code::invalid_replica_assignment,
                         std::to_string(assignments.front().size()) + " replicas per partition for a topic of replication factor " +
                             std::to_string(t->replication_factor)};
      more = std::move(assignments);
    } else if (cluster) {
      if (std::string why = assign_replicas(cur, cur.brokers, t->partitions, count - t->partitions,
                                            t->replication_factor, more);
          !why.empty())
        return op_result{error_code::invalid_replication_factor, why};
    }
    if (validate_only) return op_result{error_code::none, {}, true};
    topic_info& nt = next.topics[name];
    nt.partitions = count;
    for (auto& r : more) nt.replicas.push_back(std::move(r));
    // A move in flight keeps one `previous` list per partition.
    if (!nt.previous.empty()) nt.previous.resize(nt.replicas.size());
    return op_result{};
  });
}

task<op_result> topic_manager::allocate_producer_ids(int64_t count, int64_t* first) {
  co_return co_await change([&](const metadata_image& cur, metadata_image& next) -> op_result {
    if (count <= 0 || cur.next_producer_id > std::numeric_limits<int64_t>::max() - count)
      return op_result{error_code::unknown_server_error, "producer ids exhausted"};
    *first = cur.next_producer_id;
    next.next_producer_id = cur.next_producer_id + count;
    return op_result{};
  });
}

task<op_result> topic_manager::alter_configs(const std::string& name,
                                             const std::map<std::string, std::optional<std::string>>& changes,
                                             bool incremental, bool validate_only) {
  for (const auto& [k, v] : changes)
    if (std::string why = validate_topic_config(k, v); !why.empty()) co_return op_result{error_code::invalid_config, why};
  co_return co_await change([&](const metadata_image& cur, metadata_image& next) -> op_result {
    const topic_info* t = cur.find(name);
    if (!t) return op_result{error_code::unknown_topic_or_partition, "Topic " + name + " does not exist."};
    std::map<std::string, std::string> configs = incremental ? t->configs : std::map<std::string, std::string>{};
    for (const auto& [k, v] : changes) {
      if (v) configs[k] = *v;
      else configs.erase(k);
    }
    if (validate_only) return op_result{error_code::none, {}, true};
    next.topics[name].configs = std::move(configs);
    return op_result{};
  });
}

task<op_result> topic_manager::alter_cluster_config(const std::map<std::string, std::string>& upsert,
                                                    const std::vector<std::string>& remove) {
  co_return co_await change([&](const metadata_image&, metadata_image& next) -> op_result {
    for (const auto& k : remove) next.cluster_config.erase(k);
    for (const auto& [k, v] : upsert) next.cluster_config[k] = v;
    return op_result{};
  });
}

}  // namespace sluice::kafka
