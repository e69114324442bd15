// The raft plugin's inter-broker transport (docs/RAFT.md, "Inter-broker
// RPC"): one per shard, over the SDK's ring I/O.
//
// Outbound: this shard opens one TCP connection to each peer broker, lazily
// on the first send, says hello, and sends every group's messages on it.
// send() and send_app() only queue; flush() (once per tick and after each
// batch of Raft work) turns everything queued for a peer into one frame
// (more only above frame_bytes_max), so all groups' heartbeats between two
// brokers travel together; a writer task gathers the frames with sendmsg,
// the record batches by reference. A connection that fails or is lost drops
// everything queued and in flight for that peer (Raft retries), and the
// next connection waits for a jittered backoff (50 ms doubling to 1 s by
// default); sends during the backoff are refused. Back-pressure: messages
// with entries or a snapshot, and app messages, are refused while the peer's
// queued and in-flight bytes would exceed peer_queue_bytes_max; heartbeats
// and other small messages never are.
//
// Inbound: every shard listens on the same address (SO_REUSEPORT), reads
// frames from each accepted connection and hands each message to the
// callbacks on this shard (routing a group's message to the group's shard
// is the owner's job). A connection whose hello is wrong (cluster id,
// protocol version, target node) or late, or that sends a malformed or
// oversized frame, is closed with one log line naming the peer. Answers
// travel on the other broker's own connection to this one: a connection
// carries traffic in one direction.
//
// Thread-safety: a transport belongs to the shard that created it; every
// call happens on that shard. Callbacks run on it too, from the reading
// task; they may call send(), send_app() and flush().
#pragma once

#include "codec.h"
#include "rng.h"

#include <sluice/sdk/net.h>
#include <sluice/sdk/runtime.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::raft::rpc {

struct transport_config {
  node_id self;                  // this broker's node id (not 0)
  std::string cluster_id;        // peers with another cluster id are refused
  sdk::socket_address listen;    // every shard listens here; port 0: the kernel picks one
  std::string listen_key = "listen";  // the setting named in a listen error
  int32_t listen_backlog = 128;
  uint64_t peer_queue_bytes_max = 32ull << 20;  // back-pressure bound per peer (queued + in flight)
  size_t frame_bytes_max = 64u << 20;           // larger frames are refused on receipt, split on sending
  uint32_t reconnect_backoff_min_ms = 50;
  uint32_t reconnect_backoff_max_ms = 1000;
  // A peer that acknowledges nothing for this long is dropped (TCP_USER_TIMEOUT,
  // keepalive probes, and a writer that makes no progress).
  uint32_t peer_timeout_ms = 10'000;
  uint32_t hello_timeout_ms = 5'000;  // an inbound connection must say hello within this
};

struct peer_stats {
  node_id node;
  std::string address;  // "" when the peer table has none
  bool connected = false;
  // Outbound (this shard's connection to the peer).
  uint64_t frames_sent = 0;
  uint64_t bytes_sent = 0;
  uint64_t messages_sent = 0;  // group and app messages
  uint64_t connects = 0;
  uint64_t connect_failures = 0;
  uint64_t disconnects = 0;
  uint64_t dropped = 0;      // messages dropped: refused while disconnected, or lost with a connection
  uint64_t refused = 0;      // messages refused by back-pressure
  uint64_t queued_bytes = 0;  // now: queued (a bound) plus in flight
  // Inbound (connections from the peer accepted by this shard).
  uint64_t frames_received = 0;
  uint64_t bytes_received = 0;
  uint64_t messages_received = 0;
};

struct transport_stats {
  std::vector<peer_stats> peers;  // ordered by node id
  uint64_t inbound_open = 0;
  uint64_t inbound_accepted = 0;
  uint64_t inbound_rejected = 0;  // closed for a bad hello, a bad frame or a late hello
  uint64_t dropped_unknown_peer = 0;  // sends to a node without an address
};

// At most one log line per interval; the next line says how many were
// left out meanwhile (a peer that keeps failing logs every 10 s, not at
// every attempt).
class log_limiter {
 public:
  // The suffix to log the line with, or nothing when it is to be left out.
  std::optional<std::string> admit(uint64_t now_ns, uint64_t interval_ns = 10'000'000'000ull);

 private:
  uint64_t _next_ns = 0;
  uint64_t _suppressed = 0;
};

class transport {
 public:
  using raft_handler = std::function<void(node_id from, group_id group, message msg)>;
  using app_handler = std::function<void(node_id from, const app_message& msg)>;

