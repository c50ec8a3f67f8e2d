#pragma once

#include "actors/actors.hpp"
#include "actors/room.hpp"

#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace parley {

/// What the directory must not forget across a restart; owned by its child spec.
struct directory_memory {
  std::unordered_map<std::string, room_actor> rooms;
  uint64_t rooms_started = 0;  ///< numbers child keys, which must never repeat
};

struct directory_state {
  static inline const char* name = "directory";

  std::shared_ptr<directory_memory> mem;
  supervisor_actor supervisor;
  room_config cfg;
  /// Lookups waiting for a room that is being started; the first one started it.
  std::unordered_map<std::string, std::vector<caf::typed_response_promise<room_lookup>>> pending;
};

/// The supervisor key of a room's child spec.
std::string room_child_key(const std::string& room_name);

/// The room directory: creates rooms on demand as supervised children, and lets idle empty rooms
/// retire. Registers itself as "directory" so rooms and sessions find the current incarnation.
directory_actor::behavior_type directory(directory_actor::stateful_pointer<directory_state> self,
                                         std::shared_ptr<directory_memory> mem,
                                         supervisor_actor supervisor, room_config cfg);

} // namespace parley
