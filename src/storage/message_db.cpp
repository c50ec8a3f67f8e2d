#include "storage/message_db.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <filesystem>

namespace parley::storage {

namespace {

constexpr const char* schema = R"sql(
CREATE TABLE IF NOT EXISTS rooms (
  key     INTEGER PRIMARY KEY,
  name    TEXT NOT NULL UNIQUE,
  epoch   INTEGER NOT NULL,
  last_id INTEGER NOT NULL DEFAULT 0
);
-- Rows are kept in commit order (seq), so a commit writes its messages onto the newest pages
-- whichever rooms they belong to; rooms are found through messages_by_room. (Keyed by (room, id)
-- instead, a commit touching many rooms wrote a data page per room: bench/README.md.)
CREATE TABLE IF NOT EXISTS messages (
  seq    INTEGER PRIMARY KEY,
  room   INTEGER NOT NULL REFERENCES rooms(key),
  id     INTEGER NOT NULL,
  epoch  INTEGER NOT NULL,
  sender TEXT NOT NULL,
  text   TEXT NOT NULL,
  ts     INTEGER NOT NULL,
  cid    TEXT,
  -- Added by schema version 1 (files of older versions get them from migrate()):
  name    TEXT,                       -- the sender's display name; NULL: none
  deleted INTEGER NOT NULL DEFAULT 0  -- 1: a moderator deleted it, text is ''
);
CREATE UNIQUE INDEX IF NOT EXISTS messages_by_room ON messages (room, id);
CREATE UNIQUE INDEX IF NOT EXISTS messages_by_cid ON messages (room, sender, cid) WHERE cid IS NOT NULL;
-- Bans and mutes, keyed by room name rather than rooms.key: a room can be moderated before its
-- row is written (with its first message). Rows past their until are never read, only pruned.
CREATE TABLE IF NOT EXISTS restrictions (
  room  TEXT NOT NULL,  -- '': server-wide
  user  TEXT NOT NULL,
  kind  TEXT NOT NULL CHECK (kind IN ('ban', 'mute')),
  until INTEGER,        -- ms since the Unix epoch; NULL: for good
  PRIMARY KEY (room, user, kind)
) WITHOUT ROWID;
-- The audit log: every moderation action, in order. A delete keeps the message id, not its text.
CREATE TABLE IF NOT EXISTS moderation_log (
  seq        INTEGER PRIMARY KEY,
  ts         INTEGER NOT NULL,  -- ms since the Unix epoch
  actor      TEXT NOT NULL,     -- the moderator
  action     TEXT NOT NULL,     -- kick, ban, unban, mute, unmute, delete
  room       TEXT NOT NULL,     -- '': server-wide
  target     TEXT NOT NULL,     -- the user acted on; '' for delete
  message_id INTEGER,
  until      INTEGER,
  reason     TEXT NOT NULL
);
)sql";

/// The version migrate() brings a file to (PRAGMA user_version). 0: the schema before moderation.
constexpr int schema_version = 1;

// The view is replaced, not created if missing, when a file is migrated: an old file's view lacks
// the newer columns.
constexpr const char* chat_view = R"sql(
DROP VIEW IF EXISTS chat;
CREATE VIEW chat AS
  SELECT rooms.name AS room, messages.id, messages.epoch, messages.sender, messages.name,
         messages.text, messages.deleted,
         strftime('%Y-%m-%d %H:%M:%f', messages.ts / 1000.0, 'unixepoch') AS time, messages.cid
  FROM messages JOIN rooms ON rooms.key = messages.room;
)sql";

// One prepared statement per query, in this order.
enum query : int {
  q_find_room,
  q_create_room,
  q_set_last_id,
  q_all_rooms,
  q_insert_message,
  q_find_by_cid,
  q_before,
  q_after,
  q_begin,
  q_commit,
  q_rollback,
  q_prune_up_to,
  q_first_since,
  q_count_rooms,
  q_delete_empty_rooms,
  q_tombstone,
  q_record_moderation,
  q_moderation_log,
  q_set_restriction,
  q_clear_restriction,
  q_restrictions_of,
  q_delete_expired_restrictions,
  query_count,
};

