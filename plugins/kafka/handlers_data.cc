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
// The partition's leader epoch: the Raft term in a cluster (as this shard
// last heard it), 0 on a single node.
int32_t epoch_of(broker& b, const std::string& topic, int32_t partition) {
  return b.clustered() ? b.leader_of(topic, partition).second : leader_epoch;
}

// KIP-320: a request naming an older epoch than the leader's is fenced; a
// newer one means this broker has not heard of it yet.
error_code check_leader_epoch(broker& b, const std::string& topic, int32_t partition, int32_t current) {
  const int32_t epoch = epoch_of(b, topic, partition);
  if (current < 0 || current == epoch) return error_code::none;
  return current > epoch ? error_code::unknown_leader_epoch : error_code::fenced_leader_epoch;
}

// Records in a run of record batches, from each batch header's count
// (for the per-topic metrics; the log validates the batches).
uint64_t count_records(const uint8_t* data, size_t size) {
  auto be32 = [&](size_t at) {
    return (uint32_t{data[at]} << 24) | (uint32_t{data[at + 1]} << 16) | (uint32_t{data[at + 2]} << 8) | data[at + 3];
  };
  constexpr size_t header_bytes = 61, length_at = 8, count_at = 57;
  uint64_t records = 0;
  for (size_t pos = 0; data && pos + header_bytes <= size;) {
    records += be32(pos + count_at);
    pos += 12 + static_cast<size_t>(be32(pos + length_at));
  }
  return records;
}

}  // namespace

// ---- Produce ---------------------------------------------------------------------

// A partition appended by an acks=all produce, waiting for its flush.
struct pending_flush {
  std::string topic;
  int32_t partition = 0;
  msg::produce_response::partition_produce_response* rp = nullptr;  // in the shared response
};

// The deferred half of an acks=all Produce: flush every partition the
// request appended to (each flush shares its fdatasync with whatever else
// the partition appended meanwhile), then encode the response.
task<void> finish_produce(broker& b, std::shared_ptr<msg::produce_response> resp,
                          std::shared_ptr<std::vector<pending_flush>> flushes, int16_t version, response& out) {
  std::vector<std::function<task<void>()>> work;
  for (pending_flush& f : *flushes)
    work.push_back([&b, &f]() -> task<void> {
      produce_outcome o;
      co_await b.on_owner(f.topic, f.partition, [&](partition_table& pt) -> task<void> {
        o = co_await pt.flush(f.topic, f.partition);
      });
      if (o.error != error_code::none) {
        f.rp->error_code = code(o.error);
        f.rp->error_message = o.message;
        f.rp->base_offset = -1;
        sdk::log_warn("kafka: flushing " + f.topic + "-" + std::to_string(f.partition) + " failed: " + o.message);
      }
    });
  co_await run_all(std::move(work));
  for (const auto& rt : resp->responses)
    for (const auto& rp : rt.partition_responses) out.errors += rp.error_code != 0;
  resp->encode(out.body, version);
}

