// The store actor on the deterministic scheduler, over real SQLite files in a temporary directory:
// group commit, ids, duplicates, reloading after a restart, retention, and every fault it answers
// with store_unavailable instead of failing.

#include "store_fixture.hpp"

#include <caf/stateful_actor.hpp>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>

using namespace parley;
using namespace parley::testing;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

TEST_CASE_FIXTURE(store_fixture, "a new room gets a fresh epoch that stays the same when opened again") {
  start();
  auto first = open();
  CHECK(first.epoch > 0);
  CHECK(first.epoch < (uint64_t{1} << 53));
  CHECK(first.last_id == 0);
  CHECK(first.recent.empty());
  CHECK(open().epoch == first.epoch);
  CHECK(open("other").epoch != first.epoch);
}

TEST_CASE_FIXTURE(store_fixture, "a room that never gets a message leaves no row, and its first message writes it with its epoch") {
  start();
  auto a = open("a");
  auto b = open("b");
  CHECK(a.created);
  CHECK(b.created);
  CHECK(rooms_on_disk() == 0);
  CHECK(append(message("alice", "first", "", 1000, "a"), a.epoch).msg.id == 1);
  auto row = room_on_disk("a");
  REQUIRE(row);
  CHECK(row->epoch == a.epoch);  // what clients of the room saw before its first message
  CHECK(row->last_id == 1);
  CHECK_FALSE(room_on_disk("b"));
  // Opened again, the room is the stored one, with the same epoch.
  auto again = open("a");
  CHECK_FALSE(again.created);
  CHECK(again.epoch == a.epoch);
  CHECK(again.last_id == 1);
}

TEST_CASE_FIXTURE(store_fixture, "new rooms getting their first messages within the commit window are written in one group") {
  cfg.commit_window = 5ms;
  start();
  auto a = open("a");
  auto b = open("b");
  auto h1 = self->request(st, caf::infinite, append_atom::value, a.epoch, message("alice", "x", "", 1000, "a"));
  auto h2 = self->request(st, caf::infinite, append_atom::value, b.epoch, message("bob", "y", "", 1000, "b"));
  auto h3 = self->request(st, caf::infinite, append_atom::value, a.epoch, message("carol", "z", "", 1000, "a"));
  run();
  // A burst of new rooms costs one commit, not one each: nothing is written or answered yet.
  CHECK(rooms_on_disk() == 0);
  CHECK(self->mailbox().empty());
  advance(5ms);
  CHECK(rooms_on_disk() == 2);
  CHECK(room_on_disk("a")->epoch == a.epoch);
  CHECK(room_on_disk("b")->epoch == b.epoch);
  std::vector<uint64_t> got;
  for (auto* h : {&h1, &h2, &h3})
    h->receive([&](append_result& r) { got.push_back(r.msg.id); }, [](caf::error&) { FAIL("append failed"); });
  CHECK(got == std::vector<uint64_t>{1, 1, 2});
  CHECK(ids(on_disk("a")) == std::vector<uint64_t>{1, 2});
}

TEST_CASE_FIXTURE(store_fixture, "max_rooms counts stored rooms and rooms in memory, refuses new ones with room_limit, and holds across a restart") {
  cfg.max_rooms = 2;
  start();
  auto a = open("a");
  append(message("alice", "kept", "", 1000, "a"), a.epoch);
  CHECK(open("b").created);
  CHECK(open_error("c") == protocol::error_code::room_limit);
  // Rooms that exist are still opened.
  CHECK(open("a").last_id == 1);
  CHECK_FALSE(open("b").created);
  // b leaves memory without a message: its place is free again.
  self->send(st, retire_atom::value, std::string{"b"});
  run();
  CHECK(open("c").created);
  CHECK(open_error("d") == protocol::error_code::room_limit);
  // A stored room keeps counting when it leaves memory.
  self->send(st, retire_atom::value, std::string{"a"});
  run();
  CHECK(open_error("d") == protocol::error_code::room_limit);
  // After a restart the stored room is counted from the file (c was never written: it is gone).
  restart();
  CHECK(rooms_on_disk() == 1);
  CHECK(open("d").created);
  CHECK(open_error("e") == protocol::error_code::room_limit);
  CHECK(open("a").last_id == 1);
}

