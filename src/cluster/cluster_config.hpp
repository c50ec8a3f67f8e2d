#pragma once

#include "actors/backoff.hpp"
#include "cluster/redis_client.hpp"
#include "config/settings.hpp"

#include <cstddef>
#include <string>

namespace parley::cluster {

/// What the cluster actors of one node share.
struct cluster_config {
  cluster_settings settings;
  redis_address address;
  /// This process among the nodes: the node id and a random incarnation ("a#5f3c9e01"). Presence
  /// entries are keyed by it, so a node that restarts under the same id does not inherit the
  /// entries of its previous life: those expire with that life's heartbeats.
  std::string node;
  std::size_t max_rooms = 0;  ///< [rooms] max_rooms, enforced across the cluster
  std::chrono::milliseconds timeout{2000};
};

/// How the cluster actors retry Redis after a failure: from 100 ms, doubling, up to 2 s (with the
/// supervisor's jitter, so that the nodes of a cluster do not all reconnect at the same moment).
inline backoff make_reconnect_backoff() {
  return backoff{std::chrono::milliseconds(100), std::chrono::seconds(2), 2.0};
}

/// The node's configuration from the settings (already checked: the address parses). An empty
/// node id becomes hostname-pid.
cluster_config make_cluster_config(const cluster_settings& s, std::size_t max_rooms);

} // namespace parley::cluster
