// The session actor with the real directory, rooms and presence tracker on the deterministic
// scheduler; its connection is a recording sink, and frames come in through the real decoder.

#include "actor_fixture.hpp"

#include "actors/directory.hpp"
#include "actors/presence.hpp"
#include "actors/session.hpp"
#include "actors/supervisor.hpp"
#include "protocol/codec.hpp"

#include <caf/stateful_actor.hpp>

using namespace parley;
using namespace parley::testing;
using namespace std::chrono_literals;

namespace {

struct client {
  session_actor handle;
  std::shared_ptr<recording_sink> sink;
};

struct session_fixture : fixture {
  supervisor_actor sup;
  std::shared_ptr<presence_memory> presence_mem = std::make_shared<presence_memory>(caf::timespan{5s});
  presence_actor tracker;
  session_config cfg;

  ~session_fixture() {
    // Supervised children (rooms) are not in `spawned`: the supervisor stops them.
    caf::anon_send(sup, stop_atom::value);
    run();
  }

  session_fixture() {
    spawn_store();
    sup = spawn(supervisor, supervisor_settings{}, uint64_t{1}, [](const std::string&) {});
    tracker = spawn(presence, presence_mem);
    room_config rcfg;
    rcfg.rooms.capacity = 2;
    spawn(directory, std::make_shared<directory_memory>(), sup, rcfg);
    cfg.rate_per_second = 5;
    cfg.rate_burst = 10;
    cfg.abuse_limit = 5;
    cfg.abuse_window = 10s;
    cfg.max_rooms = 2;
    run();
  }

  client connect(const std::string& name) {
    client c{session_actor{}, std::make_shared<recording_sink>()};
    auth::identity who;
    who.user = name;
    c.handle = spawn(session, frame_sink_ptr{c.sink}, std::optional<auth::identity>{who}, std::make_shared<const session_config>(cfg));
    run();
    return c;
  }

  void send(client& c, const std::string& json) {
    caf::anon_send(c.handle, inbound_atom::value, protocol::decode(json, protocol::codec_limits{}));
    run();
  }

  /// Advances virtual time so the token bucket refills between bursts of commands.
  void pause() { advance(2s); }
};

} // namespace

TEST_CASE_FIXTURE(session_fixture, "a new session greets with welcome, user and session id") {
  auto c = connect("alice");
  auto frames = c.sink->take();
  REQUIRE(frames.size() == 1);
  CHECK(frames[0]["type"] == "welcome");
  CHECK(frames[0]["user"] == "alice");
  auto id = frames[0]["session"].get<std::string>();
  CHECK(id.size() == 16);
  CHECK(id.find_first_not_of("0123456789abcdef") == std::string::npos);
}

TEST_CASE_FIXTURE(session_fixture, "two sessions get different session ids") {
  auto a = connect("alice");
  auto b = connect("alice");
  CHECK(a.sink->take().at(0)["session"] != b.sink->take().at(0)["session"]);
}

TEST_CASE_FIXTURE(session_fixture, "a session without a name gets a guest name") {
  auto c = connect("");
  auto user = c.sink->take().at(0)["user"].get<std::string>();
  CHECK(user.rfind("guest-", 0) == 0);
  CHECK(user.size() == 10);
}

TEST_CASE_FIXTURE(session_fixture, "the session registers its user with the presence tracker") {
  connect("alice");
  CHECK(presence_mem->session_count.count("alice") == 1);
  CHECK(presence_mem->sessions.size() == 1);
}

