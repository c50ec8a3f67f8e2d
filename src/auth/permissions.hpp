#pragma once

// What each role may do in which rooms: a list of rules by room-name pattern, first match wins,
// read from [auth] room_rules. A rule names who may join, post and moderate; what it leaves out
// keeps the default:
//
//   join      everyone (readonly included)
//   post      member, moderator, admin
//   moderate  moderator, admin
//
// Rule syntax: "<pattern> <action>=<who>[,<who>...] ...", where pattern is a room name in which
// '*' matches any run of characters, action is join, post or moderate, and who is a role name,
// "everyone", "nobody" or "listed" (the room is listed in the user's token, [auth] rooms_claim).
// Admins may do everything everywhere. Examples:
//
//   "announcements post=moderator"      only moderators (and admins) post
//   "team-* join=listed post=listed"    private rooms: only users whose token lists the room
//   "lobby post=everyone"               readonly users may post here too

#include "auth/identity.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace parley::auth {

enum class room_action : uint8_t { join, post, moderate };

/// Who a rule lets do one action.
struct audience {
  role_set roles = 0;   ///< users with any of these roles
  bool listed = false;  ///< users whose token lists the room
};

/// One rule: a room-name pattern and, per action, who may do it (unset actions keep the default).
struct room_rule {
  std::string pattern;
  std::optional<audience> join;
  std::optional<audience> post;
  std::optional<audience> moderate;
};

/// Matches `name` against a pattern where '*' stands for any run of characters (also none).
bool matches(std::string_view pattern, std::string_view name);

/// Parses one rule; throws std::invalid_argument with a message naming the problem.
room_rule parse_room_rule(std::string_view text);

/// The rules of a server, with the defaults for rooms no rule names.
class room_permissions {
public:
  room_permissions() = default;
  /// Parses every rule; throws std::invalid_argument naming the first bad one.
  explicit room_permissions(const std::vector<std::string>& rules);

  /// Whether `who` may do `action` in `room`.
  bool allows(const identity& who, room_action action, std::string_view room) const;

private:
  std::vector<room_rule> rules_;
};

} // namespace parley::auth
