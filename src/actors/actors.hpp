#pragma once

// Every actor interface in Parley, and the atoms they speak. One actor per file pair beside this
// header; each file pair's header declares the state and the behavior function for that actor.
//
// Messages stay inside one process, so their types are allowed as "unsafe" (not serializable):
// CAF never has to ship them across a network.

#include "protocol/frame_sink.hpp"
#include "protocol/messages.hpp"

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>
#include <caf/fwd.hpp>
#include <caf/replies_to.hpp>
#include <caf/timespan.hpp>
#include <caf/typed_actor.hpp>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace parley {

// -- atoms -----------------------------------------------------------------------------------------

using caf::get_atom;
using caf::join_atom;
using caf::leave_atom;
using caf::ok_atom;
using caf::put_atom;
using caf::tick_atom;

using post_atom = caf::atom_constant<caf::atom("post")>;           ///< a chat message
using history_atom = caf::atom_constant<caf::atom("history")>;     ///< page older messages
using who_atom = caf::atom_constant<caf::atom("who")>;             ///< one page of present users
using status_atom = caf::atom_constant<caf::atom("status")>;       ///< who is online on the server
using typing_atom = caf::atom_constant<caf::atom("typing")>;       ///< typing indicator
using inbound_atom = caf::atom_constant<caf::atom("inbound")>;     ///< a decoded client frame
using disconnect_atom = caf::atom_constant<caf::atom("disconn")>;  ///< the connection is gone
using moved_atom = caf::atom_constant<caf::atom("moved")>;         ///< a room restarted elsewhere
using closed_atom = caf::atom_constant<caf::atom("closed")>;       ///< a room failed for good
using expire_atom = caf::atom_constant<caf::atom("expire")>;       ///< grace periods may have ended
using retire_atom = caf::atom_constant<caf::atom("retire")>;       ///< an idle room asks to go
using restart_atom = caf::atom_constant<caf::atom("restart")>;     ///< a backoff delay ended
using start_atom = caf::atom_constant<caf::atom("start")>;         ///< start a supervised child
using stop_atom = caf::atom_constant<caf::atom("stop")>;           ///< stop a supervised child
using stable_atom = caf::atom_constant<caf::atom("stable")>;       ///< a child ran long enough
using directory_atom = caf::atom_constant<caf::atom("directory")>; ///< registry key
using presence_atom = caf::atom_constant<caf::atom("presence")>;   ///< registry key
using store_atom = caf::atom_constant<caf::atom("store")>;         ///< registry key
using open_atom = caf::atom_constant<caf::atom("open")>;           ///< load or create a room
using append_atom = caf::atom_constant<caf::atom("append")>;       ///< persist a message
using after_atom = caf::atom_constant<caf::atom("after")>;         ///< messages newer than an id
using flush_atom = caf::atom_constant<caf::atom("flush")>;         ///< commit the pending group
using prune_atom = caf::atom_constant<caf::atom("prune")>;         ///< apply retention
using moderate_atom = caf::atom_constant<caf::atom("moderate")>;   ///< kick, ban, mute, delete
using kicked_atom = caf::atom_constant<caf::atom("kicked")>;       ///< a room removed a session
using banned_atom = caf::atom_constant<caf::atom("banned")>;       ///< a server-wide ban: close
using admit_atom = caf::atom_constant<caf::atom("admit")>;         ///< sign a verified user in
using bans_atom = caf::atom_constant<caf::atom("bans")>;           ///< server-wide bans in force
using deadline_atom = caf::atom_constant<caf::atom("deadline")>;   ///< sign-in or refresh time is up
using reauth_atom = caf::atom_constant<caf::atom("reauth")>;       ///< the token expired
using rooms_atom = caf::atom_constant<caf::atom("rooms")>;         ///< admin: the live rooms
using members_atom = caf::atom_constant<caf::atom("members")>;     ///< admin: a room's members
using summary_atom = caf::atom_constant<caf::atom("summary")>;     ///< admin: a room in numbers
using live_atom = caf::atom_constant<caf::atom("live")>;           ///< admin: a room if in memory
using sessions_atom = caf::atom_constant<caf::atom("sessions")>;   ///< admin: a user's sessions
using info_atom = caf::atom_constant<caf::atom("info")>;           ///< admin: one session's facts
using notice_atom = caf::atom_constant<caf::atom("notice")>;       ///< admin: a server notice
using cluster_atom = caf::atom_constant<caf::atom("cluster")>;     ///< registry key
using watch_atom = caf::atom_constant<caf::atom("watch")>;         ///< cluster: read a room's stream
using unwatch_atom = caf::atom_constant<caf::atom("unwatch")>;     ///< cluster: stop reading it
using deliver_atom = caf::atom_constant<caf::atom("deliver")>;     ///< cluster: messages to fan out
using enforce_atom = caf::atom_constant<caf::atom("enforce")>;     ///< cluster: another node moderated
using remote_atom = caf::atom_constant<caf::atom("remote")>;       ///< cluster: users on other nodes
using heartbeat_atom = caf::atom_constant<caf::atom("heartbeat")>; ///< cluster: refresh presence

