// Pure tests of the inbound side: RFC 6455 frame parsing (masking, lengths, fragmentation, control
// frames, limits, UTF-8) and the opening handshake's checks.

#include "net/frame_parser.hpp"
#include "net/websocket_handshake.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <vector>

using namespace parley::net;
namespace http = boost::beast::http;

namespace {

/// Everything a parser reported, in order, as short strings.
struct recorded : frame_events {
  std::vector<std::string> events;
  uint16_t failure = 0;

  void on_text(std::string_view m) override { events.push_back("text:" + std::string{m}); }
  void on_binary() override { events.push_back("binary"); }
  void on_ping(std::string_view p) override { events.push_back("ping:" + std::string{p}); }
  void on_pong() override { events.push_back("pong"); }
  void on_close(uint16_t code, std::string_view reason) override {
    events.push_back("close:" + std::to_string(code) + ":" + std::string{reason});
  }
  void on_failure(uint16_t code, std::string_view) override {
    failure = code;
    events.push_back("failure:" + std::to_string(code));
  }
};

/// A client frame as a browser sends it: masked with `key`.
std::string client_frame(uint8_t first_byte, std::string_view payload, bool masked = true,
                         uint32_t key = 0x37fa213d) {
  std::string out;
  out += static_cast<char>(first_byte);
  auto n = payload.size();
  uint8_t mask_bit = masked ? 0x80 : 0;
  if (n < 126) {
    out += static_cast<char>(mask_bit | n);
  } else if (n <= 0xFFFF) {
    out += static_cast<char>(mask_bit | 126);
    out += static_cast<char>(n >> 8);
    out += static_cast<char>(n & 0xFF);
  } else {
    out += static_cast<char>(mask_bit | 127);
    for (int k = 7; k >= 0; --k)
      out += static_cast<char>((uint64_t(n) >> (8 * k)) & 0xFF);
  }
  if (!masked)
    return out + std::string{payload};
  char k[4] = {char(key >> 24), char(key >> 16), char(key >> 8), char(key)};
  out.append(k, 4);
  for (std::size_t i = 0; i < n; ++i)
    out += static_cast<char>(payload[i] ^ k[i & 3]);
  return out;
}

std::string text(std::string_view payload) {
  return client_frame(0x81, payload);
}

std::string close_body(uint16_t code, std::string_view reason = {}) {
  std::string body{char(code >> 8), char(code & 0xFF)};
  return body + std::string{reason};
}

/// Feeds `bytes` in pieces of `step` as a connection does: incomplete frames are kept and offered
/// again with what follows.
recorded feed_in_steps(const std::string& bytes, std::size_t step, std::size_t max_message = 1 << 20) {
  frame_parser parser{max_message};
  recorded rec;
  std::string pending;
  for (std::size_t off = 0; off < bytes.size(); off += step) {
    pending += bytes.substr(off, step);
    auto used = parser.parse(pending.data(), pending.size(), rec);
    pending.erase(0, used);
  }
  return rec;
}

recorded feed(const std::string& bytes, std::size_t max_message = 1 << 20) {
  return feed_in_steps(bytes, bytes.size() + 1, max_message);
}

} // namespace

TEST_CASE("masked text frames of every length encoding are unmasked and delivered") {
  for (std::size_t n : {0, 1, 125, 126, 127, 65535, 65536, 70000}) {
    CAPTURE(n);
    std::string payload(n, 'a');
    for (std::size_t i = 0; i < n; ++i)
      payload[i] = static_cast<char>('a' + i % 26);
    auto rec = feed(text(payload));
    REQUIRE(rec.events.size() == 1);
    CHECK(rec.events[0] == "text:" + payload);
  }
}

TEST_CASE("frames split at any byte are delivered once complete, in order") {
  auto bytes = text("first") + client_frame(0x89, "p") + text(std::string(300, 'x')) + text("last");
  for (std::size_t step : {1, 2, 3, 7, 64, 1000}) {
    CAPTURE(step);
    auto rec = feed_in_steps(bytes, step);
    REQUIRE(rec.events.size() == 4);
    CHECK(rec.events[0] == "text:first");
    CHECK(rec.events[1] == "ping:p");
    CHECK(rec.events[2] == "text:" + std::string(300, 'x'));
    CHECK(rec.events[3] == "text:last");
  }
}

TEST_CASE("a fragmented text message with a ping between its fragments arrives whole") {
  auto bytes = client_frame(0x01, "hel") + client_frame(0x89, "mid") + client_frame(0x00, "lo ") +
               client_frame(0x80, "world");
  auto rec = feed_in_steps(bytes, 5);
  REQUIRE(rec.events.size() == 2);
  CHECK(rec.events[0] == "ping:mid");
  CHECK(rec.events[1] == "text:hello world");
}

TEST_CASE("binary messages, pongs and a close with code and reason are reported") {
  auto rec = feed(client_frame(0x82, "\x01\x02") + client_frame(0x8A, "") +
                  client_frame(0x88, close_body(1000, "bye")));
  REQUIRE(rec.events.size() == 3);
  CHECK(rec.events[0] == "binary");
  CHECK(rec.events[1] == "pong");
  CHECK(rec.events[2] == "close:1000:bye");
}

