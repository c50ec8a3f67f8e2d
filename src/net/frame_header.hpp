#pragma once

// The header of an unmasked server-to-client WebSocket text frame (RFC 6455 section 5.2). Server
// frames carry no mask, so the payload bytes that follow can be shared by every recipient.

#include <array>
#include <cstddef>
#include <cstdint>

namespace parley::net {

/// A complete, final text frame header held inline: 2, 4 or 10 bytes.
struct frame_header {
  std::array<uint8_t, 10> bytes{};
  uint8_t size = 0;
};

/// Encodes the header of a single-frame (FIN) text message carrying `payload_size` bytes.
inline frame_header make_text_header(std::size_t payload_size) noexcept {
  frame_header h;
  h.bytes[0] = 0x81; // FIN | opcode 1 (text)
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

} // namespace parley::net
