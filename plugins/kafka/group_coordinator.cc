#include "group_coordinator.h"

#include "batch_validation.h"
#include "record_batch.h"

#include <sluice/kafka/wire.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <random>

namespace sluice::kafka {

using sdk::task;

namespace {

constexpr int16_t key_offset = 1;  // record key types in __consumer_offsets
constexpr int16_t key_group = 2;
constexpr uint64_t tick_ms = 100;

int64_t wall_ms() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1'000'000;
}

std::string random_suffix() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char* hex = "0123456789abcdef";
  std::string s;
  for (int i = 0; i < 32; ++i) {
    if (i == 8 || i == 12 || i == 16 || i == 20) s.push_back('-');
    s.push_back(hex[rng() & 15]);
  }
  return s;
}

std::string bytes_to_string(std::span<const uint8_t> b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

std::string offset_key_bytes(const std::string& group, const std::string& topic, int32_t partition) {
  writer w;
  w.write_int16(key_offset);
  w.write_string(group, false);
  w.write_string(topic, false);
  w.write_int32(partition);
  return bytes_to_string(w.flatten());
}

std::string group_key_bytes(const std::string& group) {
  writer w;
  w.write_int16(key_group);
  w.write_string(group, false);
  return bytes_to_string(w.flatten());
}

std::string offset_value_bytes(const committed_offset& o) {
  writer w;
  w.write_int16(0);
  w.write_int64(o.offset);
  w.write_int32(o.leader_epoch);
  if (o.metadata) w.write_string(*o.metadata, false);
  else w.write_null_string(false);
  w.write_int64(o.commit_timestamp_ms);
  return bytes_to_string(w.flatten());
}

// The topics a "consumer" protocol member subscribes to (ConsumerProtocol
// Subscription: int16 version, array of strings, ...); empty if unreadable.
std::vector<std::string> subscribed_topics(const std::vector<uint8_t>& metadata) {
  std::vector<std::string> topics;
  reader r(metadata.data(), metadata.size());
  int16_t version = 0;
  int32_t n = 0;
  if (!r.read_int16(version) || !r.read_array_length(n, false, false)) return {};
  for (int32_t i = 0; i < n; ++i) {
    std::string t;
    if (!r.read_string(t, false)) return {};
    topics.push_back(std::move(t));
  }
  return topics;
}

}  // namespace

const char* to_string(group_state s) noexcept {
  switch (s) {
    case group_state::empty: return "Empty";
    case group_state::preparing_rebalance: return "PreparingRebalance";
    case group_state::completing_rebalance: return "CompletingRebalance";
    case group_state::stable: return "Stable";
    case group_state::dead: return "Dead";
  }
  return "Dead";
}

int32_t group_partition(const std::string& group_id, int32_t partitions) {
  int32_t h = 0;  // Java's String.hashCode over the (ASCII/UTF-16) characters
  for (unsigned char c : group_id) h = static_cast<int32_t>(31u * static_cast<uint32_t>(h) + c);
  return (h & 0x7fffffff) % partitions;
}

struct group_coordinator::member {
  std::string member_id;
  std::optional<std::string> instance_id;
  std::string client_id;
  std::string client_host;
  int32_t session_timeout_ms = 0;
  int32_t rebalance_timeout_ms = 0;
  std::vector<std::pair<std::string, std::vector<uint8_t>>> protocols;
  std::vector<uint8_t> assignment;
  uint64_t last_heartbeat_ns = 0;
  bool join_pending = false;
  std::optional<join_outcome> join_result;

  const std::vector<uint8_t>* metadata_for(const std::string& protocol) const {
    for (const auto& [name, md] : protocols)
      if (name == protocol) return &md;
    return nullptr;
  }
};

struct group_coordinator::group {
  std::string id;
  group_state state = group_state::empty;
  std::string protocol_type;
  std::optional<std::string> protocol;
  int32_t generation = 0;
  std::string leader;
  std::map<std::string, member> members;
  std::map<std::string, uint64_t> pending_members;        // KIP-394 ids handed out, with their expiry
  std::map<std::string, std::string> static_members;      // instance id -> member id
  std::map<offset_key, committed_offset> offsets;
  uint64_t rebalance_deadline_ns = 0;
  uint64_t earliest_join_ns = 0;  // group.initial.rebalance.delay.ms for a group that was empty
  sdk::condition changed;
};

