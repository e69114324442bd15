#include "topic_manager.h"

#include "cluster_config.h"

#include "topic_configs.h"

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
  std::error_code ec;
  std::filesystem::create_directories(_dir, ec);
  if (ec) return "cannot create " + _dir + ": " + ec.message();
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
  const std::string tmp = _dir + "/metadata.json.tmp";
  const std::string dst = _dir + "/metadata.json";
  const int32_t fd = co_await sdk::openat(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) co_return "open " + tmp + ": " + std::strerror(-fd);
  size_t done = 0;
  int32_t rc = 0;
  while (done < text.size()) {
    rc = co_await sdk::write(fd, text.data() + done, text.size() - done, done);
    if (rc <= 0) break;
    done += static_cast<size_t>(rc);
  }
  if (rc >= 0 && done == text.size()) rc = co_await sdk::fsync(fd);
  (void)co_await sdk::close(fd);
  if (rc < 0 || done != text.size()) co_return "write " + tmp + ": " + std::strerror(rc < 0 ? -rc : EIO);
  rc = co_await sdk::rename(tmp.c_str(), dst.c_str());
  if (rc < 0) co_return "rename " + tmp + ": " + std::strerror(-rc);
  const int32_t dfd = co_await sdk::openat(_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
  if (dfd < 0) co_return "open " + _dir + ": " + std::strerror(-dfd);
  rc = co_await sdk::fsync(dfd);
  (void)co_await sdk::close(dfd);
  if (rc < 0) co_return "fsync " + _dir + ": " + std::strerror(-rc);
  co_return std::string();
}

task<op_result> topic_manager::commit(metadata_image next) {
  next.version = _image->version + 1;
  const std::string err = co_await persist(next);
  if (!err.empty()) {
    sdk::log_error("kafka: cannot save topic metadata: " + err);
    co_return op_result{error_code::kafka_storage_error, "cannot save topic metadata: " + err};
  }
  _image = std::make_shared<const metadata_image>(std::move(next));
  co_await _publish(_image);
  co_return op_result{};
}

task<op_result> topic_manager::create_topic(const create_topic_spec& spec) {
  auto guard = co_await _mu.lock();
  if (std::string why = validate_topic_name(spec.name); !why.empty())
    co_return op_result{error_code::invalid_topic_exception, why};
  if (_image->find(spec.name)) co_return op_result{error_code::topic_already_exists, "Topic '" + spec.name + "' already exists."};
  const kafka_config cfg = apply_live_cluster_config(_cfg, _image->cluster_config);
  const int32_t partitions = spec.partitions == -1 ? cfg.num_partitions : spec.partitions;
  const int16_t rf = spec.replication_factor == -1 ? cfg.default_replication_factor : spec.replication_factor;
  if (partitions <= 0 || partitions > 100000)
    co_return op_result{error_code::invalid_partitions, "Number of partitions must be between 1 and 100000."};
  if (rf <= 0) co_return op_result{error_code::invalid_replication_factor, "Replication factor must be larger than 0."};
  if (rf > 1)
    co_return op_result{error_code::invalid_replication_factor,
                        "Replication factor: " + std::to_string(rf) + " larger than available brokers: 1."};
  for (const auto& [k, v] : spec.configs)
    if (std::string why = validate_topic_config(k, v); !why.empty()) co_return op_result{error_code::invalid_config, why};
  if (spec.validate_only) co_return op_result{};
  metadata_image next = *_image;
  topic_info t;
  t.name = spec.name;
  t.id = random_uuid();
  t.partitions = partitions;
  t.replication_factor = rf;
  t.revision = next.next_revision++;
  t.configs = spec.configs;
  next.topics.emplace(t.name, std::move(t));
  co_return co_await commit(std::move(next));
}

task<op_result> topic_manager::delete_topic(const std::string& name) {
  auto guard = co_await _mu.lock();
  if (!_image->find(name))
    co_return op_result{error_code::unknown_topic_or_partition, "This server does not host this topic-partition."};
  metadata_image next = *_image;
  next.topics.erase(name);
  co_return co_await commit(std::move(next));
}

task<op_result> topic_manager::create_partitions(const std::string& name, int32_t count, bool validate_only) {
  auto guard = co_await _mu.lock();
  const topic_info* t = _image->find(name);
  if (!t) co_return op_result{error_code::unknown_topic_or_partition, "The topic '" + name + "' does not exist."};
  if (count == t->partitions)
    co_return op_result{error_code::invalid_partitions, "Topic already has " + std::to_string(count) + " partitions."};
  if (count < t->partitions)
    co_return op_result{error_code::invalid_partitions, "Topic currently has " + std::to_string(t->partitions) +
                                                            " partitions, which is higher than the requested " +
                                                            std::to_string(count) + "."};
  if (count > 100000) co_return op_result{error_code::invalid_partitions, "At most 100000 partitions per topic."};
  if (validate_only) co_return op_result{};
  metadata_image next = *_image;
  next.topics[name].partitions = count;
  co_return co_await commit(std::move(next));
}

task<op_result> topic_manager::allocate_producer_ids(int64_t count, int64_t* first) {
  auto guard = co_await _mu.lock();
  if (count <= 0 || _image->next_producer_id > std::numeric_limits<int64_t>::max() - count)
    co_return op_result{error_code::unknown_server_error, "producer ids exhausted"};
  metadata_image next = *_image;
  *first = next.next_producer_id;
  next.next_producer_id += count;
  co_return co_await commit(std::move(next));
}

task<op_result> topic_manager::alter_configs(const std::string& name,
                                             const std::map<std::string, std::optional<std::string>>& changes,
                                             bool incremental, bool validate_only) {
  auto guard = co_await _mu.lock();
  const topic_info* t = _image->find(name);
  if (!t) co_return op_result{error_code::unknown_topic_or_partition, "Topic " + name + " does not exist."};
  for (const auto& [k, v] : changes)
    if (std::string why = validate_topic_config(k, v); !why.empty()) co_return op_result{error_code::invalid_config, why};
  std::map<std::string, std::string> configs = incremental ? t->configs : std::map<std::string, std::string>{};
  for (const auto& [k, v] : changes) {
    if (v) configs[k] = *v;
    else configs.erase(k);
  }
  if (validate_only) co_return op_result{};
  metadata_image next = *_image;
  next.topics[name].configs = std::move(configs);
  co_return co_await commit(std::move(next));
}

task<op_result> topic_manager::alter_cluster_config(const std::map<std::string, std::string>& upsert,
                                                    const std::vector<std::string>& remove) {
  auto guard = co_await _mu.lock();
  metadata_image next = *_image;
  for (const auto& k : remove) next.cluster_config.erase(k);
  for (const auto& [k, v] : upsert) next.cluster_config[k] = v;
  co_return co_await commit(std::move(next));
}

}  // namespace sluice::kafka
