#pragma once

// Which admin-listener route a request target names, with its path parameters decoded and
// checked. A pure function of the target: the method, the token and the answer are the caller's.

#include <string>
#include <string_view>

namespace parley::admin {

enum class route_kind {
  healthz,      ///< GET /healthz: liveness
  readyz,       ///< GET /readyz: readiness
  metrics,      ///< GET /metrics: Prometheus text
  page,         ///< GET anything else outside /admin: the admin page's files
  rooms,        ///< GET /admin/rooms
  room,         ///< GET /admin/rooms/<room>
  room_kick,    ///< POST /admin/rooms/<room>/kick
  room_ban,     ///< POST /admin/rooms/<room>/ban
  room_unban,   ///< POST /admin/rooms/<room>/unban
  room_notice,  ///< POST /admin/rooms/<room>/notice
  user,         ///< GET /admin/users/<user>
  server_ban,   ///< POST /admin/ban
  server_unban, ///< POST /admin/unban
  drain,        ///< POST /admin/drain
  not_found,    ///< under /admin, but no such route
  bad_name,     ///< a route whose <room> or <user> is not a valid name (400)
};

/// A matched route.
struct route {
  route_kind kind = route_kind::not_found;
  std::string room;     ///< <room>, decoded
  std::string user;     ///< <user>, decoded
  std::string problem;  ///< bad_name: which parameter, for the error message
};

/// Matches the path of `target` (the query is ignored).
route match_route(std::string_view target);

/// True for the /admin/* routes (and not_found and bad_name under /admin): they need the token.
bool needs_token(std::string_view target);

/// The one method a route answers ("GET" or "POST"); HEAD is answered wherever GET is.
std::string_view method_of(route_kind kind);

} // namespace parley::admin
