#pragma once

#include "config/settings.hpp"

#include <caf/actor_system_config.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace parley {

/// CAF's config system, extended with Parley's settings: one INI file (config.ini by default,
/// `--config FILE` to choose) for CAF's scheduler and for Parley, and `--section.key value` on the
/// command line to override any of it (config/command_line.hpp reads the command line).
class app_config : public caf::actor_system_config {
public:
  app_config();

  /// Reads the options of a command line (after the program name, as `parley` takes them: see
  /// command_line.hpp) and the INI file they name, then checks the values (value_problems). Returns
  /// the problems, one line each; empty when the values are usable. Never throws.
  std::vector<std::string> parse_command_line(int argc, char** argv);

  /// Reads options command_line.hpp already brought into CAF's form, and the INI file they name,
  /// without checking the values (value_problems does). Returns the problems, one line each:
  /// the first that stops parsing, or every key in a Parley section that no setting has and every
  /// value of the wrong type (both of which CAF's reader would skip in silence).
  std::vector<std::string> parse_options(const std::vector<std::string>& options);

  /// Parley's settings and CAF's own options, as the command line and --help see them.
  const caf::config_option_set& options() const noexcept { return custom_options_; }

  settings values;
};

/// The problems that make these values unusable, one line each naming the setting; empty when
/// they are fine. Reads no file: config/startup_check.hpp checks what needs files or parsing.
std::vector<std::string> value_problems(const settings& values);

/// The first duration in `text` (config file contents or a command-line argument) too long for
/// 64-bit nanoseconds, such as "99999999999h". CAF 0.17 converts durations with a signed
/// multiplication that overflows on them (undefined behaviour; in practice a silently wrapped
/// value, possibly a plausible positive one), so Parley refuses them before CAF parses anything.
/// Skips quoted strings and ';' comments; may refuse a value a few nanoseconds short of the limit.
std::optional<std::string> find_overflowing_duration(std::string_view text);

} // namespace parley
