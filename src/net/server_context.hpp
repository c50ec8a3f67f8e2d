#pragma once

// What every connection of one server shares: settings, codec limits and the session spawner.
// Immutable after start, so it needs no lock.

#include "config/settings.hpp"
#include "net/client_address.hpp"
#include "net/client_limits.hpp"
#include "net/refusal_log.hpp"
#include "net/server.hpp"
#include "protocol/codec.hpp"
#include "net/tls_context.hpp"

#include <atomic>
#include <memory>

namespace parley::net {

/// Shared, read-only state of one server.
struct server_context {
  settings cfg;
  protocol::codec_limits limits;
  session_spawner spawn;
  /// jwt mode: verifies a token offered at the handshake. Null in open mode.
  std::shared_ptr<const auth::jwt_verifier> verifier;
  /// The TLS certificate and key when [tls] is configured, else null.
  std::shared_ptr<tls_credentials> tls;
  /// Set once shutdown began: keep-alive HTTP connections may no longer upgrade. The one field
  /// that changes after start, hence mutable and atomic.
  mutable std::atomic<bool> stopping{false};
  /// Set once a drain began: upgrades are refused with 503 from then on.
  mutable std::atomic<bool> draining{false};
  /// Limits per client address and in total, and the refusal counts: both lock internally.
  trusted_proxies proxies;
  std::shared_ptr<client_limits> clients;
  std::shared_ptr<refusal_log> refusals;
  /// WebSocket connections failed for breaking the protocol, by close code: summarised the same way.
  std::shared_ptr<refusal_log> bad_frames;
};

using server_context_ptr = std::shared_ptr<const server_context>;

} // namespace parley::net
