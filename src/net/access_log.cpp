#include "net/access_log.hpp"

#include <cstdio>

namespace parley::net {

namespace {

// Long enough for any path the chat page uses; a longer one is cut, marked with "...".
constexpr std::size_t max_logged_path = 256;

/// The path of `target` without query or fragment, safe to put on one log line.
std::string loggable_path(std::string_view target) {
  auto path = target.substr(0, target.find_first_of("?#"));
  std::string out;
  for (unsigned char c : path) {
    if (out.size() >= max_logged_path) {
      out += "...";
      break;
    }
    if (c <= 0x20 || c == '"' || c == 0x7f || c >= 0x80) {
      char escaped[4];
      std::snprintf(escaped, sizeof escaped, "%%%02X", c);
      out += escaped;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out.empty() ? "-" : out;
}

} // namespace

std::string format_access_line(const access_entry& e) {
  auto micros = std::chrono::duration_cast<std::chrono::microseconds>(e.duration).count();
  char duration[32];
  std::snprintf(duration, sizeof duration, "%.1fms", static_cast<double>(micros) / 1000.0);
  std::string line;
  line += e.client.empty() ? "-" : std::string{e.client};
  line += ' ';
  line += e.method.empty() ? "-" : std::string{e.method};
  line += ' ';
  line += loggable_path(e.target);
  line += ' ' + std::to_string(e.status) + ' ' + std::to_string(e.bytes) + "B " + duration;
  return line;
}

} // namespace parley::net
