// Fuzzes the JSON codec (src/protocol/codec.cpp): the input is one text frame as a client sends it.
//
// Checked for every input, with the server's default limits (codec_limits{} equals config.ini):
//   - decode() returns (an exception escaping it would abort the run);
//   - a decoded command respects the limits the rest of the server relies on: valid room and user
//     names, text within max_text_bytes, cid and ref within their bounds, pages within their caps;
//   - the ref a reply echoes is valid JSON equal to the one sent;
//   - encoding what was decoded gives valid JSON that reads back to the same strings;
//   - encoding arbitrary bytes (not UTF-8, control characters) never throws and gives valid JSON.

#include "fuzz_check.hpp"

#include "protocol/codec.hpp"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <type_traits>
#include <variant>

namespace {

using namespace parley::protocol;
using json = nlohmann::json;

/// Parses an encoded frame strictly (throws on invalid JSON or invalid UTF-8, which aborts).
json parse_encoded(const std::string& text) {
  auto value = json::parse(text);
  FUZZ_CHECK(value.is_object());
  FUZZ_CHECK(value.contains("type"));
  return value;
}

void check_room(const std::string& room) {
  FUZZ_CHECK(is_valid_room_name(room));
}

/// What the rest of the server assumes of each decoded command.
void check_command(const command& cmd, const codec_limits& limits) {
  std::visit(
    [&](const auto& c) {
      using T = std::decay_t<decltype(c)>;
      if constexpr (std::is_same_v<T, join_cmd> || std::is_same_v<T, leave_cmd>
                    || std::is_same_v<T, typing_cmd> || std::is_same_v<T, crash_room_cmd>) {
        check_room(c.room);
      } else if constexpr (std::is_same_v<T, send_cmd>) {
        check_room(c.room);
        FUZZ_CHECK(!c.text.empty());
        FUZZ_CHECK(c.text.size() <= limits.max_text_bytes);
        FUZZ_CHECK(c.cid.size() <= limits.max_cid_bytes);
      } else if constexpr (std::is_same_v<T, history_cmd>) {
        check_room(c.room);
        FUZZ_CHECK(c.before != uint64_t{0});
        FUZZ_CHECK(c.limit >= 1 && c.limit <= limits.max_history_page);
      } else if constexpr (std::is_same_v<T, who_cmd>) {
        check_room(c.room);
        FUZZ_CHECK(!c.after || is_valid_user_name(*c.after));
        FUZZ_CHECK(c.limit >= 1 && c.limit <= limits.page_size);
      } else if constexpr (std::is_same_v<T, status_cmd>) {
        FUZZ_CHECK(!c.users.empty() && c.users.size() <= limits.max_status_users);
        for (const auto& u : c.users)
          FUZZ_CHECK(is_valid_user_name(u));
      } else if constexpr (std::is_same_v<T, auth_cmd> || std::is_same_v<T, refresh_cmd>) {
        FUZZ_CHECK(!c.token.empty() && c.token.size() <= limits.max_token_bytes);
      } else if constexpr (std::is_same_v<T, moderate_cmd>) {
        // Only bans and unbans may lack a room (server-wide); only a delete lacks a user.
        bool server_wide_kind = c.action == moderation_action::ban || c.action == moderation_action::unban;
        FUZZ_CHECK(c.room.empty() ? server_wide_kind : is_valid_room_name(c.room));
        if (c.action == moderation_action::delete_message)
          FUZZ_CHECK(c.id >= 1);
        else
          FUZZ_CHECK(is_valid_user_name(c.user));
        FUZZ_CHECK(!c.duration || *c.duration >= 1);
        FUZZ_CHECK(c.reason.size() <= limits.max_reason_bytes);
      } else if constexpr (std::is_same_v<T, decode_error>) {
        FUZZ_CHECK(!c.message.empty());
      }
    },
    cmd);
}

/// Encodes replies built from what was decoded and reads them back.
void check_round_trip(const inbound& in) {
  // Every reply echoes the ref: it must come back as the same JSON value the client sent.
  if (in.ref) {
    FUZZ_CHECK(in.ref->size() <= 2 + 6 * 64 + 20);  // a quoted, escaped 64-byte string at most
    auto sent = json::parse(*in.ref);
    FUZZ_CHECK(sent.is_string() || sent.is_number_integer());
    auto pong = parse_encoded(encode(pong_event{in.ref}));
    FUZZ_CHECK(pong["ref"] == sent);
    auto error = parse_encoded(encode(error_event{error_code::bad_field, "x", in.ref}));
    FUZZ_CHECK(error["ref"] == sent);
  }
  if (const auto* send = std::get_if<send_cmd>(&in.cmd)) {
    chat_message msg{send->room, 1, "alice", send->text, 0, send->cid};
    auto back = parse_encoded(encode(msg));
    FUZZ_CHECK(back["room"] == send->room);
    FUZZ_CHECK(back["text"] == send->text);
    if (!send->cid.empty())
      FUZZ_CHECK(back["cid"] == send->cid);
  }
  if (const auto* err = std::get_if<decode_error>(&in.cmd))
    parse_encoded(encode(error_event{err->code, err->message, in.ref}));
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const codec_limits limits;
  std::string_view text{reinterpret_cast<const char*>(data), size};

  inbound in = decode(text, limits);
  check_command(in.cmd, limits);
  check_round_trip(in);

  // Server-side strings are not always valid UTF-8 (a corrupt database row, say): encoding them
  // must still give valid JSON, never an exception in the middle of a broadcast.
  chat_message raw{"room", 1, std::string{text}, std::string{text}, 0, std::string{text}};
  parse_encoded(encode(raw));
  return 0;
}