TEST_CASE_FIXTURE(session_fixture, "join, send and receive through the room, with the ref echoed") {
  auto alice = connect("alice");
  auto bob = connect("bob");
  send(alice, R"({"type":"join","room":"general","ref":"j1"})");
  send(bob, R"({"type":"join","room":"general"})");
  auto joined = alice.sink->take("joined");
  REQUIRE(joined.size() == 1);
  CHECK(joined[0]["ref"] == "j1");
  send(alice, R"({"type":"send","room":"general","text":"hi bob","cid":"c1"})");
  auto got = bob.sink->take("message");
  REQUIRE(got.size() == 1);
  CHECK(got[0]["from"] == "alice");
  CHECK(got[0]["text"] == "hi bob");
  CHECK(alice.sink->take("message").size() == 1);
}

TEST_CASE_FIXTURE(session_fixture, "commands for a room not joined get not_member") {
  auto c = connect("alice");
  c.sink->take();
  for (auto cmd : {R"({"type":"send","room":"x","text":"t","ref":1})", R"({"type":"leave","room":"x"})",
                   R"({"type":"who","room":"x"})", R"({"type":"history","room":"x"})",
                   R"({"type":"typing","room":"x"})"}) {
    send(c, cmd);
    auto errors = c.sink->take("error");
    REQUIRE(errors.size() == 1);
    CHECK(errors[0]["code"] == "not_member");
  }
}

TEST_CASE_FIXTURE(session_fixture, "a decode error becomes an error frame and the session goes on") {
  auto c = connect("alice");
  c.sink->take();
  send(c, R"({"type":"nope","ref":"r9"})");
  auto errors = c.sink->take("error");
  REQUIRE(errors.size() == 1);
  CHECK(errors[0]["code"] == "unknown_type");
  CHECK(errors[0]["ref"] == "r9");
  send(c, R"({"type":"ping","ref":2})");
  auto pongs = c.sink->take("pong");
  REQUIRE(pongs.size() == 1);
  CHECK(pongs[0]["ref"] == 2);
}

TEST_CASE_FIXTURE(session_fixture, "history, who and leave answer with their frames") {
  auto c = connect("alice");
  send(c, R"({"type":"join","room":"general"})");
  send(c, R"({"type":"send","room":"general","text":"one"})");
  send(c, R"({"type":"send","room":"general","text":"two"})");
  c.sink->take();
  send(c, R"({"type":"history","room":"general","limit":1})");
  auto history = c.sink->take("history");
  REQUIRE(history.size() == 1);
  REQUIRE(history[0]["messages"].size() == 1);
  CHECK(history[0]["messages"][0]["text"] == "two");
  CHECK(history[0]["more"] == true);
  send(c, R"({"type":"who","room":"general","ref":"w1"})");
  CHECK(c.sink->take("who").at(0) == nlohmann::json{{"type", "who"}, {"room", "general"},
                                                    {"members", {"alice"}}, {"count", 1},
                                                    {"more", false}, {"ref", "w1"}});
  send(c, R"({"type":"leave","room":"general"})");
  auto left = c.sink->take("left");
  REQUIRE(left.size() == 1);
  CHECK(left[0]["reason"] == "left");
  send(c, R"({"type":"send","room":"general","text":"three"})");
  CHECK(c.sink->take("error").at(0)["code"] == "not_member");
}

TEST_CASE_FIXTURE(session_fixture, "a full room answers room_full") {
  auto a = connect("a");
  auto b = connect("b");
  auto c = connect("c");
  send(a, R"({"type":"join","room":"small"})");
  send(b, R"({"type":"join","room":"small"})");
  c.sink->take();
  send(c, R"({"type":"join","room":"small","ref":"x"})");
  auto errors = c.sink->take("error");
  REQUIRE(errors.size() == 1);
  CHECK(errors[0]["code"] == "room_full");
  CHECK(errors[0]["ref"] == "x");
}

TEST_CASE_FIXTURE(session_fixture, "joining more rooms than allowed answers too_many_rooms") {
  auto c = connect("alice");
  send(c, R"({"type":"join","room":"r1"})");
  send(c, R"({"type":"join","room":"r2"})");
  c.sink->take();
  send(c, R"({"type":"join","room":"r3"})");
  CHECK(c.sink->take("error").at(0)["code"] == "too_many_rooms");
  send(c, R"({"type":"join","room":"r1"})");  // rejoining a joined room is fine
  CHECK(c.sink->take("joined").size() == 1);
}

