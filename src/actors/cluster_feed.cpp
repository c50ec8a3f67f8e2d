#include "actors/cluster_feed.hpp"

#include "actors/wall_clock.hpp"
#include "actors/registry.hpp"
#include "metrics/server_metrics.hpp"

#include <caf/stateful_actor.hpp>
#include <caf/system_messages.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>

namespace parley {

namespace {

using self_ptr = cluster_feed_actor::stateful_pointer<cluster_feed_state>;
using cluster::redis_reply;

constexpr std::size_t read_batch = 500;  ///< entries per stream per read at most

std::chrono::milliseconds ttl_of(const cluster_feed_state& st) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(st.cfg.settings.presence_ttl);
}

void report_fault(self_ptr self) {
  auto& st = self->state;
  metrics::server_metrics().redis_failures.with({"feed"}).inc();
  if (st.healthy)
    spdlog::error("cluster feed lost Redis at {}: {}; retrying, and resuming from the last "
                  "message delivered", st.cfg.settings.redis, st.client->last_error());
  st.healthy = false;
  st.client->disconnect();
  st.retry_in = st.reconnect.next(st.rng);
}

/// Connected, with the events stream's position known. False: Redis cannot be reached now.
bool ensure_connected(self_ptr self) {
  auto& st = self->state;
  if (st.client->connected())
    return true;
  if (!st.client->connect()) {
    report_fault(self);
    return false;
  }
  if (st.mem->events_after.empty()) {
    // From the newest event on: what happened before this node started is in the rooms' state.
    auto last = st.client->command({"XREVRANGE", st.keys.events(), "+", "-", "COUNT", "1"});
    if (!last || last->is_error()) {
      report_fault(self);
      return false;
    }
    st.mem->events_after = last->elements.empty() ? "0-0" : last->elements[0].elements[0].str;
  }
  if (!st.healthy)
    spdlog::info("cluster feed reconnected to Redis at {}", st.cfg.settings.redis);
  st.healthy = true;
  st.reconnect.reset();
  st.rewrite_presence = true;
  return true;
}

// -- presence ---------------------------------------------------------------------------------------

std::string join_lines(const std::vector<std::string>& users) {
  std::string out;
  for (const auto& user : users) {
    if (!out.empty())
      out += '\n';
    out += user;
  }
  return out;
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start < text.size()) {
    auto end = text.find('\n', start);
    if (end == std::string::npos)
      end = text.size();
    if (end > start)
      out.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

/// The command that says this node is alive now.
std::vector<std::string> heartbeat_command(const cluster_feed_state& st) {
  return {"HSET", st.keys.nodes(), st.cfg.node, std::to_string(now_ms())};
}

/// The commands that write one room's entry for this node (or remove it when nobody is here).
void add_presence_write(const cluster_feed_state& st, const std::string& name, const watched_room& room,
                        std::vector<std::vector<std::string>>& commands) {
  auto key = st.keys.presence(name);
  if (room.local.empty()) {
    commands.push_back({"HDEL", key, st.cfg.node});
    return;
  }
  commands.push_back({"HSET", key, st.cfg.node, join_lines(room.local)});
  // The key outlives every node's heartbeat only briefly: a cluster that stops leaves nothing.
  commands.push_back({"PEXPIRE", key, std::to_string(ttl_of(st).count() * 2)});
}

/// Reads the presence entries of `names` and hands each room the users present on live other
/// nodes, if that changed. Entries of nodes whose heartbeat is older than the TTL are ignored
/// (and removed): their users went offline with them.
void read_remote_presence(self_ptr self, const std::vector<std::string>& names) {
  auto& st = self->state;
  if (names.empty())
    return;
  std::vector<std::vector<std::string>> commands{{"HGETALL", st.keys.nodes()}};
  for (const auto& name : names)
    commands.push_back({"HGETALL", st.keys.presence(name)});
  auto replies = st.client->pipeline(commands);
  if (!replies) {
    report_fault(self);
    return;
  }
  auto cutoff = now_ms() - ttl_of(st).count();
  std::set<std::string> live;
  std::vector<std::string> dead_nodes;
  for (auto& [node, beat] : cluster::pairs_of((*replies)[0])) {
    if (cluster::decode_until(beat).value_or(0) >= cutoff)
      live.insert(node);
    else
      dead_nodes.push_back(node);
  }
  std::vector<std::vector<std::string>> cleanup;
  for (std::size_t i = 0; i < names.size(); ++i) {
    auto r = st.mem->rooms.find(names[i]);
    if (r == st.mem->rooms.end())
      continue;
    std::set<std::string> users;
    for (auto& [node, lines] : cluster::pairs_of((*replies)[i + 1])) {
      if (node == st.cfg.node)
        continue;
      if (live.count(node) == 0) {
        cleanup.push_back({"HDEL", st.keys.presence(names[i]), node});
        continue;
      }
      for (auto& user : split_lines(lines))
        users.insert(std::move(user));
    }
    std::vector<std::string> remote(users.begin(), users.end());
    auto& room = r->second;
    if (!room.remote_sent || remote != room.remote) {
      room.remote = remote;
      room.remote_sent = true;
      self->send(room.handle, remote_atom::value, std::move(remote));
    }
  }
  // A node gone for ten TTLs is forgotten; until then its entries are only skipped.
  auto forget = now_ms() - 10 * ttl_of(st).count();
  for (auto& [node, beat] : cluster::pairs_of((*replies)[0]))
    if (cluster::decode_until(beat).value_or(0) < forget)
      cleanup.push_back({"HDEL", st.keys.nodes(), node});
  if (!cleanup.empty() && !st.client->pipeline(cleanup))
    report_fault(self);
}

/// Writes the entries that changed (all of them after a reconnect), announcing each change on the
/// events stream so that other nodes read it at once rather than at their next heartbeat.
void write_local_presence(self_ptr self) {
  auto& st = self->state;
  // The heartbeat goes first: other nodes ignore (and remove) entries of a node without a fresh
  // one, which a new node would not have until its first heartbeat.
  std::vector<std::vector<std::string>> commands{heartbeat_command(st)};
  bool changed = false;
  for (auto& [name, room] : st.mem->rooms) {
    if (!room.local_dirty && !st.rewrite_presence)
      continue;
    changed = true;
    add_presence_write(st, name, room, commands);
    if (room.local_dirty)
      commands.push_back({"XADD", st.keys.events(), "MAXLEN", "~", "10000", "*", "node", st.cfg.node,
                          "kind", "presence", "room", name});
  }
  if (!changed)
    return;
  if (!st.client->pipeline(commands)) {
    report_fault(self);
    return;
  }
  st.rewrite_presence = false;
  for (auto& [name, room] : st.mem->rooms)
    room.local_dirty = false;
}

void heartbeat(self_ptr self) {
  auto& st = self->state;
  if (!ensure_connected(self))
    return;
  std::vector<std::vector<std::string>> commands{heartbeat_command(st)};
  for (auto& [name, room] : st.mem->rooms)
    if (!room.local.empty())
      add_presence_write(st, name, room, commands);
  if (!st.client->pipeline(commands)) {
    report_fault(self);
    return;
  }
  std::vector<std::string> names;
  for (auto& [name, room] : st.mem->rooms)
    names.push_back(name);
  read_remote_presence(self, names);
}

// -- reading ----------------------------------------------------------------------------------------

/// Another node's moderation: rooms put it in force, the presence tracker takes server-wide bans.
void dispatch_event(self_ptr self, const std::string& entry, const cluster::recorded_event& ev,
                    std::set<std::string>& presence_changed) {
  auto& st = self->state;
  if (ev.node == st.cfg.node)
    return;  // this node put it in force when it recorded it
  auto& stats = metrics::server_metrics();
  if (ev.kind == "presence") {
    if (st.mem->rooms.count(ev.room) > 0) {
      presence_changed.insert(ev.room);
      stats.cluster_events.with({"presence"}).inc();
    }
    return;
  }
  if (ev.room.empty()) {
    if (auto tracker = registered<presence_actor>(self->system(), presence_atom::value)) {
      stats.cluster_events.with({"moderation"}).inc();
      self->send(tracker, enforce_atom::value, ev.record);
    }
    return;
  }
  auto r = st.mem->rooms.find(ev.room);
  // A room opened after the event has it in its snapshot already.
  if (r != st.mem->rooms.end() && cluster::entry_before(r->second.events_from, entry)) {
    stats.cluster_events.with({"moderation"}).inc();
    self->send(r->second.handle, enforce_atom::value, ev.record, entry);
  }
}

/// A room that starts watching gets the moderation other nodes recorded for it after `position`
/// (its snapshot, or what it last put in force) that this feed has read already: it was not
/// watching then. What comes after the feed's position reaches it with the next read.
void replay_events(self_ptr self, const std::string& name, const std::string& position) {
  auto& st = self->state;
  if (position.empty() || st.mem->events_after.empty() || !st.client->connected())
    return;
  auto reply = st.client->command({"XRANGE", st.keys.events(), "(" + position, st.mem->events_after});
  if (!reply) {
    report_fault(self);
    return;
  }
  std::set<std::string> ignored;
  for (const auto& entry : reply->elements) {
    if (entry.elements.size() < 2)
      continue;
    auto ev = cluster::decode_event(entry.elements[1]);
    if (ev && ev->kind == "moderation" && ev->room == name)
      dispatch_event(self, entry.elements[0].str, *ev, ignored);
  }
}

/// One XREAD over the events stream and every watched room's stream, waiting up to read_wait.
void read_once(self_ptr self) {
  auto& st = self->state;
  if (!ensure_connected(self))
    return;
  write_local_presence(self);
  if (!st.client->connected())
    return;
  std::vector<std::string> cmd{"XREAD", "COUNT", std::to_string(read_batch), "BLOCK",
                               std::to_string(read_wait.count()), "STREAMS", st.keys.events()};
  for (auto& [name, room] : st.mem->rooms)
    cmd.push_back(room.stream_key);
  cmd.push_back(st.mem->events_after);
  for (auto& [name, room] : st.mem->rooms)
    cmd.push_back(cluster::entry_id(room.delivered));
  auto reply = st.client->command_waiting(cmd, read_wait);
  if (!reply) {
    report_fault(self);
    return;
  }
  if (reply->is_error()) {
    spdlog::error("cluster feed: XREAD failed: {}", reply->str);
    return;
  }
  // Messages first, then events: a delete read in the same round finds its message delivered.
  std::vector<const redis_reply*> events;
  for (const auto& stream : reply->elements) {
    if (stream.elements.size() < 2)
      continue;
    const auto& key = stream.elements[0].str;
    if (key == st.keys.events()) {
      for (const auto& entry : stream.elements[1].elements)
        events.push_back(&entry);
      continue;
    }
    auto name = st.mem->room_of_stream.find(key);
    if (name == st.mem->room_of_stream.end())
      continue;
    auto& room = st.mem->rooms[name->second];
    std::vector<protocol::chat_message> batch;
    for (const auto& entry : stream.elements[1].elements)
      if (auto msg = cluster::decode_message(name->second, entry, false); msg && msg->id > room.delivered) {
        room.delivered = msg->id;
        batch.push_back(std::move(*msg));
      }
    if (!batch.empty()) {
      metrics::server_metrics().cluster_messages_read.inc(batch.size());
      self->send(room.handle, deliver_atom::value, std::move(batch));
    }
  }
  std::set<std::string> presence_changed;
  for (const auto* entry : events) {
    if (entry->elements.size() < 2)
      continue;
    st.mem->events_after = entry->elements[0].str;
    if (auto ev = cluster::decode_event(entry->elements[1]))
      dispatch_event(self, st.mem->events_after, *ev, presence_changed);
  }
  read_remote_presence(self, {presence_changed.begin(), presence_changed.end()});
}

void schedule_read(self_ptr self) {
  auto& st = self->state;
  if (st.client->connected())
    self->send(self, tick_atom::value);  // behind what waits in the mailbox
  else
    self->delayed_send(self, st.retry_in, tick_atom::value);
}

} // namespace

cluster_feed_actor::behavior_type cluster_feed(self_ptr self, cluster::cluster_config cfg,
                                               std::shared_ptr<cluster_feed_memory> mem) {
  auto& st = self->state;
  st.mem = std::move(mem);
  // A restarted feed keeps its rooms: it watches their handles again and goes on from where it was.
  for (auto& [name, room] : st.mem->rooms)
    self->monitor(room.handle);
  st.keys = cluster::redis_keys{cfg.settings.key_prefix};
  st.client = std::make_unique<cluster::redis_client>(cfg.address, cfg.timeout);
  st.cfg = std::move(cfg);
  register_as(self, cluster_atom::value);
  self->send(self, tick_atom::value);
  self->send(self, heartbeat_atom::value);

  self->set_down_handler([self](caf::down_msg& dm) {
    // A room that failed: its next incarnation watches again from where it is.
    auto& st = self->state;
    for (auto i = st.mem->rooms.begin(); i != st.mem->rooms.end(); ++i)
      if (i->second.handle.address() == dm.source) {
        st.mem->room_of_stream.erase(i->second.stream_key);
        st.mem->rooms.erase(i);
        return;
      }
  });

  return {
    [self](watch_atom, const std::string& name, room_actor& handle, uint64_t delivered,
           const std::string& events_after) {
      auto& st = self->state;
      auto& room = st.mem->rooms[name];
      if (room.handle != handle) {
        room.handle = std::move(handle);
        self->monitor(room.handle);
      }
      room.stream_key = st.keys.stream(name);
      room.delivered = delivered;
      room.remote_sent = false;
      st.mem->room_of_stream[room.stream_key] = name;
      room.events_from = events_after;
      replay_events(self, name, events_after);
      if (st.client->connected())
        read_remote_presence(self, {name});
    },
    [self](unwatch_atom, const std::string& name, const room_actor& handle) {
      auto& st = self->state;
      auto i = st.mem->rooms.find(name);
      if (i == st.mem->rooms.end() || i->second.handle != handle)
        return;
      if (st.client->connected() && !st.client->command({"HDEL", st.keys.presence(name), st.cfg.node}))
        report_fault(self);
      st.mem->room_of_stream.erase(i->second.stream_key);
      st.mem->rooms.erase(i);
    },
    [self](presence_atom, const std::string& name, std::vector<std::string>& users) {
      auto i = self->state.mem->rooms.find(name);
      if (i == self->state.mem->rooms.end())
        return;
      i->second.local = std::move(users);
      i->second.local_dirty = true;
    },
    [self](tick_atom) {
      read_once(self);
      schedule_read(self);
    },
    [self](heartbeat_atom) {
      heartbeat(self);
      self->delayed_send(self, self->state.cfg.settings.presence_ttl / 3, heartbeat_atom::value);
    },
  };
}

} // namespace parley