group_coordinator::group_coordinator(const kafka_config& cfg, partition_table& parts) : _cfg(cfg), _parts(parts) {}
group_coordinator::~group_coordinator() = default;

group_coordinator::group* group_coordinator::find(const std::string& id) {
  auto it = _groups.find(id);
  return it == _groups.end() ? nullptr : it->second.get();
}
const group_coordinator::group* group_coordinator::find(const std::string& id) const {
  auto it = _groups.find(id);
  return it == _groups.end() ? nullptr : it->second.get();
}
group_coordinator::group& group_coordinator::get_or_create(const std::string& id) {
  auto& g = _groups[id];
  if (!g) {
    g = std::make_unique<group>();
    g->id = id;
  }
  return *g;
}

// ---- persistence ---------------------------------------------------------------

task<error_code> group_coordinator::append(const std::string& group_id,
                                           std::vector<std::pair<std::string, std::optional<std::string>>> records) {
  if (records.empty()) co_return error_code::none;
  std::vector<storage::batch_record> recs;
  recs.reserve(records.size());
  for (auto& [k, v] : records) {
    storage::batch_record r;
    r.has_key = true;
    r.key = std::move(k);
    r.has_value = v.has_value();
    if (v) r.value = std::move(*v);
    recs.push_back(std::move(r));
  }
  const std::string batch = storage::make_batch(recs, wall_ms());
  sdk::buffer buf = sdk::buffer::allocate(batch.size());
  std::memcpy(buf.data(), batch.data(), batch.size());
  buf.set_size(batch.size());
  const int32_t p = group_partition(group_id, _partitions);
  const produce_outcome o = co_await _parts.produce(offsets_topic, p, std::move(buf), -1);
  if (o.error != error_code::none) {
    sdk::log_warn("kafka: group " + group_id + ": writing to " + offsets_topic + "-" + std::to_string(p) +
                  " failed: " + o.message);
    // Kafka's mapping of a failed offsets-topic write.
    co_return o.error == error_code::message_too_large ? error_code::invalid_commit_offset_size
                                                        : error_code::coordinator_not_available;
  }
  co_return error_code::none;
}

task<void> group_coordinator::store_group(group& g) {
  writer w;
  w.write_int16(0);
  w.write_string(g.protocol_type, false);
  w.write_int32(g.generation);
  if (g.protocol) w.write_string(*g.protocol, false);
  else w.write_null_string(false);
  w.write_string(g.leader, false);
  const std::string id = g.id;
  std::vector<std::pair<std::string, std::optional<std::string>>> records;
  records.emplace_back(group_key_bytes(id), bytes_to_string(w.flatten()));
  (void)co_await append(id, std::move(records));
}

task<void> group_coordinator::load(int32_t offsets_partitions) {
  _partitions = offsets_partitions;
  size_t records = 0;
  // Cluster mode: each partition is replayed when this broker becomes its
  // leader (load_partition).
  if (!_clustered) {
    for (int32_t p = 0; p < offsets_partitions; ++p) {
      if (shard_of(offsets_topic, p, sdk::shard_count()) != sdk::this_shard()) continue;
      records += co_await replay_partition(p);
    }
  }
  _loaded = true;
  _load_done.notify_all();
  if (records > 0)
    sdk::log_info("kafka: loaded " + std::to_string(_groups.size()) + " group(s) from " + std::to_string(records) +
                  " record(s) of " + offsets_topic);
}

task<void> group_coordinator::load_partition(int32_t p) {
  while (!_loaded && !_stopped) co_await _load_done.wait();
  if (_led.count(p)) co_return;
  _led[p] = false;
  const size_t records = co_await replay_partition(p);
  if (auto it = _led.find(p); it != _led.end()) it->second = true;
  sdk::log_info("kafka: coordinating the groups of " + std::string(offsets_topic) + "-" + std::to_string(p) + " (" +
                std::to_string(records) + " record(s) replayed)");
}

void group_coordinator::unload_partition(int32_t p) {
  if (_led.erase(p) == 0) return;
  for (auto& [id, g] : _groups)
    if (group_partition(id, _partitions) == p) g->changed.notify_all();
}

