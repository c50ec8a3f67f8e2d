#pragma once

#include "config/settings.hpp"

#include <caf/actor_system_config.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace parley {

/// CAF's config system, extended with Parley's settings: one INI file (config.ini by default,
/// `--config=FILE` to choose) for CAF's scheduler and for Parley, and `--section.key=value` on the
/// command line to override any of it. `--port=N` is a short form of `--server.port=N`.
class app_config : public caf::actor_system_config {
public:
  app_config();

  /// Parses the command line (and the INI file it names); errors are returned, never thrown.
  caf::error parse_command_line(int argc, char** argv);

  settings values;
};

/// The first duration in `text` (config file contents or a command-line argument) too long for
/// 64-bit nanoseconds, such as "99999999999h". CAF 0.17 converts durations with a signed
/// multiplication that overflows on them (undefined behaviour; in practice a silently wrapped
/// value, possibly a plausible positive one), so Parley refuses them before CAF parses anything.
/// Skips quoted strings and ';' comments; may refuse a value a few nanoseconds short of the limit.
std::optional<std::string> find_overflowing_duration(std::string_view text);

/// Rewrites `--config FILE` and `--config=FILE` into CAF's `--config-file=FILE`.
std::vector<std::string> normalize_arguments(int argc, char** argv);

} // namespace parley
