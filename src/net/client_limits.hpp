#pragma once

// Limits per client address and for the whole server, checked before a WebSocket upgrade:
//  - concurrent connections per address (HTTP and WebSocket alike),
//  - upgrade requests per address, as a token bucket,
//  - connections in total, below the process's file-descriptor limit.
// Connections are accepted on one thread and live on several I/O threads, so the table has a
// mutex. Each connection holds one connection_slot (RAII): the counts drop when it ends.

#include <boost/asio/ip/address.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>

namespace parley::net {

/// The numbers client_limits enforces; 0 switches a limit off.
struct client_limit_settings {
  std::size_t max_connections_per_address = 64;
  double handshakes_per_second = 10;  ///< token bucket refill per address
  double handshake_burst = 20;        ///< token bucket size per address
  std::size_t max_connections = 0;    ///< connections that may upgrade, over all addresses
  /// Connections over max_connections that are still accepted and answered (503 to upgrades,
  /// /healthz as usual); beyond these a new connection is closed at once.
  std::size_t answer_reserve = 16;
};

class client_limits;

/// One accepted connection's share of the counts; releases it on destruction. Movable, so it
/// travels from the listener to the HTTP session and on to the WebSocket session.
class connection_slot {
public:
  connection_slot() = default;
  ~connection_slot();
  connection_slot(connection_slot&& other) noexcept;
  connection_slot& operator=(connection_slot&& other) noexcept;
  connection_slot(const connection_slot&) = delete;
  connection_slot& operator=(const connection_slot&) = delete;

  /// Counts the connection for `client` (moving it off the address it counted for before, if
  /// any). False when that puts the address over its limit: the connection must be refused.
  bool assign(const boost::asio::ip::address& client);

  /// The address this connection counts for, if any.
  const boost::asio::ip::address* client() const noexcept { return has_client_ ? &client_ : nullptr; }

  /// False when the connection was accepted into the answer reserve: it may not upgrade (503).
  bool within_server_limit() const noexcept { return within_server_limit_; }

  /// False when its address has more connections than allowed: every request gets 429.
  bool within_address_limit() const noexcept { return within_address_limit_; }

private:
  friend class client_limits;
  void release();

  std::shared_ptr<client_limits> owner_;
  boost::asio::ip::address client_;
  bool has_client_ = false;
  bool within_server_limit_ = true;
  bool within_address_limit_ = true;
};

/// The shared table of counts and buckets.
class client_limits : public std::enable_shared_from_this<client_limits> {
public:
  using clock = std::chrono::steady_clock;
  using now_function = std::function<clock::time_point()>;

  explicit client_limits(client_limit_settings cfg, now_function now = clock::now);

  /// Counts a new connection. nullopt when even the answer reserve is full: close it at once.
  std::optional<connection_slot> accept();

  /// Takes one upgrade token of `client`. 0 when granted, else the seconds to wait (Retry-After).
  unsigned take_handshake(const boost::asio::ip::address& client);

  /// Connections counted in total (for tests and logs).
  std::size_t open_connections() const;

  /// Addresses in the table (for tests: it must not grow without bound).
  std::size_t tracked_addresses() const;

  /// Connections counted for `client`.
  std::size_t connections_of(const boost::asio::ip::address& client) const;

  const client_limit_settings& settings() const noexcept { return cfg_; }

private:
  friend class connection_slot;

  struct entry {
    std::size_t connections = 0;
    double tokens = 0;
    clock::time_point refilled;
  };

  struct address_hash {
    std::size_t operator()(const boost::asio::ip::address& a) const;
  };

  bool add_connection(const boost::asio::ip::address& client);
  void remove_connection(const boost::asio::ip::address& client);
  void release_total();
  entry& entry_for(const boost::asio::ip::address& client, clock::time_point now);
  void refill(entry& e, clock::time_point now) const;
  bool removable(const entry& e) const;
  void sweep(clock::time_point now);

  const client_limit_settings cfg_;
  const now_function now_;
  mutable std::mutex mtx_;
  std::size_t total_ = 0;
  std::unordered_map<boost::asio::ip::address, entry, address_hash> table_;
  clock::time_point next_sweep_;
};

/// Raises the process's soft RLIMIT_NOFILE to its hard limit and returns the new soft limit.
std::size_t raise_file_limit();

/// max_connections for a process with `file_limit` descriptors: what is left after a reserve for
/// the database, logs, the event loops and the answer reserve. `configured` (0: automatic) is
/// capped at that.
std::size_t connection_limit(std::size_t configured, std::size_t file_limit,
                             std::size_t answer_reserve);

} // namespace parley::net
