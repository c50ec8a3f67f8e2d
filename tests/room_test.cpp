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

using json = nlohmann::json;

constexpr caf::timespan interval = 100ms;
constexpr caf::timespan count_interval = 1s;

struct room_fixture : fixture {
  room_config cfg;
  std::shared_ptr<room_memory> mem;
  room_actor room_handle;
  store_actor store_handle;

  room_fixture() {
    cfg.rooms.capacity = 3;
    cfg.rooms.history_size = 5;
    cfg.rooms.history_on_join = 3;
    cfg.rooms.max_replay = 6;
    cfg.rooms.typing_interval = 2s;
    cfg.presence.grace = 5s;
    cfg.presence.diff_interval = interval;
    cfg.presence.count_interval = count_interval;
    cfg.presence.page_size = 100;
    cfg.presence.user_limit = 1000;
    store_handle = spawn_store();
    mem = std::make_shared<room_memory>("general", 7, cfg.presence.grace);
    room_handle = spawn(room, mem, cfg);
    run();
  }

  /// Replaces the room by a fresh one (new memory) with settings changed by `change`.
  template <class F>
  void reconfigure(F change) {
    change(cfg);
    caf::anon_send_exit(room_handle, caf::exit_reason::kill);
    run();
    mem = std::make_shared<room_memory>("general", 7, cfg.presence.grace);
    room_handle = spawn(room, mem, cfg);
    run();
  }

  /// Lets one presence interval pass, so pending changes go out.
  void flush() { advance(interval); }

  /// Lets one counts-mode interval pass.
  void flush_counts() { advance(count_interval); }

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

  void leave(member& m) { ask<ok_atom>(room_handle, leave_atom::value, m.session); }

  void disconnect(member& m) {
    caf::anon_send_exit(m.session, caf::exit_reason::user_shutdown);
    run();
  }

  /// Asks for a page of present users as `m` and returns the "who" frame the room wrote to its sink.
  json who(member& m, const std::string& after = "", uint32_t limit = 0) {
    m.sink->take();
    ask<ok_atom>(room_handle, who_atom::value, m.session, who_request{after, limit, R"("w")"});
    auto frames = m.sink->take("who");
    REQUIRE(frames.size() == 1);
    return frames[0];
  }
};

/// The presence frames in `frames`, in order.
std::vector<json> presence_frames(std::vector<json> frames) {
  std::vector<json> out;
  for (auto& f : frames)
    if (f["type"] == "presence_diff" || f["type"] == "presence_state")
      out.push_back(std::move(f));
  return out;
}

json names(std::initializer_list<const char*> list) {
  json out = json::array();
  for (auto n : list)
    out.push_back(n);
  return out;
}

} // namespace

TEST_CASE_FIXTURE(room_fixture, "a join answers joined with epoch, last id, count, the first page of members and history") {
  auto alice = join("alice");
  post(alice, "one");
  auto bob = join("bob");
  auto frames = bob.sink->take("joined");
  REQUIRE(frames.size() == 1);
  auto& joined = frames[0];
  CHECK(joined["room"] == "general");
  CHECK(joined["epoch"] == 7);
  CHECK(joined["last_id"] == 1);
  CHECK(joined["count"] == 2);
  CHECK(joined["presence"] == "users");
  CHECK(joined["members"] == names({"alice", "bob"}));
  REQUIRE(joined["history"].size() == 1);
  CHECK(joined["history"][0]["text"] == "one");
  CHECK_FALSE(joined.contains("recovered"));
}

