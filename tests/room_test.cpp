// The room actor on the deterministic scheduler, with fake sessions whose sinks record deliveries.

#include "actor_fixture.hpp"

#include "actors/errors.hpp"
#include "actors/room.hpp"

#include <caf/stateful_actor.hpp>

using namespace parley;
using namespace parley::testing;
using namespace std::chrono_literals;

namespace {


struct member {
  caf::actor session;
  std::shared_ptr<recording_sink> sink;
  std::shared_ptr<session_log> log;
};

struct room_fixture : fixture {
  std::shared_ptr<room_memory> mem = std::make_shared<room_memory>("general", 7);
  room_config cfg;
  room_actor room_handle;
  store_actor store_handle;

  room_fixture() {
    cfg.rooms.capacity = 3;
    cfg.rooms.history_size = 5;
    cfg.rooms.history_on_join = 3;
    cfg.rooms.max_replay = 6;
    cfg.grace = 5s;
    cfg.rooms.typing_interval = 2s;
    store_handle = spawn_store();
    room_handle = spawn(room, mem, cfg);
    run();
  }

  member connect() {
    member m{nullptr, std::make_shared<recording_sink>(), std::make_shared<session_log>()};
    m.session = caf::actor_cast<caf::actor>(spawn(fake_session, m.log));
    run();
    return m;
  }

  member join(const std::string& user, std::optional<uint64_t> since = std::nullopt,
              std::optional<uint64_t> epoch = std::nullopt) {
    auto m = connect();
    join(m, user, since, epoch);
    return m;
  }

  join_result join(member& m, const std::string& user, std::optional<uint64_t> since = std::nullopt,
                   std::optional<uint64_t> epoch = std::nullopt) {
    return ask<join_result>(room_handle, join_atom::value, m.session,
                            join_request{user, m.sink, since, epoch, std::nullopt});
  }

  uint64_t post(member& m, const std::string& text, const std::string& cid = "") {
    return ask<uint64_t>(room_handle, post_atom::value, m.session, text, cid);
  }

  void disconnect(member& m) {
    caf::anon_send_exit(m.session, caf::exit_reason::user_shutdown);
    run();
  }
};

} // namespace

TEST_CASE_FIXTURE(room_fixture, "a join answers joined with epoch, last id, members and history") {
  auto alice = join("alice");
  post(alice, "one");
  auto bob = join("bob");
  auto frames = bob.sink->take("joined");
  REQUIRE(frames.size() == 1);
  auto& joined = frames[0];
  CHECK(joined["room"] == "general");
  CHECK(joined["epoch"] == 7);
  CHECK(joined["last_id"] == 1);
  CHECK(joined["members"] == nlohmann::json::array({"alice", "bob"}));
  REQUIRE(joined["history"].size() == 1);
  CHECK(joined["history"][0]["text"] == "one");
  CHECK_FALSE(joined.contains("recovered"));
}

TEST_CASE_FIXTURE(room_fixture, "messages get monotonic ids and reach every member in order, sender included") {
  auto alice = join("alice");
  auto bob = join("bob");
  alice.sink->take();
  bob.sink->take();
  CHECK(post(alice, "a") == 1);
  CHECK(post(bob, "b") == 2);
  CHECK(post(alice, "c") == 3);
  for (auto* m : {&alice, &bob}) {
    auto msgs = m->sink->take("message");
    REQUIRE(msgs.size() == 3);
    CHECK(msgs[0]["id"] == 1);
    CHECK(msgs[0]["from"] == "alice");
    CHECK(msgs[1]["id"] == 2);
    CHECK(msgs[1]["text"] == "b");
    CHECK(msgs[2]["id"] == 3);
  }
}

TEST_CASE_FIXTURE(room_fixture, "a broadcast is encoded once and shared by every member") {
  struct capturing_sink : frame_sink {
    std::vector<const std::string*> seen;
    bool push(const frame& f, frame_priority) override {
      seen.push_back(f.get());
      return true;
    }
    void close(uint16_t, std::string_view) override {}
  };
  auto a = std::make_shared<capturing_sink>();
  auto b = std::make_shared<capturing_sink>();
  auto sa = connect();
  auto sb = connect();
  ask<join_result>(room_handle, join_atom::value, sa.session, join_request{"alice", a, {}, {}, {}});
  ask<join_result>(room_handle, join_atom::value, sb.session, join_request{"bob", b, {}, {}, {}});
  a->seen.clear();
  b->seen.clear();
  ask<uint64_t>(room_handle, post_atom::value, sa.session, std::string{"hi"}, std::string{});
  REQUIRE(a->seen.size() == 1);
  REQUIRE(b->seen.size() == 1);
  CHECK(a->seen[0] == b->seen[0]);
}

