// Running brokerd (or any program) as a child process in tests: capture its
// output, wait for a log line, signal it, collect its exit status.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

extern char** environ;

namespace sluice::testing {

struct exit_status {
  int code = -1;    // exit code, or -1 when killed by a signal
  int signal = 0;   // the terminating signal, if any
  bool timed_out = false;
};

class subprocess {
 public:
  explicit subprocess(const std::vector<std::string>& argv) {
    int out[2], err[2];
    if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) return;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err[1], 2);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    if (posix_spawn(&_pid, args[0], &fa, nullptr, args.data(), environ) != 0) _pid = -1;
    posix_spawn_file_actions_destroy(&fa);
    ::close(out[1]);
    ::close(err[1]);
    _out_fd = out[0];
    _err_fd = err[0];
    fcntl(_out_fd, F_SETFL, O_NONBLOCK);
    fcntl(_err_fd, F_SETFL, O_NONBLOCK);
  }
  subprocess(const subprocess&) = delete;
  subprocess& operator=(const subprocess&) = delete;
  ~subprocess() {
    if (_pid > 0 && !_reaped) {
      ::kill(_pid, SIGKILL);
      waitpid(_pid, nullptr, 0);
    }
    if (_out_fd >= 0) ::close(_out_fd);
    if (_err_fd >= 0) ::close(_err_fd);
  }

  bool started() const { return _pid > 0; }
  pid_t pid() const { return _pid; }
  const std::string& out() const { return _out; }
  const std::string& err() const { return _err; }

  // Reads output until stderr contains needle; returns the rest of that
  // line after the needle, or nullopt at the timeout or exit.
  std::optional<std::string> wait_for_stderr(const std::string& needle, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      const auto at = _err.find(needle);
      if (at != std::string::npos) {
        const auto from = at + needle.size();
        const auto eol = _err.find('\n', from);
        if (eol != std::string::npos) return _err.substr(from, eol - from);
      }
      const auto left = deadline - std::chrono::steady_clock::now();
      if (left <= std::chrono::milliseconds(0)) return std::nullopt;
      if (!pump(std::chrono::duration_cast<std::chrono::milliseconds>(left)) && exited() &&
          !pump(std::chrono::milliseconds(0)))
        return std::nullopt;
    }
  }

  void signal(int sig) { ::kill(_pid, sig); }

  // Waits for exit, reading output meanwhile.
  exit_status wait(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    exit_status st;
    while (!exited()) {
      const auto left = deadline - std::chrono::steady_clock::now();
      if (left <= std::chrono::milliseconds(0)) {
        st.timed_out = true;
        ::kill(_pid, SIGKILL);
        waitpid(_pid, &_status, 0);
        _reaped = true;
        break;
      }
      pump(std::min<std::chrono::milliseconds>(std::chrono::milliseconds(20),
                                               std::chrono::duration_cast<std::chrono::milliseconds>(left)));
    }
    while (pump(std::chrono::milliseconds(0))) {
    }
    if (WIFEXITED(_status)) st.code = WEXITSTATUS(_status);
    if (WIFSIGNALED(_status)) st.signal = WTERMSIG(_status);
    return st;
  }

 private:
  bool exited() {
    if (_reaped) return true;
    if (waitpid(_pid, &_status, WNOHANG) == _pid) _reaped = true;
    return _reaped;
  }
  // Reads what is available within timeout; true if anything was read.
  bool pump(std::chrono::milliseconds timeout) {
    pollfd fds[2] = {{_out_fd, POLLIN, 0}, {_err_fd, POLLIN, 0}};
    if (::poll(fds, 2, static_cast<int>(timeout.count())) <= 0) return false;
    bool any = false;
    char buf[4096];
    for (auto& [fd, sink] : {std::pair<int, std::string*>{_out_fd, &_out}, {_err_fd, &_err}}) {
      ssize_t n;
      while ((n = ::read(fd, buf, sizeof(buf))) > 0) {
        sink->append(buf, static_cast<size_t>(n));
        any = true;
      }
    }
    return any;
  }

  pid_t _pid = -1;
  int _out_fd = -1, _err_fd = -1;
  int _status = 0;
  bool _reaped = false;
  std::string _out, _err;
};

// Runs argv to completion.
inline exit_status run(const std::vector<std::string>& argv, std::string* out, std::string* err,
                       std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
  subprocess p(argv);
  exit_status st = p.wait(timeout);
  if (out) *out = p.out();
  if (err) *err = p.err();
  return st;
}

}  // namespace sluice::testing
