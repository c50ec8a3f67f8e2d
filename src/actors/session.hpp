#pragma once

#include "actors/actors.hpp"
#include "actors/token_bucket.hpp"
#include "auth/identity.hpp"
#include "auth/jwt.hpp"
#include "auth/permissions.hpp"
#include "config/settings.hpp"

#include <caf/typed_event_based_actor.hpp>

#include <optional>
#include <string>
#include <map>
#include <vector>

namespace parley {

/// What a session reads from the configuration.
struct session_config {
  double rate_per_second = 20;
  double rate_burst = 40;
  std::size_t abuse_limit = 20;
  caf::timespan abuse_window = std::chrono::seconds(10);
  std::size_t max_rooms = 50;
  double new_rooms_per_second = 0.5;  ///< joins that create a room: refill
  double new_rooms_burst = 10;        ///< joins that create a room: bucket size
  caf::timespan request_timeout = std::chrono::seconds(10);
  bool fault_injection = false;  ///< accept crash_room (tests only)
  /// jwt mode: verifies auth and refresh tokens. Null: open mode (names are not verified).
  std::shared_ptr<const auth::jwt_verifier> verifier;
  /// Who may join, post and moderate where. Null: the defaults (auth/permissions.hpp).
  std::shared_ptr<const auth::room_permissions> permissions;
  caf::timespan auth_timeout = std::chrono::seconds(5);    ///< for the first auth frame
  caf::timespan refresh_grace = std::chrono::seconds(30);  ///< for a refresh after exp
};

/// Where a session is in signing in (jwt mode; open-mode sessions are signed in from the start).
enum class sign_in_phase : uint8_t {
  waiting,    ///< no token yet: only an auth frame is accepted, until auth_timeout
  signed_in,  ///< a valid token (or open mode)
  expired,    ///< the token expired: only refresh is accepted, until refresh_grace
};

/// A room this session has joined. `handle` is invalid while the room restarts.
struct joined_room {
  room_actor handle;
  bool left = false;  ///< a leave followed the join: the answer to it makes no membership
};

/// A room this session asked to join and has no answer from yet.
struct pending_join {
  std::size_t requests = 0;  ///< join commands under way for this room
  /// Set once the directory named the room and the join went out. Commands may go to it from then
  /// on: the room handles them after the join (one sender's messages keep their order), and the
  /// client may well send right after its "joined", which the room writes before it answers us.
  room_actor handle;
  bool left = false;  ///< a leave followed the join: the answer to it makes no membership
};

/// One inbound frame the session is still working on. It ends (and tells the sink, see
/// frame_sink::inbound_taken) when the handler is done and every request made for the frame has
/// its answer, so the network layer's bound on unfinished frames also bounds what one client can
/// queue in rooms, the directory and the store, not only in this mailbox.
class frame_ticket {
public:
  explicit frame_ticket(frame_sink_ptr sink) : sink_(std::move(sink)) {}
  ~frame_ticket() { sink_->inbound_taken(); }
  frame_ticket(const frame_ticket&) = delete;
  frame_ticket& operator=(const frame_ticket&) = delete;

private:
  frame_sink_ptr sink_;
};

using frame_ticket_ptr = std::shared_ptr<frame_ticket>;

/// One per connection, so every member counts: idle sessions are most of a server's memory. Empty
/// containers here allocate nothing (std::deque would allocate ~512 bytes at once).
struct session_state {
  static inline const char* name = "session";

  /// Who this is: the user id (at most 32 characters; guest names fit the string's inline
  /// buffer), display name, roles, the token's private rooms and exp.
  auth::identity who;
  sign_in_phase phase = sign_in_phase::signed_in;
  bool expiry_far = false;  ///< the expiry timer waits a day, not until exp (see watch_expiry)
  /// Counts sign-ins and refreshes: a timer set for an older token finds another number and does nothing.
  uint64_t token_generation = 0;
  uint64_t session_id = 0;  ///< shown as 16 hex digits, which would not fit inline
  int64_t connected_since = 0;  ///< ms since the Unix epoch, for the admin API
  frame_sink_ptr sink;
  /// Shared by every session of the server: a copy each would cost an idle connection ~130 bytes.
  std::shared_ptr<const session_config> cfg;
  std::optional<token_bucket> bucket;
  std::optional<token_bucket> new_rooms;  ///< one token per join that creates a room
  // Ordered maps on purpose: a hash map keeps its bucket array after its last erase, and a few
  // rooms per connection are found as fast in a tree.
  std::map<std::string, joined_room> rooms;
  std::map<std::string, pending_join> joining;  ///< rooms with join requests under way
  /// When the errors within the abuse window were sent, oldest first; at most abuse_limit + 1.
  std::vector<caf::actor_clock::time_point> recent_errors;
  bool closing = false;  ///< closed for abuse: ignore the rest
  /// The frame being handled now; request continuations keep a copy (see frame_ticket).
  frame_ticket_ptr ticket;
};

/// The session id as the client sees it: 16 lowercase hex digits.
std::string session_id_text(uint64_t id);

/// A generated name for clients that gave none: "guest-" and four hex digits.
std::string guest_name();

/// The session actor of one connection. `who` is the identity the handshake established: in open
/// mode the requested name (already validated; empty: a guest name), in jwt mode a verified
/// token's user. Nullopt (jwt mode only): the client signs in with its first frame.
session_actor::behavior_type session(session_actor::stateful_pointer<session_state> self,
                                     frame_sink_ptr sink, std::optional<auth::identity> who,
                                     std::shared_ptr<const session_config> cfg);

} // namespace parley
