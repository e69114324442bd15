#include "sim.h"

#include "memory_log.h"
#include "raft_node.h"
#include "rng.h"

#include <csignal>
#include <cstdarg>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <unistd.h>
#include <vector>

namespace sluice::raft::sim {

namespace {

// ---- fixed parameters (ticks are ~10 ms) ----------------------------------------------

constexpr uint32_t election_timeout_ticks = 10;
constexpr uint32_t heartbeat_interval_ticks = 2;
// Healed, a group must commit a new proposal within this bound: ~8 election
// timeouts, as split votes (two voters timing out together) can repeat.
constexpr uint64_t liveness_bound_ms = 2000;

uint64_t fnv(std::string_view s) {
  uint64_t h = 1469598103934665603ull;
  for (char c : s) {
    h ^= static_cast<uint8_t>(c);
    h *= 1099511628211ull;
  }
  return h;
}

uint64_t mix(uint64_t h, uint64_t v) {
  uint64_t x = h ^ (v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2));
  return rng::splitmix(x);
}

// What identifies an entry, payload included.
struct fingerprint {
  log_index index;
  log_index last;
  term_id term;
  entry_type type = entry_type::normal;
  uint64_t payload_hash = 0;
  bool operator==(const fingerprint&) const = default;
  uint64_t hash() const {
    uint64_t h = mix(index.value(), last.value());
    h = mix(h, term.value());
    h = mix(h, static_cast<uint64_t>(type));
    return mix(h, payload_hash);
  }
};
fingerprint fingerprint_of(const entry& e) {
  return fingerprint{e.index, e.last(), e.term, e.type, fnv(e.data.view())};
}
std::string describe(const fingerprint& f) {
  return "[" + std::to_string(f.index.value()) + ".." + std::to_string(f.last.value()) +
         "] t=" + std::to_string(f.term.value()) + " " + to_string(f.type) + " #" + std::to_string(f.payload_hash % 100000);
}

struct written_record {
  fingerprint f;
  term_id prev_term;
};

struct committed_record {
  fingerprint f;
  term_id bound;            // the entry was committed in a term <= bound
  uint64_t digest = 0;      // state machine after applying it (0: not applied yet)
};

// Snapshot data: the state machine, i.e. (applied index, digest).
std::string encode_state(log_index applied, uint64_t digest) {
  return std::to_string(applied.value()) + ":" + std::to_string(digest);
}
std::pair<log_index, uint64_t> decode_state(std::string_view s) {
  if (s.empty()) return {log_index(), 0};
  const size_t colon = s.find(':');
  SLUICE_ASSERT(colon != std::string_view::npos);
  return {log_index(std::stoull(std::string(s.substr(0, colon)))), std::stoull(std::string(s.substr(colon + 1)))};
}

struct host {
  explicit host(uint64_t id_, membership bootstrap) : id(id_), disk(std::move(bootstrap)) {}

  uint64_t id;
  memory_log disk;                   // survives crashes
  std::unique_ptr<raft_node> raft;   // null while down
  uint32_t incarnation = 0;
  uint64_t tick_period_ms = 10;
  uint64_t next_tick_ms = 0;
  std::optional<ready> pending;      // being persisted
  uint64_t pending_done_ms = 0;
  std::deque<message> inbox;         // arrived while busy
  uint32_t queued_ticks = 0;
  log_index applied;                 // the state machine
  uint64_t digest = 0;
  log_index commit_seen;

