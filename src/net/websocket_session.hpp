#pragma once

// One WebSocket connection after the upgrade: reads frames and hands them to its session actor,
// and writes what the actors push into its connection_sink with gather writes. Everything here
// runs on the connection's strand, except the static schedule_* entry points.

#include "actors/actors.hpp"
#include "net/connection_sink.hpp"
#include "net/outbound_queue.hpp"
#include "net/queued_stream.hpp"
#include "net/server_context.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/websocket/stream.hpp>

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace parley::net {

/// A WebSocket connection, its session actor and its single socket writer.
class websocket_session : public std::enable_shared_from_this<websocket_session>,
                          public control_path {
public:
  /// Takes over the socket of an HTTP connection whose request asked for the upgrade.
  websocket_session(boost::asio::ip::tcp::socket&& socket, server_context_ptr ctx);

  ~websocket_session();

  websocket_session(const websocket_session&) = delete;
  websocket_session& operator=(const websocket_session&) = delete;

  /// Answers the upgrade request and starts the connection. `requested_name` is the `?name=`
  /// value if the URL had one (validated here, after the upgrade, so the client can be told why).
  void run(const boost::beast::http::request<boost::beast::http::string_body>& req,
           std::optional<std::string> requested_name);

  /// The sink the session actor writes to.
  const connection_sink_ptr& sink() const noexcept { return sink_; }

  /// Posts one flush to the connection's strand (any thread).
  static void schedule_flush(std::shared_ptr<websocket_session> self);

  /// Posts a close handshake with this code to the connection's strand (any thread).
  static void schedule_close(std::shared_ptr<websocket_session> self, uint16_t code,
                             std::string reason);

  // -- control_path (called by queued_stream, on the strand) ---------------------------------------

  void write_control(frame bytes) override;
  void request_teardown() override;

private:
  using socket_type = boost::asio::ip::tcp::socket;

  socket_type& socket() noexcept { return ws_.next_layer().next_layer(); }

  // -- inbound --------------------------------------------------------------------------------------
  void on_accept(boost::beast::error_code ec);
  void start_session();
  void do_read();
  void on_read(boost::beast::error_code ec, std::size_t n);
  void deliver(protocol::inbound in);
  void on_read_end(boost::beast::error_code ec);
  void drain();
  void on_drain(boost::beast::error_code ec, std::size_t n);
  void notify_disconnect();

  // -- outbound -------------------------------------------------------------------------------------
  void flush();
  void start_write();
  void on_write(boost::beast::error_code ec, std::size_t n);
  void on_write_timeout(boost::beast::error_code ec);
  void on_idle();

  // -- closing --------------------------------------------------------------------------------------
  void begin_close(uint16_t code, const std::string& reason);
  void on_close(boost::beast::error_code ec);
  void arm_close_deadline();
  void close_socket();

  server_context_ptr ctx_;
  boost::beast::websocket::stream<queued_stream> ws_;
  connection_sink_ptr sink_;
  session_actor session_;
  uint64_t registry_id_ = 0;
  std::optional<std::string> requested_name_;

  // Small inline read chunk: an idle connection keeps no heap read buffer, and most chat frames
  // fit in one chunk and are decoded in place. Longer messages are assembled in message_.
  std::array<char, 512> chunk_;
  std::string message_;

  // The batch being written; its items own the bytes gather_ points into.
  std::vector<outbound_item> batch_;
  std::vector<boost::asio::const_buffer> gather_;
  boost::asio::steady_timer write_timer_;
  std::unique_ptr<boost::asio::steady_timer> close_timer_; // only while closing

  bool open_ = false;             // the handshake completed
  bool closing_ = false;          // begin_close ran
  bool write_in_flight_ = false;
  bool teardown_requested_ = false;
  bool send_shut_ = false;
  bool disconnected_ = false;
};

} // namespace parley::net