TEST_CASE_FIXTURE(store_fixture, "an open that may not create is refused with rate_limited for a new room only") {
  start();
  auto a = open("a");
  auto b = open("b");
  append(message("alice", "kept", "", 1000, "a"), a.epoch);
  CHECK(to_protocol_error(ask_error<room_snapshot>(st, open_atom::value, std::string{"c"}, uint32_t{10}, false))
        == protocol::error_code::rate_limited);
  auto stored = ask<room_snapshot>(st, open_atom::value, std::string{"a"}, uint32_t{10}, false);
  CHECK(stored.last_id == 1);
  auto unwritten = ask<room_snapshot>(st, open_atom::value, std::string{"b"}, uint32_t{10}, false);
  CHECK(unwritten.epoch == b.epoch);
  CHECK(rooms_on_disk() == 1);
}

TEST_CASE_FIXTURE(store_fixture, "rows of rooms without messages from older versions are removed when the store opens the file") {
  {
    storage::message_db db{make_db_options(cfg)};
    db.create_room("empty", 5);
    auto kept = db.create_room("kept", 6);
    db.insert_message(kept.key, 6, message("alice", "x", "", 1000, "kept"));
    db.set_last_id(kept.key, 1);
  }
  start();
  open("z");  // any request: the store has opened the file
  CHECK_FALSE(room_on_disk("empty"));
  CHECK(room_on_disk("kept"));
}

TEST_CASE_FIXTURE(store_fixture, "appends get consecutive ids and are on disk when answered") {
  start();
  CHECK(append(message("alice", "one")).msg.id == 1);
  auto second = append(message("bob", "two"));
  CHECK(second.msg.id == 2);
  CHECK_FALSE(second.duplicate);
  auto disk = on_disk();
  REQUIRE(disk.size() == 2);
  CHECK(disk[1].from == "bob");
  CHECK(disk[1].text == "two");
  CHECK(disk[1].ts == 1000);
}

TEST_CASE_FIXTURE(store_fixture, "appends within the commit window share one commit and are answered only after it") {
  cfg.commit_window = 5ms;
  start();
  auto h1 = self->request(st, caf::infinite, append_atom::value, uint64_t{7}, message("alice", "a"));
  auto h2 = self->request(st, caf::infinite, append_atom::value, uint64_t{7}, message("bob", "b"));
  run();
  // The window has not ended: nothing is committed, and nobody has been answered.
  CHECK(on_disk().empty());
  CHECK(self->mailbox().empty());
  advance(5ms);
  CHECK(on_disk().size() == 2);
  uint64_t id1 = 0, id2 = 0;
  h1.receive([&](append_result& r) { id1 = r.msg.id; }, [](caf::error&) { FAIL("append failed"); });
  h2.receive([&](append_result& r) { id2 = r.msg.id; }, [](caf::error&) { FAIL("append failed"); });
  CHECK(id1 == 1);
  CHECK(id2 == 2);
}

TEST_CASE_FIXTURE(store_fixture, "a full group commits without waiting for the window") {
  cfg.commit_window = 10s;
  cfg.max_batch = 3;
  start();
  for (int i = 0; i < 3; ++i)
    self->send(st, append_atom::value, uint64_t{7}, message("alice", std::to_string(i)));
  run();
  CHECK(on_disk().size() == 3);
}

TEST_CASE_FIXTURE(store_fixture, "a room keeps its epoch, ids and messages across a store restart") {
  start();
  auto epoch = open().epoch;
  for (int i = 1; i <= 5; ++i)
    append(message("alice", "m" + std::to_string(i)), epoch);  // the room hands its epoch back
  restart();
  auto reopened = open("general", 3);
  CHECK(reopened.epoch == epoch);
  CHECK(reopened.last_id == 5);
  CHECK(ids(reopened.recent) == std::vector<uint64_t>{3, 4, 5});
  CHECK(reopened.recent.back().text == "m5");
  CHECK(append(message("bob", "after")).msg.id == 6);
}

