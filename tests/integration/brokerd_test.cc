// brokerd as a process: every bad-input case ends with one line naming the
// file, key or path and a non-zero exit code; a good configuration serves
// the example plugin and SIGTERM/SIGINT drain it and exit 0.
#include "subprocess.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>

namespace sluice {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testing::exit_status;
using testing::subprocess;

constexpr int exit_runtime = 1;
constexpr int exit_config = 2;

class brokerd : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "brokerd_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    _dir = fs::absolute(tmpl);
  }
  void TearDown() override { fs::remove_all(_dir); }

  // Writes a config file and returns its path.
  std::string config(const std::string& yaml, const std::string& name = "sluice.yaml") {
    const fs::path p = _dir / name;
    std::ofstream(p) << yaml;
    return p.string();
  }
  // A valid node section with data under the test directory.
  std::string node(const std::string& extra = "") {
    return "node:\n  data_dir: " + (_dir / "data").string() + "\n  shards: 2\n  pin_threads: false\n" + extra;
  }
  static std::string echo_plugin(const std::string& listen = "127.0.0.1:0") {
    return "plugins:\n  - name: echo\n    config:\n      listen: " + listen + "\n      idle_timeout_ms: 60000\n";
  }

  struct outcome {
    exit_status status;
    std::string out, err;
  };
  outcome run(const std::vector<std::string>& args) {
    std::vector<std::string> argv{SLUICE_BROKERD};
    argv.insert(argv.end(), args.begin(), args.end());
    outcome o;
    o.status = testing::run(argv, &o.out, &o.err);
    return o;
  }
  // Expects brokerd to refuse with `code` and a single line containing all of `parts`.
  void expect_refusal(const std::vector<std::string>& args, int code, const std::vector<std::string>& parts) {
    outcome o = run(args);
    EXPECT_EQ(o.status.code, code) << o.err;
    EXPECT_EQ(o.status.signal, 0) << "brokerd crashed: " << o.err;
    // The error is one line of its own (log lines may come before it).
    const auto at = o.err.rfind("brokerd: ");
    ASSERT_NE(at, std::string::npos) << o.err;
    EXPECT_TRUE(at == 0 || o.err[at - 1] == '\n') << o.err;
    EXPECT_EQ(o.err.find('\n', at), o.err.size() - 1) << "one line, at the end: " << o.err;
    for (const auto& p : parts) EXPECT_NE(o.err.find(p), std::string::npos) << "missing \"" << p << "\" in: " << o.err;
    EXPECT_EQ(o.err.find("AddressSanitizer"), std::string::npos) << o.err;
  }

  fs::path _dir;
};

TEST_F(brokerd, help_and_version) {
  outcome o = run({"--help"});
  EXPECT_EQ(o.status.code, 0);
  EXPECT_NE(o.out.find("usage: brokerd --config FILE"), std::string::npos);
  o = run({"--version"});
  EXPECT_EQ(o.status.code, 0);
  EXPECT_NE(o.out.find("plugin ABI 1."), std::string::npos) << o.out;
}

TEST_F(brokerd, usage_errors) {
  expect_refusal({}, exit_config, {"no configuration given: use --config FILE"});
  expect_refusal({"--frobnicate"}, exit_config, {"unknown argument '--frobnicate'"});
  expect_refusal({"--config"}, exit_config, {"--config needs a FILE"});
}

TEST_F(brokerd, missing_config_file) {
  const std::string f = (_dir / "absent.yaml").string();
  expect_refusal({"--config", f}, exit_config, {f, "cannot read the configuration file", "No such file"});
}

TEST_F(brokerd, malformed_yaml) {
  const std::string f = config("node:\n  shards: [1, 2\nplugins: []\n");
  expect_refusal({"--config", f}, exit_config, {f + ":", "invalid YAML"});
}

TEST_F(brokerd, unknown_key) {
  const std::string f = config(node("  shard_count: 2\n") + echo_plugin());
  expect_refusal({"--config", f}, exit_config, {f + ":5: node.shard_count: unknown key", "known keys"});
}

TEST_F(brokerd, wrong_type) {
  const std::string f = config("node:\n  shards: lots\n" + echo_plugin());
  expect_refusal({"--config", f}, exit_config, {f + ":2: node.shards: expected an unsigned integer, got \"lots\""});
}

TEST_F(brokerd, plugin_setting_with_a_bad_value) {
  const std::string f = config(node() + echo_plugin("somewhere"));
  expect_refusal({"--config", f}, exit_config,
                 {"plugin 'echo'", f, "plugins[0].config.listen: expected HOST:PORT", "\"somewhere\""});
}

TEST_F(brokerd, unknown_plugin) {
  const std::string f = config(node() + "plugins:\n  - name: nosuch\n");
  expect_refusal({"--config", f}, exit_config,
                 {"plugin 'nosuch'", "libsluice_nosuch.so", "No such file", "build it, set plugins[0].path"});
}

TEST_F(brokerd, missing_shared_object) {
  const std::string so = (_dir / "gone.so").string();
  const std::string f = config(node() + "plugins:\n  - name: echo\n    path: " + so + "\n");
  expect_refusal({"--config", f}, exit_config, {"plugin 'echo'", so, "fix plugins[0].path"});
}

