#pragma once

// The answers to requests the server will not serve: which status a failed read deserves, and the
// response that says so and closes the connection. Pure functions, unit-tested without sockets.

#include <boost/beast/core/error.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/string_body.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace parley::net {

/// A request refused with a status; `reason` is its name in the refusal log.
struct http_refusal {
  boost::beast::http::status status;
  std::string_view reason;
  std::string_view message;  ///< the response body
};

/// What to answer when reading a request failed with `ec`; `request_line_read` says whether the
/// parser got past the request line. nullopt when there is nobody to answer (the peer closed or
/// reset the connection). Beast reports a request line too long for the header limit the same as
/// too many header bytes: a request line that did not end within the limit is told apart as 414.
std::optional<http_refusal> refusal_for_read_error(boost::beast::error_code ec,
                                                   bool request_line_read);

/// The 408 for a request that did not arrive in time.
http_refusal request_timeout_refusal();

/// A plain-text error response with `Connection: close`: after it the server closes the socket.
boost::beast::http::response<boost::beast::http::string_body> refusal_response(
  const http_refusal& refusal, unsigned version = 11);

} // namespace parley::net
