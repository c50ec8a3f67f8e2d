#include "auth/permissions.hpp"

#include <algorithm>
#include <stdexcept>

namespace parley::auth {

namespace {

constexpr role_set bits(role r) {
  return static_cast<role_set>(r);
}

constexpr role_set everyone =
  bits(role::readonly) | bits(role::member) | bits(role::moderator) | bits(role::admin);

audience default_audience(room_action action) {
  switch (action) {
    case room_action::join: return {everyone, false};
    case room_action::post: return {static_cast<role_set>(bits(role::member) | bits(role::moderator) | bits(role::admin)), false};
    case room_action::moderate: return {static_cast<role_set>(bits(role::moderator) | bits(role::admin)), false};
  }
  return {};
}

std::vector<std::string_view> split(std::string_view text, char sep) {
  std::vector<std::string_view> parts;
  while (!text.empty()) {
    auto end = text.find(sep);
    auto part = text.substr(0, end);
    if (!part.empty())
      parts.push_back(part);
    if (end == std::string_view::npos)
      break;
    text.remove_prefix(end + 1);
  }
  return parts;
}

audience parse_audience(std::string_view list, std::string_view rule) {
  audience result;
  for (auto who : split(list, ',')) {
    if (who == "everyone")
      result.roles |= everyone;
    else if (who == "nobody")
      continue;
    else if (who == "listed")
      result.listed = true;
    else if (auto r = role_from_string(who))
      result.roles |= bits(*r);
    else
      throw std::invalid_argument("room rule \"" + std::string{rule} + "\": \"" + std::string{who}
                                  + "\" is not a role, everyone, nobody or listed");
  }
  return result;
}

bool admits(const audience& a, const identity& who, std::string_view room) {
  if ((a.roles & who.roles) != 0)
    return true;
  return a.listed && std::find(who.rooms.begin(), who.rooms.end(), room) != who.rooms.end();
}

} // namespace

bool matches(std::string_view pattern, std::string_view name) {
  // Iterative wildcard match: on a mismatch after a '*', let that star swallow one more character.
  std::size_t p = 0, n = 0, star = std::string_view::npos, resume = 0;
  while (n < name.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      resume = n;
    } else if (p < pattern.size() && pattern[p] == name[n]) {
      ++p;
      ++n;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      n = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*')
    ++p;
  return p == pattern.size();
}

room_rule parse_room_rule(std::string_view text) {
  auto words = split(text, ' ');
  if (words.empty())
    throw std::invalid_argument("room rule is empty");
  room_rule rule;
  rule.pattern = std::string{words.front()};
  if (rule.pattern.find('=') != std::string::npos)
    throw std::invalid_argument("room rule \"" + std::string{text} + "\" must start with a room pattern");
  if (words.size() == 1)
    throw std::invalid_argument("room rule \"" + std::string{text} + "\" names no action (join=, post=, moderate=)");
  for (std::size_t i = 1; i < words.size(); ++i) {
    auto eq = words[i].find('=');
    if (eq == std::string_view::npos)
      throw std::invalid_argument("room rule \"" + std::string{text} + "\": \"" + std::string{words[i]}
                                  + "\" is not action=who");
    auto action = words[i].substr(0, eq);
    auto who = parse_audience(words[i].substr(eq + 1), text);
    if (action == "join")
      rule.join = who;
    else if (action == "post")
      rule.post = who;
    else if (action == "moderate")
      rule.moderate = who;
    else
      throw std::invalid_argument("room rule \"" + std::string{text} + "\": \"" + std::string{action}
                                  + "\" is not join, post or moderate");
  }
  return rule;
}

room_permissions::room_permissions(const std::vector<std::string>& rules) {
  for (const auto& text : rules)
    rules_.push_back(parse_room_rule(text));
}

bool room_permissions::allows(const identity& who, room_action action, std::string_view room) const {
  if (has(who.roles, role::admin))
    return true;
  auto chosen = default_audience(action);
  for (const auto& rule : rules_) {
    if (!matches(rule.pattern, room))
      continue;
    const auto& set = action == room_action::join   ? rule.join
                      : action == room_action::post ? rule.post
                                                    : rule.moderate;
    if (set)
      chosen = *set;
    break;
  }
  return admits(chosen, who, room);
}

} // namespace parley::auth
