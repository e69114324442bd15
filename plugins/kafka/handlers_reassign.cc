// AlterPartitionReassignments and ListPartitionReassignments (KIP-455):
// Kafka's way to move replicas, onto the controller's moves
// (docs/RAFT.md, "Moving replicas"). A single broker has nothing to move to.
#include "broker.h"

#include <sluice/kafka/msg/alter_partition_reassignments.h>
#include <sluice/kafka/msg/list_partition_reassignments.h>

#include <algorithm>

namespace sluice::kafka {

using sdk::task;

namespace {

// Brokers in `a` and not in `b`, in a's order.
std::vector<int32_t> minus(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
  std::vector<int32_t> out;
  for (int32_t x : a)
    if (std::find(b.begin(), b.end(), x) == b.end()) out.push_back(x);
  return out;
}

}  // namespace

task<bool> handle_alter_partition_reassignments(broker& b, request_context& ctx, reader& r, response& out) {
  msg::alter_partition_reassignments_request req;
  if (!req.decode(r, ctx.api_version)) co_return false;
  msg::alter_partition_reassignments_response resp;
  for (const auto& t : req.topics) {
    auto& tr = resp.responses.emplace_back();
    tr.name = t.name;
    for (const auto& p : t.partitions) {
      auto& pr = tr.partitions.emplace_back();
      pr.partition_index = p.partition_index;
      op_result result;
      if (!b.clustered()) {
        // One broker: the only assignment there is, and no move in flight.
        const topic_info* ti = b.image()->find(t.name);
        if (!ti || p.partition_index < 0 || p.partition_index >= ti->partitions)
          result = {error_code::unknown_topic_or_partition, "no partition " + t.name + "-" + std::to_string(p.partition_index)};
        else if (!p.replicas)
          result = {error_code::no_reassignment_in_progress, "a single broker moves no replicas"};
        else if (*p.replicas != std::vector<int32_t>{b.node_id})
          result = {error_code::invalid_replica_assignment,
                    "a single broker holds every partition: the only assignment is [" + std::to_string(b.node_id) + "]"};
      } else if (!p.replicas) {
        co_await b.on_controller([&](topic_manager& tm) -> task<void> {
          result = co_await tm.cancel_move(t.name, p.partition_index);
        });
      } else {
        co_await b.on_controller([&](topic_manager& tm) -> task<void> {
          result = co_await tm.move_partition(t.name, p.partition_index, *p.replicas);
        });
      }
      pr.error_code = code(result.error);
      if (result.error != error_code::none) pr.error_message = result.message;
    }
  }
  resp.encode(out.body, ctx.api_version);
  co_return true;
}

task<bool> handle_list_partition_reassignments(broker& b, request_context& ctx, reader& r, response& out) {
  msg::list_partition_reassignments_request req;
  if (!req.decode(r, ctx.api_version)) co_return false;
  msg::list_partition_reassignments_response resp;
  const image_ptr img = b.image();
  const auto describe = [&](const topic_info& t, int32_t p, msg::list_partition_reassignments_response::ongoing_topic_reassignment& to) {
    const std::vector<int32_t> prev = previous_of(t, p);
    if (prev.empty()) return;
    const std::vector<int32_t> now = replicas_of(t, p, b.node_id);
    auto& op = to.partitions.emplace_back();
    op.partition_index = p;
    op.replicas = hosts_of(t, p, b.node_id);
    op.adding_replicas = minus(now, prev);
    op.removing_replicas = minus(prev, now);
  };
  if (req.topics) {
    // Partitions asked for that do not exist are left out, as Kafka does.
    for (const auto& q : *req.topics) {
      const topic_info* t = img->find(q.name);
      if (!t) continue;
      msg::list_partition_reassignments_response::ongoing_topic_reassignment tr;
      tr.name = t->name;
      for (int32_t p : q.partition_indexes)
        if (p >= 0 && p < t->partitions) describe(*t, p, tr);
      if (!tr.partitions.empty()) resp.topics.push_back(std::move(tr));
    }
  } else {
    for (const auto& [name, t] : img->topics) {
      msg::list_partition_reassignments_response::ongoing_topic_reassignment tr;
      tr.name = name;
      for (int32_t p = 0; p < t.partitions; ++p) describe(t, p, tr);
      if (!tr.partitions.empty()) resp.topics.push_back(std::move(tr));
    }
  }
  resp.encode(out.body, ctx.api_version);
  co_return true;
}

}  // namespace sluice::kafka