// -- messages --------------------------------------------------------------------------------------

/// A moderation action as actors pass it on and the store records it (the audit log keeps every
/// one, with who did it, when and why).
struct moderation_record {
  protocol::moderation_action action = protocol::moderation_action::kick;
  std::string room;              ///< empty: server-wide (ban and unban only)
  std::string user;              ///< the target user (empty for delete)
  std::string by;                ///< the moderator's user id
  uint64_t message_id = 0;       ///< delete: the message
  std::optional<int64_t> until;  ///< ban and mute: ms since the Unix epoch; nullopt: for good
  std::string reason;
  int64_t ts = 0;                ///< when it was done, ms since the Unix epoch
};

/// A ban or mute in force.
struct restriction {
  std::string user;
  std::optional<int64_t> until;  ///< ms since the Unix epoch; nullopt: for good
};

/// What a session hands a room when it joins.
struct join_request {
  std::string user;
  frame_sink_ptr sink;             ///< where the room writes this member's frames
  std::optional<uint64_t> since;   ///< recovery: last id the client saw
  std::optional<uint64_t> epoch;   ///< recovery: the epoch it saw it in
  protocol::ref_t ref;             ///< echoed on the "joined" frame
  std::string name = {};           ///< display name; empty: the user id
};

/// What a room answers a successful join with. The "joined" frame itself goes straight to the
/// member's sink, so that it is ordered before every message the room fans out after it.
struct join_result {
  uint64_t epoch = 0;
  uint64_t last_id = 0;
};

/// What a session hands a room for a "who" command. The room writes the "who" frame to the
/// member's own sink, so that it is ordered with the presence_diff frames around it.
struct who_request {
  std::string after;   ///< page the names sorted after this one; empty: from the first
  uint32_t limit = 0;  ///< names at most; 0 or more than page_size: page_size
  protocol::ref_t ref; ///< echoed on the "who" frame
};

/// One page of history, oldest first.
struct history_page {
  std::vector<protocol::chat_message> messages;
  bool more = false;  ///< older messages exist before the first one
};

/// A room as the store knows it: what a new room actor starts from.
struct room_snapshot {
  uint64_t epoch = 0;
  uint64_t last_id = 0;   ///< highest id ever accepted (0: none yet)
  std::vector<protocol::chat_message> recent;  ///< the newest messages, oldest first
  bool created = false;   ///< this open made a new room (it counts against the cap from now on)
  std::vector<restriction> bans = {};   ///< users banned from the room, in force now
  std::vector<restriction> mutes = {};  ///< users muted in the room, in force now
  /// Cluster mode: the events stream's last entry when the snapshot was taken. Moderation recorded
  /// after it is not in the snapshot, so the room must get it from the events stream.
  std::string events_position = {};
};


