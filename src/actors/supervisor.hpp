#pragma once

#include "actors/actors.hpp"
#include "actors/backoff.hpp"
#include "config/settings.hpp"

#include <caf/typed_event_based_actor.hpp>

#include <functional>
#include <map>
#include <random>
#include <string>
#include <unordered_map>

namespace parley {

/// One supervised child and its restart bookkeeping.
struct supervised_child {
  child_spec spec;
  caf::actor handle;        ///< invalid while waiting for a restart
  uint64_t generation = 0;  ///< bumped on every (re)start; stale timers compare against it
  parley::backoff delays;
  restart_intensity intensity;
};

struct supervisor_state {
  static inline const char* name = "supervisor";

  supervisor_settings cfg;
  std::map<std::string, supervised_child> children;
  std::unordered_map<caf::actor_id, std::string> key_of;  ///< running child -> its key
  std::mt19937_64 rng;
  std::function<void(const std::string&)> on_fatal;
};

/// The supervisor. Children that exit normally are forgotten; children that fail are restarted
/// after an exponential backoff with jitter, until they fail more than `max_restarts` times within
/// `restart_window`: then the supervisor gives up on them, and on an essential child it calls
/// `on_fatal` (the server then shuts down). `stop_atom` without a key stops every child and the
/// supervisor itself.
supervisor_actor::behavior_type supervisor(supervisor_actor::stateful_pointer<supervisor_state> self,
                                           supervisor_settings cfg, uint64_t seed,
                                           std::function<void(const std::string&)> on_fatal);

} // namespace parley
