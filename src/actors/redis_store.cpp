#include "actors/redis_store.hpp"

#include "actors/wall_clock.hpp"
#include "actors/errors.hpp"
#include "actors/mailbox_probe.hpp"
#include "actors/registry.hpp"
#include "actors/store.hpp"
#include "metrics/server_metrics.hpp"

#include <caf/stateful_actor.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>

namespace parley {

namespace {

using self_ptr = store_actor::stateful_pointer<redis_store_state>;
using cluster::redis_reply;

constexpr std::size_t audit_max_length = 100000;
constexpr std::size_t events_max_length = 10000;
constexpr auto age_trim_interval = std::chrono::minutes(1);

void flush_appends(self_ptr self);

caf::error unavailable() {
  return make_protocol_error(protocol::error_code::store_unavailable);
}

void report_fault(self_ptr self, const std::string& what) {
  auto& st = self->state;
  metrics::server_metrics().redis_failures.with({"store"}).inc();
  if (st.healthy)
    spdlog::error("Redis unavailable at {}: {}; messages are refused with store_unavailable "
                  "until it is back", st.cfg.settings.redis, what);
  st.healthy = false;
}

void report_success(self_ptr self) {
  if (!self->state.healthy)
    spdlog::info("Redis at {} is back", self->state.cfg.settings.redis);
  self->state.healthy = true;
}

/// Strict durability: an acknowledged message must survive a Redis crash, which takes
/// appendonly yes and appendfsync always. Read once per connection.
void check_durability(self_ptr self) {
  auto& st = self->state;
  auto& client = *st.client;
  auto replies = client.pipeline({{"CONFIG", "GET", "appendonly"}, {"CONFIG", "GET", "appendfsync"}});
  if (!replies)
    return;
  auto value = [](const redis_reply& r) {
    return r.elements.size() == 2 ? r.elements[1].str : std::string{};
  };
  std::string problem;
  if ((*replies)[0].is_error() || (*replies)[1].is_error())
    problem = "Redis refuses CONFIG GET, so its persistence cannot be checked";
  else if (value((*replies)[0]) != "yes" || value((*replies)[1]) != "always")
    problem = "Redis runs with appendonly " + value((*replies)[0]) + " and appendfsync "
              + value((*replies)[1]) + ", not yes and always";
  st.durable = problem.empty();
  if (st.cfg.settings.durability == "strict" && !st.durable && problem != st.durability_problem)
    spdlog::error("{}: with [cluster] durability strict this node refuses messages and reports "
                  "not ready (set durability relaxed to accept what Redis is set to)", problem);
  st.durability_problem = std::move(problem);
}

bool writes_allowed(const redis_store_state& st) {
  return st.cfg.settings.durability != "strict" || st.durable;
}

/// The connection, opened (with the scripts loaded) unless a recent attempt failed. Null: Redis
/// cannot be reached now.
cluster::redis_client* connection(self_ptr self) {
  auto& st = self->state;
  auto& client = *st.client;
  if (client.connected())
    return &client;
  auto now = std::chrono::steady_clock::now();
  if (now < st.next_connect)
    return nullptr;
  auto loaded = client.connect()
                  ? client.pipeline({{"SCRIPT", "LOAD", cluster::scripts::open_room},
                                     {"SCRIPT", "LOAD", cluster::scripts::append_message},
                                     {"SCRIPT", "LOAD", cluster::scripts::read_messages}})
                  : std::nullopt;
  if (!loaded || (*loaded)[0].is_error() || (*loaded)[1].is_error() || (*loaded)[2].is_error()) {
    report_fault(self, client.connected() ? "cannot load scripts" : client.last_error());
    client.disconnect();
    st.next_connect = now + st.reconnect.next(st.rng);
    return nullptr;
  }
  st.scripts = {(*loaded)[0].str, (*loaded)[1].str, (*loaded)[2].str};
  st.reconnect.reset();
  check_durability(self);
  return client.connected() ? &client : nullptr;
}

/// Runs one script by its SHA. nullopt: the connection failed (reported). A NOSCRIPT error (Redis
/// restarted between two calls without the connection noticing) reconnects and retries once.
std::optional<redis_reply> run_script(self_ptr self, const std::string loaded_scripts::*which,
                                      const std::vector<std::string>& keys,
                                      const std::vector<std::string>& args) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto* client = connection(self);
    if (!client)
      return std::nullopt;
    std::vector<std::string> cmd{"EVALSHA", self->state.scripts.*which, std::to_string(keys.size())};
    cmd.insert(cmd.end(), keys.begin(), keys.end());
    cmd.insert(cmd.end(), args.begin(), args.end());
    auto reply = client->command(cmd);
    if (!reply) {
      report_fault(self, client->last_error());
      return std::nullopt;
    }
    if (reply->is_error() && reply->str.rfind("NOSCRIPT", 0) == 0) {
      client->disconnect();
      continue;
    }
    return reply;
  }
  return std::nullopt;
}