constexpr const char* queries[query_count] = {
  "SELECT key, epoch, last_id FROM rooms WHERE name = ?1",
  "INSERT INTO rooms (name, epoch, last_id) VALUES (?1, ?2, 0)",
  "UPDATE rooms SET last_id = ?2 WHERE key = ?1",
  "SELECT name, key, epoch, last_id FROM rooms ORDER BY name",
  "INSERT INTO messages (room, id, epoch, sender, text, ts, cid, name)"
  " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
  // Every read of messages selects these columns in this order: read_message() depends on it.
  "SELECT id, sender, text, ts, cid, name, deleted FROM messages"
  " WHERE room = ?1 AND sender = ?2 AND cid = ?3",
  "SELECT id, sender, text, ts, cid, name, deleted FROM messages"
  " WHERE room = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3",
  "SELECT id, sender, text, ts, cid, name, deleted FROM messages"
  " WHERE room = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
  "BEGIN IMMEDIATE",
  "COMMIT",
  "ROLLBACK",
  "DELETE FROM messages WHERE room = ?1 AND id IN"
  " (SELECT id FROM messages WHERE room = ?1 AND id <= ?2 ORDER BY id LIMIT ?3)",
  // Ids grow with time within a room, so this stops at the first recent message.
  "SELECT id FROM messages WHERE room = ?1 AND ts >= ?2 ORDER BY id LIMIT 1",
  "SELECT count(*) FROM rooms",
  "DELETE FROM rooms WHERE last_id = 0 AND NOT EXISTS (SELECT 1 FROM messages WHERE room = rooms.key)",
  "UPDATE messages SET text = '', deleted = 1 WHERE room = ?1 AND id = ?2",
  "INSERT INTO moderation_log (ts, actor, action, room, target, message_id, until, reason)"
  " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
  "SELECT seq, ts, actor, action, room, target, message_id, until, reason FROM moderation_log"
  " WHERE seq > ?1 ORDER BY seq LIMIT ?2",
  // A new ban replaces the until of the one in force (a ban for good can become a timed one).
  "INSERT OR REPLACE INTO restrictions (room, user, kind, until) VALUES (?1, ?2, ?3, ?4)",
  "DELETE FROM restrictions WHERE room = ?1 AND user = ?2 AND kind = ?3",
  "SELECT user, until FROM restrictions"
  " WHERE room = ?1 AND kind = ?2 AND (until IS NULL OR until > ?3) ORDER BY user",
  "DELETE FROM restrictions WHERE until IS NOT NULL AND until <= ?1",
};

std::string describe(sqlite3* db, int rc, const char* doing) {
  std::string msg = doing;
  msg += ": ";
  msg += db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  return msg;
}

} // namespace

bool db_error::connection_broken() const noexcept {
  switch (code_) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_FULL:
    case SQLITE_READONLY:
    case SQLITE_CONSTRAINT:
      return false;  // the connection is fine; the fault is outside it and may clear
    default:
      return true;   // SQLITE_CORRUPT, SQLITE_IOERR, SQLITE_NOTADB, SQLITE_CANTOPEN, ...
  }
}

/// A prepared statement: bind, step, read columns, reset.
class message_db::statement {
public:
  statement(sqlite3* db, const char* sql) : db_(db) {
    if (int rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt_, nullptr);
        rc != SQLITE_OK)
      throw db_error(describe(db, rc, "preparing a query"), rc & 0xff);
  }

  ~statement() { sqlite3_finalize(stmt_); }

  statement& bind(int index, int64_t value) {
    check(sqlite3_bind_int64(stmt_, index, value), "binding a number");
    return *this;
  }

  statement& bind(int index, uint64_t value) { return bind(index, static_cast<int64_t>(value)); }

  statement& bind(int index, const std::string& value) {
    check(sqlite3_bind_text(stmt_, index, value.data(), static_cast<int>(value.size()), SQLITE_STATIC),
          "binding a string");
    return *this;
  }

  /// Binds a string with static storage (a literal), which SQLite need not copy.
  statement& bind(int index, const char* value) {
    check(sqlite3_bind_text(stmt_, index, value, -1, SQLITE_STATIC), "binding a string");
    return *this;
  }

  statement& bind_null(int index) {
    check(sqlite3_bind_null(stmt_, index), "binding null");
    return *this;
  }

  /// Binds a value, or NULL for nullopt.
  template <class T>
  statement& bind(int index, const std::optional<T>& value) {
    return value ? bind(index, *value) : bind_null(index);
  }

  /// Steps once: true while there is a row to read, false when done.
  bool step(const char* doing) {
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW)
      return true;
    if (rc == SQLITE_DONE)
      return false;
    auto err = db_error(describe(db_, rc, doing), rc & 0xff);
    reset();
    throw err;
  }

  /// Runs a statement that returns no rows.
  void run(const char* doing) {
    step(doing);
    reset();
  }

  int64_t integer(int col) const { return sqlite3_column_int64(stmt_, col); }

  std::optional<int64_t> nullable_integer(int col) const {
    if (sqlite3_column_type(stmt_, col) == SQLITE_NULL)
      return std::nullopt;
    return integer(col);
  }

  std::string text(int col) const {
    auto p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
    return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col))) : std::string{};
  }

  void reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }

