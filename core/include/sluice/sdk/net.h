// Socket address parsing for plugin configuration (start-up only).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>

namespace sluice::sdk {

struct socket_address {
  sockaddr_storage storage{};
  uint32_t len = 0;
  const sockaddr* get() const noexcept { return reinterpret_cast<const sockaddr*>(&storage); }
  uint16_t port() const noexcept {
    return ntohs(storage.ss_family == AF_INET6 ? reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_port
                                               : reinterpret_cast<const sockaddr_in*>(&storage)->sin_port);
  }
  void set_port(uint16_t p) noexcept {
    if (storage.ss_family == AF_INET6) reinterpret_cast<sockaddr_in6*>(&storage)->sin6_port = htons(p);
    else reinterpret_cast<sockaddr_in*>(&storage)->sin_port = htons(p);
  }
  std::string to_string() const {
    char buf[INET6_ADDRSTRLEN] = {};
    if (storage.ss_family == AF_INET6) {
      inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_addr, buf, sizeof(buf));
      return "[" + std::string(buf) + "]:" + std::to_string(port());
    }
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage)->sin_addr, buf, sizeof(buf));
    return std::string(buf) + ":" + std::to_string(port());
  }
};

// 127.0.0.1:port.
inline socket_address loopback(uint16_t port) {
  socket_address a;
  auto* in4 = reinterpret_cast<sockaddr_in*>(&a.storage);
  in4->sin_family = AF_INET;
  in4->sin_port = htons(port);
  in4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.len = sizeof(sockaddr_in);
  return a;
}

// The address a socket is bound to (getsockname; does not block), or an
// empty address (len 0) on error.
inline socket_address local_address(int fd) {
  socket_address a;
  socklen_t len = sizeof(a.storage);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&a.storage), &len) == 0) a.len = len;
  return a;
}

// "HOST:PORT" with a numeric IPv4 host, "[IPv6]:PORT", "localhost:PORT" or
// ":PORT" (all IPv4 interfaces). Port 0 lets the kernel choose. No DNS.
inline std::optional<socket_address> parse_host_port(const std::string& s) {
  const auto colon = s.rfind(':');
  if (colon == std::string::npos || colon + 1 == s.size()) return std::nullopt;
  std::string host = s.substr(0, colon);
  const std::string port_s = s.substr(colon + 1);
  uint32_t port = 0;
  if (port_s.size() > 5) return std::nullopt;
  for (char c : port_s) {
    if (c < '0' || c > '9') return std::nullopt;
    port = port * 10 + static_cast<uint32_t>(c - '0');
  }
  if (port > 65535) return std::nullopt;
  socket_address a;
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&a.storage);
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(static_cast<uint16_t>(port));
    if (inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), &in6->sin6_addr) != 1) return std::nullopt;
    a.len = sizeof(sockaddr_in6);
    return a;
  }
  if (host.empty()) host = "0.0.0.0";
  if (host == "localhost") host = "127.0.0.1";
  auto* in4 = reinterpret_cast<sockaddr_in*>(&a.storage);
  in4->sin_family = AF_INET;
  in4->sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, host.c_str(), &in4->sin_addr) != 1) return std::nullopt;
  a.len = sizeof(sockaddr_in);
  return a;
}

}  // namespace sluice::sdk
