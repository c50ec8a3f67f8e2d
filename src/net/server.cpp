#include "net/server.hpp"

#include "net/listener.hpp"
#include "net/server_context.hpp"
#include "net/io_loop.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/signal_set.hpp>

#include <spdlog/spdlog.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <functional>
#include <thread>
#include <vector>

namespace parley::net {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

struct server::impl {
  impl(const settings& cfg, const protocol::codec_limits& limits, session_spawner spawn) {
    auto c = std::make_shared<server_context>();
    c->cfg = cfg;
    c->limits = limits;
    c->spawn = std::move(spawn);
    if (cfg.tls.enabled()) {
      try {
        c->tls = std::make_shared<tls_credentials>(cfg.tls.certificate, cfg.tls.key);
      } catch (const std::exception& e) {
        tls_error = e.what();
      }
    }
    ctx = std::move(c);
    loop_deadlines deadlines;
    deadlines.idle_timeout = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      cfg.connection.idle_timeout);
    deadlines.write_timeout = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      cfg.connection.write_timeout);
    auto n = std::max<std::size_t>(cfg.server.io_threads, 1);
    for (std::size_t i = 0; i < n; ++i)
      loops.push_back(std::make_unique<io_loop>(deadlines));
  }

  std::size_t connections() const {
    std::size_t n = 0;
    for (auto& loop : loops)
      n += loop->connections();
    return n;
  }

  std::shared_ptr<const server_context> ctx;
  std::string tls_error;  ///< why the TLS files could not be loaded
  std::vector<std::unique_ptr<io_loop>> loops;
  std::shared_ptr<listener> accept_loop;
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
  if (!d.tls_error.empty()) {
    spdlog::error("parley cannot serve TLS: {}", d.tls_error);
    return false;
  }
  boost::system::error_code ec;
  auto address = asio::ip::make_address(srv.address, ec);
  if (ec) {
    spdlog::error("parley cannot listen: invalid address '{}': {}", srv.address, ec.message());
    return false;
  }
  std::vector<io_loop*> loops;
  for (auto& loop : d.loops)
    loops.push_back(loop.get());
  d.accept_loop = std::make_shared<listener>(std::move(loops), d.ctx);
  d.accept_loop->open(tcp::endpoint{address, srv.port}, ec);
  if (ec) {
    spdlog::error("parley cannot listen on {}:{}: {}", srv.address, srv.port, ec.message());
    d.accept_loop.reset();
    return false;
  }
  d.port = d.accept_loop->local_endpoint().port();
  d.accept_loop->run();
  d.running = true;
  for (auto& loop : d.loops)
    loop->start();
  spdlog::info("parley listening on {}:{}{}", address.to_string(), d.port,
               d.ctx->tls ? " (https and wss only)" : "");
  spdlog::default_logger()->flush();
  std::fflush(stdout);
  return true;
}

uint16_t server::port() const noexcept {
  return impl_->port;
}

std::size_t server::connections() const {
  return impl_->connections();
}

bool server::reload_tls() {
  auto& tls = impl_->ctx->tls;
  if (!tls) {
    spdlog::info("parley has no TLS certificate to reload ([tls] is not set)");
    return false;
  }
  if (auto error = tls->reload()) {
    spdlog::error("parley keeps its TLS certificate: {}", *error);
    return false;
  }
  spdlog::info("parley reloaded its TLS certificate and key; new connections use them");
  return true;
}

void server::stop() {
  auto& d = *impl_;
  if (!d.running)
    return;
  d.running = false;
  d.ctx->stopping = true;
  d.accept_loop->stop();
  for (auto& loop : d.loops)
    loop->close_all(close_code::going_away, "server shutting down");
  auto deadline = std::chrono::steady_clock::now() + d.ctx->cfg.server.shutdown_grace;
  while (d.connections() > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  if (auto left = d.connections(); left > 0)
    spdlog::info("parley stops with {} connection(s) still closing", left);
  // Stopping a loop also cuts its sinks loose: actors pushing later reach no connection.
  for (auto& loop : d.loops)
    loop->stop();
  d.accept_loop.reset();
}

int run_server(const settings& cfg, const protocol::codec_limits& limits, session_spawner spawn) {
  server srv{cfg, limits, std::move(spawn)};
  // Installed before the listener starts, so that a signal arriving during startup is caught
  // instead of killing the process; a dedicated io_context keeps this thread the only waiter.
  asio::io_context signals_ioc{1};
  asio::signal_set signals{signals_ioc, SIGINT, SIGTERM, SIGHUP};
  if (!srv.start())
    return 1;
  std::function<void(const boost::system::error_code&, int)> on_signal =
    [&](const boost::system::error_code& ec, int sig) {
      if (ec)
        return;
      if (sig == SIGHUP) {
        srv.reload_tls();
        signals.async_wait(on_signal);
        return;
      }
      spdlog::info("parley shutting down on signal {}", sig);
    };
  signals.async_wait(on_signal);
  signals_ioc.run();
  srv.stop();
  spdlog::default_logger()->flush();
  return 0;
}

} // namespace parley::net
