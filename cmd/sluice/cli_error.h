#pragma once
// The CLI's one error type and its documented exit codes (docs/CLI.md).
//
// Every failure is thrown as a cli_error carrying the exit code that scripts
// see; run_cli() (cli.cc) is the boundary that prints "sluice: <message>" to
// stderr and returns the code. Nothing below main() prints errors itself.

#include <stdexcept>
#include <string>

namespace sluice::cli {

enum class exit_code : int {
  ok = 0,
  failed = 1,       // the operation failed (a broker or admin API error)
  usage = 2,        // unknown command or flag, bad value
  unreachable = 3,  // cannot reach the broker or the admin API (refused, timeout)
  not_found = 4,    // unknown topic, group, setting where that is the outcome
};

class cli_error : public std::runtime_error {
 public:
  cli_error(exit_code code, const std::string& message) : std::runtime_error(message), _code(code) {}
  exit_code code() const { return _code; }

 private:
  exit_code _code;
};

[[noreturn]] inline void throw_usage(const std::string& message) { throw cli_error(exit_code::usage, message); }
[[noreturn]] inline void throw_failed(const std::string& message) { throw cli_error(exit_code::failed, message); }
[[noreturn]] inline void throw_not_found(const std::string& message) {
  throw cli_error(exit_code::not_found, message);
}
[[noreturn]] inline void throw_unreachable(const std::string& message) {
  throw cli_error(exit_code::unreachable, message);
}

}  // namespace sluice::cli
