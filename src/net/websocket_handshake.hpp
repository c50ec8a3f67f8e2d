#pragma once

// The server's half of the WebSocket opening handshake (RFC 6455 section 4.2): checks the parts of
// an upgrade request that Beast's is_upgrade() does not, and builds the 101 response. Pure
// functions, so the rules are tested without sockets.

#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/string_body.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace parley::net {

/// Why an upgrade request cannot be answered with 101, or nothing (status ok) when it can.
struct handshake_problem {
  boost::beast::http::status status = boost::beast::http::status::ok;
  std::string message;  ///< for the response body

  explicit operator bool() const noexcept { return status != boost::beast::http::status::ok; }
};

/// Checks the WebSocket fields of a request that is_upgrade() accepted: Sec-WebSocket-Version must
/// be 13 (else 426, answered with the version we speak) and Sec-WebSocket-Key a base64 encoded
/// 16-byte nonce (else 400).
handshake_problem check_handshake(
  const boost::beast::http::request<boost::beast::http::string_body>& req);

/// The subprotocol name of Parley's protocol v1; the server selects it when offered.
inline constexpr std::string_view parley_subprotocol = "parley.v1";

/// A token rides in the handshake as the subprotocol "parley.token.<JWT>" (a JWT's characters are
/// all allowed in a protocol name), so that it never appears in a URL.
inline constexpr std::string_view token_subprotocol_prefix = "parley.token.";

/// What a Sec-WebSocket-Protocol header offered.
struct subprotocol_offer {
  bool parley = false;               ///< "parley.v1" was offered
  std::optional<std::string> token;  ///< the JWT of a "parley.token.<JWT>" entry
};

/// Reads a Sec-WebSocket-Protocol header (a comma-separated list of protocol names).
subprotocol_offer offered_subprotocols(std::string_view header);

/// The Sec-WebSocket-Accept value for a Sec-WebSocket-Key: base64(SHA-1(key + RFC 6455 GUID)).
std::string websocket_accept(std::string_view key);

/// The 101 Switching Protocols response to a request that passed check_handshake().
boost::beast::http::response<boost::beast::http::empty_body> switching_protocols(
  const boost::beast::http::request<boost::beast::http::string_body>& req);

} // namespace parley::net
