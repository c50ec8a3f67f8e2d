#pragma once

// One WebSocket connection after the 101 response: reads frames and hands them, decoded, to its
// session actor; its connection_writer writes what the actors push into its sink. Everything here
// runs on the connection's loop thread. `Stream` is a plain TCP socket or a TLS stream.
//
// Reading a plain socket costs an idle connection no buffer: it waits until the socket is readable,
// reads into the loop's shared buffer and keeps only the bytes of an incomplete frame. A TLS stream
// may hold decrypted bytes the socket no longer signals, so it reads with a small buffer of its own.
//
// Inbound work is bounded: when the session actor has too many frames waiting, reading stops and
// TCP's flow control holds the client back, until the actor catches up (connection_sink).
//
// Keep-alive pings, the idle timeout and the write deadline are checked by the loop's sweep, not by
// timers per connection.

#include "actors/actors.hpp"
#include "net/connection_sink.hpp"
#include "net/client_limits.hpp"
#include "net/connection_writer.hpp"
#include "net/frame_parser.hpp"
#include "net/io_loop.hpp"
#include "net/loop_connection.hpp"
#include "net/server_context.hpp"
#include "net/streams.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/system/error_code.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace parley::net {

/// A WebSocket connection, its session actor and its single socket writer.
template <class Stream>
class websocket_session final : public loop_connection,
                                public std::enable_shared_from_this<websocket_session<Stream>>,
                                private frame_events {
public:
  using stream_type = Stream;

  /// Takes over the stream of an HTTP connection that has been answered with 101, and its share
  /// of the connection limits (released when this session ends). `keep` holds what the stream
  /// needs alive (the TLS context it was made with).
  websocket_session(stream_type&& stream, io_loop& loop, server_context_ptr ctx,
                    connection_slot slot = {}, std::shared_ptr<const void> keep = nullptr);

  ~websocket_session() override;

  websocket_session(const websocket_session&) = delete;
  websocket_session& operator=(const websocket_session&) = delete;

  /// Starts the connection. `who` is what the handshake established (see session_spawner); in
  /// open mode its name is validated here, after the upgrade, so the client can be told why.
  /// `early_bytes` are what the client sent right behind its request.
  void start(std::optional<auth::identity> who, std::string_view early_bytes);

  /// The sink the session actor writes to.
  const connection_sink_ptr& sink() const noexcept { return sink_; }

  // -- loop_connection ------------------------------------------------------------------------------
  void flush() override;
  void check_deadlines(clock_type::time_point now) override;
  void close(uint16_t code, std::string_view reason) override;
  bool closing() const override;
  void release() override;

private:
  static constexpr bool is_plain = std::is_same_v<Stream, boost::asio::ip::tcp::socket>;

  void start_session(std::optional<auth::identity> who);
  void read_more();
  void wait_readable();
  void on_readable(boost::system::error_code ec);
  void on_read(boost::system::error_code ec, std::size_t n);
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

  connection_slot slot_;  ///< declared first: released after the stream is closed
  stream_type stream_;
  std::shared_ptr<const void> keep_;
  io_loop& loop_;
  server_context_ptr ctx_;
  connection_sink_ptr sink_;
  connection_writer<stream_type> writer_;
  frame_parser parser_;
  std::string partial_;         ///< bytes of an incomplete frame (usually empty)
  std::vector<char> tls_read_;  ///< a TLS stream's own read buffer (empty on plain sockets)
  session_actor session_;
  clock_type::time_point last_heard_;
  bool ping_sent_ = false;      ///< a keep-alive ping is unanswered
  bool flush_needed_ = false;   ///< parsing queued a control frame nobody else will write
  bool disconnected_ = false;   ///< the session actor has been told the connection is gone
  bool reading_paused_ = false; ///< the session actor is behind: the socket is not being read
  /// While reading is paused no operation holds the connection: it holds itself, until it reads
  /// again, ends (released by the next sweep) or its loop stops.
  std::shared_ptr<websocket_session> hold_;
};

extern template class websocket_session<boost::asio::ip::tcp::socket>;
extern template class websocket_session<tls_stream>;

} // namespace parley::net