error_code group_coordinator::serving(const std::string& group_id) const {
  if (!_loaded) return error_code::coordinator_load_in_progress;
  if (!_clustered) return error_code::none;
  auto it = _led.find(group_partition(group_id, _partitions));
  if (it == _led.end()) return error_code::not_coordinator;
  return it->second ? error_code::none : error_code::coordinator_load_in_progress;
}

task<size_t> group_coordinator::replay_partition(int32_t p) {
  size_t records = 0;
  do {
    offset_outcome start = co_await _parts.list_offset(offsets_topic, p, -2);
    offset_outcome end = co_await _parts.list_offset(offsets_topic, p, -1);
    if (start.error != error_code::none || end.error != error_code::none) {
      sdk::log_error(std::string("kafka: cannot load ") + offsets_topic + "-" + std::to_string(p));
      break;
    }
    int64_t next = start.offset;
    while (next < end.offset) {
      read_outcome rd = co_await _parts.read(offsets_topic, p, next, 1 << 20);
      if (rd.error != error_code::none || !rd.batches || rd.batches.size() == 0) break;
      int64_t last = next - 1;
      const bool ok = for_each_record({rd.batches.data(), rd.batches.size()}, [&](const record_view& rec) {
        last = std::max(last, rec.offset);
        if (rec.offset < next || !rec.key.data()) return;
        ++records;
        reader k(rec.key.data(), rec.key.size());
        int16_t type = 0;
        std::string group_id;
        if (!k.read_int16(type) || !k.read_string(group_id, false)) return;
        if (type == key_offset) {
          std::string topic;
          int32_t partition = 0;
          if (!k.read_string(topic, false) || !k.read_int32(partition)) return;
          if (!rec.value.data()) {
            if (group* g = find(group_id)) g->offsets.erase({topic, partition});
            return;
          }
          reader v(rec.value.data(), rec.value.size());
          int16_t version = 0;
          committed_offset o;
          if (!v.read_int16(version) || !v.read_int64(o.offset) || !v.read_int32(o.leader_epoch) ||
              !v.read_nullable_string(o.metadata, false) || !v.read_int64(o.commit_timestamp_ms))
            return;
          get_or_create(group_id).offsets[{topic, partition}] = std::move(o);
        } else if (type == key_group) {
          if (!rec.value.data()) {
            _groups.erase(group_id);
            return;
          }
          reader v(rec.value.data(), rec.value.size());
          int16_t version = 0;
          group& g = get_or_create(group_id);
          std::optional<std::string> protocol;
          if (!v.read_int16(version) || !v.read_string(g.protocol_type, false) || !v.read_int32(g.generation) ||
              !v.read_nullable_string(protocol, false) || !v.read_string(g.leader, false))
            return;
          g.protocol = protocol;
          g.leader.clear();  // members are not restored: they rejoin
        }
      });
      if (!ok) {
        sdk::log_error(std::string("kafka: ") + offsets_topic + "-" + std::to_string(p) + ": unreadable batch at " +
                       std::to_string(next) + "; group state after it is not loaded");
        break;
      }
      if (last < next) break;
      next = last + 1;
    }
  } while (false);
  co_return records;
}

void group_coordinator::shutdown() {
  _stopped = true;
  for (auto& [id, g] : _groups) g->changed.notify_all();
}

// ---- rebalancing -----------------------------------------------------------------

void group_coordinator::prepare_rebalance(group& g, const char* why) {
  const bool was_empty = g.state == group_state::empty || g.members.empty();
  if (g.state != group_state::preparing_rebalance) {
    g.state = group_state::preparing_rebalance;
    int32_t timeout = 0;
    for (const auto& [id, m] : g.members) timeout = std::max(timeout, m.rebalance_timeout_ms);
    const uint64_t now = sdk::now_ns();
    g.rebalance_deadline_ns = now + static_cast<uint64_t>(std::max(timeout, 0)) * 1'000'000;
    g.earliest_join_ns =
        was_empty ? now + std::min<uint64_t>(_cfg.group_initial_rebalance_delay_ms,
                                             static_cast<uint64_t>(std::max(timeout, 0))) * 1'000'000
                  : 0;
    for (auto& [id, m] : g.members) m.assignment.clear();
    sdk::log_info("kafka: group " + g.id + " rebalancing (generation " + std::to_string(g.generation) + "): " + why);
  }
  g.changed.notify_all();
}

