#pragma once

// One log event as one line of JSON ([log] format = "json"). Lives beside the codec because JSON
// is written only in src/protocol; the logging module (logging/logging.hpp) calls it.

#include <string>
#include <string_view>

namespace parley::protocol {

/// The fields of one JSON log line, in the order they are written.
struct log_line {
  std::string_view ts;      ///< ISO 8601 UTC time, e.g. "2026-12-01T08:30:00.123Z"
  std::string_view level;   ///< trace, debug, info, warn, error or critical
  std::string_view logger;  ///< "parley", or "access" for the access log
  std::string_view msg;     ///< the text; quotes, control characters and bad UTF-8 are escaped
};

/// {"ts":...,"level":...,"logger":...,"msg":...} without a line end. Always valid JSON: bytes that
/// are not UTF-8 become U+FFFD. Never throws.
std::string encode_log_line(const log_line& line);

} // namespace parley::protocol
