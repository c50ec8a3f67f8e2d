#pragma once

#include "actors/actors.hpp"
#include "actors/grace_queue.hpp"
#include "actors/restriction_map.hpp"

#include <caf/typed_event_based_actor.hpp>

#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

namespace parley {

/// One live session the tracker watches.
struct tracked_session {
  std::string user;
  caf::actor handle;  ///< kept so that a restarted tracker can monitor it again
};

/// What the presence tracker must not forget across a restart; owned by its child spec.
struct presence_memory {
  explicit presence_memory(caf::timespan grace) : grace(grace) {
    // nop
  }

  /// Live sessions by actor id.
  std::unordered_map<caf::actor_id, tracked_session> sessions;
  /// user -> how many live sessions the user has (no entry: none).
  std::unordered_map<std::string, std::size_t> session_count;
  /// Users whose last session ended, online until their grace ends.
  grace_queue grace;
  /// Users banned from the server: user -> until (ms since the Unix epoch; nullopt: for good).
  /// Read from the store at the first sign-in, then kept up to date by moderate_atom.
  restriction_map server_bans;
  bool bans_loaded = false;
};

struct presence_state {
  static inline const char* name = "presence";

  std::shared_ptr<presence_memory> mem;
  bool grace_scheduled = false;  ///< an expire_atom is on its way
};

/// The presence tracker: a user is online while any session is alive, and for the grace after the
/// last one ends, so a quick reconnect never shows as offline. It answers the "status" command.
/// Since it sees every session of every user, it also keeps users banned from the server out
/// (admit) and closes their sessions when a ban comes (moderate_atom). Registers itself as
/// "presence".
presence_actor::behavior_type presence(presence_actor::stateful_pointer<presence_state> self,
                                       std::shared_ptr<presence_memory> mem);

} // namespace parley