/// What the store answers an append with, once the message is committed.
struct append_result {
  protocol::chat_message msg;  ///< with its id
  bool duplicate = false;      ///< the sender already posted this cid: `msg` is the original
};

// -- what the admin API asks actors ----------------------------------------------------------------

/// A room in numbers, as the room itself reports it.
struct room_summary {
  std::string name;
  uint64_t connections = 0;  ///< member connections
  uint64_t users = 0;        ///< distinct users with at least one member connection
  uint64_t present = 0;      ///< present users (a connection, or within their grace)
  uint64_t epoch = 0;
  uint64_t last_id = 0;      ///< highest id accepted (0: none yet)
  double message_rate = 0;   ///< messages per second over about the last minute
  bool answered = true;      ///< false: the room did not answer in time; only `name` is valid
};

/// One user among a room's members.
struct room_member_summary {
  std::string user;
  std::string name;          ///< display name; empty: the user id
  uint64_t connections = 0;  ///< this user's connections in the room
};

/// What a session tells about itself.
struct session_info {
  std::string session;              ///< 16 hex digits, as in its welcome frame
  std::string user;
  std::string name;                 ///< display name; empty: the user id
  std::vector<std::string> roles;   ///< empty in open mode
  std::vector<std::string> rooms;   ///< joined, in name order
  int64_t connected_since = 0;      ///< ms since the Unix epoch
  std::string address;              ///< the client's address as the limits count it; empty: unknown
  bool signed_in = true;            ///< false while waiting for a first auth frame or a refresh
};

/// One user as the presence tracker sees them, with what each session reported.
struct user_report {
  std::string user;
  bool online = false;              ///< a session, or within the grace
  bool in_grace = false;            ///< no session, but within the grace after the last one
  std::vector<session_info> sessions;  ///< sessions that answered in time, by session id
  uint64_t unanswered = 0;          ///< sessions that did not answer in time
  bool banned = false;              ///< banned from the server now
  std::optional<int64_t> banned_until;  ///< with banned: ms since the Unix epoch; absent: for good
};

/// How a supervisor (re)creates one child: called on first start and on every restart.
using child_factory = std::function<caf::actor(caf::actor_system&)>;

/// Called once when the supervisor gives up on a child (restart intensity exceeded).
using give_up_handler = std::function<void(caf::actor_system&)>;

/// A child the supervisor manages.
struct child_spec {
  std::string key;          ///< unique, e.g. "directory" or "room:general"
  child_factory factory;
  give_up_handler on_give_up;
  bool essential = false;   ///< giving up on it stops the whole server
};

// -- actor interfaces --------------------------------------------------------------------------------

