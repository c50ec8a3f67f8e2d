#include "actors/session.hpp"

#include "actors/wall_clock.hpp"
#include "actors/errors.hpp"
#include "actors/mailbox_probe.hpp"
#include "actors/registry.hpp"
#include "protocol/codec.hpp"

#include <caf/actor_registry.hpp>
#include <caf/actor_system.hpp>
#include <caf/system_messages.hpp>
#include <caf/exit_reason.hpp>
#include <caf/stateful_actor.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <random>

namespace parley {

namespace {

using self_ptr = session_actor::stateful_pointer<session_state>;
using protocol::error_code;

uint64_t random_bits() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return rng();
}

/// The low `digits` hex digits of `bits`, most significant first.
std::string hex(uint64_t bits, std::size_t digits) {
  static constexpr char alphabet[] = "0123456789abcdef";
  std::string out(digits, '0');
  for (auto i = digits; i-- > 0; bits >>= 4)
    out[i] = alphabet[bits & 0xF];
  return out;
}

template <class Event>
void reply(self_ptr self, const Event& ev) {
  self->state.sink->push(make_frame(protocol::encode(ev)), frame_priority::essential);
}

/// Errors that never count as abuse: the server's fault, or a token's age (which closes on its own).
bool server_side(error_code code) {
  return code == error_code::room_unavailable || code == error_code::store_unavailable ||
         code == error_code::internal || code == error_code::token_expired;
}

/// Sends a last error and closes the connection; nothing after it is handled.
void close_with(self_ptr self, error_code code, std::string message, const protocol::ref_t& ref,
                uint16_t close, std::string_view reason, std::optional<int64_t> until = std::nullopt) {
  auto& st = self->state;
  if (st.closing)
    return;
  st.closing = true;
  reply(self, protocol::error_event{code, std::move(message), ref, until});
  st.sink->close(close, reason);
}

/// Sends an error frame, and closes the connection once errors keep coming past the abuse limit.
void fail(self_ptr self, error_code code, std::string message, const protocol::ref_t& ref,
          std::optional<int64_t> until = std::nullopt) {
  auto& st = self->state;
  if (st.closing)
    return;
  reply(self, protocol::error_event{code, std::move(message), ref, until});
  if (server_side(code))
    return;
  auto now = self->clock().now();
  auto& recent = st.recent_errors;
  recent.erase(recent.begin(), std::find_if(recent.begin(), recent.end(), [&](auto t) {
                 return now - t <= st.cfg->abuse_window;
               }));
  recent.push_back(now);
  if (recent.size() > st.cfg->abuse_limit) {
    spdlog::warn("session {} of {} closed for abuse: {} errors within the window",
                 session_id_text(st.session_id), st.who.user, recent.size());
    st.closing = true;
    st.sink->close(close_code::abuse, "too many bad frames");
  }
}

void fail(self_ptr self, const caf::error& err, const protocol::ref_t& ref) {
  auto code = to_protocol_error(err);
  std::string message;
  if (code == error_code::room_unavailable)
    message = "the room is restarting; retry shortly";
  else if (code == error_code::store_unavailable)
    message = "the message store cannot write right now; nothing was accepted, retry shortly";
  else if (code == error_code::rate_limited) {
    // The only rate limit that comes back as an error from another actor: the store refused to
    // create a room without a new-room token.
    metrics::server_metrics().rate_limit_hit(metrics::limit_kind::new_room);
    message = "slow down: too many new rooms; joining existing rooms still works";
  }
  else if (code == error_code::room_limit)
    message = "the server holds as many rooms as it allows; joining existing rooms still works";
  else if (code == error_code::banned)
    message = "you are banned from this room";
  else if (code == error_code::muted)
    message = "you are muted in this room";
  else if (code == error_code::not_found)
    message = "no such message in this room";
  else
    message = self->system().render(err);
  fail(self, code, std::move(message), ref, error_until(err));
}

/// The room handle if this session is a member (or its join went out to the room) and the room is
/// up; otherwise reports why not.
const room_actor* member_room(self_ptr self, const std::string& room, const protocol::ref_t& ref) {
  auto i = self->state.rooms.find(room);
  if (i == self->state.rooms.end()) {
    // The room may have written "joined" already while its answer to us is still on its way. If
    // the join fails after all, the room itself answers not_member.
    if (auto j = self->state.joining.find(room); j != self->state.joining.end() && j->second.handle)
      return &j->second.handle;
    fail(self, error_code::not_member, "not a member of " + room, ref);
    return nullptr;
  }
  if (!i->second.handle) {
    fail(self, error_code::room_unavailable, "the room is restarting; retry shortly", ref);
    return nullptr;
  }
  return &i->second.handle;
}

void finish_join(self_ptr self, const std::string& room) {
  auto i = self->state.joining.find(room);
  if (i != self->state.joining.end() && --i->second.requests == 0)
    self->state.joining.erase(i);
}

void join_room(self_ptr self, protocol::join_cmd cmd, protocol::ref_t ref, bool retried,
               frame_ticket_ptr ticket);

void join_via(self_ptr self, room_actor room, protocol::join_cmd cmd, protocol::ref_t ref,
              bool retried, frame_ticket_ptr ticket) {
  auto& st = self->state;
  if (auto j = st.joining.find(cmd.room); j != st.joining.end())
    j->second.handle = room;
  join_request req{st.who.user, st.sink, cmd.since, cmd.epoch, ref, st.who.display_name};
  self->request(room, st.cfg->request_timeout, join_atom::value, caf::actor_cast<caf::actor>(self),
                std::move(req))
    .then(
      [self, room, name = cmd.room, ticket](const join_result&) {
        auto j = self->state.joining.find(name);
        bool left = j != self->state.joining.end() && j->second.left;
        finish_join(self, name);
        if (left)
          return;  // the room handled that leave after this join
        auto& rooms = self->state.rooms;
        if (rooms.count(name) == 0)
          self->monitor(room);
        rooms[name] = joined_room{room};
      },
      [self, room, cmd, ref, retried, ticket](caf::error& err) mutable {
        if (err == caf::sec::request_receiver_down && !retried) {
          // The room retired or crashed between lookup and join: look it up once more.
          join_room(self, std::move(cmd), std::move(ref), true, std::move(ticket));
          return;
        }
        finish_join(self, cmd.room);
        fail(self, err, ref);
      });
}

void join_room(self_ptr self, protocol::join_cmd cmd, protocol::ref_t ref, bool retried,
               frame_ticket_ptr ticket) {
  auto dir = registered<directory_actor>(self->system(), directory_atom::value);
  if (!dir) {
    finish_join(self, cmd.room);
    fail(self, error_code::room_unavailable, "the room directory is restarting; retry shortly", ref);
    return;
  }
  // A join that creates a room costs a token of its own bucket. Whether it creates one only the
  // store knows, so the token is taken up front (no token: the lookup may not create) and given
  // back if the room existed or the lookup failed.
  bool token = self->state.new_rooms->try_take(self->clock().now());
  self->request(dir, self->state.cfg->request_timeout, get_atom::value, cmd.room, token)
    .then(
      [self, cmd, ref, retried, token, ticket](room_lookup& found) mutable {
        if (token && !found.created)
          self->state.new_rooms->give_back();
        join_via(self, std::move(found.room), std::move(cmd), std::move(ref), retried,
                 std::move(ticket));
      },
      [self, room = cmd.room, ref, token, ticket](caf::error& err) {
        if (token)
          self->state.new_rooms->give_back();
        finish_join(self, room);
        fail(self, err, ref);
      });
}

/// Whether this user may do `action` in `room` (no configured rules: the defaults).
bool allowed(const session_state& st, auth::room_action action, const std::string& room) {
  static const auth::room_permissions defaults;
  const auto& rules = st.cfg->permissions ? *st.cfg->permissions : defaults;
  return rules.allows(st.who, action, room);
}

/// Whether this user may do `action` in `room`; refuses with forbidden if not.
bool permitted(self_ptr self, auth::room_action action, const std::string& room,
               const protocol::ref_t& ref) {
  if (allowed(self->state, action, room))
    return true;
  static constexpr const char* verbs[] = {"join", "post in", "moderate"};
  fail(self, error_code::forbidden,
       std::string{"your roles do not allow you to "} + verbs[static_cast<int>(action)] + " " + room, ref);
  return false;
}

// -- signing in (jwt mode) -----------------------------------------------------------------------

void welcome(self_ptr self) {
  auto& st = self->state;
  protocol::welcome_event ev{st.who.user, session_id_text(st.session_id)};
  if (st.cfg->verifier) {
    ev.name = st.who.display_name;
    ev.roles = auth::role_names(st.who.roles);
    if (st.who.expires_at)
      ev.expires_at = *st.who.expires_at * 1000;
  }
  reply(self, ev);
}

/// Asks for a refresh when the token's exp passes (a timer per token; older ones are ignored). A
/// far exp is watched a day at a time: years in nanoseconds would overflow the timer's duration.
void watch_expiry(self_ptr self) {
  auto& st = self->state;
  if (!st.who.expires_at)
    return;
  constexpr int64_t longest_wait = 24 * 3600;
  auto left = std::max<int64_t>(*st.who.expires_at - auth::unix_now(), 0);
  st.expiry_far = left > longest_wait;
  self->delayed_send(self, std::chrono::seconds{std::min(left, longest_wait)}, reauth_atom::value,
                     st.token_generation);
}

/// A verified user's session starts: the presence tracker registers it unless the user is banned
/// from the server. Nothing else is handled until it answers (await), so a banned user's frames
/// never reach a room.
void admit(self_ptr self, auth::identity who, const protocol::ref_t& ref) {
  auto& st = self->state;
  st.who = std::move(who);
  st.phase = sign_in_phase::signed_in;
  ++st.token_generation;
  auto presence = registered<presence_actor>(self->system(), presence_atom::value);
  if (!presence) {
    close_with(self, error_code::room_unavailable, "presence is restarting; reconnect shortly", ref,
               close_code::internal_error, "presence restarting");
    return;
  }
  self->request(presence, st.cfg->request_timeout, admit_atom::value, st.who.user,
                caf::actor_cast<caf::actor>(self))
    .await(
      [self](ok_atom) {
        welcome(self);
        watch_expiry(self);
      },
      [self, ref](caf::error& err) {
        if (to_protocol_error(err) == error_code::banned)
          close_with(self, error_code::banned, "you are banned from this server", ref,
                     close_code::banned, "banned", error_until(err));
        else
          close_with(self, error_code::room_unavailable, "presence is restarting; reconnect shortly",
                     ref, close_code::internal_error, "presence restarting");
      });
}

/// The token's problem as the client reads it.
std::string refusal_text(auth::token_problem problem) {
  return std::string{"token refused: "} + auth::to_string(problem);
}

void handle_sign_in(self_ptr self, protocol::inbound& in) {
  auto* cmd = std::get_if<protocol::auth_cmd>(&in.cmd);
  if (!cmd) {
    close_with(self, error_code::unauthenticated,
               "sign in first: send {\"type\":\"auth\",\"token\":...}", in.ref,
               close_code::unauthenticated, "unauthenticated");
    return;
  }
  auto result = self->state.cfg->verifier->verify(cmd->token, auth::unix_now());
  if (!result) {
    close_with(self, error_code::unauthenticated, refusal_text(result.problem), in.ref,
               close_code::unauthenticated, "unauthenticated");
    return;
  }
  admit(self, std::move(*result.who), in.ref);
}

// -- one handler per command --------------------------------------------------------------------

void handle(self_ptr self, protocol::join_cmd& cmd, const protocol::ref_t& ref) {
  auto& st = self->state;
  if (!permitted(self, auth::room_action::join, cmd.room, ref))
    return;
  bool known = st.rooms.count(cmd.room) > 0 || st.joining.count(cmd.room) > 0;
  if (!known && st.rooms.size() + st.joining.size() >= st.cfg->max_rooms) {
    fail(self, error_code::too_many_rooms,
         "at most " + std::to_string(st.cfg->max_rooms) + " rooms per connection", ref);
    return;
  }
  auto& pending = st.joining[cmd.room];
  ++pending.requests;
  pending.left = false;  // a join after a leave: membership again
  join_room(self, std::move(cmd), ref, false, self->state.ticket);
}

void handle(self_ptr self, protocol::send_cmd& cmd, const protocol::ref_t& ref) {
  if (!permitted(self, auth::room_action::post, cmd.room, ref))
    return;
  auto room = member_room(self, cmd.room, ref);
  if (!room)
    return;
  // Success needs no reply here: the room's broadcast reaches the sender too and acknowledges it.
  self->request(*room, self->state.cfg->request_timeout, post_atom::value,
                caf::actor_cast<caf::actor>(self), std::move(cmd.text), std::move(cmd.cid))
    .then([ticket = self->state.ticket](uint64_t) { /* nop */ },
          [self, ref, ticket = self->state.ticket](caf::error& err) { fail(self, err, ref); });
}

void handle(self_ptr self, protocol::history_cmd& cmd, const protocol::ref_t& ref) {
  auto room = member_room(self, cmd.room, ref);
  if (!room)
    return;
  self->request(*room, self->state.cfg->request_timeout, history_atom::value,
                cmd.before.value_or(0), cmd.limit)
    .then(
      [self, name = cmd.room, ref, ticket = self->state.ticket](history_page& page) {
        reply(self, protocol::history_event{name, std::move(page.messages), page.more, ref});
      },
      [self, ref, ticket = self->state.ticket](caf::error& err) { fail(self, err, ref); });
}

void handle(self_ptr self, protocol::leave_cmd& cmd, const protocol::ref_t& ref) {
  auto room = member_room(self, cmd.room, ref);
  if (!room)
    return;
  auto handle = *room;
  if (auto j = self->state.joining.find(cmd.room); j != self->state.joining.end())
    j->second.left = true;
  self->state.rooms.erase(cmd.room);
  self->demonitor(handle.address());
  self->request(handle, self->state.cfg->request_timeout, leave_atom::value,
                caf::actor_cast<caf::actor>(self))
    .then(
      [self, name = cmd.room, ref, ticket = self->state.ticket](ok_atom) {
        reply(self, protocol::left_event{name, "left", ref});
      },
      [self, name = cmd.room, ref, ticket = self->state.ticket](caf::error&) {
        // The room is gone, and with it the membership: leaving succeeded all the same.
        reply(self, protocol::left_event{name, "left", ref});
      });
}

void handle(self_ptr self, protocol::who_cmd& cmd, const protocol::ref_t& ref) {
  auto room = member_room(self, cmd.room, ref);
  if (!room)
    return;
  // The room writes the "who" frame itself, in order with its presence frames; only errors come back.
  self->request(*room, self->state.cfg->request_timeout, who_atom::value,
                caf::actor_cast<caf::actor>(self),
                who_request{std::move(cmd.after).value_or(std::string{}), cmd.limit, ref})
    .then([ticket = self->state.ticket](ok_atom) { /* nop */ },
          [self, ref, ticket = self->state.ticket](caf::error& err) { fail(self, err, ref); });
}

void handle(self_ptr self, protocol::status_cmd& cmd, const protocol::ref_t& ref) {
  auto tracker = registered<presence_actor>(self->system(), presence_atom::value);
  if (!tracker) {
    fail(self, error_code::room_unavailable, "presence is restarting; retry shortly", ref);
    return;
  }
  self->request(tracker, self->state.cfg->request_timeout, status_atom::value, std::move(cmd.users))
    .then(
      [self, ref, ticket = self->state.ticket](std::vector<protocol::user_status>& users) {
        reply(self, protocol::status_event{std::move(users), ref});
      },
      [self, ref, ticket = self->state.ticket](caf::error& err) {
        // A dead or restarting tracker: the same code as for a restarting room, so clients retry.
        auto code = to_protocol_error(err);
        if (code == error_code::room_unavailable)
          fail(self, code, "presence is restarting; retry shortly", ref);
        else
          fail(self, err, ref);
      });
}

void handle(self_ptr self, protocol::typing_cmd& cmd, const protocol::ref_t& ref) {
  // Someone who may not post is not typing anything the room will see. Dropped without an error:
  // pages send typing as a side effect of keystrokes, and errors count toward the abuse limit.
  if (!allowed(self->state, auth::room_action::post, cmd.room))
    return;
  if (auto room = member_room(self, cmd.room, ref))
    self->send(*room, typing_atom::value, caf::actor_cast<caf::actor>(self));
}

void handle(self_ptr self, protocol::ping_cmd&, const protocol::ref_t& ref) {
  reply(self, protocol::pong_event{ref});
}

void handle(self_ptr self, protocol::crash_room_cmd& cmd, const protocol::ref_t& ref) {
  if (!self->state.cfg->fault_injection) {
    fail(self, error_code::unknown_type, "unknown type crash_room", ref);
    return;
  }
  if (auto room = member_room(self, cmd.room, ref)) {
    spdlog::warn("fault injection: killing room {}", cmd.room);
    self->send_exit(*room, caf::exit_reason::kill);
  }
}

void handle(self_ptr self, protocol::auth_cmd&, const protocol::ref_t& ref) {
  if (!self->state.cfg->verifier)
    fail(self, error_code::bad_field, "this server runs in open mode: no sign-in needed", ref);
  else
    fail(self, error_code::bad_field, "already signed in; send refresh to replace the token", ref);
}

void handle(self_ptr self, protocol::refresh_cmd& cmd, const protocol::ref_t& ref) {
  auto& st = self->state;
  if (!st.cfg->verifier) {
    fail(self, error_code::bad_field, "this server runs in open mode: there is no token to refresh", ref);
    return;
  }
  auto result = st.cfg->verifier->verify(cmd.token, auth::unix_now());
  if (!result) {
    // The connection keeps its current token (and, if it expired, its grace).
    fail(self, error_code::unauthenticated, refusal_text(result.problem), ref);
    return;
  }
  if (result.who->user != st.who.user) {
    fail(self, error_code::forbidden, "a refresh must be for the same user", ref);
    return;
  }
  // Roles and private rooms follow the newest token; rooms already joined stay joined.
  st.who = std::move(*result.who);
  st.phase = sign_in_phase::signed_in;
  ++st.token_generation;
  watch_expiry(self);
  reply(self, protocol::refreshed_event{auth::role_names(st.who.roles), *st.who.expires_at * 1000, ref});
}

void handle(self_ptr self, protocol::moderate_cmd& cmd, const protocol::ref_t& ref) {
  auto& st = self->state;
  moderation_record record{cmd.action, cmd.room, cmd.user, st.who.user, cmd.id, std::nullopt,
                           std::move(cmd.reason), now_ms()};
  if (cmd.duration)
    record.until = record.ts + static_cast<int64_t>(*cmd.duration) * 1000;
  protocol::moderated_event answer{cmd.action, cmd.room, cmd.user, cmd.id, ref};
  auto on_done = [self, answer, ticket = st.ticket](ok_atom) { reply(self, answer); };
  auto on_error = [self, ref, ticket = st.ticket](caf::error& err) { fail(self, err, ref); };
  if (cmd.room.empty()) {
    // Server-wide: only admins, and the presence tracker (which sees every session) enforces it.
    if (!auth::has(st.who.roles, auth::role::admin)) {
      fail(self, error_code::forbidden, "only admins ban from the whole server", ref);
      return;
    }
    auto tracker = registered<presence_actor>(self->system(), presence_atom::value);
    if (!tracker) {
      fail(self, error_code::room_unavailable, "presence is restarting; retry shortly", ref);
      return;
    }
    self->request(tracker, st.cfg->request_timeout, moderate_atom::value, std::move(record))
      .then(on_done, on_error);
    return;
  }
  if (!permitted(self, auth::room_action::moderate, cmd.room, ref))
    return;
  auto room = member_room(self, cmd.room, ref);
  if (!room)
    return;
  self->request(*room, st.cfg->request_timeout, moderate_atom::value, std::move(record))
    .then(on_done, on_error);
}

void handle(self_ptr self, protocol::decode_error& err, const protocol::ref_t& ref) {
  fail(self, err.code, std::move(err.message), ref);
}

} // namespace

