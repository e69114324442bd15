// Handlers for the data path: Produce, Fetch, ListOffsets,
// OffsetForLeaderEpoch, DeleteRecords. Each partition's work runs on the
// shard that owns it (broker::on_owner); a request that spans shards is
// split and the per-partition results are put back in request order.
#include "broker.h"

#include <sluice/kafka/msg/delete_records.h>
#include <sluice/kafka/msg/fetch.h>
#include <sluice/kafka/msg/list_offsets.h>
#include <sluice/kafka/msg/offset_for_leader_epoch.h>
#include <sluice/kafka/msg/produce.h>

#include <cstring>
#include <map>

namespace sluice::kafka {

using sdk::task;

namespace {

constexpr int32_t leader_epoch = 0;  // single node: one epoch; Raft terms later

// The error for a client's current_leader_epoch (-1: not checked).
error_code check_leader_epoch(int32_t current) {
  if (current < 0 || current == leader_epoch) return error_code::none;
  return current > leader_epoch ? error_code::unknown_leader_epoch : error_code::fenced_leader_epoch;
}

}  // namespace

// ---- Produce ---------------------------------------------------------------------

task<bool> handle_produce(broker& b, request_context& ctx, reader& r, response& out) {
  msg::produce_request req;
  if (!req.decode(r, ctx.api_version)) co_return false;
  msg::produce_response resp;
  const bool valid_acks = req.acks == -1 || req.acks == 0 || req.acks == 1;
  image_ptr img = b.image();
  std::vector<std::function<task<void>()>> work;
  for (const auto& t : req.topic_data) {
    auto& rt = resp.responses.emplace_back();
    rt.name = t.name;
    const topic_info* ti = img->find(t.name);
    rt.partition_responses.resize(t.partition_data.size());
    for (size_t i = 0; i < t.partition_data.size(); ++i) {
      const auto& pd = t.partition_data[i];
      auto& rp = rt.partition_responses[i];
      rp.index = pd.index;
      rp.base_offset = -1;
      if (!valid_acks) {
        rp.error_code = code(error_code::invalid_required_acks);
        continue;
      }
      if (!ti || pd.index < 0 || pd.index >= ti->partitions) {
        rp.error_code = code(error_code::unknown_topic_or_partition);
        continue;
      }
      if (pd.records.is_null || pd.records.size == 0) {
        rp.error_code = code(error_code::invalid_record);
        rp.error_message = "Produce request has no record data";
        continue;
      }
      // The one copy: from the request into a buffer the log takes over.
      sdk::buffer data = sdk::buffer::allocate(pd.records.size);
      std::memcpy(data.data(), pd.records.data, pd.records.size);
      data.set_size(pd.records.size);
      work.push_back([&b, &rp, name = t.name, index = pd.index, data = std::move(data), acks = req.acks]() mutable
                     -> task<void> {
        produce_outcome o;
        co_await b.on_owner(name, index, [&](partition_table& pt) -> task<void> {
          o = co_await pt.produce(name, index, std::move(data), acks);
        });
        rp.error_code = code(o.error);
        rp.base_offset = o.base_offset;
        rp.log_append_time_ms = o.log_append_time_ms;
        rp.log_start_offset = o.log_start_offset;
        if (o.error != error_code::none) {
          if (!o.message.empty()) rp.error_message = o.message;
          if (o.error != error_code::corrupt_message && o.error != error_code::invalid_record &&
              o.error != error_code::message_too_large && o.error != error_code::unsupported_for_message_format)
            sdk::log_warn("kafka: produce to " + name + "-" + std::to_string(index) + " failed: " + o.message);
        }
      });
    }
  }
  co_await run_all(std::move(work));
  if (req.acks == 0) {
    out.send = false;  // the client expects no response
    co_return true;
  }
  resp.encode(out.body, ctx.api_version);
  co_return true;
}

// ---- Fetch -----------------------------------------------------------------------

namespace {

struct fetch_slot {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = 0;
  int32_t partition_max_bytes = 0;
  error_code error = error_code::none;  // known before reading (unknown topic, epoch)
  msg::fetch_response::partition_data* out = nullptr;
  sdk::buffer data;
};

}  // namespace

task<bool> handle_fetch(broker& b, request_context& ctx, reader& r, response& out) {
  msg::fetch_request req;
  if (!req.decode(r, ctx.api_version)) co_return false;
  const int16_t v = ctx.api_version;
  msg::fetch_response resp;
  // Fetch sessions (KIP-227): this broker answers every fetch in full and
  // never creates a session (session id 0), which KIP-227 allows; a client
  // that asks for an incremental fetch in a session it does not have is told so.
  if (v >= 7 && (req.session_id != 0 || req.session_epoch > 0)) {
    resp.error_code = code(error_code::fetch_session_id_not_found);
    resp.session_id = 0;
    resp.encode(out.body, v);
    co_return true;
  }
  image_ptr img = b.image();
  std::vector<fetch_slot> slots;
  size_t total = 0;
  for (const auto& t : req.topics) total += t.partitions.size();
  slots.reserve(total);
  for (const auto& t : req.topics) {
    auto& rt = resp.responses.emplace_back();
    const topic_info* ti = nullptr;
    if (v >= 13) {
      rt.topic_id = t.topic_id;
      ti = img->find(t.topic_id.bytes);
    } else {
      rt.topic = t.topic;
      ti = img->find(t.topic);
    }
    rt.partitions.resize(t.partitions.size());
    for (size_t i = 0; i < t.partitions.size(); ++i) {
      const auto& fp = t.partitions[i];
      auto& rp = rt.partitions[i];
      rp.partition_index = fp.partition;
      rp.high_watermark = -1;
      rp.last_stable_offset = -1;
      rp.log_start_offset = -1;
      rp.preferred_read_replica = -1;
      if (req.isolation_level == 1) rp.aborted_transactions.emplace();  // read_committed: none
      fetch_slot s;
      s.topic = ti ? ti->name : std::string();
      s.partition = fp.partition;
      s.offset = fp.fetch_offset;
      s.partition_max_bytes = fp.partition_max_bytes;
      s.out = &rp;
      if (!ti) s.error = v >= 13 ? error_code::unknown_topic_id : error_code::unknown_topic_or_partition;
      else if (fp.partition < 0 || fp.partition >= ti->partitions) s.error = error_code::unknown_topic_or_partition;
      else if (v >= 9) s.error = check_leader_epoch(fp.current_leader_epoch);
      slots.push_back(std::move(s));
    }
  }
  const uint64_t max_bytes = v >= 3 ? static_cast<uint64_t>(std::max(req.max_bytes, 0)) : UINT64_MAX;
  const uint64_t deadline_ns = sdk::now_ns() + static_cast<uint64_t>(std::max(req.max_wait_ms, 0)) * 1'000'000;
  for (;;) {
    uint64_t bytes = 0;
    bool any_error = false;
    for (auto& s : slots) {
      auto& rp = *s.out;
      s.data = {};
      rp.records = records_view::of(nullptr, 0);  // empty, not null: clients reject a null record set
      rp.error_code = code(s.error);
      if (s.error != error_code::none) {
        any_error = true;
        continue;
      }
      const uint64_t room = max_bytes > bytes ? max_bytes - bytes : 0;
      const uint64_t limit = std::min<uint64_t>(static_cast<uint64_t>(std::max(s.partition_max_bytes, 0)), room);
      read_outcome o;
      co_await b.on_owner(s.topic, s.partition, [&](partition_table& pt) -> task<void> {
        o = co_await pt.read(s.topic, s.partition, s.offset, limit == 0 && bytes == 0 ? 1 : limit);
      });
      rp.error_code = code(o.error);
      rp.high_watermark = o.high_watermark;
      rp.last_stable_offset = o.last_stable_offset;
      rp.log_start_offset = o.log_start_offset;
      if (o.error != error_code::none) {
        any_error = true;
        continue;
      }
      // KIP-74: the first batch of the response goes out whole even when it
      // is larger than the limits; later ones must fit.
      if (o.batches && o.batches.size() > 0 && (bytes == 0 || o.batches.size() <= room)) {
        s.data = std::move(o.batches);
        rp.records = records_view::of(s.data.data(), s.data.size());
        bytes += s.data.size();
      }
    }
    const uint64_t now = sdk::now_ns();
    if (any_error || bytes >= static_cast<uint64_t>(std::max(req.min_bytes, 1)) || now >= deadline_ns || slots.empty())
      break;
    // Long poll: wait on the owning shards until data arrives or time is up.
    std::map<uint32_t, std::vector<fetch_position>> by_shard;
    for (const auto& s : slots)
      by_shard[shard_of(s.topic, s.partition, sdk::shard_count())].push_back({s.topic, s.partition, s.offset});
    const uint64_t wait_ms = (deadline_ns - now + 999'999) / 1'000'000;
    co_await b.wait_for_data(std::move(by_shard), wait_ms);
    if (sdk::now_ns() >= deadline_ns) {
      // One last look below, then answer whatever there is.
    }
    if (b.local().stop.abort_requested()) break;
  }
  for (auto& s : slots) {
    if (s.data) {
      out.keep.push_back(std::move(s.data));
    }
  }
  if (v >= 7) resp.session_id = 0;
  resp.encode(out.body, v);
  co_return true;
}

// ---- ListOffsets -----------------------------------------------------------------

task<bool> handle_list_offsets(broker& b, request_context& ctx, reader& r, response& out) {
  msg::list_offsets_request req;
  if (!req.decode(r, ctx.api_version)) co_return false;
  msg::list_offsets_response resp;
  image_ptr img = b.image();
  std::vector<std::function<task<void>()>> work;
  for (const auto& t : req.topics) {
    auto& rt = resp.topics.emplace_back();
    rt.name = t.name;
    const topic_info* ti = img->find(t.name);
    rt.partitions.resize(t.partitions.size());
    for (size_t i = 0; i < t.partitions.size(); ++i) {
      const auto& p = t.partitions[i];
      auto& rp = rt.partitions[i];
      rp.partition_index = p.partition_index;
      rp.timestamp = -1;
      rp.offset = -1;
      rp.leader_epoch = -1;
      if (!ti || p.partition_index < 0 || p.partition_index >= ti->partitions) {
        rp.error_code = code(error_code::unknown_topic_or_partition);
        continue;
      }
      if (ctx.api_version >= 4) {
        if (error_code e = check_leader_epoch(p.current_leader_epoch); e != error_code::none) {
          rp.error_code = code(e);
          continue;
        }
      }
      // -4 (earliest local, KIP-405) is the earliest offset while nothing is tiered.
      const int64_t ts = p.timestamp == -4 ? -2 : p.timestamp;
      work.push_back([&b, &rp, name = t.name, part = p.partition_index, ts]() -> task<void> {
        offset_outcome o;
        co_await b.on_owner(name, part, [&](partition_table& pt) -> task<void> {
          o = co_await pt.list_offset(name, part, ts);
        });
        rp.error_code = code(o.error);
        rp.offset = o.offset;
        rp.timestamp = o.timestamp;
        if (o.error == error_code::none) rp.leader_epoch = o.offset >= 0 || ts < 0 ? leader_epoch : -1;
      });
    }
  }
  co_await run_all(std::move(work));
  resp.encode(out.body, ctx.api_version);
  co_return true;
}

// ---- OffsetForLeaderEpoch ----------------------------------------------------------

task<bool> handle_offset_for_leader_epoch(broker& b, request_context& ctx, reader& r, response& out) {
  msg::offset_for_leader_epoch_request req;
  if (!req.decode(r, ctx.api_version)) co_return false;
  msg::offset_for_leader_epoch_response resp;
  image_ptr img = b.image();
  for (const auto& t : req.topics) {
    auto& rt = resp.topics.emplace_back();
    rt.topic = t.topic;
    const topic_info* ti = img->find(t.topic);
    for (const auto& p : t.partitions) {
      auto& rp = rt.partitions.emplace_back();
      rp.partition = p.partition;
      rp.leader_epoch = -1;
      rp.end_offset = -1;
      if (!ti || p.partition < 0 || p.partition >= ti->partitions) {
        rp.error_code = code(error_code::unknown_topic_or_partition);
        continue;
      }
      if (error_code e = check_leader_epoch(p.current_leader_epoch); e != error_code::none) {
        rp.error_code = code(e);
        continue;
      }
      // The only epoch is 0: its end is the log end. A later epoch is
      // unknown (-1, -1); an earlier one cannot exist.
      if (p.leader_epoch > leader_epoch) continue;
      offset_outcome o;
      co_await b.on_owner(t.topic, p.partition, [&](partition_table& pt) -> task<void> {
        o = co_await pt.list_offset(t.topic, p.partition, -1);
      });
      rp.error_code = code(o.error);
      if (o.error == error_code::none) {
        rp.leader_epoch = leader_epoch;
        rp.end_offset = o.offset;
      }
    }
  }
  resp.encode(out.body, ctx.api_version);
  co_return true;
}

// ---- DeleteRecords -----------------------------------------------------------------

task<bool> handle_delete_records(broker& b, request_context& ctx, reader& r, response& out) {
  msg::delete_records_request req;
  if (!req.decode(r, ctx.api_version)) co_return false;
  msg::delete_records_response resp;
  image_ptr img = b.image();
  std::vector<std::function<task<void>()>> work;
  for (const auto& t : req.topics) {
    auto& rt = resp.topics.emplace_back();
    rt.name = t.name;
    const topic_info* ti = img->find(t.name);
    rt.partitions.resize(t.partitions.size());
    for (size_t i = 0; i < t.partitions.size(); ++i) {
      const auto& p = t.partitions[i];
      auto& rp = rt.partitions[i];
      rp.partition_index = p.partition_index;
      rp.low_watermark = -1;
      if (!ti || p.partition_index < 0 || p.partition_index >= ti->partitions) {
        rp.error_code = code(error_code::unknown_topic_or_partition);
        continue;
      }
      work.push_back([&b, &rp, name = t.name, part = p.partition_index, offset = p.offset]() -> task<void> {
        offset_outcome o;
        co_await b.on_owner(name, part, [&](partition_table& pt) -> task<void> {
          o = co_await pt.delete_records(name, part, offset);
        });
        rp.error_code = code(o.error);
        rp.low_watermark = o.offset;
      });
    }
  }
  co_await run_all(std::move(work));
  resp.encode(out.body, ctx.api_version);
  co_return true;
}

}  // namespace sluice::kafka
