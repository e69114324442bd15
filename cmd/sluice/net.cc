#include "net.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "args.h"
#include "cli_error.h"

namespace sluice::cli {

namespace {

int remaining_ms(deadline until) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
  return left.count() < 0 ? 0 : static_cast<int>(left.count());
}

// Waits for `events` on fd; false on timeout.
bool poll_fd(int fd, short events, deadline until) {
  while (true) {
    pollfd p{fd, events, 0};
    int n = ::poll(&p, 1, remaining_ms(until));
    if (n > 0) {
      return true;
    }
    if (n == 0) {
      return false;
    }
    if (errno != EINTR) {
      return false;
    }
  }
}

// One non-blocking connect attempt; returns the fd or -1 with `error` set.
int connect_one(const addrinfo* ai, deadline until, std::string& error) {
  int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
  if (fd < 0) {
    error = std::strerror(errno);
    return -1;
  }
  if (::connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
    if (errno != EINPROGRESS) {
      error = std::strerror(errno);
      ::close(fd);
      return -1;
    }
    if (!poll_fd(fd, POLLOUT, until)) {
      error = "timed out";
      ::close(fd);
      return -1;
    }
    int so_error = 0;
    socklen_t len = sizeof so_error;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len);
    if (so_error != 0) {
      error = std::strerror(so_error);
      ::close(fd);
      return -1;
    }
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

}  // namespace

std::string host_port::to_string() const {
  if (host.find(':') != std::string::npos) {
    return "[" + host + "]:" + std::to_string(port);
  }
  return host + ":" + std::to_string(port);
}

host_port parse_host_port(std::string_view text, uint16_t default_port, std::string_view what) {
  host_port result;
  std::string_view port_text;
  if (text.starts_with('[')) {
    auto close = text.find(']');
    if (close == std::string_view::npos) {
      throw_usage("bad address '" + std::string(text) + "' for " + std::string(what) + ": missing ']'");
    }
    result.host = std::string(text.substr(1, close - 1));
    std::string_view rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest[0] != ':') {
        throw_usage("bad address '" + std::string(text) + "' for " + std::string(what) + ": want [HOST]:PORT");
      }
      port_text = rest.substr(1);
    }
  } else {
    auto colon = text.rfind(':');
    if (colon != std::string_view::npos && text.find(':') != colon) {
      throw_usage("bad address '" + std::string(text) + "' for " + std::string(what) +
                  ": write IPv6 addresses as [HOST]:PORT");
    }
    result.host = std::string(text.substr(0, colon));
    if (colon != std::string_view::npos) {
      port_text = text.substr(colon + 1);
    }
  }
  if (result.host.empty()) {
    throw_usage("bad address '" + std::string(text) + "' for " + std::string(what) + ": no host");
  }
  if (port_text.empty()) {
    if (default_port == 0) {
      throw_usage("bad address '" + std::string(text) + "' for " + std::string(what) + ": want HOST:PORT");
    }
    result.port = default_port;
  } else {
    result.port = static_cast<uint16_t>(parse_int(port_text, "the port in " + std::string(what), 1, 65535));
  }
  return result;
}

deadline deadline_after_ms(int timeout_ms) {
  return std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
}

tcp_connection::tcp_connection(const host_port& to, deadline until, std::string what)
    : _until(until), _what(std::move(what)) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const std::string port = std::to_string(to.port);
  if (int rc = ::getaddrinfo(to.host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    throw_unreachable("cannot reach " + _what + ": cannot resolve host '" + to.host + "': " + ::gai_strerror(rc));
  }
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> guard(found, &::freeaddrinfo);
  std::string error = "no address";
  for (const addrinfo* ai = found; ai != nullptr && _fd < 0; ai = ai->ai_next) {
    _fd = connect_one(ai, _until, error);
  }
  if (_fd < 0) {
    throw_unreachable("cannot reach " + _what + " (" + to.to_string() + "): " + error);
  }
}

tcp_connection::~tcp_connection() {
  if (_fd >= 0) {
    ::close(_fd);
  }
}

void tcp_connection::wait_for(short events) {
  if (!poll_fd(_fd, events, _until)) {
    throw_unreachable("timed out waiting for " + _what);
  }
}

void tcp_connection::send_all(std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::send(_fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n > 0) {
      bytes.remove_prefix(static_cast<size_t>(n));
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      wait_for(POLLOUT);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      throw_failed("cannot send to " + _what + ": " + std::strerror(errno));
    }
  }
}

size_t tcp_connection::receive_some(std::string& into) {
  if (!_pending.empty()) {
    size_t n = _pending.size();
    into += _pending;
    _pending.clear();
    return n;
  }
  return read_more(into);
}

size_t tcp_connection::read_more(std::string& into) {
  char buf[16384];
  while (true) {
    ssize_t n = ::recv(_fd, buf, sizeof buf, 0);
    if (n >= 0) {
      into.append(buf, static_cast<size_t>(n));
      return static_cast<size_t>(n);
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      wait_for(POLLIN);
    } else if (errno != EINTR) {
      throw_failed("cannot read from " + _what + ": " + std::strerror(errno));
    }
  }
}

std::string tcp_connection::receive_exactly(size_t n) {
  while (_pending.size() < n) {
    if (read_more(_pending) == 0) {
      throw_failed(_what + " closed the connection in the middle of a response");
    }
  }
  std::string out = _pending.substr(0, n);
  _pending.erase(0, n);
  return out;
}

}  // namespace sluice::cli