void group_coordinator::maybe_complete_join(group& g, bool deadline_passed) {
  if (g.state != group_state::preparing_rebalance) return;
  bool all_joined = !g.members.empty();
  for (const auto& [id, m] : g.members) all_joined = all_joined && m.join_pending;
  const uint64_t now = sdk::now_ns();
  if ((all_joined && now >= g.earliest_join_ns) || deadline_passed) complete_join(g);
}

void group_coordinator::complete_join(group& g) {
  // Members that did not rejoin in time leave the group.
  for (auto it = g.members.begin(); it != g.members.end();) {
    if (!it->second.join_pending) {
      if (it->second.instance_id) g.static_members.erase(*it->second.instance_id);
      it = g.members.erase(it);
    } else {
      ++it;
    }
  }
  ++g.generation;
  if (g.members.empty()) {
    g.state = group_state::empty;
    g.protocol.reset();
    g.leader.clear();
    g.changed.notify_all();
    return;
  }
  // The protocol every member supports that most members prefer.
  std::map<std::string, int> votes;
  const auto& first = g.members.begin()->second;
  for (const auto& [name, md] : first.protocols) {
    bool everyone = true;
    for (const auto& [id, m] : g.members) everyone = everyone && m.metadata_for(name) != nullptr;
    if (everyone) votes[name] = 0;
  }
  for (const auto& [id, m] : g.members)
    for (const auto& [name, md] : m.protocols)
      if (votes.count(name)) {
        ++votes[name];
        break;
      }
  std::string chosen;
  int best = -1;
  for (const auto& [name, md] : first.protocols)
    if (votes.count(name) && votes[name] > best) {
      best = votes[name];
      chosen = name;
    }
  g.protocol = chosen;
  if (!g.members.count(g.leader)) g.leader = g.members.begin()->first;
  g.state = group_state::completing_rebalance;
  const uint64_t now = sdk::now_ns();
  for (auto& [id, m] : g.members) {
    join_outcome out;
    out.generation = g.generation;
    out.protocol_name = g.protocol;
    out.protocol_type = g.protocol_type;
    out.leader = g.leader;
    out.member_id = id;
    if (id == g.leader) {
      for (const auto& [mid, mm] : g.members) {
        const std::vector<uint8_t>* md = mm.metadata_for(chosen);
        out.members.push_back({mid, mm.instance_id, md ? *md : std::vector<uint8_t>{}});
      }
    }
    m.join_pending = false;
    m.join_result = std::move(out);
    m.last_heartbeat_ns = now;
  }
  sdk::log_info("kafka: group " + g.id + " generation " + std::to_string(g.generation) + " with " +
                std::to_string(g.members.size()) + " member(s), protocol " + chosen + ", leader " + g.leader);
  g.changed.notify_all();
}

void group_coordinator::remove_member(group& g, const std::string& member_id, const char* why) {
  auto it = g.members.find(member_id);
  if (it == g.members.end()) return;
  if (it->second.instance_id) g.static_members.erase(*it->second.instance_id);
  g.members.erase(it);
  if (g.leader == member_id) g.leader.clear();
  switch (g.state) {
    case group_state::stable:
    case group_state::completing_rebalance:
      if (g.members.empty()) {
        ++g.generation;
        g.state = group_state::empty;
        g.protocol.reset();
        g.changed.notify_all();
      } else {
        prepare_rebalance(g, why);
      }
      break;
    case group_state::preparing_rebalance:
      maybe_complete_join(g, false);
      if (g.members.empty()) {
        ++g.generation;
        g.state = group_state::empty;
        g.protocol.reset();
      }
      g.changed.notify_all();
      break;
    default:
      break;
  }
}