TEST_CASE_FIXTURE(session_fixture, "frames beyond the token bucket are answered with rate_limited") {
  auto c = connect("alice");
  c.sink->take();
  for (int i = 0; i < 12; ++i)
    send(c, R"({"type":"ping"})");
  CHECK(c.sink->take("pong").size() == 10);
  advance(1s);  // 5 more tokens
  send(c, R"({"type":"ping"})");
  CHECK(c.sink->take("pong").size() == 1);
}

TEST_CASE_FIXTURE(session_fixture, "the session tells its sink about every inbound frame it takes, refused ones too") {
  auto c = connect("alice");
  send(c, R"({"type":"ping"})");
  send(c, "not json");
  for (int i = 0; i < 12; ++i)  // past the token bucket: answered with rate_limited
    send(c, R"({"type":"ping"})");
  // The network layer counts frames until the session takes them; one missed would stall reading.
  CHECK(c.sink->inbound_taken_count() == 14);
}

TEST_CASE_FIXTURE(session_fixture, "errors past the abuse limit close the connection with 4002") {
  auto c = connect("alice");
  for (int i = 0; i < 5; ++i)
    send(c, "not json");
  CHECK(c.sink->close_code() == 0);
  send(c, "not json");
  CHECK(c.sink->close_code() == close_code::abuse);
  c.sink->take();
  send(c, R"({"type":"ping"})");
  CHECK(c.sink->take().empty());
}

TEST_CASE_FIXTURE(session_fixture, "a send while the room restarts gets room_unavailable, and works again after") {
  auto c = connect("alice");
  send(c, R"({"type":"join","room":"general"})");
  auto room = ask<room_lookup>(caf::actor_cast<directory_actor>(sys.registry().get(directory_atom::value)),
                               get_atom::value, std::string{"general"}, false).room;
  caf::anon_send_exit(room, caf::exit_reason::kill);
  run();
  c.sink->take();
  send(c, R"({"type":"send","room":"general","text":"lost?","cid":"k"})");
  CHECK(c.sink->take("error").at(0)["code"] == "room_unavailable");
  advance(1s);  // the supervisor restarts the room; it tells the session where it is
  send(c, R"({"type":"send","room":"general","text":"retry","cid":"k"})");
  auto msgs = c.sink->take("message");
  REQUIRE(msgs.size() == 1);
  CHECK(msgs[0]["text"] == "retry");
}

TEST_CASE_FIXTURE(session_fixture, "crash_room is refused unless fault injection is enabled") {
  auto c = connect("alice");
  send(c, R"({"type":"join","room":"general"})");
  c.sink->take();
  send(c, R"({"type":"crash_room","room":"general"})");
  CHECK(c.sink->take("error").at(0)["code"] == "unknown_type");
}

TEST_CASE_FIXTURE(session_fixture, "who passes after and limit to the room and the room's page comes back") {
  auto a = connect("alice");
  auto b = connect("bob");
  send(a, R"({"type":"join","room":"general"})");
  send(b, R"({"type":"join","room":"general"})");
  a.sink->take();
  send(a, R"({"type":"who","room":"general","limit":1,"ref":1})");
  auto first = a.sink->take("who").at(0);
  CHECK(first["members"] == nlohmann::json::array({"alice"}));
  CHECK(first["count"] == 2);
  CHECK(first["more"] == true);
  send(a, R"({"type":"who","room":"general","after":"alice","limit":1,"ref":2})");
  auto second = a.sink->take("who").at(0);
  CHECK(second["members"] == nlohmann::json::array({"bob"}));
  CHECK(second["more"] == false);
  CHECK(second["ref"] == 2);
}

