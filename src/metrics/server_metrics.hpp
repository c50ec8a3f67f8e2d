#pragma once

// The catalogue: every metric Parley exports, by name, as members of one struct. Its names are a
// contract with the admin page and the Grafana dashboard (docs/operations.md, "Metrics").
//
// server_metrics() registers everything into metrics::process_registry() the first time it is
// called and never again, however many servers or actors a process (a test binary) creates. Code
// that updates a metric calls server_metrics() and updates a member: an atomic add, no lock.
// Labelled children that hot paths use are looked up once here and kept (family::with() locks).

#include "metrics/histogram_batch.hpp"
#include "metrics/registry.hpp"
#include "protocol/frame_sink.hpp"

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace parley::protocol {
struct inbound;
}

namespace parley::metrics {

/// The actor kinds whose mailboxes are sampled (the `kind` label of parley_mailbox_depth*).
enum class actor_kind : uint8_t { session, room, presence, directory, store, supervisor };
inline constexpr std::size_t actor_kind_count = 6;

/// The label value of an actor kind.
std::string_view to_string(actor_kind kind);

/// The kinds of rate limit (the `kind` label of parley_rate_limited_total).
enum class limit_kind : uint8_t { frame, new_room, handshake };
inline constexpr std::size_t limit_kind_count = 3;

/// The metrics of the whole server. Obtain it with server_metrics().
struct catalogue {
  // -- connections (src/net) ------------------------------------------------------------------------
  gauge& connections_open;
  counter& connections_opened;
  family<counter>& connections_closed;   ///< label: code
  family<counter>& handshakes_refused;   ///< label: reason (refusal_log's reasons)
  family<counter>& frames_dropped;       ///< label: class (frame_class of the frame)
  counter& slow_consumer_closes;
  histogram& delivery_latency;           ///< seconds, accept to write completion

  // -- sessions and rooms (src/actors) --------------------------------------------------------------
  family<counter>& frames_in;            ///< label: type
  counter& messages_accepted;
  counter& deliveries;
  family<counter>& rate_limited;         ///< label: kind
  gauge& rooms;
  gauge& room_members;
  family<gauge>& mailbox_depth_max;      ///< label: kind
  family<histogram>& mailbox_depth;      ///< label: kind

  // -- store and supervision ------------------------------------------------------------------------
  histogram& store_commit_seconds;
  histogram& store_commit_group_size;
  family<counter>& supervisor_restarts;  ///< label: kind
  family<counter>& supervisor_give_ups;  ///< label: kind
  // -- cluster mode (docs/cluster.md) ---------------------------------------------------------------
  family<counter>& redis_failures;       ///< label: client (store, feed)
  counter& cluster_messages_read;
  family<counter>& cluster_events;       ///< label: kind (moderation, presence)

  // -- children kept for hot paths ------------------------------------------------------------------
  std::array<counter*, limit_kind_count> limit_hits{};
  std::array<gauge*, actor_kind_count> depth_max{};
  std::array<histogram*, actor_kind_count> depth{};
  std::array<counter*, 4> dropped_by_class{};  ///< indexed by frame_class

  /// Counts one rate-limit hit.
  void rate_limit_hit(limit_kind kind) noexcept { limit_hits[static_cast<std::size_t>(kind)]->inc(); }

  /// Records one mailbox-depth sample of an actor of this kind.
  void mailbox_sample(actor_kind kind, std::size_t depth_now) noexcept {
    auto i = static_cast<std::size_t>(kind);
    depth_max[i]->raise_to(static_cast<int64_t>(depth_now));
    depth[i]->observe(static_cast<double>(depth_now));
  }

  /// Counts one outbound frame dropped past the soft mark.
  void frame_dropped(frame_class cls) noexcept {
    dropped_by_class[static_cast<std::size_t>(cls) % dropped_by_class.size()]->inc();
  }

  /// Counts one decoded client frame by its type.
  void frame_in(const protocol::inbound& in);

  /// Counts one ended WebSocket connection by the code of its close handshake (1006: none).
  void connection_closed(uint16_t code);

  /// Counts one supervisor restart or give-up; the kind is the child key's prefix ("room:x" -> room).
  void supervisor_restart(std::string_view child_key);
  void supervisor_give_up(std::string_view child_key);
};

/// The catalogue, registered into process_registry() on first use (thread-safe, exactly once).
catalogue& server_metrics();

/// This thread's batch of delivery-latency observations: the write path observes into it, without
/// atomics; it reaches parley_delivery_latency_seconds when full and when its thread calls
/// flush_thread_metrics() (each I/O loop's sweep, at most a second apart).
histogram_batch& delivery_latency_batch();

/// Flushes this thread's batches into the shared metrics.
void flush_thread_metrics();

/// The kind of a supervised child: its key up to the first ':' ("room:general" -> "room").
std::string_view child_kind(std::string_view child_key);

} // namespace parley::metrics