private:
  void check(int rc, const char* doing) {
    if (rc != SQLITE_OK)
      throw db_error(describe(db_, rc, doing), rc & 0xff);
  }

  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
};

message_db::message_db(const db_options& opts) {
  if (opts.path != ":memory:") {
    auto dir = std::filesystem::path(opts.path).parent_path();
    std::error_code ec;
    if (!dir.empty())
      std::filesystem::create_directories(dir, ec);
    if (ec)
      throw db_error("cannot create the directory " + dir.string() + " for the database: " + ec.message(),
                     SQLITE_CANTOPEN);
  }
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
  if (int rc = sqlite3_open_v2(opts.path.c_str(), &db_, flags, nullptr); rc != SQLITE_OK) {
    auto msg = describe(db_, rc, ("cannot open the database " + opts.path).c_str());
    sqlite3_close(db_);
    db_ = nullptr;
    throw db_error(msg, rc & 0xff);
  }
  try {
    sqlite3_extended_result_codes(db_, 1);
    sqlite3_busy_timeout(db_, static_cast<int>(opts.busy_timeout.count()));
    // The first statement reads the header: a file that is not a database fails right here.
    exec("PRAGMA journal_mode = WAL", "switching to WAL mode (is this file a SQLite database?)");
    exec(opts.synchronous_full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL",
         "setting the sync mode");
    exec("PRAGMA foreign_keys = ON", "enabling foreign keys");
    if (opts.max_bytes > 0) {
      // max_page_count is in pages; SQLite answers SQLITE_FULL once the file would grow past it.
      // SQLite's default page size is 4096 bytes.
      auto pages = std::max<uint64_t>(opts.max_bytes / 4096, 16);
      exec(("PRAGMA max_page_count = " + std::to_string(pages)).c_str(), "capping the database size");
    }
    exec(schema, "creating the schema");
    migrate();
    for (int i = 0; i < query_count; ++i)
      statements_.push_back(std::make_unique<statement>(db_, queries[i]));
  } catch (...) {
    statements_.clear();
    sqlite3_close(db_);
    db_ = nullptr;
    throw;
  }
}

message_db::~message_db() {
  statements_.clear();
  // Closing the last connection checkpoints the WAL into the main file.
  sqlite3_close(db_);
}

void message_db::exec(const char* sql, const char* doing) {
  char* errmsg = nullptr;
  int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &errmsg);
  if (rc != SQLITE_OK) {
    std::string msg = std::string{doing} + ": " + (errmsg ? errmsg : sqlite3_errstr(rc));
    sqlite3_free(errmsg);
    throw db_error(msg, rc & 0xff);
  }
}