/// Runs plain commands in one round trip. nullopt: the connection failed (reported).
std::optional<std::vector<redis_reply>> run(self_ptr self,
                                            const std::vector<std::vector<std::string>>& commands) {
  auto* client = connection(self);
  if (!client)
    return std::nullopt;
  auto replies = client->pipeline(commands);
  if (!replies)
    report_fault(self, client->last_error());
  return replies;
}

/// Messages from a read_messages reply, in the order Redis returned them.
std::vector<protocol::chat_message> decode_messages(const std::string& room, const redis_reply& reply) {
  std::vector<protocol::chat_message> out;
  out.reserve(reply.elements.size());
  for (const auto& row : reply.elements) {
    if (row.elements.size() < 3)
      continue;
    if (auto msg = cluster::decode_message(room, row.elements[0].str, row.elements[1],
                                           row.elements[2].integer == 1))
      out.push_back(std::move(*msg));
  }
  return out;
}

/// Messages with ids in the exclusive range, at most `limit`, oldest first, and whether more exist.
caf::result<history_page> read_page(self_ptr self, const std::string& room, bool newest_first,
                                    const std::string& start, const std::string& end, uint32_t limit) {
  flush_appends(self);  // a reader sees every message acknowledged before it asked
  auto& keys = self->state.keys;
  auto reply = run_script(self, &loaded_scripts::read_messages, {keys.stream(room), keys.deleted(room)},
                          {newest_first ? "XREVRANGE" : "XRANGE", start, end,
                           std::to_string(static_cast<uint64_t>(limit) + 1)});
  if (!reply || reply->is_error()) {
    if (reply)
      spdlog::error("reading room {} from Redis: {}", room, reply->str);
    return unavailable();
  }
  report_success(self);
  history_page page;
  page.messages = decode_messages(room, *reply);
  page.more = page.messages.size() > limit;
  if (page.more)
    page.messages.pop_back();
  if (newest_first)
    std::reverse(page.messages.begin(), page.messages.end());
  return page;
}