task<void> group_coordinator::run_timers(sdk::abort_source& stop) {
  while (co_await sdk::sleep_ms(tick_ms, &stop) == -ETIME) {
    const uint64_t now = sdk::now_ns();
    std::vector<group*> to_store;
    for (auto& [id, gp] : _groups) {
      group& g = *gp;
      // Cluster mode: a group whose offsets partition another broker leads
      // now is that broker's to expire.
      if (serving(id) == error_code::not_coordinator) continue;
      for (auto it = g.pending_members.begin(); it != g.pending_members.end();)
        it = it->second < now ? g.pending_members.erase(it) : std::next(it);
      std::vector<std::string> expired;
      for (const auto& [mid, m] : g.members)
        if (!m.join_pending && now - m.last_heartbeat_ns > static_cast<uint64_t>(m.session_timeout_ms) * 1'000'000)
          expired.push_back(mid);
      const group_state before = g.state;
      for (const auto& mid : expired) remove_member(g, mid, "a member's session expired");
      maybe_complete_join(g, g.state == group_state::preparing_rebalance && now >= g.rebalance_deadline_ns);
      if (before != g.state && g.state == group_state::empty) to_store.push_back(&g);
    }
    for (group* g : to_store) co_await store_group(*g);
  }
}

// ---- requests -----------------------------------------------------------------------

task<join_outcome> group_coordinator::join(const join_request& r) {
  join_outcome out;
  out.member_id = r.member_id;
  if (error_code e = serving(r.group_id); e != error_code::none) {
    out.error = e;
    co_return out;
  }
  if (r.group_id.empty()) {
    out.error = error_code::invalid_group_id;
    co_return out;
  }
  if (r.session_timeout_ms < static_cast<int32_t>(_cfg.group_min_session_timeout_ms) ||
      r.session_timeout_ms > static_cast<int32_t>(_cfg.group_max_session_timeout_ms)) {
    out.error = error_code::invalid_session_timeout;
    co_return out;
  }
  group& g = get_or_create(r.group_id);
  if (r.protocols.empty() || r.protocol_type.empty() ||
      (!g.members.empty() && g.protocol_type != r.protocol_type)) {
    out.error = error_code::inconsistent_group_protocol;
    co_return out;
  }
  if (!g.members.empty()) {
    bool common = false;
    for (const auto& [name, md] : r.protocols) {
      bool everyone = true;
      for (const auto& [id, m] : g.members)
        if (id != r.member_id) everyone = everyone && m.metadata_for(name) != nullptr;
      common = common || everyone;
    }
    if (!common) {
      out.error = error_code::inconsistent_group_protocol;
      co_return out;
    }
  }
  std::string member_id = r.member_id;
  const uint64_t now = sdk::now_ns();
  if (member_id.empty()) {
    member_id = (r.client_id.empty() ? std::string("member") : r.client_id) + "-" + random_suffix();
    if (r.instance_id) {
      // Static membership: the new id replaces (fences) the old one.
      auto old = g.static_members.find(*r.instance_id);
      if (old != g.static_members.end()) {
        auto m = g.members.find(old->second);
        if (m != g.members.end()) {
          member moved = std::move(m->second);
          g.members.erase(m);
          moved.member_id = member_id;
          moved.join_result.reset();
          if (g.leader == old->second) g.leader = member_id;
          g.members.emplace(member_id, std::move(moved));
        }
      }
      g.static_members[*r.instance_id] = member_id;
    } else if (r.require_known_member_id) {
      g.pending_members[member_id] = now + static_cast<uint64_t>(r.session_timeout_ms) * 1'000'000;
      out.error = error_code::member_id_required;
      out.member_id = member_id;
      co_return out;
    }
  } else {
    if (r.instance_id) {
      auto s = g.static_members.find(*r.instance_id);
      if (s != g.static_members.end() && s->second != member_id) {
        out.error = error_code::fenced_instance_id;
        co_return out;
      }
    }
    if (!g.members.count(member_id)) {
      if (!g.pending_members.erase(member_id) && !(r.instance_id && g.static_members.count(*r.instance_id))) {
        out.error = error_code::unknown_member_id;
        co_return out;
      }
    }
    if (r.instance_id) g.static_members[*r.instance_id] = member_id;
  }
  // A known member rejoining with unchanged metadata while the group is
  // Stable (and it is not the leader) or CompletingRebalance gets the
  // current generation back instead of a new rebalance, as in Kafka: it
  // missed a JoinGroup response, or a cooperative client re-sent its join.
  if (auto known = g.members.find(member_id); known != g.members.end() && !known->second.join_pending &&
                                              known->second.protocols == r.protocols &&
                                              ((g.state == group_state::stable && member_id != g.leader) ||
                                               g.state == group_state::completing_rebalance)) {
    known->second.last_heartbeat_ns = now;
    join_outcome cur;
    cur.generation = g.generation;
    cur.protocol_name = g.protocol;
    cur.protocol_type = g.protocol_type;
    cur.leader = g.leader;
    cur.member_id = member_id;
    if (member_id == g.leader)
      for (const auto& [mid, mm] : g.members) {
        const std::vector<uint8_t>* md = g.protocol ? mm.metadata_for(*g.protocol) : nullptr;
        cur.members.push_back({mid, mm.instance_id, md ? *md : std::vector<uint8_t>{}});
      }
    co_return cur;
  }
  member& m = g.members[member_id];
  m.member_id = member_id;
  m.instance_id = r.instance_id;
  m.client_id = r.client_id;
  m.client_host = r.client_host;
  m.session_timeout_ms = r.session_timeout_ms;
  m.rebalance_timeout_ms = r.rebalance_timeout_ms > 0 ? r.rebalance_timeout_ms : r.session_timeout_ms;
  m.protocols = r.protocols;
  m.last_heartbeat_ns = now;
  m.join_pending = true;
  m.join_result.reset();
  g.protocol_type = r.protocol_type;
  prepare_rebalance(g, ("member " + member_id + " joined").c_str());
  maybe_complete_join(g, false);
  // Wait for this round to complete (the timer tick enforces deadlines).
  const std::string group_id = r.group_id;
  for (;;) {
    group* gp = find(group_id);
    if (_stopped || gp == nullptr) {
      out.error = error_code::coordinator_not_available;
      co_return out;
    }
    auto it = gp->members.find(member_id);
    if (it == gp->members.end()) {
      out.error = error_code::unknown_member_id;
      co_return out;
    }
    if (it->second.join_result) {
      join_outcome done = std::move(*it->second.join_result);
      it->second.join_result.reset();
      co_return done;
    }
    co_await gp->changed.wait();
  }
}

