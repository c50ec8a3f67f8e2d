#pragma once

// The network bridge's entry point: an HTTP/WebSocket listener on Boost.Beast that serves web/,
// /healthz and the /ws upgrade, and hands each WebSocket connection to a session actor.

#include "actors/actors.hpp"
#include "auth/identity.hpp"
#include "auth/jwt.hpp"
#include "config/settings.hpp"
#include "protocol/codec.hpp"

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

class server;

/// What run_server's caller attaches to the running server (main.cpp: the admin listener).
struct server_attachment {
  /// Called once the server listens; false stops it again (run_server then returns 1).
  std::function<bool(server&)> started;
  /// Called when shutdown begins, before the server stops (the attachment must let go of it).
  std::function<void()> stopping;
};

/// Runs the listener until SIGINT or SIGTERM (SIGHUP reloads the TLS certificate), then stops accepting, closes every connection with
/// 1001 (waiting up to server.shutdown_grace for close handshakes) and returns 0. Returns non-zero
/// when it cannot listen. Logs "parley listening on <address>:<port>" once accepting (port 0 in
/// the settings picks a free port; the log line names the real one).
/// `verifier` checks tokens offered at the handshake (jwt mode); null in open mode.
int run_server(const settings& cfg, const protocol::codec_limits& limits, session_spawner spawn,
               std::shared_ptr<const auth::jwt_verifier> verifier = nullptr,
               server_attachment attach = {});

/// The listener and its I/O threads without the signal handling: run_server is one of these plus
/// a wait for SIGINT/SIGTERM. Tests and embedders start one on port 0 and stop it themselves.
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

  /// Connections allowed in total ([limits] max_connections, resolved against the fd limit).
  std::size_t max_connections() const;

  /// Graceful stop: stops accepting, closes every WebSocket connection with 1001, waits up to
  /// server.shutdown_grace for them to end, then stops the I/O threads. Idempotent.
  void stop();

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace parley::net