caf::result<room_snapshot> open_room(self_ptr self, const std::string& name, uint32_t count,
                                     bool may_create) {
  flush_appends(self);
  auto& st = self->state;
  auto& keys = st.keys;
  auto opened = run_script(self, &loaded_scripts::open_room, {keys.room(name), keys.rooms()},
                           {std::to_string(new_epoch()), may_create ? "1" : "0",
                            std::to_string(st.cfg.max_rooms), name});
  if (!opened || opened->is_error() || opened->elements.empty())
    return unavailable();
  auto status = opened->elements[0].integer;
  if (status == -2)
    return make_protocol_error(protocol::error_code::room_limit);
  if (status == -1)
    return make_protocol_error(protocol::error_code::rate_limited);
  if (opened->elements.size() < 3)
    return unavailable();
  room_snapshot snapshot;
  snapshot.epoch = static_cast<uint64_t>(opened->elements[1].as_integer().value_or(0));
  snapshot.last_id = static_cast<uint64_t>(opened->elements[2].as_integer().value_or(0));
  snapshot.created = status == 1;
  // The events position first: moderation recorded after it may be missing from the bans read
  // next, and the cluster feed replays it; moderation in both is applied twice, to the same end.
  auto replies = run(self, {{"XREVRANGE", keys.events(), "+", "-", "COUNT", "1"},
                            {"EVALSHA", st.scripts.read_messages, "2", keys.stream(name),
                             keys.deleted(name), "XREVRANGE", "+", "-", std::to_string(count)},
                            {"HGETALL", keys.room_bans(name)},
                            {"HGETALL", keys.room_mutes(name)}});
  if (!replies || (*replies)[1].is_error())
    return unavailable();
  const auto& last_event = (*replies)[0];
  snapshot.events_position = last_event.elements.empty() || last_event.elements[0].elements.empty()
                               ? "0-0"
                               : last_event.elements[0].elements[0].str;
  snapshot.recent = decode_messages(name, (*replies)[1]);
  std::reverse(snapshot.recent.begin(), snapshot.recent.end());
  auto now = now_ms();
  snapshot.bans = cluster::restrictions_in_force((*replies)[2], now);
  snapshot.mutes = cluster::restrictions_in_force((*replies)[3], now);
  st.last_known[name] = snapshot.last_id;
  report_success(self);
  return snapshot;
}

/// Queues an append for the next pipeline (see flush_appends).
caf::result<append_result> append(self_ptr self, uint64_t epoch, protocol::chat_message& msg) {
  auto& st = self->state;
  if (!writes_allowed(st)) {
    // Redis may have been set to fsync every write since: look again before refusing.
    if (connection(self))
      check_durability(self);
    if (!writes_allowed(st))
      return unavailable();
  }
  auto promise = self->make_response_promise<append_result>();
  st.queued.push_back(queued_append{epoch, std::move(msg), promise});
  if (!st.flush_scheduled) {
    // Behind the appends already in the mailbox: they join this pipeline.
    st.flush_scheduled = true;
    self->send(self, flush_atom::value);
  }
  return promise;
}

/// What one append_message reply means for its append.
caf::expected<append_result> append_outcome(self_ptr self, queued_append& queued, const redis_reply& reply) {
  auto& msg = queued.msg;
  auto& known = self->state.last_known[msg.room];
  if (reply.is_error() || reply.elements.size() < 2) {
    spdlog::error("appending to room {} in Redis: {}", msg.room, reply.is_error() ? reply.str : "bad reply");
    if (reply.is_error() && reply.str.rfind("NOSCRIPT", 0) == 0)
      self->state.client->disconnect();  // the next connection loads the scripts again
    if (!reply.elements.empty() && reply.elements[0].integer == -1)
      spdlog::critical("room {} has lost its data in Redis (it had messages up to id {}): Redis "
                       "lost data; restart the nodes so that rooms start a new epoch", msg.room, known);
    return unavailable();
  }
  auto id = static_cast<uint64_t>(reply.elements[1].as_integer().value_or(0));
  if (reply.elements[0].integer == 0) {
    // A retry of (user, cid): answered with the original, as Redis has it.
    append_result dup{msg, true};
    dup.msg.id = id;
    if (reply.elements.size() >= 3)
      if (auto original = cluster::decode_message(msg.room, cluster::entry_id(id), reply.elements[2], false))
        dup.msg = std::move(*original);
    return dup;
  }
  known = std::max(known, id);
  msg.id = id;
  return append_result{std::move(msg), false};
}

