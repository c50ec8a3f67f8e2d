// Moderation in the store: bans and mutes in force (per room and server-wide), tombstones for
// deleted messages, the audit log, display names, and files written before any of it existed.

#include "store_fixture.hpp"

#include <sqlite3.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

using namespace parley;
using namespace parley::testing;
using protocol::moderation_action;

namespace {

int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

constexpr int64_t one_hour_ms = 3'600'000;

/// A moderation action by "mod" at time 5000, for `reason` "spam".
moderation_record action(moderation_action what, const std::string& room, const std::string& user,
                         std::optional<int64_t> until = std::nullopt) {
  moderation_record rec;
  rec.action = what;
  rec.room = room;
  rec.user = user;
  rec.by = "mod";
  rec.until = until;
  rec.reason = "spam";
  rec.ts = 5000;
  return rec;
}

moderation_record delete_of(const std::string& room, uint64_t id) {
  auto rec = action(moderation_action::delete_message, room, "");
  rec.message_id = id;
  return rec;
}

struct moderation_fixture : store_fixture {
  void moderate(const moderation_record& rec) {
    ask<ok_atom>(st, moderate_atom::value, rec);
  }

  protocol::error_code moderate_error(const moderation_record& rec) {
    return to_protocol_error(ask_error<ok_atom>(st, moderate_atom::value, rec));
  }

  std::vector<restriction> server_bans() {
    return ask<std::vector<restriction>>(st, bans_atom::value);
  }

  history_page history(const std::string& room = "general") {
    return ask<history_page>(st, history_atom::value, room, uint64_t{0}, uint32_t{100});
  }

  history_page recovery(const std::string& room = "general") {
    return ask<history_page>(st, after_atom::value, room, uint64_t{0}, uint32_t{100});
  }

  /// The audit log as another connection reads it from the file.
  std::vector<storage::moderation_entry> log_on_disk() {
    storage::message_db db{make_db_options(cfg)};
    return db.moderation_log(0, 1000);
  }

  protocol::chat_message named(const std::string& from, const std::string& name,
                               const std::string& text, const std::string& cid = "") {
    auto msg = message(from, text, cid);
    msg.name = name;
    return msg;
  }
};

std::vector<std::string> users(const std::vector<restriction>& rs) {
  std::vector<std::string> out;
  for (auto& r : rs)
    out.push_back(r.user);
  return out;
}

/// Checks that a page holds messages 1..3 of which 2 is a tombstone.
void check_tombstone(const std::vector<protocol::chat_message>& messages) {
  REQUIRE(messages.size() == 3);
  CHECK(ids(messages) == std::vector<uint64_t>{1, 2, 3});
  CHECK_FALSE(messages[0].deleted);
  CHECK(messages[0].text == "one");
  CHECK(messages[1].deleted);
  CHECK(messages[1].text.empty());
  CHECK(messages[1].from == "bob");  // who posted it stays: clients show "deleted message" in place
  CHECK_FALSE(messages[2].deleted);
  CHECK(messages[2].text == "three");
}

} // namespace

TEST_CASE_FIXTURE(moderation_fixture, "bans and mutes appear in the next open's snapshot with their until, server-wide bans in bans") {
  start();
  auto epoch = open().epoch;
  append(message("alice", "hi"), epoch);
  auto until = now_ms() + one_hour_ms;
  moderate(action(moderation_action::ban, "general", "alice", until));
  moderate(action(moderation_action::mute, "general", "bob"));
  moderate(action(moderation_action::ban, "", "carol", until));
  moderate(action(moderation_action::ban, "elsewhere", "dave"));

  auto snapshot = open();
  REQUIRE(snapshot.bans.size() == 1);
  CHECK(snapshot.bans[0].user == "alice");
  CHECK(snapshot.bans[0].until == until);
  REQUIRE(snapshot.mutes.size() == 1);
  CHECK(snapshot.mutes[0].user == "bob");
  CHECK_FALSE(snapshot.mutes[0].until);  // for good

  auto bans = server_bans();
  REQUIRE(bans.size() == 1);
  CHECK(bans[0].user == "carol");
  CHECK(bans[0].until == until);

  // A restriction belongs to its room only, and holds across a store restart.
  restart();
  CHECK(users(open().bans) == std::vector<std::string>{"alice"});
  CHECK(users(open("elsewhere").bans) == std::vector<std::string>{"dave"});
  CHECK(users(server_bans()) == std::vector<std::string>{"carol"});
}

