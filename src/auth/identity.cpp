#include "auth/identity.hpp"

namespace parley::auth {

namespace {

constexpr role all_roles[] = {role::readonly, role::member, role::moderator, role::admin};

} // namespace

const char* to_string(role r) {
  switch (r) {
    case role::readonly: return "readonly";
    case role::member: return "member";
    case role::moderator: return "moderator";
    case role::admin: return "admin";
  }
  return "member";
}

std::optional<role> role_from_string(std::string_view name) {
  for (auto r : all_roles)
    if (name == to_string(r))
      return r;
  return std::nullopt;
}

std::vector<std::string> role_names(role_set set) {
  std::vector<std::string> names;
  for (auto r : all_roles)
    if (has(set, r))
      names.emplace_back(to_string(r));
  return names;
}

} // namespace parley::auth
