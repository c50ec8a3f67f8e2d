// The room directory with a real supervisor on virtual time: creation on demand, restarts, retiring.

#include "actor_fixture.hpp"

#include "actors/directory.hpp"
#include "actors/errors.hpp"
#include "actors/supervisor.hpp"

#include <caf/stateful_actor.hpp>

using namespace parley;
using namespace parley::testing;
using namespace std::chrono_literals;

namespace {

struct directory_fixture : fixture {
  supervisor_actor sup;
  directory_actor dir;
  std::shared_ptr<directory_memory> mem = std::make_shared<directory_memory>();

  ~directory_fixture() {
    // Supervised children (rooms) are not in `spawned`: the supervisor stops them.
    caf::anon_send(sup, stop_atom::value);
    run();
  }

  directory_fixture() {
    supervisor_settings scfg;
    scfg.backoff_min = 100ms;
    scfg.backoff_max = 1s;
    spawn_store();
    sup = spawn(supervisor, scfg, uint64_t{1}, [](const std::string&) {});
    room_config rcfg;
    rcfg.rooms.idle_retire = 60s;
    rcfg.presence.grace = 5s;
    dir = spawn(directory, mem, sup, rcfg);
    run();
  }

  room_actor lookup(const std::string& name) {
    return ask<room_lookup>(dir, get_atom::value, name, true).room;
  }

  std::pair<caf::actor, std::shared_ptr<recording_sink>> join(const room_actor& room) {
    auto sink = std::make_shared<recording_sink>();
    auto s = caf::actor_cast<caf::actor>(spawn(fake_session, std::make_shared<session_log>()));
    ask<join_result>(room, join_atom::value, s, join_request{"alice", sink, {}, {}, {}});
    return {s, sink};
  }
};

} // namespace

TEST_CASE_FIXTURE(directory_fixture, "a room is created on first lookup and found again afterwards") {
  auto a = lookup("general");
  auto b = lookup("general");
  auto c = lookup("random");
  CHECK(a);
  CHECK(a == b);
  CHECK(a != c);
}

TEST_CASE_FIXTURE(directory_fixture, "concurrent lookups of a new room create it once") {
  auto h1 = self->request(dir, caf::infinite, get_atom::value, std::string{"x"}, true);
  auto h2 = self->request(dir, caf::infinite, get_atom::value, std::string{"x"}, true);
  run();
  room_lookup r1, r2;
  h1.receive([&](room_lookup& r) { r1 = r; }, [](caf::error&) { FAIL("lookup failed"); });
  h2.receive([&](room_lookup& r) { r2 = r; }, [](caf::error&) { FAIL("lookup failed"); });
  CHECK(r1.room == r2.room);
  // Only the lookup that made the room is told it did: only its session pays for it.
  CHECK(r1.created);
  CHECK_FALSE(r2.created);
  CHECK(mem->rooms.size() == 1);
}

TEST_CASE_FIXTURE(directory_fixture, "a crashed room is restarted by the supervisor and the directory hands out the new one") {
  auto old_room = lookup("general");
  auto [session, sink] = join(old_room);
  caf::anon_send_exit(old_room, caf::exit_reason::kill);
  run();
  advance(1s);
  auto new_room = lookup("general");
  CHECK(new_room);
  CHECK(new_room != old_room);
  // The member is still a member of the restarted room.
  sink->take();
  ask<ok_atom>(new_room, who_atom::value, session, who_request{});
  CHECK(sink->take("who").at(0)["members"] == nlohmann::json::array({"alice"}));
}

TEST_CASE_FIXTURE(directory_fixture, "an empty room is retired after the idle timeout and a later lookup starts afresh") {
  auto room = lookup("general");
  auto first_epoch = join(room);  // a member arrives and leaves again
  ask<ok_atom>(room, leave_atom::value, first_epoch.first);
  advance(30s);
  CHECK(lookup("general") == room);
  advance(31s);
  CHECK(mem->rooms.empty());
  auto fresh = lookup("general");
  CHECK(fresh != room);
}