  bool up() const { return raft != nullptr; }
  bool busy() const { return pending.has_value(); }
};

// How faulty this seed's world is.
struct profile {
  uint32_t loss_ppm;         // per message
  uint32_t dup_ppm;
  uint64_t delay_min_ms;
  uint64_t delay_max_ms;
  uint32_t crash_ppm;        // per millisecond
  uint32_t restart_ppm;
  uint32_t partition_ppm;
  uint32_t transfer_ppm;
  uint32_t conf_ppm;
  uint32_t compact_ppm;
  uint32_t propose_ppm;
  uint32_t read_ppm;
  uint32_t slow_disk_ppm;    // per ready: a long fsync
  uint32_t inflight_max;
  bool single_voter;         // conf changes may shrink the group to one voter (plus learners)
  uint32_t suffix_loss_ppm;  // per restart in the fault phase: the disk lost a suffix of the log
  uint64_t append_bytes_max;
};

const options* g_abort_options = nullptr;

void on_abort(int) {
  if (g_abort_options != nullptr) {
    const std::string line = "raft-sim: aborted while simulating seed " + std::to_string(g_abort_options->seed) +
                             "; replay: " + replay_command(*g_abort_options) + "\n";
    (void)!::write(2, line.data(), line.size());
  }
  std::signal(SIGABRT, SIG_DFL);
}

class simulation {
 public:
  simulation(const options& o, std::FILE* trace)
      : _o(o), _trace(o.verbose ? trace : nullptr), _hashing(o.verbose || o.hash_trace), _rng(o.seed) {
    SLUICE_ASSERT_MSG(o.nodes >= 1 && o.nodes <= 9, "1 to 9 nodes");
    // Faults until the last liveness_bound_ms (+ margin) of the run, but at
    // least half of it; a run too short for the bound checks no liveness.
    _heal_at_ms = o.duration_ms >= 2 * (liveness_bound_ms + 100) ? o.duration_ms - liveness_bound_ms - 100
                                                                 : o.duration_ms / 2;
    make_profile();
    for (uint64_t id = 1; id <= o.nodes; ++id) _bootstrap.voters.push_back(node_id(id));
    for (uint64_t id = 1; id <= o.nodes; ++id) _hosts.push_back(std::make_unique<host>(id, _bootstrap));
    for (auto& h : _hosts) restart(*h);
  }

  outcome run() {
    for (_now = 0; _now < _o.duration_ms && !_failed; ++_now) {
      if (_now == _heal_at_ms) heal_all();
      if (_now < _heal_at_ms) inject_faults();
      if (_rng.chance(_p.compact_ppm)) compact_somewhere();
      if (_rng.chance(_p.propose_ppm)) propose_somewhere();
      if (_rng.chance(_p.read_ppm)) read_somewhere();
      deliver_due();
      tick_nodes();
      process_readies();
      check_every_step();
    }
    _out.st.committed_entries = _committed.size();
    _out.trace_hash = _trace_hash;
    return _out;
  }

 private:
  // ---- trace and failures ------------------------------------------------------------

  void trace(const char* fmt, ...) __attribute__((format(printf, 2, 3))) {
    if (!_hashing) return;
    char line[512];
    int n = std::snprintf(line, sizeof(line), "[%6llu] ", static_cast<unsigned long long>(_now));
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(line + n, sizeof(line) - static_cast<size_t>(n), fmt, ap);
    va_end(ap);
    _trace_hash = mix(_trace_hash, fnv(line));
    if (_trace) std::fprintf(_trace, "%s\n", line);
  }

  void fail(const std::string& invariant, const std::string& detail) {
    if (_failed) return;
    _failed = true;
    _out.ok = false;
    _out.invariant = invariant;
    _out.detail = detail;
    _out.at_ms = _now;
    trace("FAILED %s: %s", invariant.c_str(), detail.c_str());
  }

  // ---- the world ------------------------------------------------------------------------