/// Every queued append in one pipeline. Redis runs a pipeline's commands in one pass of its event
/// loop and writes (with appendfsync always: fsyncs) the append-only file once for the pass before
/// it answers: the group commit of the SQLite store, done by Redis.
void flush_appends(self_ptr self) {
  auto& st = self->state;
  st.flush_scheduled = false;
  auto batch = std::move(st.queued);
  st.queued.clear();
  if (batch.empty())
    return;
  auto fail_all = [&] {
    for (auto& queued : batch)
      queued.promise.deliver(unavailable());
  };
  auto* client = connection(self);
  if (!client)
    return fail_all();
  auto& keys = st.keys;
  std::vector<std::vector<std::string>> commands;
  commands.reserve(batch.size());
  for (auto& queued : batch) {
    const auto& msg = queued.msg;
    commands.push_back({"EVALSHA", st.scripts.append_message, "4", keys.room(msg.room),
                        keys.stream(msg.room), keys.cid(msg.room, msg.from, msg.cid), keys.rooms(),
                        std::to_string(queued.epoch), msg.from, msg.text, std::to_string(msg.ts), msg.cid,
                        msg.name, std::to_string(st.cfg.settings.stream_max_length), msg.room,
                        st.last_known[msg.room] > 0 ? "1" : "0"});
  }
  auto started = std::chrono::steady_clock::now();
  auto replies = client->pipeline(commands);
  if (!replies) {
    report_fault(self, client->last_error());
    return fail_all();
  }
  report_success(self);
  auto& stats = metrics::server_metrics();
  stats.store_commit_seconds.observe(
    std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  stats.store_commit_group_size.observe(static_cast<double>(batch.size()));
  for (std::size_t i = 0; i < batch.size(); ++i) {
    auto outcome = append_outcome(self, batch[i], (*replies)[i]);
    if (outcome)
      batch[i].promise.deliver(std::move(*outcome));
    else
      batch[i].promise.deliver(std::move(outcome.error()));
  }
}

/// Records a moderation action (audit stream), applies what it changes, and publishes it on the
/// events stream, all in one MULTI/EXEC.
caf::result<ok_atom> moderate(self_ptr self, moderation_record rec) {
  using protocol::moderation_action;
  flush_appends(self);  // a delete may name a message still in the pipeline
  auto& st = self->state;
  auto& keys = st.keys;
  if (rec.ts == 0)
    rec.ts = now_ms();
  std::vector<std::vector<std::string>> commands{{"MULTI"}};
  auto bans = rec.room.empty() ? keys.server_bans() : keys.room_bans(rec.room);
  switch (rec.action) {
    case moderation_action::kick:
      break;
    case moderation_action::ban:
      commands.push_back({"HSET", bans, rec.user, cluster::encode_until(rec.until)});
      break;
    case moderation_action::unban:
      commands.push_back({"HDEL", bans, rec.user});
      break;
    case moderation_action::mute:
      commands.push_back({"HSET", keys.room_mutes(rec.room), rec.user, cluster::encode_until(rec.until)});
      break;
    case moderation_action::unmute:
      commands.push_back({"HDEL", keys.room_mutes(rec.room), rec.user});
      break;
    case moderation_action::delete_message: {
      auto last = run(self, {{"HGET", keys.room(rec.room), "last_id"}});
      if (!last)
        return unavailable();
      auto last_id = (*last)[0].as_integer().value_or(0);
      if (rec.message_id == 0 || static_cast<int64_t>(rec.message_id) > last_id)
        return make_protocol_error(protocol::error_code::not_found);
      commands.push_back({"SADD", keys.deleted(rec.room), std::to_string(rec.message_id)});
      break;
    }
  }
  auto fields = cluster::encode_record(rec, st.cfg.node);
  std::vector<std::string> audit{"XADD", keys.audit(), "MAXLEN", "~", std::to_string(audit_max_length), "*"};
  audit.insert(audit.end(), fields.begin(), fields.end());
  std::vector<std::string> event{"XADD", keys.events(), "MAXLEN", "~", std::to_string(events_max_length), "*"};
  event.insert(event.end(), fields.begin(), fields.end());
  commands.push_back(std::move(audit));
  commands.push_back(std::move(event));
  commands.push_back({"EXEC"});
  auto replies = run(self, commands);
  if (!replies || replies->back().type != redis_reply::kind::array) {
    if (replies)
      spdlog::error("recording a moderation action in Redis failed: {}", replies->back().str);
    return unavailable();
  }
  report_success(self);
  return ok_atom::value;
}

/// Trims messages older than stream_max_age from the streams of the rooms this node opened: one
/// bounded read per room, the rest at the next round.
void trim_by_age(self_ptr self) {
  auto& st = self->state;
  auto cutoff = now_ms() - std::chrono::duration_cast<std::chrono::milliseconds>(
                             st.cfg.settings.stream_max_age).count();
  for (auto& [room, last] : st.last_known) {
    auto replies = run(self, {{"XRANGE", st.keys.stream(room), "-", "+", "COUNT", "1000"}});
    if (!replies)
      return;
    std::optional<uint64_t> first_kept;
    uint64_t last_old = 0;
    for (const auto& entry : (*replies)[0].elements) {
      auto msg = cluster::decode_message(room, entry, false);
      if (!msg)
        continue;
      if (msg->ts >= cutoff) {
        first_kept = msg->id;
        break;
      }
      last_old = msg->id;
    }
    if (last_old > 0)
      run(self, {{"XTRIM", st.keys.stream(room), "MINID", cluster::entry_id(first_kept.value_or(last_old + 1))}});
  }
}

} // namespace