task<sync_outcome> group_coordinator::sync(const std::string& group_id, int32_t generation, const std::string& member_id,
                                           const std::optional<std::string>& instance_id,
                                           const std::vector<std::pair<std::string, std::vector<uint8_t>>>& assignments) {
  sync_outcome out;
  if (error_code e = serving(group_id); e != error_code::none) {
    out.error = e;
    co_return out;
  }
  group* g = find(group_id);
  if (!g || !g->members.count(member_id)) {
    out.error = error_code::unknown_member_id;
    co_return out;
  }
  if (instance_id) {
    auto s = g->static_members.find(*instance_id);
    if (s != g->static_members.end() && s->second != member_id) {
      out.error = error_code::fenced_instance_id;
      co_return out;
    }
  }
  if (generation != g->generation) {
    out.error = error_code::illegal_generation;
    co_return out;
  }
  if (g->state == group_state::preparing_rebalance) {
    out.error = error_code::rebalance_in_progress;
    co_return out;
  }
  g->members[member_id].last_heartbeat_ns = sdk::now_ns();
  if (g->state == group_state::completing_rebalance && member_id == g->leader) {
    for (auto& [id, m] : g->members) m.assignment.clear();
    for (const auto& [id, a] : assignments)
      if (auto it = g->members.find(id); it != g->members.end()) it->second.assignment = a;
    g->state = group_state::stable;
    g->changed.notify_all();
    co_await store_group(*g);
  }
  for (;;) {
    g = find(group_id);
    if (_stopped || !g) {
      out.error = error_code::coordinator_not_available;
      co_return out;
    }
    auto it = g->members.find(member_id);
    if (it == g->members.end()) {
      out.error = error_code::unknown_member_id;
      co_return out;
    }
    if (g->generation != generation || g->state == group_state::preparing_rebalance) {
      out.error = error_code::rebalance_in_progress;
      co_return out;
    }
    if (g->state == group_state::stable) {
      out.assignment = it->second.assignment;
      out.protocol_type = g->protocol_type;
      out.protocol_name = g->protocol;
      co_return out;
    }
    co_await g->changed.wait();
  }
}

