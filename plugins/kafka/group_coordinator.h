// The consumer group coordinator (Kafka's classic group protocol) of one
// shard: the groups whose coordinator partition of `__consumer_offsets` this
// shard owns (group_partition(), then shard_of()).
//
// A group moves through Kafka's states:
//
//   Empty --join--> PreparingRebalance --all joined or timeout--> CompletingRebalance
//     ^                 ^                                              | leader's SyncGroup
//     |                 +---- join / leave / session expiry -----------+--> Stable
//     +------------ last member leaves or expires --------------------------+
//   Dead: deleted (DeleteGroups).
//
// The broker never looks inside protocol metadata or assignments: the leader
// member computes the assignment, so every assignor works.
//
// Durability: committed offsets and each group's generation are records in
// the group's `__consumer_offsets` partition, appended with acks=all before
// the response; on start the shard replays its partitions
// (docs/KAFKA.md, "Consumer groups" for the record format).
#pragma once

#include "errors.h"
#include "kafka_config.h"
#include "partitions.h"

#include <sluice/sdk/runtime.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace sluice::kafka {

inline constexpr const char* offsets_topic = "__consumer_offsets";

enum class group_state { empty, preparing_rebalance, completing_rebalance, stable, dead };
const char* to_string(group_state s) noexcept;

// Kafka's partitionFor(groupId): abs(Java hashCode of the id) % partitions.
int32_t group_partition(const std::string& group_id, int32_t partitions);

struct committed_offset {
  int64_t offset = -1;
  int32_t leader_epoch = -1;
  std::optional<std::string> metadata;
  int64_t commit_timestamp_ms = 0;
};

struct join_outcome {
  error_code error = error_code::none;
  int32_t generation = -1;
  std::optional<std::string> protocol_name;
  std::string protocol_type;
  std::string leader;
  std::string member_id;
  // Only for the leader: every member and its subscription metadata.
  struct member_info {
    std::string member_id;
    std::optional<std::string> instance_id;
    std::vector<uint8_t> metadata;
  };
  std::vector<member_info> members;
};

struct join_request {
  std::string group_id;
  std::string member_id;
  std::optional<std::string> instance_id;
  std::string client_id;
  std::string client_host;
  int32_t session_timeout_ms = 0;
  int32_t rebalance_timeout_ms = 0;
  std::string protocol_type;
  std::vector<std::pair<std::string, std::vector<uint8_t>>> protocols;
  bool require_known_member_id = false;  // JoinGroup v4+ (KIP-394)
};

struct sync_outcome {
  error_code error = error_code::none;
  std::string protocol_type;
  std::optional<std::string> protocol_name;
  std::vector<uint8_t> assignment;
};

struct member_description {
  std::string member_id;
  std::optional<std::string> instance_id;
  std::string client_id;
  std::string client_host;
  std::vector<uint8_t> metadata;    // for the chosen protocol
  std::vector<uint8_t> assignment;
};

struct group_description {
  error_code error = error_code::none;
  std::string group_id;
  std::string state;
  std::string protocol_type;
  std::string protocol_data;  // the chosen protocol's name
  std::vector<member_description> members;
};

using offset_key = std::pair<std::string, int32_t>;  // topic, partition

class group_coordinator {
 public:
  group_coordinator(const kafka_config& cfg, partition_table& parts);
  ~group_coordinator();
  group_coordinator(const group_coordinator&) = delete;
  group_coordinator& operator=(const group_coordinator&) = delete;

  // Replays this shard's __consumer_offsets partitions (shard start).
  sdk::task<void> load(int32_t offsets_partitions);
  // Session expiry and rebalance deadlines; runs until stop aborts.
  sdk::task<void> run_timers(sdk::abort_source& stop);
  // Wakes every waiting JoinGroup/SyncGroup with an error (shard stop).
  void shutdown();

  sdk::task<join_outcome> join(const join_request& r);
  sdk::task<sync_outcome> sync(const std::string& group_id, int32_t generation, const std::string& member_id,
                               const std::optional<std::string>& instance_id,
                               const std::vector<std::pair<std::string, std::vector<uint8_t>>>& assignments);
  error_code heartbeat(const std::string& group_id, int32_t generation, const std::string& member_id,
                       const std::optional<std::string>& instance_id);
  // One member leaving (by member id, or by instance id when member_id is "").
  error_code leave(const std::string& group_id, const std::string& member_id,
                   const std::optional<std::string>& instance_id);

  // Commits offsets: every partition gets the same error (or none).
  sdk::task<error_code> commit(const std::string& group_id, int32_t generation, const std::string& member_id,
                               const std::optional<std::string>& instance_id,
                               const std::vector<std::pair<offset_key, committed_offset>>& offsets);
  // The committed offsets of a group; all of them when topics is empty.
  std::map<offset_key, committed_offset> fetch(const std::string& group_id) const;
  group_description describe(const std::string& group_id) const;
  // (group id, protocol type, state) of every group, filtered by state names.
  std::vector<std::tuple<std::string, std::string, std::string>> list(const std::vector<std::string>& states) const;
  sdk::task<error_code> remove_group(const std::string& group_id);
  sdk::task<std::map<offset_key, error_code>> delete_offsets(const std::string& group_id,
                                                              const std::vector<offset_key>& partitions,
                                                              error_code& group_error);
  bool loaded() const noexcept { return _loaded; }
  // none when this shard coordinates group_id now; else not_coordinator
  // (cluster mode: this broker does not lead its __consumer_offsets
  // partition) or coordinator_load_in_progress.
  error_code serving(const std::string& group_id) const;

  // Cluster mode: groups live on the leader of their offsets partition.
  void set_clustered() noexcept { _clustered = true; }
  // This broker now leads offsets partition p: replays it.
  sdk::task<void> load_partition(int32_t p);
  // This broker no longer leads offsets partition p.
  void unload_partition(int32_t p);

 private:
  struct member;
  struct group;
  group* find(const std::string& id);
  const group* find(const std::string& id) const;
  group& get_or_create(const std::string& id);
  void prepare_rebalance(group& g, const char* why);
  void maybe_complete_join(group& g, bool deadline_passed);
  void complete_join(group& g);
  void remove_member(group& g, const std::string& member_id, const char* why);
  sdk::task<error_code> append(const std::string& group_id, std::vector<std::pair<std::string, std::optional<std::string>>> records);
  sdk::task<void> store_group(group& g);
  sdk::task<size_t> replay_partition(int32_t p);

  const kafka_config& _cfg;
  partition_table& _parts;
  int32_t _partitions = 0;
  bool _loaded = false;
  bool _clustered = false;
  std::map<int32_t, bool> _led;  // cluster mode: offsets partitions led here -> loaded
  bool _stopped = false;
  sdk::condition _load_done;
  std::map<std::string, std::unique_ptr<group>> _groups;
};

}  // namespace sluice::kafka
