#pragma once

// What Parley keeps in Redis in cluster mode, in one place: the key names, the Lua scripts that
// change several keys at once, and the translation between Redis fields and Parley's records.
// docs/cluster.md, "Keys", lists the same for operators.

#include "actors/actors.hpp"
#include "cluster/redis_client.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace parley::cluster {

/// How long a (user, cid) pair is remembered for deduplicating retries.
constexpr int64_t cid_ttl_seconds = 24 * 60 * 60;

/// Redis key names, all under one prefix ("parley" by default).
class redis_keys {
public:
  explicit redis_keys(std::string prefix) : prefix_(std::move(prefix) + ":") {}

  /// Hash: epoch, last_id (the last id allocated; ids are gap-free from 1).
  std::string room(const std::string& name) const { return prefix_ + "room:" + name; }
  /// Stream: one entry per message, entry id "<message id>-0"; the order and the recovery log.
  std::string stream(const std::string& name) const { return prefix_ + "stream:" + name; }
  /// Set: ids of deleted messages (tombstones); the stream entries themselves never change.
  std::string deleted(const std::string& name) const { return prefix_ + "deleted:" + name; }
  /// String, expiring: the id a (user, cid) pair got, for deduplicating retries.
  std::string cid(const std::string& room_name, const std::string& user, const std::string& cid) const;
  /// Set: every room name (they count against max_rooms).
  std::string rooms() const { return prefix_ + "rooms"; }
  /// Hashes: user -> until (ms since the Unix epoch, or "" for good).
  std::string room_bans(const std::string& name) const { return prefix_ + "bans:" + name; }
  std::string room_mutes(const std::string& name) const { return prefix_ + "mutes:" + name; }
  std::string server_bans() const { return prefix_ + "server-bans"; }
  /// Stream: every moderation action, for the record.
  std::string audit() const { return prefix_ + "audit"; }
  /// Stream: what every node must act on at once (moderation, presence changes).
  std::string events() const { return prefix_ + "events"; }
  /// Hash, expiring: node incarnation -> its present users in the room, one per line.
  std::string presence(const std::string& name) const { return prefix_ + "presence:" + name; }
  /// Hash: node incarnation -> its last heartbeat (ms since the Unix epoch).
  std::string nodes() const { return prefix_ + "nodes"; }

private:
  std::string prefix_;
};

/// Lua scripts; each runs atomically in Redis.
namespace scripts {

/// KEYS: room hash, rooms set. ARGV: new epoch, may_create (1/0), max_rooms, room name.
/// Returns {status, epoch, last_id}: status 0 existing, 1 created; {-1} may not create; {-2} at the cap.
extern const char* const open_room;

/// KEYS: room hash, stream, cid key, rooms set. ARGV: epoch, from, text, ts, cid, name, max length,
/// room name, known (1 if the room has had messages as the caller knows it).
/// Returns {1, id} appended; {0, id, fields} a duplicate of (user, cid) (fields absent if trimmed);
/// {-1} the room's hash is gone although it had messages (Redis lost data).
extern const char* const append_message;

/// KEYS: stream, deleted set. ARGV: "XRANGE" or "XREVRANGE", start, end, count.
/// Returns {{entry id, fields, deleted (0/1)}, ...}.
extern const char* const read_messages;

} // namespace scripts

/// A message read back: from a stream entry's id ("<id>-0") and fields, and its deleted flag.
std::optional<protocol::chat_message> decode_message(const std::string& room, const std::string& entry_id,
                                                     const redis_reply& fields, bool deleted);
/// The same from an XRANGE/XREAD entry {id, fields}.
std::optional<protocol::chat_message> decode_message(const std::string& room, const redis_reply& entry,
                                                     bool deleted);

/// The stream entry id of message `id`, and the message id of a stream entry id.
std::string entry_id(uint64_t id);
std::optional<uint64_t> message_id(const std::string& entry);

/// True if stream entry id `a` comes before `b` ("<ms>-<seq>"; a malformed id is "0-0").
bool entry_before(const std::string& a, const std::string& b);

/// A restriction's stored value: the until time, or "" for good.
std::string encode_until(const std::optional<int64_t>& until);
std::optional<int64_t> decode_until(const std::string& text);

/// Restrictions still in force at `now` from an HGETALL reply.
std::vector<restriction> restrictions_in_force(const redis_reply& hash, int64_t now);

/// A moderation record as stream fields (with the node that recorded it), and back.
std::vector<std::string> encode_record(const moderation_record& rec, const std::string& node);
struct recorded_event {
  std::string node;
  std::string kind;  ///< "moderation" or "presence"
  std::string room;
  moderation_record record;  ///< moderation only
};
std::optional<recorded_event> decode_event(const redis_reply& fields);

/// Field/value pairs of a flat array reply (HGETALL, stream entry fields).
std::vector<std::pair<std::string, std::string>> pairs_of(const redis_reply& flat);

} // namespace parley::cluster
