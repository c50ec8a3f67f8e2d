#pragma once

// Mailbox depth per actor kind (parley_mailbox_depth and parley_mailbox_depth_max).
//
// How it is sampled: an actor calls sample_mailbox() at the top of its hot handlers only (a
// session's inbound frame; a room's post and join; the store's append; presence's sign-in and
// status; the directory's lookup; the supervisor's down and restart messages). A sample is then
// one per unit of work, never one per delivery: fan-out, presence ticks and timers take none.
// CAF 0.17's mailbox().size() is approximate (it counts what the actor has already moved out of
// its lock-free inbox after pulling in what is waiting there, which the next round would do
// anyway), so a sample costs a pointer exchange, a max and a histogram update: a few atomics.
// A depth only matters where work arrives, which is where the samples are taken.

#include "metrics/server_metrics.hpp"

namespace parley {

/// Records the current mailbox depth of `self`, an actor of this kind.
template <class Self>
void sample_mailbox(Self* self, metrics::actor_kind kind) noexcept {
  metrics::server_metrics().mailbox_sample(kind, self->mailbox().size());
}

} // namespace parley
