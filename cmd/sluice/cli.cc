// Resolving argv to a command, help text, and the error boundary.

#include <algorithm>
#include <iostream>
#include <sstream>

#include "cli_error.h"
#include "command.h"

namespace sluice::cli {

namespace {

const char* const exit_codes_help =
    "Exit codes:\n"
    "  0  success\n"
    "  1  the operation failed (a broker or admin API error)\n"
    "  2  usage error (unknown command or flag, bad value)\n"
    "  3  cannot reach the broker or the admin API (refused, timeout)\n"
    "  4  not found (unknown topic, group or setting)\n";

std::string joined(const std::vector<std::string>& path) {
  std::string out = "sluice";
  for (const auto& word : path) {
    out += " " + word;
  }
  return out;
}

bool has_prefix(const std::vector<std::string>& path, const std::vector<std::string>& prefix) {
  return path.size() > prefix.size() && std::equal(prefix.begin(), prefix.end(), path.begin());
}

std::string option_line(const option_spec& o) {
  std::string left = o.short_name ? std::string("-") + o.short_name + ", " : "    ";
  left += "--" + o.long_name;
  if (!o.value_name.empty()) {
    left += " " + o.value_name;
  }
  if (left.size() < 32) {
    left.append(32 - left.size(), ' ');
  } else {
    left += "  ";
  }
  return "  " + left + o.help + "\n";
}

// Direct children of a path: {word, summary}, in the order their commands were registered.
std::vector<std::pair<std::string, std::string>> children_of(const command_table& t,
                                                             const std::vector<std::string>& path) {
  std::vector<std::pair<size_t, std::pair<std::string, std::string>>> found;
  auto first_command_under = [&](const std::vector<std::string>& prefix) {
    for (size_t i = 0; i < t.commands.size(); ++i) {
      if (t.commands[i].path == prefix || has_prefix(t.commands[i].path, prefix)) {
        return i;
      }
    }
    return t.commands.size();
  };
  auto add = [&](const std::vector<std::string>& child, const std::string& summary) {
    if (child.size() == path.size() + 1 && has_prefix(child, path)) {
      found.push_back({first_command_under(child), {child.back(), summary}});
    }
  };
  for (const auto& g : t.groups) {
    add(g.path, g.summary);
  }
  for (const auto& c : t.commands) {
    add(c.path, c.summary);
  }
  std::stable_sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::pair<std::string, std::string>> out;
  for (auto& f : found) {
    out.push_back(std::move(f.second));
  }
  return out;
}

std::string global_help() {
  std::string out = "Global flags:\n";
  for (const auto& o : global_options()) {
    out += option_line(o);
  }
  return out;
}

std::string group_help(const command_table& t, const std::vector<std::string>& path, const std::string& summary) {
  std::string out = summary + "\n\nUsage:\n  " + joined(path) + " COMMAND [flags]\n\nCommands:\n";
  for (const auto& [word, child_summary] : children_of(t, path)) {
    std::string left = word;
    left.append(left.size() < 16 ? 16 - left.size() : 2, ' ');
    out += "  " + left + child_summary + "\n";
  }
  out += "\n" + global_help();
  out += "\nRun '" + joined(path) + " COMMAND --help' for a command's flags and examples.\n";
  if (path.empty()) {
    out += "\n" + std::string(exit_codes_help);
    out += "\nAddresses come from flags, then SLUICE_BROKERS / SLUICE_ADMIN / SLUICE_ADMIN_TOKEN, then the\n"
           "profile file, then the defaults. See docs/CLI.md.\n";
  }
  return out;
}

std::string command_help(const command& c) {
  std::string out = c.summary + "\n";
  if (!c.description.empty()) {
    out += "\n" + c.description + "\n";
  }
  out += "\nUsage:\n  " + joined(c.path) + " " + c.usage + "\n";
  if (!c.options.empty()) {
    out += "\nFlags:\n";
    for (const auto& o : c.options) {
      out += option_line(o);
    }
  }
  out += "\n" + global_help();
  if (!c.examples.empty()) {
    out += "\nExamples:\n";
    for (const auto& e : c.examples) {
      out += "  " + e + "\n";
    }
  }
  out += "\n" + std::string(exit_codes_help);
  return out;
}

const command* find_command(const command_table& t, const std::vector<std::string>& path) {
  for (const auto& c : t.commands) {
    if (c.path == path) {
      return &c;
    }
  }
  return nullptr;
}

const command_group* find_group(const command_table& t, const std::vector<std::string>& path) {
  for (const auto& g : t.groups) {
    if (g.path == path) {
      return &g;
    }
  }
  return nullptr;
}

std::string names_of(const std::vector<std::pair<std::string, std::string>>& children) {
  std::string out;
  for (const auto& [word, summary] : children) {
    out += (out.empty() ? "" : ", ") + word;
  }
  return out;
}

int dispatch(const std::vector<std::string>& argv, const env_lookup& env, std::istream& in, std::ostream& out,
             std::ostream& err) {
  const command_table& t = all_commands();
  std::vector<const option_spec*> globals;
  for (const auto& o : global_options()) {
    globals.push_back(&o);
  }

  // Walk the command words; global flags may come before them.
  std::vector<std::string> path;
  std::vector<std::string> rest;
  bool help = false;
  size_t i = 0;
  for (; i < argv.size(); ++i) {
    const std::string& token = argv[i];
    if (find_command(t, path) != nullptr) {
      break;  // the remaining tokens are the command's
    }
    if (token.size() > 1 && token[0] == '-') {
      const option_spec* spec = find_option(token, globals);
      if (spec == nullptr) {
        throw_usage("unknown flag " + token.substr(0, token.find('=')) + " for '" + joined(path) + "' (see '" +
                    joined(path) + " --help')");
      }
      help = help || spec->long_name == "help";
      rest.push_back(token);
      const bool inline_value = token.find('=') != std::string::npos || (token[1] != '-' && token.size() > 2);
      if (!spec->value_name.empty() && !inline_value && i + 1 < argv.size()) {
        rest.push_back(argv[++i]);
      }
      continue;
    }
    auto children = children_of(t, path);
    auto it = std::find_if(children.begin(), children.end(), [&](const auto& c) { return c.first == token; });
    if (it == children.end()) {
      throw_usage("unknown command '" + joined(path) + " " + token + "' (commands: " + names_of(children) + ")");
    }
    path.push_back(token);
  }
  rest.insert(rest.end(), argv.begin() + static_cast<std::ptrdiff_t>(i), argv.end());

  const command* cmd = find_command(t, path);
  if (cmd == nullptr) {
    const command_group* group = find_group(t, path);
    const std::string summary =
        group ? group->summary : "sluice: the command-line tool for Sluice (Kafka API and admin API).";
    if (help) {
      out << group_help(t, path, summary);
      return 0;
    }
    throw_usage("'" + joined(path) + "' needs a command: " + names_of(children_of(t, path)) + " (see '" +
                joined(path) + " --help')");
  }

  std::vector<const option_spec*> specs = globals;
  for (const auto& o : cmd->options) {
    specs.push_back(&o);
  }
  // --help wins over everything else on the line.
  for (const auto& token : rest) {
    if (token == "--help" || token == "-h") {
      out << command_help(*cmd);
      return 0;
    }
  }
  parsed_args args = parse_options(rest, specs, joined(cmd->path));
  const size_t n = args.positionals().size();
  if (n < cmd->positionals_min) {
    throw_usage("'" + joined(cmd->path) + "' is missing arguments (usage: " + joined(cmd->path) + " " + cmd->usage +
                ")");
  }
  if (n > cmd->positionals_max) {
    throw_usage("unexpected argument '" + args.positionals()[cmd->positionals_max] + "' for '" +
                joined(cmd->path) + "' (usage: " + joined(cmd->path) + " " + cmd->usage + ")");
  }
  const settings conf = resolve_settings(args, env);
  context ctx{args, conf, in, out, err};
  return cmd->run(ctx);
}

}  // namespace

const command_table& all_commands() {
  static const command_table table = [] {
    command_table t;
    add_topic_commands(t);
    add_produce_command(t);
    add_consume_command(t);
    add_group_commands(t);
    add_cluster_commands(t);
    return t;
  }();
  return table;
}

int run_cli(const std::vector<std::string>& argv, const env_lookup& env, std::istream& in, std::ostream& out,
            std::ostream& err) {
  try {
    return dispatch(argv, env, in, out, err);
  } catch (const cli_error& e) {
    out.flush();
    err << "sluice: " << e.what() << "\n";
    return static_cast<int>(e.code());
  } catch (const std::exception& e) {
    out.flush();
    err << "sluice: unexpected error: " << e.what() << "\n";
    return static_cast<int>(exit_code::failed);
  }
}

}  // namespace sluice::cli
