#include "core/executor/net.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <set>
#include <string>

namespace sluice::executor {

namespace {
std::mutex g_claimed_mu;             // start-up path only
std::set<std::string> g_claimed;     // addresses this process already listens on

int32_t bind_socket(const sockaddr* sa, socklen_t len, bool reuse_port, int32_t backlog) {
  int fd = ::socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (reuse_port && ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
    int err = errno;
    ::close(fd);
    return -err;
  }
  if (::bind(fd, sa, len) != 0 || (backlog >= 0 && ::listen(fd, backlog) != 0)) {
    int err = errno;
    ::close(fd);
    return -err;
  }
  return fd;
}
}  // namespace

int32_t tcp_listen(const void* addr, uint32_t addrlen, int32_t backlog, bool reuse_port) {
  if (addr == nullptr || addrlen < sizeof(sockaddr_in) || addrlen > sizeof(sockaddr_storage)) return -EINVAL;
  const auto* sa = static_cast<const sockaddr*>(addr);
  if (sa->sa_family != AF_INET && sa->sa_family != AF_INET6) return -EAFNOSUPPORT;
  const std::string key(static_cast<const char*>(addr), addrlen);
  const bool port_zero = sa->sa_family == AF_INET
                             ? reinterpret_cast<const sockaddr_in*>(sa)->sin_port == 0
                             : reinterpret_cast<const sockaddr_in6*>(sa)->sin6_port == 0;
  if (reuse_port && !port_zero) {
    std::lock_guard lk(g_claimed_mu);
    if (g_claimed.insert(key).second) {
      // Probe without SO_REUSEPORT: fails if anyone else listens there.
      int32_t probe = bind_socket(sa, addrlen, false, -1);
      if (probe < 0) {
        g_claimed.erase(key);
        return probe;
      }
      ::close(probe);
    }
  }
  int32_t fd = bind_socket(sa, addrlen, reuse_port, backlog < 0 ? SOMAXCONN : backlog);
  if (fd >= 0 && reuse_port && port_zero) {
    // The kernel chose the port: other shards will join it, not probe it.
    sockaddr_storage bound{};
    socklen_t len = sizeof(bound);
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len) == 0) {
      std::lock_guard lk(g_claimed_mu);
      g_claimed.insert(std::string(reinterpret_cast<const char*>(&bound), len));
    }
  }
  return fd;
}

}  // namespace sluice::executor