void message_db::migrate() {
  auto version = [this] {
    statement q{db_, "PRAGMA user_version"};
    q.step("reading the schema version");
    return q.integer(0);
  };
  if (version() >= schema_version)
    return;  // the common case: no write lock taken
  exec("BEGIN IMMEDIATE", "migrating the schema");
  try {
    // Another connection may have migrated the file while this one waited for the lock.
    if (version() < schema_version) {
      bool has_name = false;
      bool has_deleted = false;
      {
        statement q{db_, "SELECT name FROM pragma_table_info('messages')"};
        while (q.step("migrating the schema")) {
          auto column = q.text(0);
          has_name |= column == "name";
          has_deleted |= column == "deleted";
        }
      }
      // Existing messages get no display name and are not deleted.
      if (!has_name)
        exec("ALTER TABLE messages ADD COLUMN name TEXT", "migrating the schema");
      if (!has_deleted)
        exec("ALTER TABLE messages ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0",
             "migrating the schema");
      exec(chat_view, "migrating the schema");
      exec(("PRAGMA user_version = " + std::to_string(schema_version)).c_str(),
           "migrating the schema");
    }
    exec("COMMIT", "migrating the schema");
  } catch (...) {
    if (!sqlite3_get_autocommit(db_))
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

message_db::statement& message_db::prepared(int which) {
  return *statements_[static_cast<std::size_t>(which)];
}

// -- rooms ------------------------------------------------------------------------------------------

std::optional<room_row> message_db::find_room(const std::string& name) {
  auto& q = prepared(q_find_room).bind(1, name);
  std::optional<room_row> row;
  if (q.step("looking up a room"))
    row = room_row{q.integer(0), static_cast<uint64_t>(q.integer(1)), static_cast<uint64_t>(q.integer(2))};
  q.reset();
  return row;
}

room_row message_db::create_room(const std::string& name, uint64_t epoch) {
  prepared(q_create_room).bind(1, name).bind(2, epoch).run("creating a room");
  return room_row{sqlite3_last_insert_rowid(db_), epoch, 0};
}

void message_db::set_last_id(int64_t room_key, uint64_t last_id) {
  prepared(q_set_last_id).bind(1, room_key).bind(2, last_id).run("updating a room's last id");
}

std::vector<std::pair<std::string, room_row>> message_db::all_rooms() {
  auto& q = prepared(q_all_rooms);
  std::vector<std::pair<std::string, room_row>> rooms;
  while (q.step("listing rooms"))
    rooms.emplace_back(q.text(0), room_row{q.integer(1), static_cast<uint64_t>(q.integer(2)),
                                           static_cast<uint64_t>(q.integer(3))});
  q.reset();
  return rooms;
}

std::size_t message_db::count_rooms() {
  auto& q = prepared(q_count_rooms);
  std::size_t n = 0;
  if (q.step("counting rooms"))
    n = static_cast<std::size_t>(q.integer(0));
  q.reset();
  return n;
}

std::size_t message_db::delete_empty_rooms() {
  prepared(q_delete_empty_rooms).run("deleting rooms without messages");
  return static_cast<std::size_t>(sqlite3_changes(db_));
}

// -- messages ---------------------------------------------------------------------------------------

namespace {

template <class Statement>
protocol::chat_message read_message(const Statement& q, const std::string& room) {
  return protocol::chat_message{room,      static_cast<uint64_t>(q.integer(0)),
                                q.text(1), q.text(2),
                                q.integer(3), q.text(4),
                                q.text(5), q.integer(6) != 0};
}

} // namespace

void message_db::insert_message(int64_t room_key, uint64_t epoch, const protocol::chat_message& msg) {
  auto& q = prepared(q_insert_message);
  q.bind(1, room_key).bind(2, msg.id).bind(3, epoch).bind(4, msg.from).bind(5, msg.text).bind(6, msg.ts);
  if (msg.cid.empty())
    q.bind_null(7);
  else
    q.bind(7, msg.cid);
  if (msg.name.empty())
    q.bind_null(8);
  else
    q.bind(8, msg.name);
  q.run("storing a message");
}

std::optional<protocol::chat_message> message_db::find_by_cid(int64_t room_key, const std::string& room,
                                                              const std::string& sender,
                                                              const std::string& cid) {
  auto& q = prepared(q_find_by_cid).bind(1, room_key).bind(2, sender).bind(3, cid);
  std::optional<protocol::chat_message> found;
  if (q.step("looking up a client id"))
    found = read_message(q, room);
  q.reset();
  return found;
}

namespace {

/// Reads up to `limit` rows of a query that asked for limit + 1: the extra row only says "more".
template <class Statement>
message_page read_page(Statement& q, const std::string& room, uint32_t limit) {
  message_page page;
  while (q.step("reading messages"))
    page.messages.push_back(read_message(q, room));
  q.reset();
  if (page.messages.size() > limit) {
    page.more = true;
    page.messages.pop_back();
  }
  return page;
}

} // namespace

message_page message_db::before(int64_t room_key, const std::string& room, uint64_t before,
                                uint32_t limit) {
  auto upper = before == 0 ? static_cast<uint64_t>(INT64_MAX) : before;
  auto page = read_page(prepared(q_before).bind(1, room_key).bind(2, upper).bind(3, int64_t{limit} + 1),
                        room, limit);
  std::reverse(page.messages.begin(), page.messages.end());  // the query reads newest first
  return page;
}

message_page message_db::after(int64_t room_key, const std::string& room, uint64_t after,
                               uint32_t limit) {
  return read_page(prepared(q_after).bind(1, room_key).bind(2, after).bind(3, int64_t{limit} + 1),
                   room, limit);
}

bool message_db::tombstone(int64_t room_key, uint64_t id) {
  prepared(q_tombstone).bind(1, room_key).bind(2, id).run("deleting a message");
  return sqlite3_changes(db_) > 0;
}

// -- moderation -------------------------------------------------------------------------------------

namespace {

const char* kind_name(restriction_kind kind) {
  return kind == restriction_kind::ban ? "ban" : "mute";
}

/// The action a log row names, from its wire name (what to_string wrote).
protocol::moderation_action parse_action(const std::string& name) {
  if (auto action = protocol::moderation_action_named(name))
    return *action;
  // Written by a newer version: this one cannot say what it means.
  throw db_error("reading the moderation log: unknown action '" + name + "'", SQLITE_MISMATCH);
}

} // namespace

int64_t message_db::record_moderation(const moderation_entry& entry) {
  prepared(q_record_moderation)
    .bind(1, entry.ts)
    .bind(2, entry.actor)
    .bind(3, protocol::to_string(entry.action))
    .bind(4, entry.room)
    .bind(5, entry.target)
    .bind(6, entry.message_id)
    .bind(7, entry.until)
    .bind(8, entry.reason)
    .run("recording a moderation action");
  return sqlite3_last_insert_rowid(db_);
}

std::vector<moderation_entry> message_db::moderation_log(int64_t after_seq, uint32_t limit) {
  auto& q = prepared(q_moderation_log).bind(1, after_seq).bind(2, int64_t{limit});
  std::vector<moderation_entry> entries;
  try {
    while (q.step("reading the moderation log")) {
      moderation_entry e;
      e.seq = q.integer(0);
      e.ts = q.integer(1);
      e.actor = q.text(2);
      e.action = parse_action(q.text(3));
      e.room = q.text(4);
      e.target = q.text(5);
      if (auto id = q.nullable_integer(6))
        e.message_id = static_cast<uint64_t>(*id);
      e.until = q.nullable_integer(7);
      e.reason = q.text(8);
      entries.push_back(std::move(e));
    }
  } catch (...) {
    q.reset();
    throw;
  }
  q.reset();
  return entries;
}

void message_db::set_restriction(const std::string& room, const std::string& user,
                                 restriction_kind kind, std::optional<int64_t> until) {
  prepared(q_set_restriction)
    .bind(1, room)
    .bind(2, user)
    .bind(3, kind_name(kind))
    .bind(4, until)
    .run("recording a ban or mute");
}

bool message_db::clear_restriction(const std::string& room, const std::string& user,
                                   restriction_kind kind) {
  prepared(q_clear_restriction)
    .bind(1, room)
    .bind(2, user)
    .bind(3, kind_name(kind))
    .run("lifting a ban or mute");
  return sqlite3_changes(db_) > 0;
}

std::vector<restriction_row> message_db::restrictions_of(const std::string& room,
                                                         restriction_kind kind, int64_t now_ms) {
  auto& q = prepared(q_restrictions_of).bind(1, room).bind(2, kind_name(kind)).bind(3, now_ms);
  std::vector<restriction_row> rows;
  while (q.step("reading bans and mutes"))
    rows.push_back(restriction_row{q.text(0), q.nullable_integer(1)});
  q.reset();
  return rows;
}

std::size_t message_db::delete_expired_restrictions(int64_t now_ms) {
  prepared(q_delete_expired_restrictions).bind(1, now_ms).run("deleting expired bans and mutes");
  return static_cast<std::size_t>(sqlite3_changes(db_));
}

// -- transactions -----------------------------------------------------------------------------------

void message_db::begin() {
  prepared(q_begin).run("starting a transaction");
}

void message_db::commit() {
  prepared(q_commit).run("committing");
}

void message_db::rollback() noexcept {
  if (sqlite3_get_autocommit(db_))
    return;  // SQLite already rolled back (e.g. after SQLITE_FULL) or nothing was begun
  try {
    prepared(q_rollback).run("rolling back");
  } catch (const db_error&) {
    // Nothing more to do: the next BEGIN fails too and reports the fault.
  }
}

// -- retention --------------------------------------------------------------------------------------

bool message_db::prune_up_to(int64_t room_key, uint64_t up_to_id, std::size_t max_rows) {
  prepared(q_prune_up_to)
    .bind(1, room_key)
    .bind(2, up_to_id)
    .bind(3, static_cast<int64_t>(max_rows))
    .run("applying retention");
  return static_cast<std::size_t>(sqlite3_changes(db_)) == max_rows;
}

std::optional<uint64_t> message_db::first_id_since(int64_t room_key, int64_t since_ms) {
  auto& q = prepared(q_first_since).bind(1, room_key).bind(2, since_ms);
  std::optional<uint64_t> id;
  if (q.step("applying retention"))
    id = static_cast<uint64_t>(q.integer(0));
  q.reset();
  return id;
}

} // namespace parley::storage
