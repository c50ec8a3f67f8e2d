#pragma once

// The typed form of protocol v1. The codec (codec.hpp) is the only place that turns these into JSON
// and back; everything else in Parley works with these structs.

#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <string>
#include <variant>
#include <vector>

namespace parley::protocol {

// -- stable error codes -----------------------------------------------------------------------------

/// Every error the server reports to a client. The wire names (see to_string) are stable: clients
/// may switch on them.
enum class error_code : uint8_t {
  bad_json,             ///< the frame is not valid JSON (or not a JSON object)
  too_deep,             ///< JSON nested deeper than the limit
  unknown_type,         ///< "type" names no command
  missing_field,        ///< a required field is absent
  bad_field,            ///< a field has the wrong JSON type or an out-of-range value
  invalid_name,         ///< a user or room name breaks the naming rule
  text_too_long,        ///< message text longer than the configured limit
  not_member,           ///< the command needs a room the connection has not joined
  room_full,            ///< the room is at capacity
  too_many_rooms,       ///< the connection has joined the maximum number of rooms
  binary_not_supported, ///< a binary frame arrived; protocol v1 is text only
  rate_limited,         ///< the connection's token bucket is empty
  room_unavailable,     ///< the room is restarting or failed; retry (with the same cid) later
  store_unavailable,    ///< the message store cannot write; nothing was accepted; retry later
  internal,             ///< a server fault; safe to retry
  room_limit,           ///< the server holds as many rooms as it allows: no new room, existing ones work
  unauthenticated,      ///< jwt mode: no valid token yet (missing, late or refused); the connection closes
  forbidden,            ///< the user's roles or token do not allow this (join, post, moderate)
  banned,               ///< banned from the room (join refused) or from the server (connection closes)
  muted,                ///< muted in the room: sends are refused until "until"
  token_expired,        ///< the token's exp passed: send {"type":"refresh"} within the grace
  not_found,            ///< the message a moderator named does not exist in the room
};

/// The stable wire name of an error code, e.g. "room_full".
const char* to_string(error_code code);

// -- shared records ----------------------------------------------------------------------------------

/// One chat message as stored in a room's history and sent to clients.
struct chat_message {
  std::string room;
  uint64_t id = 0;   ///< per room, monotonic, never reused
  std::string from;  ///< user name of the sender
  std::string text;
  int64_t ts = 0;    ///< server time, milliseconds since the Unix epoch
  std::string cid;   ///< client id for dedup; empty when the client gave none
  std::string name = {};  ///< the sender's display name (a token's "name" claim); empty: same as `from`
  bool deleted = false;  ///< a moderator deleted it: a tombstone, `text` is empty
};

/// A client's correlation reference, echoed on replies and errors. Absent when the client sent none.
/// Kept as raw JSON text so that strings and numbers round-trip unchanged.
using ref_t = std::optional<std::string>;

// -- client to server commands ---------------------------------------------------------------------

struct join_cmd {
  std::string room;
  std::optional<uint64_t> since;  ///< last message id the client saw
  std::optional<uint64_t> epoch;  ///< epoch the client saw it in
};

struct send_cmd {
  std::string room;
  std::string text;
  std::string cid;  ///< empty when absent
};

struct history_cmd {
  std::string room;
  std::optional<uint64_t> before;  ///< page messages with id < before; absent means "newest"
  uint32_t limit = 0;              ///< already capped by the codec to the configured maximum
};

struct leave_cmd {
  std::string room;
};

struct who_cmd {
  std::string room;
  std::optional<std::string> after;  ///< page the names sorted after this one; absent: from the first
  uint32_t limit = 0;                ///< already capped by the codec to the page size
};

struct typing_cmd {
  std::string room;
};

/// Whether users are online anywhere on this server.
struct status_cmd {
  std::vector<std::string> users;  ///< 1 to max_status_users valid user names, in the order asked
};

struct ping_cmd {};

/// Test-only fault injection: kills a room's actor so that supervision can be exercised end to end.
/// Accepted only when the server runs with [testing] fault_injection=true.
struct crash_room_cmd {
  std::string room;
};

/// Signs a connection in (jwt mode) with a token, as its first frame.
struct auth_cmd {
  std::string token;
};

/// Replaces the connection's token with a newer one of the same user, before or after it expires.
struct refresh_cmd {
  std::string token;
};

/// What a moderator (or, server-wide, an admin) does to a user or a message.
enum class moderation_action : uint8_t { kick, ban, unban, mute, unmute, delete_message };

/// The wire name of a moderation action: "kick", "ban", "unban", "mute", "unmute", "delete".
const char* to_string(moderation_action action);
/// The action a wire name ("kick", "ban", ...) names; nullopt for any other text.
std::optional<moderation_action> moderation_action_named(std::string_view name);

/// kick / ban / unban / mute / unmute a user, or delete a message. A ban or unban without a room
/// is server-wide (admins only).
struct moderate_cmd {
  moderation_action action = moderation_action::kick;
  std::string room;                      ///< empty: server-wide (ban and unban only)
  std::string user;                      ///< the target user (empty for delete)
  uint64_t id = 0;                       ///< delete: the message id
  std::optional<uint64_t> duration;      ///< ban and mute: seconds; absent: for good
  std::string reason;                    ///< optional, at most 200 bytes
};

/// A frame that could not be decoded. It travels like a command so the session answers it in order.
struct decode_error {
  error_code code;
  std::string message;
};

using command =
  std::variant<join_cmd, send_cmd, history_cmd, leave_cmd, who_cmd, typing_cmd, status_cmd,
               ping_cmd, crash_room_cmd, auth_cmd, refresh_cmd, moderate_cmd, decode_error>;

/// One decoded inbound frame: the command and the client's correlation reference, if any.
struct inbound {
  command cmd;
  ref_t ref;
};

// -- server to client events ---------------------------------------------------------------------------

struct welcome_event {
  std::string user;
  std::string session;
  std::string name = {};               ///< display name; empty: not sent (same as user)
  std::vector<std::string> roles = {}; ///< empty: not sent (open mode)
  std::optional<int64_t> expires_at = std::nullopt; ///< the token's exp in ms since the Unix epoch (jwt mode)
};

/// The answer to a refresh: the connection now runs on the new token.
struct refreshed_event {
  std::vector<std::string> roles;
  int64_t expires_at = 0;  ///< ms since the Unix epoch
  ref_t ref;
};

/// A moderation action, broadcast to the room it happened in.
struct moderation_event {
  moderation_action action = moderation_action::kick;
  std::string room;                 ///< empty: server-wide
  std::string user;                 ///< the target (empty for delete)
  std::string by;                   ///< the moderator's user id
  uint64_t id = 0;                  ///< delete: the message id
  std::optional<int64_t> until;     ///< ban and mute: ms since the Unix epoch; absent: for good
  std::string reason;
};

/// The answer to a moderator's command, once the action is recorded and in force.
struct moderated_event {
  moderation_action action = moderation_action::kick;
  std::string room;  ///< empty: server-wide
  std::string user;
  uint64_t id = 0;
  ref_t ref;
};

/// A chat message already encoded as a {"type":"message",...} object, shared read-only: the very
/// buffer a room broadcast, spliced into "joined" without encoding the message again.
using encoded_message = std::shared_ptr<const std::string>;

/// Whether a room names its present users or only counts them (see "Presence" in docs/protocol.md).
enum class presence_mode : uint8_t {
  users,   ///< frames carry names
  counts,  ///< more than user_limit present users: frames carry only the count
};

/// Who is present in a room, as "joined" and "presence_state" carry it.
struct presence_summary {
  uint64_t count = 0;                 ///< present users
  presence_mode mode = presence_mode::users;
  std::vector<std::string> members;   ///< the first page in name order; not encoded in counts mode
};

struct joined_event {
  std::string room;
  uint64_t epoch = 0;
  uint64_t last_id = 0;
  presence_summary presence;
  std::vector<encoded_message> history;  ///< encoded message objects, oldest first
  std::optional<bool> recovered;         ///< present only when the join carried "since"
  ref_t ref;
};

struct left_event {
  std::string room;
  /// "left" for an explicit leave, "room_failed" when the room could not be restarted, "kicked" or
  /// "banned" when a moderator removed the user.
  std::string reason;
  ref_t ref;
};

struct history_event {
  std::string room;
  std::vector<chat_message> messages;  ///< oldest first
  bool more = false;                   ///< older messages exist before the first one
  ref_t ref;
};

/// One page of a room's present users.
struct who_event {
  std::string room;
  std::vector<std::string> members;  ///< in name order, after the command's "after"
  uint64_t count = 0;                ///< present users in the room
  bool more = false;                 ///< names follow the last one
  ref_t ref;
};

/// Presence changes of one interval. In users mode each changed user is in exactly one list.
struct presence_diff_event {
  std::string room;
  presence_mode mode = presence_mode::users;
  std::vector<std::string> joins;   ///< present at the end of the interval (users mode only)
  std::vector<std::string> leaves;  ///< not present at its end (users mode only)
  uint64_t count = 0;
};

/// Replaces what a client holds about a room's presence.
struct presence_state_event {
  std::string room;
  presence_summary presence;
};

/// Whether one user is online anywhere on this server.
struct user_status {
  std::string user;
  bool online = false;    ///< a connection is open, or the last one closed within the grace
  uint64_t sessions = 0;  ///< connections open now
};

struct status_event {
  std::vector<user_status> users;  ///< in the order asked
  ref_t ref;
};

struct typing_event {
  std::string room;
  std::string user;
};

/// A notice from the server's operators to every member of a room (sent through the admin API).
/// Not a chat message: it has no id, no author and is not kept in history.
struct notice_event {
  std::string room;
  std::string text;
  int64_t ts = 0;  ///< ms since the Unix epoch
};

struct pong_event {
  ref_t ref;
};

struct error_event {
  error_code code;
  std::string message;
  ref_t ref;
  std::optional<int64_t> until = std::nullopt;  ///< banned and muted: ms since the Unix epoch; absent: for good
};

} // namespace parley::protocol
