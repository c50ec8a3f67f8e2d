#include "admin/admin_api.hpp"

#include "actors/wall_clock.hpp"
#include "admin/admin_token.hpp"
#include "admin/readiness.hpp"
#include "metrics/registry.hpp"
#include "net/static_files.hpp"

#include <spdlog/spdlog.h>

#include <chrono>
#include <exception>
#include <fstream>
#include <iterator>

namespace parley::admin {

namespace {

constexpr std::string_view disabled_message = "admin API disabled: set [admin] token or token_file";

/// The page's files are a few KiB; anything much larger in the directory is not ours to serve.
constexpr std::size_t max_page_file_bytes = 1024 * 1024;

admin_response json_response(unsigned status, std::string body) {
  admin_response res;
  res.status = status;
  res.body = std::move(body);
  // Answers about users and rooms are never for a cache.
  res.headers.emplace_back("Cache-Control", "no-store");
  return res;
}

admin_response text_response(unsigned status, std::string body) {
  admin_response res;
  res.status = status;
  res.content_type = "text/plain; charset=utf-8";
  res.body = std::move(body);
  res.headers.emplace_back("Cache-Control", "no-store");
  return res;
}

admin_response unauthorized(bool offered) {
  auto res = error_response(401, "unauthorized",
                            offered ? "the bearer token is wrong"
                                    : "send the admin token as Authorization: Bearer <token>");
  res.headers.emplace_back("WWW-Authenticate", offered
                                                 ? R"(Bearer realm="parley-admin", error="invalid_token")"
                                                 : R"(Bearer realm="parley-admin")");
  return res;
}

admin_response from_backend(const backend_error& err) {
  if (err.kind == backend_error::not_found)
    return error_response(404, "not_found", err.message);
  auto res = error_response(503, "unavailable", err.message);
  res.headers.emplace_back("Retry-After", "1");
  return res;
}

/// Runs `fn` and turns an exception (which would only come from running out of memory or a bug)
/// into a 500: handlers never throw, and every request gets its one answer.
template <class Fn>
void guarded(const std::function<void(admin_response)>& respond, Fn&& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    spdlog::error("admin API failed to answer: {}", e.what());
    respond(error_response(500, "internal", "internal error"));
  }
}

/// Calls `respond` with the backend's error, or with `on_value(value)`.
template <class T, class OnValue>
auto answer(std::function<void(admin_response)> respond, OnValue on_value) {
  return [respond = std::move(respond), on_value = std::move(on_value)](backend_result<T> result) {
    guarded(respond, [&] {
      if (auto* err = std::get_if<backend_error>(&result))
        respond(from_backend(*err));
      else
        respond(on_value(std::get<T>(result)));
    });
  };
}

moderation_record admin_record(protocol::moderation_action action, const std::string& room,
                               std::string user, std::optional<int64_t> until, std::string reason) {
  return moderation_record{action, room, std::move(user), "admin", 0, until, std::move(reason), now_ms()};
}

bool read_small_file(const std::string& path, std::string& out) {
  std::ifstream in{path, std::ios::binary};
  if (!in)
    return false;
  out.assign(std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{});
  return in.good() || in.eof();
}

} // namespace

admin_response error_response(unsigned status, std::string_view code, std::string_view message) {
  return json_response(status, encode_error(code, message));
}

admin_api::admin_api(api_options opts, std::shared_ptr<admin_backend> backend, server_hooks hooks)
  : opts_(std::move(opts)), backend_(std::move(backend)), hooks_(std::move(hooks)) {
  // nop
}

void admin_api::handle(const admin_request& req, responder respond) {
  guarded(respond, [&] {
    auto r = match_route(req.target);
    if (needs_token(req.target)) {
      // The token is checked before anything about the route is revealed.
      if (opts_.token.empty())
        return respond(error_response(403, "admin_disabled", disabled_message));
      switch (check_bearer(req.authorization, opts_.token)) {
        case token_check::accepted:
          break;
        case token_check::missing:
          return respond(unauthorized(false));
        case token_check::wrong:
          return respond(unauthorized(true));
      }
    }
    if (r.kind == route_kind::not_found)
      return respond(error_response(404, "not_found", "no such route"));
    if (r.kind == route_kind::bad_name)
      return respond(error_response(400, "bad_field", r.problem));
    auto allowed = method_of(r.kind);
    if (req.method != allowed && !(allowed == "GET" && req.method == "HEAD")) {
      auto res = error_response(405, "method_not_allowed",
                                std::string{"use "} + std::string{allowed} + " here");
      res.headers.emplace_back("Allow", allowed == "GET" ? "GET, HEAD" : "POST");
      return respond(std::move(res));
    }
    dispatch(req, r, respond);
  });
}

