#pragma once

#include "actors/actors.hpp"
#include "config/settings.hpp"
#include "storage/message_db.hpp"

#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace parley {

/// A room the store has seen, cached so that an append needs no lookup.
struct stored_room {
  int64_t key = 0;       ///< 0: not written yet; its row goes in with the next group
  uint64_t epoch = 0;
  uint64_t next_id = 1;  ///< advanced when an append is queued; reloaded if its group fails
};

/// An append waiting for its group to commit.
struct pending_append {
  int64_t room_key = 0;  ///< 0: the room's row is written in the same group, before it
  uint64_t epoch = 0;
  protocol::chat_message msg;
  bool duplicate = false;  ///< a retry of a cid queued earlier in this group: nothing to write
  caf::typed_response_promise<append_result> promise;
};

// Rooms and the database (the design; docs/security.md, "Rooms and the database", says it for operators):
// - A room's row is written with its first message, in that message's group, never on open. Joining
//   any number of new names and leaving again writes nothing: only messages grow the file, and
//   retention bounds the messages of each room.
// - A new room gets its epoch when it is opened; the store keeps it in `unwritten` while the room
//   is in memory, and the room hands it back with its first append, so the row carries the epoch
//   clients saw. A room that retires without a message is forgotten: a later open is a new room
//   with a new epoch, which loses nothing, since there was nothing to lose.
// - max_rooms bounds stored rooms plus unwritten ones. Stored rooms are counted from the file when
//   it is opened, so the cap holds across restarts; an unwritten room stops counting when the
//   directory reports that it left memory (retire_atom). A restarted store has forgotten the
//   unwritten rooms still in memory: they count again once written, so after a store crash the cap
//   may be passed by at most the rooms that were in memory then.
struct store_state {
  static inline const char* name = "store";

  store_settings cfg;
  std::unique_ptr<storage::message_db> db;  ///< null while the database cannot be opened
  std::unordered_map<std::string, stored_room> rooms;
  std::vector<pending_append> pending;
  /// Rooms whose row is written with the pending group, with their epoch.
  std::vector<std::pair<std::string, uint64_t>> creating;
  /// Rooms in memory that have no row (yet): name -> epoch. At most max_rooms entries.
  std::unordered_map<std::string, uint64_t> unwritten;
  std::size_t stored_rooms = 0;  ///< rows in the rooms table
  /// (room, sender, cid) -> index in `pending`, so a quick retry joins its original's fate.
  std::unordered_map<std::string, std::size_t> pending_cids;
  bool flush_scheduled = false;
  bool healthy = true;  ///< for logging each outage once, and its end
};

/// The database options a store_settings value means.
storage::db_options make_db_options(const store_settings& cfg);

/// A fresh epoch for a new room: random, below 2^53 so JavaScript clients keep it exact.
uint64_t new_epoch();

/// The store actor. Registers itself as "store" so rooms find the current incarnation. Spawn it
/// detached in the server: SQLite calls block, and must not hold up a scheduler thread.
store_actor::behavior_type store(store_actor::stateful_pointer<store_state> self, store_settings cfg);

} // namespace parley
