#pragma once

// Who is on the other end of a connection, as far as the server believes it: the user id, the
// display name, the roles and, in jwt mode, what the token allows and until when.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace parley::auth {

/// Roles a token may grant ("roles" claim). Unknown role names are ignored.
enum class role : uint8_t {
  readonly = 1 << 0,   ///< may join and read; never posts
  member = 1 << 1,     ///< the default: join and post
  moderator = 1 << 2,  ///< kick, ban, mute and delete in rooms it may moderate
  admin = 1 << 3,      ///< everything, everywhere, including server-wide bans
};

/// A set of roles as bits of `role`.
using role_set = uint8_t;

inline constexpr bool has(role_set set, role r) {
  return (set & static_cast<role_set>(r)) != 0;
}

/// "readonly", "member", "moderator", "admin".
const char* to_string(role r);

/// The role a name means, if any.
std::optional<role> role_from_string(std::string_view name);

/// The role names of a set, lowest first.
std::vector<std::string> role_names(role_set set);

/// A signed-in (or, in open mode, self-named) user.
struct identity {
  std::string user;          ///< the user id: a token's "sub", or the open-mode name
  std::string display_name;  ///< a token's "name" claim; empty: show `user`
  role_set roles = static_cast<role_set>(role::member);
  /// Private rooms this token opens (the configured rooms claim); see permissions.hpp.
  std::vector<std::string> rooms;
  /// The token's exp in seconds since the Unix epoch; nullopt in open mode.
  std::optional<int64_t> expires_at;
};

} // namespace parley::auth