std::string guest_name() {
  return "guest-" + hex(random_bits(), 4);
}

std::string session_id_text(uint64_t id) {
  return hex(id, 16);
}

session_actor::behavior_type session(self_ptr self, frame_sink_ptr sink,
                                     std::optional<auth::identity> who,
                                     std::shared_ptr<const session_config> cfg) {
  auto& st = self->state;
  st.session_id = random_bits();
  st.connected_since = now_ms();
  st.sink = std::move(sink);
  st.cfg = std::move(cfg);
  st.bucket.emplace(st.cfg->rate_per_second, st.cfg->rate_burst, self->clock().now());
  st.new_rooms.emplace(st.cfg->new_rooms_per_second, st.cfg->new_rooms_burst, self->clock().now());
  if (st.cfg->verifier) {
    if (who) {
      admit(self, std::move(*who), std::nullopt);  // the token came with the handshake
    } else {
      st.phase = sign_in_phase::waiting;
      self->delayed_send(self, st.cfg->auth_timeout, deadline_atom::value, st.token_generation);
    }
  } else {
    // Open mode: the name is whatever the client asked for; nothing verifies it.
    st.who.user = who && !who->user.empty() ? std::move(who->user) : guest_name();
    reply(self, protocol::welcome_event{st.who.user, session_id_text(st.session_id)});
    if (auto presence = registered<presence_actor>(self->system(), presence_atom::value))
      self->send(presence, put_atom::value, st.who.user, caf::actor_cast<caf::actor>(self));
  }

  self->set_down_handler([self](caf::down_msg& dm) {
    // A room we belong to went down. Until it says where it restarted, it is unavailable.
    for (auto& [name, room] : self->state.rooms)
      if (room.handle && room.handle.address() == dm.source)
        room.handle = nullptr;
  });

  return {
    [self](inbound_atom, protocol::inbound& in) {
      sample_mailbox(self, metrics::actor_kind::session);
      auto& stats = metrics::server_metrics();
      stats.frame_in(in);
      auto& st = self->state;
      // Ends with this handler unless a request made for the frame keeps it (see frame_ticket).
      auto ticket = std::make_shared<frame_ticket>(st.sink);
      if (st.closing)
        return;
      if (!st.bucket->try_take(self->clock().now())) {
        stats.rate_limit_hit(metrics::limit_kind::frame);
        fail(self, error_code::rate_limited, "slow down: too many frames", in.ref);
        return;
      }
      st.ticket = std::move(ticket);
      switch (st.phase) {
        case sign_in_phase::waiting:
          handle_sign_in(self, in);
          break;
        case sign_in_phase::expired:
          if (auto* refresh = std::get_if<protocol::refresh_cmd>(&in.cmd))
            handle(self, *refresh, in.ref);
          else
            fail(self, error_code::token_expired,
                 "your token expired: send {\"type\":\"refresh\",\"token\":...}", in.ref);
          break;
        case sign_in_phase::signed_in:
          std::visit([&](auto& cmd) { handle(self, cmd, in.ref); }, in.cmd);
          break;
      }
      st.ticket.reset();
    },
    [self](disconnect_atom) { self->quit(); },
    [self](moved_atom, const std::string& name, room_actor& room) {
      auto i = self->state.rooms.find(name);
      if (i == self->state.rooms.end() || i->second.handle == room)
        return;
      self->monitor(room);
      i->second.handle = std::move(room);
    },
    [self](closed_atom, const std::string& name) {
      if (self->state.rooms.erase(name) > 0)
        reply(self, protocol::left_event{name, "room_failed", std::nullopt});
    },
    [self](kicked_atom, const std::string& name, const std::string& reason) {
      auto& rooms = self->state.rooms;
      auto i = rooms.find(name);
      if (i == rooms.end())
        return;
      if (i->second.handle)
        self->demonitor(i->second.handle.address());
      rooms.erase(i);
      reply(self, protocol::left_event{name, reason, std::nullopt});
    },
    [self](banned_atom, const moderation_record& ban) {
      auto message = ban.reason.empty() ? std::string{"you are banned from this server"}
                                        : "you are banned from this server: " + ban.reason;
      close_with(self, error_code::banned, std::move(message), std::nullopt, close_code::banned,
                 "banned", ban.until);
    },
    [self](get_atom, info_atom) {
      auto& st = self->state;
      session_info info{session_id_text(st.session_id), st.who.user, st.who.display_name,
                        auth::role_names(st.who.roles), {}, st.connected_since,
                        st.sink->client_address(), st.phase == sign_in_phase::signed_in};
      for (auto& [name, room] : st.rooms)
        info.rooms.push_back(name);  // a std::map: already in name order
      return info;
    },
    [self](deadline_atom, uint64_t generation) {
      auto& st = self->state;
      if (generation != st.token_generation || st.phase == sign_in_phase::signed_in)
        return;
      if (st.phase == sign_in_phase::waiting)
        close_with(self, error_code::unauthenticated, "no token within the sign-in time",
                   std::nullopt, close_code::unauthenticated, "unauthenticated");
      else
        close_with(self, error_code::token_expired, "your token expired and was not refreshed",
                   std::nullopt, close_code::reauthenticate, "token expired");
    },
    [self](reauth_atom, uint64_t generation) {
      auto& st = self->state;
      if (generation != st.token_generation || st.phase != sign_in_phase::signed_in || st.closing)
        return;
      if (st.expiry_far) {
        watch_expiry(self);  // the day ran out, not the token
        return;
      }
      // Until a refresh arrives nothing else is handled; the connection and its rooms stay.
      st.phase = sign_in_phase::expired;
      auto grace = std::chrono::duration_cast<std::chrono::seconds>(st.cfg->refresh_grace).count();
      reply(self, protocol::error_event{error_code::token_expired,
                                        "your token expired: send {\"type\":\"refresh\",\"token\":...} within "
                                          + std::to_string(grace) + " s",
                                        std::nullopt});
      self->delayed_send(self, st.cfg->refresh_grace, deadline_atom::value, st.token_generation);
    },
  };
}

} // namespace parley
