#include "config/command_line.hpp"

#include "config/app_config.hpp"

#include <caf/config_option.hpp>
#include <caf/config_value.hpp>
#include <caf/settings.hpp>

#include <algorithm>
#include <array>
#include <cstdio>
#include <map>
#include <optional>
#include <string_view>

#ifndef PARLEY_VERSION
#error "PARLEY_VERSION must be defined by the build (CMakeLists.txt)"
#endif

namespace parley {

namespace {

// -- which options are settings ---------------------------------------------------------------------

/// CAF's own option groups. Of these, only the two scheduler settings config.ini documents are
/// offered; the rest (and CAF's --config-file, --long-help, --dump-config) are not Parley's.
constexpr std::array<std::string_view, 8> caf_categories = {
  "global", "stream", "scheduler", "work-stealing", "logger", "middleman", "openssl", "opencl"};

std::string str(caf::string_view text) {
  return std::string{text.begin(), text.end()};
}

bool is_caf_scheduler_setting(const caf::config_option& opt) {
  return str(opt.category()) == "scheduler"
         && (str(opt.long_name()) == "policy" || str(opt.long_name()) == "max-threads");
}

bool starts_with(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

// -- value errors ------------------------------------------------------------------------------------

} // namespace

bool is_setting(const caf::config_option& opt) {
  if (is_caf_scheduler_setting(opt))
    return true;
  for (auto category : caf_categories)
    if (str(opt.category()) == category)
      return false;
  return true;
}

std::string expected_value(const caf::config_option& opt) {
  auto type = str(opt.type_name());
  if (str(opt.long_name()) == "port")
    return "a valid port (0-65535)";
  if (type.find("timespan") != std::string::npos)
    return "a valid duration (e.g. 500ms, 5s, 10min, 1h)";
  if (type.find("list") != std::string::npos || type.find("vector") != std::string::npos)
    return "a valid list (e.g. [\"a\", \"b\"])";
  if (type.find("double") != std::string::npos || type.find("real") != std::string::npos
      || type.find("float") != std::string::npos)
    return "a valid number";
  if (type.find("bool") != std::string::npos)
    return "true or false";
  if (type.find("int") != std::string::npos || type.find("size") != std::string::npos)
    return type.find("uint") != std::string::npos || type.find("size") != std::string::npos
             ? "a valid whole number (0 or more)"
             : "a valid whole number";
  return "a valid " + type;
}

namespace {

/// Empty if `value` parses as `opt`'s type, else the line saying why not. Parsing stores the value
/// in the option's target, which the real parse (file first, then these options) overwrites.
std::string check_value(const caf::config_option& opt, const std::string& value) {
  auto name = "--" + str(opt.full_name());
  if (auto bad = find_overflowing_duration(value))
    return name + ": duration " + *bad + " is too long";
  if (opt.parse(value))
    return {};
  return name + ": \"" + value + "\" is not " + expected_value(opt);
}

// -- help text -----------------------------------------------------------------------------------------

std::string render_duration(caf::timespan d) {
  using namespace std::chrono;
  auto ns = d.count();
  if (ns == 0)
    return "0s";
  const std::pair<long long, const char*> units[] = {
    {3'600'000'000'000LL, "h"}, {60'000'000'000LL, "min"}, {1'000'000'000LL, "s"},
    {1'000'000LL, "ms"},        {1'000LL, "us"},           {1LL, "ns"}};
  for (const auto& [size, suffix] : units)
    if (ns % size == 0)
      return std::to_string(ns / size) + suffix;
  return std::to_string(ns) + "ns";
}

std::string quote(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\')
      out += '\\';
    out += c;
  }
  return out + '"';
}

/// A value as it is written in config.ini.
std::string render(const caf::config_value& value) {
  if (auto d = caf::get_if<caf::timespan>(&value))
    return render_duration(*d);
  if (auto s = caf::get_if<std::string>(&value))
    return quote(*s);
  if (auto a = caf::get_if<caf::atom_value>(&value))
    return "'" + caf::to_string(*a) + "'";
  if (auto r = caf::get_if<double>(&value)) {
    char buf[64];
    std::snprintf(buf, sizeof buf, *r == static_cast<double>(static_cast<long long>(*r)) ? "%.1f" : "%g", *r);
    return buf;
  }
  if (auto list = caf::get_if<caf::config_value::list>(&value)) {
    std::string out = "[";
    for (const auto& item : *list)
      out += (out.size() > 1 ? ", " : "") + render(item);
    return out + "]";
  }
  return caf::to_string(value);
}

/// The default of a setting: the value its target holds before parsing, or (for CAF's scheduler
/// settings, which have no target) what app_config put into CAF's content.
std::string default_of(const caf::config_option& opt, const app_config& defaults) {
  if (auto value = opt.get())
    return render(*value);
  if (auto value = caf::get_if(&caf::content(defaults), opt.full_name()))
    return render(*value);
  return "(none)";
}

/// CAF's description of its scheduler settings states CAF's defaults, not Parley's.
std::string description_of(const caf::config_option& opt) {
  auto name = str(opt.full_name());
  if (name == "scheduler.policy")
    return "CAF's scheduler: 'sharing' (workers sleep until there is work) or 'stealing' (workers poll)";
  if (name == "scheduler.max-threads")
    return "CAF worker threads for actors (the message store has its own)";
  return str(opt.description());
}

constexpr std::string_view usage = R"(usage: parley [options]                      serve the chat (until SIGINT/SIGTERM)
       parley check-config FILE [options]   check a configuration file: "FILE: ok" and exit 0,
                                            or one line per problem and exit 1
       parley token [options]               mint a signed token (parley token --help)

general options:
  --config FILE    read the settings from FILE (default: config.ini in the working directory
                   when it exists; a FILE named here must exist)
  --port N, -p N   short for --server.port N
  --version        print the version and exit
  --help, -h       print this help and exit

settings: in the config file as key=value under [section]; on the command line as
--section.key VALUE or --section.key=VALUE, which win over the file. Durations take a unit
(ms, s, min, h); strings are quoted in the file; lists are written ["a", "b"].
An unknown option or a bad value is an error (exit code 2).
)";

} // namespace

// -- reading the command line --------------------------------------------------------------------------

std::vector<std::string> arguments_of(int argc, char** argv) {
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i)
    args.emplace_back(argv[i]);
  return args;
}

command_line read_command_line(const std::vector<std::string>& args,
                               const caf::config_option_set& known) {
  command_line out;
  auto fail = [&](std::string why) {
    out.error = std::move(why);
    return out;
  };
  for (const auto& arg : args)
    if (arg == "--help" || arg == "-h")
      return command_line{command::help, {}, {}, {}};
  std::size_t i = 0;
  if (!args.empty() && args[0] == "check-config") {
    if (args.size() < 2 || starts_with(args[1], "-"))
      return fail("check-config needs the FILE to check (parley check-config FILE)");
    out.what = command::check_config;
    out.check_file = args[1];
    out.options.push_back("--config-file=" + args[1]);
    i = 2;
  }
  for (; i < args.size(); ++i) {
    const auto& arg = args[i];
    if (arg == "--version") {
      out.what = command::version;
      continue;
    }
    std::string name;
    std::optional<std::string> value;
    if (starts_with(arg, "--") && arg.size() > 2) {
      auto eq = arg.find('=');
      name = arg.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
      if (eq != std::string::npos)
        value = arg.substr(eq + 1);
    } else if (starts_with(arg, "-p")) {
      name = "port";
      if (arg.size() > 2)
        value = arg.substr(arg[2] == '=' ? 3 : 2);
    } else if (starts_with(arg, "-")) {
      return fail("unknown option " + arg + " (see parley --help)");
    } else {
      return fail("unexpected argument \"" + arg + "\" (see parley --help)");
    }
    if (name == "port")
      name = "server.port";
    const caf::config_option* opt = nullptr;
    if (name != "config") {
      opt = known.cli_long_name_lookup(name);
      // Flat names (no section) are CAF's own global options, which are not settings.
      if (opt == nullptr || name.find('.') == std::string::npos || !is_setting(*opt))
        return fail("unknown option --" + name + " (see parley --help)");
    }
    if (!value) {
      if (opt != nullptr && opt->is_flag()) {
        // A flag alone means true; "--flag false" reads as well as "--flag=false".
        if (i + 1 < args.size() && (args[i + 1] == "true" || args[i + 1] == "false"))
          value = args[++i];
        else
          value = "true";
      } else if (i + 1 < args.size()) {
        value = args[++i];
      } else {
        return fail("--" + name + " needs a value");
      }
    }
    if (opt == nullptr) {
      if (value->empty())
        return fail("--config needs a FILE");
      out.options.push_back("--config-file=" + *value);
      continue;
    }
    if (opt->is_flag()) {
      // CAF's command-line parser can only switch a flag on.
      if (*value == "true")
        out.options.push_back("--" + name);
      else if (*value == "false")
        return fail("--" + name + "=false: flags can only be switched on here; set " + name
                    + "=false in the config file");
      else
        return fail("--" + name + ": \"" + *value + "\" is not true or false");
      continue;
    }
    if (auto problem = check_value(*opt, *value); !problem.empty())
      return fail(problem);
    out.options.push_back("--" + str(opt->full_name()) + "=" + *value);
  }
  return out;
}

// -- help and version ------------------------------------------------------------------------------------

std::string help_text(const app_config& defaults) {
  std::string out{usage};
  // Sections in the order the table declares them, CAF's scheduler settings last.
  std::vector<std::string> sections;
  std::map<std::string, std::string> body;
  for (const auto& opt : defaults.options()) {
    if (!is_setting(opt))
      continue;
    auto section = str(opt.category());
    if (body.find(section) == body.end())
      sections.push_back(section);
    auto& text = body[section];
    text += "  " + str(opt.full_name()) + " = " + default_of(opt, defaults) + "\n";
    text += "      " + description_of(opt) + "\n";
  }
  std::stable_partition(sections.begin(), sections.end(),
                        [](const std::string& section) { return section != "scheduler"; });
  for (const auto& section : sections)
    out += "\n[" + section + "]\n" + body[section];
  return out;
}

std::string version_text() {
  return std::string{"parley "} + PARLEY_VERSION;
}

} // namespace parley
