// One shard: a thread, its io_uring ring and its end of every channel.
//
// Thread-safety: every member is touched only by the shard's own thread,
// except the atomics marked "cross-thread", which other shards read or
// exchange to decide whether to wake this one.
#pragma once

#include "core/executor/executor.h"

#include <liburing.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <vector>

namespace sluice::executor {

// CQE user_data values that are not completion pointers (pointers are
// always larger than a page).
inline constexpr uint64_t tag_ignore = 0;
inline constexpr uint64_t tag_wake = 1;

struct responder_impl;

class shard {
 public:
  shard(executor& exec, uint32_t id);
  ~shard();
  shard(const shard&) = delete;
  shard& operator=(const shard&) = delete;

  // On the shard's thread, before run().
  result<void> init_ring(uint32_t entries);
  int ring_fd() const noexcept { return _ring_fd; }
  uint32_t id() const noexcept { return _id; }
  executor& exec() noexcept { return _exec; }

  // The loop: returns once request_exit() was seen.
  void run();

  // -- shard-thread API (the host API calls land here) --
  int32_t submit_io(const sluice_io_op& op, sluice_completion* c) noexcept;
  int32_t cancel_io(sluice_completion* c) noexcept;
  void post(sluice_completion* c) noexcept;
  int32_t call(const service_entry& svc, uint32_t target, const sluice_message* req,
               sluice_reply* reply) noexcept;
  void respond(responder_impl* r, int32_t status, const sluice_message* msg) noexcept;
  void wait_channel(uint32_t target, sluice_completion* c) noexcept;
  // Rings target at the end of this loop turn if it is asleep.
  void wake(uint32_t target) noexcept;

  // Loop statistics for the metrics (sluice_core_*): written by the shard
  // only, read by any thread (relaxed; a scrape may see a slightly old value).
  struct loop_stats {
    std::atomic<uint64_t> start_ns{0};    // when run() began; 0 before
    std::atomic<uint64_t> sleep_ns{0};    // blocked in io_uring_enter waiting for work
    std::atomic<uint64_t> loops{0};       // loop turns
    std::atomic<uint64_t> sqes{0};        // submission queue entries prepared
    std::atomic<uint64_t> cqes{0};        // completions reaped
    std::atomic<uint64_t> channel_in{0};  // requests and replies received from other shards
  };
  const loop_stats& stats() const noexcept { return _stats; }

  // -- cross-thread --
  void request_exit() noexcept;
  void add_external(std::function<void()> fn);  // under _external_mu
  std::atomic<bool>& sleeping() noexcept { return _sleeping; }

 private:
  struct peer {
    uint32_t outstanding = 0;                // requests sent to this peer, not yet answered
    sluice_completion* waiters_head = nullptr; // wait_channel FIFO, linked via host_scratch[0]
    sluice_completion* waiters_tail = nullptr;
    bool wake_pending = false;
  };

  static void bump(std::atomic<uint64_t>& a, uint64_t d) noexcept {
    a.store(a.load(std::memory_order_relaxed) + d, std::memory_order_relaxed);  // single writer
  }
  loop_stats _stats;

  io_uring_sqe* get_sqe() noexcept;
  void fill_msg(channel_msg& m, const sluice_message* msg) noexcept;
  static void release_msg(channel_msg& m) noexcept;
  static sluice_message view_of(const channel_msg& m) noexcept;
  void deliver_request(channel_msg& m) noexcept;
  void deliver_reply(channel_msg& m) noexcept;
  bool run_posted() noexcept;
  bool poll_channels() noexcept;
  bool run_external() noexcept;
  bool channels_pending() noexcept;
  bool idle_poll() noexcept;
  void flush_wakes() noexcept;
  void reap() noexcept;
  void release_waiters(peer& p) noexcept;
  responder_impl* alloc_responder() noexcept;

  executor& _exec;
  const uint32_t _id;
  io_uring _ring{};
  int _ring_fd = -1;
  bool _ring_ok = false;

  std::vector<sluice_completion*> _posted;
  std::vector<sluice_completion*> _posted_running;
  std::vector<channel_msg> _local_requests;
  std::vector<channel_msg> _local_replies;
  std::vector<channel_msg> _local_running;
  std::vector<peer> _peers;
  std::vector<uint32_t> _wake_targets;
  std::vector<responder_impl*> _free_responders;
  std::atomic<bool> _exit{false};       // cross-thread
  std::atomic<bool> _sleeping{false};   // cross-thread
  std::atomic<bool> _external_pending{false};  // cross-thread
  std::mutex _external_mu;
  std::vector<std::function<void()>> _external;
};

// What a handler gets to answer a request with.
struct responder_impl {
  uint32_t origin = 0;
  sluice_reply* reply = nullptr;
  bool in_use = false;
};

}  // namespace sluice::executor
