#pragma once

#include "config/settings.hpp"

#include <caf/actor_system_config.hpp>

#include <string>
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

/// Rewrites `--config FILE` and `--config=FILE` into CAF's `--config-file=FILE`.
std::vector<std::string> normalize_arguments(int argc, char** argv);

} // namespace parley