TEST_CASE_FIXTURE(room_fixture, "a join beyond capacity is refused with room_full") {
  join("a");
  join("b");
  join("c");
  auto d = connect();
  auto err = ask_error<join_result>(room_handle, join_atom::value, d.session,
                                    join_request{"d", d.sink, {}, {}, {}});
  CHECK(to_protocol_error(err) == protocol::error_code::room_full);
  CHECK(d.sink->take().empty());
}

TEST_CASE_FIXTURE(room_fixture, "memory keeps the newest history_size messages and history pages reach into the store") {
  auto alice = join("alice");
  for (int i = 1; i <= 8; ++i)
    post(alice, "m" + std::to_string(i));
  REQUIRE(mem->history.size() == 5);
  CHECK(mem->history.front().id == 4);
  auto page = ask<history_page>(room_handle, history_atom::value, uint64_t{0}, uint32_t{100});
  REQUIRE(page.messages.size() == 8);
  CHECK(page.messages.front().id == 1);
  CHECK(page.messages.front().text == "m1");
  CHECK(page.messages.back().id == 8);
  CHECK_FALSE(page.more);
  auto older = ask<history_page>(room_handle, history_atom::value, uint64_t{4}, uint32_t{2});
  REQUIRE(older.messages.size() == 2);
  CHECK(older.messages[0].id == 2);
  CHECK(older.messages[1].id == 3);
  CHECK(older.more);
}

TEST_CASE_FIXTURE(room_fixture, "history pages backwards from before, oldest first, and says when there is more") {
  auto alice = join("alice");
  for (int i = 1; i <= 5; ++i)
    post(alice, "m" + std::to_string(i));
  auto page = ask<history_page>(room_handle, history_atom::value, uint64_t{5}, uint32_t{2});
  REQUIRE(page.messages.size() == 2);
  CHECK(page.messages[0].id == 3);
  CHECK(page.messages[1].id == 4);
  CHECK(page.more);
  auto first = ask<history_page>(room_handle, history_atom::value, uint64_t{2}, uint32_t{2});
  REQUIRE(first.messages.size() == 1);
  CHECK(first.messages[0].id == 1);
  CHECK_FALSE(first.more);
}

TEST_CASE_FIXTURE(room_fixture, "a join with since and the same epoch replays exactly the missed messages") {
  auto alice = join("alice");
  for (int i = 1; i <= 4; ++i)
    post(alice, "m" + std::to_string(i));
  auto bob = join("bob", uint64_t{2}, uint64_t{7});
  auto joined = bob.sink->take("joined").at(0);
  CHECK(joined["recovered"] == true);
  REQUIRE(joined["history"].size() == 2);
  CHECK(joined["history"][0]["id"] == 3);
  CHECK(joined["history"][1]["id"] == 4);
}

TEST_CASE_FIXTURE(room_fixture, "a join with since and nothing missed recovers with an empty replay") {
  auto alice = join("alice");
  post(alice, "m1");
  auto bob = join("bob", uint64_t{1}, uint64_t{7});
  auto joined = bob.sink->take("joined").at(0);
  CHECK(joined["recovered"] == true);
  CHECK(joined["history"].empty());
}

TEST_CASE_FIXTURE(room_fixture, "a join with another epoch is not recovered and gets the latest history") {
  auto alice = join("alice");
  for (int i = 1; i <= 4; ++i)
    post(alice, "m" + std::to_string(i));
  auto bob = join("bob", uint64_t{2}, uint64_t{99});
  auto joined = bob.sink->take("joined").at(0);
  CHECK(joined["recovered"] == false);
  REQUIRE(joined["history"].size() == 3);
  CHECK(joined["history"][0]["id"] == 2);
  CHECK(joined["history"][2]["id"] == 4);
}

