// Moderation in the room actor on the deterministic scheduler, with the real store and fake
// sessions that record what the room tells them: kicks and bans remove every session of the user,
// presence follows, mutes refuse posts, deletes leave tombstones, and bans and mutes the store
// keeps reach a new room through its snapshot.

#include "actor_fixture.hpp"

#include "actors/errors.hpp"
#include "actors/room.hpp"

#include <caf/stateful_actor.hpp>

using namespace parley;
using namespace parley::testing;
using namespace std::chrono_literals;
using protocol::moderation_action;

namespace {

struct member {
  caf::actor session;
  std::shared_ptr<recording_sink> sink;
  std::shared_ptr<session_log> log;
};

constexpr caf::timespan interval = 100ms;

int64_t real_now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

struct moderation_room_fixture : fixture {
  room_config cfg;
  std::shared_ptr<room_memory> mem;
  room_actor room_handle;
  store_actor store_handle;

  moderation_room_fixture() {
    cfg.rooms.capacity = 10;
    cfg.presence.grace = 5s;
    cfg.presence.diff_interval = interval;
    store_handle = spawn_store();
    start(std::make_shared<room_memory>("general", 7, cfg.presence.grace));
  }

  void start(std::shared_ptr<room_memory> memory) {
    mem = std::move(memory);
    room_handle = spawn(room, mem, cfg);
    run();
  }

  /// A room started the way the directory starts one: from what the store holds.
  void start_from_store() {
    auto snapshot = ask<room_snapshot>(store_handle, open_atom::value, std::string{"general"},
                                       uint32_t{10}, true);
    start(make_room_memory("general", snapshot, cfg.presence.grace));
  }

  member connect() {
    member m{nullptr, std::make_shared<recording_sink>(), std::make_shared<session_log>()};
    m.session = caf::actor_cast<caf::actor>(spawn(fake_session, m.log));
    run();
    return m;
  }

  join_result join(member& m, const std::string& user) {
    return ask<join_result>(room_handle, join_atom::value, m.session,
                            join_request{user, m.sink, std::nullopt, std::nullopt, std::nullopt});
  }

  member join(const std::string& user) {
    auto m = connect();
    join(m, user);
    return m;
  }

  caf::error join_error(member& m, const std::string& user) {
    return ask_error<join_result>(room_handle, join_atom::value, m.session,
                                  join_request{user, m.sink, std::nullopt, std::nullopt, std::nullopt});
  }

  uint64_t post(member& m, const std::string& text) {
    return ask<uint64_t>(room_handle, post_atom::value, m.session, text, std::string{});
  }

  void moderate(moderation_action action, const std::string& user, std::optional<int64_t> until = std::nullopt,
                uint64_t id = 0) {
    moderation_record rec{action, "general", user, "max", id, until, "", real_now_ms()};
    ask<ok_atom>(room_handle, moderate_atom::value, rec);
  }

  /// Lets one presence interval pass, so pending changes go out.
  void flush() { advance(interval); }
};

} // namespace

TEST_CASE_FIXTURE(moderation_room_fixture, "a ban removes every session of the user, tells each one, and keeps the others") {
  auto bob1 = join("bob");
  auto bob2 = join("bob");
  auto carol = join("carol");
  flush();
  carol.sink->take();
  moderate(moderation_action::ban, "bob");
  for (auto* m : {&bob1, &bob2}) {
    REQUIRE(m->log->kicked.size() == 1);
    CHECK(m->log->kicked[0].first == "general");
    CHECK(m->log->kicked[0].second == "banned");
  }
  CHECK(carol.log->kicked.empty());
  CHECK(mem->members.size() == 1);
  // Nothing the room fans out reaches the banned sessions any more.
  bob1.sink->take();
  post(carol, "after the ban");
  CHECK(bob1.sink->take("message").empty());
  CHECK(bob2.sink->take("message").empty());
  CHECK(carol.sink->take("message").size() == 1);
  // A post from a removed session is refused as from a non-member.
  auto err = ask_error<uint64_t>(room_handle, post_atom::value, bob1.session, std::string{"x"}, std::string{});
  CHECK(to_protocol_error(err) == protocol::error_code::not_member);
}

TEST_CASE_FIXTURE(moderation_room_fixture, "a ban shows as a leave in the next presence diff, without grace") {
  auto bob = join("bob");
  auto carol = join("carol");
  flush();
  carol.sink->take();
  moderate(moderation_action::ban, "bob");
  auto told = carol.sink->take("moderation");
  REQUIRE(told.size() == 1);
  CHECK(told[0]["user"] == "bob");
  CHECK(told[0]["by"] == "max");
  flush();
  auto diffs = carol.sink->take("presence_diff");
  REQUIRE(diffs.size() == 1);
  CHECK(diffs[0]["leaves"] == nlohmann::json::array({"bob"}));
  CHECK(diffs[0]["joins"].empty());
  CHECK(diffs[0]["count"] == 1);
  CHECK(mem->present.count("bob") == 0);
}

TEST_CASE_FIXTURE(moderation_room_fixture, "a kick of a user within their grace ends their presence at once") {
  auto bob = join("bob");
  auto carol = join("carol");
  flush();
  caf::anon_send_exit(bob.session, caf::exit_reason::user_shutdown);
  run();
  flush();
  carol.sink->take();
  CHECK(mem->present.count("bob") == 1);  // within the grace
  moderate(moderation_action::kick, "bob");
  flush();
  auto diffs = carol.sink->take("presence_diff");
  REQUIRE(diffs.size() == 1);
  CHECK(diffs[0]["leaves"] == nlohmann::json::array({"bob"}));
  // The grace ending later does not announce the leave a second time.
  advance(10s);
  CHECK(carol.sink->take("presence_diff").empty());
}

