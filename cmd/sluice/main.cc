// sluice: the command-line tool for Sluice (docs/CLI.md).

#include <csignal>
#include <iostream>
#include <string>
#include <vector>

#include "command.h"

int main(int argc, char** argv) {
  std::ios::sync_with_stdio(false);
  std::signal(SIGPIPE, SIG_IGN);
  std::vector<std::string> args(argv + 1, argv + argc);
  int rc = sluice::cli::run_cli(args, sluice::cli::process_env, std::cin, std::cout, std::cerr);
  std::cout.flush();
  return rc;
}
