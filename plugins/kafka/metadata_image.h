// The cluster metadata the Kafka layer serves: topics, their partitions and
// configs, the cluster id. One immutable image is shared by every shard and
// replaced as a whole on each change (copy-on-write), so a request handler
// reads a consistent view without locks.
//
// Who changes it is behind `metadata_authority` (see topic_manager.h): today
// the single-node store on shard 0, which persists the image in
// <data_dir>/kafka/metadata.json; the Raft controller (a later issue) will
// replace it with a replicated state machine. Partition leadership and
// replicas go through `leader_of`, which that controller will fill in too.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace sluice::kafka {

using topic_uuid = std::array<uint8_t, 16>;

struct topic_info {
  std::string name;
  topic_uuid id{};
  int32_t partitions = 0;
  int16_t replication_factor = 1;
  int64_t revision = 0;  // the topic's incarnation: storage directories are per revision
  std::map<std::string, std::string> configs;  // overrides only
  // Cluster mode: the brokers holding each partition, the preferred leader
  // first (assigned by the controller). Empty on a single node: every
  // partition is on this node alone.
  std::vector<std::vector<int32_t>> replicas;
  // Cluster mode: per partition, the replicas before the move in flight
  // (empty: none moving). Every broker in either list holds a replica until
  // the partition's leader reports the move done (finish_move). Empty as a
  // whole when no partition of the topic moves.
  std::vector<std::vector<int32_t>> previous;
};

// Cluster mode: a broker that registered with the controller.
struct broker_info {
  int32_t id = 0;
  std::string host;
  int32_t port = 0;
  std::string rack;         // empty: none
  std::string rpc_address;  // HOST:PORT of its raft RPC
  bool maintenance = false;  // leadership drained off it (admin API)
  bool decommissioned = false;  // its replicas move away; new ones are not placed on it
};

struct metadata_image {
  int64_t version = 0;
  int64_t next_revision = 1;
  // Producer ids below this were handed out (in blocks, to the shards that
  // answer InitProducerId); persisted so ids stay unique across restarts.
  int64_t next_producer_id = 0;
  std::string cluster_id;
  // Cluster settings changed through the admin API (cluster_config.h):
  // name -> canonical value; they override the YAML's.
  std::map<std::string, std::string> cluster_config;
  std::map<std::string, topic_info> topics;
  std::map<int32_t, broker_info> brokers;  // cluster mode only
  // Derived, not stored (image_from_json fills it in): decommissioned
  // brokers no partition lists any more. Clients do not see them (Metadata,
  // DescribeCluster), nor does the cluster health.
  std::set<int32_t> retired;

  const topic_info* find(const std::string& name) const {
    auto it = topics.find(name);
    return it == topics.end() ? nullptr : &it->second;
  }
  const topic_info* find(const topic_uuid& id) const {
    for (const auto& [_, t] : topics)
      if (t.id == id) return &t;
    return nullptr;
  }
};

using image_ptr = std::shared_ptr<const metadata_image>;

// The replicas of a partition: the assignment in cluster mode, else {self}.
std::vector<int32_t> replicas_of(const topic_info& t, int32_t partition, int32_t self);

// Cluster mode: a replica assignment given by a client (CreateTopics,
// CreatePartitions): every list of the same size, its brokers distinct,
// registered and not decommissioned. "" or what is wrong.
std::string validate_assignment(const metadata_image& img, const std::vector<std::vector<int32_t>>& lists);

// Cluster mode: the decommissioned brokers that hold no replica any more.
std::set<int32_t> retired_brokers(const metadata_image& img);

// Cluster mode: the replicas before the move in flight (empty: none).
std::vector<int32_t> previous_of(const topic_info& t, int32_t partition);
// The brokers that hold a replica of the partition now: the assignment,
// then those of a move in flight that are leaving.
std::vector<int32_t> hosts_of(const topic_info& t, int32_t partition, int32_t self);

// Cluster mode: starts moving a partition to `replicas` (or changes the
// target of the move in flight). "" or why not (unknown broker, duplicates,
// a size other than the replication factor).
std::string start_move(metadata_image& img, const std::string& topic, int32_t partition,
                       const std::vector<int32_t>& replicas);
// The partition's leader saw its group's voters equal the assignment: the
// move is done. False if it is not the move in flight any more.
bool finish_move(metadata_image& img, const std::string& topic, int64_t revision, int32_t partition,
                 const std::vector<int32_t>& voters);
// Moves every replica off broker `id` (decommission): each goes to the
// eligible broker (registered, not decommissioned, not already a replica)
// with the fewest replicas, preferring a rack the partition does not use.
// "" or why not (no broker to take a replica). Counts the moves started.
std::string move_off_broker(metadata_image& img, int32_t id, int32_t& moves);
// Evens out replica counts over the eligible brokers (a broker that just
// joined gets its share): moves replicas from the most loaded to the least
// loaded until they differ by at most one. Counts the moves started.
void rebalance_replicas(metadata_image& img, int32_t& moves);

// Cluster mode: assigns `partitions` new partitions (numbered from `first`)
// of `rf` replicas each over `brokers`, spreading replicas and preferred
// leaders by the partition counts already in `img`, and over racks when the
// brokers declare them. "" or why it cannot (fewer brokers than rf).
std::string assign_replicas(const metadata_image& img, const std::map<int32_t, broker_info>& brokers, int32_t first,
                            int32_t partitions, int16_t rf, std::vector<std::vector<int32_t>>& out);

// Serialisation of the image (JSON); parse errors name what is wrong.
std::string image_to_json(const metadata_image& img);
bool image_from_json(const std::string& text, metadata_image& out, std::string& error);

// A random (version 4) UUID, never all zeros.
topic_uuid random_uuid();
// Kafka's base64url (no padding) form of a UUID, used for cluster ids.
std::string uuid_to_base64(const topic_uuid& id);

// Valid topic names: 1..249 chars of [a-zA-Z0-9._-], not "." or "..".
// Returns "" or the reason.
std::string validate_topic_name(const std::string& name);

// The shard that owns a partition: a stable hash of the topic name plus the
// partition number, so consecutive partitions of a topic spread over shards.
uint32_t shard_of(const std::string& topic, int32_t partition, uint32_t shards);

}  // namespace sluice::kafka
