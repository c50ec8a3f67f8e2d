#include "actors/room.hpp"

#include "actors/wall_clock.hpp"
#include "actors/errors.hpp"
#include "actors/grace_timer.hpp"
#include "actors/mailbox_probe.hpp"
#include "actors/registry.hpp"
#include "metrics/server_metrics.hpp"
#include "protocol/codec.hpp"

#include <caf/actor_system.hpp>
#include <caf/expected.hpp>
#include <caf/typed_response_promise.hpp>
#include <caf/actor_registry.hpp>
#include <caf/system_messages.hpp>
#include <caf/stateful_actor.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <map>

namespace parley {

namespace {

using self_ptr = room_actor::stateful_pointer<room_state>;
using protocol::presence_mode;

/// A chat message's frame; `accepted` is set only when it is broadcast as newly accepted.
frame encode_frame(const protocol::chat_message& msg, encoded_frame::clock::time_point accepted = {}) {
  return make_frame(protocol::encode(msg), frame_class::message, accepted);
}

/// Sends one encoded frame to every member except `skip` (0: nobody skipped). Returns how many
/// connections queued it: callers count deliveries with one atomic add per fan-out, not one per
/// recipient.
std::size_t fan_out(room_state& st, const frame& payload, frame_priority priority,
                    caf::actor_id skip = 0) {
  std::size_t queued = 0;
  for (auto& [id, member] : st.mem->members)
    if (id != skip && member.sink->push(payload, priority))
      ++queued;
  return queued;
}

// -- presence ---------------------------------------------------------------------------------------

/// Count, mode and (in users mode) at most `names` present users, in name order.
protocol::presence_summary summary(const room_state& st, std::size_t names) {
  const auto& mem = *st.mem;
  protocol::presence_summary result{mem.present.size(), mem.mode, {}};
  if (mem.mode == presence_mode::users) {
    auto n = std::min<std::size_t>(mem.present.size(), names);
    result.members.assign(mem.present.begin(), std::next(mem.present.begin(), static_cast<std::ptrdiff_t>(n)));
  }
  return result;
}

/// presence_state names everyone (users mode holds at most about user_limit names): it is sent
/// rarely, and a client then needs no `who` round trips, which after a switch back to users mode
/// would be every member paging the whole list at once.
frame encode_state(const room_state& st) {
  return make_frame(protocol::encode(protocol::presence_state_event{
                      st.mem->name, summary(st, st.mem->present.size())}),
                    frame_class::presence);
}

/// Pushes a presence frame to one member; a member whose queue refused it is stale until a
/// presence_state gets through.
void push_presence(room_state& st, caf::actor_id id, const room_member& member, const frame& payload) {
  if (member.sink->push(payload, frame_priority::droppable))
    st.stale.erase(id);
  else
    st.stale.insert(id);
}

/// Every member starts over from `state`: the room switched modes, or restarted.
void broadcast_state(room_state& st, const frame& state) {
  for (auto& [id, member] : st.mem->members)
    push_presence(st, id, member, state);
}

void schedule_tick(self_ptr self) {
  auto& st = self->state;
  if (st.tick_scheduled)
    return;
  st.tick_scheduled = true;
  auto interval = st.mem->mode == presence_mode::counts ? st.cfg.presence.count_interval
                                                        : st.cfg.presence.diff_interval;
  self->delayed_send(self, interval, tick_atom::value);
}

/// A user became present or stopped being present; members learn it at the next tick.
void record(self_ptr self, const std::string& user, bool present) {
  auto& st = self->state;
  bool changed = present ? st.mem->present.insert(user).second : st.mem->present.erase(user) > 0;
  if (!changed)
    return;
  st.pending[user] = present;
  schedule_tick(self);
}

/// True if the user is present through this node: a member connection, or within their grace.
bool present_here(const room_state& st, const std::string& user) {
  return st.user_sessions.count(user) > 0 || st.mem->grace.contains(user);
}

/// A user's presence through this node changed. In cluster mode they stay present while another
/// node has them, and the feed learns this node's part at the next tick.
void record_here(self_ptr self, const std::string& user, bool present) {
  auto& st = self->state;
  if (st.cfg.clustered) {
    st.local_presence_changed = true;
    schedule_tick(self);
  }
  if (present || st.mem->remote.count(user) == 0)
    record(self, user, present);
}

/// The users present through this node, in name order.
std::vector<std::string> present_here_list(const room_state& st) {
  std::vector<std::string> users;
  for (const auto& user : st.mem->present)
    if (present_here(st, user))
      users.push_back(user);
  return users;
}

/// The cluster feed: looked up each time, since it is registered once per node.
cluster_feed_actor feed_of(self_ptr self) {
  return registered<cluster_feed_actor>(self->system(), cluster_atom::value);
}

/// Tells the feed who is present through this node, if that changed.
void report_presence_here(self_ptr self) {
  auto& st = self->state;
  if (!st.local_presence_changed)
    return;
  if (auto feed = feed_of(self)) {
    st.local_presence_changed = false;
    self->send(feed, presence_atom::value, st.mem->name, present_here_list(st));
  }
}

/// The mode the room should be in now. Hysteresis: names stop past user_limit and come back only
/// at 90 % of it, so a room hovering at the limit does not flip on every join.
presence_mode wanted_mode(const room_state& st) {
  auto count = st.mem->present.size();
  auto limit = st.cfg.presence.user_limit;
  if (st.mem->mode == presence_mode::users)
    return count > limit ? presence_mode::counts : presence_mode::users;
  return count * 10 <= limit * 9 ? presence_mode::users : presence_mode::counts;
}

protocol::presence_diff_event make_diff(const room_state& st) {
  protocol::presence_diff_event ev{st.mem->name, st.mem->mode, {}, {}, st.mem->present.size()};
  if (ev.mode == presence_mode::users) {
    for (auto& [user, present] : st.pending)
      (present ? ev.joins : ev.leaves).push_back(user);
    // Sorted for the reader's sake: O(k log k) in the changes of one interval, not in the room.
    std::sort(ev.joins.begin(), ev.joins.end());
    std::sort(ev.leaves.begin(), ev.leaves.end());
  }
  return ev;
}

/// The end of a presence interval: the interval's changes go out as one presence_diff, encoded
/// once; members that missed a presence frame get presence_state instead, until their queue
/// takes one. On a mode switch everybody gets one presence_state instead of the diff.
void flush(self_ptr self) {
  auto& st = self->state;
  auto& mem = *st.mem;
  report_presence_here(self);
  frame state;  // encoded on first use, at most once per tick
  auto state_frame = [&]() -> const frame& {
    if (!state)
      state = encode_state(st);
    return state;
  };
  if (auto mode = wanted_mode(st); mode != mem.mode) {
    mem.mode = mode;
    st.pending.clear();
    broadcast_state(st, state_frame());
  } else {
    std::vector<caf::actor_id> missed;
    if (!st.pending.empty()) {
      auto diff = make_frame(protocol::encode(make_diff(st)), frame_class::presence);
      st.pending.clear();
      for (auto& [id, member] : mem.members)
        if (st.stale.count(id) == 0 && !member.sink->push(diff, frame_priority::droppable))
          missed.push_back(id);
    }
    for (auto i = st.stale.begin(); i != st.stale.end();) {
      auto m = mem.members.find(*i);
      if (m == mem.members.end() || m->second.sink->push(state_frame(), frame_priority::droppable))
        i = st.stale.erase(i);
      else
        ++i;
    }
    // Their queue refused the diff just now: the state waits for the next tick.
    st.stale.insert(missed.begin(), missed.end());
  }
  if (!st.stale.empty())
    schedule_tick(self);
}

/// One timer for all grace periods: the oldest one's deadline.
void schedule_grace(self_ptr self) {
  arm_grace_timer(self, self->state.mem->grace, self->state.grace_scheduled);
}

void schedule_retire_check(self_ptr self) {
  self->state.empty_since = self->clock().now();
  self->delayed_send(self, self->state.cfg.rooms.idle_retire, retire_atom::value);
}

/// Users whose grace ended stop being present.
void expire_due(self_ptr self) {
  auto& st = self->state;
  for (auto& user : st.mem->grace.take_expired(self->clock().now()))
    record_here(self, user, false);
  schedule_grace(self);
  if (st.mem->members.empty() && st.mem->grace.empty())
    schedule_retire_check(self);
}

// -- history and recovery ---------------------------------------------------------------------------

/// Where the messages a rejoin with `since` missed can come from.
enum class replay_from {
  nothing,  ///< no recovery: no since, another epoch, since ahead of last_id, or too many missed
  memory,   ///< every missed message is held here
  store,    ///< the older part of the gap lies below the evicted mark: only the store has it
};

/// The recovery rule, in one place: a rejoin in the same epoch recovers when at most max_replay
/// messages came after `since`; they come from memory if `since` is at or above the evicted mark.
replay_from replay_source(const room_state& st, const join_request& req) {
  const auto& mem = *st.mem;
  auto last_id = mem.next_id - 1;
  if (!req.since || !req.epoch || *req.epoch != mem.epoch || *req.since > last_id
      || last_id - *req.since > st.cfg.rooms.max_replay)
    return replay_from::nothing;
  return *req.since >= mem.evicted_up_to ? replay_from::memory : replay_from::store;
}

/// True if `older`, read from the store, holds the whole gap from `since` up to the evicted mark.
bool covers_gap(const room_memory& mem, uint64_t since, const std::vector<protocol::chat_message>& older) {
  return !older.empty() && older.front().id == since + 1 && older.back().id >= mem.evicted_up_to;
}

/// "joined": presence (O(page)) and the replay after `since` if it is complete, else the latest
/// messages. Held messages go in as the frames they were broadcast as; `older` (the store's part of
/// a replay) is encoded for this one join.
protocol::joined_event make_joined(const room_state& st, const join_request& req,
                                   const std::vector<protocol::chat_message>& older) {
  const auto& mem = *st.mem;
  protocol::joined_event ev;
  ev.room = mem.name;
  ev.epoch = mem.epoch;
  ev.last_id = mem.next_id - 1;
  ev.presence = summary(st, st.cfg.presence.page_size);  // O(page), whatever the room's size
  ev.ref = req.ref;
  auto take_from = [&](auto first) {
    for (auto i = first; i != mem.history.end(); ++i)
      ev.history.push_back(i->encoded);
  };
  if (req.since) {
    auto from = replay_source(st, req);
    ev.recovered = from == replay_from::memory
                   || (from == replay_from::store && covers_gap(mem, *req.since, older));
    if (*ev.recovered) {
      for (const auto& msg : older)
        ev.history.push_back(encode_frame(msg));
      auto seen = older.empty() ? *req.since : older.back().id;
      take_from(std::upper_bound(mem.history.begin(), mem.history.end(), seen,
                                 [](uint64_t x, const held_message& m) { return x < m.msg.id; }));
      return ev;
    }
  }
  auto keep = std::min(mem.history.size(), st.cfg.rooms.history_on_join);
  take_from(mem.history.end() - static_cast<std::ptrdiff_t>(keep));
  return ev;
}

void remember(room_memory& mem, held_message held, std::size_t capacity) {
  mem.next_id = std::max(mem.next_id, held.msg.id + 1);
  mem.history.push_back(std::move(held));
  while (mem.history.size() > capacity) {
    mem.evicted_up_to = mem.history.front().msg.id;
    mem.history.pop_front();
  }
}

/// The store's current handle, looked up once and again after a failure.
store_actor store_of(self_ptr self) {
  auto& st = self->state;
  if (!st.store)
    st.store = registered<store_actor>(self->system(), store_atom::value);
  return st.store;
}

/// Broadcasts a committed message and keeps it in memory with the frame it went out as.
void publish(self_ptr self, protocol::chat_message msg) {
  auto& st = self->state;
  // Stamped once for all recipients: the write path measures accept-to-write latency from here.
  auto encoded = encode_frame(msg, encoded_frame::clock::now());
  st.last_typing.erase(msg.from);
  st.mem->rate.record(self->clock().now());
  auto& stats = metrics::server_metrics();
  stats.messages_accepted.inc();
  stats.deliveries.inc(fan_out(st, encoded, frame_priority::essential));
  remember(*st.mem, held_message{std::move(msg), std::move(encoded)}, st.cfg.rooms.history_size);
}

/// After a crash: messages the store committed for the previous incarnation but whose commit
/// answer it never saw. They were accepted, so members get them now.
void catch_up(self_ptr self) {
  auto store = store_of(self);
  if (!store)
    return;
  auto& mem = *self->state.mem;
  self->request(store, caf::infinite, after_atom::value, mem.name, mem.next_id - 1,
                static_cast<uint32_t>(self->state.cfg.rooms.history_size))
    .then(
      [self](history_page& page) {
        for (auto& msg : page.messages)
          if (msg.id >= self->state.mem->next_id)
            publish(self, std::move(msg));
      },
      [self](const caf::error& err) {
        spdlog::warn("room {} failed to catch up with the store: {}", self->state.mem->name,
                     self->system().render(err));
      });
}

// -- membership -------------------------------------------------------------------------------------

/// Adds a session as a member (unless it is one) and writes its "joined". Errors: room_full.
caf::expected<join_result> admit(self_ptr self, const caf::actor& session, const join_request& req,
                                 const std::vector<protocol::chat_message>& older) {
  auto& st = self->state;
  auto& mem = *st.mem;
  auto id = session.id();
  if (auto ban = in_force(mem.bans, req.user, now_ms()))
    return make_protocol_error(protocol::error_code::banned, *ban);
  bool already = mem.members.count(id) > 0;
  if (!already && mem.members.size() >= st.cfg.rooms.capacity)
    return make_protocol_error(protocol::error_code::room_full);
  if (!already) {
    self->monitor(session);
    mem.members.emplace(id, room_member{session, req.user, req.sink, req.name});
    metrics::server_metrics().room_members.add();
    // Back within the grace: nobody saw the user go, so nobody sees them come back.
    if (st.user_sessions[req.user]++ == 0 && !mem.grace.cancel(req.user))
      record_here(self, req.user, true);
  }
  // Written by the room, not the session, so it precedes every message fanned out after it. It
  // carries the whole presence state, so a member that missed a presence frame is up to date again.
  st.stale.erase(id);
  auto joined = make_joined(st, req, older);
  req.sink->push(make_frame(protocol::encode(joined)), frame_priority::essential);
  return join_result{mem.epoch, mem.next_id - 1};
}

void deliver(caf::typed_response_promise<join_result>& promise, caf::expected<join_result> result) {
  if (result)
    promise.deliver(std::move(*result));
  else
    promise.deliver(std::move(result.error()));
}

/// Removes one member session; returns true if that was the user's last session in the room.
bool drop_member(self_ptr self, caf::actor_id id, std::string& user) {
  auto& st = self->state;
  auto i = st.mem->members.find(id);
  if (i == st.mem->members.end())
    return false;
  user = std::move(i->second.user);
  st.mem->members.erase(i);
  metrics::server_metrics().room_members.sub();
  st.stale.erase(id);
  bool last = --st.user_sessions[user] == 0;
  if (last)
    st.user_sessions.erase(user);
  if (st.mem->members.empty())
    schedule_retire_check(self);
  return last;
}

/// Adopts the memory of a previous incarnation: re-monitors members and tells everyone our handle.
void adopt(self_ptr self) {
  auto& st = self->state;
  auto& mem = *st.mem;
  for (auto& [id, member] : mem.members) {
    ++st.user_sessions[member.user];
    self->monitor(member.session);
  }
  expire_due(self);
  if (st.cfg.clustered) {
    // Every incarnation reads the stream from what it holds: nothing missed, nothing twice.
    if (auto feed = feed_of(self))
      self->send(feed, watch_atom::value, mem.name, room_actor{self}, mem.next_id - 1,
                 mem.events_position);
    else
      spdlog::error("room {} found no cluster feed: messages from other nodes will not arrive", mem.name);
    st.local_presence_changed = true;
    report_presence_here(self);
  }
  if (mem.incarnation++ == 0)
    return;
  spdlog::info("room {} restarted with {} members, history and ids kept", mem.name,
               mem.members.size());
  if (!st.cfg.clustered)
    catch_up(self);  // in cluster mode the feed delivers what this incarnation has not seen
  for (auto& [id, member] : mem.members)
    self->send(caf::actor_cast<session_actor>(member.session), moved_atom::value, mem.name,
               room_actor{self});
  if (auto dir = registered<directory_actor>(self->system(), directory_atom::value))
    self->send(dir, moved_atom::value, mem.name, room_actor{self});
  // The pending diff died with the previous incarnation: everyone starts over from the state.
  broadcast_state(st, encode_state(st));
  if (!st.stale.empty())
    schedule_tick(self);
}

// -- moderation ---------------------------------------------------------------------------------------

/// Removes every session of `user` from the room at once, telling each why (kicked_atom). The user
/// stops being present without grace: they did not just lose their connection.
void remove_user(self_ptr self, const std::string& user, const std::string& reason) {
  auto& st = self->state;
  auto& mem = *st.mem;
  std::vector<caf::actor> sessions;
  for (auto& [id, member] : mem.members)
    if (member.user == user)
      sessions.push_back(member.session);
  std::string dropped;
  for (auto& session : sessions) {
    self->demonitor(session.address());
    drop_member(self, session.id(), dropped);
    self->send(caf::actor_cast<session_actor>(session), kicked_atom::value, mem.name, reason);
  }
  bool in_grace = mem.grace.cancel(user);
  if (!sessions.empty() || in_grace)
    record_here(self, user, false);
}

/// A tombstone in place of a held message: the same id, no text, and a frame that says deleted.
void tombstone(room_memory& mem, uint64_t id) {
  auto i = std::lower_bound(mem.history.begin(), mem.history.end(), id,
                            [](const held_message& m, uint64_t x) { return m.msg.id < x; });
  if (i == mem.history.end() || i->msg.id != id)
    return;  // only the store holds it, and the store has turned it into a tombstone already
  i->msg.text.clear();
  i->msg.deleted = true;
  i->encoded = encode_frame(i->msg);
}

/// Puts a recorded moderation action in force, then tells the room.
void enforce(self_ptr self, const moderation_record& record) {
  using protocol::moderation_action;
  auto& mem = *self->state.mem;
  switch (record.action) {
    case moderation_action::kick:
      remove_user(self, record.user, "kicked");
      break;
    case moderation_action::ban:
      mem.bans[record.user] = record.until;
      remove_user(self, record.user, "banned");
      break;
    case moderation_action::unban:
      mem.bans.erase(record.user);
      break;
    case moderation_action::mute:
      mem.mutes[record.user] = record.until;
      break;
    case moderation_action::unmute:
      mem.mutes.erase(record.user);
      break;
    case moderation_action::delete_message:
      tombstone(mem, record.message_id);
      break;
  }
  protocol::moderation_event ev{record.action, mem.name, record.user, record.by,
                                record.message_id, record.until, record.reason};
  fan_out(self->state, make_frame(protocol::encode(ev)), frame_priority::essential);
}

// -- admin ----------------------------------------------------------------------------------------------

room_summary make_summary(self_ptr self) {
  auto& st = self->state;
  auto& mem = *st.mem;
  return room_summary{mem.name,
                      mem.members.size(),
                      st.user_sessions.size(),
                      mem.present.size(),
                      mem.epoch,
                      mem.next_id - 1,
                      mem.rate.per_second(self->clock().now())};
}

std::vector<room_member_summary> member_list(const room_state& st) {
  // Display names per user: the first member connection's (connections of one user share it).
  std::map<std::string, room_member_summary> by_user;
  for (auto& [id, member] : st.mem->members) {
    auto& entry = by_user[member.user];
    if (entry.connections++ == 0) {
      entry.user = member.user;
      entry.name = member.name;
    }
  }
  std::vector<room_member_summary> result;
  result.reserve(by_user.size());
  for (auto& [user, entry] : by_user)
    result.push_back(std::move(entry));
  return result;
}

} // namespace

room_memory::room_memory(std::string room_name, uint64_t room_epoch, caf::timespan grace)
  : name(std::move(room_name)), epoch(room_epoch), grace(grace) {
  metrics::server_metrics().rooms.add();
}

room_memory::~room_memory() {
  auto& stats = metrics::server_metrics();
  stats.rooms.sub();
  stats.room_members.sub(static_cast<int64_t>(members.size()));
}

std::shared_ptr<room_memory> make_room_memory(std::string name, const room_snapshot& snapshot,
                                              caf::timespan grace) {
  auto mem = std::make_shared<room_memory>(std::move(name), snapshot.epoch, grace);
  mem->next_id = snapshot.last_id + 1;
  // Older messages stay in the store: recovery from memory must start after them.
  mem->evicted_up_to = snapshot.recent.empty() ? snapshot.last_id : snapshot.recent.front().id - 1;
  for (const auto& msg : snapshot.recent)
    mem->history.push_back(held_message{msg, encode_frame(msg)});
  for (const auto& ban : snapshot.bans)
    mem->bans[ban.user] = ban.until;
  for (const auto& mute : snapshot.mutes)
    mem->mutes[mute.user] = mute.until;
  mem->events_position = snapshot.events_position;
  return mem;
}

room_actor::behavior_type room(self_ptr self, std::shared_ptr<room_memory> mem, room_config cfg) {
  self->state.mem = std::move(mem);
  self->state.cfg = std::move(cfg);
  adopt(self);
  if (self->state.mem->members.empty())
    schedule_retire_check(self);

  self->set_down_handler([self](caf::down_msg& dm) {
    // A member's connection ended without a leave: the user stays present for the grace.
    std::string user;
    if (drop_member(self, dm.source.id(), user)) {
      self->state.mem->grace.start(user, self->clock().now());
      schedule_grace(self);
    }
  });

  return {
    [self](join_atom, caf::actor session, join_request& req) -> caf::result<join_result> {
      sample_mailbox(self, metrics::actor_kind::room);
      auto& st = self->state;
      auto store = store_of(self);
      if (replay_source(st, req) != replay_from::store || !store) {
        auto result = admit(self, session, req, {});
        if (!result)
          return std::move(result.error());
        return *result;
      }
      // The client missed more than memory holds: read the older part of its gap first.
      auto& mem = *st.mem;
      auto promise = self->make_response_promise<join_result>();
      auto count = static_cast<uint32_t>(mem.evicted_up_to - *req.since);
      self->request(store, caf::infinite, after_atom::value, mem.name, *req.since, count)
        .then(
          [self, session, req, promise](history_page& page) mutable {
            // Memory may have dropped more meanwhile: make_joined checks that the page still
            // reaches it, since a replay with a hole is no recovery.
            deliver(promise, admit(self, session, req, page.messages));
          },
          [self, session, req, promise](const caf::error&) mutable {
            deliver(promise, admit(self, session, req, {}));  // answered without recovery
          });
      return promise;
    },
    [self](leave_atom, caf::actor session) -> ok_atom {
      std::string user;
      self->demonitor(session.address());
      // An explicit leave of the last connection ends presence at once, without grace.
      if (drop_member(self, session.id(), user))
        record_here(self, user, false);
      return ok_atom::value;
    },
    [self](post_atom, caf::actor session, std::string& text,
           std::string& cid) -> caf::result<uint64_t> {
      sample_mailbox(self, metrics::actor_kind::room);
      auto& st = self->state;
      auto& mem = *st.mem;
      auto i = mem.members.find(session.id());
      if (i == mem.members.end())
        return make_protocol_error(protocol::error_code::not_member);
      if (auto mute = in_force(mem.mutes, i->second.user, now_ms()))
        return make_protocol_error(protocol::error_code::muted, *mute);
      auto store = store_of(self);
      if (!store)
        return make_protocol_error(protocol::error_code::store_unavailable);
      // Accepted only once committed: the id comes from the store, the broadcast after it.
      protocol::chat_message msg{mem.name, 0, i->second.user, std::move(text), now_ms(), std::move(cid),
                                 i->second.name};
      auto promise = self->make_response_promise<uint64_t>();
      self->request(store, caf::infinite, append_atom::value, mem.epoch, std::move(msg))
        .then(
          [self, promise, sender = session.id()](append_result& result) mutable {
            auto id = result.msg.id;
            auto& st = self->state;
            if (result.duplicate) {
              // A retry of something already accepted: only the sender gets the original again.
              auto& members = st.mem->members;
              if (auto m = members.find(sender); m != members.end())
                m->second.sink->push(encode_frame(result.msg), frame_priority::essential);
            } else if (st.cfg.clustered) {
              // Fanned out when the feed delivers it, in the stream's order on every node.
              if (id >= st.mem->next_id) {
                st.unanswered_posts.emplace(id, promise);
                return;
              }
            } else {
              publish(self, std::move(result.msg));
            }
            promise.deliver(id);
          },
          [self, promise](caf::error& err) mutable {
            if (err.category() != error_category)
              self->state.store = nullptr;  // the store died or restarts: look it up again
            promise.deliver(from_store(std::move(err)));
          });
      return promise;
    },
    [self](history_atom, uint64_t before, uint32_t limit) -> caf::result<history_page> {
      auto& mem = *self->state.mem;
      auto& history = mem.history;
      auto end = before == 0
                   ? history.end()
                   : std::lower_bound(history.begin(), history.end(), before,
                                      [](const held_message& m, uint64_t x) { return m.msg.id < x; });
      auto available = static_cast<std::size_t>(end - history.begin());
      if (available < limit && mem.evicted_up_to > 0) {
        // The page reaches past what memory holds: the store has the rest.
        if (auto store = store_of(self))
          return self->delegate(store, history_atom::value, mem.name, before, limit);
        return make_protocol_error(protocol::error_code::store_unavailable);
      }
      auto count = std::min<std::size_t>(available, limit);
      history_page page;
      page.more = available > count || mem.evicted_up_to > 0;
      page.messages.reserve(count);
      for (auto i = end - static_cast<std::ptrdiff_t>(count); i != end; ++i)
        page.messages.push_back(i->msg);
      return page;
    },
    [self](who_atom, caf::actor session, who_request& req) -> caf::result<ok_atom> {
      auto& st = self->state;
      auto& mem = *st.mem;
      auto i = mem.members.find(session.id());
      if (i == mem.members.end())
        return make_protocol_error(protocol::error_code::not_member);
      std::size_t page_size = st.cfg.presence.page_size;
      auto limit = req.limit == 0 ? page_size : std::min<std::size_t>(req.limit, page_size);
      auto from = req.after.empty() ? mem.present.begin() : mem.present.upper_bound(req.after);
      protocol::who_event ev{mem.name, {}, mem.present.size(), false, std::move(req.ref)};
      ev.members.reserve(std::min(limit, mem.present.size()));
      for (; from != mem.present.end() && ev.members.size() < limit; ++from)
        ev.members.push_back(*from);
      ev.more = from != mem.present.end();
      // Into the member's own queue, behind the presence frames it already got.
      i->second.sink->push(make_frame(protocol::encode(ev)), frame_priority::essential);
      return ok_atom::value;
    },
    [self](typing_atom, caf::actor session) {
      auto& st = self->state;
      auto i = st.mem->members.find(session.id());
      // A room too large to name its users does not announce who is typing either.
      if (i == st.mem->members.end() || st.mem->mode == presence_mode::counts)
        return;
      if (in_force(st.mem->mutes, i->second.user, now_ms()))
        return;  // a muted user's typing would announce messages that cannot come
      auto now = self->clock().now();
      auto [last, fresh] = st.last_typing.emplace(i->second.user, now);
      if (!fresh) {
        if (now - last->second < st.cfg.rooms.typing_interval)
          return; // coalesced: the others already know this user is typing
        last->second = now;
      }
      auto payload = make_frame(protocol::encode(protocol::typing_event{st.mem->name, i->second.user}),
                                frame_class::typing);
      fan_out(st, payload, frame_priority::droppable, session.id());
    },
    [self](moderate_atom, moderation_record& record) -> caf::result<ok_atom> {
      auto& mem = *self->state.mem;
      if (record.action == protocol::moderation_action::delete_message && record.message_id >= mem.next_id)
        return make_protocol_error(protocol::error_code::not_found);
      auto store = store_of(self);
      if (!store)
        return make_protocol_error(protocol::error_code::store_unavailable);
      record.room = mem.name;
      // Recorded first, then in force: what the audit log and a restart know is what happened.
      auto promise = self->make_response_promise<ok_atom>();
      self->request(store, caf::infinite, moderate_atom::value, record)
        .then(
          [self, promise, record](ok_atom) mutable {
            enforce(self, record);
            promise.deliver(ok_atom::value);
          },
          [self, promise](caf::error& err) mutable {
            if (err.category() != error_category)
              self->state.store = nullptr;
            promise.deliver(from_store(std::move(err)));
          });
      return promise;
    },
    [self](get_atom, summary_atom) { return make_summary(self); },
    [self](get_atom, members_atom) { return member_list(self->state); },
    [self](notice_atom, const std::string& text) -> uint64_t {
      auto& st = self->state;
      protocol::notice_event ev{st.mem->name, text, now_ms()};
      fan_out(st, make_frame(protocol::encode(ev)), frame_priority::essential);
      return st.mem->members.size();
    },
    [self](expire_atom) {
      self->state.grace_scheduled = false;
      expire_due(self);
    },
    [self](tick_atom) {
      self->state.tick_scheduled = false;
      flush(self);
    },
    [self](deliver_atom, std::vector<protocol::chat_message>& batch) {
      sample_mailbox(self, metrics::actor_kind::room);
      auto& st = self->state;
      for (auto& msg : batch)
        if (msg.id >= st.mem->next_id)
          publish(self, std::move(msg));
      auto& waiting = st.unanswered_posts;
      while (!waiting.empty() && waiting.begin()->first < st.mem->next_id) {
        waiting.begin()->second.deliver(waiting.begin()->first);
        waiting.erase(waiting.begin());
      }
    },
    [self](enforce_atom, const moderation_record& record, std::string& entry) {
      // Recorded by the node that took it: here it only takes effect.
      enforce(self, record);
      self->state.mem->events_position = std::move(entry);
    },
    [self](remote_atom, std::vector<std::string>& users) {
      auto& st = self->state;
      auto& mem = *st.mem;
      std::set<std::string> now(std::make_move_iterator(users.begin()),
                                std::make_move_iterator(users.end()));
      for (const auto& user : now)
        if (mem.remote.count(user) == 0)
          record(self, user, true);
      for (const auto& user : mem.remote)
        if (now.count(user) == 0 && !present_here(st, user))
          record(self, user, false);
      mem.remote = std::move(now);
    },
    [self](retire_atom) {
      auto& st = self->state;
      // Users present only through other nodes do not keep the room here.
      if (!st.mem->members.empty() || !st.mem->grace.empty())
        return;
      if (self->clock().now() - st.empty_since < st.cfg.rooms.idle_retire)
        return; // emptied again later; a newer check is scheduled
      auto dir = registered<directory_actor>(self->system(), directory_atom::value);
      if (!dir)
        return;
      self->request(dir, caf::infinite, retire_atom::value,
                    st.mem->name, room_actor{self})
        .then(
          [self](bool allowed) {
            if (!allowed)
              return;
            if (self->state.mem->members.empty()) {
              spdlog::debug("room {} retired after being idle", self->state.mem->name);
              if (self->state.cfg.clustered)
                if (auto feed = feed_of(self))
                  self->send(feed, unwatch_atom::value, self->state.mem->name, room_actor{self});
              self->quit();
              return;
            }
            // Someone joined while we asked: stay, and be findable again.
            if (auto d = registered<directory_actor>(self->system(), directory_atom::value))
              self->send(d, moved_atom::value, self->state.mem->name, room_actor{self});
          },
          [](const caf::error&) { /* the directory is restarting: the next empty period retries */ });
    },
  };
}

} // namespace parley
