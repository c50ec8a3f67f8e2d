#pragma once

// Server-side parsing of client WebSocket frames (RFC 6455 section 5): masking, fragmentation,
// control frames, size limit, UTF-8 of text and close reasons. Pure: bytes in, events out, so that
// every rule is tested without a socket. The connection reads into a buffer shared by all the
// connections of its I/O thread and keeps only the bytes of an incomplete frame for itself.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace parley::net {

/// What a parser reports; implemented by the connection.
class frame_events {
public:
  /// A complete text message (valid UTF-8). The view is valid during the call only.
  virtual void on_text(std::string_view message) = 0;
  /// A complete binary message (its bytes are not kept: the protocol is text only).
  virtual void on_binary() = 0;
  /// A ping; the view (its payload, at most 125 bytes) is valid during the call only.
  virtual void on_ping(std::string_view payload) = 0;
  /// A pong (an answer to a keep-alive ping).
  virtual void on_pong() = 0;
  /// The peer's close frame: its code (1005 when it carried none) and reason. Parsing stops.
  virtual void on_close(uint16_t code, std::string_view reason) = 0;
  /// The peer broke the protocol: fail the connection with this close code. Parsing stops.
  virtual void on_failure(uint16_t code, std::string_view why) = 0;

protected:
  ~frame_events() = default;
};

/// Close codes for protocol failures (RFC 6455 section 7.4.1).
namespace failure_code {
inline constexpr uint16_t protocol_error = 1002;
inline constexpr uint16_t invalid_payload = 1007;
inline constexpr uint16_t too_big = 1009;
} // namespace failure_code

/// True if `text` is well-formed UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF).
bool is_valid_utf8(std::string_view text) noexcept;

/// Parses the frames of one connection. Keeps the message being assembled from fragments; the
/// caller keeps the bytes of an incomplete frame and offers them again with what follows.
class frame_parser {
public:
  /// `max_message_bytes` bounds a message (all its fragments): beyond it, failure 1009.
  explicit frame_parser(std::size_t max_message_bytes) : max_message_(max_message_bytes) {}

  /// Parses every complete frame in [data, data + size), unmasking in place, and reports it.
  /// Returns how many bytes were consumed: the rest starts an incomplete frame, or follows the
  /// frame during which pause() was called. After on_close or on_failure nothing more is parsed and
  /// every call consumes everything.
  std::size_t parse(char* data, std::size_t size, frame_events& events);

  /// Called from an event: parse() returns right after this frame (the reader is over its limit).
  void pause() noexcept { paused_ = true; }

  /// Lets parse() go on again.
  void resume() noexcept { paused_ = false; }

  /// True between pause() and resume().
  bool paused() const noexcept { return paused_; }

  /// True once a close frame or a failure was reported.
  bool done() const noexcept { return done_; }

  /// Gives back the memory of a long fragmented message once it has been delivered.
  void shrink() noexcept;

private:
  enum class message_kind : uint8_t { none, text, binary };

  bool on_frame(uint8_t first, char* payload, std::size_t n, frame_events& events);
  void fail(frame_events& events, uint16_t code, std::string_view why);

  std::size_t max_message_;
  std::string message_;            ///< a fragmented text message being assembled
  std::size_t message_bytes_ = 0;  ///< bytes of the current message so far (text or binary)
  message_kind kind_ = message_kind::none;
  bool done_ = false;
  bool paused_ = false;
};

} // namespace parley::net