TEST_CASE_FIXTURE(moderation_fixture, "a room without a row gets the bans recorded for its name, opened before or after them") {
  start();
  auto unwritten = open("fresh");
  CHECK(unwritten.bans.empty());
  moderate(action(moderation_action::ban, "fresh", "alice"));
  moderate(action(moderation_action::mute, "never-opened", "bob"));
  auto again = open("fresh");
  CHECK(again.epoch == unwritten.epoch);
  CHECK(users(again.bans) == std::vector<std::string>{"alice"});
  auto created = open("never-opened");
  CHECK(created.created);
  CHECK(users(created.mutes) == std::vector<std::string>{"bob"});
  CHECK(rooms_on_disk() == 0);  // moderation writes no room rows
}

TEST_CASE_FIXTURE(moderation_fixture, "bans and mutes that have ended are not in force") {
  start();
  auto ended = now_ms() - 1;
  moderate(action(moderation_action::ban, "general", "alice", ended));
  moderate(action(moderation_action::mute, "general", "bob", ended));
  moderate(action(moderation_action::ban, "", "carol", ended));
  moderate(action(moderation_action::mute, "general", "erin", now_ms() + one_hour_ms));
  auto snapshot = open();
  CHECK(snapshot.bans.empty());
  CHECK(users(snapshot.mutes) == std::vector<std::string>{"erin"});
  CHECK(server_bans().empty());
}

TEST_CASE_FIXTURE(moderation_fixture, "a restriction past its until is not read even while its row is still in the file") {
  {
    // Rows as a store leaves them when nothing has pruned them since they ended.
    storage::message_db db{make_db_options(cfg)};
    db.set_restriction("general", "alice", storage::restriction_kind::ban, now_ms() - 1);
    db.set_restriction("general", "bob", storage::restriction_kind::mute, now_ms() - 1);
    db.set_restriction("", "carol", storage::restriction_kind::ban, now_ms() - 1);
    db.set_restriction("", "dave", storage::restriction_kind::ban, now_ms() + one_hour_ms);
  }
  start();
  auto snapshot = open();
  CHECK(snapshot.bans.empty());
  CHECK(snapshot.mutes.empty());
  CHECK(users(server_bans()) == std::vector<std::string>{"dave"});
  storage::message_db db{make_db_options(cfg)};
  CHECK(db.delete_expired_restrictions(now_ms()) == 3);
}

TEST_CASE_FIXTURE(moderation_fixture, "unban and unmute lift a restriction, and a new ban replaces the until of the one in force") {
  start();
  auto until = now_ms() + one_hour_ms;
  moderate(action(moderation_action::ban, "general", "alice", until));
  moderate(action(moderation_action::ban, "general", "alice"));  // now for good
  auto snapshot = open();
  REQUIRE(snapshot.bans.size() == 1);
  CHECK_FALSE(snapshot.bans[0].until);

  moderate(action(moderation_action::mute, "general", "bob", until));
  moderate(action(moderation_action::ban, "", "carol"));
  moderate(action(moderation_action::unban, "general", "alice"));
  moderate(action(moderation_action::unmute, "general", "bob"));
  moderate(action(moderation_action::unban, "", "carol"));
  moderate(action(moderation_action::unban, "general", "nobody"));  // nothing to lift: still ok
  snapshot = open();
  CHECK(snapshot.bans.empty());
  CHECK(snapshot.mutes.empty());
  CHECK(server_bans().empty());
}

TEST_CASE_FIXTURE(moderation_fixture, "a deleted message is a tombstone in history, recovery and the snapshot, also after a restart") {
  start();
  append(message("alice", "one"));
  append(message("bob", "two"));
  append(message("alice", "three"));
  moderate(delete_of("general", 2));

  check_tombstone(history().messages);
  check_tombstone(recovery().messages);
  check_tombstone(open().recent);
  // The text is gone from the file, not only hidden.
  check_tombstone(on_disk());

  restart();  // a new store actor on the same file
  check_tombstone(history().messages);
  check_tombstone(recovery().messages);
  check_tombstone(open().recent);
  // Deleting it again changes nothing, and is logged again.
  moderate(delete_of("general", 2));
  check_tombstone(history().messages);
  CHECK(log_on_disk().size() == 2);
}

TEST_CASE_FIXTURE(moderation_fixture, "deleting a message the room never had answers not_found and logs nothing") {
  start();
  append(message("alice", "one"));
  open("fresh");  // in memory, no row
  CHECK(moderate_error(delete_of("general", 2)) == protocol::error_code::not_found);
  CHECK(moderate_error(delete_of("fresh", 1)) == protocol::error_code::not_found);
  CHECK(moderate_error(delete_of("unknown", 1)) == protocol::error_code::not_found);
  CHECK(log_on_disk().empty());
  CHECK(history().messages.at(0).text == "one");
}

