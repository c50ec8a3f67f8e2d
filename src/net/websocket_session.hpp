#pragma once

// One WebSocket connection after the 101 response: reads frames and hands them, decoded, to its
// session actor; its connection_writer writes what the actors push into its sink. Everything here
// runs on the connection's loop thread.
//
// Reading costs an idle connection no buffer: it waits until the socket is readable, reads into the
// loop's shared buffer and keeps only the bytes of an incomplete frame. Keep-alive pings, the idle
// timeout and the write deadline are checked by the loop's sweep, not by timers per connection.

#include "actors/actors.hpp"
#include "net/connection_sink.hpp"
#include "net/client_limits.hpp"
#include "net/connection_writer.hpp"
#include "net/frame_parser.hpp"
#include "net/io_loop.hpp"
#include "net/server_context.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/system/error_code.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace parley::net {

/// A WebSocket connection, its session actor and its single socket writer.
class websocket_session final : public std::enable_shared_from_this<websocket_session>,
                                private frame_events {
public:
  using socket_type = boost::asio::ip::tcp::socket;
  using clock_type = std::chrono::steady_clock;

  /// Takes over the socket of an HTTP connection that has been answered with 101, and its share
  /// of the connection limits (released when this session ends).
  websocket_session(socket_type&& socket, io_loop& loop, server_context_ptr ctx,
                    connection_slot slot = {});

  ~websocket_session();

  websocket_session(const websocket_session&) = delete;
  websocket_session& operator=(const websocket_session&) = delete;

  /// Starts the connection. `requested_name` is the `?name=` value if the URL had one (validated
  /// here, after the upgrade, so the client can be told why); `early_bytes` are what the client
  /// sent right behind its request.
  void start(std::optional<std::string> requested_name, std::string_view early_bytes);

  /// The sink the session actor writes to.
  const connection_sink_ptr& sink() const noexcept { return sink_; }

  /// Writes what the sink holds (the loop's wake list calls this).
  void flush();

  /// The loop's periodic check: keep-alive ping, idle timeout, and the writer's deadlines.
  void check_deadlines(clock_type::time_point now);

  /// The loop's bookkeeping: this connection's index in its list.
  std::size_t loop_slot = 0;

private:
  void start_session(std::optional<std::string> requested_name);
  void wait_readable();
  void on_readable(boost::system::error_code ec);
  void consume(char* data, std::size_t size);
  void end_reading(boost::system::error_code ec);
  void notify_disconnect();
  void deliver(protocol::inbound in);

  // -- frame_events ---------------------------------------------------------------------------------
  void on_text(std::string_view message) override;
  void on_binary() override;
  void on_ping(std::string_view payload) override;
  void on_pong() override;
  void on_close(uint16_t code, std::string_view reason) override;
  void on_failure(uint16_t code, std::string_view why) override;

  connection_slot slot_;  ///< declared first: released after the socket is closed
  socket_type socket_;
  io_loop& loop_;
  server_context_ptr ctx_;
  connection_sink_ptr sink_;
  connection_writer<socket_type> writer_;
  frame_parser parser_;
  std::string partial_;  ///< bytes of an incomplete frame (usually empty)
  session_actor session_;
  clock_type::time_point last_heard_;
  bool ping_sent_ = false;      ///< a keep-alive ping is unanswered
  bool flush_needed_ = false;   ///< parsing queued a control frame nobody else will write
  bool disconnected_ = false;   ///< the session actor has been told the connection is gone
};

} // namespace parley::net
