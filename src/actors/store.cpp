#include "actors/store.hpp"

#include "actors/wall_clock.hpp"
#include "actors/errors.hpp"
#include "actors/mailbox_probe.hpp"
#include "actors/registry.hpp"

#include <caf/actor_registry.hpp>
#include <caf/actor_system.hpp>
#include <caf/exit_reason.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/system_messages.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <random>

namespace parley {

namespace {

using self_ptr = store_actor::stateful_pointer<store_state>;
using storage::db_error;

/// Rows one retention step deletes at most, so appends never wait long behind it.
constexpr std::size_t prune_step_rows = 500;

caf::error unavailable() {
  return make_protocol_error(protocol::error_code::store_unavailable);
}

std::string cid_key(const std::string& room, const std::string& sender, const std::string& cid) {
  std::string key;
  key.reserve(room.size() + sender.size() + cid.size() + 2);
  key += room;
  key += '\n';  // cannot appear in room or user names
  key += sender;
  key += '\n';
  key += cid;
  return key;
}

void report_fault(self_ptr self, const db_error& err) {
  auto& st = self->state;
  if (st.healthy)
    spdlog::error("message store unavailable: {}; messages are refused with store_unavailable "
                  "until it recovers", err.what());
  else
    spdlog::debug("message store still unavailable: {}", err.what());
  st.healthy = false;
  if (err.connection_broken()) {
    // Reopen on the next request: the file may have been replaced or repaired meanwhile.
    st.db.reset();
    st.rooms.clear();
  }
}

void report_success(self_ptr self) {
  if (!self->state.healthy)
    spdlog::info("message store recovered");
  self->state.healthy = true;
}

/// The database, opened on demand. Throws db_error if it cannot be opened.
storage::message_db& database(self_ptr self) {
  auto& st = self->state;
  if (!st.db) {
    auto db = std::make_unique<storage::message_db>(make_db_options(st.cfg));
    // Rows that older versions wrote for every room opened, message or not: they go, so that only
    // rooms with messages count against max_rooms. A live one is written again with its first
    // message (and the epoch it was opened with).
    db->delete_empty_rooms();
    st.stored_rooms = db->count_rooms();
    st.db = std::move(db);
  }
  return *st.db;
}

/// The cached room, or its row loaded on first use; null if it is not stored. Throws db_error.
stored_room* loaded_room(self_ptr self, const std::string& name) {
  auto& st = self->state;
  if (auto i = st.rooms.find(name); i != st.rooms.end())
    return &i->second;
  auto row = database(self).find_room(name);
  if (!row)
    return nullptr;
  return &(st.rooms[name] = stored_room{row->key, row->epoch, row->last_id + 1});
}

/// The room an append goes to. A room without a row gets one with this append's group, with the
/// epoch the room actor was opened with (`epoch`). Throws db_error.
stored_room& room_entry(self_ptr self, const std::string& name, uint64_t epoch) {
  if (auto room = loaded_room(self, name))
    return *room;
  self->state.creating.emplace_back(name, epoch);
  return self->state.rooms[name] = stored_room{0, epoch, 1};
}

/// Commits everything pending in one transaction (the rows of rooms getting their first message,
/// then messages), then answers each append.
void flush(self_ptr self) {
  auto& st = self->state;
  st.flush_scheduled = false;
  if (st.pending.empty() && st.creating.empty())
    return;
  auto group = std::move(st.pending);
  st.pending.clear();
  st.pending_cids.clear();
  auto creating = std::move(st.creating);
  st.creating.clear();
  std::unordered_map<std::string, int64_t> created;  // room name -> key of the row just written
  auto started = std::chrono::steady_clock::now();
  std::size_t written = 0;
  try {
    auto& db = database(self);
    db.begin();
    try {
      for (auto& [name, epoch] : creating)
        created[name] = db.create_room(name, epoch).key;
      std::map<int64_t, uint64_t> last_ids;
      for (auto& p : group) {
        if (p.duplicate)
          continue;
        auto key = p.room_key != 0 ? p.room_key : created.at(p.msg.room);
        db.insert_message(key, p.epoch, p.msg);
        ++written;
        last_ids[key] = p.msg.id;
      }
      for (auto& [key, last_id] : last_ids)
        db.set_last_id(key, last_id);
      db.commit();
    } catch (const db_error&) {
      db.rollback();
      throw;
    }
  } catch (const db_error& err) {
    report_fault(self, err);
    // The ids handed out for this group were not used: reload each room's next id from the file.
    // Rooms whose row was not written stay unwritten (and keep counting as such).
    for (auto& p : group)
      st.rooms.erase(p.msg.room);
    for (auto& c : creating)
      st.rooms.erase(c.first);
    for (auto& p : group)
      p.promise.deliver(unavailable());
    return;
  }
  report_success(self);
  // Successful commits only: a failed one is a fault (logged and counted by the supervisor).
  auto& stats = metrics::server_metrics();
  stats.store_commit_seconds.observe(
    std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  stats.store_commit_group_size.observe(static_cast<double>(written));
  for (auto& [name, key] : created) {
    // Not cached if a fault cleared the cache meanwhile: then it is loaded from the row on next use.
    if (auto i = st.rooms.find(name); i != st.rooms.end())
      i->second.key = key;
    st.unwritten.erase(name);  // counted as stored from now on
    ++st.stored_rooms;
  }
  for (auto& p : group)
    p.promise.deliver(append_result{std::move(p.msg), p.duplicate});
}

void schedule_flush(self_ptr self) {
  auto& st = self->state;
  if (st.pending.size() >= st.cfg.max_batch) {
    flush(self);
    return;
  }
  if (st.flush_scheduled)
    return;
  st.flush_scheduled = true;
  // With no window, the flush message still queues behind every append already in the mailbox:
  // whatever arrived while the previous commit ran shares the next transaction.
  if (st.cfg.commit_window.count() == 0)
    self->send(self, flush_atom::value);
  else
    self->delayed_send(self, st.cfg.commit_window, flush_atom::value);
}

caf::result<append_result> append(self_ptr self, uint64_t epoch, protocol::chat_message& msg) {
  auto& st = self->state;
  try {
    auto& room = room_entry(self, msg.room, epoch);
    pending_append entry{room.key, room.epoch, std::move(msg), false, {}};
    if (!entry.msg.cid.empty()) {
      auto key = cid_key(entry.msg.room, entry.msg.from, entry.msg.cid);
      if (auto i = st.pending_cids.find(key); i != st.pending_cids.end()) {
        entry.msg = st.pending[i->second].msg;
        entry.duplicate = true;
      } else if (auto original = room.key == 0 ? std::nullopt
                                 : database(self).find_by_cid(room.key, entry.msg.room,
                                                              entry.msg.from, entry.msg.cid)) {
        return append_result{std::move(*original), true};
      } else {
        st.pending_cids.emplace(std::move(key), st.pending.size());
      }
    }
    if (!entry.duplicate)
      entry.msg.id = room.next_id++;
    entry.promise = self->make_response_promise<append_result>();
    auto promise = entry.promise;
    st.pending.push_back(std::move(entry));
    schedule_flush(self);
    return promise;
  } catch (const db_error& err) {
    report_fault(self, err);
    return unavailable();
  }
}

std::vector<restriction> to_restrictions(std::vector<storage::restriction_row>&& rows) {
  std::vector<restriction> out;
  out.reserve(rows.size());
  for (auto& row : rows)
    out.push_back(restriction{std::move(row.user), row.until});
  return out;
}

/// Fills in the bans and mutes in force in a room. They are keyed by the room's name, so that a
/// room without a row has them too. Throws db_error.
void add_restrictions(self_ptr self, const std::string& name, room_snapshot& snapshot) {
  auto& db = database(self);
  auto now = now_ms();
  snapshot.bans = to_restrictions(db.restrictions_of(name, storage::restriction_kind::ban, now));
  snapshot.mutes = to_restrictions(db.restrictions_of(name, storage::restriction_kind::mute, now));
}

/// `snapshot` with the room's bans and mutes, or store_unavailable: refused rather than opened
/// without its bans, since the room would let banned users in.
caf::expected<room_snapshot> with_restrictions(self_ptr self, const std::string& name,
                                               room_snapshot snapshot) {
  try {
    add_restrictions(self, name, snapshot);
  } catch (const db_error& err) {
    report_fault(self, err);
    return unavailable();
  }
  report_success(self);
  return snapshot;
}

/// A room that is neither in memory nor stored: refused at the cap or without `may_create`;
/// otherwise it gets an epoch and counts as unwritten until its first message or retire_atom.
caf::result<room_snapshot> open_new_room(self_ptr self, const std::string& name, bool may_create) {
  auto& st = self->state;
  if (st.stored_rooms + st.unwritten.size() >= st.cfg.max_rooms)
    return make_protocol_error(protocol::error_code::room_limit);
  if (!may_create)
    return make_protocol_error(protocol::error_code::rate_limited);
  // A room can be moderated before it exists (or after it retired unwritten): its bans hold.
  auto snapshot = with_restrictions(self, name, room_snapshot{new_epoch(), 0, {}, true});
  if (!snapshot)
    return std::move(snapshot.error());
  st.unwritten.emplace(name, snapshot->epoch);
  return std::move(*snapshot);
}

/// Runs a read after committing what is pending, so a reader sees every message acknowledged
/// before it asked. Answers store_unavailable if the database fails.
template <class Read>
auto read(self_ptr self, Read&& read_fn) -> caf::result<decltype(read_fn(database(self)))> {
  flush(self);
  try {
    auto result = read_fn(database(self));
    report_success(self);
    return result;
  } catch (const db_error& err) {
    report_fault(self, err);
    return unavailable();
  }
}

history_page to_history_page(storage::message_page&& page) {
  return history_page{std::move(page.messages), page.more};
}

/// The audit log entry of a moderation action: only the fields its action uses are set.
storage::moderation_entry to_entry(const moderation_record& rec) {
  using protocol::moderation_action;
  storage::moderation_entry entry;
  // A record without a time (ts 0) is logged with the time the store got it: never as 1970.
  entry.ts = rec.ts != 0 ? rec.ts : now_ms();
  entry.actor = rec.by;
  entry.action = rec.action;
  entry.room = rec.room;
  entry.reason = rec.reason;
  switch (rec.action) {
    case moderation_action::delete_message:
      entry.message_id = rec.message_id;
      break;
    case moderation_action::ban:
    case moderation_action::mute:
      entry.target = rec.user;
      entry.until = rec.until;
      break;
    default:
      entry.target = rec.user;
      break;
  }
  return entry;
}

/// Logs a moderation action and applies it, in one transaction of its own. The pending group is
/// committed first: a delete then finds every message acknowledged before it, and the log's order
/// follows the order requests arrived in.
caf::result<ok_atom> moderate(self_ptr self, const moderation_record& rec) {
  using protocol::moderation_action;
  using storage::restriction_kind;
  flush(self);
  try {
    auto& db = database(self);
    int64_t room_key = 0;
    if (rec.action == moderation_action::delete_message) {
      auto room = loaded_room(self, rec.room);
      // A room without a row has no messages, so nothing to delete.
      if (!room || room->key == 0)
        return make_protocol_error(protocol::error_code::not_found);
      room_key = room->key;
    }
    db.begin();
    try {
      db.record_moderation(to_entry(rec));
      switch (rec.action) {
        case moderation_action::ban:
          db.set_restriction(rec.room, rec.user, restriction_kind::ban, rec.until);
          break;
        case moderation_action::mute:
          db.set_restriction(rec.room, rec.user, restriction_kind::mute, rec.until);
          break;
        case moderation_action::unban:
          db.clear_restriction(rec.room, rec.user, restriction_kind::ban);
          break;
        case moderation_action::unmute:
          db.clear_restriction(rec.room, rec.user, restriction_kind::mute);
          break;
        case moderation_action::delete_message:
          if (!db.tombstone(room_key, rec.message_id)) {
            db.rollback();  // a refused action leaves no log entry
            report_success(self);
            return make_protocol_error(protocol::error_code::not_found);
          }
          break;
        case moderation_action::kick:
          break;  // nothing to keep but the log entry: a kicked user may come back
      }
      // Ended bans and mutes are never read; moderation is rare, so this is where they go.
      db.delete_expired_restrictions(now_ms());
      db.commit();
    } catch (const db_error&) {
      db.rollback();
      throw;
    }
  } catch (const db_error& err) {
    report_fault(self, err);
    return unavailable();
  }
  report_success(self);
  return ok_atom::value;
}

/// One bounded retention step over every room; answers whether more remains to delete.
bool prune_step(self_ptr self) {
  using namespace std::chrono;
  auto& cfg = self->state.cfg;
  auto& db = database(self);
  auto cutoff = system_clock::now() - duration_cast<system_clock::duration>(cfg.retain_max_age);
  auto cutoff_ms = duration_cast<milliseconds>(cutoff.time_since_epoch()).count();
  bool more = false;
  for (auto& [name, row] : db.all_rooms()) {
    uint64_t up_to = 0;  // delete ids <= up_to
    if (cfg.retain_per_room > 0 && row.last_id > cfg.retain_per_room)
      up_to = row.last_id - cfg.retain_per_room;
    if (cfg.retain_max_age.count() > 0) {
      auto first_recent = db.first_id_since(row.key, cutoff_ms);
      up_to = std::max(up_to, first_recent ? *first_recent - 1 : row.last_id);
    }
    if (up_to > 0)
      more |= db.prune_up_to(row.key, up_to, prune_step_rows);
  }
  return more;
}

bool retention_enabled(const store_settings& cfg) {
  return cfg.retain_per_room > 0 || cfg.retain_max_age.count() > 0;
}

} // namespace

storage::db_options make_db_options(const store_settings& cfg) {
  storage::db_options opts;
  opts.path = cfg.path;
  opts.synchronous_full = cfg.synchronous == "full";
  opts.busy_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(cfg.busy_timeout);
  opts.max_bytes = cfg.max_db_bytes;
  return opts;
}

uint64_t new_epoch() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  std::uniform_int_distribution<uint64_t> dist{1, (uint64_t{1} << 53) - 1};
  return dist(rng);
}

store_actor::behavior_type store(self_ptr self, store_settings cfg) {
  self->state.cfg = std::move(cfg);
  try {
    database(self);
  } catch (const db_error& err) {
    report_fault(self, err);
  }
  register_as(self, store_atom::value);
  if (retention_enabled(self->state.cfg))
    self->delayed_send(self, self->state.cfg.retention_interval, prune_atom::value);

  // Stopping (server shutdown): commit what was accepted for writing before going.
  self->set_exit_handler([self](caf::exit_msg& msg) {
    flush(self);
    self->quit(msg.reason);
  });

  return {
    [self](open_atom, const std::string& name, uint32_t count,
           bool may_create) -> caf::result<room_snapshot> {
      auto& st = self->state;
      if (auto i = st.unwritten.find(name); i != st.unwritten.end()) {
        auto snapshot = with_restrictions(self, name, room_snapshot{i->second, 0, {}, false});
        if (!snapshot)
          return std::move(snapshot.error());
        return std::move(*snapshot);
      }
      if (st.rooms.count(name) == 0) {
        try {
          if (!database(self).find_room(name))
            return open_new_room(self, name, may_create);
        } catch (const db_error& err) {
          report_fault(self, err);
          return unavailable();
        }
      }
      return read(self, [&](storage::message_db& db) {
        auto room = loaded_room(self, name);
        room_snapshot snapshot;
        if (room) {
          auto page = db.before(room->key, name, 0, count);
          snapshot = room_snapshot{room->epoch, room->next_id - 1, std::move(page.messages), false};
        }
        add_restrictions(self, name, snapshot);
        if (!room) {
          // Its first message's group just failed: still a room without a row.
          snapshot.epoch = st.unwritten.emplace(name, new_epoch()).first->second;
        }
        return snapshot;
      });
    },
    [self](append_atom, uint64_t epoch, protocol::chat_message& msg) {
      sample_mailbox(self, metrics::actor_kind::store);
      return append(self, epoch, msg);
    },
    [self](history_atom, const std::string& name, uint64_t before,
           uint32_t limit) -> caf::result<history_page> {
      return read(self, [&](storage::message_db& db) {
        auto room = loaded_room(self, name);
        return room ? to_history_page(db.before(room->key, name, before, limit)) : history_page{};
      });
    },
    [self](after_atom, const std::string& name, uint64_t after,
           uint32_t limit) -> caf::result<history_page> {
      return read(self, [&](storage::message_db& db) {
        auto room = loaded_room(self, name);
        return room ? to_history_page(db.after(room->key, name, after, limit)) : history_page{};
      });
    },
    [self](flush_atom) { flush(self); },
    [self](moderate_atom, const moderation_record& rec) { return moderate(self, rec); },
    [self](bans_atom) -> caf::result<std::vector<restriction>> {
      return read(self, [](storage::message_db& db) {
        return to_restrictions(db.restrictions_of("", storage::restriction_kind::ban, now_ms()));
      });
    },
    [self](status_atom) {
      try {
        database(self);
      } catch (const db_error& err) {
        report_fault(self, err);
      }
      return self->state.db != nullptr && self->state.healthy;
    },
    [self](retire_atom, const std::string& name) {
      // A stored room keeps counting; a room without a row is forgotten with its epoch.
      self->state.unwritten.erase(name);
    },
    [self](prune_atom) {
      bool more = false;
      try {
        more = prune_step(self);
      } catch (const db_error& err) {
        report_fault(self, err);
      }
      if (more)
        self->send(self, prune_atom::value);  // queued behind waiting appends, which go first
      else
        self->delayed_send(self, self->state.cfg.retention_interval, prune_atom::value);
    },
  };
}

} // namespace parley
