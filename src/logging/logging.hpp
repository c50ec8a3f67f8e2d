#pragma once

// The server's logs ([log] in config.ini): the level, text or JSON lines, and the access log (one
// line per HTTP request on the public listener, logger "access"). Everything goes to stdout.

#include "config/settings.hpp"

#include <spdlog/logger.h>

#include <optional>
#include <string_view>

namespace parley::logging {

/// The spdlog level of a [log] level name ("trace", "debug", "info", "warn", "error"); nullopt
/// for any other text.
std::optional<spdlog::level::level_enum> level_from_name(std::string_view name);

/// Applies [log]: the level of every logger and the format of every line. Call once at start,
/// before other threads log; values must have passed value_problems (unknown names keep info/text).
void configure(const log_settings& s);

/// The access log (logger name "access", level info), sharing the default logger's output.
spdlog::logger& access();

} // namespace parley::logging
