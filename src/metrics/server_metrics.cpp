#include "metrics/server_metrics.hpp"

#include "metrics/process_metrics.hpp"
#include "protocol/messages.hpp"

#include <type_traits>
#include <variant>

namespace parley::metrics {

namespace {

// Latencies from 100 µs to ~13 s, doubling: one bucket per power of two covers a loopback write
// and a stalled consumer alike with 18 buckets.
std::vector<double> latency_buckets() {
  return exponential_buckets(0.0001, 2, 18);
}

// A commit is a few hundred µs on a fast disk and seconds on a sick one.
std::vector<double> commit_buckets() {
  return exponential_buckets(0.0001, 2, 16);
}

// Counts (mailbox depth, commit group size): 1, 2, 4, ... 65536.
std::vector<double> count_buckets() {
  return exponential_buckets(1, 2, 17);
}

/// The `type` label of each alternative of protocol::command, in variant order. moderate_cmd is
/// labelled by its action instead (see frame_in).
constexpr const char* command_types[] = {"join",   "send", "history", "leave",      "who",
                                         "typing", "status", "ping", "crash_room", "auth",
                                         "refresh", "moderate", "invalid"};
static_assert(std::size(command_types) == std::variant_size_v<protocol::command>,
              "every command needs its label");

constexpr protocol::moderation_action moderation_actions[] = {
  protocol::moderation_action::kick,   protocol::moderation_action::ban,
  protocol::moderation_action::unban,  protocol::moderation_action::mute,
  protocol::moderation_action::unmute, protocol::moderation_action::delete_message};

// Children looked up once (frame_in runs for every inbound frame).
struct frame_children {
  std::array<counter*, std::size(command_types)> by_command{};
  std::array<counter*, std::size(moderation_actions)> by_action{};
};

frame_children& frames_in_children() {
  static frame_children children;
  return children;
}

catalogue make_catalogue(registry& r) {
  catalogue c{
    r.add_gauge("parley_connections_open", "WebSocket connections open now."),
    r.add_counter("parley_connections_opened_total", "WebSocket connections accepted (upgraded)."),
    r.add_counter_family("parley_connections_closed_total",
                         "WebSocket connections ended, by the code of their close handshake "
                         "(1006: ended without one).",
                         {"code"}),
    r.add_counter_family("parley_handshakes_refused_total",
                         "HTTP requests and WebSocket upgrades refused, by reason.", {"reason"}),
    r.add_counter_family("parley_frames_dropped_total",
                         "Outbound frames dropped past a connection's soft mark, by class.", {"class"}),
    r.add_counter("parley_slow_consumer_closes_total",
                  "Connections closed with 4000 because their outbound queue overflowed."),
    r.add_histogram("parley_delivery_latency_seconds",
                    "From a chat message's acceptance (its commit) to the completion of the "
                    "socket write that carried it, per recipient.",
                    latency_buckets()),
    r.add_counter_family("parley_frames_in_total", "Client frames decoded, by type.", {"type"}),
    r.add_counter("parley_messages_accepted_total", "Chat messages accepted (stored and broadcast)."),
    r.add_counter("parley_deliveries_total",
                  "Frames queued to members' connections by room fan-out, one per recipient."),
    r.add_counter_family("parley_rate_limited_total",
                         "Rate-limit hits: frame (token bucket), new_room, handshake.", {"kind"}),
    r.add_gauge("parley_rooms", "Rooms in memory."),
    r.add_gauge("parley_room_members", "Memberships over all rooms (member connections)."),
    r.add_gauge_family("parley_mailbox_depth_max",
                       "Highest mailbox depth sampled per actor kind since start.", {"kind"}),
    r.add_histogram_family("parley_mailbox_depth",
                           "Mailbox depth sampled when an actor handles a hot message, by kind.",
                           {"kind"}, count_buckets()),
    r.add_histogram("parley_store_commit_seconds", "Duration of one store commit (transaction).",
                    commit_buckets()),
    r.add_histogram("parley_store_commit_group_size", "Messages written per store commit.",
                    count_buckets()),
    r.add_counter_family("parley_supervisor_restarts_total", "Supervisor restarts by child kind.",
                         {"kind"}),
    r.add_counter_family("parley_supervisor_give_ups_total", "Supervisor give-ups by child kind.",
                         {"kind"}),
    r.add_counter_family("parley_redis_failures_total",
                         "Cluster mode: Redis commands or connection attempts that failed, by client.",
                         {"client"}),
    r.add_counter("parley_cluster_messages_read_total",
                  "Cluster mode: messages the cluster feed read from room streams for this node."),
    r.add_counter_family("parley_cluster_events_total",
                         "Cluster mode: other nodes' events this node acted on, by kind.", {"kind"}),
  };
  // Children created up front render as 0 from the start: rate() and dashboards see a series
  // before the first event, and hot paths keep their reference.
  c.limit_hits = {&c.rate_limited.with({"frame"}), &c.rate_limited.with({"new_room"}),
                  &c.rate_limited.with({"handshake"})};
  for (std::size_t i = 0; i < actor_kind_count; ++i) {
    auto kind = std::string{to_string(static_cast<actor_kind>(i))};
    c.depth_max[i] = &c.mailbox_depth_max.with({kind});
    c.depth[i] = &c.mailbox_depth.with({kind});
  }
  auto& frames = frames_in_children();
  for (std::size_t i = 0; i < std::size(command_types); ++i)
    frames.by_command[i] = &c.frames_in.with({command_types[i]});
  for (std::size_t i = 0; i < std::size(moderation_actions); ++i)
    frames.by_action[i] = &c.frames_in.with({protocol::to_string(moderation_actions[i])});
  for (auto cls : {frame_class::other, frame_class::message, frame_class::typing, frame_class::presence})
    c.dropped_by_class[static_cast<std::size_t>(cls)] = &c.frames_dropped.with({to_string(cls)});
  for (const char* kind : {"room", "directory", "presence", "store"}) {
    c.supervisor_restarts.with({kind});
    c.supervisor_give_ups.with({kind});
  }
  for (const char* client : {"store", "feed"})
    c.redis_failures.with({client});
  for (const char* kind : {"moderation", "presence"})
    c.cluster_events.with({kind});
  c.connections_closed.with({"1000"});
  c.connections_closed.with({"1001"});
  c.connections_closed.with({"4000"});
  return c;
}

} // namespace

std::string_view to_string(actor_kind kind) {
  switch (kind) {
    case actor_kind::session:
      return "session";
    case actor_kind::room:
      return "room";
    case actor_kind::presence:
      return "presence";
    case actor_kind::directory:
      return "directory";
    case actor_kind::store:
      return "store";
    case actor_kind::supervisor:
      return "supervisor";
  }
  return "unknown";
}

std::string_view child_kind(std::string_view child_key) {
  return child_key.substr(0, child_key.find(':'));
}

void catalogue::frame_in(const protocol::inbound& in) {
  auto& children = frames_in_children();
  if (auto* cmd = std::get_if<protocol::moderate_cmd>(&in.cmd)) {
    auto i = static_cast<std::size_t>(cmd->action);
    if (i < children.by_action.size()) {
      children.by_action[i]->inc();
      return;
    }
  }
  children.by_command[in.cmd.index()]->inc();
}

void catalogue::connection_closed(uint16_t code) {
  connections_closed.with({std::to_string(code)}).inc();
}

void catalogue::supervisor_restart(std::string_view child_key) {
  supervisor_restarts.with({std::string{child_kind(child_key)}}).inc();
}

void catalogue::supervisor_give_up(std::string_view child_key) {
  supervisor_give_ups.with({std::string{child_kind(child_key)}}).inc();
}

histogram_batch& delivery_latency_batch() {
  thread_local histogram_batch batch{server_metrics().delivery_latency};
  return batch;
}

void flush_thread_metrics() {
  delivery_latency_batch().flush();
}

catalogue& server_metrics() {
  // A function-local static: initialised exactly once per process, thread-safely, on first use;
  // a second registration would throw (duplicate names).
  static catalogue instance = [] {
    auto& r = process_registry();
    auto c = make_catalogue(r);
    register_process_metrics(r);
    return c;
  }();
  return instance;
}

} // namespace parley::metrics
