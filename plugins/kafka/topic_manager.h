// The metadata authority of a single node: creates, deletes and alters
// topics, on shard 0 only, one change at a time; persists every new image
// (<data_dir>/kafka/metadata.json, written to a temporary file, fsynced,
// renamed, directory fsynced) before publishing it to every shard. The
// Raft controller (a later issue) replaces this class with a replicated
// state machine behind the same operations.
#pragma once

#include "errors.h"
#include "kafka_config.h"
#include "metadata_image.h"

#include <sluice/sdk/runtime.h>

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace sluice::kafka {

struct op_result {
  error_code error = error_code::none;
  std::string message;
  bool unchanged = false;  // a mutation that decided not to change anything (validate_only)
};

// Cluster mode: how the topic manager reaches the Raft controller. propose()
// replicates a command and answers its committed index (or an error); the
// raft plugin then hands every committed command to apply(), on every broker.
struct controller_link {
  struct proposed {
    bool ok = false;
    error_code error = error_code::none;  // when !ok
    std::string message;
    uint64_t index = 0;
  };
  std::function<sdk::task<proposed>(std::string command)> propose;
};

struct create_topic_spec {
  std::string name;
  int32_t partitions = -1;          // -1: num_partitions
  int16_t replication_factor = -1;  // -1: default_replication_factor
  std::map<std::string, std::string> configs;
  bool validate_only = false;
  // Cluster mode: the client's replica lists, one per partition (empty:
  // the controller assigns them). partitions and replication_factor follow.
  std::vector<std::vector<int32_t>> assignments;
};

class topic_manager {
 public:
  // publish(img) installs img on every shard.
  topic_manager(const kafka_config& cfg, std::string dir, std::function<sdk::task<void>(image_ptr)> publish)
      : _cfg(cfg), _dir(std::move(dir)), _publish(std::move(publish)) {}

  // Cluster mode (before load()): changes become controller commands, and
  // the image is what apply() built from the committed ones.
  void set_controller(controller_link link) { _link = std::move(link); }
  bool clustered() const noexcept { return static_cast<bool>(_link.propose); }
  // Cluster mode, shard 0: a committed controller command (in commit order).
  sdk::task<void> apply(uint64_t index, const std::string& command);
  uint64_t applied_index() const noexcept { return _applied; }
  // Cluster mode, shard 0: the state starts over from a controller
  // snapshot (an image as JSON) taken at index.
  sdk::task<void> restore(uint64_t index, const std::string& image_json);
  // Cluster mode: waits until apply() reached index.
  sdk::task<void> wait_applied(uint64_t index);
  // Cluster mode: adds or updates this broker in the image.
  sdk::task<op_result> register_broker(const broker_info& b);
  // Cluster mode: maintenance mode on or off for broker id (its leaderships
  // are drained while on).
  sdk::task<op_result> set_maintenance(int32_t id, bool on);
  // Cluster mode, replica moves (docs/CLUSTER.md, "Moving replicas"):
  // a partition to an explicit replica list;
  sdk::task<op_result> move_partition(const std::string& topic, int32_t partition, std::vector<int32_t> replicas);
  // cancel the move in flight (back to the replicas before it);
  // NO_REASSIGNMENT_IN_PROGRESS if none;
  sdk::task<op_result> cancel_move(const std::string& topic, int32_t partition);
  // the leader's report that its group's voters are the assignment;
  sdk::task<op_result> finish_move(const std::string& topic, int64_t revision, int32_t partition,
                                   std::vector<int32_t> voters);
  // decommission (every replica moves off the broker, none is placed on it)
  // or recommission (moves off it still in flight go back); *moves counts
  // the partitions set moving;
  sdk::task<op_result> set_decommissioned(int32_t id, bool on, int32_t* moves);
  // even out replica counts over the brokers (after one joined).
  sdk::task<op_result> rebalance(int32_t* moves);

  // Main thread, at configure: reads the image or creates an empty one
  // (with a new cluster id). "" or an error naming the file.
  std::string load();
  image_ptr image() const noexcept { return _image; }

  // Shard 0 only.
  sdk::task<op_result> create_topic(const create_topic_spec& spec);
  sdk::task<op_result> delete_topic(const std::string& name);
  // assignments (cluster mode): the new partitions' replica lists, or empty.
  sdk::task<op_result> create_partitions(const std::string& name, int32_t count, bool validate_only,
                                         std::vector<std::vector<int32_t>> assignments = {});
  // changes: name -> value (nullopt removes the override). incremental:
  // apply changes on top of the overrides; otherwise they replace them all.
  sdk::task<op_result> alter_configs(const std::string& name,
                                     const std::map<std::string, std::optional<std::string>>& changes,
                                     bool incremental, bool validate_only);
  // Reserves producer ids [*first, *first + count) for a shard's
  // InitProducerId answers, durably (the image is committed before they
  // are handed out, so a restart never reuses one).
  // Cluster settings (cluster_config.h): values already validated.
  sdk::task<op_result> alter_cluster_config(const std::map<std::string, std::string>& upsert,
                                            const std::vector<std::string>& remove);
  sdk::task<op_result> allocate_producer_ids(int64_t count, int64_t* first);

 private:
  using mutation = std::function<op_result(const metadata_image& cur, metadata_image& next)>;
  // Runs m on a copy of the image and commits the result: on a single node
  // persisted then published; in a cluster proposed as a compare-and-set on
  // the image version, retried from a fresh image when another change won.
  sdk::task<op_result> change(mutation m);
  sdk::task<op_result> commit_local(metadata_image next);
  sdk::task<std::string> persist(const metadata_image& img);

  const kafka_config& _cfg;
  std::string _dir;
  std::function<sdk::task<void>(image_ptr)> _publish;
  image_ptr _image;
  sdk::fifo_mutex _mu;
  controller_link _link;
  uint64_t _applied = 0;
  uint64_t _next_nonce = 1;
  std::string _nonce_prefix;
  std::map<std::string, bool> _outcomes;  // nonce -> applied (true) or lost the race (false)
  sdk::condition _applied_cv;
};

}  // namespace sluice::kafka