TEST_CASE_FIXTURE(session_fixture, "status tells whether users are online on the server and with how many sessions") {
  auto a = connect("alice");
  auto b1 = connect("bob");
  auto b2 = connect("bob");
  a.sink->take();
  send(a, R"({"type":"status","users":["bob","carol","alice"],"ref":"s1"})");
  auto frames = a.sink->take();
  REQUIRE(frames.size() == 1);
  CHECK(frames[0] == nlohmann::json::parse(
                       R"({"type":"status","users":[{"user":"bob","online":true,"sessions":2},)"
                       R"({"user":"carol","online":false,"sessions":0},{"user":"alice","online":true,"sessions":1}],"ref":"s1"})"));
}

TEST_CASE_FIXTURE(session_fixture, "status shows a user online with no sessions within the grace and offline after it") {
  auto a = connect("alice");
  auto b = connect("bob");
  caf::anon_send(b.handle, disconnect_atom::value);
  run();
  a.sink->take();
  send(a, R"({"type":"status","users":["bob"]})");
  CHECK(a.sink->take("status").at(0)["users"][0] == nlohmann::json{{"user", "bob"}, {"online", true}, {"sessions", 0}});
  advance(5s);
  send(a, R"({"type":"status","users":["bob"]})");
  CHECK(a.sink->take("status").at(0)["users"][0] == nlohmann::json{{"user", "bob"}, {"online", false}, {"sessions", 0}});
}

TEST_CASE_FIXTURE(session_fixture, "a bad status command is answered with its decode error") {
  auto a = connect("alice");
  a.sink->take();
  send(a, R"({"type":"status","users":[],"ref":3})");
  auto error = a.sink->take("error").at(0);
  CHECK(error["code"] == "bad_field");
  CHECK(error["ref"] == 3);
  send(a, R"({"type":"status","users":["no way"]})");
  CHECK(a.sink->take("error").at(0)["code"] == "invalid_name");
}

TEST_CASE_FIXTURE(session_fixture, "status while the presence tracker is down answers room_unavailable, which is no abuse") {
  auto a = connect("alice");
  caf::anon_send_exit(tracker, caf::exit_reason::kill);
  run();
  a.sink->take();
  send(a, R"({"type":"status","users":["bob"],"ref":"s"})");
  auto error = a.sink->take("error").at(0);
  CHECK(error["code"] == "room_unavailable");
  CHECK(error["ref"] == "s");
  CHECK(error["message"].get<std::string>().find("presence") != std::string::npos);
}

namespace {

/// The state of a running session actor (the test coordinator runs nothing concurrently).
session_state& state_of(const session_actor& handle) {
  auto* ptr = caf::actor_cast<caf::abstract_actor*>(handle);
  return dynamic_cast<session_actor::stateful_base<session_state>&>(*ptr).state;
}

/// Delivers a join and runs only until it went out to the room: the room has it, and the session
/// has no answer yet. This is when the client may already hold "joined", which the room writes
/// before it answers the session.
void join_until_sent(session_fixture& f, client& c, const std::string& room) {
  caf::anon_send(c.handle, inbound_atom::value,
                 protocol::decode(R"({"type":"join","room":")" + room + R"("})", protocol::codec_limits{}));
  auto& joining = state_of(c.handle).joining;
  for (int i = 0; i < 100 && !(joining.count(room) && joining.at(room).handle); ++i)
    f.sched.run_once();
  REQUIRE(joining.count(room) == 1);
  REQUIRE(joining.at(room).handle);
}

} // namespace

TEST_CASE_FIXTURE(session_fixture, "a send right behind joined is accepted while the join's answer is still on its way") {
  auto alice = connect("alice");
  auto bob = connect("bob");
  send(bob, R"({"type":"join","room":"general"})");
  join_until_sent(*this, alice, "general");
  send(alice, R"({"type":"send","room":"general","text":"right away","cid":"c1"})");
  CHECK(alice.sink->take("error").empty());
  auto got = bob.sink->take("message");
  REQUIRE(got.size() == 1);
  CHECK(got[0]["text"] == "right away");
  CHECK(state_of(alice.handle).rooms.count("general") == 1);
}

