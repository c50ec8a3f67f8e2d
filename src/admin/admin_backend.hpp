#pragma once

// The admin API's narrow view of the actors: each call starts an asynchronous request and returns
// at once; `done` runs later on some other thread (a CAF worker) with the answer or an error, and
// always runs exactly once (every request has a timeout). The HTTP side never waits for an actor.
// actor_backend.hpp implements it with CAF; tests use a fake.

#include "actors/actors.hpp"

#include <cstdint>
#include <functional>
#include <string>
#include <variant>
#include <vector>

namespace parley::admin {

/// Why a backend call failed.
struct backend_error {
  enum kind_t {
    not_found,    ///< no such room (or the user is not in it)
    unavailable,  ///< an actor did not answer in time, is restarting, or the store failed
  };
  kind_t kind = unavailable;
  std::string message;  ///< for the operator
};

template <class T>
using backend_result = std::variant<T, backend_error>;

template <class T>
using backend_reply = std::function<void(backend_result<T>)>;

/// Nothing to report but success.
struct done_t {};

/// The actors readiness depends on.
struct actor_health {
  bool store_open = false;         ///< the store answered that its database is open
  bool directory_running = false;  ///< the room directory answered
};

class admin_backend {
public:
  virtual ~admin_backend() = default;

  /// The rooms in memory, with their numbers.
  virtual void list_rooms(backend_reply<std::vector<room_summary>> done) = 0;

  /// The members of a room in memory. not_found: the room is not in memory.
  virtual void room_members(const std::string& room,
                            backend_reply<std::vector<room_member_summary>> done) = 0;

  /// One user's online state and sessions.
  virtual void user_sessions(const std::string& user, backend_reply<user_report> done) = 0;

  /// A moderation action (by "admin"), through the same actors a moderator's command takes: a
  /// room's kick, ban or unban (record.room set), or a server-wide ban or unban (room empty).
  /// not_found: kick in a room not in memory or without the user; ban/unban in a room that is
  /// neither in memory nor stored.
  virtual void moderate(moderation_record record, backend_reply<done_t> done) = 0;

  /// A server notice to every member of a room in memory; answers the connections reached.
  /// not_found: the room is not in memory.
  virtual void notice(const std::string& room, const std::string& text,
                      backend_reply<uint64_t> done) = 0;

  /// Whether the store has its database open and the directory runs; an actor that does not
  /// answer within a short timeout counts as not.
  virtual void health(std::function<void(actor_health)> done) = 0;
};

} // namespace parley::admin
