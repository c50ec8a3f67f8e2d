#include "actors/presence.hpp"

#include "actors/wall_clock.hpp"
#include "actors/errors.hpp"
#include "actors/gather.hpp"
#include "actors/grace_timer.hpp"
#include "actors/mailbox_probe.hpp"
#include "actors/registry.hpp"

#include <caf/actor_registry.hpp>
#include <caf/actor_system.hpp>
#include <caf/system_messages.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

namespace parley {

namespace {

using self_ptr = presence_actor::stateful_pointer<presence_state>;

/// One timer for all grace periods: the oldest one's deadline.
void schedule_grace(self_ptr self) {
  arm_grace_timer(self, self->state.mem->grace, self->state.grace_scheduled);
}


/// Registers a live session of `user`.
void track(self_ptr self, std::string user, const caf::actor& session) {
  auto& mem = *self->state.mem;
  if (!mem.sessions.emplace(session.id(), tracked_session{user, session}).second)
    return;  // registered already
  self->monitor(session);
  mem.grace.cancel(user);
  ++mem.session_count[std::move(user)];
}

/// Admits a session unless its user is banned from the server.
caf::expected<ok_atom> admit_now(self_ptr self, std::string user, const caf::actor& session) {
  if (auto ban = in_force(self->state.mem->server_bans, user, now_ms()))
    return make_protocol_error(protocol::error_code::banned, *ban);
  track(self, std::move(user), session);
  return ok_atom::value;
}

/// Reads the server-wide bans once (the memory keeps them across restarts), then admits. Nothing
/// else is handled until the store answers (await), so no banned user slips in meanwhile. The
/// store registers itself on its own thread and may not be found in the first moments: a user
/// that early is refused with room_unavailable, and the client reconnects.
caf::result<ok_atom> load_bans_then_admit(self_ptr self, std::string user, caf::actor session) {
  auto store = registered<store_actor>(self->system(), store_atom::value);
  if (!store)
    return make_protocol_error(protocol::error_code::room_unavailable);
  auto promise = self->make_response_promise<ok_atom>();
  self->request(store, std::chrono::seconds(10), bans_atom::value)
    .await(
      [self, promise, user, session](std::vector<restriction>& bans) mutable {
        auto& mem = *self->state.mem;
        for (auto& ban : bans)
          mem.server_bans[std::move(ban.user)] = ban.until;
        mem.bans_loaded = true;
        auto result = admit_now(self, std::move(user), session);
        if (result)
          promise.deliver(*result);
        else
          promise.deliver(std::move(result.error()));
      },
      [self, promise](caf::error& err) mutable {
        spdlog::warn("presence failed to read the server-wide bans: {}", self->system().render(err));
        promise.deliver(make_protocol_error(protocol::error_code::room_unavailable));
      });
  return promise;
}

/// A recorded server-wide ban or unban takes effect: a banned user's sessions are closed, and
/// admit refuses the user from now on.
void put_ban_in_force(self_ptr self, const moderation_record& record) {
  auto& mem = *self->state.mem;
  if (record.action == protocol::moderation_action::unban) {
    mem.server_bans.erase(record.user);
    return;
  }
  mem.server_bans[record.user] = record.until;
  spdlog::info("{} banned {} from the server", record.by, record.user);
  for (auto& [id, session] : mem.sessions)
    if (session.user == record.user)
      self->send(caf::actor_cast<session_actor>(session.handle), banned_atom::value, record);
}

/// Forgets the users whose grace ended (they are offline now) and waits for the next one.
void expire_due(self_ptr self) {
  self->state.mem->grace.take_expired(self->clock().now());
  schedule_grace(self);
}

/// One user's state, with the info each of their sessions reports within `timeout`.
caf::result<user_report> report_user(self_ptr self, const std::string& user, caf::timespan timeout) {
  auto& mem = *self->state.mem;
  user_report report;
  report.user = user;
  bool connected = mem.session_count.count(user) > 0;
  report.in_grace = !connected && mem.grace.contains(user);
  report.online = connected || report.in_grace;
  if (auto ban = in_force(mem.server_bans, user, now_ms())) {
    report.banned = true;
    report.banned_until = *ban;
  }
  std::vector<caf::actor> sessions;
  for (auto& [id, session] : mem.sessions)
    if (session.user == user)
      sessions.push_back(session.handle);
  if (sessions.empty())
    return report;
  auto promise = self->make_response_promise<user_report>();
  auto by_id = [](user_report& r) {
    std::sort(r.sessions.begin(), r.sessions.end(),
              [](const session_info& a, const session_info& b) { return a.session < b.session; });
  };
  auto answers = std::make_shared<gather<user_report>>(std::move(report), sessions.size(), promise, by_id);
  for (auto& session : sessions) {
    self->request(caf::actor_cast<session_actor>(session), timeout, get_atom::value, info_atom::value)
      .then(
        [answers](session_info& info) {
          answers->result().sessions.push_back(std::move(info));
          answers->one_done();
        },
        [answers](const caf::error&) {
          ++answers->result().unanswered;
          answers->one_done();
        });
  }
  return promise;
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
      sample_mailbox(self, metrics::actor_kind::presence);
      track(self, std::move(user), session);
    },
    [self](admit_atom, std::string& user, caf::actor& session) -> caf::result<ok_atom> {
      sample_mailbox(self, metrics::actor_kind::presence);
      if (!self->state.mem->bans_loaded)
        return load_bans_then_admit(self, std::move(user), std::move(session));
      auto result = admit_now(self, std::move(user), session);
      if (!result)
        return std::move(result.error());
      return *result;
    },
    [self](moderate_atom, moderation_record& record) -> caf::result<ok_atom> {
      using protocol::moderation_action;
      if (record.action != moderation_action::ban && record.action != moderation_action::unban)
        return make_protocol_error(protocol::error_code::bad_field);
      auto store = registered<store_actor>(self->system(), store_atom::value);
      if (!store)
        return make_protocol_error(protocol::error_code::store_unavailable);
      // Recorded first, then in force: a ban nobody could write down would vanish on restart.
      auto promise = self->make_response_promise<ok_atom>();
      self->request(store, std::chrono::seconds(10), moderate_atom::value, record)
        .then(
          [self, promise, record](ok_atom) mutable {
            put_ban_in_force(self, record);
            promise.deliver(ok_atom::value);
          },
          [promise](caf::error& err) mutable { promise.deliver(from_store(std::move(err))); });
      return promise;
    },
    [self](enforce_atom, const moderation_record& record) {
      // Another node recorded it (cluster mode).
      using protocol::moderation_action;
      if (record.action == moderation_action::ban || record.action == moderation_action::unban)
        put_ban_in_force(self, record);
    },
    [self](status_atom, const std::vector<std::string>& users) {
      sample_mailbox(self, metrics::actor_kind::presence);
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
    [self](get_atom, sessions_atom, const std::string& user, caf::timespan timeout) {
      return report_user(self, user, timeout);
    },
    [self](expire_atom) {
      self->state.grace_scheduled = false;
      expire_due(self);
    },
  };
}

} // namespace parley
