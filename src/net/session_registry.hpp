#pragma once

// The live WebSocket connections of one server, so that shutdown can close them all and wait for
// them. Holds weak references only: a connection ends on its own terms and removes itself.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace parley::net {

class websocket_session;

/// Thread-safe set of live connections.
class session_registry {
public:
  /// Registers a connection; the id is for remove().
  uint64_t add(std::weak_ptr<websocket_session> session);

  /// Forgets a connection (from its destructor).
  void remove(uint64_t id);

  /// Connections registered and not yet removed.
  std::size_t size() const;

  /// Strong references to every connection still alive. Drop them outside any lock a connection's
  /// destructor might take.
  std::vector<std::shared_ptr<websocket_session>> snapshot() const;

private:
  mutable std::mutex mutex_;
  uint64_t next_id_ = 1;
  std::unordered_map<uint64_t, std::weak_ptr<websocket_session>> sessions_;
};

} // namespace parley::net