/// A chat room: members, monotonic ids, a bounded history ring, capacity, fan-out and presence.
/// Sessions are plain `caf::actor` handles here to break the session <-> room type cycle.
using room_actor = caf::typed_actor<
  /// Adds a session as a member and writes "joined" (count and first page of present users,
  /// history) to its sink; a member joining again just gets "joined" again. Errors: room_full.
  caf::replies_to<join_atom, caf::actor, join_request>::with<join_result>,
  /// Removes a session. If it was its user's last one here, the user stops being present at once
  /// (no grace): a leave in the next presence_diff. Not a member: ok all the same.
  caf::replies_to<leave_atom, caf::actor>::with<ok_atom>,
  /// Posts a message from a member (text, cid); answers its id once stored, after the broadcast.
  /// Errors: not_member, store_unavailable.
  caf::replies_to<post_atom, caf::actor, std::string, std::string>::with<uint64_t>,
  /// Pages history: messages with id < before (0: newest), at most limit. Errors: store_unavailable.
  caf::replies_to<history_atom, uint64_t, uint32_t>::with<history_page>,
  /// Writes one page of present users, in name order, as a "who" frame to the member's sink and
  /// then answers ok. Errors: not_member.
  caf::replies_to<who_atom, caf::actor, who_request>::with<ok_atom>,
  /// Relays a typing indicator from a member to the others (coalesced per user; not in counts mode).
  caf::reacts_to<typing_atom, caf::actor>,
  /// Records a moderation action in the store, then enforces it: kick and ban remove the user's
  /// sessions (kicked_atom to each), a ban refuses later joins with banned, a mute refuses posts
  /// with muted, a delete turns the message into a tombstone everywhere. Then broadcasts a
  /// "moderation" frame. The session has checked the moderator's permission. Errors:
  /// store_unavailable, not_found (delete of an id the room never had).
  caf::replies_to<moderate_atom, moderation_record>::with<ok_atom>,
  /// Admin: the room in numbers. Errors: none.
  caf::replies_to<get_atom, summary_atom>::with<room_summary>,
  /// Admin: the users with member connections, in user order. Errors: none.
  caf::replies_to<get_atom, members_atom>::with<std::vector<room_member_summary>>,
  /// Admin: writes a server notice (text) as a "notice" frame to every member connection. Not
  /// stored: it is not a message, takes no id and is not in history. Answers the connections it
  /// went to. Errors: none.
  caf::replies_to<notice_atom, std::string>::with<uint64_t>,
  /// Internal: the oldest running grace period may have ended (one timer per room).
  caf::reacts_to<expire_atom>,
  /// Internal: the presence interval ended: flush pending changes as one presence_diff, resend
  /// presence_state to members that missed one.
  caf::reacts_to<tick_atom>,
  /// Internal: check whether the room has been idle and empty long enough to retire.
  caf::reacts_to<retire_atom>,
  /// Cluster mode: messages from the room's stream, in id order, as every node reads them. The
  /// room fans out those it has not yet (ids at or above next_id), and answers the posts waiting
  /// for them.
  caf::reacts_to<deliver_atom, std::vector<protocol::chat_message>>,
  /// Cluster mode: a moderation action another node recorded (with its events stream entry id);
  /// put in force here, not recorded again.
  caf::reacts_to<enforce_atom, moderation_record, std::string>,
  /// Cluster mode: the users present in this room through other nodes (all of them, sorted).
  caf::reacts_to<remote_atom, std::vector<std::string>>>;

/// One per WebSocket connection: identity, joined rooms, rate limiting, command routing.
using session_actor = caf::typed_actor<
  /// A decoded frame from the connection.
  caf::reacts_to<inbound_atom, protocol::inbound>,
  /// The connection closed; the session ends.
  caf::reacts_to<disconnect_atom>,
  /// A room this session belongs to restarted under a new handle.
  caf::reacts_to<moved_atom, std::string, room_actor>,
  /// A room this session belongs to failed for good.
  caf::reacts_to<closed_atom, std::string>,
  /// A moderator removed this session's user from a room (reason "kicked" or "banned"); the room
  /// has already dropped the membership.
  caf::reacts_to<kicked_atom, std::string, std::string>,
  /// The user is banned from the server: error banned, then close (4403).
  caf::reacts_to<banned_atom, moderation_record>,
  /// Admin: who this session is, since when, and which rooms it joined. Errors: none.
  caf::replies_to<get_atom, info_atom>::with<session_info>,
  /// Internal: the sign-in or refresh deadline of the given generation passed.
  caf::reacts_to<deadline_atom, uint64_t>,
  /// Internal: the token of the given generation expired.
  caf::reacts_to<reauth_atom, uint64_t>>;

/// What the directory answers a lookup with.
struct room_lookup {
  room_actor room;
  bool created = false;  ///< this lookup made a new room (its session pays a token for it)
};

