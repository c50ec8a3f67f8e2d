// The presence tracker on the deterministic scheduler.

#include "actor_fixture.hpp"

#include "actors/presence.hpp"

#include <caf/actor_registry.hpp>
#include <caf/stateful_actor.hpp>

using namespace parley;
using namespace parley::testing;
using namespace std::chrono_literals;

namespace {

struct presence_fixture : fixture {
  std::shared_ptr<presence_memory> mem = std::make_shared<presence_memory>();
  presence_actor tracker;

  presence_fixture() {
    tracker = spawn(presence, mem, caf::timespan{5s});
    run();
  }

  caf::actor connect(const std::string& user) {
    auto s = caf::actor_cast<caf::actor>(spawn(fake_session, std::make_shared<session_log>()));
    caf::anon_send(tracker, put_atom::value, user, s);
    run();
    return s;
  }

  void disconnect(const caf::actor& s) {
    caf::anon_send_exit(s, caf::exit_reason::user_shutdown);
    run();
  }

  bool online(const std::string& user) { return ask<bool>(tracker, get_atom::value, user); }
};

} // namespace

TEST_CASE_FIXTURE(presence_fixture, "the tracker registers itself so sessions can find it") {
  CHECK(sys.registry().get(presence_atom::value) == caf::actor_cast<caf::strong_actor_ptr>(tracker));
}

TEST_CASE_FIXTURE(presence_fixture, "a user is online while any of several sessions is alive") {
  auto s1 = connect("alice");
  auto s2 = connect("alice");
  CHECK(online("alice"));
  CHECK_FALSE(online("bob"));
  disconnect(s1);
  advance(10s);
  CHECK(online("alice"));
  disconnect(s2);
  CHECK(online("alice"));  // grace period
  advance(6s);
  CHECK_FALSE(online("alice"));
}

TEST_CASE_FIXTURE(presence_fixture, "a session that dies for any reason is cleaned up through its monitor") {
  auto s = connect("alice");
  caf::anon_send_exit(s, caf::exit_reason::kill);
  run();
  advance(6s);
  CHECK_FALSE(online("alice"));
  CHECK(mem->sessions.empty());
}

TEST_CASE_FIXTURE(presence_fixture, "a reconnect within the grace period keeps the user online throughout") {
  auto s1 = connect("alice");
  disconnect(s1);
  advance(3s);
  auto s2 = connect("alice");
  advance(3s);  // the first grace timer fires now, but must not count
  CHECK(online("alice"));
  advance(10s);
  CHECK(online("alice"));
  disconnect(s2);
  advance(6s);
  CHECK_FALSE(online("alice"));
}

TEST_CASE_FIXTURE(presence_fixture, "the online list names each user once") {
  connect("bob");
  connect("alice");
  connect("alice");
  CHECK(ask<std::vector<std::string>>(tracker, get_atom::value) ==
        std::vector<std::string>{"alice", "bob"});
}

TEST_CASE_FIXTURE(presence_fixture, "a restarted tracker adopts its memory and still notices dying sessions") {
  auto s = connect("alice");
  caf::anon_send_exit(tracker, caf::exit_reason::kill);
  run();
  tracker = spawn(presence, mem, caf::timespan{5s});
  run();
  CHECK(online("alice"));
  disconnect(s);
  advance(6s);
  CHECK_FALSE(online("alice"));
}
