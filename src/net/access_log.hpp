#pragma once

// The access log's line for one HTTP request on the public listener (logger "access", info):
//   <client> <method> <path> <status> <bytes>B <duration>ms
// The path is logged without its query string (which may hold ?name= or a token) and with
// control, space, quote and non-ASCII bytes percent-encoded, so one request is always one line.
// Header values (Authorization, Sec-WebSocket-Protocol, which may carry a token) are never logged.

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

namespace parley::net {

/// One answered (or refused) request.
struct access_entry {
  std::string_view client;  ///< the client's address, through trusted proxies; "-" if unknown
  std::string_view method;  ///< "GET", ...; "-" when no request line was read
  std::string_view target;  ///< the request target as received; "-" when none
  unsigned status = 0;      ///< the status sent (101 for an upgrade)
  std::size_t bytes = 0;    ///< bytes written for the response, head and body
  std::chrono::steady_clock::duration duration{};  ///< from the complete request to the answer written
};

/// The log line for `entry`, as described above.
std::string format_access_line(const access_entry& entry);

} // namespace parley::net