TEST_CASE_FIXTURE(store_fixture, "a retried cid answers the original, within a group and after its commit") {
  cfg.commit_window = 5ms;
  start();
  auto h1 = self->request(st, caf::infinite, append_atom::value, uint64_t{7}, message("alice", "hi", "c1"));
  auto h2 = self->request(st, caf::infinite, append_atom::value, uint64_t{7}, message("alice", "hi", "c1"));
  run();
  advance(5ms);
  append_result r1, r2;
  h1.receive([&](append_result& r) { r1 = r; }, [](caf::error&) { FAIL("append failed"); });
  h2.receive([&](append_result& r) { r2 = r; }, [](caf::error&) { FAIL("append failed"); });
  CHECK_FALSE(r1.duplicate);
  CHECK(r2.duplicate);
  CHECK(r2.msg.id == r1.msg.id);
  cfg.commit_window = 0s;
  restart();
  auto later = append(message("alice", "hi", "c1"));
  CHECK(later.duplicate);
  CHECK(later.msg.id == r1.msg.id);
  CHECK(later.msg.text == "hi");
  // The same cid from someone else is their own message.
  CHECK_FALSE(append(message("bob", "hi", "c1")).duplicate);
  CHECK(on_disk().size() == 2);
}

TEST_CASE_FIXTURE(store_fixture, "history pages backwards and after reads forwards, oldest first") {
  start();
  for (int i = 1; i <= 6; ++i)
    append(message("alice", "m" + std::to_string(i)));
  auto page = ask<history_page>(st, history_atom::value, std::string{"general"}, uint64_t{5}, uint32_t{2});
  CHECK(ids(page.messages) == std::vector<uint64_t>{3, 4});
  CHECK(page.more);
  auto oldest = ask<history_page>(st, history_atom::value, std::string{"general"}, uint64_t{3}, uint32_t{5});
  CHECK(ids(oldest.messages) == std::vector<uint64_t>{1, 2});
  CHECK_FALSE(oldest.more);
  auto newer = ask<history_page>(st, after_atom::value, std::string{"general"}, uint64_t{2}, uint32_t{3});
  CHECK(ids(newer.messages) == std::vector<uint64_t>{3, 4, 5});
  CHECK(newer.more);
}

TEST_CASE_FIXTURE(store_fixture, "a read first commits what is pending, so it sees every accepted message") {
  cfg.commit_window = 10s;
  start();
  self->send(st, append_atom::value, uint64_t{7}, message("alice", "pending"));
  auto page = ask<history_page>(st, history_atom::value, std::string{"general"}, uint64_t{0}, uint32_t{10});
  REQUIRE(page.messages.size() == 1);
  CHECK(page.messages[0].text == "pending");
}

TEST_CASE_FIXTURE(store_fixture, "retention keeps the newest messages per room, in the background") {
  cfg.retain_per_room = 3;
  cfg.retention_interval = 1min;
  start();
  for (int i = 1; i <= 6; ++i)
    append(message("alice", "m" + std::to_string(i)));
  // Retention runs on its interval, never on the send path: nothing is dropped before.
  CHECK(on_disk().size() == 6);
  advance(1min);
  CHECK(ids(on_disk()) == std::vector<uint64_t>{4, 5, 6});
  // Ids continue after what was dropped.
  CHECK(append(message("alice", "m7")).msg.id == 7);
}

