#include "admin/actor_backend.hpp"

#include "actors/errors.hpp"
#include "actors/registry.hpp"
#include "protocol/messages.hpp"

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>

#include <algorithm>
#include <chrono>
#include <memory>

namespace parley::admin {

namespace {

using protocol::error_code;

backend_error unavailable(std::string message) {
  return backend_error{backend_error::unavailable, std::move(message)};
}

backend_error not_found(std::string message) {
  return backend_error{backend_error::not_found, std::move(message)};
}

/// An actor's refusal or a failed request, as the operator reads it. `what` names the actor.
backend_error to_backend_error(const caf::error& err, const std::string& what) {
  if (err == caf::sec::request_timeout)
    return unavailable(what + " did not answer in time");
  if (err == caf::sec::request_receiver_down)
    return unavailable(what + " is restarting; retry shortly");
  if (err.category() != error_category)
    return unavailable(what + " failed");
  switch (to_protocol_error(err)) {
    case error_code::not_found:
      return not_found(what + " not found");
    case error_code::store_unavailable:
      return unavailable("the message store cannot write right now; nothing was done, retry shortly");
    case error_code::room_unavailable:
      return unavailable(what + " is restarting; retry shortly");
    default:
      return unavailable(what + " refused: " + protocol::to_string(to_protocol_error(err)));
  }
}

/// The directory's answer to a room lookup that may not create rooms: the room is not stored.
backend_error lookup_error(const caf::error& err, const std::string& room) {
  if (err.category() == error_category) {
    auto code = to_protocol_error(err);
    if (code == error_code::rate_limited || code == error_code::room_limit || code == error_code::not_found)
      return not_found("no room " + room + " in memory or stored");
  }
  return to_backend_error(err, "the room directory");
}

std::string room_label(const std::string& room) {
  return "room " + room;
}

// The requester actors. Their inputs are spawn arguments, not lambda captures: CAF 0.17 reads a
// null argument tuple for function actors spawned without arguments, which UBSan reports.
using requester = caf::event_based_actor*;

void ask_rooms(requester self, directory_actor dir, caf::timespan timeout,
               backend_reply<std::vector<room_summary>> done) {
  // Rooms get half the time, so that the directory answers before this request gives up.
  self->request(dir, timeout, get_atom::value, rooms_atom::value, caf::timespan{timeout / 2})
    .then([done](std::vector<room_summary>& rooms) { done(std::move(rooms)); },
          [done](caf::error& err) { done(to_backend_error(err, "the room directory")); });
}

void ask_members(requester self, directory_actor dir, caf::timespan timeout, std::string room,
                 backend_reply<std::vector<room_member_summary>> done) {
  self->request(dir, timeout, live_atom::value, room)
    .then(
      [self, timeout, room, done](room_actor& handle) {
        self->request(handle, timeout, get_atom::value, members_atom::value)
          .then([done](std::vector<room_member_summary>& members) { done(std::move(members)); },
                [done, room](caf::error& err) { done(to_backend_error(err, room_label(room))); });
      },
      [done, room](caf::error& err) { done(to_backend_error(err, room_label(room) + " in memory")); });
}

void ask_user(requester self, presence_actor tracker, caf::timespan timeout, std::string user,
              backend_reply<user_report> done) {
  self->request(tracker, timeout, get_atom::value, sessions_atom::value, user, caf::timespan{timeout / 2})
    .then([done](user_report& report) { done(std::move(report)); },
          [done](caf::error& err) { done(to_backend_error(err, "presence")); });
}

std::function<void(caf::error&)> moderation_failed(const moderation_record& record,
                                                   backend_reply<done_t> done) {
  return [done, room = record.room](caf::error& err) {
    done(to_backend_error(err, room.empty() ? std::string{"presence"} : room_label(room)));
  };
}

/// Server-wide: the presence tracker records it and closes the user's sessions.
void ban_from_server(requester self, presence_actor tracker, caf::timespan timeout,
                     moderation_record record, backend_reply<done_t> done) {
  self->request(tracker, timeout, moderate_atom::value, record)
    .then([done](ok_atom) { done(done_t{}); }, moderation_failed(record, done));
}

/// Only members can be kicked: the room must be in memory and have the user.
void kick_member(requester self, directory_actor dir, caf::timespan timeout,
                 moderation_record record, backend_reply<done_t> done) {
  auto failed = moderation_failed(record, done);
  self->request(dir, timeout, live_atom::value, record.room)
    .then(
      [self, timeout, record, done, failed](room_actor& room) {
        self->request(room, timeout, get_atom::value, members_atom::value)
          .then(
            [self, timeout, room, record, done, failed](std::vector<room_member_summary>& members) {
              bool member = std::any_of(members.begin(), members.end(),
                                        [&](const room_member_summary& m) { return m.user == record.user; });
              if (!member)
                return done(not_found(record.user + " is not a member of " + record.room));
              self->request(room, timeout, moderate_atom::value, record)
                .then([done](ok_atom) { done(done_t{}); }, failed);
            },
            failed);
      },
      [done, room = record.room](caf::error& err) {
        done(to_backend_error(err, room_label(room) + " in memory"));
      });
}

/// A ban or unban also applies to a stored room nobody is in: the directory loads it (and never
/// creates one), and the room records and enforces the action like a moderator's.
void ban_in_room(requester self, directory_actor dir, caf::timespan timeout,
                 moderation_record record, backend_reply<done_t> done) {
  auto failed = moderation_failed(record, done);
  self->request(dir, timeout, get_atom::value, record.room, false)
    .then(
      [self, timeout, record, done, failed](room_lookup& found) {
        self->request(found.room, timeout, moderate_atom::value, record)
          .then([done](ok_atom) { done(done_t{}); }, failed);
      },
      [done, room = record.room](caf::error& err) { done(lookup_error(err, room)); });
}

void send_notice(requester self, directory_actor dir, caf::timespan timeout, std::string room,
                 std::string text, backend_reply<uint64_t> done) {
  self->request(dir, timeout, live_atom::value, room)
    .then(
      [self, timeout, room, text, done](room_actor& handle) {
        self->request(handle, timeout, notice_atom::value, text)
          .then([done](uint64_t delivered) { done(delivered); },
                [done, room](caf::error& err) { done(to_backend_error(err, room_label(room))); });
      },
      [done, room](caf::error& err) { done(to_backend_error(err, room_label(room) + " in memory")); });
}

void ask_health(requester self, store_actor store, directory_actor dir, caf::timespan timeout,
                std::function<void(actor_health)> done) {
  struct pending {
    actor_health result;
    int left = 2;
  };
  auto state = std::make_shared<pending>();
  auto one_done = [state, done] {
    if (--state->left == 0)
      done(state->result);
  };
  self->request(store, timeout, status_atom::value)
    .then(
      [state, one_done](bool open) {
        state->result.store_open = open;
        one_done();
      },
      [one_done](caf::error&) { one_done(); });
  // Any answer means the directory runs: not_found for a name no room can have is the usual one.
  self->request(dir, timeout, live_atom::value, std::string{})
    .then(
      [state, one_done](room_actor&) {
        state->result.directory_running = true;
        one_done();
      },
      [state, one_done](caf::error& err) {
        state->result.directory_running = err.category() == error_category;
        one_done();
      });
}

} // namespace

actor_backend::actor_backend(caf::actor_system& sys, caf::timespan timeout)
  : sys_(sys), timeout_(timeout) {
  // nop
}

void actor_backend::list_rooms(backend_reply<std::vector<room_summary>> done) {
  auto dir = registered<directory_actor>(sys_, directory_atom::value);
  if (!dir)
    return done(unavailable("the room directory is restarting; retry shortly"));
  sys_.spawn(ask_rooms, dir, timeout_, std::move(done));
}

void actor_backend::room_members(const std::string& room,
                                 backend_reply<std::vector<room_member_summary>> done) {
  auto dir = registered<directory_actor>(sys_, directory_atom::value);
  if (!dir)
    return done(unavailable("the room directory is restarting; retry shortly"));
  sys_.spawn(ask_members, dir, timeout_, room, std::move(done));
}

void actor_backend::user_sessions(const std::string& user, backend_reply<user_report> done) {
  auto tracker = registered<presence_actor>(sys_, presence_atom::value);
  if (!tracker)
    return done(unavailable("presence is restarting; retry shortly"));
  sys_.spawn(ask_user, tracker, timeout_, user, std::move(done));
}

void actor_backend::moderate(moderation_record record, backend_reply<done_t> done) {
  if (record.room.empty()) {
    auto tracker = registered<presence_actor>(sys_, presence_atom::value);
    if (!tracker)
      return done(unavailable("presence is restarting; retry shortly"));
    sys_.spawn(ban_from_server, tracker, timeout_, std::move(record), std::move(done));
    return;
  }
  auto dir = registered<directory_actor>(sys_, directory_atom::value);
  if (!dir)
    return done(unavailable("the room directory is restarting; retry shortly"));
  if (record.action == protocol::moderation_action::kick)
    sys_.spawn(kick_member, dir, timeout_, std::move(record), std::move(done));
  else
    sys_.spawn(ban_in_room, dir, timeout_, std::move(record), std::move(done));
}

void actor_backend::notice(const std::string& room, const std::string& text,
                           backend_reply<uint64_t> done) {
  auto dir = registered<directory_actor>(sys_, directory_atom::value);
  if (!dir)
    return done(unavailable("the room directory is restarting; retry shortly"));
  sys_.spawn(send_notice, dir, timeout_, room, text, std::move(done));
}

void actor_backend::health(std::function<void(actor_health)> done) {
  auto store = registered<store_actor>(sys_, store_atom::value);
  auto dir = registered<directory_actor>(sys_, directory_atom::value);
  if (!store || !dir)
    return done(actor_health{false, false});
  // Readiness probes come every few seconds and must answer quickly either way.
  auto timeout = std::min<caf::timespan>(timeout_, std::chrono::seconds(1));
  sys_.spawn(ask_health, store, dir, timeout, std::move(done));
}

} // namespace parley::admin
