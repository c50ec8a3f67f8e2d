#pragma once

// What every connection of one server shares: settings, codec limits and the session spawner.
// Immutable after start, so it needs no lock.

#include "config/settings.hpp"
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
  /// The TLS certificate and key when [tls] is configured, else null.
  std::shared_ptr<tls_credentials> tls;
  /// Set once shutdown began: keep-alive HTTP connections may no longer upgrade. The one field
  /// that changes after start, hence mutable and atomic.
  mutable std::atomic<bool> stopping{false};
};

using server_context_ptr = std::shared_ptr<const server_context>;

} // namespace parley::net