TEST_CASE("a close frame without a body reports 1005 and parsing stops after a close") {
  frame_parser parser{1024};
  recorded rec;
  auto bytes = client_frame(0x88, "") + text("after");
  CHECK(parser.parse(bytes.data(), bytes.size(), rec) == bytes.size());
  REQUIRE(rec.events.size() == 1);
  CHECK(rec.events[0] == "close:1005:");
  CHECK(parser.done());
}

TEST_CASE("protocol violations fail the connection with 1002") {
  struct violation {
    const char* what;
    std::string bytes;
  };
  std::vector<violation> cases{
    {"an unmasked client frame", client_frame(0x81, "hi", false)},
    {"a reserved bit", client_frame(0xC1, "hi")},
    {"a reserved data opcode", client_frame(0x83, "hi")},
    {"a reserved control opcode", client_frame(0x8B, "")},
    {"a continuation without a message", client_frame(0x80, "hi")},
    {"a new message inside a fragmented one", client_frame(0x01, "a") + client_frame(0x81, "b")},
    {"a control frame over 125 bytes", client_frame(0x89, std::string(126, 'p'))},
    {"a fragmented control frame", client_frame(0x09, "p")},
    {"a close body of one byte", client_frame(0x88, "x")},
    {"a close code reserved for local use", client_frame(0x88, close_body(1005))},
    {"a close code below 1000", client_frame(0x88, close_body(999))},
    {"a close code above 4999", client_frame(0x88, close_body(5000))},
  };
  for (auto& c : cases) {
    CAPTURE(c.what);
    auto rec = feed(c.bytes);
    CHECK(rec.failure == failure_code::protocol_error);
  }
}

TEST_CASE("a message over the limit fails with 1009 from its header, before its payload arrives") {
  frame_parser parser{100};
  recorded rec;
  auto bytes = text(std::string(101, 'x'));
  // Only the header and mask are offered: the verdict does not wait for the payload.
  parser.parse(bytes.data(), 8, rec);
  CHECK(rec.failure == failure_code::too_big);
  // Fragments count together.
  auto frags = feed(client_frame(0x01, std::string(60, 'a')) + client_frame(0x80, std::string(41, 'b')),
                    100);
  CHECK(frags.failure == failure_code::too_big);
  auto exact = feed(client_frame(0x01, std::string(60, 'a')) + client_frame(0x80, std::string(40, 'b')),
                    100);
  CHECK(exact.failure == 0);
  CHECK(exact.events.size() == 1);
}

TEST_CASE("text that is not UTF-8 fails with 1007, also when split over fragments") {
  CHECK(feed(text("\xC3\x28")).failure == failure_code::invalid_payload);
  CHECK(feed(client_frame(0x88, close_body(1000, "\xFF"))).failure == failure_code::invalid_payload);
  // A character split over two fragments is fine.
  auto split = feed(client_frame(0x01, "caf\xC3") + client_frame(0x80, "\xA9"));
  REQUIRE(split.events.size() == 1);
  CHECK(split.events[0] == "text:caf\xC3\xA9");
}

TEST_CASE("the UTF-8 check refuses overlongs, surrogates, truncation and code points past U+10FFFF") {
  CHECK(is_valid_utf8(""));
  CHECK(is_valid_utf8("plain ascii text that is longer than eight bytes"));
  CHECK(is_valid_utf8("\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80"));  // é € 😀
  CHECK(is_valid_utf8("\xF4\x8F\xBF\xBF"));                      // U+10FFFF
  CHECK_FALSE(is_valid_utf8("\xC0\xAF"));                        // overlong '/'
  CHECK_FALSE(is_valid_utf8("\xE0\x80\xAF"));                    // overlong '/'
  CHECK_FALSE(is_valid_utf8("\xED\xA0\x80"));                    // surrogate U+D800
  CHECK_FALSE(is_valid_utf8("\xF4\x90\x80\x80"));                // U+110000
  CHECK_FALSE(is_valid_utf8("abc\xE2\x82"));                     // truncated
  CHECK_FALSE(is_valid_utf8("\x80"));                            // lone continuation byte
  CHECK_FALSE(is_valid_utf8("\xF8\x88\x80\x80\x80"));            // five-byte form
}

TEST_CASE("the handshake answers RFC 6455's sample key with its sample accept value") {
  CHECK(websocket_accept("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST_CASE("an upgrade needs version 13 (426 otherwise) and a 16-byte base64 key (400 otherwise)") {
  http::request<http::string_body> req{http::verb::get, "/ws", 11};
  req.set(http::field::sec_websocket_version, "13");
  req.set(http::field::sec_websocket_key, "dGhlIHNhbXBsZSBub25jZQ==");
  CHECK_FALSE(check_handshake(req));
  auto res = switching_protocols(req);
  CHECK(res.result() == http::status::switching_protocols);
  CHECK(res[http::field::sec_websocket_accept] == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  CHECK(res[http::field::upgrade] == "websocket");

  auto old = req;
  old.set(http::field::sec_websocket_version, "8");
  CHECK(check_handshake(old).status == http::status::upgrade_required);
  for (const char* key : {"", "short==", "dGhlIHNhbXBsZSBub25jZQ", "dGhlIHNhbXBsZSBub25jZQ=!",
                          "dGhlIHNhbXBsZSBub25jZR=="}) {
    CAPTURE(key);
    auto bad = req;
    bad.set(http::field::sec_websocket_key, key);
    CHECK(check_handshake(bad).status == http::status::bad_request);
  }
}
