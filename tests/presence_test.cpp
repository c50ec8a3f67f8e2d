// The presence tracker on the deterministic scheduler: who is online anywhere on the server.

#include "actor_fixture.hpp"

#include "actors/presence.hpp"

#include <caf/actor_registry.hpp>
#include <caf/stateful_actor.hpp>

using namespace parley;
using namespace parley::testing;
using namespace std::chrono_literals;

namespace {

struct presence_fixture : fixture {
  std::shared_ptr<presence_memory> mem = std::make_shared<presence_memory>(caf::timespan{5s});
  presence_actor tracker;

  presence_fixture() {
    tracker = spawn(presence, mem);
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

  std::vector<protocol::user_status> status(std::vector<std::string> users) {
    return ask<std::vector<protocol::user_status>>(tracker, status_atom::value, std::move(users));
  }

  protocol::user_status status(const std::string& user) { return status(std::vector<std::string>{user}).at(0); }

  bool online(const std::string& user) { return status(user).online; }
};

} // namespace

TEST_CASE_FIXTURE(presence_fixture, "the tracker registers itself so sessions can find it") {
  CHECK(sys.registry().get(presence_atom::value) == caf::actor_cast<caf::strong_actor_ptr>(tracker));
}

TEST_CASE_FIXTURE(presence_fixture, "status answers each user in the order asked with online and the session count") {
  connect("bob");
  connect("bob");
  connect("alice");
  auto answer = status({"carol", "bob", "alice", "bob"});
  REQUIRE(answer.size() == 4);
  CHECK(answer[0].user == "carol");
  CHECK_FALSE(answer[0].online);
  CHECK(answer[0].sessions == 0);
  CHECK(answer[1].user == "bob");
  CHECK(answer[1].online);
  CHECK(answer[1].sessions == 2);
  CHECK(answer[2].user == "alice");
  CHECK(answer[2].sessions == 1);
  CHECK(answer[3].user == "bob");
  CHECK(answer[3].sessions == 2);
}

TEST_CASE_FIXTURE(presence_fixture, "a user is online while any of several sessions is alive, then within the grace with no sessions, then offline") {
  auto s1 = connect("alice");
  auto s2 = connect("alice");
  disconnect(s1);
  advance(10s);
  CHECK(status("alice").online);
  CHECK(status("alice").sessions == 1);
  disconnect(s2);
  auto within = status("alice");
  CHECK(within.online);  // grace period
  CHECK(within.sessions == 0);
  advance(4900ms);
  CHECK(online("alice"));
  advance(100ms);
  auto after = status("alice");
  CHECK_FALSE(after.online);
  CHECK(after.sessions == 0);
}

TEST_CASE_FIXTURE(presence_fixture, "a session that dies for any reason is cleaned up through its monitor") {
  auto s = connect("alice");
  caf::anon_send_exit(s, caf::exit_reason::kill);
  run();
  advance(6s);
  CHECK_FALSE(online("alice"));
  CHECK(mem->sessions.empty());
  CHECK(mem->session_count.empty());
  CHECK(mem->grace.empty());
}

TEST_CASE_FIXTURE(presence_fixture, "a reconnect within the grace period keeps the user online throughout") {
  auto s1 = connect("alice");
  disconnect(s1);
  advance(3s);
  auto s2 = connect("alice");
  advance(3s);  // the first grace period would end now, but was cancelled
  CHECK(online("alice"));
  advance(10s);
  CHECK(online("alice"));
  disconnect(s2);
  advance(6s);
  CHECK_FALSE(online("alice"));
}

TEST_CASE_FIXTURE(presence_fixture, "grace periods of many users end on one timer, each at its own time") {
  auto a = connect("a");
  auto b = connect("b");
  auto c = connect("c");
  disconnect(a);
  advance(1s);
  disconnect(b);
  advance(1s);
  disconnect(c);
  advance(3s);  // a's grace ends
  auto answer = status({"a", "b", "c"});
  CHECK_FALSE(answer[0].online);
  CHECK(answer[1].online);
  CHECK(answer[2].online);
  advance(1s);
  answer = status({"a", "b", "c"});
  CHECK_FALSE(answer[1].online);
  CHECK(answer[2].online);
  advance(1s);
  CHECK_FALSE(online("c"));
}

TEST_CASE_FIXTURE(presence_fixture, "registering the same session twice counts it once") {
  auto s = caf::actor_cast<caf::actor>(spawn(fake_session, std::make_shared<session_log>()));
  caf::anon_send(tracker, put_atom::value, std::string{"alice"}, s);
  caf::anon_send(tracker, put_atom::value, std::string{"alice"}, s);
  run();
  CHECK(status("alice").sessions == 1);
}

TEST_CASE_FIXTURE(presence_fixture, "a restarted tracker adopts its memory, keeps grace periods and still notices dying sessions") {
  auto s = connect("alice");
  auto gone = connect("bob");
  disconnect(gone);
  advance(2s);
  caf::anon_send_exit(tracker, caf::exit_reason::kill);
  run();
  tracker = spawn(presence, mem);
  run();
  CHECK(status("alice").sessions == 1);
  CHECK(online("bob"));
  advance(3s);  // bob's grace ends 5 s after his disconnect, restart or not
  CHECK_FALSE(online("bob"));
  disconnect(s);
  advance(6s);
  CHECK_FALSE(online("alice"));
}