TEST_CASE_FIXTURE(moderation_room_fixture, "a banned user's join is refused with banned and until, and an unban lets them in") {
  auto until = real_now_ms() + 60'000;
  moderate(moderation_action::ban, "bob", until);
  auto bob = connect();
  auto err = join_error(bob, "bob");
  CHECK(to_protocol_error(err) == protocol::error_code::banned);
  CHECK(error_until(err) == until);
  CHECK(bob.sink->take().empty());
  CHECK(mem->members.empty());
  moderate(moderation_action::unban, "bob");
  join(bob, "bob");
  CHECK(bob.sink->take("joined").size() == 1);
}

TEST_CASE_FIXTURE(moderation_room_fixture, "a kicked user may join again at once") {
  auto bob = join("bob");
  moderate(moderation_action::kick, "bob");
  REQUIRE(bob.log->kicked.size() == 1);
  CHECK(bob.log->kicked[0].second == "kicked");
  join(bob, "bob");
  CHECK(mem->members.size() == 1);
}

TEST_CASE_FIXTURE(moderation_room_fixture, "a muted member's post is refused with muted and nothing is stored or sent") {
  auto bob = join("bob");
  auto carol = join("carol");
  auto until = real_now_ms() + 60'000;
  moderate(moderation_action::mute, "bob", until);
  carol.sink->take();
  auto err = ask_error<uint64_t>(room_handle, post_atom::value, bob.session, std::string{"hi"}, std::string{});
  CHECK(to_protocol_error(err) == protocol::error_code::muted);
  CHECK(error_until(err) == until);
  CHECK(carol.sink->take("message").empty());
  CHECK(mem->next_id == 1);
  CHECK(bob.log->kicked.empty());
  moderate(moderation_action::unmute, "bob");
  CHECK(post(bob, "thanks") == 1);
}

TEST_CASE_FIXTURE(moderation_room_fixture, "a mute that has run out no longer refuses posts") {
  auto bob = join("bob");
  moderate(moderation_action::mute, "bob", real_now_ms() - 1);
  CHECK(post(bob, "free again") == 1);
  CHECK(mem->mutes.count("bob") == 0);
}

TEST_CASE_FIXTURE(moderation_room_fixture, "a delete tombstones the held message and later joins see the tombstone") {
  auto bob = join("bob");
  auto id = post(bob, "regret");
  post(bob, "keep");
  bob.sink->take();
  moderate(moderation_action::delete_message, "", std::nullopt, id);
  auto told = bob.sink->take("moderation");
  REQUIRE(told.size() == 1);
  CHECK(told[0]["action"] == "delete");
  CHECK(told[0]["id"] == id);
  auto page = ask<history_page>(room_handle, history_atom::value, uint64_t{0}, uint32_t{10});
  REQUIRE(page.messages.size() == 2);
  CHECK(page.messages[0].deleted);
  CHECK(page.messages[0].text.empty());
  CHECK_FALSE(page.messages[1].deleted);
  auto carol = join("carol");
  auto joined = carol.sink->take("joined");
  REQUIRE(joined.size() == 1);
  CHECK(joined[0]["history"][0]["deleted"] == true);
  CHECK(joined[0]["history"][0]["text"] == "");
}

TEST_CASE_FIXTURE(moderation_room_fixture, "a delete of an id the room never had is refused with not_found and tells nobody") {
  auto bob = join("bob");
  post(bob, "one");
  bob.sink->take();
  auto err = ask_error<ok_atom>(room_handle, moderate_atom::value,
                                moderation_record{moderation_action::delete_message, "general", "", "max", 2});
  CHECK(to_protocol_error(err) == protocol::error_code::not_found);
  CHECK(bob.sink->take("moderation").empty());
}

TEST_CASE_FIXTURE(moderation_room_fixture, "bans and mutes loaded from a room snapshot are enforced") {
  room_snapshot snapshot;
  snapshot.epoch = 3;
  snapshot.bans = {restriction{"bob", std::nullopt}, restriction{"old", real_now_ms() - 1}};
  snapshot.mutes = {restriction{"carol", real_now_ms() + 60'000}};
  caf::anon_send_exit(room_handle, caf::exit_reason::kill);
  run();
  start(make_room_memory("general", snapshot, cfg.presence.grace));
  auto bob = connect();
  auto err = join_error(bob, "bob");
  CHECK(to_protocol_error(err) == protocol::error_code::banned);
  CHECK_FALSE(error_until(err));
  join("old");  // that ban has run out
  auto carol = join("carol");
  auto muted = ask_error<uint64_t>(room_handle, post_atom::value, carol.session, std::string{"x"}, std::string{});
  CHECK(to_protocol_error(muted) == protocol::error_code::muted);
}

TEST_CASE_FIXTURE(moderation_room_fixture, "bans and mutes the store recorded reach a new room of the same name") {
  auto until = real_now_ms() + 60'000;
  moderate(moderation_action::ban, "bob", until);
  moderate(moderation_action::mute, "carol");
  caf::anon_send_exit(room_handle, caf::exit_reason::kill);
  run();
  start_from_store();
  auto bob = connect();
  auto err = join_error(bob, "bob");
  CHECK(to_protocol_error(err) == protocol::error_code::banned);
  CHECK(error_until(err) == until);
  auto carol = join("carol");
  auto muted = ask_error<uint64_t>(room_handle, post_atom::value, carol.session, std::string{"x"}, std::string{});
  CHECK(to_protocol_error(muted) == protocol::error_code::muted);
  CHECK_FALSE(error_until(muted));
}
