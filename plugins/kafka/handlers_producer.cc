// Handlers for idempotent producers: InitProducerId hands out producer ids,
// DescribeProducers shows what a partition knows of them. The sequence
// checks themselves run on produce (partitions.cc, producer_state.h).
#include "broker.h"

#include <sluice/kafka/msg/describe_producers.h>
#include <sluice/kafka/msg/init_producer_id.h>

namespace sluice::kafka {

using sdk::task;

namespace {

// Ids are reserved on shard 0 (one metadata commit, fsynced) in blocks, so
// most InitProducerId requests are answered by their own shard at once.
constexpr int64_t producer_id_block = 1000;

// Transactions are not implemented. Java and librdkafka clients treat
// TRANSACTIONAL_ID_AUTHORIZATION_FAILED as fatal and say so
// ("Transactional Id authorization failed"), where COORDINATOR_NOT_AVAILABLE
// would make them retry until init_transactions times out.
constexpr int16_t transactional_id_authorization_failed = 53;

}  // namespace

// ---- InitProducerId ---------------------------------------------------------------

task<bool> handle_init_producer_id(broker& b, request_context& ctx, reader& r, response& out) {
  msg::init_producer_id_request req;
  if (!req.decode(r, ctx.api_version)) co_return false;
  msg::init_producer_id_response resp;
  resp.producer_id = -1;
  resp.producer_epoch = -1;
  if (req.transactional_id) {
    resp.error_code = transactional_id_authorization_failed;
    resp.encode(out.body, ctx.api_version);
    co_return true;
  }
  // Without a transactional id Kafka always hands out a new producer id
  // with epoch 0, also when the request names the client's current id and
  // epoch (KIP-360, v3+): the client bumps the epoch of its own id itself
  // and comes here only when it must start afresh, so a new id is right.
  shard_state& sh = b.local();
  if (sh.next_producer_id >= sh.producer_id_block_end) {
    op_result res;
    int64_t first = -1;
    co_await b.on_controller([&](topic_manager& tm) -> task<void> {
      res = co_await tm.allocate_producer_ids(producer_id_block, &first);
    });
    if (res.error != error_code::none) {
      // Retriable for clients: the disk may come back.
      sdk::log_warn("kafka: cannot allocate producer ids: " + res.message);
      resp.error_code = code(error_code::coordinator_not_available);
      resp.encode(out.body, ctx.api_version);
      co_return true;
    }
    // Another request on this shard may have refilled the block meanwhile;
    // then this block is dropped (ids are plentiful, uniqueness is what counts).
    if (sh.next_producer_id >= sh.producer_id_block_end) {
      sh.next_producer_id = first;
      sh.producer_id_block_end = first + producer_id_block;
    }
  }
  resp.producer_id = sh.next_producer_id++;
  resp.producer_epoch = 0;
  resp.encode(out.body, ctx.api_version);
  co_return true;
}

// ---- DescribeProducers ------------------------------------------------------------

task<bool> handle_describe_producers(broker& b, request_context& ctx, reader& r, response& out) {
  msg::describe_producers_request req;
  if (!req.decode(r, ctx.api_version)) co_return false;
  msg::describe_producers_response resp;
  image_ptr img = b.image();
  std::vector<std::function<task<void>()>> work;
  resp.topics.resize(req.topics.size());
  for (size_t t = 0; t < req.topics.size(); ++t) {
    const auto& rt = req.topics[t];
    auto& out_t = resp.topics[t];
    out_t.name = rt.name;
    const topic_info* ti = img->find(rt.name);
    out_t.partitions.resize(rt.partition_indexes.size());
    for (size_t i = 0; i < rt.partition_indexes.size(); ++i) {
      auto& rp = out_t.partitions[i];
      rp.partition_index = rt.partition_indexes[i];
      if (!ti || rp.partition_index < 0 || rp.partition_index >= ti->partitions) {
        rp.error_code = code(error_code::unknown_topic_or_partition);
        continue;
      }
      work.push_back([&b, &rp, name = rt.name]() -> task<void> {
        producers_outcome o;
        co_await b.on_owner(name, rp.partition_index, [&](partition_table& pt) -> task<void> {
          o = co_await pt.describe_producers(name, rp.partition_index);
        });
        rp.error_code = code(o.error);
        for (const auto& p : o.producers) {
          auto& ap = rp.active_producers.emplace_back();
          ap.producer_id = p.producer_id;
          ap.producer_epoch = p.producer_epoch;
          ap.last_sequence = p.last_sequence;
          ap.last_timestamp = p.last_timestamp;
          ap.coordinator_epoch = -1;  // no transactions
          ap.current_txn_start_offset = -1;
        }
      });
    }
  }
  co_await run_all(std::move(work));
  resp.encode(out.body, ctx.api_version);
  co_return true;
}

}  // namespace sluice::kafka