error_code group_coordinator::heartbeat(const std::string& group_id, int32_t generation, const std::string& member_id,
                                        const std::optional<std::string>& instance_id) {
  // Kafka's order of checks: member, then generation, then state.
  if (error_code e = serving(group_id); e != error_code::none)
    return e == error_code::not_coordinator ? e : error_code::none;  // as Kafka: answer blindly while loading
  group* g = find(group_id);
  if (!g) return error_code::unknown_member_id;
  if (g->state == group_state::dead) return error_code::coordinator_not_available;
  if (instance_id) {
    auto s = g->static_members.find(*instance_id);
    if (s != g->static_members.end() && s->second != member_id) return error_code::fenced_instance_id;
  }
  auto it = g->members.find(member_id);
  if (it == g->members.end()) {
    sdk::log_info("kafka: group " + group_id + ": heartbeat from unknown member " + member_id);
    return error_code::unknown_member_id;
  }
  if (generation != g->generation) {
    sdk::log_info("kafka: group " + group_id + ": heartbeat from " + member_id + " with generation " +
                  std::to_string(generation) + ", the group is at " + std::to_string(g->generation) + " (" +
                  to_string(g->state) + ")");
    return error_code::illegal_generation;
  }
  it->second.last_heartbeat_ns = sdk::now_ns();
  switch (g->state) {
    case group_state::empty: return error_code::unknown_member_id;
    case group_state::preparing_rebalance: return error_code::rebalance_in_progress;
    default: return error_code::none;  // Stable, or CompletingRebalance (members heartbeat while they sync)
  }
}

error_code group_coordinator::leave(const std::string& group_id, const std::string& member_id,
                                    const std::optional<std::string>& instance_id) {
  if (error_code e = serving(group_id); e != error_code::none) return e;
  group* g = find(group_id);
  if (!g) return error_code::unknown_member_id;
  std::string id = member_id;
  if (instance_id) {
    auto s = g->static_members.find(*instance_id);
    if (s == g->static_members.end()) return error_code::unknown_member_id;
    if (!id.empty() && s->second != id) return error_code::fenced_instance_id;
    id = s->second;
  }
  if (!g->members.count(id)) return error_code::unknown_member_id;
  remove_member(*g, id, ("member " + id + " left").c_str());
  return error_code::none;
}

task<error_code> group_coordinator::commit(const std::string& group_id, int32_t generation,
                                           const std::string& member_id,
                                           const std::optional<std::string>& instance_id,
                                           const std::vector<std::pair<offset_key, committed_offset>>& offsets) {
  if (group_id.empty()) co_return error_code::invalid_group_id;
  if (error_code e = serving(group_id); e != error_code::none) co_return e;
  group& g = get_or_create(group_id);
  if (generation >= 0 || !member_id.empty()) {
    // A group member commits for its generation.
    if (instance_id) {
      auto s = g.static_members.find(*instance_id);
      if (s != g.static_members.end() && s->second != member_id) co_return error_code::fenced_instance_id;
    }
    auto it = g.members.find(member_id);
    if (it == g.members.end()) co_return error_code::unknown_member_id;
    if (generation != g.generation) co_return error_code::illegal_generation;
    // As Kafka: commits still count while the group prepares a rebalance
    // (members learn of it from heartbeats), not between join and sync.
    if (g.state == group_state::completing_rebalance) co_return error_code::rebalance_in_progress;
    it->second.last_heartbeat_ns = sdk::now_ns();
  } else if (!g.members.empty()) {
    // A standalone commit (generation -1) to a group with live members.
    co_return error_code::illegal_generation;
  }
  std::vector<std::pair<std::string, std::optional<std::string>>> records;
  records.reserve(offsets.size());
  for (const auto& [k, o] : offsets) records.emplace_back(offset_key_bytes(group_id, k.first, k.second), offset_value_bytes(o));
  const error_code e = co_await append(group_id, std::move(records));
  if (e != error_code::none) co_return e;
  group* gp = find(group_id);  // still there: a group with offsets is not deleted meanwhile
  if (gp)
    for (const auto& [k, o] : offsets) gp->offsets[k] = o;
  co_return error_code::none;
}

