#pragma once

// The command line people type: what `parley ...` is asked to do, its options brought into the one
// form CAF's parser takes (`--section.key=value`), and the help text. Every setting comes from the
// same option table app_config parses with, so the help and the parser cannot disagree.

#include <caf/config_option_set.hpp>

#include <string>
#include <vector>

namespace parley {

class app_config;

/// What `parley ...` is asked to do. (`parley token ...` is told apart before: auth/token_command.)
enum class command { serve, help, version, check_config };

/// A command line read into what it asks for, or the one line that says what is wrong with it.
struct command_line {
  command what = command::serve;
  /// The options in CAF's form: "--section.key=value", a flag as "--section.key", and
  /// "--config-file=FILE" for --config.
  std::vector<std::string> options;
  std::string check_file;  ///< check_config: the file to check
  std::string error;       ///< not empty: the command line is unusable, and this says why
};

/// Reads the arguments after the program name. Accepts `--section.key value` and
/// `--section.key=value` (likewise `--config`, `--port`/`-p`), checks that each option exists and
/// that its value parses as the option's type; `--help`/`-h` wins over everything else.
/// `known` is the option table of a default-constructed app_config. Never throws.
command_line read_command_line(const std::vector<std::string>& args,
                               const caf::config_option_set& known);

/// True for the options --help lists and the command line accepts: Parley's settings and the two
/// CAF scheduler settings config.ini documents (not CAF's other options).
bool is_setting(const caf::config_option& opt);

/// What a value of `opt` must look like, for error lines: "a valid duration (e.g. ...)".
std::string expected_value(const caf::config_option& opt);

/// The argument list of `main` without the program name.
std::vector<std::string> arguments_of(int argc, char** argv);

/// `parley --help`: usage, the general options, the subcommands and every setting by section with
/// its default (read from `defaults`, a default-constructed app_config) and its description.
std::string help_text(const app_config& defaults);

/// `parley --version`: "parley <version>".
std::string version_text();

} // namespace parley