TEST_CASE_FIXTURE(moderation_fixture, "a delete commits the pending group first, so it finds a message accepted in the same window") {
  cfg.commit_window = std::chrono::seconds{10};
  start();
  auto posted = self->request(st, caf::infinite, append_atom::value, uint64_t{7}, message("alice", "oops"));
  moderate(delete_of("general", 1));
  bool answered = false;
  posted.receive([&](append_result& r) { answered = r.msg.id == 1; },
                 [](caf::error&) { FAIL("append failed"); });
  CHECK(answered);
  auto disk = on_disk();
  REQUIRE(disk.size() == 1);
  CHECK(disk[0].deleted);
  CHECK(disk[0].text.empty());
}

TEST_CASE_FIXTURE(moderation_fixture, "every moderation action lands in the audit log with who, what, where, until, why and when") {
  start();
  append(message("alice", "one"));
  auto until = now_ms() + one_hour_ms;
  moderate(action(moderation_action::kick, "general", "alice"));
  moderate(action(moderation_action::ban, "", "bob", until));
  moderate(action(moderation_action::unban, "", "bob"));
  moderate(action(moderation_action::mute, "general", "carol", until));
  moderate(action(moderation_action::unmute, "general", "carol"));
  auto del = delete_of("general", 1);
  del.by = "admin";
  del.reason = "rule 3";
  del.ts = 6000;
  moderate(del);

  auto log = log_on_disk();
  REQUIRE(log.size() == 6);
  std::vector<moderation_action> actions;
  for (auto& e : log)
    actions.push_back(e.action);
  CHECK(actions == std::vector<moderation_action>{moderation_action::kick, moderation_action::ban,
                                                  moderation_action::unban, moderation_action::mute,
                                                  moderation_action::unmute,
                                                  moderation_action::delete_message});
  for (std::size_t i = 1; i < log.size(); ++i)
    CHECK(log[i].seq > log[i - 1].seq);

  CHECK(log[0].actor == "mod");
  CHECK(log[0].room == "general");
  CHECK(log[0].target == "alice");
  CHECK(log[0].reason == "spam");
  CHECK(log[0].ts == 5000);
  CHECK_FALSE(log[0].until);
  CHECK_FALSE(log[0].message_id);

  CHECK(log[1].room.empty());  // server-wide
  CHECK(log[1].target == "bob");
  CHECK(log[1].until == until);
  CHECK(log[3].until == until);
  CHECK(log[3].target == "carol");

  CHECK(log[5].actor == "admin");
  CHECK(log[5].room == "general");
  CHECK(log[5].target.empty());
  CHECK(log[5].message_id == uint64_t{1});
  CHECK(log[5].reason == "rule 3");
  CHECK(log[5].ts == 6000);

  // Paging the log from a seq on.
  storage::message_db db{make_db_options(cfg)};
  auto tail = db.moderation_log(log[3].seq, 10);
  REQUIRE(tail.size() == 2);
  CHECK(tail[0].seq == log[4].seq);
}

TEST_CASE_FIXTURE(moderation_fixture, "a moderation action on a locked database answers store_unavailable and leaves nothing behind") {
  start();
  {
    storage::message_db other{make_db_options(cfg)};
    other.begin();
    CHECK(moderate_error(action(moderation_action::ban, "", "alice")) ==
          protocol::error_code::store_unavailable);
    other.rollback();
  }
  CHECK(log_on_disk().empty());
  CHECK(server_bans().empty());
  moderate(action(moderation_action::ban, "", "alice"));
  CHECK(users(server_bans()) == std::vector<std::string>{"alice"});
}

TEST_CASE_FIXTURE(moderation_fixture, "a sender's display name round-trips through append and every read") {
  start();
  auto first = append(named("alice", "Alice Liddell", "hello", "c1"));
  CHECK(first.msg.name == "Alice Liddell");
  append(message("bob", "no name"));
  auto check_names = [](const std::vector<protocol::chat_message>& messages) {
    REQUIRE(messages.size() == 2);
    CHECK(messages[0].name == "Alice Liddell");
    CHECK(messages[1].name.empty());
  };
  check_names(history().messages);
  check_names(recovery().messages);
  check_names(open().recent);
  check_names(on_disk());
  restart();
  check_names(history().messages);
  // A retried cid answers the stored original, name included.
  auto retry = append(named("alice", "Alice Liddell", "hello", "c1"));
  CHECK(retry.duplicate);
  CHECK(retry.msg.name == "Alice Liddell");
}

