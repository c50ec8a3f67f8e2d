#include "actors/presence.hpp"

#include "actors/errors.hpp"
#include "actors/grace_timer.hpp"
#include "actors/registry.hpp"

#include <caf/actor_registry.hpp>
#include <caf/actor_system.hpp>
#include <caf/system_messages.hpp>
#include <caf/stateful_actor.hpp>

namespace parley {

namespace {

using self_ptr = presence_actor::stateful_pointer<presence_state>;

/// One timer for all grace periods: the oldest one's deadline.
void schedule_grace(self_ptr self) {
  arm_grace_timer(self, self->state.mem->grace, self->state.grace_scheduled);
}

/// Forgets the users whose grace ended (they are offline now) and waits for the next one.
void expire_due(self_ptr self) {
  self->state.mem->grace.take_expired(self->clock().now());
  schedule_grace(self);
}

} // namespace

presence_actor::behavior_type presence(self_ptr self, std::shared_ptr<presence_memory> mem) {
  auto& st = self->state;
  st.mem = std::move(mem);
  // A restarted tracker re-monitors everything it knew: sessions that died meanwhile report down
  // right away. Grace periods keep their deadlines.
  for (auto& [id, session] : st.mem->sessions)
    self->monitor(session.handle);
  expire_due(self);
  register_as(self, presence_atom::value);

  self->set_down_handler([self](caf::down_msg& dm) {
    auto& mem = *self->state.mem;
    auto i = mem.sessions.find(dm.source.id());
    if (i == mem.sessions.end())
      return;
    auto user = std::move(i->second.user);
    mem.sessions.erase(i);
    auto count = mem.session_count.find(user);
    if (count == mem.session_count.end() || --count->second > 0)
      return;
    mem.session_count.erase(count);
    mem.grace.start(user, self->clock().now());
    schedule_grace(self);
  });

  return {
    [self](put_atom, std::string& user, caf::actor& session) {
      auto& mem = *self->state.mem;
      if (!mem.sessions.emplace(session.id(), tracked_session{user, session}).second)
        return;  // registered already
      self->monitor(session);
      mem.grace.cancel(user);
      ++mem.session_count[std::move(user)];
    },
    [self](status_atom, const std::vector<std::string>& users) {
      auto& mem = *self->state.mem;
      std::vector<protocol::user_status> result;
      result.reserve(users.size());
      for (const auto& user : users) {
        auto i = mem.session_count.find(user);
        uint64_t sessions = i == mem.session_count.end() ? 0 : i->second;
        result.push_back(protocol::user_status{user, sessions > 0 || mem.grace.contains(user), sessions});
      }
      return result;
    },
    [self](admit_atom, std::string&, caf::actor&) -> caf::result<ok_atom> {
      return make_protocol_error(protocol::error_code::internal);  // TODO(identity)
    },
    [self](moderate_atom, moderation_record&) -> caf::result<ok_atom> {
      return make_protocol_error(protocol::error_code::internal);  // TODO(identity)
    },
    [self](expire_atom) {
      self->state.grace_scheduled = false;
      expire_due(self);
    },
  };
}

} // namespace parley
