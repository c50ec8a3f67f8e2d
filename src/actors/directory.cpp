#include "actors/directory.hpp"

#include "actors/errors.hpp"
#include "actors/mailbox_probe.hpp"
#include "actors/gather.hpp"
#include "actors/registry.hpp"
#include "actors/room.hpp"

#include <caf/actor_registry.hpp>
#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>

namespace parley {

namespace {

using self_ptr = directory_actor::stateful_pointer<directory_state>;

/// The child spec of a room: its memory lives in the factory, so every restart adopts it.
child_spec room_spec(self_ptr self, const std::string& name, const room_snapshot& snapshot) {
  auto& cfg = self->state.cfg;
  auto mem = make_room_memory(name, snapshot, cfg.presence.grace);
  child_spec spec;
  // A serial number keeps keys unique: a retired room and its successor are different children.
  spec.key = room_child_key(name) + "#" + std::to_string(++self->state.mem->rooms_started);
  spec.factory = [mem, cfg](caf::actor_system& sys) {
    return caf::actor_cast<caf::actor>(sys.spawn(room, mem, cfg));
  };
  spec.on_give_up = [mem](caf::actor_system& sys) {
    // The room cannot be kept up: tell its members, and let the directory forget it.
    for (auto& [id, member] : mem->members)
      caf::anon_send(caf::actor_cast<session_actor>(member.session), closed_atom::value, mem->name);
    if (auto dir = registered<directory_actor>(sys, directory_atom::value))
      caf::anon_send(dir, closed_atom::value, mem->name);
  };
  return spec;
}

void deliver_error(self_ptr self, const std::string& name, const caf::error& err) {
  for (auto& promise : self->state.pending[name])
    promise.deliver(err);
  self->state.pending.erase(name);
}

/// A room left memory: the store stops counting it against max_rooms unless it is stored.
void forget_room(self_ptr self, const std::string& name) {
  if (auto store = registered<store_actor>(self->system(), store_atom::value))
    self->send(store, retire_atom::value, name);
}

void spawn_room(self_ptr self, const std::string& name, const room_snapshot& snapshot) {
  self->request(self->state.supervisor, caf::infinite, start_atom::value,
                room_spec(self, name, snapshot))
    .then(
      [self, name, created = snapshot.created](caf::actor& handle) {
        auto room = caf::actor_cast<room_actor>(handle);
        self->state.mem->rooms[name] = room;
        // Only the lookup that started the room made it; the others found it.
        bool first = true;
        for (auto& promise : self->state.pending[name])
          promise.deliver(room_lookup{room, std::exchange(first, false) && created});
        self->state.pending.erase(name);
      },
      [self, name](caf::error& err) {
        spdlog::error("directory failed to start room {}: {}", name, self->system().render(err));
        forget_room(self, name);
        deliver_error(self, name, err);
      });
}

/// Loads the room from the store (its epoch, ids and newest messages), then starts its actor. The
/// store creates it if it is new, the cap allows and `may_create` is set.
void start_room(self_ptr self, const std::string& name, bool may_create) {
  auto store = registered<store_actor>(self->system(), store_atom::value);
  if (!store) {
    deliver_error(self, name, make_protocol_error(protocol::error_code::store_unavailable));
    return;
  }
  auto recent = static_cast<uint32_t>(self->state.cfg.rooms.history_size);
  self->request(store, caf::infinite, open_atom::value, name, recent, may_create)
    .then([self, name](room_snapshot& snapshot) { spawn_room(self, name, snapshot); },
          [self, name](caf::error& err) { deliver_error(self, name, from_store(std::move(err))); });
}

/// Asks every live room for its summary; rooms that do not answer in time are listed unanswered.
caf::result<std::vector<room_summary>> list_rooms(self_ptr self, caf::timespan timeout) {
  auto& rooms = self->state.mem->rooms;
  if (rooms.empty())
    return std::vector<room_summary>{};
  auto promise = self->make_response_promise<std::vector<room_summary>>();
  auto by_name = [](std::vector<room_summary>& list) {
    std::sort(list.begin(), list.end(),
              [](const room_summary& a, const room_summary& b) { return a.name < b.name; });
  };
  std::vector<room_summary> initial;
  initial.reserve(rooms.size());
  auto answers = std::make_shared<gather<std::vector<room_summary>>>(std::move(initial), rooms.size(),
                                                                      promise, by_name);
  for (auto& [name, room] : rooms) {
    self->request(room, timeout, get_atom::value, summary_atom::value)
      .then(
        [answers](room_summary& summary) {
          answers->result().push_back(std::move(summary));
          answers->one_done();
        },
        [answers, name = name](const caf::error&) {
          room_summary missing;
          missing.name = name;
          missing.answered = false;
          answers->result().push_back(std::move(missing));
          answers->one_done();
        });
  }
  return promise;
}

} // namespace

std::string room_child_key(const std::string& room_name) {
  return "room:" + room_name;
}

directory_actor::behavior_type directory(self_ptr self, std::shared_ptr<directory_memory> mem,
                                         supervisor_actor supervisor, room_config cfg) {
  self->state.mem = std::move(mem);
  self->state.supervisor = std::move(supervisor);
  self->state.cfg = std::move(cfg);
  register_as(self, directory_atom::value);

  return {
    [self](get_atom, const std::string& name, bool may_create) -> caf::result<room_lookup> {
      sample_mailbox(self, metrics::actor_kind::directory);
      auto& st = self->state;
      auto i = st.mem->rooms.find(name);
      if (i != st.mem->rooms.end())
        return room_lookup{i->second, false};
      auto promise = self->make_response_promise<room_lookup>();
      auto& waiting = st.pending[name];
      waiting.push_back(promise);
      // The first lookup decides whether a new room may be made; the others wait for its answer.
      if (waiting.size() == 1)
        start_room(self, name, may_create);
      return promise;
    },
    [self](retire_atom, const std::string& name, room_actor& room) {
      auto& rooms = self->state.mem->rooms;
      auto i = rooms.find(name);
      if (i == rooms.end() || i->second != room)
        return false;
      rooms.erase(i);
      forget_room(self, name);
      return true;
    },
    [self](moved_atom, const std::string& name, room_actor& room) {
      self->state.mem->rooms[name] = std::move(room);
    },
    [self](closed_atom, const std::string& name) {
      if (self->state.mem->rooms.erase(name) > 0)
        forget_room(self, name);
    },
    [self](live_atom, const std::string& name) -> caf::result<room_actor> {
      auto& rooms = self->state.mem->rooms;
      if (auto i = rooms.find(name); i != rooms.end())
        return i->second;
      return make_protocol_error(protocol::error_code::not_found);
    },
    [self](get_atom, rooms_atom, caf::timespan timeout) { return list_rooms(self, timeout); },
  };
}

} // namespace parley