TEST_F(brokerd, abi_mismatch) {
  const std::string so = std::string(SLUICE_FIXTURE_DIR) + "/abi_major.so";
  const std::string f = config(node() + "plugins:\n  - name: fixture\n    path: " + so + "\n");
  expect_refusal({"--config", f}, exit_config, {"plugin 'fixture'", so, "built for plugin ABI 2.", "rebuild it"});
}

TEST_F(brokerd, not_a_plugin) {
  const std::string so = std::string(SLUICE_FIXTURE_DIR) + "/no_entry.so";
  const std::string f = config(node() + "plugins:\n  - name: fixture\n    path: " + so + "\n");
  expect_refusal({"--config", f}, exit_config, {so, "does not export sluice_plugin_entry_v1"});
}

TEST_F(brokerd, dependency_listed_after) {
  const std::string dir = SLUICE_FIXTURE_DIR;
  const std::string f = config(node() + "plugins:\n  - name: dependent\n    path: " + dir +
                               "/dependent.so\n  - name: fixture\n    path: " + dir + "/ok.so\n");
  expect_refusal({"--config", f}, exit_config, {"plugin 'dependent'", "move 'fixture' above 'dependent'"});
}

TEST_F(brokerd, port_already_in_use) {
  int other = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(other, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  ASSERT_EQ(::listen(other, 1), 0);
  socklen_t len = sizeof(a);
  getsockname(other, reinterpret_cast<sockaddr*>(&a), &len);
  const std::string addr = "127.0.0.1:" + std::to_string(ntohs(a.sin_port));
  const std::string f = config(node() + echo_plugin(addr));
  expect_refusal({"--config", f}, exit_runtime,
                 {"plugin 'echo'", "failed to start on shard 0", "cannot listen on " + addr, "Address already in use",
                  "change `listen`"});
  ::close(other);
}

TEST_F(brokerd, data_dir_whose_parent_is_missing) {
  const std::string d = (_dir / "no" / "such" / "dir").string();
  const std::string f = config("node:\n  data_dir: " + d + "\n" + echo_plugin());
  expect_refusal({"--config", f}, exit_config, {"node.data_dir: " + d, "does not exist", "mkdir -p " + d, f});
}

TEST_F(brokerd, data_dir_that_is_a_file) {
  const std::string d = (_dir / "a_file").string();
  std::ofstream(d) << "x";
  const std::string f = config("node:\n  data_dir: " + d + "\n" + echo_plugin());
  expect_refusal({"--config", f}, exit_config, {"node.data_dir: " + d, "is not a directory"});
}

TEST_F(brokerd, data_dir_not_writable) {
  // Permission bits do not stop root, so use a directory no one can write:
  // procfs refuses new files even to root.
  expect_refusal({"--config", config("node:\n  data_dir: /proc/self\n" + echo_plugin())}, exit_config,
                 {"node.data_dir: /proc/self", "is not writable"});
  if (::geteuid() != 0) {
    const fs::path ro = _dir / "readonly";
    fs::create_directory(ro);
    fs::permissions(ro, fs::perms::owner_read | fs::perms::owner_exec);
    expect_refusal({"--config", config("node:\n  data_dir: " + ro.string() + "\n" + echo_plugin())}, exit_config,
                   {"is not writable", "Permission denied"});
  }
}

TEST_F(brokerd, check_validates_without_serving) {
  outcome o = run({"--config", config(node() + echo_plugin()), "--check"});
  EXPECT_EQ(o.status.code, 0) << o.err;
  EXPECT_NE(o.out.find("is valid: 1 plugin(s)"), std::string::npos) << o.out;
}

// A connected TCP client with line-oriented helpers.
class client {
 public:
  explicit client(uint16_t port) {
    _fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    timeval tv{10, 0};
    ::setsockopt(_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    _ok = ::connect(_fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
  }
  ~client() { ::close(_fd); }
  bool ok() const { return _ok; }
  bool send(const std::string& s) { return ::send(_fd, s.data(), s.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(s.size()); }
  // The next line without "\n"; nullopt on EOF, error or timeout.
  std::optional<std::string> line() {
    for (;;) {
      auto nl = _buf.find('\n');
      if (nl != std::string::npos) {
        std::string l = _buf.substr(0, nl);
        _buf.erase(0, nl + 1);
        return l;
      }
      char tmp[4096];
      ssize_t n = ::recv(_fd, tmp, sizeof(tmp), 0);
      if (n <= 0) return std::nullopt;
      _buf.append(tmp, static_cast<size_t>(n));
    }
  }
  // True when the server closed the connection within the timeout: EOF, or
  // a reset when it closed with our unread bytes still in its buffer.
  bool closed_by_server() {
    char c;
    const ssize_t n = ::recv(_fd, &c, 1, 0);
    return n == 0 || (n < 0 && errno == ECONNRESET);
  }

 private:
  int _fd = -1;
  bool _ok = false;
  std::string _buf;
};

class running_brokerd {
 public:
  running_brokerd(const std::string& cfg) : _p({SLUICE_BROKERD, "--config", cfg}) {
    auto rest = _p.wait_for_stderr("echo listening on 127.0.0.1:", 20s);
    if (rest) _port = static_cast<uint16_t>(std::atoi(rest->c_str()));
    _ready = _p.wait_for_stderr("node 0 ready", 20s).has_value();
  }
  bool ready() const { return _ready && _port != 0; }
  uint16_t port() const { return _port; }
  subprocess& proc() { return _p; }

 private:
  subprocess _p;
  uint16_t _port = 0;
  bool _ready = false;
};

TEST_F(brokerd, data_dir_in_use_by_another_brokerd) {
  const std::string f = config(node() + echo_plugin());
  running_brokerd first(f);
  ASSERT_TRUE(first.ready()) << first.proc().err();
  expect_refusal({"--config", f}, exit_config,
                 {"is in use by another brokerd (pid " + std::to_string(first.proc().pid()) + ")"});
  // --check validates beside the running broker without taking its lock.
  outcome check = run({"--config", f, "--check"});
  EXPECT_EQ(check.status.code, 0) << check.err;
  first.proc().signal(SIGTERM);
  EXPECT_EQ(first.proc().wait(30s).code, 0);
}

TEST_F(brokerd, serves_the_echo_plugin_and_drains_on_sigterm) {
  running_brokerd b(config(node() + echo_plugin()));
  ASSERT_TRUE(b.ready()) << b.proc().err();

  client c(b.port());
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(c.send("PING\nECHO hello sluice\nSHARD\n"));
  EXPECT_EQ(c.line(), "PONG");
  EXPECT_EQ(c.line(), "hello sluice");
  auto shard = c.line();
  ASSERT_TRUE(shard.has_value());
  EXPECT_TRUE(*shard == "0" || *shard == "1") << *shard;

  // Many concurrent connections land on both shards; STATS sums all shards.
  std::vector<std::unique_ptr<client>> many;
  for (int i = 0; i < 100; ++i) many.push_back(std::make_unique<client>(b.port()));
  std::set<std::string> shards_seen;
  for (auto& m : many) {
    ASSERT_TRUE(m->ok());
    ASSERT_TRUE(m->send("PING\nSHARD\n"));
  }
  for (auto& m : many) {
    EXPECT_EQ(m->line(), "PONG");
    auto s = m->line();
    ASSERT_TRUE(s.has_value());
    shards_seen.insert(*s);
  }
  EXPECT_EQ(shards_seen.size(), 2u) << "SO_REUSEPORT should spread 100 connections over both shards";
  ASSERT_TRUE(c.send("STATS\n"));
  auto stats = c.line();
  ASSERT_TRUE(stats.has_value());
  EXPECT_NE(stats->find("lines=204 connections=101"), std::string::npos) << *stats;
  EXPECT_NE(stats->find("shards=2"), std::string::npos) << *stats;

  // Garbage and an over-long line get errors, not a crash.
  ASSERT_TRUE(c.send(std::string("\x01\xff\xfe junk\n", 10)));
  auto err = c.line();
  ASSERT_TRUE(err.has_value());
  EXPECT_EQ(err->rfind("ERR unknown command", 0), 0u) << *err;
  client big(b.port());
  ASSERT_TRUE(big.send(std::string(10000, 'A')));
  auto too_long = big.line();
  ASSERT_TRUE(too_long.has_value());
  EXPECT_NE(too_long->find("ERR line longer than 4096 bytes"), std::string::npos);
  EXPECT_TRUE(big.closed_by_server());

  // SIGTERM: idle connections are closed, brokerd exits 0.
  b.proc().signal(SIGTERM);
  EXPECT_TRUE(c.closed_by_server());
  for (auto& m : many) EXPECT_TRUE(m->closed_by_server());
  exit_status st = b.proc().wait(30s);
  EXPECT_EQ(st.code, 0) << b.proc().err();
  EXPECT_NE(b.proc().err().find("received SIGTERM, draining and stopping"), std::string::npos);
  EXPECT_NE(b.proc().err().find("stopped plugin echo"), std::string::npos);
  EXPECT_EQ(b.proc().err().find("AddressSanitizer"), std::string::npos) << b.proc().err();
  EXPECT_EQ(b.proc().err().find("LeakSanitizer"), std::string::npos) << b.proc().err();
}

TEST_F(brokerd, sigint_stops_with_exit_zero_and_the_port_is_free_again) {
  const std::string f = config(node() + echo_plugin());
  running_brokerd b(f);
  ASSERT_TRUE(b.ready()) << b.proc().err();
  b.proc().signal(SIGINT);
  EXPECT_EQ(b.proc().wait(30s).code, 0) << b.proc().err();
  // A new broker can take the same data directory right away (lock released).
  running_brokerd again(f);
  ASSERT_TRUE(again.ready()) << again.proc().err();
  again.proc().signal(SIGTERM);
  EXPECT_EQ(again.proc().wait(30s).code, 0);
}

}  // namespace
}  // namespace sluice
