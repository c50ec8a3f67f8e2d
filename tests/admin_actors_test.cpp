// The actor messages the admin API asks (actors.hpp, "Admin:"), on the deterministic scheduler: a
// room's summary, members and notices; the directory's live lookup and room list; the presence
// tracker's report of one user; the store's readiness answer.

#include "actor_fixture.hpp"

#include "actors/directory.hpp"
#include "actors/errors.hpp"
#include "actors/presence.hpp"
#include "actors/room.hpp"
#include "actors/supervisor.hpp"

#include <caf/stateful_actor.hpp>

using namespace parley;
using namespace parley::testing;
using namespace std::chrono_literals;

namespace {

using json = nlohmann::json;

struct admin_room_fixture : fixture {
  room_config cfg;
  std::shared_ptr<room_memory> mem = std::make_shared<room_memory>("general", 7, caf::timespan{5s});
  room_actor room_handle;

  admin_room_fixture() {
    spawn_store();
    room_handle = spawn(room, mem, cfg);
    run();
  }

  std::pair<caf::actor, std::shared_ptr<recording_sink>> join(const std::string& user,
                                                              const std::string& name = "") {
    auto sink = std::make_shared<recording_sink>();
    auto s = caf::actor_cast<caf::actor>(spawn(fake_session, std::make_shared<session_log>()));
    ask<join_result>(room_handle, join_atom::value, s, join_request{user, sink, {}, {}, {}, name});
    return {s, sink};
  }
};

} // namespace

TEST_CASE_FIXTURE(admin_room_fixture, "a room sums up its connections, users, last id and message rate") {
  auto [alice, alice_sink] = join("alice");
  join("bob", "Bob B.");
  join("bob", "Bob B.");
  ask<uint64_t>(room_handle, post_atom::value, alice, std::string{"hi"}, std::string{"c1"});
  ask<uint64_t>(room_handle, post_atom::value, alice, std::string{"again"}, std::string{"c2"});
  auto summary = ask<room_summary>(room_handle, get_atom::value, summary_atom::value);
  CHECK(summary.name == "general");
  CHECK(summary.connections == 3);
  CHECK(summary.users == 2);
  CHECK(summary.present == 2);
  CHECK(summary.epoch == 7);
  CHECK(summary.last_id == 2);
  CHECK(summary.answered);
  CHECK(summary.message_rate == doctest::Approx(2.0 / 60));

  auto members = ask<std::vector<room_member_summary>>(room_handle, get_atom::value, members_atom::value);
  REQUIRE(members.size() == 2);
  CHECK(members[0].user == "alice");
  CHECK(members[0].connections == 1);
  CHECK(members[1].user == "bob");
  CHECK(members[1].name == "Bob B.");
  CHECK(members[1].connections == 2);
}

TEST_CASE_FIXTURE(admin_room_fixture, "a notice goes to every member connection and not into history") {
  auto [alice, alice_sink] = join("alice");
  auto [bob, bob_sink] = join("bob");
  alice_sink->take();
  bob_sink->take();
  auto delivered = ask<uint64_t>(room_handle, notice_atom::value, std::string{"restart at 10:00"});
  CHECK(delivered == 2);
  for (auto* sink : {alice_sink.get(), bob_sink.get()}) {
    auto notices = sink->take("notice");
    REQUIRE(notices.size() == 1);
    CHECK(notices[0]["room"] == "general");
    CHECK(notices[0]["text"] == "restart at 10:00");
    CHECK(notices[0]["ts"].get<int64_t>() > 0);
  }
  auto page = ask<history_page>(room_handle, history_atom::value, uint64_t{0}, uint32_t{50});
  CHECK(page.messages.empty());
  CHECK(ask<room_summary>(room_handle, get_atom::value, summary_atom::value).last_id == 0);
}

namespace {

struct admin_directory_fixture : fixture {
  supervisor_actor sup;
  directory_actor dir;

  admin_directory_fixture() {
    spawn_store();
    sup = spawn(supervisor, supervisor_settings{}, uint64_t{1}, [](const std::string&) {});
    dir = spawn(directory, std::make_shared<directory_memory>(), sup, room_config{});
    run();
  }

