#pragma once

#include "actors/actors.hpp"
#include "actors/grace_queue.hpp"
#include "actors/message_rate.hpp"
#include "actors/restriction_map.hpp"
#include "config/settings.hpp"

#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>

namespace parley {

/// One member connection of a room.
struct room_member {
  caf::actor session;
  std::string user;
  frame_sink_ptr sink;
  std::string name;  ///< display name for the messages it posts; empty: the user id
};


/// A message a room holds in memory: the record, and the very frame it was broadcast as, which
/// "joined" splices in so that a join never encodes a message again.
struct held_message {
  protocol::chat_message msg;
  frame encoded;
};

/// What a room reads from the configuration.
struct room_config {
  room_settings rooms;
  presence_settings presence;
  /// Cluster mode: messages reach members through the cluster feed (deliver_atom), in the order of
  /// the room's Redis stream, and presence merges the users on other nodes (remote_atom).
  bool clustered = false;
};

/// What a room must not forget when its actor crashes. The supervisor's child spec owns it, and each
/// new incarnation of the room actor adopts it: members stay members, ids continue, history stays,
/// and so does who is present. The store is the durable record; this is the room's fast copy of its
/// newest part.
struct room_memory {
  /// Counts a room in memory (parley_rooms) from here to the destructor.
  room_memory(std::string room_name, uint64_t room_epoch, caf::timespan grace);
  /// Uncounts the room and the memberships it still holds.
  ~room_memory();
  room_memory(const room_memory&) = delete;
  room_memory& operator=(const room_memory&) = delete;

  std::string name;
  uint64_t epoch;                  ///< changes only when history is lost (a new database)
  uint64_t next_id = 1;            ///< one past the highest committed id
  uint64_t evicted_up_to = 0;      ///< highest id not held here; recovery from memory needs since >= it
  std::deque<held_message> history;  ///< the newest history_size messages, oldest first
  std::unordered_map<caf::actor_id, room_member> members;
  /// Present users (a member connection, or within their grace), in name order: a join or leave is
  /// O(log n), and a page of names starts at upper_bound(after).
  std::set<std::string> present;
  /// Cluster mode: users present through other nodes (some may be here too). `present` holds
  /// these and the users present here.
  std::set<std::string> remote;
  /// Present users without a connection, until their grace ends.
  grace_queue grace;
  protocol::presence_mode mode = protocol::presence_mode::users;
  std::size_t incarnation = 0;     ///< how many actors have run this room
  restriction_map bans;   ///< banned users: joins refused with banned (the store has them too)
  restriction_map mutes;  ///< muted users: posts refused with muted
  message_rate rate;      ///< messages accepted per second, for the admin API
  /// Cluster mode: the last events stream entry this room has put in force (or its snapshot's
  /// position); a new incarnation watches from it, so no other node's moderation is missed.
  std::string events_position;
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
  /// Presence changes of this interval: user -> present at its end. Flushed as one presence_diff.
  /// It dies with the actor; a new incarnation sends presence_state to everyone instead.
  std::unordered_map<std::string, bool> pending;
  /// Members whose presence frame was dropped: they get presence_state each tick until one is queued.
  std::unordered_set<caf::actor_id> stale;
  /// Cluster mode: posts stored in Redis, answered once the feed delivered their id (so the
  /// sender gets its message before the answer, as in single mode). By id.
  std::map<uint64_t, caf::typed_response_promise<uint64_t>> unanswered_posts;
  /// Cluster mode: who is present through this node changed; the feed learns it at the next tick.
  bool local_presence_changed = false;
  bool tick_scheduled = false;   ///< a tick_atom is on its way
  bool grace_scheduled = false;  ///< an expire_atom is on its way
};

/// A room's memory as loaded from the store: epoch, ids and the newest messages (encoded once here).
std::shared_ptr<room_memory> make_room_memory(std::string name, const room_snapshot& snapshot,
                                              caf::timespan grace);

/// The room actor. `mem` survives restarts; see room_memory.
room_actor::behavior_type room(room_actor::stateful_pointer<room_state> self,
                               std::shared_ptr<room_memory> mem, room_config cfg);

} // namespace parley
