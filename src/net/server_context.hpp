#pragma once

// What every connection of one server shares: settings, codec limits, the session spawner and the
// registry of live WebSocket connections. Immutable after start, so it needs no lock.

#include "config/settings.hpp"
#include "net/server.hpp"
#include "net/session_registry.hpp"
#include "protocol/codec.hpp"

#include <atomic>
#include <memory>

namespace parley::net {

/// Shared, read-only state of one server.
struct server_context {
  settings cfg;
  protocol::codec_limits limits;
  session_spawner spawn;
  std::shared_ptr<session_registry> registry = std::make_shared<session_registry>();
  /// Set once shutdown began: keep-alive HTTP connections may no longer upgrade. The one field
  /// that changes after start, hence mutable and atomic.
  mutable std::atomic<bool> stopping{false};
};

using server_context_ptr = std::shared_ptr<const server_context>;

} // namespace parley::net