/// The room directory: name -> room; creates rooms on demand and retires idle empty ones.
using directory_actor = caf::typed_actor<
  /// Looks up a room, creating it on first use if `may_create` (a room that is in memory or stored
  /// is found either way). Errors: rate_limited (new, and may not create), room_limit (new, and
  /// the server holds max_rooms rooms), store_unavailable.
  caf::replies_to<get_atom, std::string, bool>::with<room_lookup>,
  /// An idle, empty room asks to retire; true means it may quit.
  caf::replies_to<retire_atom, std::string, room_actor>::with<bool>,
  /// A room restarted under a new handle.
  caf::reacts_to<moved_atom, std::string, room_actor>,
  /// The supervisor gave up on a room.
  caf::reacts_to<closed_atom, std::string>,
  /// Admin: a room if it is in memory now; never loads or creates one. Errors: not_found.
  caf::replies_to<live_atom, std::string>::with<room_actor>,
  /// Admin: every room in memory, asking each for its summary (in name order). A room that does
  /// not answer within the timeout (restarting, or swamped) is listed by name with `answered`
  /// false. Errors: none.
  caf::replies_to<get_atom, rooms_atom, caf::timespan>::with<std::vector<room_summary>>>;

/// The presence tracker: which users are online anywhere on this server, across all rooms.
using presence_actor = caf::typed_actor<
  /// Registers a session of a user; the tracker monitors it, and its end starts the user's grace.
  caf::reacts_to<put_atom, std::string, caf::actor>,
  /// Registers a session of a verified user (jwt mode) like put, unless the user is banned from
  /// the server. Errors: banned (context: until).
  caf::replies_to<admit_atom, std::string, caf::actor>::with<ok_atom>,
  /// A server-wide ban or unban: recorded by the store first, then in force: every session of a
  /// banned user gets banned_atom at once, and admit refuses the user. Errors: store_unavailable.
  caf::replies_to<moderate_atom, moderation_record>::with<ok_atom>,
  /// Answers, per user in the order asked, whether they are online (a session, or within the
  /// grace) and how many sessions they have. Errors: none (a dead tracker: request_receiver_down).
  caf::replies_to<status_atom, std::vector<std::string>>::with<std::vector<protocol::user_status>>,
  /// Admin: one user's online state, server ban and sessions; asks each session for its info
  /// and waits for each at most the given timeout. Errors: none (an unknown user is offline with
  /// no sessions).
  caf::replies_to<get_atom, sessions_atom, std::string, caf::timespan>::with<user_report>,
  /// Internal: the oldest running grace period may have ended (one timer for the tracker).
  caf::reacts_to<expire_atom>,
  /// Cluster mode: a server-wide ban or unban another node recorded; put in force here.
  caf::reacts_to<enforce_atom, moderation_record>>;

/// The message store: the only actor that touches the database. Messages are committed in groups
/// (one transaction per commit window); an append is answered only once its group is committed.
/// Every failure to read or write answers store_unavailable; the store retries on the next request.
using store_actor = caf::typed_actor<
  /// Loads a room with up to `count` newest messages. A room that is not stored is created with a
  /// fresh epoch, in memory only: its row is written with its first message, so that rooms nobody
  /// writes in never reach the database. A new room counts against max_rooms (stored rooms plus
  /// such unwritten ones) until retire_atom. Errors: room_limit (new, at the cap), rate_limited
  /// (new, and `may_create` is false), store_unavailable.
  caf::replies_to<open_atom, std::string, uint32_t, bool>::with<room_snapshot>,
  /// Assigns the room's next id to a message and commits it (epoch: used if the room is new).
  caf::replies_to<append_atom, uint64_t, protocol::chat_message>::with<append_result>,
  /// Pages a room's history: messages with id < before (0: newest), at most limit, oldest first.
  caf::replies_to<history_atom, std::string, uint64_t, uint32_t>::with<history_page>,
  /// Messages with id > after, at most limit, oldest first; `more` means newer ones exist.
  caf::replies_to<after_atom, std::string, uint64_t, uint32_t>::with<history_page>,
  /// Internal: the commit window ended.
  caf::reacts_to<flush_atom>,
  /// Internal: apply retention (one bounded step at a time).
  caf::reacts_to<prune_atom>,
  /// Records a moderation action in the audit log and applies what it changes: a ban or mute row
  /// (room, or server-wide when the room is empty), its removal (unban, unmute), or a message's
  /// tombstone (delete: text cleared, deleted set; history and recovery return it so). Commits
  /// before answering. Errors: store_unavailable, not_found (delete of a message not stored).
  caf::replies_to<moderate_atom, moderation_record>::with<ok_atom>,
  /// The server-wide bans in force now.
  caf::replies_to<bans_atom>::with<std::vector<restriction>>,
  /// Readiness: true if the database is open and the last access succeeded (a closed database is
  /// opened first, so this is cheap once it is open). Errors: none.
  caf::replies_to<status_atom>::with<bool>,
  /// A room left memory (retired or given up). If it never got a message, it stops counting
  /// against max_rooms; stored rooms keep counting.
  caf::reacts_to<retire_atom, std::string>>;