TEST_CASE_FIXTURE(directory_fixture, "a room with members is never retired") {
  auto room = lookup("general");
  join(room);
  advance(120s);
  CHECK(lookup("general") == room);
}

TEST_CASE_FIXTURE(directory_fixture, "a restarted directory adopts its memory") {
  auto room = lookup("general");
  caf::anon_send_exit(dir, caf::exit_reason::kill);
  run();
  room_config rcfg;
  dir = spawn(directory, mem, sup, rcfg);
  run();
  CHECK(lookup("general") == room);
  // Rooms and sessions find the new incarnation through the registry.
  CHECK(sys.registry().get(directory_atom::value) == caf::actor_cast<caf::strong_actor_ptr>(dir));
}

TEST_CASE_FIXTURE(directory_fixture, "a retired room comes back from the store with its epoch, ids and history") {
  auto room = lookup("general");
  auto [session, sink] = join(room);
  auto epoch = sink->take("joined").at(0)["epoch"].get<uint64_t>();
  ask<uint64_t>(room, post_atom::value, session, std::string{"kept"}, std::string{});
  ask<ok_atom>(room, leave_atom::value, session);
  advance(61s);
  REQUIRE(mem->rooms.empty());
  auto fresh = lookup("general");
  CHECK(fresh != room);
  auto [again, again_sink] = join(fresh);
  auto joined = again_sink->take("joined").at(0);
  CHECK(joined["epoch"] == epoch);
  CHECK(joined["last_id"] == 1);
  REQUIRE(joined["history"].size() == 1);
  CHECK(joined["history"][0]["text"] == "kept");
  CHECK(ask<uint64_t>(fresh, post_atom::value, again, std::string{"next"}, std::string{}) == 2);
}

TEST_CASE_FIXTURE(directory_fixture, "a new room beyond max_rooms is refused with room_limit while rooms that exist are still found") {
  spawn_store(":memory:", 2);  // replaces the registered store
  auto a = lookup("a");
  lookup("b");
  auto err = ask_error<room_lookup>(dir, get_atom::value, std::string{"c"}, true);
  CHECK(to_protocol_error(err) == protocol::error_code::room_limit);
  CHECK(mem->rooms.count("c") == 0);
  CHECK(lookup("a") == a);
}

TEST_CASE_FIXTURE(directory_fixture, "a room retired without a message frees its place under max_rooms, a stored one does not") {
  spawn_store(":memory:", 2);
  auto a = lookup("a");
  auto [session, sink] = join(a);
  ask<uint64_t>(a, post_atom::value, session, std::string{"kept"}, std::string{});
  ask<ok_atom>(a, leave_atom::value, session);
  lookup("b");
  CHECK(to_protocol_error(ask_error<room_lookup>(dir, get_atom::value, std::string{"c"}, true))
        == protocol::error_code::room_limit);
  advance(61s);  // both rooms are empty and retire
  REQUIRE(mem->rooms.empty());
  CHECK(lookup("c"));  // b's place
  CHECK(to_protocol_error(ask_error<room_lookup>(dir, get_atom::value, std::string{"d"}, true))
        == protocol::error_code::room_limit);  // a is stored: it still counts
  CHECK(lookup("a"));
}

TEST_CASE_FIXTURE(directory_fixture, "a lookup that may not create is refused with rate_limited for a new room only") {
  auto a = lookup("a");
  auto err = ask_error<room_lookup>(dir, get_atom::value, std::string{"new"}, false);
  CHECK(to_protocol_error(err) == protocol::error_code::rate_limited);
  CHECK(mem->rooms.count("new") == 0);
  auto found = ask<room_lookup>(dir, get_atom::value, std::string{"a"}, false);
  CHECK(found.room == a);
  CHECK_FALSE(found.created);
  CHECK(ask<room_lookup>(dir, get_atom::value, std::string{"new"}, true).created);
}
