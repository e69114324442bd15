// The thread-per-core executor: one pinned thread per shard, each owning one
// io_uring ring through which all of its network and disk I/O, timers and
// wake-ups pass, and a mesh of bounded SPSC channels between shards.
//
// Thread-safety: an executor is created and started on the main thread.
// After start, a shard's state is touched only by its own thread; shards
// communicate only through the channels (call/respond) and wake each other
// with IORING_OP_MSG_RING. The only locks are on the control path from
// non-shard threads (run_from_outside), never on the data path.
#pragma once

#include <sluice/abi/sluice_abi.h>
#include <sluice/sdk/task.h>

#include <sluice/sdk/result.h>
#include "core/executor/spsc_queue.h"

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

struct io_uring;

namespace sluice::executor {

struct options {
  uint32_t shards = 0;              // 0: one per CPU the process may run on
  uint32_t ring_entries = 1024;     // submission queue size of each ring
  uint32_t channel_capacity = 1024; // in-flight requests per ordered shard pair
  bool pin_threads = true;          // pin shard i to the i-th allowed CPU
  std::vector<uint32_t> cpus;       // if set: pin shard i to cpus[i % size]; shards defaults to its size
  uint32_t idle_poll_us = 0;        // spin this long for channel messages before sleeping
};

// The number of CPUs this process may run on.
uint32_t online_cpus() noexcept;

// A message in flight on a channel: a fixed-layout header, a small payload
// copied inline (control-plane protobuf fits), and at most one buffer
// handle carrying bulk bytes by reference.
struct channel_msg {
  static constexpr uint32_t inline_bytes_max = 48;
  sluice_service_handler handler = nullptr;  // request: what to run on the target
  void* handler_user = nullptr;
  sluice_reply* reply = nullptr;             // the origin's reply record
  sluice_buf* buf = nullptr;                 // one reference travels with the message
  uint8_t* heap_bytes = nullptr;             // owned copy when bytes_len > inline_bytes_max
  uint32_t msg_type = 0;
  uint32_t bytes_len = 0;
  int32_t status = 0;                        // reply status
  uint32_t from_shard = 0;
  uint8_t inline_bytes[inline_bytes_max];

  const uint8_t* bytes() const noexcept { return heap_bytes ? heap_bytes : inline_bytes; }
};
static_assert(sizeof(channel_msg) == 104, "channel_msg layout changed: update docs/ARCHITECTURE.md");

class executor;
class shard;

struct service_entry {
  std::string name;
  sluice_service_handler handler = nullptr;
  void* user = nullptr;
};

}  // namespace sluice::executor

// The opaque host handle of the C ABI, as the core defines it.
struct sluice_host {
  sluice::executor::executor* exec = nullptr;
  void* owner = nullptr;  // the plugin host (core/host), or a test fixture
  std::string data_dir;
  int32_t node_id = 0;
};

namespace sluice::executor {

class executor {
 public:
  explicit executor(options opts);
  ~executor();
  executor(const executor&) = delete;
  executor& operator=(const executor&) = delete;

  uint32_t shard_count() const noexcept { return _shard_count; }
  sluice_host* c_host() noexcept { return &_c_host; }

  // The host API table's executor part (I/O, clock, channels, buffers);
  // the plugin host fills in the rest.
  static void fill_api(sluice_host_api& api) noexcept;

  // Services: registered on the main thread before start(), immutable after.
  result<int32_t> add_service(std::string name, sluice_service_handler handler, void* user);
  int32_t find_service(const char* name) const noexcept;
  const service_entry* service(int32_t id) const noexcept;

  // Starts the shard threads; each creates its ring, then all run their
  // loops. Once every loop runs, shard 0 runs main_task. Returns an error
  // (and no thread is left running) when a ring cannot be created.
  result<void> start(std::function<sdk::task<void>()> main_task);

  // Waits for every shard thread to exit (after request_exit).
  void join();

  // Shard code: makes every shard's loop exit at its next turn.
  void request_exit() noexcept;

  // Any non-shard thread: runs fn on shard at its next loop turn (control
  // path: takes a lock, wakes the shard through a ring of the caller's).
  void run_from_outside(uint32_t shard, std::function<void()> fn);

  // Shard code: runs fn on target and waits for its status. Core-internal
  // (closures never cross the plugin ABI).
  sdk::task<int32_t> submit_to(uint32_t target, std::function<sdk::task<int32_t>()> fn);

  shard& shard_at(uint32_t i) noexcept { return *_shards[i]; }
  spsc_queue<channel_msg>& request_queue(uint32_t from, uint32_t to) noexcept {
    return *_requests[from * _shard_count + to];
  }
  spsc_queue<channel_msg>& reply_queue(uint32_t from, uint32_t to) noexcept {
    return *_replies[from * _shard_count + to];
  }
  const options& opts() const noexcept { return _opts; }

 private:
  void thread_main(uint32_t id, std::function<sdk::task<void>()>* main_task);

  options _opts;
  uint32_t _shard_count;
  sluice_host _c_host;
  std::vector<service_entry> _services;
  std::vector<std::unique_ptr<shard>> _shards;
  std::vector<std::unique_ptr<spsc_queue<channel_msg>>> _requests;
  std::vector<std::unique_ptr<spsc_queue<channel_msg>>> _replies;
  std::vector<std::thread> _threads;
  std::function<sdk::task<void>()> _main_task;

  // start-up barrier
  std::mutex _start_mu;
  uint32_t _rings_ready = 0;
  bool _start_failed = false;
  std::string _start_error;
  std::condition_variable* _start_cv = nullptr;

  // run_from_outside's own ring, for MSG_RING wake-ups from the main thread
  std::mutex _outside_mu;
  io_uring* _outside_ring = nullptr;
};

// The calling thread's shard, or nullptr on a non-shard thread.
shard* current_shard() noexcept;

}  // namespace sluice::executor
