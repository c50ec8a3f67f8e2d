#pragma once

// The one seam between actors and sockets. Actors push ready-to-write frames into a connection's
// sink; the network layer implements it with a bounded queue and gather writes. Actors never see a
// socket, and the network layer never sees room or presence state.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace parley {

/// What a frame is, for the metrics: frames dropped past the soft mark are counted by class.
enum class frame_class : uint8_t {
  other,     ///< replies, errors, moderation notices, ...
  message,   ///< a chat message broadcast by its room
  typing,    ///< a typing indicator (droppable)
  presence,  ///< presence_diff or presence_state (droppable)
};

/// The label value of a frame class ("other", "message", "typing", "presence").
inline const char* to_string(frame_class cls) {
  switch (cls) {
    case frame_class::message:
      return "message";
    case frame_class::typing:
      return "typing";
    case frame_class::presence:
      return "presence";
    case frame_class::other:
      break;
  }
  return "other";
}

/// The payload of one WebSocket text frame, encoded once and shared read-only by every recipient,
/// with what the metrics need to know about it. It *is* the payload string (derived from it), so
/// readers treat a frame as a `std::shared_ptr<const std::string>`; only the write path and the
/// metrics read the two extra fields. Always made by make_frame (never deleted through a
/// `std::string*`: shared_ptr keeps the real type's deleter).
struct encoded_frame : std::string {
  using clock = std::chrono::steady_clock;

  encoded_frame(std::string payload, frame_class cls, clock::time_point accepted_at)
    : std::string(std::move(payload)), kind(cls), accepted(accepted_at) {
    // nop
  }

  frame_class kind = frame_class::other;
  /// When the message it carries was accepted (committed); the epoch (zero) for any other frame.
  /// Written once by the room that broadcasts it; the write path observes accept-to-write latency.
  clock::time_point accepted{};
};

using frame = std::shared_ptr<const encoded_frame>;

/// Wraps an encoded payload for sharing.
inline frame make_frame(std::string payload, frame_class cls = frame_class::other,
                        encoded_frame::clock::time_point accepted = {}) {
  return std::make_shared<const encoded_frame>(std::move(payload), cls, accepted);
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