TEST_CASE_FIXTURE(room_fixture, "a held message keeps the very buffer it was broadcast as, and joined splices it in") {
  auto alice = join("alice");
  alice.sink->take();
  post(alice, "kept");
  auto sent = alice.sink->buffers();
  REQUIRE(sent.size() == 1);
  REQUIRE(mem->history.size() == 1);
  CHECK(mem->history.back().encoded.get() == sent[0].get());
  auto bob = join("bob");
  auto joined = bob.sink->take("joined").at(0);
  CHECK(joined["history"][0] == json::parse(*sent[0]));
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
  CHECK(mem->history.front().msg.id == 4);
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

// -- presence ---------------------------------------------------------------------------------------

TEST_CASE_FIXTURE(room_fixture, "joins and leaves within one interval leave as one presence_diff after the interval, nothing before") {
  auto alice = join("alice");
  flush();
  alice.sink->take();
  auto bob = join("bob");
  auto carol = join("carol");
  leave(bob);
  advance(interval - 1ms);
  CHECK(presence_frames(alice.sink->take()).empty());
  advance(1ms);
  auto diffs = alice.sink->take("presence_diff");
  REQUIRE(diffs.size() == 1);
  CHECK(diffs[0] == json{{"type", "presence_diff"}, {"room", "general"}, {"joins", names({"carol"})},
                         {"leaves", names({"bob"})}, {"count", 2}});
  // Nothing changed since: no further diff.
  flush();
  flush();
  CHECK(presence_frames(alice.sink->take()).empty());
}

TEST_CASE_FIXTURE(room_fixture, "a presence_diff is encoded once and the same buffer reaches every member as droppable") {
  auto alice = join("alice");
  auto bob = join("bob");
  flush();
  alice.sink->take();
  bob.sink->take();
  auto carol = join("carol");
  carol.sink->take();
  flush();
  auto a = alice.sink->buffers();
  auto b = bob.sink->buffers();
  auto c = carol.sink->buffers();
  REQUIRE(a.size() == 1);
  REQUIRE(b.size() == 1);
  REQUIRE(c.size() == 1);
  CHECK(a[0].get() == b[0].get());
  CHECK(a[0].get() == c[0].get());
  CHECK(alice.sink->priorities() == std::vector<frame_priority>{frame_priority::droppable});
  CHECK(json::parse(*a[0])["joins"] == names({"carol"}));
}

TEST_CASE_FIXTURE(room_fixture, "a user who joins and leaves within one interval appears once, in leaves") {
  auto alice = join("alice");
  flush();
  alice.sink->take();
  auto bob = join("bob");
  leave(bob);
  flush();
  auto diffs = alice.sink->take("presence_diff");
  REQUIRE(diffs.size() == 1);
  CHECK(diffs[0]["joins"] == json::array());
  CHECK(diffs[0]["leaves"] == names({"bob"}));
  CHECK(diffs[0]["count"] == 1);
}

TEST_CASE_FIXTURE(room_fixture, "a user who leaves and rejoins within one interval appears once, in joins") {
  auto alice = join("alice");
  auto bob = join("bob");
  flush();
  alice.sink->take();
  leave(bob);
  join(bob, "bob");
  flush();
  auto diffs = alice.sink->take("presence_diff");
  REQUIRE(diffs.size() == 1);
  CHECK(diffs[0]["joins"] == names({"bob"}));
  CHECK(diffs[0]["leaves"] == json::array());
  CHECK(diffs[0]["count"] == 2);
}

TEST_CASE_FIXTURE(room_fixture, "a join into a room of many members pushes only the joined frame until the flush") {
  reconfigure([](room_config& c) { c.rooms.capacity = 60; });
  std::vector<member> members;
  for (int i = 0; i < 50; ++i)
    members.push_back(join("user" + std::to_string(100 + i)));
  flush();
  for (auto& m : members)
    m.sink->take();
  auto late = join("late");
  CHECK(late.sink->size() == 1);
  CHECK(late.sink->take("joined").size() == 1);
  for (auto& m : members)
    CHECK(m.sink->size() == 0);
  flush();
  for (auto& m : members)
    CHECK(m.sink->take("presence_diff").size() == 1);
}

TEST_CASE_FIXTURE(room_fixture, "joined carries the count and at most page_size members, the first names in order") {
  reconfigure([](room_config& c) {
    c.rooms.capacity = 20;
    c.presence.page_size = 4;
  });
  for (auto name : {"eve", "bob", "dave", "alice", "frank", "carol"})
    join(name);
  auto zed = join("zed");
  auto joined = zed.sink->take("joined").at(0);
  CHECK(joined["count"] == 7);
  CHECK(joined["presence"] == "users");
  CHECK(joined["members"] == names({"alice", "bob", "carol", "dave"}));
}

TEST_CASE_FIXTURE(room_fixture, "who pages through every present user in name order with after, more false on the last page") {
  reconfigure([](room_config& c) {
    c.rooms.capacity = 20;
    c.presence.page_size = 3;
  });
  for (auto name : {"eve", "bob", "dave", "alice", "frank", "carol", "gina"})
    join(name);
  auto m = join("hal");
  auto first = who(m);
  CHECK(first["members"] == names({"alice", "bob", "carol"}));
  CHECK(first["count"] == 8);
  CHECK(first["more"] == true);
  CHECK(first["ref"] == "w");
  auto second = who(m, "carol");
  CHECK(second["members"] == names({"dave", "eve", "frank"}));
  CHECK(second["more"] == true);
  auto last = who(m, "frank");
  CHECK(last["members"] == names({"gina", "hal"}));
  CHECK(last["more"] == false);
  // after need not be present; limit pages shorter, never longer than page_size.
  CHECK(who(m, "bz", 2)["members"] == names({"carol", "dave"}));
  CHECK(who(m, "", 50)["members"].size() == 3);
  auto beyond = who(m, "zed");
  CHECK(beyond["members"] == json::array());
  CHECK(beyond["more"] == false);
}

TEST_CASE_FIXTURE(room_fixture, "who from a connection that is not a member is refused with not_member") {
  join("alice");
  auto eve = connect();
  auto err = ask_error<ok_atom>(room_handle, who_atom::value, eve.session, who_request{});
  CHECK(to_protocol_error(err) == protocol::error_code::not_member);
  CHECK(eve.sink->take().empty());
}

TEST_CASE_FIXTURE(room_fixture, "who is written to the member's sink after the presence frames queued before it") {
  auto alice = join("alice");
  flush();
  alice.sink->take();
  join("bob");
  flush();
  ask<ok_atom>(room_handle, who_atom::value, alice.session, who_request{});
  auto frames = alice.sink->take();
  REQUIRE(frames.size() == 2);
  CHECK(frames[0]["type"] == "presence_diff");
  CHECK(frames[1]["type"] == "who");
  CHECK(frames[1]["members"] == names({"alice", "bob"}));
}

TEST_CASE_FIXTURE(room_fixture, "a member whose diff was dropped gets presence_state with the current members once its queue has room") {
  auto alice = join("alice");
  auto bob = join("bob");
  flush();
  alice.sink->take();
  bob.sink->take();
  alice.sink->refuse_droppable(true);
  ask<ok_atom>(room_handle, leave_atom::value, bob.session);
  flush();
  CHECK(alice.sink->refused() == 1);
  // Still falling behind: the state it is sent each tick is refused as well, without new changes.
  flush();
  CHECK(alice.sink->refused() == 2);
  auto carol = join("carol");
  flush();
  CHECK(alice.sink->refused() == 3);
  CHECK(carol.sink->take("presence_diff").size() == 1);  // up-to-date members get diffs, not state
  alice.sink->refuse_droppable(false);
  flush();
  auto frames = alice.sink->take();
  REQUIRE(frames.size() == 1);
  CHECK(frames[0] == json{{"type", "presence_state"}, {"room", "general"}, {"count", 2},
                          {"presence", "users"}, {"members", names({"alice", "carol"})}});
  CHECK(carol.sink->take().empty());
  // Caught up: nothing more until something changes, and then a diff again.
  flush();
  flush();
  CHECK(alice.sink->take().empty());
  leave(carol);
  flush();
  auto diffs = alice.sink->take("presence_diff");
  REQUIRE(diffs.size() == 1);
  CHECK(diffs[0]["leaves"] == names({"carol"}));
}

TEST_CASE_FIXTURE(room_fixture, "passing user_limit switches every member to counts, and falling to 90 percent back to names") {
  reconfigure([](room_config& c) {
    c.rooms.capacity = 20;
    c.presence.user_limit = 10;
    c.presence.page_size = 4;
  });
  std::vector<member> m;
  for (int i = 0; i < 10; ++i)
    m.push_back(join("u" + std::to_string(i)));
  flush();
  for (auto& x : m)
    x.sink->take();
  m.push_back(join("u10"));  // 11 > 10
  flush();
  for (auto& x : m) {
    auto frames = x.sink->take();
    if (&x == &m.back())
      frames.erase(frames.begin());  // its joined
    REQUIRE(frames.size() == 1);
    CHECK(frames[0] == json{{"type", "presence_state"}, {"room", "general"}, {"count", 11}, {"presence", "counts"}});
  }
  // In counts mode: joined and diffs carry only the count, at most once per count_interval, and
  // typing is not relayed.
  m.push_back(join("u11"));
  auto joined = m.back().sink->take("joined").at(0);
  CHECK(joined["presence"] == "counts");
  CHECK(joined["count"] == 12);
  CHECK_FALSE(joined.contains("members"));
  flush();
  CHECK(m[0].sink->take("presence_diff").empty());
  flush_counts();
  CHECK(m[0].sink->take("presence_diff").at(0) == json{{"type", "presence_diff"}, {"room", "general"}, {"count", 12}});
  caf::anon_send(room_handle, typing_atom::value, m[1].session);
  run();
  CHECK(m[0].sink->take("typing").empty());
  // who still names them.
  CHECK(who(m[0], "", 2)["members"] == names({"u0", "u1"}));
  // Down to 10: still above 90 % of the limit, counts stay.
  leave(m[11]);
  leave(m[10]);
  flush_counts();
  auto still = m[0].sink->take();
  REQUIRE(still.size() == 1);
  CHECK(still[0] == json{{"type", "presence_diff"}, {"room", "general"}, {"count", 10}});
  for (int i = 1; i < 10; ++i)
    m[i].sink->take();
  // Down to 9 = 90 %: everybody gets the names again, all of them (more than page_size), so that
  // nobody has to page the list with who.
  leave(m[9]);
  flush_counts();
  for (int i = 0; i < 9; ++i) {
    auto frames = m[i].sink->take();
    REQUIRE(frames.size() == 1);
    CHECK(frames[0] == json{{"type", "presence_state"}, {"room", "general"}, {"count", 9},
                            {"presence", "users"},
                            {"members", names({"u0", "u1", "u2", "u3", "u4", "u5", "u6", "u7", "u8"})}});
  }
  caf::anon_send(room_handle, typing_atom::value, m[1].session);
  run();
  CHECK(m[0].sink->take("typing").size() == 1);
}

TEST_CASE_FIXTURE(room_fixture, "a user with two connections stays present until the last one leaves") {
  auto alice = join("alice");
  auto bob1 = join("bob");
  auto bob2 = join("bob");
  flush();
  alice.sink->take();
  leave(bob1);
  flush();
  CHECK(alice.sink->take("presence_diff").empty());
  leave(bob2);
  flush();
  CHECK(alice.sink->take("presence_diff").at(0)["leaves"] == names({"bob"}));
}

TEST_CASE_FIXTURE(room_fixture, "an explicit leave of the last connection ends presence at the next flush, without grace") {
  auto alice = join("alice");
  auto bob = join("bob");
  flush();
  alice.sink->take();
  leave(bob);
  CHECK(who(alice)["members"] == names({"alice"}));
  flush();
  CHECK(alice.sink->take("presence_diff").at(0)["leaves"] == names({"bob"}));
}

TEST_CASE_FIXTURE(room_fixture, "a dead session stays present through the grace and then leaves in the next diff") {
  auto alice = join("alice");
  auto bob = join("bob");
  flush();
  alice.sink->take();
  disconnect(bob);
  CHECK(who(alice)["members"] == names({"alice", "bob"}));
  advance(4900ms);
  CHECK(presence_frames(alice.sink->take()).empty());
  advance(200ms);  // the grace ends at 5 s
  CHECK(who(alice)["members"] == names({"alice"}));
  flush();
  auto diffs = alice.sink->take("presence_diff");
  REQUIRE(diffs.size() == 1);
  CHECK(diffs[0]["leaves"] == names({"bob"}));
  CHECK(diffs[0]["joins"] == json::array());
  CHECK(diffs[0]["count"] == 1);
}

TEST_CASE_FIXTURE(room_fixture, "grace periods of several users end in order, each as a leave") {
  reconfigure([](room_config& c) { c.rooms.capacity = 5; });
  auto alice = join("alice");
  auto bob = join("bob");
  auto carol = join("carol");
  flush();
  alice.sink->take();
  disconnect(bob);
  advance(2s);
  disconnect(carol);
  advance(3s);  // bob's grace ended
  flush();
  CHECK(alice.sink->take("presence_diff").at(0)["leaves"] == names({"bob"}));
  advance(2s);  // carol's too
  flush();
  CHECK(alice.sink->take("presence_diff").at(0)["leaves"] == names({"carol"}));
  CHECK(mem->grace.empty());
}

TEST_CASE_FIXTURE(room_fixture, "a reconnect within the grace period shows nothing at all") {
  auto alice = join("alice");
  auto bob = join("bob");
  flush();
  alice.sink->take();
  disconnect(bob);
  advance(2s);
  auto bob_again = join("bob");
  advance(10s);
  CHECK(presence_frames(alice.sink->take()).empty());
  CHECK(who(alice)["members"] == names({"alice", "bob"}));
  // A message still reaches the new connection, and only once.
  post(alice, "welcome back");
  CHECK(bob_again.sink->take("message").size() == 1);
}

TEST_CASE_FIXTURE(room_fixture, "typing is relayed to the others, not stored, and coalesced per user") {
  auto alice = join("alice");
  auto bob = join("bob");
  flush();
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

TEST_CASE_FIXTURE(room_fixture, "typing and presence frames are droppable, replies and messages essential") {
  auto alice = join("alice");
  alice.sink->take();
  auto bob = join("bob");
  post(bob, "x");
  caf::anon_send(room_handle, typing_atom::value, bob.session);
  flush();
  auto priorities = alice.sink->priorities();
  auto frames = alice.sink->take();
  REQUIRE(frames.size() == 3);
  CHECK(frames[0]["type"] == "message");
  CHECK(priorities[0] == frame_priority::essential);
  CHECK(frames[1]["type"] == "typing");
  CHECK(priorities[1] == frame_priority::droppable);
  CHECK(frames[2]["type"] == "presence_diff");
  CHECK(priorities[2] == frame_priority::droppable);
  ask<ok_atom>(room_handle, who_atom::value, alice.session, who_request{});
  CHECK(alice.sink->priorities() == std::vector<frame_priority>{frame_priority::essential});
}

TEST_CASE_FIXTURE(room_fixture, "a restarted room keeps members, history and ids and tells members its new handle") {
  auto alice = join("alice");
  auto bob = join("bob");
  post(alice, "before");
  flush();
  caf::anon_send_exit(room_handle, caf::exit_reason::kill);
  run();
  alice.sink->take();
  bob.sink->take();
  // What the supervisor does: spawn a new incarnation on the same memory.
  auto restarted = spawn(room, mem, cfg);
  run();
  // Whatever diff was pending died with the old actor: every member starts over from the state.
  for (auto* m : {&alice, &bob}) {
    auto frames = m->sink->take();
    REQUIRE(frames.size() == 1);
    CHECK(frames[0] == json{{"type", "presence_state"}, {"room", "general"}, {"count", 2},
                            {"presence", "users"}, {"members", names({"alice", "bob"})}});
  }
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
  flush();
  CHECK(alice.sink->take("presence_diff").at(0)["leaves"] == names({"bob"}));
}

TEST_CASE_FIXTURE(room_fixture, "a restarted room keeps running grace periods and sends the state to members that missed it") {
  auto alice = join("alice");
  auto bob = join("bob");
  auto carol = join("carol");
  flush();
  disconnect(bob);
  advance(1s);
  caf::anon_send_exit(room_handle, caf::exit_reason::kill);
  run();
  alice.sink->take();
  carol.sink->take();
  carol.sink->refuse_droppable(true);
  room_handle = spawn(room, mem, cfg);
  run();
  CHECK(alice.sink->take("presence_state").at(0)["members"] == names({"alice", "bob", "carol"}));
  CHECK(carol.sink->refused() == 1);
  carol.sink->refuse_droppable(false);
  flush();
  CHECK(carol.sink->take("presence_state").at(0)["members"] == names({"alice", "bob", "carol"}));
  advance(4s);  // bob's grace, started before the restart, ends 5 s after his disconnect
  flush();
  CHECK(alice.sink->take("presence_diff").at(0)["leaves"] == names({"bob"}));
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
