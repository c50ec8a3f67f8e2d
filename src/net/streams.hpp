#pragma once

// The two streams a WebSocket connection runs on (a plain TCP socket, or TLS over Beast's TCP
// stream), and the stream operations connection_writer needs beyond writing, per stream. Included
// by connection_writer.hpp so that its template sees these overloads.

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

namespace parley::net {

/// TLS over Beast's TCP stream (whose deadline covers the TLS handshake).
using tls_stream = boost::beast::ssl_stream<boost::beast::tcp_stream>;

/// Ends our sending side after the close handshake.
inline void shutdown_send(boost::asio::ip::tcp::socket& socket) {
  boost::system::error_code ec;
  socket.shutdown(boost::asio::ip::tcp::socket::shutdown_send, ec);
}

/// Closes the connection now.
inline void close_stream(boost::asio::ip::tcp::socket& socket) {
  boost::system::error_code ec;
  if (socket.is_open()) {
    socket.shutdown(boost::asio::ip::tcp::socket::shutdown_both, ec);
    socket.close(ec);
  }
}

/// No TLS close_notify is sent: the WebSocket close frame already marks the end of the data, and
/// RFC 6455 lets the server close TCP.
inline void shutdown_send(tls_stream& stream) {
  shutdown_send(boost::beast::get_lowest_layer(stream).socket());
}

inline void close_stream(tls_stream& stream) {
  close_stream(boost::beast::get_lowest_layer(stream).socket());
}

} // namespace parley::net
