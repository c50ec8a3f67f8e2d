#include "net/frame_parser.hpp"

#include "net/frame_header.hpp"

#include <cstring>

namespace parley::net {

namespace {

constexpr std::size_t max_control_payload = 125;
constexpr uint16_t no_status_code = 1005;

/// Unmasks in place, eight bytes at a time where it can.
void unmask(char* p, std::size_t n, const unsigned char key[4]) {
  uint32_t key32;
  std::memcpy(&key32, key, 4);
  uint64_t key64 = (uint64_t{key32} << 32) | key32;
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t chunk;
    std::memcpy(&chunk, p + i, 8);
    chunk ^= key64;
    std::memcpy(p + i, &chunk, 8);
  }
  for (; i < n; ++i)
    p[i] = static_cast<char>(p[i] ^ key[i & 3]);
}

/// Close codes a peer may send (RFC 6455 section 7.4, IANA registry): everything else is a
/// protocol error, including the codes reserved for local use (1005, 1006, 1015).
bool is_sendable_close_code(uint16_t code) {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
         (code >= 3000 && code <= 4999);
}

} // namespace

bool is_valid_utf8(std::string_view text) noexcept {
  auto s = reinterpret_cast<const unsigned char*>(text.data());
  std::size_t n = text.size();
  std::size_t i = 0;
  while (i < n) {
    // Chat text is mostly ASCII: skip it eight bytes at a time.
    while (i + 8 <= n) {
      uint64_t chunk;
      std::memcpy(&chunk, s + i, 8);
      if (chunk & 0x8080808080808080ull)
        break;
      i += 8;
    }
    if (i >= n)
      break;
    unsigned c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t len;
    uint32_t cp;
    uint32_t min;
    if ((c & 0xE0) == 0xC0) {
      len = 2, cp = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3, cp = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4, cp = c & 0x07, min = 0x10000;
    } else {
      return false;
    }
    if (n - i < len)
      return false;
    for (std::size_t k = 1; k < len; ++k) {
      if ((s[i + k] & 0xC0) != 0x80)
        return false;
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += len;
  }
  return true;
}

std::size_t frame_parser::parse(char* data, std::size_t size, frame_events& events) {
  std::size_t off = 0;
  while (!done_ && !paused_) {
    std::size_t avail = size - off;
    if (avail < 2)
      break;
    auto b0 = static_cast<uint8_t>(data[off]);
    auto b1 = static_cast<uint8_t>(data[off + 1]);
    if (b0 & 0x70) {
      fail(events, failure_code::protocol_error, "reserved bits set without an extension");
      break;
    }
    if (!(b1 & 0x80)) {
      fail(events, failure_code::protocol_error, "client frames must be masked");
      break;
    }
    std::size_t head = 2;
    uint64_t len = b1 & 0x7F;
    if (len == 126) {
      if (avail < 4)
        break;
      len = (uint64_t{static_cast<uint8_t>(data[off + 2])} << 8) | static_cast<uint8_t>(data[off + 3]);
      head = 4;
    } else if (len == 127) {
      if (avail < 10)
        break;
      len = 0;
      for (int k = 0; k < 8; ++k)
        len = (len << 8) | static_cast<uint8_t>(data[off + 2 + k]);
      if (len >> 63) {
        fail(events, failure_code::protocol_error, "frame length has its top bit set");
        break;
      }
      head = 10;
    }
    // Refuse an oversized frame from its header, before buffering any of it.
    bool control = (b0 & 0x08) != 0;
    if (!control && len > max_message_ - message_bytes_) {
      fail(events, failure_code::too_big, "message too big");
      break;
    }
    if (control && len > max_control_payload) {
      fail(events, failure_code::protocol_error, "control frame longer than 125 bytes");
      break;
    }
    if (avail < head + 4 + len)
      break;
    unsigned char key[4];
    std::memcpy(key, data + off + head, 4);
    char* payload = data + off + head + 4;
    auto n = static_cast<std::size_t>(len);
    unmask(payload, n, key);
    off += head + 4 + n;
    if (!on_frame(b0, payload, n, events))
      break;
  }
  return done_ ? size : off;
}

bool frame_parser::on_frame(uint8_t first, char* payload, std::size_t n, frame_events& events) {
  bool fin = (first & 0x80) != 0;
  auto op = static_cast<opcode>(first & 0x0F);
  switch (op) {
    case opcode::text:
    case opcode::binary:
      if (kind_ != message_kind::none) {
        fail(events, failure_code::protocol_error, "new message before the last one finished");
        return false;
      }
      kind_ = op == opcode::text ? message_kind::text : message_kind::binary;
      message_bytes_ = n;
      if (!fin) {
        if (kind_ == message_kind::text)
          message_.assign(payload, n);
        return true;
      }
      break;
    case opcode::continuation:
      if (kind_ == message_kind::none) {
        fail(events, failure_code::protocol_error, "continuation without a message");
        return false;
      }
      message_bytes_ += n;
      if (kind_ == message_kind::text)
        message_.append(payload, n);
      if (!fin)
        return true;
      // The whole message now sits in message_.
      payload = message_.data();
      n = message_.size();
      break;
    case opcode::close: {
      if (!fin) {
        fail(events, failure_code::protocol_error, "fragmented control frame");
        return false;
      }
      if (n == 1) {
        fail(events, failure_code::protocol_error, "close frame with a one-byte body");
        return false;
      }
      uint16_t code = no_status_code;
      std::string_view reason;
      if (n >= 2) {
        code = static_cast<uint16_t>((static_cast<uint8_t>(payload[0]) << 8) |
                                     static_cast<uint8_t>(payload[1]));
        reason = std::string_view{payload + 2, n - 2};
        if (!is_sendable_close_code(code)) {
          fail(events, failure_code::protocol_error, "invalid close code");
          return false;
        }
        if (!is_valid_utf8(reason)) {
          fail(events, failure_code::invalid_payload, "close reason is not UTF-8");
          return false;
        }
      }
      done_ = true;
      events.on_close(code, reason);
      return false;
    }
    case opcode::ping:
    case opcode::pong:
      if (!fin) {
        fail(events, failure_code::protocol_error, "fragmented control frame");
        return false;
      }
      if (op == opcode::ping)
        events.on_ping(std::string_view{payload, n});
      else
        events.on_pong();
      return !done_;
    default:
      fail(events, failure_code::protocol_error, "reserved opcode");
      return false;
  }
  // A complete data message.
  auto kind = kind_;
  kind_ = message_kind::none;
  message_bytes_ = 0;
  if (kind == message_kind::binary) {
    events.on_binary();
  } else if (!is_valid_utf8(std::string_view{payload, n})) {
    fail(events, failure_code::invalid_payload, "text message is not UTF-8");
  } else {
    events.on_text(std::string_view{payload, n});
  }
  message_.clear();
  return !done_;
}

void frame_parser::fail(frame_events& events, uint16_t code, std::string_view why) {
  done_ = true;
  events.on_failure(code, why);
}

void frame_parser::shrink() noexcept {
  if (message_.empty() && message_.capacity() > 4096)
    std::string{}.swap(message_);
}

} // namespace parley::net
