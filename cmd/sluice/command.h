#pragma once
// The command table: every `sluice ...` command with its options, help text
// and handler. commands_*.cc each add their group; cli.cc resolves argv to a
// command, prints help, and converts errors to exit codes.

#include <functional>
#include <iosfwd>
#include <string>
#include <vector>

#include "args.h"
#include "settings.h"

namespace sluice::cli {

struct context {
  const parsed_args& args;
  const settings& conf;
  std::istream& in;
  std::ostream& out;
  std::ostream& err;
};

struct command {
  std::vector<std::string> path;  // {"topic", "create"}
  std::string summary;            // one line for the parent's command list
  std::string usage;              // after "sluice topic create ": "NAME [flags]"
  std::string description;        // paragraphs for --help
  std::vector<option_spec> options;
  std::vector<std::string> examples;
  size_t positionals_min = 0;
  size_t positionals_max = 0;
  std::function<int(context&)> run;
};

// A command group ("topic") shown in help with its subcommands.
struct command_group {
  std::vector<std::string> path;
  std::string summary;
};

struct command_table {
  std::vector<command_group> groups;
  std::vector<command> commands;
};

void add_topic_commands(command_table& table);
void add_produce_command(command_table& table);
void add_consume_command(command_table& table);
void add_group_commands(command_table& table);
void add_cluster_commands(command_table& table);

// The whole table, in help order.
const command_table& all_commands();

// Runs the CLI: argv without the program name. Returns the exit code.
int run_cli(const std::vector<std::string>& argv, const env_lookup& env, std::istream& in, std::ostream& out,
            std::ostream& err);

}  // namespace sluice::cli