namespace {

/// The schema Parley wrote before moderation (schema version 0), as it was.
constexpr const char* schema_v0 = R"sql(
CREATE TABLE rooms (
  key     INTEGER PRIMARY KEY,
  name    TEXT NOT NULL UNIQUE,
  epoch   INTEGER NOT NULL,
  last_id INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE messages (
  seq    INTEGER PRIMARY KEY,
  room   INTEGER NOT NULL REFERENCES rooms(key),
  id     INTEGER NOT NULL,
  epoch  INTEGER NOT NULL,
  sender TEXT NOT NULL,
  text   TEXT NOT NULL,
  ts     INTEGER NOT NULL,
  cid    TEXT
);
CREATE UNIQUE INDEX messages_by_room ON messages (room, id);
CREATE UNIQUE INDEX messages_by_cid ON messages (room, sender, cid) WHERE cid IS NOT NULL;
CREATE VIEW chat AS
  SELECT rooms.name AS room, messages.id, messages.epoch, messages.sender, messages.text,
         strftime('%Y-%m-%d %H:%M:%f', messages.ts / 1000.0, 'unixepoch') AS time, messages.cid
  FROM messages JOIN rooms ON rooms.key = messages.room;
PRAGMA journal_mode = WAL;
INSERT INTO rooms (key, name, epoch, last_id) VALUES (1, 'general', 42, 2);
INSERT INTO messages (room, id, epoch, sender, text, ts, cid) VALUES (1, 1, 42, 'alice', 'old one', 1000, 'c1');
INSERT INTO messages (room, id, epoch, sender, text, ts, cid) VALUES (1, 2, 42, 'bob', 'old two', 2000, NULL);
)sql";

/// Runs SQL on a file with the plain SQLite API, as an older Parley (or the sqlite3 CLI) would.
void run_sql(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  std::string message = err ? err : "";
  sqlite3_free(err);
  sqlite3_close(db);
  REQUIRE_MESSAGE(rc == SQLITE_OK, message);
}

/// The single integer a query answers, read with the plain SQLite API.
int64_t query_int(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  int64_t value = -1;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK
      && sqlite3_step(stmt) == SQLITE_ROW)
    value = sqlite3_column_int64(stmt, 0);
  std::string err = sqlite3_errmsg(db);
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  CHECK_MESSAGE(value != -1, sql << ": " << err);
  return value;
}

} // namespace

TEST_CASE_FIXTURE(moderation_fixture, "a database written by the previous schema opens, migrates and keeps working") {
  run_sql(cfg.path, schema_v0);
  CHECK(query_int(cfg.path, "PRAGMA user_version") == 0);
  start();

  auto snapshot = open();
  CHECK(snapshot.epoch == 42);
  CHECK(snapshot.last_id == 2);
  REQUIRE(snapshot.recent.size() == 2);
  CHECK(snapshot.recent[0].text == "old one");
  CHECK(snapshot.recent[0].name.empty());
  CHECK_FALSE(snapshot.recent[0].deleted);
  CHECK(snapshot.bans.empty());

  // Old rows work with the new features: duplicates, deletes, names, bans.
  CHECK(append(message("alice", "old one", "c1")).duplicate);
  auto next = append(named("carol", "Carol", "new three"));
  CHECK(next.msg.id == 3);
  moderate(delete_of("general", 1));
  moderate(action(moderation_action::ban, "general", "bob"));
  restart();  // opening a migrated file again changes nothing
  auto page = history().messages;
  REQUIRE(page.size() == 3);
  CHECK(page[0].deleted);
  CHECK(page[0].text.empty());
  CHECK(page[1].text == "old two");
  CHECK(page[2].name == "Carol");
  CHECK(users(open().bans) == std::vector<std::string>{"bob"});
  CHECK(log_on_disk().size() == 2);

  CHECK(query_int(cfg.path, "PRAGMA user_version") == 1);
  // The chat view shows the new columns to people reading the file.
  CHECK(query_int(cfg.path, "SELECT count(*) FROM chat WHERE deleted = 1") == 1);
  CHECK(query_int(cfg.path, "SELECT count(*) FROM chat WHERE name = 'Carol'") == 1);
}

TEST_CASE("a new database is created at the current schema version with the chat view") {
  temp_dir dir;
  auto path = (dir.path / "new.db").string();
  {
    storage::db_options opts;
    opts.path = path;
    storage::message_db db{opts};
  }
  CHECK(query_int(path, "PRAGMA user_version") == 1);
  CHECK(query_int(path, "SELECT count(*) FROM pragma_table_info('chat') WHERE name IN ('name', 'deleted')")
        == 2);
}
