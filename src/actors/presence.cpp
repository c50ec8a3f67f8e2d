#include "actors/presence.hpp"

#include "actors/registry.hpp"

#include <caf/actor_registry.hpp>
#include <caf/actor_system.hpp>
#include <caf/system_messages.hpp>
#include <caf/stateful_actor.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>

namespace parley {

namespace {

using self_ptr = presence_actor::stateful_pointer<presence_state>;

void track(self_ptr self, const std::string& user, const caf::actor& session) {
  auto& st = self->state;
  st.user_of[session.id()] = user;
  self->monitor(session);
}

} // namespace

presence_actor::behavior_type presence(self_ptr self, std::shared_ptr<presence_memory> mem,
                                       caf::timespan grace) {
  auto& st = self->state;
  st.mem = std::move(mem);
  st.grace = grace;
  // A restarted tracker re-monitors everything it knew: sessions that died meanwhile report down
  // right away, and pending grace periods start over.
  for (auto& [user, sessions] : st.mem->sessions)
    for (auto& [id, session] : sessions)
      track(self, user, session);
  for (auto& [user, token] : st.mem->departing)
    self->delayed_send(self, grace, expire_atom::value, user, token);
  register_as(self, presence_atom::value);

  self->set_down_handler([self](caf::down_msg& dm) {
    auto& st = self->state;
    auto i = st.user_of.find(dm.source.id());
    if (i == st.user_of.end())
      return;
    auto user = std::move(i->second);
    st.user_of.erase(i);
    auto s = st.mem->sessions.find(user);
    if (s == st.mem->sessions.end())
      return;
    s->second.erase(dm.source.id());
    if (!s->second.empty())
      return;
    st.mem->sessions.erase(s);
    auto token = st.mem->next_token++;
    st.mem->departing[user] = token;
    self->delayed_send(self, st.grace, expire_atom::value, user, token);
  });

  return {
    [self](put_atom, const std::string& user, caf::actor& session) {
      auto& st = self->state;
      st.mem->departing.erase(user);
      st.mem->sessions[user].emplace(session.id(), session);
      track(self, user, session);
    },
    [self](get_atom, const std::string& user) {
      auto& mem = *self->state.mem;
      return mem.sessions.count(user) > 0 || mem.departing.count(user) > 0;
    },
    [self](get_atom) {
      auto& mem = *self->state.mem;
      std::vector<std::string> users;
      for (auto& [user, sessions] : mem.sessions)
        users.push_back(user);
      for (auto& [user, token] : mem.departing)
        users.push_back(user);
      std::sort(users.begin(), users.end());
      return users;
    },
    [self](expire_atom, const std::string& user, uint64_t token) {
      auto& departing = self->state.mem->departing;
      auto i = departing.find(user);
      if (i != departing.end() && i->second == token)
        departing.erase(i);
    },
  };
}

} // namespace parley
