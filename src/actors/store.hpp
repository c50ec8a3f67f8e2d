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
#include <vector>

namespace parley {

/// A room the store has seen, cached so that an append needs no lookup.
struct stored_room {
  int64_t key = 0;
  uint64_t epoch = 0;
  uint64_t next_id = 1;  ///< advanced when an append is queued; reloaded if its group fails
};

/// An append waiting for its group to commit.
struct pending_append {
  int64_t room_key = 0;
  uint64_t epoch = 0;
  protocol::chat_message msg;
  bool duplicate = false;  ///< a retry of a cid queued earlier in this group: nothing to write
  caf::typed_response_promise<append_result> promise;
};

/// A room that open() did not find: its row is written with the next group, so that a burst of new
/// rooms shares one commit (and one sync to disk) instead of taking one each. Answered after it.
struct pending_open {
  std::string name;
  uint64_t epoch = 0;
  std::vector<caf::typed_response_promise<room_snapshot>> promises;  ///< every open of it meanwhile
};

struct store_state {
  static inline const char* name = "store";

  store_settings cfg;
  std::unique_ptr<storage::message_db> db;  ///< null while the database cannot be opened
  std::unordered_map<std::string, stored_room> rooms;
  std::vector<pending_append> pending;
  std::vector<pending_open> opening;  ///< new rooms waiting for the next group
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