  ~admin_directory_fixture() {
    caf::anon_send(sup, stop_atom::value);
    run();
  }
};

} // namespace

TEST_CASE_FIXTURE(admin_directory_fixture, "the directory finds live rooms only, and lists them with their summaries") {
  auto missing = ask_error<room_actor>(dir, live_atom::value, std::string{"general"});
  CHECK(to_protocol_error(missing) == protocol::error_code::not_found);
  CHECK(ask<std::vector<room_summary>>(dir, get_atom::value, rooms_atom::value, caf::timespan{1s}).empty());

  auto zeta = ask<room_lookup>(dir, get_atom::value, std::string{"zeta"}, true).room;
  auto alpha = ask<room_lookup>(dir, get_atom::value, std::string{"alpha"}, true).room;
  CHECK(ask<room_actor>(dir, live_atom::value, std::string{"zeta"}) == zeta);
  auto rooms = ask<std::vector<room_summary>>(dir, get_atom::value, rooms_atom::value, caf::timespan{1s});
  REQUIRE(rooms.size() == 2);
  CHECK(rooms[0].name == "alpha");
  CHECK(rooms[1].name == "zeta");
  CHECK(rooms[0].answered);

  // A room that cannot answer (here: killed, and the supervisor's restart still waits for its
  // backoff) is listed by name as unanswered.
  caf::anon_send_exit(alpha, caf::exit_reason::kill);
  run();
  auto after = ask<std::vector<room_summary>>(dir, get_atom::value, rooms_atom::value, caf::timespan{1s});
  REQUIRE(after.size() == 2);
  CHECK(after[0].name == "alpha");
  CHECK_FALSE(after[0].answered);
  CHECK(after[1].answered);
}

namespace {

struct admin_presence_fixture : fixture {
  std::shared_ptr<presence_memory> mem = std::make_shared<presence_memory>(caf::timespan{5s});
  presence_actor tracker;

  admin_presence_fixture() {
    tracker = spawn(presence, mem);
    run();
  }

  caf::actor connect(const std::string& user, const std::string& session_id) {
    auto log = std::make_shared<session_log>();
    log->session_id = session_id;
    auto s = caf::actor_cast<caf::actor>(spawn(fake_session, log));
    caf::anon_send(tracker, put_atom::value, user, s);
    run();
    return s;
  }

  user_report report(const std::string& user) {
    return ask<user_report>(tracker, get_atom::value, sessions_atom::value, user, caf::timespan{1s});
  }
};

} // namespace

TEST_CASE_FIXTURE(admin_presence_fixture, "presence reports a user's sessions with what each says, then the grace") {
  connect("bob", "00000000000000bb");
  connect("bob", "00000000000000aa");
  connect("alice", "00000000000000cc");
  auto bob = report("bob");
  CHECK(bob.online);
  CHECK_FALSE(bob.in_grace);
  CHECK_FALSE(bob.banned);
  REQUIRE(bob.sessions.size() == 2);
  CHECK(bob.sessions[0].session == "00000000000000aa");
  CHECK(bob.sessions[1].session == "00000000000000bb");
  CHECK(bob.unanswered == 0);

  auto nobody = report("nobody");
  CHECK_FALSE(nobody.online);
  CHECK(nobody.sessions.empty());

  for (auto& [id, session] : mem->sessions)
    if (session.user == "bob")
      caf::anon_send_exit(session.handle, caf::exit_reason::user_shutdown);
  run();
  auto gone = report("bob");
  CHECK(gone.online);
  CHECK(gone.in_grace);
  CHECK(gone.sessions.empty());
}

TEST_CASE_FIXTURE(fixture, "the store answers whether its database is open") {
  auto open = spawn_store();
  CHECK(ask<bool>(open, status_atom::value));
  auto broken = spawn_store("/proc/parley-admin-test/cannot/parley.db");
  CHECK_FALSE(ask<bool>(broken, status_atom::value));
}
