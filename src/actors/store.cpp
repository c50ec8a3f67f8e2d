#include "actors/store.hpp"

#include "actors/errors.hpp"
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
  if (!st.db)
    st.db = std::make_unique<storage::message_db>(make_db_options(st.cfg));
  return *st.db;
}

/// The cached room, loaded (or created with `epoch`) on first use. Throws db_error.
stored_room& room_entry(self_ptr self, const std::string& name, uint64_t epoch) {
  auto& st = self->state;
  if (auto i = st.rooms.find(name); i != st.rooms.end())
    return i->second;
  auto& db = database(self);
  auto row = db.find_room(name);
  if (!row)
    row = db.create_room(name, epoch);
  return st.rooms[name] = stored_room{row->key, row->epoch, row->last_id + 1};
}

/// Commits everything pending in one transaction (new rooms, then messages), then answers each
/// open and append.
void flush(self_ptr self) {
  auto& st = self->state;
  st.flush_scheduled = false;
  if (st.pending.empty() && st.opening.empty())
    return;
  auto group = std::move(st.pending);
  st.pending.clear();
  st.pending_cids.clear();
  auto opened = std::move(st.opening);
  st.opening.clear();
  std::vector<storage::room_row> created;
  try {
    auto& db = database(self);
    db.begin();
    try {
      for (auto& o : opened)
        created.push_back(db.create_room(o.name, o.epoch));
      std::map<int64_t, uint64_t> last_ids;
      for (auto& p : group) {
        if (p.duplicate)
          continue;
        db.insert_message(p.room_key, p.epoch, p.msg);
        last_ids[p.room_key] = p.msg.id;
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
    for (auto& p : group)
      st.rooms.erase(p.msg.room);
    for (auto& p : group)
      p.promise.deliver(unavailable());
    for (auto& o : opened)
      for (auto& promise : o.promises)
        promise.deliver(unavailable());
    return;
  }
  report_success(self);
  for (std::size_t i = 0; i < opened.size(); ++i) {
    st.rooms[opened[i].name] = stored_room{created[i].key, created[i].epoch, 1};
    for (auto& promise : opened[i].promises)
      promise.deliver(room_snapshot{created[i].epoch, 0, {}});
  }
  for (auto& p : group)
    p.promise.deliver(append_result{std::move(p.msg), p.duplicate});
}

void schedule_flush(self_ptr self) {
  auto& st = self->state;
  if (st.pending.size() + st.opening.size() >= st.cfg.max_batch) {
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
      } else if (auto original = database(self).find_by_cid(room.key, entry.msg.room, entry.msg.from,
                                                             entry.msg.cid)) {
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

/// A room nobody has used yet: created with the next group and answered once that commits.
caf::result<room_snapshot> open_new_room(self_ptr self, const std::string& name) {
  auto& st = self->state;
  auto promise = self->make_response_promise<room_snapshot>();
  auto same = std::find_if(st.opening.begin(), st.opening.end(),
                           [&](const pending_open& o) { return o.name == name; });
  if (same != st.opening.end())
    same->promises.push_back(promise);
  else
    st.opening.push_back(pending_open{name, new_epoch(), {promise}});
  schedule_flush(self);
  return promise;
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
    [self](open_atom, const std::string& name, uint32_t count) -> caf::result<room_snapshot> {
      if (self->state.rooms.count(name) == 0) {
        try {
          if (!database(self).find_room(name))
            return open_new_room(self, name);
        } catch (const db_error& err) {
          report_fault(self, err);
          return unavailable();
        }
      }
      return read(self, [&](storage::message_db& db) {
        auto& room = room_entry(self, name, new_epoch());
        auto page = db.before(room.key, name, 0, count);
        return room_snapshot{room.epoch, room.next_id - 1, std::move(page.messages)};
      });
    },
    [self](append_atom, uint64_t epoch, protocol::chat_message& msg) {
      return append(self, epoch, msg);
    },
    [self](history_atom, const std::string& name, uint64_t before,
           uint32_t limit) -> caf::result<history_page> {
      return read(self, [&](storage::message_db& db) {
        auto& room = room_entry(self, name, new_epoch());
        return to_history_page(db.before(room.key, name, before, limit));
      });
    },
    [self](after_atom, const std::string& name, uint64_t after,
           uint32_t limit) -> caf::result<history_page> {
      return read(self, [&](storage::message_db& db) {
        auto& room = room_entry(self, name, new_epoch());
        return to_history_page(db.after(room.key, name, after, limit));
      });
    },
    [self](flush_atom) { flush(self); },
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