  void make_profile() {
    // Each seed draws its own mix, from a calm network to a hostile one.
    _p.loss_ppm = static_cast<uint32_t>(_rng.chance(200'000) ? 0 : _rng.below(150'000));
    _p.dup_ppm = static_cast<uint32_t>(_rng.below(50'000));
    _p.delay_min_ms = _rng.between(0, 3);
    _p.delay_max_ms = _p.delay_min_ms + _rng.between(1, 30);
    _p.crash_ppm = static_cast<uint32_t>(_rng.between(0, 4'000));
    _p.restart_ppm = static_cast<uint32_t>(_rng.between(2'000, 12'000));
    _p.partition_ppm = static_cast<uint32_t>(_rng.between(0, 6'000));
    _p.transfer_ppm = static_cast<uint32_t>(_rng.between(0, 3'000));
    _p.conf_ppm = static_cast<uint32_t>(_rng.between(0, 4'000));
    _p.compact_ppm = static_cast<uint32_t>(_rng.between(0, 10'000));
    _p.propose_ppm = static_cast<uint32_t>(_rng.between(20'000, 150'000));
    _p.single_voter = _rng.chance(200'000);
    _p.read_ppm = static_cast<uint32_t>(_rng.between(0, 20'000));
    _p.slow_disk_ppm = static_cast<uint32_t>(_rng.below(100'000));
    _p.inflight_max = static_cast<uint32_t>(_rng.between(1, 8));
    // An entry is ~40 bytes here: some seeds send one or two per append
    // (acknowledgements then cover parts of a leader's tail), others dozens.
    // Replication must outrun the clients for the log to converge.
    _p.append_bytes_max = _rng.between(256, 4096);
    if (_rng.chance(300'000)) {
      _p.append_bytes_max = _rng.between(40, 120);
      _p.inflight_max = static_cast<uint32_t>(_rng.between(4, 8));
      _p.propose_ppm = std::min<uint32_t>(_p.propose_ppm, 50'000);
    }
    // Drawn last: the draws before it are those of the seeds before repairs existed.
    _p.suffix_loss_ppm = _p.single_voter || _rng.chance(300'000) ? 0 : static_cast<uint32_t>(_rng.between(50'000, 500'000));
    trace("profile seed=%llu nodes=%u loss=%u dup=%u delay=%llu..%llu crash=%u partition=%u transfer=%u conf=%u "
          "compact=%u propose=%u inflight=%u append_bytes=%llu suffix_loss=%u",
          static_cast<unsigned long long>(_o.seed), _o.nodes, _p.loss_ppm, _p.dup_ppm,
          static_cast<unsigned long long>(_p.delay_min_ms), static_cast<unsigned long long>(_p.delay_max_ms),
          _p.crash_ppm, _p.partition_ppm, _p.transfer_ppm, _p.conf_ppm, _p.compact_ppm, _p.propose_ppm,
          _p.inflight_max, static_cast<unsigned long long>(_p.append_bytes_max), _p.suffix_loss_ppm);
  }

  host& at(node_id n) { return *_hosts.at(n.value() - 1); }

  template <typename Pred>
  host* pick(Pred pred) {
    std::vector<host*> c;
    for (auto& h : _hosts) {
      if (pred(*h)) c.push_back(h.get());
    }
    return c.empty() ? nullptr : c[_rng.below(c.size())];
  }

  // The node's disk lost a suffix of its log while it was down (a damaged
  // segment cut at open): as the partition host does, record the repair
  // gate first (the last entry before the loss; an older gate that reaches
  // further stays), then cut. The persisted commit is clamped to what is
  // left: the one place a node's persisted commit goes back, and only on
  // the repairing node (the entries it names are still on a majority, or
  // behind this gate). One repairing node at a time: with two, a 3-voter
  // group could have no quorum of voters that may vote for the others.
  void lose_suffix(host& h) {
    const std::vector<entry>& ents = h.disk.stored_entries();
    if (ents.empty()) return;
    for (auto& o : _hosts) {
      if (o.get() != &h && o->disk.initial_hard_state().gate.active()) return;
    }
    const entry& cut = ents[_rng.below(ents.size())];
    const log_index from = cut.index;
    hard_state hs = h.disk.initial_hard_state();
    const repair_gate g{ents.back().last(), ents.back().term};
    if (!hs.gate.active() || hs.gate.index < g.index) hs.gate = g;
    hs.commit = std::min(hs.commit, from - 1);
    h.disk.set_hard_state(hs);
    h.disk.lose_suffix(from);
    ++_out.st.suffix_losses;
    trace("n%llu lost its log from %llu (gate %llu term %llu)", static_cast<unsigned long long>(h.id),
          static_cast<unsigned long long>(from.value()), static_cast<unsigned long long>(hs.gate.index.value()),
          static_cast<unsigned long long>(hs.gate.term.value()));
  }

  void restart(host& h) {
    SLUICE_ASSERT(!h.up());
    if (h.incarnation > 0 && _now < _heal_at_ms && _rng.chance(_p.suffix_loss_ppm)) lose_suffix(h);
    ++h.incarnation;
    h.tick_period_ms = _rng.between(7, 13);  // clock skew
    h.next_tick_ms = _now + _rng.between(1, h.tick_period_ms);
    config cfg;
    cfg.self = node_id(h.id);
    cfg.bootstrap = _bootstrap;
    cfg.election_timeout_ticks = election_timeout_ticks;
    cfg.heartbeat_interval_ticks = heartbeat_interval_ticks;
    cfg.inflight_appends_max = _p.inflight_max;
    cfg.append_bytes_max = _p.append_bytes_max;
    cfg.ready_apply_bytes_max = 4 * _p.append_bytes_max;
    const snapshot& s = h.disk.stored_snapshot();
    cfg.applied = s.meta.index;
    h.raft = std::make_unique<raft_node>(cfg, h.disk, mix(_o.seed, h.id * 1000 + h.incarnation));
    auto [applied, digest] = decode_state(s.data.view());
    SLUICE_ASSERT(applied == s.meta.index);
    h.applied = s.meta.index;
    h.digest = digest;
    if (!s.meta.index.is_zero()) check_snapshot_state(s, "restart");
    h.commit_seen = h.raft->commit_index();
    trace("start n%llu incarnation=%u term=%llu last=%llu commit=%llu snap=%llu period=%llums",
          static_cast<unsigned long long>(h.id), h.incarnation,
          static_cast<unsigned long long>(h.raft->term().value()),
          static_cast<unsigned long long>(h.raft->last_index().value()),
          static_cast<unsigned long long>(h.raft->commit_index().value()),
          static_cast<unsigned long long>(s.meta.index.value()), static_cast<unsigned long long>(h.tick_period_ms));
  }

  void crash(host& h) {
    SLUICE_ASSERT(h.up());
    ++_out.st.crashes;
    std::string what = "idle";
    if (h.pending) {
      // The host was persisting a ready: some of it may have reached the disk.
      ready& rd = *h.pending;
      switch (_rng.below(4)) {
        case 0: what = "lost the whole ready"; break;
        case 1: {
          if (rd.snap) h.disk.install_snapshot(*rd.snap);
          const size_t k = rd.entries.empty() ? 0 : _rng.below(rd.entries.size() + 1);
          if (k > 0) {
            std::vector<entry> part(rd.entries.begin(), rd.entries.begin() + static_cast<std::ptrdiff_t>(k));
            h.disk.append(part);
            check_written(h, part);
          }
          what = "kept " + std::to_string(k) + "/" + std::to_string(rd.entries.size()) + " entries, no hard state";
          break;
        }
        case 2:
          if (rd.snap) h.disk.install_snapshot(*rd.snap);
          if (!rd.entries.empty()) {
            h.disk.append(rd.entries);
            check_written(h, rd.entries);
          }
          what = "kept the entries, no hard state";
          break;
        default:
          persist(h, rd);
          what = "kept everything, sent nothing";
          break;
      }
    }
    trace("crash n%llu (%s)", static_cast<unsigned long long>(h.id), what.c_str());
    h.raft.reset();
    h.pending.reset();
    h.inbox.clear();
    h.queued_ticks = 0;
  }

  void set_partition() {
    _blocked.clear();
    const uint64_t kind = _rng.below(4);
    const uint64_t n = _hosts.size();
    std::string desc;
    auto cut = [&](uint64_t a, uint64_t b) {
      _blocked.insert({a, b});
      _blocked.insert({b, a});
    };
    if (kind == 1) {
      const uint64_t x = _rng.between(1, n);
      for (uint64_t y = 1; y <= n; ++y) {
        if (y != x) cut(x, y);
      }
      desc = "isolate n" + std::to_string(x);
    } else if (kind == 2) {
      std::vector<bool> side(n + 1);
      for (uint64_t x = 1; x <= n; ++x) side[x] = _rng.chance(500'000);
      desc = "split {";
      for (uint64_t x = 1; x <= n; ++x) {
        if (side[x]) desc += " " + std::to_string(x);
      }
      desc += " }";
      for (uint64_t x = 1; x <= n; ++x) {
        for (uint64_t y = x + 1; y <= n; ++y) {
          if (side[x] != side[y]) cut(x, y);
        }
      }
    } else if (kind == 3) {
      const uint64_t links = _rng.between(1, n);
      desc = "one-way";
      for (uint64_t k = 0; k < links; ++k) {
        const uint64_t a = _rng.between(1, n);
        const uint64_t b = _rng.between(1, n);
        if (a == b) continue;
        _blocked.insert({a, b});
        desc += " " + std::to_string(a) + "-x->" + std::to_string(b);
      }
    } else {
      desc = "healed";
    }
    trace("network %s", desc.c_str());
  }

  void heal_all() {
    _blocked.clear();
    _p.loss_ppm = 0;
    // Clients back off: replication must be able to outrun proposals.
    _p.propose_ppm = std::min<uint32_t>(_p.propose_ppm, 20'000);
    trace("heal: network whole, no loss, every node up");
    for (auto& h : _hosts) {
      if (!h->up()) restart(*h);
    }
  }

  void inject_faults() {
    if (_rng.chance(_p.crash_ppm)) {
      if (host* h = pick([](host& x) { return x.up(); })) crash(*h);
    }
    if (_rng.chance(_p.restart_ppm)) {
      if (host* h = pick([](host& x) { return !x.up(); })) restart(*h);
    }
    if (_rng.chance(_p.partition_ppm)) set_partition();
    if (_rng.chance(_p.transfer_ppm)) transfer_somewhere();
    if (_rng.chance(_p.conf_ppm)) conf_change_somewhere();
  }

  host* idle_leader() {
    return pick([](host& x) { return x.up() && !x.busy() && x.raft->current_role() == role::leader; });
  }

  void transfer_somewhere() {
    host* h = idle_leader();
    if (!h) return;
    const auto& voters = h->raft->members().voters;
    const node_id target = voters[_rng.below(voters.size())];
    if (target == node_id(h->id)) return;
    auto r = h->raft->transfer_leadership(target);
    if (r) ++_out.st.transfers;
    trace("transfer n%llu -> n%llu: %s", static_cast<unsigned long long>(h->id),
          static_cast<unsigned long long>(target.value()), r ? "started" : r.err().message.c_str());
  }

  void conf_change_somewhere() {
    host* h = idle_leader();
    if (!h) return;
    const membership& m = h->raft->members();
    std::vector<conf_change> options;
    // With a repairing node among two voters, the other one may not hold
    // the whole log the repairing one had: no quorum can form (docs/RAFT.md,
    // "Repairing a replica", liveness). Seeds that lose suffixes keep 3.
    const size_t min_voters = _p.single_voter ? 1 : _hosts.size() >= 5 || _p.suffix_loss_ppm > 0 ? 3 : 2;
    for (auto& other : _hosts) {
      const node_id x(other->id);
      if (!m.contains(x)) {
        options.push_back({conf_change_type::add_learner, x});
        if (_rng.chance(300'000)) options.push_back({conf_change_type::add_voter, x});
      } else if (m.is_learner(x)) {
        options.push_back({conf_change_type::promote, x});
        options.push_back({conf_change_type::remove_voter, x});
      } else if (x != node_id(h->id) && m.voters.size() > min_voters) {
        options.push_back({conf_change_type::remove_voter, x});
      }
    }
    if (options.empty()) return;
    const conf_change cc = options[_rng.below(options.size())];
    auto r = h->raft->propose_conf_change(cc);
    if (r) ++_out.st.conf_changes;
    trace("conf n%llu %s n%llu: %s", static_cast<unsigned long long>(h->id), to_string(cc.type),
          static_cast<unsigned long long>(cc.node.value()),
          r ? ("at " + std::to_string(r.value().value())).c_str() : r.err().message.c_str());
  }

  void compact_somewhere() {
    host* h = pick([](host& x) { return x.up() && !x.busy(); });
    if (!h || h->applied <= h->disk.stored_snapshot().meta.index) return;
    h->disk.compact(h->applied, payload(encode_state(h->applied, h->digest)));
    trace("compact n%llu at %llu", static_cast<unsigned long long>(h->id),
          static_cast<unsigned long long>(h->applied.value()));
  }

  void propose_somewhere() {
    host* h = idle_leader();
    if (!h) return;
    const std::string data = "v" + std::to_string(++_proposal_seq);
    const uint32_t count = _rng.chance(500'000) ? 1 : static_cast<uint32_t>(_rng.between(2, 5));
    auto r = h->raft->propose(payload(data), count);
    if (!r) return;
    ++_out.st.proposals;
    if (_now >= _heal_at_ms) _post_heal_payloads.insert(fnv(data));
    trace("propose n%llu %s x%u at %llu", static_cast<unsigned long long>(h->id), data.c_str(), count,
          static_cast<unsigned long long>(r.value().value()));
  }

  // A linearizable read must see every entry known committed when it starts.
  void read_somewhere() {
    host* h = idle_leader();
    if (!h) return;
    const uint64_t id = ++_read_seq;
    const log_index known = _committed.empty() ? log_index() : _committed.rbegin()->first;
    auto r = h->raft->read_index(id);
    if (!r) return;
    _reads.emplace(id, known);
    trace("read n%llu #%llu (known committed %llu)", static_cast<unsigned long long>(h->id),
          static_cast<unsigned long long>(id), static_cast<unsigned long long>(known.value()));
  }

  void check_reads(host& h, const ready& rd) {
    for (const read_state& rs : rd.read_states) {
      auto it = _reads.find(rs.request_id);
      SLUICE_ASSERT_MSG(it != _reads.end(), "a read_state for a request never made");
      ++_out.st.reads;
      trace("n%llu read #%llu at %llu", static_cast<unsigned long long>(h.id),
            static_cast<unsigned long long>(rs.request_id), static_cast<unsigned long long>(rs.index.value()));
      if (rs.index < it->second) {
        fail("linearizable reads", "n" + std::to_string(h.id) + " read #" + std::to_string(rs.request_id) +
                                       " at " + std::to_string(rs.index.value()) + " after " +
                                       std::to_string(it->second.value()) + " was committed");
      }
      _reads.erase(it);
    }
  }

  // ---- network ---------------------------------------------------------------------

  void send(const message& m) {
    ++_out.st.messages_sent;
    if (_rng.chance(_p.loss_ppm)) {
      ++_out.st.messages_lost;
      if (_hashing) trace("lose %s", raft::describe(m).c_str());
      return;
    }
    const int copies = _rng.chance(_p.dup_ppm) ? 2 : 1;
    for (int k = 0; k < copies; ++k) {
      const uint64_t at_ms = _now + _rng.between(_p.delay_min_ms, _p.delay_max_ms);
      _net.emplace(std::make_pair(at_ms, _net_seq++), m);
    }
  }

  void deliver_due() {
    while (!_net.empty() && _net.begin()->first.first <= _now) {
      message m = std::move(_net.begin()->second);
      _net.erase(_net.begin());
      host& to = at(m.to);
      const bool cut = _blocked.count({m.from.value(), m.to.value()}) > 0;
      if (!to.up() || cut) {
        ++_out.st.messages_lost;
        if (_hashing) trace("drop %s (%s)", raft::describe(m).c_str(), cut ? "partition" : "down");
        continue;
      }
      if (_hashing) trace("recv %s", raft::describe(m).c_str());
      if (to.busy()) {
        to.inbox.push_back(std::move(m));
      } else {
        to.raft->step(m);
      }
    }
  }

  void tick_nodes() {
    for (auto& h : _hosts) {
      if (!h->up() || h->next_tick_ms > _now) continue;
      h->next_tick_ms += h->tick_period_ms;
      if (h->busy()) {
        ++h->queued_ticks;
      } else {
        h->raft->tick();
      }
    }
  }

  // ---- the host's ready loop ------------------------------------------------------------

  void process_readies() {
    for (auto& hp : _hosts) {
      host& h = *hp;
      if (!h.up()) continue;
      if (h.busy() && h.pending_done_ms <= _now) complete(h);
      for (int guard = 0; !_failed && !h.busy() && h.raft->has_ready(); ++guard) {
        SLUICE_ASSERT_MSG(guard < 1000, "a node keeps producing readies");
        ready rd = h.raft->ready();
        on_ready(h, rd);
        for (const message& m : rd.early_messages) send(m);
        const uint64_t latency = _rng.chance(_p.slow_disk_ppm) ? _rng.between(5, 25) : _rng.below(3);
        h.pending = std::move(rd);
        h.pending_done_ms = _now + latency;
        if (latency == 0) complete(h);
      }
    }
  }

  void on_ready(host& h, const ready& rd) {
    check_reads(h, rd);
    if (!rd.soft) return;
    trace("n%llu is %s (leader n%llu, term %llu)", static_cast<unsigned long long>(h.id), to_string(rd.soft->role),
          static_cast<unsigned long long>(rd.soft->leader.value()),
          static_cast<unsigned long long>(h.raft->term().value()));
    if (rd.soft->role == role::leader) check_leader_completeness(h);
  }

  void persist(host& h, const ready& rd) {
    if (rd.snap) h.disk.install_snapshot(*rd.snap);
    if (!rd.entries.empty()) {
      h.disk.append(rd.entries);
      check_written(h, rd.entries);
    }
    if (rd.hard) {
      const hard_state old = h.disk.initial_hard_state();
      const hard_state& hs = *rd.hard;
      if (hs.term < old.term) fail("term monotonic", "n" + std::to_string(h.id) + " persisted a lower term");
      if (hs.term == old.term && !old.vote.is_zero() && hs.vote != old.vote) {
        fail("one vote per term", "n" + std::to_string(h.id) + " changed its vote in term " +
                                      std::to_string(hs.term.value()));
      }
      if (hs.commit < old.commit) fail("commit monotonic", "n" + std::to_string(h.id) + " persisted a lower commit");
      if (old.gate.active() && hs.gate.active() && !(hs.gate == old.gate))
        fail("repair gate", "n" + std::to_string(h.id) + " changed its repair gate");
      if (old.gate.active() && !hs.gate.active() && h.disk.last_index() < old.gate.index)
        fail("repair gate", "n" + std::to_string(h.id) + " cleared its repair gate at " +
                                std::to_string(h.disk.last_index().value()) + ", before " +
                                std::to_string(old.gate.index.value()));
      h.disk.set_hard_state(hs);
    }
  }

  void complete(host& h) {
    ready rd = std::move(*h.pending);
    h.pending.reset();
    persist(h, rd);
    observe_commit(h, rd.commit);
    for (const message& m : rd.messages) send(m);
    if (rd.snap) {
      ++_out.st.snapshots_installed;
      check_snapshot_state(*rd.snap, "install on n" + std::to_string(h.id));
      auto [applied, digest] = decode_state(rd.snap->data.view());
      h.applied = applied;
      h.digest = digest;
      trace("n%llu installed snapshot at %llu", static_cast<unsigned long long>(h.id),
            static_cast<unsigned long long>(applied.value()));
    }
    for (const entry& e : rd.committed_entries) apply(h, e);
    h.raft->advance(rd);
    while (!h.inbox.empty()) {
      message m = std::move(h.inbox.front());
      h.inbox.pop_front();
      h.raft->step(m);
    }
    for (; h.queued_ticks > 0; --h.queued_ticks) h.raft->tick();
  }

  // ---- invariants -----------------------------------------------------------------------

  // Log matching: an (index, term) names one entry, with one predecessor.
  void check_written(host& h, const std::vector<entry>& ents) {
    for (const entry& e : ents) {
      auto prev = h.disk.term(e.index - 1);
      SLUICE_ASSERT(prev.has_value());
      const written_record rec{fingerprint_of(e), prev.value()};
      auto [it, inserted] = _written.emplace(std::make_pair(e.index, e.term), rec);
      if (!inserted && !(it->second.f == rec.f && it->second.prev_term == rec.prev_term)) {
        fail("log matching", "n" + std::to_string(h.id) + " wrote " + describe(rec.f) + " after term " +
                                 std::to_string(rec.prev_term.value()) + ", another node " + describe(it->second.f) +
                                 " after term " + std::to_string(it->second.prev_term.value()));
        return;
      }
    }
  }

  committed_record* record_commit(const entry& e, term_id bound, uint64_t node) {
    const fingerprint f = fingerprint_of(e);
    auto [it, inserted] = _committed.emplace(e.last(), committed_record{f, bound, 0});
    if (!inserted) {
      if (!(it->second.f == f)) {
        fail("committed entries never change",
             "n" + std::to_string(node) + " has " + describe(f) + " committed where " + describe(it->second.f) +
                 " was committed");
        return nullptr;
      }
      it->second.bound = std::min(it->second.bound, bound);
    } else if (_now >= _heal_at_ms && !_liveness_ok && e.type == entry_type::normal &&
               _post_heal_payloads.count(f.payload_hash)) {
      _liveness_ok = true;
      _out.st.recovery_ms = _now - _heal_at_ms;
      trace("liveness: a post-heal proposal committed after %llu ms",
            static_cast<unsigned long long>(_out.st.recovery_ms));
    }
    return &it->second;
  }

  void observe_commit(host& h, log_index commit) {
    if (commit < h.commit_seen) {
      fail("commit monotonic", "n" + std::to_string(h.id) + " commit " + std::to_string(commit.value()) +
                                   " after " + std::to_string(h.commit_seen.value()));
      return;
    }
    if (commit == h.commit_seen) return;
    // Every entry of the node's log up to its commit index is committed.
    const log_index lo = std::max(h.commit_seen + 1, h.disk.first_index());
    if (lo <= commit) {
      auto ents = h.disk.entries(lo, commit + 1, UINT64_MAX);
      SLUICE_ASSERT(ents.has_value());
      for (const entry& e : ents.value()) {
        SLUICE_ASSERT(e.last() <= commit);
        if (!record_commit(e, h.raft->term(), h.id)) return;
      }
    }
    h.commit_seen = commit;
  }

  void apply(host& h, const entry& e) {
    if (e.index != h.applied + 1) {
      fail("apply order", "n" + std::to_string(h.id) + " applies " + std::to_string(e.index.value()) +
                              " after " + std::to_string(h.applied.value()));
      return;
    }
    committed_record* rec = record_commit(e, h.raft->term(), h.id);
    if (!rec) return;
    h.digest = mix(h.digest, rec->f.hash());
    h.applied = e.last();
    if (rec->digest == 0) {
      rec->digest = h.digest;
    } else if (rec->digest != h.digest) {
      fail("state machine safety", "n" + std::to_string(h.id) + " reached another state at " +
                                       std::to_string(e.last().value()));
    }
  }

  void check_snapshot_state(const snapshot& s, const std::string& where) {
    auto [applied, digest] = decode_state(s.data.view());
    if (applied != s.meta.index) {
      fail("snapshot", where + ": data for " + std::to_string(applied.value()) + " at index " +
                           std::to_string(s.meta.index.value()));
      return;
    }
    auto it = _committed.find(s.meta.index);
    if (it == _committed.end() || it->second.digest == 0) {
      fail("snapshot", where + ": snapshot at " + std::to_string(s.meta.index.value()) + " of an unapplied entry");
      return;
    }
    if (it->second.digest != digest || it->second.f.term != s.meta.term) {
      fail("state machine safety", where + ": snapshot at " + std::to_string(s.meta.index.value()) +
                                       " holds another state");
    }
  }

  // A new leader holds every entry known committed in an earlier term.
  void check_leader_completeness(host& h) {
    const term_id t = h.raft->term();
    for (auto it = _committed.rbegin(); it != _committed.rend(); ++it) {
      if (it->second.bound >= t) continue;
      const log_index last = it->first;
      if (last + 1 < h.raft->first_index()) return;  // inside its snapshot
      auto have = h.raft->term_at(last);
      if (!have || have.value() != it->second.f.term) {
        fail("leader completeness", "n" + std::to_string(h.id) + " leads term " + std::to_string(t.value()) +
                                        " without committed " + describe(it->second.f));
      }
      return;  // log matching covers the prefix
    }
  }

  void check_every_step() {
    for (auto& hp : _hosts) {
      host& h = *hp;
      if (!h.up() || h.raft->current_role() != role::leader) continue;
      const uint64_t t = h.raft->term().value();
      auto [it, inserted] = _leaders.emplace(t, h.id);
      if (inserted) {
        ++_out.st.leaders;
        _out.st.max_term = std::max(_out.st.max_term, t);
      } else if (it->second != h.id) {
        fail("election safety", "n" + std::to_string(it->second) + " and n" + std::to_string(h.id) +
                                    " both lead term " + std::to_string(t));
      }
    }
    if (_now >= _heal_at_ms + liveness_bound_ms && !_liveness_ok) {
      fail("liveness", "no proposal made after healing committed within " + std::to_string(liveness_bound_ms) +
                           " ms");
    }
  }

  options _o;
  std::FILE* _trace;
  bool _hashing;
  rng _rng;
  profile _p{};
  membership _bootstrap;
  std::vector<std::unique_ptr<host>> _hosts;
  uint64_t _now = 0;
  uint64_t _heal_at_ms = 0;
  std::map<std::pair<uint64_t, uint64_t>, message> _net;  // (deliver at, sequence)
  uint64_t _net_seq = 0;
  std::set<std::pair<uint64_t, uint64_t>> _blocked;       // directed links
  uint64_t _proposal_seq = 0;
  uint64_t _read_seq = 0;
  std::map<uint64_t, log_index> _reads;  // pending read -> last index known committed at its start
  std::set<uint64_t> _post_heal_payloads;
  bool _liveness_ok = false;

  std::map<uint64_t, uint64_t> _leaders;  // term -> leader
  std::map<std::pair<log_index, term_id>, written_record> _written;
  std::map<log_index, committed_record> _committed;  // by last index

  bool _failed = false;
  outcome _out;
  uint64_t _trace_hash = 0;
};

}  // namespace

outcome run(const options& o, std::FILE* trace) {
  simulation s(o, trace);
  return s.run();
}

std::string replay_command(const options& o) {
  return "raft-sim --seed " + std::to_string(o.seed) + " --nodes " + std::to_string(o.nodes) + " --steps " +
         std::to_string(o.duration_ms) + " --verbose";
}

void set_abort_context(const options* o) {
  g_abort_options = o;
  if (o != nullptr) std::signal(SIGABRT, on_abort);
}

}  // namespace sluice::raft::sim
