#include "net/server.hpp"

#include "metrics/server_metrics.hpp"
#include "net/listener.hpp"
#include "net/server_context.hpp"
#include "net/io_loop.hpp"
#include "net/service_notify.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <spdlog/spdlog.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <functional>
#include <random>
#include <thread>
#include <vector>

namespace parley::net {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

// Refused requests are logged as one summary line per this interval at most.
constexpr auto refusal_report_interval = std::chrono::seconds(10);

// The connection limits with max_connections resolved against the file-descriptor limit, which
// is raised to its hard limit first: accept() must never fail for lack of descriptors.
client_limit_settings client_limits_for(const limits_settings& cfg) {
  client_limit_settings out;
  out.max_connections_per_address = cfg.max_connections_per_address;
  out.handshakes_per_second = cfg.handshakes_per_second;
  out.handshake_burst = cfg.handshake_burst;
  auto file_limit = raise_file_limit();
  out.max_connections = connection_limit(cfg.max_connections, file_limit, out.answer_reserve);
  if (cfg.max_connections > out.max_connections)
    spdlog::warn("limits.max_connections={} exceeds what {} file descriptors allow: using {}",
                 cfg.max_connections, file_limit, out.max_connections);
  return out;
}

} // namespace

struct server::impl {
  impl(const settings& cfg, const protocol::codec_limits& limits, session_spawner spawn,
       std::shared_ptr<const auth::jwt_verifier> verifier) {
    auto c = std::make_shared<server_context>();
    c->cfg = cfg;
    c->limits = limits;
    c->spawn = std::move(spawn);
    c->verifier = std::move(verifier);
    if (cfg.tls.enabled()) {
      try {
        c->tls = std::make_shared<tls_credentials>(cfg.tls.certificate, cfg.tls.key);
      } catch (const std::exception& e) {
        tls_error = e.what();
      }
    }
    c->proxies = trusted_proxies{cfg.server.trusted_proxies, invalid_proxies};
    c->clients = std::make_shared<client_limits>(client_limits_for(cfg.limits));
    c->refusals = std::make_shared<refusal_log>("requests", refusal_report_interval,
                                                refusal_log::clock::now,
                                                &metrics::server_metrics().handshakes_refused);
    c->bad_frames = std::make_shared<refusal_log>("connections for bad frames", refusal_report_interval);
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

  /// Reports the refusals counted since the last report, then waits for the next.
  void schedule_refusal_report() {
    refusal_timer->expires_after(refusal_report_interval);
    refusal_timer->async_wait([this](boost::system::error_code ec) {
      if (ec)
        return;
      ctx->refusals->report();
      ctx->bad_frames->report();
      schedule_refusal_report();
    });
  }

  std::vector<std::string> invalid_proxies;  ///< filled before ctx: refuses to start
  std::shared_ptr<const server_context> ctx;
  std::string tls_error;  ///< why the TLS files could not be loaded
  std::vector<std::unique_ptr<io_loop>> loops;
  std::shared_ptr<listener> accept_loop;
  std::unique_ptr<asio::steady_timer> refusal_timer;
  uint16_t port = 0;
  bool running = false;
};

server::server(const settings& cfg, const protocol::codec_limits& limits, session_spawner spawn,
               std::shared_ptr<const auth::jwt_verifier> verifier)
  : impl_(std::make_unique<impl>(cfg, limits, std::move(spawn), std::move(verifier))) {
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
  if (!d.invalid_proxies.empty()) {
    std::string entries;
    for (const auto& entry : d.invalid_proxies)
      entries += (entries.empty() ? "'" : ", '") + entry + "'";
    spdlog::error("parley cannot start: invalid server.trusted_proxies entries: {}", entries);
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
  d.refusal_timer = std::make_unique<asio::steady_timer>(d.loops.front()->context());
  d.schedule_refusal_report();
  for (auto& loop : d.loops)
    loop->start();
  const auto& limits = d.ctx->clients->settings();
  spdlog::info("parley limits: {} connections ({} more answered), per address {} connections "
               "and {}/s handshakes (burst {}); 0 means no limit",
               limits.max_connections, limits.answer_reserve, limits.max_connections_per_address,
               limits.handshakes_per_second, limits.handshake_burst);
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

std::size_t server::max_connections() const {
  return impl_->ctx->clients->settings().max_connections;
}

void server::drain(std::chrono::milliseconds period) {
  auto& d = *impl_;
  // Only the flag is shared with other threads (the admin listener calls this): a drain posted to
  // loops that have not started runs when they start; to stopped ones, never.
  if (d.ctx->draining.exchange(true))
    return;
  spdlog::info("parley draining: {} connection(s) close over {} ms; new connections get 503",
               d.connections(), period.count());
  std::random_device seeds;
  for (auto& loop : d.loops)
    loop->drain(period, seeds());
}

const settings& server::config() const noexcept {
  return impl_->ctx->cfg;
}

bool server::draining() const noexcept {
  return impl_->ctx->draining;
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
  d.refusal_timer.reset();  // its loop's thread has ended
  for (auto* log : {d.ctx->refusals.get(), d.ctx->bad_frames.get()})
    if (auto line = log->take_summary_now())
      spdlog::warn("{}", *line);
  d.accept_loop.reset();
}

struct shutdown_signals::impl {
  // A dedicated io_context keeps this thread the only one waiting for signals.
  asio::io_context ioc{1};
  asio::signal_set signals{ioc, SIGINT, SIGTERM, SIGHUP};
};

shutdown_signals::shutdown_signals() : impl_(std::make_unique<impl>()) {
  // nop
}

shutdown_signals::~shutdown_signals() = default;

int shutdown_signals::wait(server& srv, std::function<void()> on_shutdown) {
  auto& d = *impl_;
  const auto& cfg = srv.config();
  asio::steady_timer poll{d.ioc};
  std::chrono::steady_clock::time_point deadline;
  bool shutting_down = false;
  notify_service_manager("READY=1");  // systemd's Type=notify: the port accepts connections now

  // While draining: done once every connection has ended, or when the period and grace are over.
  std::function<void()> watch_drain = [&] {
    poll.expires_after(std::chrono::milliseconds(50));
    poll.async_wait([&](const boost::system::error_code& ec) {
      if (ec)
        return;
      if (srv.connections() == 0 || std::chrono::steady_clock::now() >= deadline) {
        d.ioc.stop();
        return;
      }
      watch_drain();
    });
  };
  std::function<void(const boost::system::error_code&, int)> on_signal =
    [&](const boost::system::error_code& ec, int sig) {
      if (ec)
        return;
      if (sig == SIGHUP) {
        srv.reload_tls();
      } else if (shutting_down) {
        spdlog::info("parley stopping now on a second signal {}", sig);
        d.ioc.stop();
        return;
      } else {
        shutting_down = true;
        notify_service_manager("STOPPING=1");
        spdlog::info("parley shutting down on signal {} (a second one stops at once)", sig);
        if (on_shutdown)
          on_shutdown();
        auto period = std::chrono::duration_cast<std::chrono::milliseconds>(cfg.server.drain_period);
        deadline = std::chrono::steady_clock::now() + period + cfg.server.shutdown_grace;
        srv.drain(period);
        watch_drain();
      }
      d.signals.async_wait(on_signal);
    };
  d.signals.async_wait(on_signal);
  d.ioc.run();
  srv.stop();
  spdlog::default_logger()->flush();
  return 0;
}

} // namespace parley::net
