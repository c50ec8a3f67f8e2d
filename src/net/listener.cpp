#include "net/listener.hpp"

#include "net/http_session.hpp"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/socket_base.hpp>
#include <boost/beast/core/bind_handler.hpp>

#include <spdlog/spdlog.h>

#include <chrono>

namespace parley::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;

listener::listener(std::vector<io_loop*> loops, server_context_ptr ctx)
  : loops_(std::move(loops)),
    ctx_(std::move(ctx)),
    acceptor_(loops_.front()->context()),
    retry_timer_(acceptor_.get_executor()) {
  // nop
}

void listener::open(const tcp::endpoint& endpoint, beast::error_code& ec) {
  acceptor_.open(endpoint.protocol(), ec);
  if (ec)
    return;
  acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (ec)
    return;
  acceptor_.bind(endpoint, ec);
  if (ec)
    return;
  acceptor_.listen(asio::socket_base::max_listen_connections, ec);
}

tcp::endpoint listener::local_endpoint() const {
  beast::error_code ec;
  return acceptor_.local_endpoint(ec);
}

void listener::run() {
  asio::dispatch(acceptor_.get_executor(),
                 beast::bind_front_handler(&listener::do_accept, shared_from_this()));
}

void listener::stop() {
  asio::post(acceptor_.get_executor(), [self = shared_from_this()] {
    beast::error_code ec;
    self->acceptor_.close(ec);
    self->retry_timer_.cancel();
  });
}

void listener::do_accept() {
  if (!acceptor_.is_open())
    return;
  // The new socket belongs to the next loop: all its handlers run on that loop's one thread.
  auto& loop = *loops_[next_loop_];
  acceptor_.async_accept(loop.context(), [self = shared_from_this(), &loop](
                                           beast::error_code ec, tcp::socket socket) {
    self->on_accept(loop, ec, std::move(socket));
  });
}

void listener::on_accept(io_loop& loop, beast::error_code ec, tcp::socket socket) {
  if (ec == asio::error::operation_aborted || !acceptor_.is_open())
    return;
  if (ec) {
    // Typically out of file descriptors: pause instead of spinning on the same error.
    spdlog::warn("listener failed to accept: {}", ec.message());
    retry_timer_.expires_after(std::chrono::milliseconds(100));
    retry_timer_.async_wait([self = shared_from_this()](beast::error_code wait_ec) {
      if (!wait_ec)
        self->do_accept();
    });
    return;
  }
  auto slot = admit(socket);
  if (!slot) {
    // Past even the answer reserve: closing at once keeps the descriptors for those we answer.
    beast::error_code close_ec;
    socket.close(close_ec);
  } else {
    beast::error_code opt_ec;
    // Writes are already batched per flush; Nagle would only add latency to each batch.
    socket.set_option(tcp::no_delay(true), opt_ec);
    // run() dispatches to the socket's loop.
    std::make_shared<http_session>(std::move(socket), loop, ctx_, std::move(*slot))->run();
  }
  next_loop_ = (next_loop_ + 1) % loops_.size();
  do_accept();
}

std::optional<connection_slot> listener::admit(const tcp::socket& socket) {
  auto slot = ctx_->clients->accept();
  if (!slot) {
    ctx_->refusals->count("over_connection_reserve");
    return slot;
  }
  beast::error_code ec;
  auto peer = socket.remote_endpoint(ec);
  // A trusted proxy's connection counts for the client its requests name (http_session); any
  // other connection counts for its peer from the start, so idle ones count too.
  if (!ec && !ctx_->proxies.trusts(peer.address()))
    slot->assign(limit_key(peer.address()));
  return slot;
}

} // namespace parley::net
