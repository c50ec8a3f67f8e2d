#pragma once

// The accept loop: one acceptor; accepted sockets are spread over the I/O loops in turn and handed
// to an http_session on their loop.

#include "net/io_loop.hpp"
#include "net/server_context.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/error.hpp>

#include <memory>
#include <optional>
#include <vector>

namespace parley::net {

/// Accepts TCP connections until stopped.
class listener : public std::enable_shared_from_this<listener> {
public:
  /// Creates a listener that is not yet bound; it accepts on the first loop.
  listener(std::vector<io_loop*> loops, server_context_ptr ctx);

  /// Opens, binds and listens; on failure `ec` says why.
  void open(const boost::asio::ip::tcp::endpoint& endpoint, boost::beast::error_code& ec);

  /// The bound endpoint (the real port when the settings asked for port 0).
  boost::asio::ip::tcp::endpoint local_endpoint() const;

  /// Starts the accept loop.
  void run();

  /// Stops accepting (any thread); connections already accepted carry on.
  void stop();

private:
  void do_accept();
  void on_accept(io_loop& loop, boost::beast::error_code ec, boost::asio::ip::tcp::socket socket);
  /// Counts a new connection against the limits; nullopt when it must be closed unanswered.
  std::optional<connection_slot> admit(const boost::asio::ip::tcp::socket& socket);

  std::vector<io_loop*> loops_;
  std::size_t next_loop_ = 0;
  server_context_ptr ctx_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer retry_timer_;
};

} // namespace parley::net
