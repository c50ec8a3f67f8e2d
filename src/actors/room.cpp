#include "actors/room.hpp"

#include "actors/errors.hpp"
#include "actors/registry.hpp"
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

namespace parley {

namespace {

using self_ptr = room_actor::stateful_pointer<room_state>;

int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

/// Member user names, sorted; users within their grace period still count.
std::vector<std::string> member_names(const room_state& st) {
  std::vector<std::string> names;
  names.reserve(st.user_sessions.size() + st.mem->departing.size());
  for (auto& [user, count] : st.user_sessions)
    names.push_back(user);
  for (auto& [user, token] : st.mem->departing)
    if (st.user_sessions.count(user) == 0)
      names.push_back(user);
  std::sort(names.begin(), names.end());
  return names;
}

/// Sends one encoded frame to every member except `skip` (0: nobody skipped).
void fan_out(room_state& st, const frame& payload, frame_priority priority, caf::actor_id skip = 0) {
  for (auto& [id, member] : st.mem->members)
    if (id != skip)
      member.sink->push(payload, priority);
}

void announce_presence(room_state& st, const std::string& user, bool online, caf::actor_id skip) {
  auto payload = make_frame(protocol::encode(protocol::presence_event{st.mem->name, user, online}));
  fan_out(st, payload, frame_priority::droppable, skip);
}

/// Messages to send with "joined": the replay after `since` if it can be complete, else the latest.
/// `older` holds the part of the replay that the store had and memory no longer has.
protocol::joined_event make_joined(const room_state& st, const join_request& req,
                                   const std::vector<protocol::chat_message>& older) {
  const auto& mem = *st.mem;
  protocol::joined_event ev;
  ev.room = mem.name;
  ev.epoch = mem.epoch;
  ev.last_id = mem.next_id - 1;
  ev.members = member_names(st);
  ev.ref = req.ref;
  auto take_from = [&](auto first) {
    for (auto i = first; i != mem.history.end(); ++i)
      ev.history.push_back(*i);
  };
  auto after = [&](uint64_t id) {
    return std::upper_bound(mem.history.begin(), mem.history.end(), id,
                            [](uint64_t x, const protocol::chat_message& m) { return x < m.id; });
  };
  if (req.since) {
    bool same_epoch = req.epoch && *req.epoch == mem.epoch;
    bool in_range = *req.since <= ev.last_id && ev.last_id - *req.since <= st.cfg.rooms.max_replay;
    bool held = *req.since >= mem.evicted_up_to || !older.empty();
    ev.recovered = same_epoch && in_range && held;
    if (*ev.recovered) {
      ev.history = older;
      take_from(after(older.empty() ? *req.since : older.back().id));
      return ev;
    }
  }
  auto keep = std::min(mem.history.size(), st.cfg.rooms.history_on_join);
  take_from(mem.history.end() - static_cast<std::ptrdiff_t>(keep));
  return ev;
}

/// True if a rejoin asks for a replay that starts before memory but that the store can complete.
bool needs_store_replay(const room_state& st, const join_request& req) {
  const auto& mem = *st.mem;
  auto last_id = mem.next_id - 1;
  return req.since && req.epoch && *req.epoch == mem.epoch && *req.since < mem.evicted_up_to &&
         last_id - *req.since <= st.cfg.rooms.max_replay;
}

void remember(room_memory& mem, protocol::chat_message msg, std::size_t capacity) {
  mem.next_id = std::max(mem.next_id, msg.id + 1);
  mem.history.push_back(std::move(msg));
  while (mem.history.size() > capacity) {
    mem.evicted_up_to = mem.history.front().id;
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

/// Broadcasts a committed message and keeps it in memory.
void publish(self_ptr self, protocol::chat_message msg) {
  auto& st = self->state;
  auto encoded = make_frame(protocol::encode(msg));
  st.last_typing.erase(msg.from);
  remember(*st.mem, std::move(msg), st.cfg.rooms.history_size);
  fan_out(st, encoded, frame_priority::essential);
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
        spdlog::warn("room {} could not catch up with the store: {}", self->state.mem->name,
                     self->system().render(err));
      });
}

/// Adds a session as a member (unless it is one) and writes its "joined". Errors: room_full.
caf::expected<join_result> admit(self_ptr self, const caf::actor& session, const join_request& req,
                                 const std::vector<protocol::chat_message>& older) {
  auto& st = self->state;
  auto& mem = *st.mem;
  auto id = session.id();
  bool already = mem.members.count(id) > 0;
  if (!already && mem.members.size() >= st.cfg.rooms.capacity)
    return make_protocol_error(protocol::error_code::room_full);
  if (!already) {
    bool was_present = st.user_sessions.count(req.user) > 0 || mem.departing.count(req.user) > 0;
    mem.departing.erase(req.user);
    ++st.user_sessions[req.user];
    self->monitor(session);
    mem.members.emplace(id, room_member{session, req.user, req.sink});
    if (!was_present)
      announce_presence(st, req.user, true, id);
  }
  // Written by the room, not the session, so it precedes every message fanned out after it.
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

void schedule_retire_check(self_ptr self) {
  self->state.empty_since = self->clock().now();
  self->delayed_send(self, self->state.cfg.rooms.idle_retire, retire_atom::value);
}

/// Removes one member session; returns true if that was the user's last session in the room.
bool drop_member(self_ptr self, caf::actor_id id) {
  auto& st = self->state;
  auto i = st.mem->members.find(id);
  if (i == st.mem->members.end())
    return false;
  auto user = i->second.user;
  st.mem->members.erase(i);
  bool last = --st.user_sessions[user] == 0;
  if (last)
    st.user_sessions.erase(user);
  if (st.mem->members.empty())
    schedule_retire_check(self);
  return last;
}

void start_grace(self_ptr self, const std::string& user) {
  auto& mem = *self->state.mem;
  auto token = mem.next_token++;
  mem.departing[user] = token;
  self->delayed_send(self, self->state.cfg.grace, expire_atom::value, user, token);
}

/// Adopts the memory of a previous incarnation: re-monitors members and tells everyone our handle.
void adopt(self_ptr self) {
  auto& st = self->state;
  auto& mem = *st.mem;
  for (auto& [id, member] : mem.members) {
    ++st.user_sessions[member.user];
    self->monitor(member.session);
  }
  for (auto& [user, token] : mem.departing)
    self->delayed_send(self, st.cfg.grace, expire_atom::value, user, token);
  if (mem.incarnation++ == 0)
    return;
  spdlog::info("room {} restarted with {} members, history and ids kept", mem.name,
               mem.members.size());
  catch_up(self);
  for (auto& [id, member] : mem.members)
    self->send(caf::actor_cast<session_actor>(member.session), moved_atom::value, mem.name,
               room_actor{self});
  if (auto dir = registered<directory_actor>(self->system(), directory_atom::value))
    self->send(dir, moved_atom::value, mem.name, room_actor{self});
}

} // namespace

std::shared_ptr<room_memory> make_room_memory(std::string name, const room_snapshot& snapshot) {
  auto mem = std::make_shared<room_memory>(std::move(name), snapshot.epoch);
  mem->next_id = snapshot.last_id + 1;
  // Older messages stay in the store: recovery from memory must start after them.
  mem->evicted_up_to = snapshot.recent.empty() ? snapshot.last_id : snapshot.recent.front().id - 1;
  mem->history.assign(snapshot.recent.begin(), snapshot.recent.end());
  return mem;
}

room_actor::behavior_type room(self_ptr self, std::shared_ptr<room_memory> mem, room_config cfg) {
  self->state.mem = std::move(mem);
  self->state.cfg = std::move(cfg);
  adopt(self);
  if (self->state.mem->members.empty())
    schedule_retire_check(self);

  self->set_down_handler([self](caf::down_msg& dm) {
    auto& st = self->state;
    auto i = st.mem->members.find(dm.source.id());
    if (i == st.mem->members.end())
      return;
    auto user = i->second.user;
    if (drop_member(self, dm.source.id()))
      start_grace(self, user);
  });

  return {
    [self](join_atom, caf::actor session, join_request& req) -> caf::result<join_result> {
      auto& st = self->state;
      auto store = store_of(self);
      if (!needs_store_replay(st, req) || !store) {
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
            // Memory may have dropped more meanwhile; a replay with a hole is no recovery.
            auto& mem = *self->state.mem;
            bool complete = !page.messages.empty() && page.messages.front().id == *req.since + 1 &&
                            page.messages.back().id >= mem.evicted_up_to;
            if (!complete)
              page.messages.clear();
            deliver(promise, admit(self, session, req, page.messages));
          },
          [self, session, req, promise](const caf::error&) mutable {
            deliver(promise, admit(self, session, req, {}));  // answered without recovery
          });
      return promise;
    },
    [self](leave_atom, caf::actor session) -> ok_atom {
      auto& st = self->state;
      auto i = st.mem->members.find(session.id());
      if (i == st.mem->members.end())
        return ok_atom::value;
      auto user = i->second.user;
      self->demonitor(session.address());
      if (drop_member(self, session.id()))
        announce_presence(st, user, false, 0);
      return ok_atom::value;
    },
    [self](post_atom, caf::actor session, std::string& text,
           std::string& cid) -> caf::result<uint64_t> {
      auto& st = self->state;
      auto& mem = *st.mem;
      auto i = mem.members.find(session.id());
      if (i == mem.members.end())
        return make_protocol_error(protocol::error_code::not_member);
      auto store = store_of(self);
      if (!store)
        return make_protocol_error(protocol::error_code::store_unavailable);
      // Accepted only once committed: the id comes from the store, the broadcast after it.
      protocol::chat_message msg{mem.name, 0, i->second.user, std::move(text), now_ms(), std::move(cid)};
      auto promise = self->make_response_promise<uint64_t>();
      self->request(store, caf::infinite, append_atom::value, mem.epoch, std::move(msg))
        .then(
          [self, promise, sender = session.id()](append_result& result) mutable {
            auto id = result.msg.id;
            if (result.duplicate) {
              // A retry of something already accepted: only the sender gets the original again.
              auto& members = self->state.mem->members;
              if (auto m = members.find(sender); m != members.end())
                m->second.sink->push(make_frame(protocol::encode(result.msg)), frame_priority::essential);
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
                                      [](const protocol::chat_message& m, uint64_t x) { return m.id < x; });
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
        page.messages.push_back(*i);
      return page;
    },
    [self](who_atom) { return member_names(self->state); },
    [self](typing_atom, caf::actor session) {
      auto& st = self->state;
      auto i = st.mem->members.find(session.id());
      if (i == st.mem->members.end())
        return;
      auto now = self->clock().now();
      auto [last, fresh] = st.last_typing.emplace(i->second.user, now);
      if (!fresh) {
        if (now - last->second < st.cfg.rooms.typing_interval)
          return; // coalesced: the others already know this user is typing
        last->second = now;
      }
      auto payload = make_frame(protocol::encode(protocol::typing_event{st.mem->name, i->second.user}));
      fan_out(st, payload, frame_priority::droppable, session.id());
    },
    [self](expire_atom, const std::string& user, uint64_t token) {
      auto& st = self->state;
      auto i = st.mem->departing.find(user);
      if (i == st.mem->departing.end() || i->second != token)
        return; // the user came back within the grace period
      st.mem->departing.erase(i);
      if (st.user_sessions.count(user) == 0)
        announce_presence(st, user, false, 0);
      if (st.mem->members.empty() && st.mem->departing.empty())
        schedule_retire_check(self);
    },
    [self](retire_atom) {
      auto& st = self->state;
      if (!st.mem->members.empty() || !st.mem->departing.empty())
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
