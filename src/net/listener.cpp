#include "net/listener.hpp"

#include "net/http_session.hpp"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/socket_base.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/bind_handler.hpp>

#include <spdlog/spdlog.h>

#include <chrono>

namespace parley::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;

listener::listener(asio::io_context& ioc, server_context_ptr ctx)
  : ioc_(ioc),
    ctx_(std::move(ctx)),
    acceptor_(asio::make_strand(ioc)),
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
  // Each connection gets its own strand: its handlers never run concurrently.
  acceptor_.async_accept(asio::make_strand(ioc_),
                         beast::bind_front_handler(&listener::on_accept, shared_from_this()));
}

void listener::on_accept(beast::error_code ec, tcp::socket socket) {
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
  beast::error_code opt_ec;
  // Writes are already batched per flush; Nagle would only add latency to each batch.
  socket.set_option(tcp::no_delay(true), opt_ec);
  std::make_shared<http_session>(std::move(socket), ctx_)->run();
  do_accept();
}

} // namespace parley::net
