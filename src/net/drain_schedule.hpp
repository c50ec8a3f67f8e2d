#pragma once

// How a draining node lets its connections go: not all at once, which would send every client
// back in the same second (to the other nodes, or to this one after a restart), but spread evenly
// over the drain period, each close carrying a reconnect delay that spreads the returns further.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

namespace parley::net {

/// The pacing of one drain over the connections open when it began. Takes time as an argument,
/// so it is tested without sockets or clocks.
class drain_schedule {
public:
  using duration = std::chrono::steady_clock::duration;

  drain_schedule(std::size_t connections, duration period) : total_(connections), period_(period) {}

  /// Connections that should have been closed `elapsed` after the drain began: the k-th is due
  /// at period * k / total, so the last one goes at the end of the period (all of them at once
  /// when the period is zero).
  std::size_t due(duration elapsed) const noexcept;

  /// True once every connection is due.
  bool over(duration elapsed) const noexcept { return elapsed >= period_ || total_ == 0; }

  /// How long to wait before checking again: one close's share of the period, between 5 and 100 ms.
  duration step() const noexcept;

  /// The reconnect delay hinted to a closed client, for `random01` uniform in [0, 1): uniform
  /// over the period, so that returns spread over as long again as the closes did.
  std::chrono::milliseconds reconnect_delay(double random01) const noexcept;

  std::size_t total() const noexcept { return total_; }

private:
  std::size_t total_;
  duration period_;
};

/// The close reason of a drained connection: readable, and parsed by parley-client.js
/// ("reconnect_after_ms=<n>"; docs/protocol.md). Well under the 123 bytes a reason may have.
std::string drain_close_reason(std::chrono::milliseconds reconnect_delay);

} // namespace parley::net
