// The supervisor on virtual time: backoff timing, restart intensity, giving up, normal exits.

#include "actor_fixture.hpp"

#include "actors/supervisor.hpp"

#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

using namespace parley;
using namespace parley::testing;
using namespace std::chrono_literals;

namespace {

/// A child that does nothing until told to finish normally.
caf::behavior idle_child(caf::event_based_actor* self, int /* CAF 0.17 trips UBSan on spawns without arguments */) {
  return {[self](stop_atom) { self->quit(); }};
}

struct supervisor_fixture : fixture {
  supervisor_settings cfg;
  supervisor_actor sup;
  int spawned = 0;
  int gave_up = 0;
  std::vector<std::string> fatal;

  ~supervisor_fixture() {
    // Supervised children (rooms) are not in `spawned`: the supervisor stops them.
    caf::anon_send(sup, stop_atom::value);
    run();
  }

  supervisor_fixture() {
    cfg.backoff_min = 100ms;
    cfg.backoff_max = 1s;
    cfg.backoff_factor = 2.0;
    cfg.backoff_reset = 30s;
    cfg.max_restarts = 3;
    cfg.restart_window = 60s;
    sup = spawn(supervisor, cfg, uint64_t{42},
                    [this](const std::string& key) { fatal.push_back(key); });
    run();
  }

  child_spec spec(const std::string& key, bool essential = false) {
    return child_spec{key,
                      [this](caf::actor_system& s) {
                        ++spawned;
                        return s.spawn(idle_child, 0);
                      },
                      [this](caf::actor_system&) { ++gave_up; }, essential};
  }

  caf::actor current(const std::string& key) { return ask<caf::actor>(sup, get_atom::value, key); }

  void crash(const std::string& key) {
    caf::anon_send_exit(current(key), caf::exit_reason::kill);
    run();
  }
};

} // namespace

TEST_CASE_FIXTURE(supervisor_fixture, "a started child is spawned once and its key returns the same handle") {
  auto a = ask<caf::actor>(sup, start_atom::value, spec("x"));
  auto b = ask<caf::actor>(sup, start_atom::value, spec("x"));
  CHECK(a == b);
  CHECK(spawned == 1);
}

TEST_CASE_FIXTURE(supervisor_fixture, "a failed child is restarted only after a backoff within [min/2, min]") {
  ask<caf::actor>(sup, start_atom::value, spec("x"));
  crash("x");
  CHECK(spawned == 1);
  CHECK_FALSE(current("x"));
  advance(49ms);
  CHECK(spawned == 1);
  advance(51ms);
  CHECK(spawned == 2);
  CHECK(current("x"));
}

TEST_CASE_FIXTURE(supervisor_fixture, "restart delays grow exponentially") {
  ask<caf::actor>(sup, start_atom::value, spec("x"));
  crash("x");
  advance(100ms);
  REQUIRE(spawned == 2);
  crash("x");
  advance(99ms);  // the second delay is at least 100 ms (half of 200 ms)
  CHECK(spawned == 2);
  advance(101ms);
  CHECK(spawned == 3);
  crash("x");
  advance(199ms);  // the third is at least 200 ms
  CHECK(spawned == 3);
  advance(201ms);
  CHECK(spawned == 4);
}

TEST_CASE_FIXTURE(supervisor_fixture, "a child stable for backoff_reset starts its backoff over") {
  ask<caf::actor>(sup, start_atom::value, spec("x"));
  crash("x");
  advance(100ms);
  crash("x");
  advance(200ms);
  REQUIRE(spawned == 3);
  advance(31s);  // stable now
  crash("x");
  advance(100ms);
  CHECK(spawned == 4);
}

TEST_CASE_FIXTURE(supervisor_fixture, "past the restart intensity the supervisor gives up on the child") {
  ask<caf::actor>(sup, start_atom::value, spec("x"));
  for (int i = 0; i < 3; ++i) {
    crash("x");
    advance(1s);
  }
  REQUIRE(spawned == 4);
  crash("x");
  advance(5s);
  CHECK(spawned == 4);
  CHECK(gave_up == 1);
  CHECK(fatal.empty());
  CHECK_FALSE(current("x"));
}

TEST_CASE_FIXTURE(supervisor_fixture, "failures spread beyond the window do not exhaust the intensity") {
  ask<caf::actor>(sup, start_atom::value, spec("x"));
  for (int i = 0; i < 6; ++i) {
    crash("x");
    advance(25s);
  }
  CHECK(spawned == 7);
  CHECK(gave_up == 0);
}

TEST_CASE_FIXTURE(supervisor_fixture, "giving up on an essential child is fatal") {
  ask<caf::actor>(sup, start_atom::value, spec("directory", true));
  for (int i = 0; i < 4; ++i) {
    crash("directory");
    advance(1s);
  }
  CHECK(fatal == std::vector<std::string>{"directory"});
}

TEST_CASE_FIXTURE(supervisor_fixture, "a child that exits normally is forgotten, not restarted") {
  auto child = ask<caf::actor>(sup, start_atom::value, spec("x"));
  caf::anon_send(child, stop_atom::value);
  run();
  advance(5s);
  CHECK(spawned == 1);
}

TEST_CASE_FIXTURE(supervisor_fixture, "stop ends every child and the supervisor") {
  auto a = ask<caf::actor>(sup, start_atom::value, spec("a"));
  auto b = ask<caf::actor>(sup, start_atom::value, spec("b"));
  ask<ok_atom>(sup, stop_atom::value);
  advance(5s);
  CHECK(spawned == 2);
  auto err = ask_error<caf::actor>(sup, get_atom::value, std::string{"a"});
  CHECK(err == caf::sec::request_receiver_down);
}
