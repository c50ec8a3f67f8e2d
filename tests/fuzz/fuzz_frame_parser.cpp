// Fuzzes the WebSocket frame parser (src/net/frame_parser.cpp) with the byte stream a client sends.
//
// Input: two selector bytes, then the stream.
//   byte 0: the message limit. Odd: the server's 64 KiB (connection.max_frame_bytes); even: a small
//           limit (0-254), so that "too big" across fragments is reachable with short inputs.
//   byte 1: how the second feeding chops the stream into reads (1-256 bytes each).
//
// The stream is parsed three ways: all at once, split at one point derived from its length, and in
// reads of byte-1 size, each fed the way websocket_session::consume() does (the unconsumed tail of
// an incomplete frame is kept and offered again with what follows). Checked every time:
//   - parse() never reports consuming more than it was given, and consumes everything once done;
//   - nothing is reported after a close or a failure;
//   - text messages are valid UTF-8 and within the limit, pings carry at most 125 bytes;
//   - every feeding reports exactly the same events in the same order.

#include "fuzz_check.hpp"

#include "net/frame_parser.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

using parley::net::frame_events;
using parley::net::frame_parser;

constexpr std::size_t server_max_frame_bytes = 65536;  // config.ini: connection.max_frame_bytes

/// Records every event as a string and checks what each one may carry.
class recorder final : public frame_events {
public:
  explicit recorder(std::size_t max_message) : max_message_(max_message) {}

  std::vector<std::string> events;

  void on_text(std::string_view message) override {
    check_open();
    FUZZ_CHECK(message.size() <= max_message_);
    FUZZ_CHECK(parley::net::is_valid_utf8(message));
    events.push_back("text:" + std::string{message});
  }
  void on_binary() override {
    check_open();
    events.emplace_back("binary");
  }
  void on_ping(std::string_view payload) override {
    check_open();
    FUZZ_CHECK(payload.size() <= 125);
    events.push_back("ping:" + std::string{payload});
  }
  void on_pong() override {
    check_open();
    events.emplace_back("pong");
  }
  void on_close(uint16_t code, std::string_view reason) override {
    check_open();
    FUZZ_CHECK(parley::net::is_valid_utf8(reason));
    FUZZ_CHECK(reason.size() <= 123);
    finished_ = true;
    events.push_back("close:" + std::to_string(code) + ":" + std::string{reason});
  }
  void on_failure(uint16_t code, std::string_view why) override {
    check_open();
    finished_ = true;
    events.push_back("failure:" + std::to_string(code) + ":" + std::string{why});
  }

private:
  void check_open() const { FUZZ_CHECK(!finished_); }

  std::size_t max_message_;
  bool finished_ = false;
};

/// One parse() call with its consumption invariants.
std::size_t parse_checked(frame_parser& parser, char* data, std::size_t size, recorder& events) {
  std::size_t used = parser.parse(data, size, events);
  FUZZ_CHECK(used <= size);
  if (parser.done())
    FUZZ_CHECK(used == size);
  return used;
}

/// Feeds `stream` in reads of the given sizes, keeping partial frames as the connection does.
std::vector<std::string> feed(const std::string& stream, const std::vector<std::size_t>& reads,
                              std::size_t max_message) {
  frame_parser parser{max_message};
  recorder events{max_message};
  std::string partial;
  std::size_t pos = 0;
  for (std::size_t n : reads) {
    // Each read lands in a fresh buffer, as the I/O thread's shared buffer is reused per read.
    std::string buffer = stream.substr(pos, n);
    pos += buffer.size();
    if (parser.done())
      continue;
    if (partial.empty()) {
      std::size_t used = parse_checked(parser, buffer.data(), buffer.size(), events);
      if (used < buffer.size())
        partial.assign(buffer, used, std::string::npos);
    } else {
      partial += buffer;
      std::size_t used = parse_checked(parser, partial.data(), partial.size(), events);
      partial.erase(0, used);
    }
    parser.shrink();
  }
  FUZZ_CHECK(pos == stream.size());
  // Whatever is left must be an incomplete frame: offering it again alone reports nothing new.
  if (!parser.done() && !partial.empty()) {
    std::size_t before = events.events.size();
    std::size_t used = parse_checked(parser, partial.data(), partial.size(), events);
    FUZZ_CHECK(used == 0);
    FUZZ_CHECK(events.events.size() == before);
  }
  return std::move(events.events);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  if (size < 2)
    return 0;
  std::size_t max_message = (data[0] & 1) ? server_max_frame_bytes : data[0] >> 1;
  std::size_t chunk = std::size_t{data[1]} + 1;
  std::string stream{reinterpret_cast<const char*>(data + 2), size - 2};

  auto whole = feed(stream, {stream.size()}, max_message);

  // A split point that depends on the content, so libFuzzer explores many of them.
  std::size_t split = stream.empty() ? 0 : (std::size_t{data[0]} * 257 + data[1]) % (stream.size() + 1);
  FUZZ_CHECK(feed(stream, {split, stream.size() - split}, max_message) == whole);

  std::vector<std::size_t> reads;
  for (std::size_t left = stream.size(); left > 0; left -= std::min(left, chunk))
    reads.push_back(std::min(left, chunk));
  FUZZ_CHECK(feed(stream, reads, max_message) == whole);
  return 0;
}
