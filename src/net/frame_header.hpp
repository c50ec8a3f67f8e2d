#pragma once

// Headers of unmasked server-to-client WebSocket frames (RFC 6455 section 5.2). Server frames carry
// no mask, so the payload bytes that follow can be shared by every recipient.

#include <array>
#include <cstddef>
#include <cstdint>

namespace parley::net {

/// The opcodes Parley sends and receives (RFC 6455 section 5.2).
enum class opcode : uint8_t {
  continuation = 0x0,
  text = 0x1,
  binary = 0x2,
  close = 0x8,
  ping = 0x9,
  pong = 0xA,
};

/// A complete, final (FIN) frame header held inline: 2, 4 or 10 bytes.
struct frame_header {
  std::array<uint8_t, 10> bytes{};
  uint8_t size = 0;
};

/// Encodes the header of a single-frame message with this opcode carrying `payload_size` bytes.
inline frame_header make_header(opcode op, std::size_t payload_size) noexcept {
  frame_header h;
  h.bytes[0] = static_cast<uint8_t>(0x80 | static_cast<uint8_t>(op));
  if (payload_size < 126) {
    h.bytes[1] = static_cast<uint8_t>(payload_size);
    h.size = 2;
  } else if (payload_size <= 0xFFFF) {
    h.bytes[1] = 126;
    h.bytes[2] = static_cast<uint8_t>(payload_size >> 8);
    h.bytes[3] = static_cast<uint8_t>(payload_size);
    h.size = 4;
  } else {
    h.bytes[1] = 127;
    auto n = static_cast<uint64_t>(payload_size);
    for (int i = 0; i < 8; ++i)
      h.bytes[2 + i] = static_cast<uint8_t>(n >> (8 * (7 - i)));
    h.size = 10;
  }
  return h;
}

/// The header of a text frame (every data frame Parley sends is one).
inline frame_header make_text_header(std::size_t payload_size) noexcept {
  return make_header(opcode::text, payload_size);
}

} // namespace parley::net
