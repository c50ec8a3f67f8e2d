#include "net/server.hpp"

#include "net/listener.hpp"
#include "net/server_context.hpp"
#include "net/websocket_session.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>

#include <spdlog/spdlog.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <thread>
#include <vector>

namespace parley::net {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

struct server::impl {
  impl(const settings& cfg, const protocol::codec_limits& limits, session_spawner spawn)
    : ioc(static_cast<int>(std::max<std::size_t>(cfg.server.io_threads, 1))) {
    auto c = std::make_shared<server_context>();
    c->cfg = cfg;
    c->limits = limits;
    c->spawn = std::move(spawn);
    ctx = std::move(c);
  }

  // Declared first so that it is destroyed last: pending handlers own sessions and sockets.
  asio::io_context ioc;
  std::shared_ptr<const server_context> ctx;
  std::shared_ptr<listener> accept_loop;
  std::vector<std::thread> threads;
  uint16_t port = 0;
  bool running = false;
};

server::server(const settings& cfg, const protocol::codec_limits& limits, session_spawner spawn)
  : impl_(std::make_unique<impl>(cfg, limits, std::move(spawn))) {
  // nop
}

server::~server() {
  stop();
}

bool server::start() {
  auto& d = *impl_;
  if (d.running)
    return true;
  const auto& srv = d.ctx->cfg.server;
  boost::system::error_code ec;
  auto address = asio::ip::make_address(srv.address, ec);
  if (ec) {
    spdlog::error("parley cannot listen: invalid address '{}': {}", srv.address, ec.message());
    return false;
  }
  d.accept_loop = std::make_shared<listener>(d.ioc, d.ctx);
  d.accept_loop->open(tcp::endpoint{address, srv.port}, ec);
  if (ec) {
    spdlog::error("parley cannot listen on {}:{}: {}", srv.address, srv.port, ec.message());
    d.accept_loop.reset();
    return false;
  }
  d.port = d.accept_loop->local_endpoint().port();
  d.accept_loop->run();
  d.running = true;
  auto n = std::max<std::size_t>(srv.io_threads, 1);
  d.threads.reserve(n);
  for (std::size_t i = 0; i < n; ++i)
    d.threads.emplace_back([&ioc = d.ioc] { ioc.run(); });
  spdlog::info("parley listening on {}:{}", address.to_string(), d.port);
  spdlog::default_logger()->flush();
  std::fflush(stdout);
  return true;
}

uint16_t server::port() const noexcept {
  return impl_->port;
}

std::size_t server::connections() const {
  return impl_->ctx->registry->size();
}

void server::stop() {
  auto& d = *impl_;
  if (!d.running)
    return;
  d.running = false;
  d.ctx->stopping = true;
  d.accept_loop->stop();
  auto registry = d.ctx->registry;
  // Closing from an I/O thread keeps every strong reference (and so any destructor it may end
  // up running) on the threads that own the sockets.
  asio::post(d.ioc, [registry] {
    for (auto& session : registry->snapshot())
      session->sink()->close(close_code::going_away, "server shutting down");
  });
  auto deadline = std::chrono::steady_clock::now() + d.ctx->cfg.server.shutdown_grace;
  while (registry->size() > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  if (auto left = registry->size(); left > 0)
    spdlog::info("parley stops with {} connection(s) still closing", left);
  d.ioc.stop();
  for (auto& t : d.threads)
    t.join();
  d.threads.clear();
  // No I/O thread runs now. Cut every sink loose from its connection, so that actors pushing
  // later cannot reach a connection while the io_context is torn down.
  for (auto& session : registry->snapshot())
    session->sink()->detach();
  d.accept_loop.reset();
}

int run_server(const settings& cfg, const protocol::codec_limits& limits, session_spawner spawn) {
  server srv{cfg, limits, std::move(spawn)};
  // Installed before the listener starts, so that a signal arriving during startup is caught
  // instead of killing the process; a dedicated io_context keeps this thread the only waiter.
  asio::io_context signals_ioc{1};
  asio::signal_set signals{signals_ioc, SIGINT, SIGTERM};
  if (!srv.start())
    return 1;
  signals.async_wait([](const boost::system::error_code& ec, int sig) {
    if (!ec)
      spdlog::info("parley shutting down on signal {}", sig);
  });
  signals_ioc.run();
  srv.stop();
  spdlog::default_logger()->flush();
  return 0;
}

} // namespace parley::net