void admin_api::dispatch(const admin_request& req, const route& r, responder respond) {
  using protocol::moderation_action;
  auto bad_body = [&](const body_error& err) { respond(error_response(400, err.code, err.message)); };
  switch (r.kind) {
    case route_kind::healthz:
      return respond(text_response(200, "ok\n"));
    case route_kind::readyz:
      return readiness(false, std::move(respond));
    case route_kind::metrics:
      return readiness(true, std::move(respond));
    case route_kind::page:
      return serve_page(req, std::move(respond));
    case route_kind::rooms:
      return backend_->list_rooms(answer<std::vector<room_summary>>(
        std::move(respond), [](const auto& rooms) { return json_response(200, encode_rooms(rooms)); }));
    case route_kind::room:
      return backend_->room_members(
        r.room, answer<std::vector<room_member_summary>>(std::move(respond), [room = r.room](const auto& members) {
          return json_response(200, encode_members(room, members));
        }));
    case route_kind::user:
      return backend_->user_sessions(r.user, answer<user_report>(std::move(respond), [](const auto& report) {
                                       return json_response(200, encode_user(report));
                                     }));
    case route_kind::room_kick: {
      auto body = decode_kick(req.body, opts_.limits);
      if (auto* err = std::get_if<body_error>(&body))
        return bad_body(*err);
      auto& kick = std::get<kick_body>(body);
      spdlog::info("admin kicks {} from room {}", kick.user, r.room);
      return backend_->moderate(
        admin_record(moderation_action::kick, r.room, kick.user, std::nullopt, kick.reason),
        answer<done_t>(std::move(respond), [room = r.room, user = kick.user](done_t) {
          return json_response(200, encode_moderated("kick", room, user, std::nullopt));
        }));
    }
    case route_kind::room_ban:
    case route_kind::server_ban: {
      auto body = decode_ban(req.body, opts_.limits, now_ms());
      if (auto* err = std::get_if<body_error>(&body))
        return bad_body(*err);
      auto& ban = std::get<ban_body>(body);
      auto room = r.kind == route_kind::room_ban ? r.room : std::string{};
      spdlog::info("admin bans {} from {}", ban.user, room.empty() ? "the server" : "room " + room);
      return backend_->moderate(admin_record(moderation_action::ban, room, ban.user, ban.until, ban.reason),
                                answer<done_t>(std::move(respond), [room, user = ban.user, until = ban.until](done_t) {
                                  return json_response(200, encode_moderated("ban", room, user, until));
                                }));
    }
    case route_kind::room_unban:
    case route_kind::server_unban: {
      auto body = decode_unban(req.body, opts_.limits);
      if (auto* err = std::get_if<body_error>(&body))
        return bad_body(*err);
      auto& unban = std::get<unban_body>(body);
      auto room = r.kind == route_kind::room_unban ? r.room : std::string{};
      spdlog::info("admin unbans {} from {}", unban.user, room.empty() ? "the server" : "room " + room);
      return backend_->moderate(
        admin_record(moderation_action::unban, room, unban.user, std::nullopt, unban.reason),
        answer<done_t>(std::move(respond), [room, user = unban.user](done_t) {
          return json_response(200, encode_moderated("unban", room, user, std::nullopt));
        }));
    }
    case route_kind::room_notice: {
      auto body = decode_notice(req.body, opts_.limits);
      if (auto* err = std::get_if<body_error>(&body))
        return bad_body(*err);
      spdlog::info("admin sends a notice to room {}", r.room);
      return backend_->notice(r.room, std::get<notice_body>(body).text,
                              answer<uint64_t>(std::move(respond), [room = r.room](uint64_t delivered) {
                                return json_response(200, encode_notice_sent(room, delivered));
                              }));
    }
    case route_kind::drain: {
      auto body = decode_drain(req.body, opts_.limits);
      if (auto* err = std::get_if<body_error>(&body))
        return bad_body(*err);
      if (!hooks_.start_drain)
        return respond(error_response(503, "unavailable", "this server cannot drain"));
      if (hooks_.draining && hooks_.draining())
        return respond(error_response(409, "already_draining", "the server is draining already"));
      auto period = std::get<drain_body>(body).period_ms.value_or(opts_.default_drain_period.count());
      spdlog::info("admin starts a drain over {} ms", period);
      hooks_.start_drain(std::chrono::milliseconds{period});
      set_readiness_gauges(true, false);
      return respond(json_response(202, encode_drain_started(period)));
    }
    case route_kind::not_found:
    case route_kind::bad_name:
      break;  // answered in handle()
  }
  respond(error_response(404, "not_found", "no such route"));
}

void admin_api::readiness(bool for_metrics, responder respond) {
  // The net layer's inputs are read here, on the admin thread; only the actors answer later.
  readiness_inputs in;
  in.draining = hooks_.draining && hooks_.draining();
  in.connections = hooks_.connections ? hooks_.connections() : 0;
  in.max_connections = hooks_.max_connections ? hooks_.max_connections() : 0;
  backend_->health([in, for_metrics, respond = std::move(respond)](actor_health health) mutable {
    guarded(respond, [&] {
      in.store_open = health.store_open;
      in.directory_running = health.directory_running;
      auto reasons = not_ready_reasons(in);
      set_readiness_gauges(in.draining, reasons.empty());
      if (!for_metrics)
        return respond(text_response(reasons.empty() ? 200 : 503, readiness_text(reasons)));
      auto res = text_response(200, metrics::process_registry().render());
      res.content_type = std::string{metrics::content_type};
      respond(std::move(res));
    });
  });
}

void admin_api::serve_page(const admin_request& req, responder respond) {
  auto file = net::resolve_static_path(opts_.web_root, req.target);
  if (file.status == net::resolve_status::bad_request)
    return respond(error_response(400, "bad_request", "malformed path"));
  std::string content;
  if (file.status != net::resolve_status::ok || !read_small_file(file.path, content)
      || content.size() > max_page_file_bytes)
    return respond(error_response(404, "not_found", "no such page"));
  admin_response res;
  res.content_type = std::string{net::mime_type(file.path)};
  res.body = std::move(content);
  res.headers = {
    {"Cache-Control", "no-cache"},
    // The page runs only its own scripts and talks only to this listener; no other site may frame
    // it (its buttons kick, ban and drain).
    {"Content-Security-Policy",
     "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
     "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"},
    {"X-Frame-Options", "DENY"},
    {"X-Content-Type-Options", "nosniff"},
    {"Referrer-Policy", "no-referrer"},
  };
  respond(std::move(res));
}

} // namespace parley::admin
