#pragma once
// Blocking TCP with deadlines, for the admin API's HTTP client and the raw
// Kafka requests (kafka_wire.h). Failing to connect or a timeout is
// exit_code::unreachable; the peer closing early is exit_code::failed.

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace sluice::cli {

struct host_port {
  std::string host;
  uint16_t port = 0;
  std::string to_string() const;
};

// "HOST:PORT", "[v6]:PORT", or "HOST" with default_port (0: the port is required).
// `what` names the setting in the usage error ("--brokers").
host_port parse_host_port(std::string_view text, uint16_t default_port, std::string_view what);

using deadline = std::chrono::steady_clock::time_point;
deadline deadline_after_ms(int timeout_ms);

class tcp_connection {
 public:
  // Connects to the first address of `to` that accepts, before `until`.
  // `what` names the peer in errors ("the admin API at http://...").
  tcp_connection(const host_port& to, deadline until, std::string what);
  ~tcp_connection();
  tcp_connection(const tcp_connection&) = delete;
  tcp_connection& operator=(const tcp_connection&) = delete;

  void send_all(std::string_view bytes);
  // Appends what arrives to `into`; returns 0 at end of stream.
  size_t receive_some(std::string& into);
  // Reads exactly n bytes (end of stream before that is an error).
  std::string receive_exactly(size_t n);

 private:
  void wait_for(short events);
  size_t read_more(std::string& into);
  int _fd = -1;
  std::string _pending;  // received, not yet returned
  deadline _until;
  std::string _what;
};

}  // namespace sluice::cli
