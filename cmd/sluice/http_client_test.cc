// The HTTP client and the admin API mapping against a tiny local server.

#include "http_client.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "admin_api.h"
#include "cli_error.h"

namespace sluice::cli {
namespace {

// Accepts one connection, reads one request (headers and a Content-Length
// body), then writes each of `replies` (with a short pause between them, so
// the client sees them in separate reads) and closes.
class one_shot_server {
 public:
  explicit one_shot_server(std::vector<std::string> replies, bool answer = true)
      : _replies(std::move(replies)), _answer(answer) {
    _listen_fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(_listen_fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::listen(_listen_fd, 1), 0);
    socklen_t len = sizeof addr;
    ::getsockname(_listen_fd, reinterpret_cast<sockaddr*>(&addr), &len);
    _port = ntohs(addr.sin_port);
    _thread = std::thread([this] { serve(); });
  }
  ~one_shot_server() {
    _thread.join();
    ::close(_listen_fd);
  }
  uint16_t port() const { return _port; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(_port); }
  // Valid after the client's call returned.
  const std::string& request() const { return _request; }

 private:
  void serve() {
    int fd = ::accept(_listen_fd, nullptr, nullptr);
    if (fd < 0) {
      return;
    }
    char buf[4096];
    size_t body_wanted = std::string::npos;
    while (true) {
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) {
        break;
      }
      _request.append(buf, static_cast<size_t>(n));
      auto end = _request.find("\r\n\r\n");
      if (end != std::string::npos && body_wanted == std::string::npos) {
        auto cl = _request.find("Content-Length: ");
        body_wanted = cl == std::string::npos ? 0 : std::stoul(_request.substr(cl + 16));
        body_wanted += end + 4;
      }
      if (body_wanted != std::string::npos && _request.size() >= body_wanted) {
        break;
      }
    }
    if (!_answer) {
      std::this_thread::sleep_for(std::chrono::milliseconds(700));
    }
    for (const auto& r : _replies) {
      ::send(fd, r.data(), r.size(), MSG_NOSIGNAL);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ::close(fd);
  }

