#include "admin/admin_routes.hpp"

#include "net/static_files.hpp"
#include "protocol/codec.hpp"

#include <vector>

namespace parley::admin {

namespace {

constexpr std::string_view admin_prefix = "/admin";

/// The segments of a path after `prefix` ("/rooms/general/kick" -> rooms, general, kick). An empty
/// segment (a doubled or trailing slash) is kept, so that such paths match nothing.
std::vector<std::string_view> segments(std::string_view path) {
  std::vector<std::string_view> out;
  while (!path.empty()) {
    path.remove_prefix(1);  // the '/'
    auto slash = path.find('/');
    out.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos)
      break;
    path.remove_prefix(slash);
  }
  return out;
}

/// A path parameter percent-decoded and checked as a room or user name.
bool decode_name(std::string_view raw, bool is_room, std::string& out) {
  if (!net::percent_decode(raw, out))
    return false;
  return is_room ? protocol::is_valid_room_name(out) : protocol::is_valid_user_name(out);
}

route bad(std::string problem) {
  route r;
  r.kind = route_kind::bad_name;
  r.problem = std::move(problem);
  return r;
}

route match_admin(std::string_view rest) {
  auto parts = segments(rest);
  route r;
  if (parts.size() == 1 && parts[0] == "rooms") {
    r.kind = route_kind::rooms;
  } else if ((parts.size() == 2 || parts.size() == 3) && parts[0] == "rooms") {
    if (parts.size() == 2) {
      r.kind = route_kind::room;
    } else if (parts[2] == "kick") {
      r.kind = route_kind::room_kick;
    } else if (parts[2] == "ban") {
      r.kind = route_kind::room_ban;
    } else if (parts[2] == "unban") {
      r.kind = route_kind::room_unban;
    } else if (parts[2] == "notice") {
      r.kind = route_kind::room_notice;
    } else {
      return r;  // not_found
    }
    if (!decode_name(parts[1], true, r.room))
      return bad("the room name must be 1-64 characters of A-Z, a-z, 0-9, '_', '.', '-'");
  } else if (parts.size() == 2 && parts[0] == "users") {
    r.kind = route_kind::user;
    if (!decode_name(parts[1], false, r.user))
      return bad("the user name must be 1-32 characters of A-Z, a-z, 0-9, '_', '.', '-'");
  } else if (parts.size() == 1 && parts[0] == "ban") {
    r.kind = route_kind::server_ban;
  } else if (parts.size() == 1 && parts[0] == "unban") {
    r.kind = route_kind::server_unban;
  } else if (parts.size() == 1 && parts[0] == "drain") {
    r.kind = route_kind::drain;
  }
  return r;
}

/// "/admin" itself or "/admin/..." (but not "/administration").
bool under_admin(std::string_view path) {
  return path.substr(0, admin_prefix.size()) == admin_prefix
         && (path.size() == admin_prefix.size() || path[admin_prefix.size()] == '/');
}

} // namespace

route match_route(std::string_view target) {
  auto path = net::target_path(target);
  route r;
  if (path == "/healthz")
    r.kind = route_kind::healthz;
  else if (path == "/readyz")
    r.kind = route_kind::readyz;
  else if (path == "/metrics")
    r.kind = route_kind::metrics;
  else if (under_admin(path))
    return match_admin(path.substr(admin_prefix.size()));
  else
    r.kind = route_kind::page;
  return r;
}

bool needs_token(std::string_view target) {
  return under_admin(net::target_path(target));
}

std::string_view method_of(route_kind kind) {
  switch (kind) {
    case route_kind::room_kick:
    case route_kind::room_ban:
    case route_kind::room_unban:
    case route_kind::room_notice:
    case route_kind::server_ban:
    case route_kind::server_unban:
    case route_kind::drain:
      return "POST";
    default:
      return "GET";
  }
}

} // namespace parley::admin
