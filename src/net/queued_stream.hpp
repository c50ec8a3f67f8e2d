#pragma once

// The NextLayer under a websocket::stream that makes the connection's writer the socket's only
// writer. Reads pass straight through to the socket. Beast's own writes (the 101 response, pongs,
// keep-alive pings, close frames) are copied into the connection's outbound queue as control items
// and complete at once; the writer later sends them in order with the data frames, in the same
// gather writes. Teardown is deferred the same way: the socket is shut down once the queue has
// been flushed, so that a close frame is never cut off by the socket going away before it.

#include "protocol/frame_sink.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/role.hpp>

#include <cstddef>
#include <memory>
#include <string>
#include <utility>

namespace parley::net {

/// What queued_stream needs from the connection that owns it. Called on the connection's strand.
class control_path {
public:
  /// Queues already-framed bytes Beast wrote, behind everything queued so far.
  virtual void write_control(frame bytes) = 0;

  /// Beast finished (or abandoned) the close handshake: shut the socket down once flushed.
  virtual void request_teardown() = 0;

protected:
  ~control_path() = default;
};

/// A socket whose writes go through the connection's outbound queue; see the file comment.
class queued_stream {
public:
  using socket_type = boost::asio::ip::tcp::socket;
  using executor_type = socket_type::executor_type;
  using next_layer_type = socket_type;

  /// Wraps a connected socket; `path` must outlive this object (it owns it).
  queued_stream(socket_type&& socket, control_path& path)
    : socket_(std::move(socket)), path_(&path) {}

  /// The socket's executor: the connection's strand.
  executor_type get_executor() noexcept { return socket_.get_executor(); }

  /// The socket, so that get_lowest_layer (Beast's timeouts) can close it.
  socket_type& next_layer() noexcept { return socket_; }

  /// The socket, so that get_lowest_layer (Beast's timeouts) can close it.
  const socket_type& next_layer() const noexcept { return socket_; }

  /// The owner of the outbound queue.
  control_path& path() noexcept { return *path_; }

  /// Reads straight from the socket.
  template <class MutableBufferSequence, class ReadHandler>
  auto async_read_some(const MutableBufferSequence& buffers, ReadHandler&& handler) {
    return socket_.async_read_some(buffers, std::forward<ReadHandler>(handler));
  }

  /// Queues a copy of Beast's bytes and reports them all written (through a post, as an
  /// asynchronous operation must never complete inside its initiating call).
  template <class ConstBufferSequence, class WriteHandler>
  void async_write_some(const ConstBufferSequence& buffers, WriteHandler&& handler) {
    auto n = boost::asio::buffer_size(buffers);
    boost::beast::error_code ec;
    if (!socket_.is_open()) {
      ec = boost::asio::error::not_connected;
      n = 0;
    } else if (n > 0) {
      std::string bytes(n, '\0');
      boost::asio::buffer_copy(boost::asio::buffer(bytes), buffers);
      path_->write_control(make_frame(std::move(bytes)));
    }
    boost::asio::post(get_executor(),
                      boost::beast::bind_front_handler(std::forward<WriteHandler>(handler), ec, n));
  }

private:
  socket_type socket_;
  control_path* path_;
};

/// Beast's synchronous teardown hook (found by ADL); defers to the writer like the async one.
inline void teardown(boost::beast::role_type, queued_stream& stream, boost::beast::error_code& ec) {
  stream.path().request_teardown();
  ec = {};
}

/// Beast's asynchronous teardown hook (found by ADL): flags the writer to shut the socket down
/// after the queue drains and completes at once.
template <class TeardownHandler>
void async_teardown(boost::beast::role_type, queued_stream& stream, TeardownHandler&& handler) {
  stream.path().request_teardown();
  boost::asio::post(stream.get_executor(),
                    boost::beast::bind_front_handler(std::forward<TeardownHandler>(handler),
                                                     boost::beast::error_code{}));
}

} // namespace parley::net
