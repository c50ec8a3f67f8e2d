#pragma once

// The one seam between actors and sockets. Actors push ready-to-write frames into a connection's
// sink; the network layer implements it with a bounded queue and gather writes. Actors never see a
// socket, and the network layer never sees room or presence state.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace parley {

/// The payload of one WebSocket text frame, encoded once and shared read-only by every recipient.
using frame = std::shared_ptr<const std::string>;

/// Wraps an encoded payload for sharing.
inline frame make_frame(std::string payload) {
  return std::make_shared<const std::string>(std::move(payload));
}

/// How a frame may be treated when its connection falls behind.
enum class frame_priority : uint8_t {
  droppable,  ///< typing and presence: dropped first once the queue passes its soft mark
  essential,  ///< replies and chat messages: never dropped; the connection closes instead
};

/// WebSocket close codes Parley uses. 4xxx codes are Parley's own; docs/protocol.md says which ones
/// mean "reconnect" and which mean "do not".
namespace close_code {
inline constexpr uint16_t normal = 1000;
inline constexpr uint16_t going_away = 1001;      ///< server shutting down: reconnect
inline constexpr uint16_t too_big = 1009;         ///< frame over the hard limit
inline constexpr uint16_t internal_error = 1011;  ///< reconnect
inline constexpr uint16_t slow_consumer = 4000;   ///< outbound queue overflowed: reconnect and recover
inline constexpr uint16_t invalid_name = 4001;    ///< the ?name= is invalid: do not reconnect unchanged
inline constexpr uint16_t abuse = 4002;           ///< repeated bad input or rate limiting: do not reconnect
inline constexpr uint16_t unauthenticated = 4401; ///< no valid token in time: get a token, then reconnect
inline constexpr uint16_t banned = 4403;          ///< banned from the server: do not reconnect
inline constexpr uint16_t reauthenticate = 4408;  ///< the token expired unrefreshed: new token, reconnect
} // namespace close_code

/// The outbound side of one client connection, as actors see it. Thread-safe.
class frame_sink {
public:
  virtual ~frame_sink() = default;

  /// Queues one text frame. Never blocks and never writes to the socket from the caller's thread.
  /// Returns false when the frame was not queued: a droppable frame past the soft mark, or a
  /// connection that is closing or gone. Rooms use it to resend presence state that was dropped.
  virtual bool push(const frame& payload, frame_priority priority) = 0;

  /// Sends a close frame with this code after what is already queued, then ends the connection.
  virtual void close(uint16_t code, std::string_view reason) = 0;

  /// The session actor took one of the connection's inbound frames from its mailbox. The network
  /// layer stops reading a connection whose session is too far behind, and reads again once the
  /// session has caught up: this is how it learns that (back-pressure into TCP).
  virtual void inbound_taken() {}

  /// The client's address as the connection limits count it (an IPv6 client by its /64), for the
  /// admin API; empty when unknown. Set before the session actor starts, constant afterwards.
  virtual std::string client_address() const { return {}; }
};

using frame_sink_ptr = std::shared_ptr<frame_sink>;

} // namespace parley
