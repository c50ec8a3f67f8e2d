#pragma once

#include "actors/actors.hpp"

#include <caf/typed_event_based_actor.hpp>

#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>

namespace parley {

/// What the presence tracker must not forget across a restart; owned by its child spec.
struct presence_memory {
  /// user -> live sessions (by actor id) and their handles.
  std::unordered_map<std::string, std::unordered_map<caf::actor_id, caf::actor>> sessions;
  /// users whose last session ended, online until their grace token expires.
  std::unordered_map<std::string, uint64_t> departing;
  uint64_t next_token = 1;
};

struct presence_state {
  static inline const char* name = "presence";

  std::shared_ptr<presence_memory> mem;
  caf::timespan grace;
  /// session actor id -> user, to clean up on down_msg.
  std::unordered_map<caf::actor_id, std::string> user_of;
};

/// The presence tracker: a user is online while any session is alive, and for `grace` after the
/// last one ends, so a quick reconnect never shows as offline. Registers itself as "presence".
presence_actor::behavior_type presence(presence_actor::stateful_pointer<presence_state> self,
                                       std::shared_ptr<presence_memory> mem, caf::timespan grace);

} // namespace parley
