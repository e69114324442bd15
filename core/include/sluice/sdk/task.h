// Coroutines for shard code: task<T>, spawn(), gate and abort_source.
//
// Thread-safety: none of these types is thread-safe. A task, gate or
// abort_source belongs to one shard and is only touched on that shard's
// thread; crossing shards goes through channels (sdk/runtime.h).
//
// task<T> is lazy: its body starts when it is awaited (or spawned) and the
// awaiting coroutine resumes, by symmetric transfer, when it finishes.
// Exceptions are not used on shard threads: an exception escaping a task
// body terminates the process (assertions are always on, see assert.h).
#pragma once

#include <sluice/sdk/assert.h>

#include <coroutine>
#include <cstdint>
#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

namespace sluice::sdk {

template <typename T = void>
class task;

namespace detail {

struct promise_base {
  std::coroutine_handle<> _continuation;
  bool _detached = false;

  std::suspend_always initial_suspend() noexcept { return {}; }

  struct final_awaiter {
    bool await_ready() const noexcept { return false; }
    template <typename P>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) noexcept {
      promise_base& p = h.promise();
      if (p._detached) {
        // A spawned task owns its own frame.
        h.destroy();
        return std::noop_coroutine();
      }
      return p._continuation ? p._continuation : std::noop_coroutine();
    }
    void await_resume() const noexcept {}
  };
  final_awaiter final_suspend() noexcept { return {}; }

  [[noreturn]] void unhandled_exception() noexcept {
    SLUICE_PANIC("exception escaped a shard task");
  }
};

template <typename T>
struct promise final : promise_base {
  std::optional<T> _value;
  task<T> get_return_object() noexcept;
  template <typename U>
  void return_value(U&& v) noexcept(std::is_nothrow_constructible_v<T, U&&>) {
    _value.emplace(std::forward<U>(v));
  }
};

template <>
struct promise<void> final : promise_base {
  task<void> get_return_object() noexcept;
  void return_void() noexcept {}
};

}  // namespace detail

template <typename T>
class [[nodiscard]] task {
 public:
  using promise_type = detail::promise<T>;
  using handle_type = std::coroutine_handle<promise_type>;

  task() noexcept = default;
  explicit task(handle_type h) noexcept : _handle(h) {}
  task(task&& o) noexcept : _handle(std::exchange(o._handle, {})) {}
  task& operator=(task&& o) noexcept {
    if (this != &o) {
      reset();
      _handle = std::exchange(o._handle, {});
    }
    return *this;
  }
  task(const task&) = delete;
  task& operator=(const task&) = delete;
  ~task() { reset(); }

  bool valid() const noexcept { return static_cast<bool>(_handle); }

  auto operator co_await() && noexcept {
    struct awaiter {
      handle_type _h;
      bool await_ready() const noexcept { return false; }
      std::coroutine_handle<> await_suspend(std::coroutine_handle<> cont) noexcept {
        _h.promise()._continuation = cont;
        return _h;
      }
      T await_resume() noexcept {
        if constexpr (!std::is_void_v<T>) {
          SLUICE_ASSERT(_h.promise()._value.has_value());
          return std::move(*_h.promise()._value);
        }
      }
    };
    SLUICE_ASSERT(_handle);
    return awaiter{_handle};
  }

  // Transfers ownership of the frame to the coroutine itself and starts it;
  // it frees itself when it finishes. Used by spawn().
  void start_detached() && noexcept {
    SLUICE_ASSERT(_handle);
    auto h = std::exchange(_handle, {});
    h.promise()._detached = true;
    h.resume();
  }

 private:
  void reset() noexcept {
    if (_handle) {
      _handle.destroy();
      _handle = {};
    }
  }
  handle_type _handle;
};

namespace detail {
template <typename T>
task<T> promise<T>::get_return_object() noexcept {
  return task<T>(std::coroutine_handle<promise<T>>::from_promise(*this));
}
inline task<void> promise<void>::get_return_object() noexcept {
  return task<void>(std::coroutine_handle<promise<void>>::from_promise(*this));
}
}  // namespace detail

// Runs t in the background on the calling shard. Nobody awaits it: track it
// with a gate when something must wait for it to finish.
inline void spawn(task<void> t) noexcept { std::move(t).start_detached(); }

// An intrusive list node; the owner unlinks itself in its destructor.
template <typename Node>
class intrusive_list {
 public:
  void push_back(Node* n) noexcept {
    SLUICE_ASSERT(n->_prev == nullptr && n->_next == nullptr && _head != n);
    n->_prev = _tail;
    if (_tail) _tail->_next = n; else _head = n;
    _tail = n;
  }
  void erase(Node* n) noexcept {
    if (n->_prev) n->_prev->_next = n->_next; else _head = n->_next;
    if (n->_next) n->_next->_prev = n->_prev; else _tail = n->_prev;
    n->_prev = n->_next = nullptr;
  }
  Node* pop_front() noexcept {
    Node* n = _head;
    if (n) erase(n);
    return n;
  }
  bool empty() const noexcept { return _head == nullptr; }

 private:
  Node* _head = nullptr;
  Node* _tail = nullptr;
};

// Cancellation: request_abort() runs every subscriber's callback once, in
// subscription order. An operation that supports cancellation subscribes
// while it is pending and unsubscribes when it completes.
class abort_source {
 public:
  class subscription {
   public:
    using callback = void (*)(void* user) noexcept;
    subscription() noexcept = default;
    subscription(const subscription&) = delete;
    subscription& operator=(const subscription&) = delete;
    ~subscription() { unsubscribe(); }

    void subscribe(abort_source& as, callback cb, void* user) noexcept {
      SLUICE_ASSERT(_owner == nullptr);
      _owner = &as;
      _cb = cb;
      _user = user;
      as._subs.push_back(this);
    }
    void unsubscribe() noexcept {
      if (_owner) {
        _owner->_subs.erase(this);
        _owner = nullptr;
      }
    }

   private:
    friend class abort_source;
    friend class intrusive_list<subscription>;
    abort_source* _owner = nullptr;
    callback _cb = nullptr;
    void* _user = nullptr;
    subscription* _prev = nullptr;
    subscription* _next = nullptr;
  };

  abort_source() noexcept = default;
  abort_source(const abort_source&) = delete;
  abort_source& operator=(const abort_source&) = delete;
  ~abort_source() { SLUICE_ASSERT(_subs.empty()); }

  bool abort_requested() const noexcept { return _aborted; }
  void request_abort() noexcept {
    if (_aborted) return;
    _aborted = true;
    while (subscription* s = _subs.pop_front()) {
      s->_owner = nullptr;
      s->_cb(s->_user);
    }
  }

 private:
  bool _aborted = false;
  intrusive_list<subscription> _subs;
};

}  // namespace sluice::sdk
