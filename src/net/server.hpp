#pragma once

// The network bridge's entry point: an HTTP/WebSocket listener on Boost.Beast that serves web/,
// /healthz and the /ws upgrade, and hands each WebSocket connection to a session actor.

#include "actors/actors.hpp"
#include "auth/identity.hpp"
#include "auth/jwt.hpp"
#include "config/settings.hpp"
#include "protocol/codec.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace parley::net {

/// Starts the session actor for a new WebSocket connection. `who` is what the handshake
/// established: in open mode the validated `?name=` (nullopt: a generated guest name), in jwt mode
/// the verified token's identity (nullopt: the client signs in with a first frame).
using session_spawner =
  std::function<session_actor(frame_sink_ptr sink, std::optional<auth::identity> who)>;

/// The listener and its I/O threads, without signal handling (shutdown_signals adds it). Tests and
/// embedders start one on port 0 and stop it themselves.
class server {
public:
  /// Prepares a server; nothing is bound until start().
  server(const settings& cfg, const protocol::codec_limits& limits, session_spawner spawn,
         std::shared_ptr<const auth::jwt_verifier> verifier = nullptr);

  /// Stops the server if it still runs.
  ~server();

  server(const server&) = delete;
  server& operator=(const server&) = delete;

  /// Binds, starts server.io_threads I/O threads and logs the listening line. False (after
  /// logging why) when it cannot listen.
  bool start();

  /// The port actually bound (0 before start()).
  uint16_t port() const noexcept;

  /// Reads the [tls] files again (SIGHUP): new connections use them, open ones keep theirs. False,
  /// after logging why, when TLS is off or the files are unusable (the old ones then stay).
  bool reload_tls();

  /// WebSocket connections currently alive.
  std::size_t connections() const;

  /// Connections past which upgrades are refused with 503 ([limits] max_connections, resolved).
  std::size_t max_connections() const;

  /// Starts a drain: from now on upgrades are refused with 503, and the connections open now are
  /// closed with 1001 spread over `period`, each close hinting a reconnect delay (drain_schedule).
  /// Returns at once; a drain cannot be undone (restart the server). A second call does nothing.
  void drain(std::chrono::milliseconds period);

  /// True once drain() was called.
  bool draining() const noexcept;

  /// The settings it was made with.
  const settings& config() const noexcept;

  /// Graceful stop: stops accepting, closes every WebSocket connection with 1001, waits up to
  /// server.shutdown_grace for them to end, then stops the I/O threads. Idempotent.
  void stop();

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// SIGINT, SIGTERM and SIGHUP for a server. Construct it before server::start(), so that a signal
/// arriving during startup is caught instead of killing the process.
class shutdown_signals {
public:
  shutdown_signals();
  ~shutdown_signals();

  shutdown_signals(const shutdown_signals&) = delete;
  shutdown_signals& operator=(const shutdown_signals&) = delete;

  /// Blocks until the server should stop, then stops it: the first SIGTERM or SIGINT drains it
  /// over server.drain_period and waits for its connections to end (at most the period plus
  /// server.shutdown_grace); a second one stops at once. SIGHUP reloads the TLS certificate.
  /// Under systemd (NOTIFY_SOCKET) it sends READY=1 first and STOPPING=1 when a shutdown begins.
  /// `on_shutdown` runs on this thread when a shutdown begins (e.g. to tell systemd). Returns 0.
  int wait(server& srv, std::function<void()> on_shutdown = nullptr);

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace parley::net