  std::vector<std::string> _replies;
  bool _answer;
  int _listen_fd = -1;
  uint16_t _port = 0;
  std::thread _thread;
  std::string _request;
};

exit_code code_of(const std::function<void()>& fn, std::string* message = nullptr) {
  try {
    fn();
  } catch (const cli_error& e) {
    if (message) *message = e.what();
    return e.code();
  }
  return exit_code::ok;
}

TEST(http_client, get_with_content_length_in_pieces) {
  one_shot_server server({"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Len", "gth: 11\r\n\r\n{\"a\":",
                          "[1,2]}"});
  http_request req;
  req.target = "/v1/brokers";
  req.headers.emplace_back("Authorization", "Bearer t");
  http_response resp = http_call(parse_http_url(server.url() + "/base/", "--admin"), req, 5000);
  EXPECT_EQ(resp.status, 200);
  EXPECT_EQ(resp.reason, "OK");
  EXPECT_EQ(resp.body, "{\"a\":[1,2]}");
  EXPECT_EQ(resp.header("content-type"), "application/json");
  EXPECT_TRUE(server.request().starts_with("GET /base/v1/brokers HTTP/1.1\r\n")) << server.request();
  EXPECT_NE(server.request().find("\r\nHost: 127.0.0.1:" + std::to_string(server.port()) + "\r\n"), std::string::npos);
  EXPECT_NE(server.request().find("\r\nAuthorization: Bearer t\r\n"), std::string::npos);
  EXPECT_EQ(server.request().find("Content-Length"), std::string::npos);
}

TEST(http_client, put_sends_the_body_and_reads_a_chunked_answer) {
  one_shot_server server({"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"ok", "\r\n5;ext=1\r\n\":1}\n",
                          "\r\n0\r\nX-Trailer: y\r\n\r\n"});
  http_request req;
  req.method = "PUT";
  req.target = "/v1/cluster_config";
  req.body = "{\"upsert\":{}}";
  http_response resp = http_call(parse_http_url(server.url(), "--admin"), req, 5000);
  EXPECT_EQ(resp.body, "{\"ok\":1}\n");
  EXPECT_NE(server.request().find("\r\nContent-Length: 13\r\n\r\n{\"upsert\":{}}"), std::string::npos);
}

TEST(http_client, a_body_without_length_ends_with_the_connection) {
  one_shot_server server({"HTTP/1.0 404 Not Found\r\n\r\n", "{\"code\":404,", "\"message\":\"nope\"}"});
  http_response resp = http_call(parse_http_url(server.url(), "--admin"), http_request{}, 5000);
  EXPECT_EQ(resp.status, 404);
  EXPECT_EQ(resp.body, "{\"code\":404,\"message\":\"nope\"}");
}

TEST(http_client, malformed_or_cut_responses_fail) {
  {
    one_shot_server server({"SMTP ready\r\n\r\n"});
    std::string message;
    EXPECT_EQ(code_of([&] { http_call(parse_http_url(server.url(), "--admin"), http_request{}, 5000); }, &message),
              exit_code::failed);
    EXPECT_NE(message.find("is not HTTP/1.x"), std::string::npos) << message;
  }
  {
    one_shot_server server({"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"});
    std::string message;
    EXPECT_EQ(code_of([&] { http_call(parse_http_url(server.url(), "--admin"), http_request{}, 5000); }, &message),
              exit_code::failed);
    EXPECT_NE(message.find("closed before the body ended"), std::string::npos) << message;
  }
}

TEST(http_client, refused_and_silent_servers_are_unreachable) {
  uint16_t port = 0;
  {
    one_shot_server server({"HTTP/1.1 204 No Content\r\n\r\n"});
    port = server.port();
    http_call(parse_http_url(server.url(), "--admin"), http_request{}, 5000);
  }  // closed: nothing listens on port now
  std::string message;
  EXPECT_EQ(code_of([&] {
              http_call(parse_http_url("http://127.0.0.1:" + std::to_string(port), "--admin"), http_request{}, 2000);
            },
                    &message),
            exit_code::unreachable);
  EXPECT_NE(message.find("cannot reach the admin API"), std::string::npos) << message;
  one_shot_server silent({}, false);
  EXPECT_EQ(code_of([&] { http_call(parse_http_url(silent.url(), "--admin"), http_request{}, 200); }, &message),
            exit_code::unreachable);
  EXPECT_NE(message.find("timed out"), std::string::npos) << message;
}

TEST(http_client, response_parser_byte_by_byte) {
  const std::string text = "HTTP/1.1 201 Created\r\nA: 1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
  response_parser p;
  for (size_t i = 0; i < text.size(); ++i) {
    EXPECT_EQ(p.feed(text.substr(i, 1)), i + 1 == text.size());
  }
  EXPECT_EQ(p.response().status, 201);
  EXPECT_EQ(p.response().header("a"), "1");
  EXPECT_EQ(p.response().body, "abc");
}

TEST(http_client, urls) {
  http_url u = parse_http_url("http://admin.local:9644/api/", "--admin");
  EXPECT_EQ(u.address.host, "admin.local");
  EXPECT_EQ(u.address.port, 9644);
  EXPECT_EQ(u.base_path, "/api");
  EXPECT_EQ(parse_http_url("http://h", "--admin").address.port, 80);
  EXPECT_EQ(parse_http_url("http://[::1]:8080", "--admin").address.host, "::1");
  std::string message;
  EXPECT_EQ(code_of([&] { parse_http_url("https://h:1", "--admin"); }, &message), exit_code::usage);
  EXPECT_NE(message.find("https is not supported"), std::string::npos);
  EXPECT_EQ(code_of([&] { parse_http_url("h:1", "$SLUICE_ADMIN"); }, &message), exit_code::usage);
  EXPECT_NE(message.find("for $SLUICE_ADMIN: want http://HOST:PORT"), std::string::npos);
  EXPECT_EQ(code_of([&] { parse_http_url("http://h:99999", "--admin"); }), exit_code::usage);
}

TEST(http_client, base64) {
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("admin:s3cret"), "YWRtaW46czNjcmV0");
}

std::string reply(int status, const std::string& body) {
  return "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" +
         body;
}

settings admin_settings(const std::string& url) {
  settings s;
  s.admin = url;
  s.admin_source = "--admin";
  s.admin_user = "admin";
  s.admin_password = "s3cret";
  s.timeout_ms = 5000;
  return s;
}

TEST(admin_api, maps_statuses_to_exit_codes) {
  {
    one_shot_server server({reply(200, "[{\"node_id\":1}]")});
    EXPECT_EQ(admin_api(admin_settings(server.url())).get("/v1/brokers")[0]["node_id"], 1);
    EXPECT_NE(server.request().find("Authorization: Basic YWRtaW46czNjcmV0\r\n"), std::string::npos);
  }
  {
    one_shot_server server({reply(404, "{\"code\":404,\"message\":\"unknown group\"}")});
    std::string message;
    EXPECT_EQ(code_of([&] { admin_api(admin_settings(server.url())).get("/v1/groups/g", "group 'g'"); }, &message),
              exit_code::not_found);
    EXPECT_NE(message.find("group 'g' does not exist"), std::string::npos) << message;
  }
  {
    one_shot_server server({reply(404, "{\"code\":404,\"message\":\"no route\"}")});
    EXPECT_EQ(code_of([&] { admin_api(admin_settings(server.url())).get("/v1/brokers"); }), exit_code::failed);
  }
  {
    one_shot_server server({reply(401, "{\"code\":401,\"message\":\"unauthorized\"}")});
    std::string message;
    EXPECT_EQ(code_of([&] { admin_api(admin_settings(server.url())).get("/v1/brokers"); }, &message),
              exit_code::failed);
    EXPECT_NE(message.find("--admin-token"), std::string::npos) << message;
  }
  {
    one_shot_server server(
        {reply(400, "{\"code\":400,\"message\":\"invalid\",\"errors\":{\"a\":\"too small\",\"b\":\"unknown\"}}")});
    std::string message;
    EXPECT_EQ(code_of([&] { admin_api(admin_settings(server.url())).put("/v1/cluster_config", {{"upsert", {}}}); },
                      &message),
              exit_code::failed);
    EXPECT_NE(message.find("a: too small"), std::string::npos) << message;
    EXPECT_NE(message.find("b: unknown"), std::string::npos) << message;
  }
  {
    one_shot_server server({reply(200, "not json")});
    EXPECT_EQ(code_of([&] { admin_api(admin_settings(server.url())).get("/v1/brokers"); }), exit_code::failed);
  }
}

}  // namespace
}  // namespace sluice::cli