TEST_CASE_FIXTURE(session_fixture, "a leave right behind joined ends the membership the late answer would have made") {
  auto alice = connect("alice");
  join_until_sent(*this, alice, "general");
  send(alice, R"({"type":"leave","room":"general","ref":"l1"})");
  CHECK(alice.sink->take("left").size() == 1);
  CHECK(state_of(alice.handle).rooms.count("general") == 0);
  CHECK(state_of(alice.handle).joining.empty());
  pause();
  send(alice, R"({"type":"send","room":"general","text":"gone"})");
  auto errors = alice.sink->take("error");
  REQUIRE(errors.size() == 1);
  CHECK(errors[0]["code"] == "not_member");
}

TEST_CASE_FIXTURE(session_fixture, "joins that create rooms past the per-connection rate get rate_limited, joins of existing rooms cost nothing") {
  cfg.new_rooms_burst = 2;
  cfg.new_rooms_per_second = 1.0 / 60;
  auto bob = connect("bob");
  send(bob, R"({"type":"join","room":"bobs"})");
  auto alice = connect("alice");
  alice.sink->take();
  for (auto room : {"a", "b"}) {
    send(alice, std::string{R"({"type":"join","room":")"} + room + R"("})");
    send(alice, std::string{R"({"type":"leave","room":")"} + room + R"("})");
  }
  CHECK(alice.sink->take("joined").size() == 2);
  send(alice, R"({"type":"join","room":"c","ref":"j3"})");
  auto errors = alice.sink->take("error");
  REQUIRE(errors.size() == 1);
  CHECK(errors[0]["code"] == "rate_limited");
  CHECK(errors[0]["ref"] == "j3");
  // Rooms that exist are joined all the same: one another session made, one alice made before.
  pause();
  send(alice, R"({"type":"join","room":"bobs"})");
  send(alice, R"({"type":"join","room":"a"})");
  CHECK(alice.sink->take("joined").size() == 2);
  send(alice, R"({"type":"leave","room":"a"})");
  // A minute refills one token: one new room, not two.
  advance(60s);
  send(alice, R"({"type":"join","room":"c"})");
  CHECK(alice.sink->take("joined").size() == 1);
  send(alice, R"({"type":"leave","room":"c"})");
  send(alice, R"({"type":"join","room":"d"})");
  CHECK(alice.sink->take("error").at(0)["code"] == "rate_limited");
  CHECK(alice.sink->close_code() == 0);
}

TEST_CASE_FIXTURE(session_fixture, "a join that would create a room past max_rooms gets room_limit and the connection stays usable") {
  spawn_store(":memory:", 1);  // replaces the registered store: one room at most
  cfg.new_rooms_burst = 1;
  auto bob = connect("bob");
  send(bob, R"({"type":"join","room":"general"})");
  auto alice = connect("alice");
  alice.sink->take();
  send(alice, R"({"type":"join","room":"other","ref":7})");
  auto errors = alice.sink->take("error");
  REQUIRE(errors.size() == 1);
  CHECK(errors[0]["code"] == "room_limit");
  CHECK(errors[0]["ref"] == 7);
  send(alice, R"({"type":"join","room":"general"})");
  CHECK(alice.sink->take("joined").size() == 1);
  send(alice, R"({"type":"send","room":"general","text":"still here"})");
  CHECK(bob.sink->take("message").at(0)["text"] == "still here");
  // The refused creation cost alice no token: with room to spare, her one token makes a room.
  spawn_store(":memory:", 10);
  send(alice, R"({"type":"join","room":"other"})");
  CHECK(alice.sink->take("joined").size() == 1);
}