TEST_CASE_FIXTURE(store_fixture, "retention drops messages older than the maximum age, and ids continue") {
  cfg.retain_max_age = 1h;
  cfg.retention_interval = 1min;
  start();
  using namespace std::chrono;
  auto now = duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
  auto long_ago = now - duration_cast<milliseconds>(2h).count();
  append(message("alice", "old 1", "", long_ago));
  append(message("alice", "old 2", "", long_ago));
  append(message("alice", "new 3", "", now));
  append(message("alice", "stale", "", long_ago, "quiet"));
  advance(1min);
  CHECK(ids(on_disk()) == std::vector<uint64_t>{3});
  CHECK(on_disk("quiet").empty());
  // A room whose every message expired keeps its ids going.
  CHECK(append(message("bob", "back", "", now, "quiet")).msg.id == 2);
}

TEST_CASE_FIXTURE(store_fixture, "a locked database answers store_unavailable and the store recovers when the lock goes") {
  start();
  CHECK(append(message("alice", "before")).msg.id == 1);
  {
    // Another process holds the write lock (a backup tool, say) for longer than busy_timeout.
    storage::message_db other{make_db_options(cfg)};
    other.begin();
    CHECK(append_error(message("alice", "blocked")) == protocol::error_code::store_unavailable);
    other.rollback();
  }
  // Nothing of the failed message remains, and its id is not skipped.
  auto next = append(message("alice", "after"));
  CHECK(next.msg.id == 2);
  auto disk = on_disk();
  REQUIRE(disk.size() == 2);
  CHECK(disk[1].text == "after");
}

TEST_CASE_FIXTURE(store_fixture, "a full database answers store_unavailable and recovers once retention frees space") {
  cfg.max_db_bytes = 96 * 1024;
  cfg.retain_per_room = 2;
  cfg.retention_interval = 1min;
  start();
  std::string big(4000, 'x');
  uint64_t accepted = 0;
  protocol::error_code failure{};
  for (int i = 0; i < 100 && failure == protocol::error_code{}; ++i) {
    auto h = self->request(st, caf::infinite, append_atom::value, uint64_t{7}, message("alice", big));
    run();
    h.receive([&](append_result& r) { accepted = r.msg.id; },
              [&](caf::error& err) { failure = to_protocol_error(err); });
  }
  REQUIRE(failure == protocol::error_code::store_unavailable);
  CHECK(accepted > 2);
  // Everything acknowledged is on disk; the refused message is not.
  CHECK(on_disk().size() == accepted);
  advance(1min);  // retention deletes all but the newest two
  CHECK(append(message("alice", big)).msg.id == accepted + 1);
}

TEST_CASE_FIXTURE(store_fixture, "a file that is not a database is reported clearly, and the store recovers once it is replaced") {
  {
    std::ofstream garbage{cfg.path, std::ios::binary};
    garbage << std::string(8192, 'Z');
  }
  try {
    storage::message_db db{make_db_options(cfg)};
    FAIL("opening a garbage file succeeded");
  } catch (const storage::db_error& err) {
    CHECK(std::string{err.what()}.find("not a database") != std::string::npos);
  }
  start();
  CHECK(to_protocol_error(ask_error<room_snapshot>(st, open_atom::value, std::string{"general"},
                                                   uint32_t{10}, true))
        == protocol::error_code::store_unavailable);
  CHECK(append_error(message("alice", "x")) == protocol::error_code::store_unavailable);
  fs::remove(cfg.path);
  CHECK(append(message("alice", "x")).msg.id == 1);
}

TEST_CASE_FIXTURE(store_fixture, "a missing database and directory are created on first use") {
  cfg.path = (dir.path / "nested" / "deeper" / "chat.db").string();
  start();
  CHECK(append(message("alice", "x")).msg.id == 1);
  CHECK(fs::exists(cfg.path));
}

TEST_CASE_FIXTURE(store_fixture, "stopping the store commits what is pending first") {
  cfg.commit_window = 10s;
  start();
  self->send(st, append_atom::value, uint64_t{7}, message("alice", "last words"));
  run();
  CHECK(on_disk().empty());
  caf::anon_send_exit(st, caf::exit_reason::user_shutdown);
  run();
  REQUIRE(on_disk().size() == 1);
  CHECK(on_disk()[0].text == "last words");
}