  explicit transport(transport_config cfg);
  ~transport();  // after stop() finished (or if it never started anything)
  transport(const transport&) = delete;
  transport& operator=(const transport&) = delete;

  void on_raft(raft_handler h) { _on_raft = std::move(h); }
  void on_app(app_handler h) { _on_app = std::move(h); }

  // Listens on cfg.listen from this shard and starts accepting. With port 0
  // and shared_port: the first shard lets the kernel pick and records the
  // port there, later shards join it (sdk::listen_on_shard). Returns "" or
  // a one-line error for the plugin's start().
  std::string start(uint16_t* shared_port = nullptr);
  uint16_t listen_port() const noexcept { return _port; }

  // The peer table. Addresses are numeric (sdk::parse_host_port); changing
  // a peer's address drops its connection; this broker's own entry is
  // ignored. The string form returns false when the address does not parse.
  void set_peer(node_id node, const sdk::socket_address& address);
  bool set_peer(node_id node, std::string_view host_port);
  void remove_peer(node_id node);

  // Queue a message for `to`; false when it was refused: unknown peer,
  // reconnect backoff, back-pressure, larger than a frame, or stopping.
  bool send(node_id to, group_id group, message msg);
  bool send_app(node_id to, app_message msg);
  // One frame per peer with everything queued for it.
  void flush();

  // Closes the listener and every connection and waits for every task.
  sdk::task<void> stop();

  transport_stats stats() const;

 private:
  struct outgoing {
    encoded_frame frame;
    uint64_t messages = 0;
  };
  enum class peer_state { idle, connecting, connected, backoff };
  struct peer {
    node_id id;
    std::optional<sdk::socket_address> address;
    peer_state state = peer_state::idle;
    bool task_running = false;
    bool failing = false;  // the last attempt failed to connect
    log_limiter log;
    std::vector<group_message> queue;  // since the last flush
    std::vector<app_message> apps;
    uint64_t queue_bytes = 0;          // message_bytes_bound of the queue
    std::deque<outgoing> outbox;       // flushed, not yet written
    uint64_t outbox_bytes = 0;
    uint64_t front_written = 0;        // bytes of outbox.front() already written
    uint64_t last_progress_ns = 0;
    std::unique_ptr<sdk::abort_source> conn_abort;  // the current connection
    std::string close_reason;
    sdk::condition wake;  // demand (idle), frames (writer), abort
    peer_stats stats;
  };
  struct inbound {
    sdk::abort_source abort;
    uint64_t opened_ns = 0;
    bool greeted = false;
    bool late = false;
    node_id from;
    std::string address;
  };

  peer& peer_of(node_id node);
  peer* admit(node_id to, size_t bytes, bool bounded);
  void start_connecting(peer& p);
  void abort_connection(peer& p, std::string reason);
  void drop_all(peer& p);
  void flush_peer(peer& p, uint64_t now);
  sdk::task<void> run_peer(peer& p, sdk::gate::holder);
  sdk::task<bool> run_connection(peer& p);
  sdk::task<void> write_frames(peer& p, int32_t fd, sdk::abort_source& abort);
  sdk::task<void> watch_close(peer& p, int32_t fd, sdk::abort_source& abort, sdk::event& done, sdk::gate::holder);
  sdk::task<void> serve(int32_t fd, sdk::gate::holder);
  std::string check_hello(const hello_message& h) const;
  void deliver(inbound& c, decoded_frame& f, size_t bytes);
  void warn(log_limiter& limiter, const std::string& line);
  sdk::task<void> expire_hellos(sdk::gate::holder);

  transport_config _cfg;
  raft_handler _on_raft;
  app_handler _on_app;
  std::map<uint64_t, std::unique_ptr<peer>> _peers;
  std::list<inbound> _inbound;
  int32_t _listen_fd = -1;
  uint16_t _port = 0;
  bool _stopping = false;
  sdk::abort_source _stop;
  sdk::gate _tasks;
  rng _rng;
  transport_stats _counters;  // the transport-wide counters (peers is unused)
  std::map<uint64_t, log_limiter> _refusal_log;  // by the refused node (0: before its hello)
};

}  // namespace sluice::raft::rpc
