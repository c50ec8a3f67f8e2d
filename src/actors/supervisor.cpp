#include "actors/supervisor.hpp"

#include "actors/mailbox_probe.hpp"

#include <caf/actor_system.hpp>
#include <caf/system_messages.hpp>
#include <caf/exit_reason.hpp>
#include <caf/stateful_actor.hpp>

#include <spdlog/spdlog.h>

#include <chrono>

namespace parley {

namespace {

using self_ptr = supervisor_actor::stateful_pointer<supervisor_state>;

long long as_ms(caf::timespan d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

/// Spawns (or respawns) a child and arms the timer that resets its backoff once it proves stable.
void launch(self_ptr self, supervised_child& child) {
  child.handle = child.spec.factory(self->system());
  ++child.generation;
  self->monitor(child.handle);
  self->state.key_of[child.handle.id()] = child.spec.key;
  self->delayed_send(self, self->state.cfg.backoff_reset, stable_atom::value, child.spec.key,
                     child.generation);
}

void give_up(self_ptr self, const std::string& key) {
  auto i = self->state.children.find(key);
  auto spec = std::move(i->second.spec);
  self->state.children.erase(i);
  metrics::server_metrics().supervisor_give_up(key);
  spdlog::error("supervisor gives up on {}: more than {} restarts within {} ms", key,
                self->state.cfg.max_restarts, as_ms(self->state.cfg.restart_window));
  if (spec.on_give_up)
    spec.on_give_up(self->system());
  if (spec.essential && self->state.on_fatal)
    self->state.on_fatal(key);
}

void on_child_down(self_ptr self, caf::down_msg& dm) {
  auto& st = self->state;
  auto k = st.key_of.find(dm.source.id());
  if (k == st.key_of.end())
    return;
  auto key = std::move(k->second);
  st.key_of.erase(k);
  auto i = st.children.find(key);
  if (i == st.children.end())
    return;
  auto& child = i->second;
  child.handle = nullptr;
  if (dm.reason == caf::exit_reason::normal) {
    spdlog::debug("supervisor: {} finished normally", key);
    st.children.erase(i);
    return;
  }
  if (!child.intensity.allow_restart(self->clock().now())) {
    give_up(self, key);
    return;
  }
  auto delay = child.delays.next(st.rng);
  ++child.generation;
  metrics::server_metrics().supervisor_restart(key);
  spdlog::warn("supervisor restarts {} in {} ms after it failed with {} (restart {} of {} within "
               "the window)",
               key, as_ms(delay), self->system().render(dm.reason), child.intensity.recent(),
               st.cfg.max_restarts);
  self->delayed_send(self, delay, restart_atom::value, key, child.generation);
}

} // namespace

supervisor_actor::behavior_type supervisor(self_ptr self, supervisor_settings cfg, uint64_t seed,
                                           std::function<void(const std::string&)> on_fatal) {
  self->state.cfg = cfg;
  self->state.rng.seed(seed);
  self->state.on_fatal = std::move(on_fatal);
  self->set_down_handler([self](caf::down_msg& dm) {
    sample_mailbox(self, metrics::actor_kind::supervisor);
    on_child_down(self, dm);
  });

  return {
    [self](start_atom, child_spec& spec) -> caf::actor {
      auto& st = self->state;
      auto i = st.children.find(spec.key);
      if (i != st.children.end())
        return i->second.handle;
      auto key = spec.key;
      auto& child = st.children
                      .emplace(key, supervised_child{std::move(spec), nullptr, 0,
                                                     backoff{st.cfg.backoff_min, st.cfg.backoff_max,
                                                             st.cfg.backoff_factor},
                                                     restart_intensity{st.cfg.max_restarts,
                                                                       st.cfg.restart_window}})
                      .first->second;
      launch(self, child);
      return child.handle;
    },
    [self](stop_atom, const std::string& key) {
      auto& st = self->state;
      auto i = st.children.find(key);
      if (i != st.children.end()) {
        if (i->second.handle) {
          st.key_of.erase(i->second.handle.id());
          self->demonitor(i->second.handle.address());
          self->send_exit(i->second.handle, caf::exit_reason::user_shutdown);
        }
        st.children.erase(i);
      }
      return ok_atom::value;
    },
    [self](stop_atom) {
      // Children are monitored, not linked: stop them explicitly so the actor system can shut down.
      for (auto& [key, child] : self->state.children)
        if (child.handle) {
          self->demonitor(child.handle.address());
          self->send_exit(child.handle, caf::exit_reason::user_shutdown);
        }
      self->state.children.clear();
      self->state.key_of.clear();
      self->quit();
      return ok_atom::value;
    },
    [self](get_atom, const std::string& key) -> caf::actor {
      auto i = self->state.children.find(key);
      return i != self->state.children.end() ? i->second.handle : caf::actor{};
    },
    [self](restart_atom, const std::string& key, uint64_t generation) {
      auto i = self->state.children.find(key);
      if (i == self->state.children.end() || i->second.generation != generation)
        return;
      sample_mailbox(self, metrics::actor_kind::supervisor);
      spdlog::info("supervisor restarting {}", key);
      launch(self, i->second);
    },
    [self](stable_atom, const std::string& key, uint64_t generation) {
      auto i = self->state.children.find(key);
      if (i == self->state.children.end() || i->second.generation != generation)
        return;
      i->second.delays.reset();
    },
  };
}

} // namespace parley