std::map<offset_key, committed_offset> group_coordinator::fetch(const std::string& group_id) const {
  const group* g = find(group_id);
  return g ? g->offsets : std::map<offset_key, committed_offset>{};
}

group_description group_coordinator::describe(const std::string& group_id) const {
  group_description d;
  d.group_id = group_id;
  if (error_code e = serving(group_id); e != error_code::none) {
    d.error = e;
    return d;
  }
  const group* g = find(group_id);
  if (!g) {
    d.state = "Dead";
    return d;
  }
  d.state = to_string(g->state);
  d.protocol_type = g->protocol_type;
  d.protocol_data = g->protocol.value_or("");
  for (const auto& [id, m] : g->members) {
    member_description md;
    md.member_id = id;
    md.instance_id = m.instance_id;
    md.client_id = m.client_id;
    md.client_host = m.client_host;
    if (g->protocol)
      if (const auto* meta = m.metadata_for(*g->protocol)) md.metadata = *meta;
    if (g->state == group_state::stable) md.assignment = m.assignment;
    d.members.push_back(std::move(md));
  }
  return d;
}

std::vector<std::tuple<std::string, std::string, std::string>> group_coordinator::list(
    const std::vector<std::string>& states) const {
  std::vector<std::tuple<std::string, std::string, std::string>> out;
  auto lower = [](std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  };
  for (const auto& [id, g] : _groups) {
    const std::string state = to_string(g->state);
    bool wanted = states.empty();
    for (const auto& s : states) wanted = wanted || lower(s) == lower(state);
    if (wanted) out.emplace_back(id, g->protocol_type, state);
  }
  return out;
}

task<error_code> group_coordinator::remove_group(const std::string& group_id) {
  if (error_code e = serving(group_id); e != error_code::none) co_return e;
  group* g = find(group_id);
  if (!g) co_return error_code::group_id_not_found;
  if (!g->members.empty()) co_return error_code::non_empty_group;
  std::vector<std::pair<std::string, std::optional<std::string>>> records;
  for (const auto& [k, o] : g->offsets) records.emplace_back(offset_key_bytes(group_id, k.first, k.second), std::nullopt);
  records.emplace_back(group_key_bytes(group_id), std::nullopt);
  const error_code e = co_await append(group_id, std::move(records));
  if (e != error_code::none) co_return e;
  if (group* still = find(group_id); still && still->members.empty()) {
    still->state = group_state::dead;
    still->changed.notify_all();
    _groups.erase(group_id);
  }
  co_return error_code::none;
}

task<std::map<offset_key, error_code>> group_coordinator::delete_offsets(const std::string& group_id,
                                                                          const std::vector<offset_key>& partitions,
                                                                          error_code& group_error) {
  std::map<offset_key, error_code> out;
  group_error = error_code::none;
  if (error_code e = serving(group_id); e != error_code::none) {
    group_error = e;
    co_return out;
  }
  group* g = find(group_id);
  if (!g) {
    group_error = error_code::group_id_not_found;
    co_return out;
  }
  // Offsets of topics the live group consumes stay (GROUP_SUBSCRIBED_TO_TOPIC).
  std::vector<std::string> subscribed;
  if (!g->members.empty() && g->protocol_type == "consumer" && g->protocol)
    for (const auto& [id, m] : g->members)
      if (const auto* md = m.metadata_for(*g->protocol))
        for (auto& t : subscribed_topics(*md)) subscribed.push_back(std::move(t));
  std::vector<std::pair<std::string, std::optional<std::string>>> records;
  std::vector<offset_key> removed;
  for (const auto& k : partitions) {
    if (std::find(subscribed.begin(), subscribed.end(), k.first) != subscribed.end()) {
      out[k] = error_code::group_subscribed_to_topic;
      continue;
    }
    out[k] = error_code::none;
    if (g->offsets.count(k)) {
      records.emplace_back(offset_key_bytes(group_id, k.first, k.second), std::nullopt);
      removed.push_back(k);
    }
  }
  const error_code e = co_await append(group_id, std::move(records));
  if (e != error_code::none) {
    group_error = e;
    co_return out;
  }
  if (group* still = find(group_id))
    for (const auto& k : removed) still->offsets.erase(k);
  co_return out;
}

}  // namespace sluice::kafka
