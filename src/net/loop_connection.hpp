#pragma once

// What an I/O loop needs from each of its connections, whatever stream they run on (plain TCP or
// TLS): write what is queued, check deadlines, close on shutdown.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace parley::net {

/// A connection as its io_loop and wake_list see it. Every call happens on the loop's thread.
class loop_connection {
public:
  using clock_type = std::chrono::steady_clock;

  virtual ~loop_connection() = default;

  /// Writes what the connection's sink holds, and resumes reading if its session caught up.
  virtual void flush() = 0;

  /// The loop's periodic check: keep-alive ping, idle timeout, and the writer's deadlines.
  virtual void check_deadlines(clock_type::time_point now) = 0;

  /// Queues a close frame behind what is already queued (server shutdown).
  virtual void close(uint16_t code, std::string_view reason) = 0;

  /// True once a close is under way (queued, sent or received): a drain skips it.
  virtual bool closing() const = 0;

  /// The loop has stopped for good: let go of what keeps the connection alive besides its pending
  /// operations (a connection that paused reading has none).
  virtual void release() = 0;

  /// The loop's bookkeeping: this connection's index in its list.
  std::size_t loop_slot = 0;
};

} // namespace parley::net
