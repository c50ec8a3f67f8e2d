#pragma once

// The one timer an actor keeps for its grace_queue (rooms and the presence tracker both do).

#include "actors/actors.hpp"
#include "actors/grace_queue.hpp"

#include <caf/timespan.hpp>

namespace parley {

/// Sends `self` an expire_atom at the oldest deadline in `queue`, unless one is already on its
/// way (`armed`) or nothing runs. The handler clears `armed` and calls this again.
template <class Self>
void arm_grace_timer(Self self, const grace_queue& queue, bool& armed) {
  if (armed)
    return;
  auto deadline = queue.next_deadline();
  if (!deadline)
    return;
  auto now = self->clock().now();
  armed = true;
  self->delayed_send(self, *deadline > now ? *deadline - now : caf::timespan{0}, expire_atom::value);
}

} // namespace parley