/// Cluster mode: the node's reader of Redis (docs/cluster.md). It reads the streams of the rooms
/// this node holds and the events stream with one blocking XREAD, hands new messages to their
/// rooms (deliver_atom) and other nodes' moderation to rooms and the presence tracker
/// (enforce_atom); it writes this node's presence entries with a heartbeat and hands each room the
/// users present on other nodes (remote_atom). After a Redis outage it resumes from the last entry
/// it delivered. Registers itself as "cluster".
using cluster_feed_actor = caf::typed_actor<
  /// A room on this node wants its stream from after message id `delivered`, and the moderation
  /// other nodes recorded after events entry `events_after` (read again from the events stream if
  /// the feed already passed it). A room that watches again (restarted) replaces its handle.
  caf::reacts_to<watch_atom, std::string, room_actor, uint64_t, std::string>,
  /// The room leaves memory: no more reading, and its presence entry goes.
  caf::reacts_to<unwatch_atom, std::string, room_actor>,
  /// The users present in a room through this node changed: all of them now.
  caf::reacts_to<presence_atom, std::string, std::vector<std::string>>,
  /// Internal: read once (blocking up to a moment), then again.
  caf::reacts_to<tick_atom>,
  /// Internal: refresh this node's presence entries and read everyone's.
  caf::reacts_to<heartbeat_atom>>;

/// The supervisor: starts children, restarts them with backoff, gives up past the intensity.
using supervisor_actor = caf::typed_actor<
  /// Starts a child and answers its handle (an existing child with the same key is returned).
  caf::replies_to<start_atom, child_spec>::with<caf::actor>,
  /// Stops a child normally and forgets it.
  caf::replies_to<stop_atom, std::string>::with<ok_atom>,
  /// Stops every child, then the supervisor itself (server shutdown).
  caf::replies_to<stop_atom>::with<ok_atom>,
  /// Answers the current handle of a child (invalid while it waits for a restart).
  caf::replies_to<get_atom, std::string>::with<caf::actor>,
  /// Internal: a backoff delay ended (key, restart generation).
  caf::reacts_to<restart_atom, std::string, uint64_t>,
  /// Internal: a child ran long enough to reset its backoff (key, restart generation).
  caf::reacts_to<stable_atom, std::string, uint64_t>>;

} // namespace parley

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(parley::protocol::inbound)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(parley::join_request)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(parley::join_result)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(parley::who_request)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<parley::protocol::user_status>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(parley::history_page)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(parley::room_snapshot)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(parley::append_result)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(parley::protocol::chat_message)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(parley::child_spec)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(parley::room_actor)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(parley::room_lookup)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(parley::moderation_record)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<parley::restriction>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(parley::room_summary)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<parley::room_summary>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<parley::room_member_summary>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(parley::session_info)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(parley::user_report)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<parley::protocol::chat_message>)
