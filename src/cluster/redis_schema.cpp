#include "cluster/redis_schema.hpp"

#include "protocol/codec.hpp"

#include <algorithm>
#include <charconv>

namespace parley::cluster {

std::string redis_keys::cid(const std::string& room_name, const std::string& user,
                            const std::string& cid) const {
  // The user's length first: user names may hold colons, and "a:b" + "c" must not meet "a" + "b:c".
  return prefix_ + "cid:" + room_name + ":" + std::to_string(user.size()) + ":" + user + ":" + cid;
}

namespace scripts {

const char* const open_room = R"lua(
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if epoch then
  return {0, epoch, redis.call('HGET', KEYS[1], 'last_id') or '0'}
end
if redis.call('SCARD', KEYS[2]) >= tonumber(ARGV[3]) then return {-2} end
if ARGV[2] ~= '1' then return {-1} end
redis.call('HSET', KEYS[1], 'epoch', ARGV[1], 'last_id', 0)
redis.call('SADD', KEYS[2], ARGV[4])
return {1, ARGV[1], '0'}
)lua";

const char* const append_message = R"lua(
if ARGV[5] ~= '' then
  local original = redis.call('GET', KEYS[3])
  if original then
    local entry = redis.call('XRANGE', KEYS[2], original .. '-0', original .. '-0')
    if entry[1] then return {0, original, entry[1][2]} end
    return {0, original}
  end
end
if redis.call('EXISTS', KEYS[1]) == 0 then
  if ARGV[9] == '1' then return {-1} end
  redis.call('HSET', KEYS[1], 'epoch', ARGV[1], 'last_id', 0)
  redis.call('SADD', KEYS[4], ARGV[8])
end
local id = redis.call('HINCRBY', KEYS[1], 'last_id', 1)
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[7], id .. '-0',
           'from', ARGV[2], 'text', ARGV[3], 'ts', ARGV[4], 'cid', ARGV[5], 'name', ARGV[6])
if ARGV[5] ~= '' then redis.call('SET', KEYS[3], id, 'EX', 86400) end
return {1, id}
)lua";

const char* const read_messages = R"lua(
local entries = redis.call(ARGV[1], KEYS[1], ARGV[2], ARGV[3], 'COUNT', ARGV[4])
local out = {}
for i, entry in ipairs(entries) do
  local id = string.match(entry[1], '^(%d+)')
  out[i] = {entry[1], entry[2], redis.call('SISMEMBER', KEYS[2], id)}
end
return out
)lua";

} // namespace scripts

std::vector<std::pair<std::string, std::string>> pairs_of(const redis_reply& flat) {
  std::vector<std::pair<std::string, std::string>> out;
  for (std::size_t i = 0; i + 1 < flat.elements.size(); i += 2)
    out.emplace_back(flat.elements[i].str, flat.elements[i + 1].str);
  return out;
}

std::string entry_id(uint64_t id) {
  return std::to_string(id) + "-0";
}

std::optional<uint64_t> message_id(const std::string& entry) {
  uint64_t id = 0;
  auto [end, ec] = std::from_chars(entry.data(), entry.data() + entry.size(), id);
  if (ec != std::errc{} || end == entry.data() || id == 0)
    return std::nullopt;
  return id;
}

std::optional<protocol::chat_message> decode_message(const std::string& room, const redis_reply& entry,
                                                     bool deleted) {
  if (entry.elements.size() < 2)
    return std::nullopt;
  return decode_message(room, entry.elements[0].str, entry.elements[1], deleted);
}

std::optional<protocol::chat_message> decode_message(const std::string& room, const std::string& entry_id,
                                                     const redis_reply& fields, bool deleted) {
  auto id = message_id(entry_id);
  if (!id)
    return std::nullopt;
  protocol::chat_message msg;
  msg.room = room;
  msg.id = *id;
  for (auto& [field, value] : pairs_of(fields)) {
    if (field == "from")
      msg.from = value;
    else if (field == "text")
      msg.text = value;
    else if (field == "ts")
      msg.ts = parse_integer(value).value_or(0);
    else if (field == "cid")
      msg.cid = value;
    else if (field == "name")
      msg.name = value;
  }
  if (deleted) {
    msg.deleted = true;
    msg.text.clear();
  }
  return msg;
}

namespace {

std::pair<uint64_t, uint64_t> split_entry_id(const std::string& id) {
  uint64_t ms = 0, seq = 0;
  auto dash = id.find('-');
  std::from_chars(id.data(), id.data() + std::min(dash, id.size()), ms);
  if (dash != std::string::npos)
    std::from_chars(id.data() + dash + 1, id.data() + id.size(), seq);
  return {ms, seq};
}

} // namespace

bool entry_before(const std::string& a, const std::string& b) {
  return split_entry_id(a) < split_entry_id(b);
}

std::string encode_until(const std::optional<int64_t>& until) {
  return until ? std::to_string(*until) : std::string{};
}

std::optional<int64_t> decode_until(const std::string& text) {
  return parse_integer(text);
}

std::vector<restriction> restrictions_in_force(const redis_reply& hash, int64_t now) {
  std::vector<restriction> out;
  for (auto& [user, value] : pairs_of(hash)) {
    auto until = decode_until(value);
    if (!until || *until > now)
      out.push_back(restriction{user, until});
  }
  return out;
}

std::vector<std::string> encode_record(const moderation_record& rec, const std::string& node) {
  return {"node",    node,
          "kind",    "moderation",
          "action",  protocol::to_string(rec.action),
          "room",    rec.room,
          "user",    rec.user,
          "by",      rec.by,
          "message", std::to_string(rec.message_id),
          "until",   encode_until(rec.until),
          "reason",  rec.reason,
          "ts",      std::to_string(rec.ts)};
}

std::optional<recorded_event> decode_event(const redis_reply& fields) {
  recorded_event ev;
  std::string action;
  for (auto& [field, value] : pairs_of(fields)) {
    if (field == "node")
      ev.node = value;
    else if (field == "kind")
      ev.kind = value;
    else if (field == "room")
      ev.room = value;
    else if (field == "action")
      action = value;
    else if (field == "user")
      ev.record.user = value;
    else if (field == "by")
      ev.record.by = value;
    else if (field == "message")
      ev.record.message_id = message_id(value).value_or(0);
    else if (field == "until")
      ev.record.until = decode_until(value);
    else if (field == "reason")
      ev.record.reason = value;
    else if (field == "ts")
      ev.record.ts = parse_integer(value).value_or(0);
  }
  if (ev.kind == "presence")
    return ev;
  if (ev.kind != "moderation")
    return std::nullopt;
  auto parsed = protocol::moderation_action_named(action);
  if (!parsed)
    return std::nullopt;
  ev.record.action = *parsed;
  ev.record.room = ev.room;
  return ev;
}

} // namespace parley::cluster
