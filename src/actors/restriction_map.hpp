#pragma once

// Bans and mutes as actors keep them in memory: user -> until. Rooms keep their bans and mutes,
// the presence tracker the server-wide bans, and both ask the same question of them.

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>

namespace parley {

/// user -> until (ms since the Unix epoch; nullopt: for good).
using restriction_map = std::unordered_map<std::string, std::optional<int64_t>>;

/// The restriction of `user` in force at `now_ms`, if any: its until (nullopt inside: for good).
/// An expired one is forgotten on the way.
inline std::optional<std::optional<int64_t>> in_force(restriction_map& map, const std::string& user,
                                                      int64_t now_ms) {
  auto i = map.find(user);
  if (i == map.end())
    return std::nullopt;
  if (i->second && *i->second <= now_ms) {
    map.erase(i);
    return std::nullopt;
  }
  return i->second;
}

} // namespace parley
