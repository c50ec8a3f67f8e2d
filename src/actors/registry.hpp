#pragma once

// How actors find the current incarnation of the directory, the presence tracker and the store:
// CAF's registry, under the atoms declared in actors.hpp.

#include <caf/actor_cast.hpp>
#include <caf/actor_registry.hpp>
#include <caf/actor_system.hpp>
#include <caf/atom.hpp>

namespace parley {

/// Registers `self` under `key`, replacing a previous incarnation.
template <class Self>
void register_as(Self* self, caf::atom_value key) {
  auto& registry = self->system().registry();
  // CAF 0.17's put keeps an existing entry: drop the previous incarnation's first.
  registry.erase(key);
  registry.put(key, caf::actor_cast<caf::strong_actor_ptr>(self));
}

/// The actor registered under `key` as a `Handle`; invalid if there is none.
template <class Handle>
Handle registered(caf::actor_system& sys, caf::atom_value key) {
  return caf::actor_cast<Handle>(sys.registry().get(key));
}

} // namespace parley