store_actor::behavior_type redis_store(self_ptr self, cluster::cluster_config cfg) {
  auto& st = self->state;
  st.keys = cluster::redis_keys{cfg.settings.key_prefix};
  st.client = std::make_unique<cluster::redis_client>(cfg.address, cfg.timeout);
  st.cfg = std::move(cfg);
  if (connection(self))
    spdlog::info("connected to Redis at {} as node {}", st.cfg.settings.redis, st.cfg.node);
  register_as(self, store_atom::value);
  // Stopping (server shutdown): what was accepted for writing goes to Redis first.
  self->set_exit_handler([self](caf::exit_msg& msg) {
    flush_appends(self);
    self->quit(msg.reason);
  });
  if (st.cfg.settings.stream_max_age > caf::timespan{0})
    self->delayed_send(self, age_trim_interval, prune_atom::value);

  return {
    [self](open_atom, const std::string& name, uint32_t count, bool may_create) {
      return open_room(self, name, count, may_create);
    },
    [self](append_atom, uint64_t epoch, protocol::chat_message& msg) {
      sample_mailbox(self, metrics::actor_kind::store);
      return append(self, epoch, msg);
    },
    [self](history_atom, const std::string& name, uint64_t before, uint32_t limit) {
      return read_page(self, name, true, before == 0 ? "+" : "(" + cluster::entry_id(before), "-", limit);
    },
    [self](after_atom, const std::string& name, uint64_t after, uint32_t limit) {
      return read_page(self, name, false, after == 0 ? "-" : "(" + cluster::entry_id(after), "+", limit);
    },
    [self](flush_atom) { flush_appends(self); },
    [self](moderate_atom, const moderation_record& rec) { return moderate(self, rec); },
    [self](bans_atom) -> caf::result<std::vector<restriction>> {
      auto replies = run(self, {{"HGETALL", self->state.keys.server_bans()}});
      if (!replies)
        return unavailable();
      report_success(self);
      return cluster::restrictions_in_force((*replies)[0], now_ms());
    },
    [self](status_atom) {
      auto replies = run(self, {{"PING"}});
      bool up = replies && !(*replies)[0].is_error();
      if (up)
        report_success(self);
      if (up && !writes_allowed(self->state))
        check_durability(self);
      return up && writes_allowed(self->state);
    },
    [self](retire_atom, const std::string& name) { self->state.last_known.erase(name); },
    [self](prune_atom) {
      trim_by_age(self);
      self->delayed_send(self, age_trim_interval, prune_atom::value);
    },
  };
}

} // namespace parley