task<bool> handle_produce(broker& b, request_context& ctx, reader& r, response& out) {
  msg::produce_request req;
  if (!req.decode(r, ctx.api_version)) co_return false;
  // Shared with the deferred half (finish_produce), which outlives this frame.
  auto resp_ptr = std::make_shared<msg::produce_response>();
  msg::produce_response& resp = *resp_ptr;
  auto flushes = std::make_shared<std::vector<pending_flush>>();
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
      if (t.name == offsets_topic) {  // written only by the group coordinator, as in Kafka
        rp.error_code = code(error_code::invalid_topic_exception);
        rp.error_message = std::string("Cannot append to internal topic ") + offsets_topic;
        continue;
      }
      if (pd.records.is_null || pd.records.size == 0) {
        rp.error_code = code(error_code::invalid_record);
        rp.error_message = "Produce request has no record data";
        continue;
      }
      const uint64_t records = count_records(pd.records.data, pd.records.size);
      // The one copy: from the request into a buffer the log takes over.
      sdk::buffer data = sdk::buffer::allocate(pd.records.size);
      std::memcpy(data.data(), pd.records.data, pd.records.size);
      data.set_size(pd.records.size);
      work.push_back([&b, &rp, &flushes, name = t.name, index = pd.index, data = std::move(data), acks = req.acks,
                      records]() mutable -> task<void> {
        produce_outcome o;
        const uint64_t bytes = data.size();
        co_await b.on_owner(name, index, [&](partition_table& pt) -> task<void> {
          o = co_await pt.produce(name, index, std::move(data), acks, /*defer_flush=*/true);
        });
        if (o.error == error_code::none && o.needs_flush) flushes->push_back({name, index, &rp});
        if (o.error == error_code::none) {
          topic_traffic& tt = b.local().traffic[name];
          tt.bytes_in += bytes;
          tt.records_in += records;
        }
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
  if (!flushes->empty()) {
    // acks=all: the batches are in the logs; acknowledge once they are durable.
    out.finish = [&b, resp_ptr, flushes, version = ctx.api_version](response& o) {
      return finish_produce(b, resp_ptr, flushes, version, o);
    };
    co_return true;
  }
  for (const auto& rt : resp.responses)
    for (const auto& rp : rt.partition_responses) out.errors += rp.error_code != 0;
  resp.encode(out.body, ctx.api_version);
  co_return true;
}

// ---- Fetch -----------------------------------------------------------------------

namespace {

struct fetch_slot {
  std::string topic;     // "" when the topic (id) is unknown
  uuid topic_id;
  int32_t partition = 0;
  int64_t offset = 0;
  int32_t partition_max_bytes = 0;
  error_code error = error_code::none;  // known before reading (unknown topic, epoch)
  bool in_session = false;
  int64_t sent_hw = -1, sent_lso = -1, sent_log_start = -1;  // as the session last sent them
  // Results.
  error_code result = error_code::none;
  int64_t high_watermark = -1, last_stable_offset = -1, log_start_offset = -1;
  sdk::buffer data;
};

int32_t new_session_id(const std::map<int32_t, fetch_session>& sessions) {
  static thread_local uint32_t seed = static_cast<uint32_t>(sdk::now_ns()) | 1u;
  for (;;) {
    seed ^= seed << 13;
    seed ^= seed >> 17;
    seed ^= seed << 5;
    const int32_t id = static_cast<int32_t>(seed & 0x7fffffff);
    if (id != 0 && !sessions.count(id)) return id;
  }
}

// Room for one more session on this shard: evicts the least recently used.
bool make_room(std::map<int32_t, fetch_session>& sessions, size_t capacity) {
  if (capacity == 0) return false;
  while (sessions.size() >= capacity) {
    auto lru = sessions.begin();
    for (auto it = sessions.begin(); it != sessions.end(); ++it)
      if (it->second.last_used_ns < lru->second.last_used_ns) lru = it;
    sessions.erase(lru);
  }
  return true;
}

}  // namespace

task<bool> handle_fetch(broker& b, request_context& ctx, reader& r, response& out) {
  msg::fetch_request req;
  if (!req.decode(r, ctx.api_version)) co_return false;
  const int16_t v = ctx.api_version;
  msg::fetch_response resp;
  shard_state& sh = b.local();
  image_ptr img = b.image();

  auto resolve = [&](fetch_slot& s, const std::string& name, const uuid& id) {
    const topic_info* ti = v >= 13 ? img->find(id.bytes) : img->find(name);
    s.topic_id = v >= 13 ? id : (ti ? uuid{ti->id} : uuid{});
    s.topic = ti ? ti->name : (v >= 13 ? std::string() : name);
    if (!ti) s.error = v >= 13 ? error_code::unknown_topic_id : error_code::unknown_topic_or_partition;
    else if (s.partition < 0 || s.partition >= ti->partitions) s.error = error_code::unknown_topic_or_partition;
  };

  // Fetch sessions (KIP-227): which partitions this request covers.
  const bool sessions = v >= 7;
  const size_t capacity =
      std::max<size_t>(b.cfg.max_incremental_fetch_session_cache_slots / std::max(sdk::shard_count(), 1u), 1);
  fetch_session* session = nullptr;
  bool incremental = false;
  if (sessions) {
    const int32_t id = req.session_id, epoch = req.session_epoch;
    if (id == 0 && epoch > 0) {
      resp.error_code = code(error_code::invalid_fetch_session_epoch);
    } else if (id != 0 && epoch > 0) {
      auto it = sh.fetch_sessions.find(id);
      if (it == sh.fetch_sessions.end()) resp.error_code = code(error_code::fetch_session_id_not_found);
      else if (it->second.next_epoch != epoch) resp.error_code = code(error_code::invalid_fetch_session_epoch);
      else {
        session = &it->second;
        incremental = true;
      }
    } else {
      if (id != 0) sh.fetch_sessions.erase(id);  // epoch 0 or -1 closes the old session
      if (epoch == 0 && make_room(sh.fetch_sessions, capacity)) {
        const int32_t nid = new_session_id(sh.fetch_sessions);
        session = &sh.fetch_sessions[nid];
        session->id = nid;
      }
    }
    if (resp.error_code != 0) {
      resp.session_id = 0;
      resp.encode(out.body, v);
      co_return true;
    }
  }
  if (session) {
    session->last_used_ns = sdk::now_ns();
    resp.session_id = session->id;
    if (incremental) ++session->next_epoch;
    else session->next_epoch = 1;
  }

  // Update the session from the request: added or changed partitions, and
  // the forgotten ones (incremental); or all of them (a new session).
  if (session) {
    if (!incremental) session->parts.clear();
    auto find_entry = [&](const std::string& name, const uuid& id, int32_t partition) -> fetch_session::entry* {
      for (auto& e : session->parts)
        if (e.partition == partition && (v >= 13 ? e.topic_id == id : e.topic == name)) return &e;
      return nullptr;
    };
    for (const auto& t : req.topics)
      for (const auto& fp : t.partitions) {
        fetch_session::entry* e = find_entry(t.topic, t.topic_id, fp.partition);
        if (!e) {
          e = &session->parts.emplace_back();
          e->topic = t.topic;
          e->topic_id = t.topic_id;
          e->partition = fp.partition;
          if (v >= 13) {
            if (const topic_info* ti = img->find(t.topic_id.bytes)) e->topic = ti->name;
          }
        }
        e->fetch_offset = fp.fetch_offset;
        e->max_bytes = fp.partition_max_bytes;
      }
    if (incremental) {
      for (const auto& f : req.forgotten_topics_data)
        for (int32_t p : f.partitions)
          std::erase_if(session->parts, [&](const fetch_session::entry& e) {
            return e.partition == p && (v >= 13 ? e.topic_id == f.topic_id : e.topic == f.topic);
          });
    }
  }

  std::vector<fetch_slot> slots;
  if (session) {
    slots.reserve(session->parts.size());
    for (auto& e : session->parts) {
      fetch_slot& s = slots.emplace_back();
      s.partition = e.partition;
      s.offset = e.fetch_offset;
      s.partition_max_bytes = e.max_bytes;
      s.in_session = true;
      s.sent_hw = e.high_watermark;
      s.sent_lso = e.last_stable_offset;
      s.sent_log_start = e.log_start_offset;
      resolve(s, e.topic, e.topic_id);
    }
  } else {
    for (const auto& t : req.topics)
      for (const auto& fp : t.partitions) {
        fetch_slot& s = slots.emplace_back();
        s.partition = fp.partition;
        s.offset = fp.fetch_offset;
        s.partition_max_bytes = fp.partition_max_bytes;
        resolve(s, t.topic, t.topic_id);
      }
  }
  // The leader epoch check is per request partition.
  if (v >= 9) {
    for (const auto& t : req.topics)
      for (const auto& fp : t.partitions)
        for (auto& s : slots)
          if (s.partition == fp.partition && (v >= 13 ? s.topic_id == t.topic_id : s.topic == t.topic))
            if (error_code e = check_leader_epoch(b, s.topic, s.partition, fp.current_leader_epoch); e != error_code::none)
              s.error = e;
  }

  const uint64_t max_bytes =
      std::min<uint64_t>(v >= 3 ? static_cast<uint64_t>(std::max(req.max_bytes, 0)) : UINT64_MAX, b.local().cfg.fetch_max_bytes);
  const uint64_t deadline_ns = sdk::now_ns() + static_cast<uint64_t>(std::max(req.max_wait_ms, 0)) * 1'000'000;
  for (;;) {
    uint64_t bytes = 0;
    bool any_error = false;
    for (auto& s : slots) {
      s.data = {};
      s.result = s.error;
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
      s.result = o.error;
      s.high_watermark = o.high_watermark;
      s.last_stable_offset = o.last_stable_offset;
      s.log_start_offset = o.log_start_offset;
      if (o.error != error_code::none) {
        any_error = true;
        continue;
      }
      // KIP-74: the first batch of the response goes out whole even when it
      // is larger than the limits; later ones must fit.
      if (o.batches && o.batches.size() > 0 && (bytes == 0 || o.batches.size() <= room)) {
        s.data = std::move(o.batches);
        bytes += s.data.size();
        b.local().traffic[s.topic].bytes_out += s.data.size();
      }
    }
    const uint64_t now = sdk::now_ns();
    if (any_error || bytes >= static_cast<uint64_t>(std::max(req.min_bytes, 1)) || now >= deadline_ns ||
        slots.empty() || sh.stop.abort_requested())
      break;
    // Long poll: wait on the owning shards until data arrives or time is up.
    std::map<uint32_t, std::vector<fetch_position>> by_shard;
    for (const auto& s : slots)
      by_shard[shard_of(s.topic, s.partition, sdk::shard_count())].push_back({s.topic, s.partition, s.offset});
    co_await b.wait_for_data(std::move(by_shard), (deadline_ns - now + 999'999) / 1'000'000);
  }

  // The response: every partition for a full fetch; for an incremental one,
  // only those with records, an error, or new watermarks. The session is
  // looked up again: other requests may have changed it meanwhile.
  const int32_t session_id = session ? session->id : 0;
  session = nullptr;
  auto live = sh.fetch_sessions.find(session_id);
  for (auto& s : slots) {
    if (incremental && s.in_session && !s.data && s.result == error_code::none && s.sent_hw == s.high_watermark &&
        s.sent_lso == s.last_stable_offset && s.sent_log_start == s.log_start_offset)
      continue;
    if (s.in_session && live != sh.fetch_sessions.end()) {
      for (auto& e : live->second.parts)
        if (e.partition == s.partition && (v >= 13 ? e.topic_id == s.topic_id : e.topic == s.topic)) {
          e.high_watermark = s.high_watermark;
          e.last_stable_offset = s.last_stable_offset;
          e.log_start_offset = s.log_start_offset;
        }
    }
    if (resp.responses.empty() ||
        (v >= 13 ? resp.responses.back().topic_id != s.topic_id : resp.responses.back().topic != s.topic)) {
      auto& rt = resp.responses.emplace_back();
      if (v >= 13) rt.topic_id = s.topic_id;
      else rt.topic = s.topic;
    }
    auto& rp = resp.responses.back().partitions.emplace_back();
    rp.partition_index = s.partition;
    rp.error_code = code(s.result);
    out.errors += s.result != error_code::none;
    rp.high_watermark = s.high_watermark;
    rp.last_stable_offset = s.last_stable_offset;
    rp.log_start_offset = s.log_start_offset;
    rp.preferred_read_replica = -1;
    if (req.isolation_level == 1) rp.aborted_transactions.emplace();  // read_committed: none
    // Empty, not null, when there is nothing: clients reject a null record set.
    rp.records = s.data ? records_view::of(s.data.data(), s.data.size()) : records_view::of(nullptr, 0);
    if (s.data) out.keep.push_back(std::move(s.data));
  }
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
        if (error_code e = check_leader_epoch(b, t.name, p.partition_index, p.current_leader_epoch);
            e != error_code::none) {
          rp.error_code = code(e);
          continue;
        }
      }
      // KIP-1005: -4 (earliest local) is the earliest offset while nothing
      // is tiered, and -5 (latest tiered) has no offset.
      if (p.timestamp == -5) continue;
      const int64_t ts = p.timestamp == -4 ? -2 : p.timestamp;
      work.push_back([&b, &rp, name = t.name, part = p.partition_index, ts]() -> task<void> {
        offset_outcome o;
        co_await b.on_owner(name, part, [&](partition_table& pt) -> task<void> {
          o = co_await pt.list_offset(name, part, ts);
        });
        rp.error_code = code(o.error);
        rp.offset = o.offset;
        rp.timestamp = o.timestamp;
        if (o.error == error_code::none) rp.leader_epoch = o.offset >= 0 || ts < 0 ? epoch_of(b, name, part) : -1;
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
      if (error_code e = check_leader_epoch(b, t.topic, p.partition, p.current_leader_epoch); e != error_code::none) {
        rp.error_code = code(e);
        continue;
      }
      if (b.clustered()) {
        // Raft terms are the epochs: the end of the requested one is where
        // the next term's first batch starts (KIP-101, KIP-279).
        offset_outcome o;
        co_await b.on_owner(t.topic, p.partition, [&](partition_table& pt) -> task<void> {
          o = co_await pt.epoch_end(t.topic, p.partition, p.leader_epoch);
        });
        rp.error_code = code(o.error);
        if (o.error == error_code::none) {
          rp.leader_epoch = static_cast<int32_t>(o.timestamp);
          rp.end_offset = o.offset;
        }
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
      if (t.name == offsets_topic) {
        rp.error_code = code(error_code::invalid_topic_exception);  // group offsets are not user data
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
