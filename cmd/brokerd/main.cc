// brokerd: the Sluice daemon. Reads the YAML configuration, prepares the
// data directory, loads and configures the plugins it lists, starts the
// shards and runs until SIGINT or SIGTERM, then drains and exits 0.
//
// Exit codes: 0 after a clean stop (or a passing --check); 1 when start-up
// fails at run time (a port in use, io_uring unavailable, a plugin failing
// to start) or shutdown times out; 2 for a usage or configuration error.
#include "core/config/node_config.h"
#include "core/plugin/host.h"
#include "core/plugin/loader.h"

#include <spdlog/async.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>

namespace fs = std::filesystem;

namespace {

constexpr int exit_ok = 0;
constexpr int exit_runtime = 1;
constexpr int exit_config = 2;
constexpr auto shutdown_timeout = std::chrono::seconds(30);

const char* usage_text =
    "usage: brokerd --config FILE [--check]\n"
    "       brokerd --version | --help\n"
    "\n"
    "Runs a Sluice broker node: loads the plugins listed in FILE (YAML) and\n"
    "serves until SIGINT or SIGTERM, which drain in-flight work and exit 0.\n"
    "\n"
    "  -c, --config FILE  the node's configuration (see config/sluice.yaml)\n"
    "      --check        validate FILE, the data directory and the plugins, then exit\n"
    "  -v, --version      print the version and the plugin ABI, then exit\n"
    "  -h, --help         print this help, then exit\n"
    "\n"
    "Exit status: 0 clean stop, 1 run-time failure, 2 usage or configuration error.\n";

// The one-line error brokerd prints last, after the log has been flushed.
std::string g_error;

int fail(int code, const std::string& msg) {
  g_error = msg;
  return code;
}

std::string plugin_dir_default() {
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return "lib/sluice/plugins";
  return (exe.parent_path() / ".." / "lib" / "sluice" / "plugins").lexically_normal().string();
}

// Creates (if its parent exists), checks and locks the data directory. The
// lock is held until the process exits. With check_only nothing is created
// or locked (--check must work beside a running broker).
sluice::result<std::string> prepare_data_dir(const std::string& dir, const std::string& file, bool check_only) {
  const fs::path p = fs::absolute(dir).lexically_normal();
  const std::string where = "node.data_dir: " + p.string();
  const std::string fix = " or change node.data_dir in " + file;
  auto err = [](int e, std::string m) { return sluice::make_errno_error(e, std::move(m)); };
  std::error_code ec;
  if (!fs::exists(p, ec)) {
    const fs::path parent = p.parent_path();
    if (!fs::is_directory(parent, ec))
      return err(ENOENT, where + " does not exist, nor does its parent " + parent.string() +
                             "; create it (mkdir -p " + p.string() + ")" + fix);
    if (check_only) return p.string();
    if (!fs::create_directory(p, ec) && ec)
      return err(ec.value(), where + " cannot be created: " + ec.message() + "; fix the permissions of " +
                                 parent.string() + fix);
    // The new directory's entry is durable only once its parent is fsynced.
    const int pfd = ::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (pfd < 0 || ::fsync(pfd) != 0) {
      const int e = errno;
      if (pfd >= 0) ::close(pfd);
      return err(e, where + ": cannot fsync its parent " + parent.string() + ": " + std::strerror(e) + fix);
    }
    ::close(pfd);
  } else if (!fs::is_directory(p, ec)) {
    return err(ENOTDIR, where + " is not a directory; remove it" + fix);
  }
  const fs::path probe = p / ".write-probe";
  int fd = ::open(probe.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
  if (fd < 0 || ::write(fd, "x", 1) != 1 || ::fsync(fd) != 0) {
    const int e = errno;
    if (fd >= 0) ::close(fd);
    ::unlink(probe.c_str());
    return err(e, where + " is not writable: " + std::strerror(e) + "; fix its permissions" + fix);
  }
  ::close(fd);
  ::unlink(probe.c_str());
  if (check_only) return p.string();

  const fs::path lock = p / ".lock";
  fd = ::open(lock.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
  if (fd < 0) {
    const int e = errno;
    return err(e, where + ": cannot open " + lock.string() + ": " + std::strerror(e));
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    char pid[32] = {};
    ssize_t n = ::pread(fd, pid, sizeof(pid) - 1, 0);
    ::close(fd);
    std::string holder = n > 0 ? std::string(pid, static_cast<size_t>(n)) : std::string("?");
    while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
    return err(EBUSY, where + " is in use by another brokerd (pid " + holder + "); stop it" + fix);
  }
  const std::string me = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, me.data(), me.size(), 0) != static_cast<ssize_t>(me.size())) {
    const int e = errno;
    ::close(fd);
    return err(e, where + ": cannot write " + lock.string() + ": " + std::strerror(e));
  }
  return p.string();  // fd stays open: the lock lives as long as the process
}

// Logging is asynchronous: shard threads hand records to one logging
// thread and never block on a write to stderr; when the queue is full the
// oldest records are dropped rather than stalling a shard.
void setup_logging(const std::string& level) {
  spdlog::init_thread_pool(8192, 1);
  auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  auto logger = std::make_shared<spdlog::async_logger>("brokerd", sink, spdlog::thread_pool(),
                                                       spdlog::async_overflow_policy::overrun_oldest);
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%-5l%$ [%n] %v");
  logger->set_level(spdlog::level::from_str(level));
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

}  // namespace

static int run_brokerd(int argc, char** argv) {
  std::string config_file;
  bool check_only = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      std::fputs(usage_text, stdout);
      return exit_ok;
    }
    if (a == "-v" || a == "--version") {
      std::printf("brokerd %s (plugin ABI %u.%u, %s)\n", SLUICE_VERSION, SLUICE_ABI_MAJOR, SLUICE_ABI_MINOR,
                  SLUICE_BUILD_SIGNATURE);
      return exit_ok;
    }
    if (a == "--check") {
      check_only = true;
    } else if (a == "-c" || a == "--config") {
      if (i + 1 >= argc) return fail(exit_config, a + " needs a FILE; see brokerd --help");
      config_file = argv[++i];
    } else if (a.rfind("--config=", 0) == 0) {
      config_file = a.substr(9);
    } else {
      return fail(exit_config, "unknown argument '" + a + "'; see brokerd --help");
    }
  }
  if (config_file.empty()) return fail(exit_config, "no configuration given: use --config FILE (see brokerd --help)");

  // Signals are taken synchronously by this thread; shards inherit the mask
  // and never see them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  auto cfg = sluice::config::load_node_config(config_file);
  if (!cfg) return fail(exit_config, cfg.err().message);
  setup_logging(cfg.value().log_level);

  auto data_dir = prepare_data_dir(cfg.value().data_dir, config_file, check_only);
  if (!data_dir) return fail(exit_config, data_dir.err().message);

  sluice::config::resolve_plugin_paths(cfg.value(), plugin_dir_default());
  auto plugins = sluice::plugin::load_all(cfg.value());
  if (!plugins) return fail(exit_config, plugins.err().message);

  sluice::plugin::host host(cfg.value(), data_dir.value(), std::move(plugins).value());
  if (auto r = host.configure(); !r) return fail(exit_config, r.err().message);
  if (check_only) {
    std::printf("brokerd: %s is valid: %zu plugin(s), data directory %s\n", config_file.c_str(),
                host.plugins().size(), data_dir.value().c_str());
    return exit_ok;
  }

  if (auto r = host.start(); !r) return fail(exit_runtime, r.err().message);
  std::string names;
  for (const auto& p : host.plugins()) names += (names.empty() ? "" : ", ") + p.entry.name;
  spdlog::info("brokerd {} node {} ready: {} shard(s), data in {}, plugins: {}", SLUICE_VERSION,
               cfg.value().node_id, host.shard_count(), data_dir.value(), names.empty() ? "none" : names);

  int sig = 0;
  while (sigwait(&stop_signals, &sig) != 0) {
  }
  spdlog::info("received {}, draining and stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");

  // A second signal, or a drain that takes too long, ends the process now.
  // SIGUSR1 (blocked like the others) tells the watchdog the drain finished.
  sigset_t watch = stop_signals;
  sigaddset(&watch, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &watch, nullptr);
  std::thread watchdog([watch] {
    timespec ts{std::chrono::duration_cast<std::chrono::seconds>(shutdown_timeout).count(), 0};
    int got;
    while ((got = sigtimedwait(&watch, nullptr, &ts)) < 0 && errno == EINTR) {
    }
    if (got == SIGUSR1) return;
    if (got < 0)
      std::fprintf(stderr, "brokerd: shutdown did not finish within %lld s; exiting\n",
                   static_cast<long long>(shutdown_timeout.count()));
    else
      std::fprintf(stderr, "brokerd: second signal during shutdown; exiting without draining\n");
    std::fflush(stderr);
    std::_Exit(exit_runtime);
  });
  host.stop();
  pthread_kill(watchdog.native_handle(), SIGUSR1);
  watchdog.join();
  spdlog::info("stopped");
  return exit_ok;
}

int main(int argc, char** argv) {
  const int code = run_brokerd(argc, argv);  // the plugin host is gone when it returns
  spdlog::shutdown();                // drains the asynchronous log
  if (!g_error.empty()) std::fprintf(stderr, "brokerd: %s\n", g_error.c_str());
  return code;
}
