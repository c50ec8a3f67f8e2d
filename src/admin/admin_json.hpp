#pragma once

// The admin API's JSON, in one place: request bodies decoded into small structs (every bad input
// becomes a body_error with a stable code, never an exception), and answers encoded. The chat
// protocol's JSON stays in src/protocol/codec.*; this is the operators' side.

#include "actors/actors.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace parley::admin {

/// Limits on request bodies.
struct body_limits {
  std::size_t max_reason_bytes = 200;    ///< "reason" of kick and ban (the chat protocol's limit)
  std::size_t max_notice_bytes = 4096;   ///< "text" of a notice ([protocol] max_text_bytes)
  int64_t max_drain_period_ms = 3600000; ///< "period_ms" of a drain: at most an hour
};

/// Why a body was refused; `code` is stable ("bad_json", "bad_field"), `message` for humans.
struct body_error {
  std::string code;
  std::string message;
};

/// POST /admin/rooms/<room>/kick
struct kick_body {
  std::string user;
  std::string reason;
};

/// POST /admin/rooms/<room>/ban and /admin/ban. "until" (ms since the Unix epoch) or "duration"
/// (seconds from now), at most one; neither: for good.
struct ban_body {
  std::string user;
  std::optional<int64_t> until;
  std::string reason;
};

/// POST /admin/rooms/<room>/unban and /admin/unban.
struct unban_body {
  std::string user;
  std::string reason;
};

/// POST /admin/rooms/<room>/notice
struct notice_body {
  std::string text;
};

/// POST /admin/drain; nullopt: the configured drain period.
struct drain_body {
  std::optional<int64_t> period_ms;
};

template <class T>
using decoded = std::variant<T, body_error>;

/// Decoders. `now_ms` turns a "duration" into an "until"; an empty body counts as {} (drain).
decoded<kick_body> decode_kick(std::string_view body, const body_limits& limits);
decoded<ban_body> decode_ban(std::string_view body, const body_limits& limits, int64_t now_ms);
decoded<unban_body> decode_unban(std::string_view body, const body_limits& limits);
decoded<notice_body> decode_notice(std::string_view body, const body_limits& limits);
decoded<drain_body> decode_drain(std::string_view body, const body_limits& limits);

// -- answers -------------------------------------------------------------------------------------------

/// {"error":code,"message":message}
std::string encode_error(std::string_view code, std::string_view message);

/// {"rooms":[{"name","members","connections","present","epoch","last_id","message_rate"}...]};
/// a room that did not answer in time: {"name","answered":false}.
std::string encode_rooms(const std::vector<room_summary>& rooms);

/// {"room":name,"members":[{"user","name"?,"connections"}...]}
std::string encode_members(std::string_view room, const std::vector<room_member_summary>& members);

/// {"user","online","in_grace","banned","banned_until"?,"sessions":[...],"unanswered"}
std::string encode_user(const user_report& report);

/// {"ok":true,"action":action,"room":room?,"user":user,"until"?}: a moderation action in force.
std::string encode_moderated(std::string_view action, std::string_view room, std::string_view user,
                             std::optional<int64_t> until);

/// {"ok":true,"room":room,"delivered":connections}
std::string encode_notice_sent(std::string_view room, uint64_t delivered);

/// {"draining":true,"period_ms":period}
std::string encode_drain_started(int64_t period_ms);

} // namespace parley::admin
