// Shared by the raw-socket Kafka tests: brokerd with the storage and kafka
// plugins on a free port (restartable on the same data directory), and a
// blocking client that sends requests encoded by the generated codecs and
// decodes the responses.
#pragma once

#include "subprocess.h"

#include <sluice/kafka/msg/headers.h>
#include <sluice/kafka/wire.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

namespace sluice::kafka::testing {

using namespace std::chrono_literals;

class kafka_broker {
 public:
  // extra_config: more lines under the kafka plugin's `config:` (6 spaces indent).
  explicit kafka_broker(const std::string& name, const std::string& extra_config = "") {
    std::string tmpl = "/tmp/" + name + ".XXXXXX";
    _dir = mkdtemp(tmpl.data());
    std::ofstream(_dir + "/sluice.yaml") << "node: { id: 0, data_dir: " << _dir << "/data, shards: 2 }\n"
                                         << "plugins:\n  - name: storage\n  - name: kafka\n    config:\n"
                                         << extra_config << "      listeners: [{ address: 127.0.0.1:0 }]\n";
    start();
  }
  ~kafka_broker() {
    stop();
    std::filesystem::remove_all(_dir);
  }
  kafka_broker(const kafka_broker&) = delete;
  kafka_broker& operator=(const kafka_broker&) = delete;

  // Starts brokerd (again) and waits until it serves; sets port and ready.
  void start() {
    _p = std::make_unique<sluice::testing::subprocess>(
        std::vector<std::string>{SLUICE_BROKERD, "--config", _dir + "/sluice.yaml"});
    auto rest = _p->wait_for_stderr("kafka listener PLAINTEXT on 127.0.0.1:", 30s);
    if (rest) port = static_cast<uint16_t>(std::stoi(*rest));
    ready = rest && _p->wait_for_stderr("ready", 30s).has_value();
  }
  // SIGTERM; brokerd must drain, exit 0 and print no sanitizer report.
  void stop() {
    if (!_p) return;
    _p->signal(SIGTERM);
    auto st = _p->wait(30s);
    EXPECT_EQ(st.code, 0) << _p->err();
    EXPECT_EQ(_p->err().find("AddressSanitizer"), std::string::npos) << _p->err();
    EXPECT_EQ(_p->err().find("runtime error"), std::string::npos) << _p->err();
    _p.reset();
  }
  // What brokerd printed so far.
  std::string log() {
    (void)_p->wait_for_stderr("\x01(pump only)", 300ms);
    return _p->err();
  }
  std::string data_dir() const { return _dir + "/data"; }

  uint16_t port = 0;
  bool ready = false;

 private:
  std::string _dir;
  std::unique_ptr<sluice::testing::subprocess> _p;
};

class client {
 public:
  explicit client(uint16_t port) {
    _fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected = ::connect(_fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
    timeval tv{10, 0};
    setsockopt(_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  }
  ~client() { ::close(_fd); }
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  bool send_raw(const std::vector<uint8_t>& bytes) {
    return ::send(_fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size());
  }
  // A whole request frame: size, header (its version follows the API's), body.
  template <class Req>
  std::vector<uint8_t> frame(const Req& req, int16_t version, int32_t correlation_id) {
    writer w;
    const patch_position at = w.reserve_int32();
    msg::request_header h;
    h.api_key = Req::api_key;
    h.api_version = version;
    h.correlation_id = correlation_id;
    h.client_id = "sluice-raw-test";
    h.encode(w, msg::request_header_version(Req::api_key, version));
    req.encode(w, version);
    w.patch_int32(at, static_cast<int32_t>(w.size() - 4));
    return w.flatten();
  }
  template <class Req>
  bool send(const Req& req, int16_t version, int32_t correlation_id) {
    return send_raw(frame(req, version, correlation_id));
  }
  // One response frame (without its size), or empty when the broker closed.
  std::vector<uint8_t> receive() {
    uint8_t size_be[4];
    if (!read_exact(size_be, 4)) return {};
    const uint32_t size = uint32_t{size_be[0]} << 24 | uint32_t{size_be[1]} << 16 | uint32_t{size_be[2]} << 8 | size_be[3];
    std::vector<uint8_t> body(size);
    if (!read_exact(body.data(), size)) return {};
    return body;
  }
  // Decodes the next response as Resp; checks its correlation id and that
  // nothing is left over.
  template <class Resp>
  bool receive(Resp& resp, int16_t api_key, int16_t version, int32_t expect_correlation_id) {
    std::vector<uint8_t> body = receive();
    if (body.empty()) return false;
    reader r(body.data(), body.size());
    msg::response_header h;
    EXPECT_TRUE(h.decode(r, msg::response_header_version(api_key, version)));
    EXPECT_EQ(h.correlation_id, expect_correlation_id);
    const bool ok = resp.decode(r, version);
    EXPECT_TRUE(ok) << r.error_message();
    EXPECT_TRUE(r.at_end());
    return ok;
  }
  // True when the broker closed the connection (EOF) within the timeout.
  bool closed_by_broker() {
    uint8_t b;
    return ::recv(_fd, &b, 1, 0) == 0;
  }

  bool connected = false;

 private:
  bool read_exact(uint8_t* p, size_t n) {
    while (n > 0) {
      const ssize_t r = ::recv(_fd, p, n, 0);
      if (r <= 0) return false;
      p += r;
      n -= static_cast<size_t>(r);
    }
    return true;
  }
  int _fd = -1;
};

}  // namespace sluice::kafka::testing
