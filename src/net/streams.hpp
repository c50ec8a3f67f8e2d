#pragma once

// The stream a TLS connection runs on, and the two stream operations connection_writer needs beyond
// writing, for it. Included by connection_writer.hpp so that its template sees these overloads.

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

namespace parley::net {

/// TLS over Beast's TCP stream (whose deadline covers the TLS handshake and the HTTP request).
using tls_stream = boost::beast::ssl_stream<boost::beast::tcp_stream>;

/// Ends our sending side after the WebSocket close handshake. No TLS close_notify is sent: the
/// WebSocket close frame already marks the end of the data, and RFC 6455 lets the server close TCP.
inline void shutdown_send(tls_stream& stream) {
  boost::system::error_code ec;
  boost::beast::get_lowest_layer(stream).socket().shutdown(boost::asio::ip::tcp::socket::shutdown_send,
                                                           ec);
}

inline void close_stream(tls_stream& stream) {
  auto& socket = boost::beast::get_lowest_layer(stream).socket();
  boost::system::error_code ec;
  if (socket.is_open()) {
    socket.shutdown(boost::asio::ip::tcp::socket::shutdown_both, ec);
    socket.close(ec);
  }
}

} // namespace parley::net
