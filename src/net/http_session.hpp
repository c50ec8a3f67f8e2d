#pragma once

// One HTTP/1.1 connection before (or instead of) a WebSocket upgrade: keep-alive request loop,
// static files from the web root, /healthz, and the /ws upgrade hand-off. With TLS configured it
// first tells TLS from plaintext, answers plaintext with 400, and runs the TLS handshake.

#include "net/client_limits.hpp"
#include "net/http_refusal.hpp"
#include "net/io_loop.hpp"
#include "net/server_context.hpp"
#include "net/streams.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <variant>

namespace parley::net {

/// An HTTP connection; hands its socket to a websocket_session on a valid /ws upgrade.
class http_session : public std::enable_shared_from_this<http_session> {
public:
  /// Takes an accepted socket whose executor is `loop`'s context, and its share of the
  /// connection limits (handed on to the WebSocket session).
  http_session(boost::asio::ip::tcp::socket&& socket, io_loop& loop, server_context_ptr ctx,
               connection_slot slot);

  /// Starts reading requests.
  void run();

private:
  using request = boost::beast::http::request<boost::beast::http::string_body>;

  /// The stream before (and without) TLS, or the TLS stream over it.
  using stream_variant = std::variant<boost::beast::tcp_stream, tls_stream>;

  boost::beast::tcp_stream& tcp() noexcept;
  template <class F>
  void with_stream(F&& f) { std::visit(std::forward<F>(f), stream_); }

  void detect_tls();
  void on_detected(boost::beast::error_code ec, bool is_tls);
  void refuse_plaintext();
  void on_tls_handshake(boost::beast::error_code ec, std::size_t used);
  void do_read();
  void on_read(boost::beast::error_code ec, std::size_t n);
  void on_request_timeout(boost::beast::error_code ec);
  /// Counts the refusal under `reason` and sends `res`, closing the connection after it.
  template <class Response>
  void refuse(Response&& res, std::string_view reason);
  bool admit(const request& req);
  void handle(request&& req);
  void upgrade(request&& req);
  void on_upgraded(boost::beast::error_code ec, std::size_t n, std::optional<auth::identity> who);
  template <class Response>
  void send(Response&& res);
  void on_write(bool close, unsigned status, boost::beast::error_code ec, std::size_t n);
  /// Remembers the request being answered (for the access log) and when it was complete.
  void note_request(std::string_view method, std::string_view target);
  /// One access-log line for the request noted last, answered with `status` in `bytes`.
  void log_access(unsigned status, std::size_t bytes);
  void do_close();
  void linger();
  void on_linger(boost::beast::error_code ec, std::size_t n);

  connection_slot slot_;  ///< declared first: released after the socket is closed
  stream_variant stream_;
  std::shared_ptr<boost::asio::ssl::context> tls_;  ///< set on a TLS port
  boost::asio::steady_timer request_timer_;  ///< the 408 deadline of the request being read
  bool reading_ = false;                     ///< a request is being read
  bool timed_out_ = false;                   ///< ... and its deadline passed
  std::size_t lingered_bytes_ = 0;           ///< discarded after the last answer
  io_loop& loop_;
  boost::beast::flat_buffer buffer_;
  std::optional<boost::beast::http::request_parser<boost::beast::http::string_body>> parser_;
  server_context_ptr ctx_;
  std::string client_;  ///< the client's address (through trusted proxies), for the logs
  std::string method_;  ///< of the request being answered, for the access log
  std::string target_;  ///< likewise; the log leaves out its query
  std::chrono::steady_clock::time_point request_done_;  ///< when that request was complete
};

} // namespace parley::net
