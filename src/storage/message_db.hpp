#pragma once

// The SQLite message database: every line of SQL in Parley lives in message_db.cpp. This is a plain
// class, not an actor; the store actor (actors/store.hpp) owns one and is its only user.
//
// Schema: `rooms` (name, epoch, last id), `messages` (room, id, epoch, sender, display name, text,
// ts, cid, deleted), `restrictions` (bans and mutes in force, per room name or server-wide) and
// `moderation_log` (the audit log of every moderation action), plus a `chat` view that joins rooms
// and messages for people inspecting the file with the sqlite3 CLI. Files written by earlier
// versions are migrated when opened (PRAGMA user_version says how far a file has come).

#include "protocol/messages.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

struct sqlite3;
struct sqlite3_stmt;

namespace parley::storage {

/// A failed SQLite call: the message says what was being done and SQLite's own words.
class db_error : public std::runtime_error {
public:
  db_error(const std::string& what, int code) : std::runtime_error(what), code_(code) {}

  /// SQLite's primary result code (SQLITE_BUSY, SQLITE_FULL, ...).
  int code() const noexcept { return code_; }

  /// True if the connection itself is suspect (corrupt file, I/O error) and should be reopened.
  bool connection_broken() const noexcept;

private:
  int code_;
};

struct db_options {
  std::string path;                  ///< file name; ":memory:" for tests
  bool synchronous_full = true;      ///< fsync every commit (power-loss safe); else only checkpoints
  std::chrono::milliseconds busy_timeout{1000};  ///< wait this long for another writer's lock
  uint64_t max_bytes = 0;            ///< cap the file size (SQLITE_FULL past it); 0: no cap
};

/// A room as the database knows it.
struct room_row {
  int64_t key = 0;      ///< rowid, used in the messages table
  uint64_t epoch = 0;
  uint64_t last_id = 0; ///< highest id ever committed in this room (0: none yet)
};

/// One page of messages, oldest first.
struct message_page {
  std::vector<protocol::chat_message> messages;
  bool more = false;  ///< messages exist beyond the page (older for `before`, newer for `after`)
};

/// Which kind of restriction a row of the `restrictions` table is.
enum class restriction_kind : uint8_t { ban, mute };

/// A ban or mute in force, as the database stores it (room and kind are what it was asked for).
struct restriction_row {
  std::string user;
  std::optional<int64_t> until;  ///< ms since the Unix epoch; nullopt: for good
};

/// One line of the moderation audit log: who did what to whom, where, when and why.
struct moderation_entry {
  int64_t seq = 0;        ///< its place in the log; assigned by the database when recorded
  int64_t ts = 0;         ///< when it was done, ms since the Unix epoch
  std::string actor;      ///< the moderator's user id
  protocol::moderation_action action = protocol::moderation_action::kick;
  std::string room;       ///< empty: server-wide
  std::string target;     ///< the user acted on; empty for a delete
  std::optional<uint64_t> message_id;  ///< delete: the message (its text is not kept)
  std::optional<int64_t> until;        ///< ban and mute: ms since the Unix epoch; nullopt: for good
  std::string reason;
};

class message_db {
public:
  /// Opens (creating if missing, with its directory) and prepares the database. Throws db_error
  /// with a message a person can act on, e.g. for a file that is not a SQLite database.
  explicit message_db(const db_options& opts);
  ~message_db();

  message_db(const message_db&) = delete;
  message_db& operator=(const message_db&) = delete;

  // -- rooms ----------------------------------------------------------------------------------------

  std::optional<room_row> find_room(const std::string& name);
  room_row create_room(const std::string& name, uint64_t epoch);
  void set_last_id(int64_t room_key, uint64_t last_id);
  std::vector<std::pair<std::string, room_row>> all_rooms();
  /// How many rooms are stored.
  std::size_t count_rooms();
  /// Deletes rooms that never got a message (last_id 0, no messages); answers how many.
  std::size_t delete_empty_rooms();

  // -- messages -------------------------------------------------------------------------------------

  void insert_message(int64_t room_key, uint64_t epoch, const protocol::chat_message& msg);
  /// The message a sender posted with this client id, if the database still has it.
  std::optional<protocol::chat_message> find_by_cid(int64_t room_key, const std::string& room,
                                                    const std::string& sender, const std::string& cid);
  /// Up to `limit` messages with id < before (0: the newest), oldest first.
  message_page before(int64_t room_key, const std::string& room, uint64_t before, uint32_t limit);
  /// Up to `limit` messages with id > after, oldest first.
  message_page after(int64_t room_key, const std::string& room, uint64_t after, uint32_t limit);

  /// Turns a message into a tombstone: its text is cleared for good and it is marked deleted. False
  /// if the room has no message with this id.
  bool tombstone(int64_t room_key, uint64_t id);

  // -- moderation -----------------------------------------------------------------------------------

  /// Appends an entry to the audit log (its `seq` is ignored) and answers the seq it got.
  int64_t record_moderation(const moderation_entry& entry);
  /// Up to `limit` audit log entries with seq > after_seq, oldest first.
  std::vector<moderation_entry> moderation_log(int64_t after_seq, uint32_t limit);
  /// Bans or mutes a user in a room ("" : server-wide) until then (nullopt: for good); replaces
  /// the until of a restriction of the same kind already there.
  void set_restriction(const std::string& room, const std::string& user, restriction_kind kind,
                       std::optional<int64_t> until);
  /// Lifts a ban or mute; false if there was none.
  bool clear_restriction(const std::string& room, const std::string& user, restriction_kind kind);
  /// The restrictions of one kind in a room ("" : server-wide) still in force at `now_ms`, by user.
  std::vector<restriction_row> restrictions_of(const std::string& room, restriction_kind kind,
                                               int64_t now_ms);
  /// Deletes restrictions that ended before `now_ms` (they are never returned anyway); answers how
  /// many.
  std::size_t delete_expired_restrictions(int64_t now_ms);

  // -- transactions ---------------------------------------------------------------------------------

  void begin();     ///< BEGIN IMMEDIATE: takes the write lock now, so a busy database fails early
  void commit();
  void rollback() noexcept;

  // -- retention ------------------------------------------------------------------------------------

  /// Deletes at most `max_rows` of a room's messages with id <= up_to_id; true if it deleted that
  /// many, so that another step may find more.
  bool prune_up_to(int64_t room_key, uint64_t up_to_id, std::size_t max_rows);
  /// The first id of a room's messages from `since_ms` on; nullopt if all are older (or none exist).
  /// A message's time is when the room received it, so ids and times grow together in a room.
  std::optional<uint64_t> first_id_since(int64_t room_key, int64_t since_ms);

private:
  class statement;

  void exec(const char* sql, const char* doing);
  void migrate();
  statement& prepared(int which);

  sqlite3* db_ = nullptr;
  std::vector<std::unique_ptr<statement>> statements_;
};

} // namespace parley::storage