TEST_CASE_FIXTURE(room_fixture, "a join with since older than memory recovers the gap from the store, up to max_replay") {
  auto alice = join("alice");
  for (int i = 1; i <= 8; ++i)
    post(alice, "m" + std::to_string(i));  // memory holds 4-8
  REQUIRE(mem->evicted_up_to == 3);
  // Missed 3-8: 3 comes from the store, 4-8 from memory, each once and in order.
  auto bob = join("bob", uint64_t{2}, uint64_t{7});
  auto joined = bob.sink->take("joined").at(0);
  CHECK(joined["recovered"] == true);
  REQUIRE(joined["history"].size() == 6);
  for (std::size_t i = 0; i < 6; ++i)
    CHECK(joined["history"][i]["id"] == i + 3);
  CHECK(joined["history"][0]["text"] == "m3");
  // Bob is a member now and gets what comes next.
  post(alice, "m9");
  CHECK(bob.sink->take("message").size() == 1);
  // Missed 2-9, 8 > max_replay (6): not recovered, the latest history instead.
  auto carol = join("carol", uint64_t{1}, uint64_t{7});
  auto late = carol.sink->take("joined").at(0);
  CHECK(late["recovered"] == false);
  CHECK(late["history"].size() == 3);
}

TEST_CASE_FIXTURE(room_fixture, "a retry with the same cid is not posted twice and the sender gets the original") {
  auto alice = join("alice");
  auto bob = join("bob");
  alice.sink->take();
  bob.sink->take();
  auto first = post(alice, "hello", "c-1");
  auto again = post(alice, "hello", "c-1");
  CHECK(first == again);
  auto to_alice = alice.sink->take("message");
  REQUIRE(to_alice.size() == 2);
  CHECK(to_alice[1]["id"] == first);
  CHECK(to_alice[1]["cid"] == "c-1");
  CHECK(bob.sink->take("message").size() == 1);
  // The same cid from another user is a different message.
  CHECK(post(bob, "hello", "c-1") != first);
}

TEST_CASE_FIXTURE(room_fixture, "a post from a non-member is refused with not_member") {
  join("alice");
  auto eve = connect();
  auto err = ask_error<uint64_t>(room_handle, post_atom::value, eve.session, std::string{"x"},
                                 std::string{});
  CHECK(to_protocol_error(err) == protocol::error_code::not_member);
}

TEST_CASE_FIXTURE(room_fixture, "members see presence online when someone joins and offline when they leave") {
  auto alice = join("alice");
  alice.sink->take();
  auto bob = join("bob");
  auto online = alice.sink->take("presence");
  REQUIRE(online.size() == 1);
  CHECK(online[0]["user"] == "bob");
  CHECK(online[0]["state"] == "online");
  CHECK(bob.sink->take("presence").empty());
  ask<ok_atom>(room_handle, leave_atom::value, bob.session);
  auto offline = alice.sink->take("presence");
  REQUIRE(offline.size() == 1);
  CHECK(offline[0]["state"] == "offline");
  CHECK(ask<std::vector<std::string>>(room_handle, who_atom::value) == std::vector<std::string>{"alice"});
}

TEST_CASE_FIXTURE(room_fixture, "a user with two connections stays online until the last one leaves") {
  auto alice = join("alice");
  auto bob1 = join("bob");
  auto bob2 = join("bob");
  alice.sink->take();
  ask<ok_atom>(room_handle, leave_atom::value, bob1.session);
  CHECK(alice.sink->take("presence").empty());
  ask<ok_atom>(room_handle, leave_atom::value, bob2.session);
  CHECK(alice.sink->take("presence").size() == 1);
}

TEST_CASE_FIXTURE(room_fixture, "a dead session is removed and shown offline only after the grace period") {
  auto alice = join("alice");
  auto bob = join("bob");
  alice.sink->take();
  disconnect(bob);
  CHECK(alice.sink->take("presence").empty());
  CHECK(ask<std::vector<std::string>>(room_handle, who_atom::value).size() == 2);
  advance(4s);
  CHECK(alice.sink->take("presence").empty());
  advance(2s);
  auto offline = alice.sink->take("presence");
  REQUIRE(offline.size() == 1);
  CHECK(offline[0]["user"] == "bob");
  CHECK(offline[0]["state"] == "offline");
  CHECK(ask<std::vector<std::string>>(room_handle, who_atom::value) == std::vector<std::string>{"alice"});
}

TEST_CASE_FIXTURE(room_fixture, "a reconnect within the grace period shows neither offline nor online") {
  auto alice = join("alice");
  auto bob = join("bob");
  alice.sink->take();
  disconnect(bob);
  advance(2s);
  auto bob_again = join("bob");
  advance(10s);
  CHECK(alice.sink->take("presence").empty());
  // A message still reaches the new connection, and only once.
  post(alice, "welcome back");
  CHECK(bob_again.sink->take("message").size() == 1);
}

