#pragma once

#include "actors/actors.hpp"
#include "config/settings.hpp"

#include <caf/typed_event_based_actor.hpp>

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <unordered_map>

namespace parley {

/// One member connection of a room.
struct room_member {
  caf::actor session;
  std::string user;
  frame_sink_ptr sink;
};

/// What a room must not forget when its actor crashes. The supervisor's child spec owns it, and each
/// new incarnation of the room actor adopts it: members stay members, ids continue, history stays.
/// The store is the durable record; this is the room's fast copy of its newest part.
struct room_memory {
  explicit room_memory(std::string room_name, uint64_t room_epoch)
    : name(std::move(room_name)), epoch(room_epoch) {
    // nop
  }

  std::string name;
  uint64_t epoch;                  ///< changes only when history is lost (a new database)
  uint64_t next_id = 1;            ///< one past the highest committed id
  uint64_t evicted_up_to = 0;      ///< highest id not held here; recovery from memory needs since >= it
  std::deque<protocol::chat_message> history;  ///< the newest history_size messages, oldest first
  std::unordered_map<caf::actor_id, room_member> members;
  /// users whose last session died, still shown online until their grace token expires.
  std::unordered_map<std::string, uint64_t> departing;
  uint64_t next_token = 1;
  std::size_t incarnation = 0;     ///< how many actors have run this room
};

/// What a room reads from the configuration.
struct room_config {
  room_settings rooms;
  caf::timespan grace = std::chrono::seconds(5);
};

/// Per-incarnation state: things that may be rebuilt after a restart.
struct room_state {
  static inline const char* name = "room";

  std::shared_ptr<room_memory> mem;
  room_config cfg;
  store_actor store;  ///< cached; looked up again after it fails
  /// user -> number of this room's member sessions the user has.
  std::unordered_map<std::string, std::size_t> user_sessions;
  /// user -> when their last typing indicator was relayed.
  std::unordered_map<std::string, caf::actor_clock::time_point> last_typing;
  caf::actor_clock::time_point empty_since;
};

/// A room's memory as loaded from the store: epoch, ids and the newest messages.
std::shared_ptr<room_memory> make_room_memory(std::string name, const room_snapshot& snapshot);

/// The room actor. `mem` survives restarts; see room_memory.
room_actor::behavior_type room(room_actor::stateful_pointer<room_state> self,
                               std::shared_ptr<room_memory> mem, room_config cfg);

} // namespace parley
