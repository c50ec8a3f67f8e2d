#pragma once

#include "actors/actors.hpp"
#include "cluster/cluster_config.hpp"
#include "cluster/redis_client.hpp"
#include "cluster/redis_schema.hpp"

#include <caf/typed_event_based_actor.hpp>

#include <chrono>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

namespace parley {

/// A room of this node whose stream the feed reads.
struct watched_room {
  room_actor handle;
  std::string stream_key;
  uint64_t delivered = 0;            ///< the last message id handed to the room
  std::vector<std::string> local;    ///< users present through this node, as the room last said
  bool local_dirty = false;          ///< `local` is not written to Redis yet
  std::vector<std::string> remote;   ///< users present through other nodes, as last handed over
  bool remote_sent = false;          ///< the room has been told `remote` at least once
  /// Events up to this entry are in the room's state already (its snapshot, or put in force).
  std::string events_from;
};

/// What the feed must not forget when its actor crashes: the supervisor's child spec owns it, and
/// each incarnation adopts it, so that rooms stay watched from where they were.
struct cluster_feed_memory {
  std::map<std::string, watched_room> rooms;           ///< by room name
  std::unordered_map<std::string, std::string> room_of_stream;  ///< stream key -> room name
  /// The last events entry read; resolved to a concrete id on the first connection, so that
  /// nothing recorded while Redis was unreachable is skipped.
  std::string events_after;
};

struct cluster_feed_state {
  static inline const char* name = "cluster_feed";

  cluster::cluster_config cfg;
  cluster::redis_keys keys{"parley"};
  std::unique_ptr<cluster::redis_client> client;
  std::shared_ptr<cluster_feed_memory> mem;
  bool healthy = true;
  bool rewrite_presence = false;  ///< after a (re)connect: write every local entry again
  backoff reconnect = cluster::make_reconnect_backoff();
  std::minstd_rand rng{std::random_device{}()};  ///< the reconnect backoff's jitter
  caf::timespan retry_in{0};  ///< while disconnected: the wait before the next attempt
};

/// The cluster feed (cluster_feed_actor in actors.hpp). Spawn it detached: its blocking XREAD holds
/// its thread up to read_wait at a time, and the feed handles its mailbox between two reads.
cluster_feed_actor::behavior_type cluster_feed(cluster_feed_actor::stateful_pointer<cluster_feed_state> self,
                                               cluster::cluster_config cfg,
                                               std::shared_ptr<cluster_feed_memory> mem);

/// How long one XREAD waits for new entries before the feed looks at its mailbox again (a newly
/// watched room is read from the next round on).
constexpr std::chrono::milliseconds read_wait{50};

} // namespace parley
