#pragma once

#include "actors/actors.hpp"
#include "cluster/cluster_config.hpp"
#include "cluster/redis_client.hpp"
#include "cluster/redis_schema.hpp"

#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

namespace parley {

/// The SHA1 of each script, as Redis knows it (loaded on every new connection).
struct loaded_scripts {
  std::string open_room;
  std::string append_message;
  std::string read_messages;
};

/// An append waiting for the next pipeline.
struct queued_append {
  uint64_t epoch = 0;
  protocol::chat_message msg;
  caf::typed_response_promise<append_result> promise;
};

struct redis_store_state {
  static inline const char* name = "redis_store";

  cluster::cluster_config cfg;
  cluster::redis_keys keys{"parley"};
  std::unique_ptr<cluster::redis_client> client;
  loaded_scripts scripts;
  /// Rooms this node opened: name -> the highest id it knows was allocated. An append to a room
  /// whose Redis hash is gone although it had messages means Redis lost data: refused, not
  /// silently restarted from id 1.
  std::unordered_map<std::string, uint64_t> last_known;
  bool healthy = true;   ///< for logging each outage once, and its end
  /// strict durability: Redis was seen to fsync every write (appendonly yes, appendfsync always).
  bool durable = false;
  std::string durability_problem;  ///< why not, for the log and readiness
  std::chrono::steady_clock::time_point next_connect;  ///< no new attempt before this
  backoff reconnect = cluster::make_reconnect_backoff();
  std::minstd_rand rng{std::random_device{}()};  ///< the reconnect backoff's jitter
  std::vector<queued_append> queued;  ///< appends for the next pipeline
  bool flush_scheduled = false;       ///< a flush_atom is on its way
};

/// The message store of cluster mode: the same interface as the SQLite store (store_actor), kept in
/// Redis (docs/cluster.md). Ids come from an atomic script per append, so they are monotonic, unique
/// and gap-free across nodes; the appends waiting in the mailbox go to Redis in one pipeline (one
/// fsync for all of them), and each is answered once Redis has accepted it (with strict durability
/// only while Redis fsyncs every write). Moderation is recorded and published on the
/// events stream, which every node's cluster feed reads. Registers itself as "store". Spawn it
/// detached: each call blocks its thread until Redis answers.
store_actor::behavior_type redis_store(store_actor::stateful_pointer<redis_store_state> self,
                                       cluster::cluster_config cfg);

} // namespace parley