TEST_CASE_FIXTURE(room_fixture, "typing is relayed to the others, not stored, and coalesced per user") {
  auto alice = join("alice");
  auto bob = join("bob");
  alice.sink->take();
  bob.sink->take();
  caf::anon_send(room_handle, typing_atom::value, alice.session);
  caf::anon_send(room_handle, typing_atom::value, alice.session);
  run();
  CHECK(alice.sink->take("typing").empty());
  auto relayed = bob.sink->take();
  REQUIRE(relayed.size() == 1);
  CHECK(relayed[0]["type"] == "typing");
  CHECK(relayed[0]["user"] == "alice");
  CHECK(bob.sink->priorities().empty());
  advance(3s);
  caf::anon_send(room_handle, typing_atom::value, alice.session);
  run();
  CHECK(bob.sink->take("typing").size() == 1);
  CHECK(ask<history_page>(room_handle, history_atom::value, uint64_t{0}, uint32_t{10}).messages.empty());
}

TEST_CASE_FIXTURE(room_fixture, "typing and presence frames are droppable, messages essential") {
  auto alice = join("alice");
  alice.sink->take();
  auto bob = join("bob");
  post(bob, "x");
  auto priorities = alice.sink->priorities();
  auto frames = alice.sink->take();
  REQUIRE(frames.size() == 2);
  CHECK(frames[0]["type"] == "presence");
  CHECK(priorities[0] == frame_priority::droppable);
  CHECK(frames[1]["type"] == "message");
  CHECK(priorities[1] == frame_priority::essential);
}

TEST_CASE_FIXTURE(room_fixture, "a restarted room keeps members, history and ids and tells members its new handle") {
  auto alice = join("alice");
  auto bob = join("bob");
  post(alice, "before");
  caf::anon_send_exit(room_handle, caf::exit_reason::kill);
  run();
  // What the supervisor does: spawn a new incarnation on the same memory.
  auto restarted = spawn(room, mem, cfg);
  run();
  REQUIRE(alice.log->moved.size() == 1);
  CHECK(alice.log->moved[0] == "general");
  CHECK(alice.log->moved_to[0] == restarted);
  room_handle = restarted;
  alice.sink->take();
  bob.sink->take();
  CHECK(post(bob, "after") == 2);
  CHECK(alice.sink->take("message").size() == 1);
  auto page = ask<history_page>(room_handle, history_atom::value, uint64_t{0}, uint32_t{10});
  REQUIRE(page.messages.size() == 2);
  CHECK(page.messages[0].text == "before");
  // The restarted room still monitors its members.
  disconnect(bob);
  advance(6s);
  CHECK(alice.sink->take("presence").size() == 1);
}

TEST_CASE_FIXTURE(room_fixture, "a restarted room delivers what the store committed for its predecessor") {
  auto alice = join("alice");
  post(alice, "seen");
  caf::anon_send_exit(room_handle, caf::exit_reason::kill);
  run();
  // The predecessor's message was committed, but it died before it could broadcast it.
  ask<append_result>(store_handle, append_atom::value, uint64_t{7},
                     protocol::chat_message{"general", 0, "alice", "lost answer", 5, "c-9"});
  alice.sink->take();
  room_handle = spawn(room, mem, cfg);
  run();
  auto delivered = alice.sink->take("message");
  REQUIRE(delivered.size() == 1);
  CHECK(delivered[0]["id"] == 2);
  CHECK(delivered[0]["text"] == "lost answer");
  // The sender's retry with the same cid finds it instead of posting it twice.
  CHECK(post(alice, "lost answer", "c-9") == 2);
  CHECK(post(alice, "next") == 3);
}

TEST_CASE_FIXTURE(room_fixture, "a post is refused with store_unavailable while no store runs, and nothing is broadcast") {
  auto alice = join("alice");
  auto bob = join("bob");
  caf::anon_send_exit(store_handle, caf::exit_reason::kill);
  run();
  bob.sink->take();
  auto err = ask_error<uint64_t>(room_handle, post_atom::value, alice.session, std::string{"x"},
                                 std::string{"c-1"});
  CHECK(to_protocol_error(err) == protocol::error_code::store_unavailable);
  CHECK(bob.sink->take("message").empty());
  // A new store incarnation takes over; the retry goes through.
  store_handle = spawn_store();
  CHECK(post(alice, "x", "c-1") == 1);
  CHECK(bob.sink->take("message").size() == 1);
}
