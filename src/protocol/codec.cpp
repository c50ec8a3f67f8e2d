#include "protocol/codec.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <exception>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace parley::protocol {

namespace {

using json = nlohmann::json;
// Outbound objects keep insertion order so that "type" comes first, which makes frames easier to
// read in logs and browser tools.
using out_json = nlohmann::ordered_json;

// -- names -------------------------------------------------------------------------------------------

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'
         || c == '.' || c == '-';
}

bool is_valid_name(std::string_view name, std::size_t max_size) {
  return !name.empty() && name.size() <= max_size
         && std::all_of(name.begin(), name.end(), is_name_char);
}

// -- bounded parsing ---------------------------------------------------------------------------------

enum class parse_status { ok, too_deep, bad_json };

/// Builds a JSON tree from SAX events and aborts at the first container that would nest deeper than
/// the limit. nlohmann's own DOM parser accepts any depth, but copying or dumping a very deep tree
/// recurses and overflows the stack, so a deep frame must never become a tree.
class bounded_builder final : public nlohmann::json_sax<json> {
public:
  bounded_builder(json& root, std::size_t max_depth) : root_(root), max_depth_(max_depth) {
    // nop
  }

  parse_status status() const { return status_; }

  /// Byte offset where the parser gave up; meaningful only when status() is bad_json.
  std::size_t error_position() const { return error_position_; }

  bool null() override { return insert(json(nullptr)); }
  bool boolean(bool val) override { return insert(json(val)); }
  bool number_integer(number_integer_t val) override { return insert(json(val)); }
  bool number_unsigned(number_unsigned_t val) override { return insert(json(val)); }
  bool number_float(number_float_t val, const string_t&) override { return insert(json(val)); }
  bool string(string_t& val) override { return insert(json(std::move(val))); }
  bool binary(binary_t&) override { return fail(parse_status::bad_json, 0); }  // never in text JSON

  bool start_object(std::size_t) override { return open(json::object()); }
  bool end_object() override { return close(); }
  bool start_array(std::size_t) override { return open(json::array()); }
  bool end_array() override { return close(); }

  bool key(string_t& val) override {
    key_ = std::move(val);
    return true;
  }

  bool parse_error(std::size_t position, const std::string&, const json::exception&) override {
    return fail(parse_status::bad_json, position);
  }

private:
  // The parser only ever appends to the innermost open container, so pointers into outer ones stay
  // valid while a child is open.
  json* place(json&& value) {
    if (open_.empty()) {
      root_ = std::move(value);
      return &root_;
    }
    json& parent = *open_.back();
    if (parent.is_array()) {
      parent.push_back(std::move(value));
      return &parent.back();
    }
    // A repeated key overwrites: the last one wins, as with nlohmann's own parser.
    json& slot = parent[std::move(key_)];
    slot = std::move(value);
    return &slot;
  }

  bool insert(json&& value) {
    place(std::move(value));
    return true;
  }

  bool open(json&& container) {
    if (open_.size() >= max_depth_)
      return fail(parse_status::too_deep, 0);
    open_.push_back(place(std::move(container)));
    return true;
  }

  bool close() {
    open_.pop_back();
    return true;
  }

  bool fail(parse_status status, std::size_t position) {
    status_ = status;
    error_position_ = position;
    return false;  // stops the parser
  }

  json& root_;
  std::size_t max_depth_;
  std::vector<json*> open_;
  std::string key_;
  parse_status status_ = parse_status::ok;
  std::size_t error_position_ = 0;
};

/// Parses `text` into `root` unless it is invalid JSON or nests deeper than `max_depth`.
parse_status parse_bounded(std::string_view text, std::size_t max_depth, json& root,
                           std::size_t& error_position) {
  bounded_builder builder{root, max_depth};
  const bool ok = json::sax_parse(text.data(), text.data() + text.size(), &builder);
  error_position = builder.error_position();
  if (!ok && builder.status() == parse_status::ok)
    return parse_status::bad_json;
  return builder.status();
}

// -- field access ------------------------------------------------------------------------------------

constexpr const char* user_name_rule = "1-32 characters of A-Z, a-z, 0-9, '_', '.' or '-'";

std::string quoted(const char* field) {
  return std::string{"\""} + field + "\"";
}

/// Reads the fields of one command object and remembers the first problem. Later reads after a
/// failure return defaults, so command decoders read straight through and check once at the end.
class field_reader {
public:
  field_reader(const json& object, const codec_limits& limits) : object_(object), limits_(limits) {
    // nop
  }

  const codec_limits& limits() const { return limits_; }

  /// A required room name.
  std::string room() {
    std::string name = required_string("room");
    if (!is_valid_room_name(name))
      fail(error_code::invalid_name,
           "field \"room\" must be 1-64 characters of A-Z, a-z, 0-9, '_', '.' or '-'");
    return name;
  }

  std::string required_string(const char* field) {
    const json* value = find(field);
    if (value == nullptr) {
      fail(error_code::missing_field, "missing field " + quoted(field));
      return {};
    }
    return string_value(field, *value);
  }

  std::optional<std::string> optional_string(const char* field) {
    const json* value = find(field);
    if (value == nullptr)
      return std::nullopt;
    return string_value(field, *value);
  }

  /// An optional non-negative integer. Absent is fine; null, negative, fractional and non-numbers
  /// are not, because silently ignoring them would hide client bugs.
  std::optional<uint64_t> optional_uint(const char* field) {
    const json* value = find(field);
    if (value == nullptr)
      return std::nullopt;
    if (!value->is_number_unsigned()) {
      fail(error_code::bad_field, "field " + quoted(field) + " must be a non-negative integer");
      return std::nullopt;
    }
    return value->get<uint64_t>();
  }

  /// An optional page size: absent means `fallback`, 0 is a bad_field, and larger values are
  /// quietly capped to `max` (before narrowing, so that a huge value cannot wrap to a small one).
  uint32_t page_limit(const char* field, uint32_t fallback, uint32_t max) {
    const auto limit = optional_uint(field);
    if (limit == uint64_t{0})
      fail(error_code::bad_field, "field " + quoted(field) + " must be at least 1");
    return static_cast<uint32_t>(std::min<uint64_t>(limit.value_or(fallback), max));
  }

  /// A required, non-empty token of at most max_token_bytes (auth and refresh).
  std::string token() {
    auto token = required_string("token");
    if (token.empty() && !error_)
      fail(error_code::bad_field, "field \"token\" must not be empty");
    if (token.size() > limits_.max_token_bytes)
      fail(error_code::bad_field, "field \"token\" must be at most "
                                    + std::to_string(limits_.max_token_bytes) + " bytes");
    return token;
  }

  /// An optional user name; a present one must follow the naming rule.
  std::optional<std::string> optional_user_name(const char* field) {
    auto name = optional_string(field);
    if (name && !is_valid_user_name(*name))
      fail(error_code::invalid_name, "field " + quoted(field) + " must be a user name: " + user_name_rule);
    return name;
  }

  /// A required array of 1 to `max` user names. Its shape is checked before the names, so that an
  /// array holding a non-string is a bad_field wherever the non-string sits.
  std::vector<std::string> user_names(const char* field, std::size_t max) {
    const json* value = find(field);
    if (value == nullptr) {
      fail(error_code::missing_field, "missing field " + quoted(field));
      return {};
    }
    const bool strings = value->is_array()
                         && std::all_of(value->begin(), value->end(),
                                        [](const json& x) { return x.is_string(); });
    if (!strings || value->empty() || value->size() > max) {
      fail(error_code::bad_field, "field " + quoted(field) + " must be an array of 1 to "
                                    + std::to_string(max) + " user names");
      return {};
    }
    std::vector<std::string> names;
    names.reserve(value->size());
    for (const auto& x : *value) {
      names.push_back(x.get<std::string>());
      if (!is_valid_user_name(names.back()))
        fail(error_code::invalid_name, "field " + quoted(field) + " must hold user names: " + user_name_rule);
    }
    return names;
  }

  /// Records a problem unless an earlier one is already recorded, so that checks on a value that
  /// failed to read (and came back empty) cannot replace the real reason.
  void fail(error_code code, std::string message) {
    if (!error_)
      error_ = decode_error{code, std::move(message)};
  }

  /// The decoded command, or the first problem met while reading it.
  template <class Command>
  command finish(Command&& cmd) {
    if (error_)
      return std::move(*error_);
    return std::forward<Command>(cmd);
  }

private:
  const json* find(const char* field) const {
    auto it = object_.find(field);
    return it == object_.end() ? nullptr : &*it;
  }

  std::string string_value(const char* field, const json& value) {
    if (!value.is_string()) {
      fail(error_code::bad_field, "field " + quoted(field) + " must be a string");
      return {};
    }
    return value.get<std::string>();
  }

  const json& object_;
  const codec_limits& limits_;
  std::optional<decode_error> error_;
};

// -- commands ----------------------------------------------------------------------------------------

command decode_join(field_reader& in) {
  join_cmd cmd;
  cmd.room = in.room();
  cmd.since = in.optional_uint("since");
  cmd.epoch = in.optional_uint("epoch");
  return in.finish(std::move(cmd));
}

command decode_send(field_reader& in) {
  send_cmd cmd;
  cmd.room = in.room();
  cmd.text = in.required_string("text");
  if (cmd.text.empty())
    in.fail(error_code::bad_field, "field \"text\" must not be empty");
  if (cmd.text.size() > in.limits().max_text_bytes)
    in.fail(error_code::text_too_long, "field \"text\" is longer than "
                                         + std::to_string(in.limits().max_text_bytes) + " bytes");
  cmd.cid = in.optional_string("cid").value_or(std::string{});
  if (cmd.cid.size() > in.limits().max_cid_bytes)
    in.fail(error_code::bad_field, "field \"cid\" must be at most "
                                     + std::to_string(in.limits().max_cid_bytes) + " bytes");
  return in.finish(std::move(cmd));
}

command decode_history(field_reader& in) {
  history_cmd cmd;
  cmd.room = in.room();
  cmd.before = in.optional_uint("before");
  // The room treats before == 0 as "newest", so a literal 0 from a client would silently page the
  // wrong end of the history instead of the (empty) range it asked for.
  if (cmd.before == uint64_t{0})
    in.fail(error_code::bad_field, "field \"before\" must be at least 1");
  cmd.limit = in.page_limit("limit", in.limits().default_history_page, in.limits().max_history_page);
  return in.finish(std::move(cmd));
}

command decode_leave(field_reader& in) {
  return in.finish(leave_cmd{in.room()});
}

command decode_who(field_reader& in) {
  who_cmd cmd;
  cmd.room = in.room();
  cmd.after = in.optional_user_name("after");
  cmd.limit = in.page_limit("limit", in.limits().page_size, in.limits().page_size);
  return in.finish(std::move(cmd));
}

command decode_typing(field_reader& in) {
  return in.finish(typing_cmd{in.room()});
}

command decode_status(field_reader& in) {
  return in.finish(status_cmd{in.user_names("users", in.limits().max_status_users)});
}

command decode_ping(field_reader& in) {
  return in.finish(ping_cmd{});
}

command decode_auth(field_reader& in) {
  auth_cmd cmd{in.token()};
  return in.finish(std::move(cmd));
}

command decode_refresh(field_reader& in) {
  refresh_cmd cmd{in.token()};
  return in.finish(std::move(cmd));
}

/// The fields every moderation command shares: an optional room (required unless `server_wide`
/// may apply), and an optional reason.
moderate_cmd moderation_base(field_reader& in, moderation_action action, bool room_optional) {
  moderate_cmd cmd;
  cmd.action = action;
  if (room_optional) {
    auto room = in.optional_string("room");
    if (room && !is_valid_room_name(*room))
      in.fail(error_code::invalid_name,
              "field \"room\" must be 1-64 characters of A-Z, a-z, 0-9, '_', '.' or '-'");
    cmd.room = room.value_or(std::string{});
  } else {
    cmd.room = in.room();
  }
  cmd.reason = in.optional_string("reason").value_or(std::string{});
  if (cmd.reason.size() > in.limits().max_reason_bytes)
    in.fail(error_code::bad_field, "field \"reason\" must be at most "
                                     + std::to_string(in.limits().max_reason_bytes) + " bytes");
  return cmd;
}

/// A moderation command aimed at a user: kick, ban, unban, mute, unmute.
template <moderation_action Action>
command decode_user_action(field_reader& in) {
  constexpr bool server_wide_allowed = Action == moderation_action::ban || Action == moderation_action::unban;
  auto cmd = moderation_base(in, Action, server_wide_allowed);
  auto user = in.required_string("user");
  if (!is_valid_user_name(user))
    in.fail(error_code::invalid_name, std::string{"field \"user\" must be a user name: "} + user_name_rule);
  cmd.user = std::move(user);
  if constexpr (Action == moderation_action::ban || Action == moderation_action::mute) {
    cmd.duration = in.optional_uint("duration");
    if (cmd.duration == uint64_t{0})
      in.fail(error_code::bad_field, "field \"duration\" must be at least 1 (seconds); omit it for good");
    // Ten years is "for good" in practice; capping keeps until = now + duration far from overflow.
    constexpr uint64_t max_duration = 10ull * 365 * 24 * 3600;
    if (cmd.duration && *cmd.duration > max_duration)
      in.fail(error_code::bad_field, "field \"duration\" must be at most "
                                       + std::to_string(max_duration) + " seconds; omit it for good");
  }
  return in.finish(std::move(cmd));
}

command decode_delete(field_reader& in) {
  auto cmd = moderation_base(in, moderation_action::delete_message, false);
  auto id = in.optional_uint("id");
  if (!id)
    in.fail(error_code::missing_field, "missing field \"id\"");
  else if (*id == 0)
    in.fail(error_code::bad_field, "field \"id\" must be at least 1");
  cmd.id = id.value_or(0);
  return in.finish(std::move(cmd));
}

// Always decoded: whether the server honours it ([testing] fault_injection) is the session's call,
// since the codec knows nothing of configuration beyond its limits.
command decode_crash_room(field_reader& in) {
  return in.finish(crash_room_cmd{in.room()});
}

struct command_decoder {
  std::string_view type;
  command (*decode)(field_reader&);
};

constexpr command_decoder command_decoders[] = {
  {"join", decode_join},
  {"send", decode_send},
  {"history", decode_history},
  {"leave", decode_leave},
  {"who", decode_who},
  {"typing", decode_typing},
  {"status", decode_status},
  {"ping", decode_ping},
  {"crash_room", decode_crash_room},
  {"auth", decode_auth},
  {"refresh", decode_refresh},
  {"kick", decode_user_action<moderation_action::kick>},
  {"ban", decode_user_action<moderation_action::ban>},
  {"unban", decode_user_action<moderation_action::unban>},
  {"mute", decode_user_action<moderation_action::mute>},
  {"unmute", decode_user_action<moderation_action::unmute>},
  {"delete", decode_delete},
};

command decode_command(const json& object, const codec_limits& limits) {
  auto type = object.find("type");
  if (type == object.end())
    return decode_error{error_code::missing_field, "missing field \"type\""};
  if (!type->is_string())
    return decode_error{error_code::bad_field, "field \"type\" must be a string"};
  const auto& name = type->get_ref<const std::string&>();
  for (const auto& entry : command_decoders) {
    if (entry.type == name) {
      field_reader in{object, limits};
      return entry.decode(in);
    }
  }
  return decode_error{error_code::unknown_type, "field \"type\" names no known command"};
}

/// Reads "ref" as raw JSON text. Returns an error when present with a type we cannot echo safely.
std::optional<decode_error> decode_ref(const json& object, const codec_limits& limits, ref_t& ref) {
  auto it = object.find("ref");
  if (it == object.end())
    return std::nullopt;
  const bool short_string =
    it->is_string() && it->get_ref<const std::string&>().size() <= limits.max_ref_bytes;
  if (!short_string && !it->is_number_integer())
    return decode_error{error_code::bad_field,
                        "field \"ref\" must be an integer or a string of at most "
                          + std::to_string(limits.max_ref_bytes) + " bytes"};
  ref = it->dump();
  return std::nullopt;
}

inbound decode_frame(std::string_view text, const codec_limits& limits) {
  json root;
  std::size_t error_position = 0;
  switch (parse_bounded(text, limits.max_depth, root, error_position)) {
    case parse_status::too_deep:
      return {decode_error{error_code::too_deep, "JSON nests deeper than "
                                                   + std::to_string(limits.max_depth) + " levels"},
              std::nullopt};
    case parse_status::bad_json:
      return {decode_error{error_code::bad_json, "frame is not valid JSON (near byte "
                                                   + std::to_string(error_position) + ")"},
              std::nullopt};
    case parse_status::ok:
      break;
  }
  if (!root.is_object())
    return {decode_error{error_code::bad_json, "frame must be a JSON object"}, std::nullopt};
  inbound result{ping_cmd{}, std::nullopt};
  if (auto error = decode_ref(root, limits, result.ref))
    result.cmd = std::move(*error);
  else
    result.cmd = decode_command(root, limits);
  return result;
}

// -- encoding ----------------------------------------------------------------------------------------

std::string dump(const out_json& value) {
  // Replacing invalid UTF-8 keeps a stray byte in a server-side string from turning into an
  // exception in the middle of a broadcast.
  return value.dump(-1, ' ', false, out_json::error_handler_t::replace);
}

/// The JSON value of a raw ref. Refs normally come from decode(); anything else that is not a
/// plain string or integer is sent as null rather than trusted.
out_json ref_value(const ref_t& ref) {
  if (!ref)
    return nullptr;
  json parsed;
  std::size_t ignored = 0;
  if (parse_bounded(*ref, 0, parsed, ignored) != parse_status::ok)
    return nullptr;
  if (parsed.is_string())
    return parsed.get<std::string>();
  if (parsed.is_number_unsigned())
    return parsed.get<uint64_t>();
  if (parsed.is_number_integer())
    return parsed.get<int64_t>();
  return nullptr;
}

void put_ref(out_json& object, const ref_t& ref) {
  if (ref)
    object["ref"] = ref_value(ref);
}

out_json message_object(const chat_message& msg) {
  out_json object{{"type", "message"}, {"room", msg.room}, {"id", msg.id},
                  {"from", msg.from},  {"text", msg.text}, {"ts", msg.ts}};
  if (!msg.cid.empty())
    object["cid"] = msg.cid;
  if (!msg.name.empty())
    object["name"] = msg.name;
  if (msg.deleted)
    object["deleted"] = true;
  return object;
}

const char* to_string(presence_mode mode) {
  return mode == presence_mode::counts ? "counts" : "users";
}

/// The presence fields "joined" and "presence_state" share; names only in users mode.
void put_presence(out_json& object, const presence_summary& presence) {
  object["count"] = presence.count;
  object["presence"] = to_string(presence.mode);
  if (presence.mode == presence_mode::users)
    object["members"] = presence.members;
}

out_json message_array(const std::vector<chat_message>& messages) {
  out_json array = out_json::array();
  for (const auto& msg : messages)
    array.push_back(message_object(msg));
  return array;
}

/// What "moderation" and "moderated" both say: the action and its target (no room: server-wide; a
/// delete names its message, the others their user).
out_json moderation_object(const char* type, moderation_action action, const std::string& room,
                           const std::string& user, uint64_t id) {
  out_json object{{"type", type}, {"action", to_string(action)}};
  if (!room.empty())
    object["room"] = room;
  if (action == moderation_action::delete_message)
    object["id"] = id;
  else
    object["user"] = user;
  return object;
}

} // namespace

// -- public interface --------------------------------------------------------------------------------

const char* to_string(error_code code) {
  switch (code) {
    case error_code::bad_json: return "bad_json";
    case error_code::too_deep: return "too_deep";
    case error_code::unknown_type: return "unknown_type";
    case error_code::missing_field: return "missing_field";
    case error_code::bad_field: return "bad_field";
    case error_code::invalid_name: return "invalid_name";
    case error_code::text_too_long: return "text_too_long";
    case error_code::not_member: return "not_member";
    case error_code::room_full: return "room_full";
    case error_code::too_many_rooms: return "too_many_rooms";
    case error_code::binary_not_supported: return "binary_not_supported";
    case error_code::rate_limited: return "rate_limited";
    case error_code::room_unavailable: return "room_unavailable";
    case error_code::store_unavailable: return "store_unavailable";
    case error_code::internal: return "internal";
    case error_code::room_limit: return "room_limit";
    case error_code::unauthenticated: return "unauthenticated";
    case error_code::forbidden: return "forbidden";
    case error_code::banned: return "banned";
    case error_code::muted: return "muted";
    case error_code::token_expired: return "token_expired";
    case error_code::not_found: return "not_found";
  }
  return "internal";  // only reachable through a cast of an out-of-range value
}

const char* to_string(moderation_action action) {
  switch (action) {
    case moderation_action::kick: return "kick";
    case moderation_action::ban: return "ban";
    case moderation_action::unban: return "unban";
    case moderation_action::mute: return "mute";
    case moderation_action::unmute: return "unmute";
    case moderation_action::delete_message: return "delete";
  }
  return "kick";
}

std::optional<moderation_action> moderation_action_named(std::string_view name) {
  for (auto action : {moderation_action::kick, moderation_action::ban, moderation_action::unban,
                      moderation_action::mute, moderation_action::unmute,
                      moderation_action::delete_message})
    if (name == to_string(action))
      return action;
  return std::nullopt;
}

bool is_valid_user_name(std::string_view name) {
  return is_valid_name(name, 32);
}

bool is_valid_room_name(std::string_view name) {
  return is_valid_name(name, 64);
}

inbound decode(std::string_view text, const codec_limits& limits) {
  // Parsing reports errors through the SAX handler, so only allocation failure can throw here; the
  // header promises callers a value either way.
  try {
    return decode_frame(text, limits);
  } catch (const std::exception&) {
    return {decode_error{error_code::internal, "the server could not decode this frame"}, std::nullopt};
  }
}

inbound binary_frame_error() {
  return {decode_error{error_code::binary_not_supported,
                       "binary frames are not supported; send JSON text frames"},
          std::nullopt};
}

std::string encode(const welcome_event& ev) {
  out_json object{{"type", "welcome"}, {"user", ev.user}, {"session", ev.session}};
  if (!ev.name.empty())
    object["name"] = ev.name;
  if (!ev.roles.empty())
    object["roles"] = ev.roles;
  if (ev.expires_at)
    object["expires_at"] = *ev.expires_at;
  return dump(object);
}

std::string encode(const refreshed_event& ev) {
  out_json object{{"type", "refreshed"}, {"roles", ev.roles}, {"expires_at", ev.expires_at}};
  put_ref(object, ev.ref);
  return dump(object);
}

std::string encode(const moderation_event& ev) {
  auto object = moderation_object("moderation", ev.action, ev.room, ev.user, ev.id);
  object["by"] = ev.by;
  if (ev.until)
    object["until"] = *ev.until;
  if (!ev.reason.empty())
    object["reason"] = ev.reason;
  return dump(object);
}

std::string encode(const moderated_event& ev) {
  auto object = moderation_object("moderated", ev.action, ev.room, ev.user, ev.id);
  put_ref(object, ev.ref);
  return dump(object);
}

std::string encode(const joined_event& ev) {
  // Everything but the history goes through the JSON library; the history is the messages' own
  // encoded text, joined by commas. The result is byte for byte what dumping the whole object gives.
  out_json head{{"type", "joined"}, {"room", ev.room}, {"epoch", ev.epoch}, {"last_id", ev.last_id}};
  put_presence(head, ev.presence);
  std::string out = dump(head);
  std::string ref = ev.ref ? dump(ref_value(ev.ref)) : std::string{};
  std::size_t size = out.size() + 16 + 20 + ref.size() + 8;
  for (const auto& msg : ev.history)
    size += msg ? msg->size() + 1 : 0;
  out.reserve(size);
  out.pop_back();  // the closing brace: more fields follow
  out += R"(,"history":[)";
  bool first = true;
  for (const auto& msg : ev.history) {
    if (!msg)
      continue;
    if (!first)
      out += ',';
    out += *msg;
    first = false;
  }
  out += ']';
  if (ev.recovered)
    out += *ev.recovered ? R"(,"recovered":true)" : R"(,"recovered":false)";
  if (ev.ref) {
    out += R"(,"ref":)";
    out += ref;
  }
  out += '}';
  return out;
}

std::string encode(const left_event& ev) {
  out_json object{{"type", "left"}, {"room", ev.room}, {"reason", ev.reason}};
  put_ref(object, ev.ref);
  return dump(object);
}

std::string encode(const history_event& ev) {
  out_json object{{"type", "history"}, {"room", ev.room}, {"messages", message_array(ev.messages)},
                  {"more", ev.more}};
  put_ref(object, ev.ref);
  return dump(object);
}

std::string encode(const who_event& ev) {
  out_json object{{"type", "who"},     {"room", ev.room}, {"members", ev.members},
                  {"count", ev.count}, {"more", ev.more}};
  put_ref(object, ev.ref);
  return dump(object);
}

std::string encode(const presence_diff_event& ev) {
  out_json object{{"type", "presence_diff"}, {"room", ev.room}};
  if (ev.mode == presence_mode::users) {
    object["joins"] = ev.joins;
    object["leaves"] = ev.leaves;
  }
  object["count"] = ev.count;
  return dump(object);
}

std::string encode(const presence_state_event& ev) {
  out_json object{{"type", "presence_state"}, {"room", ev.room}};
  put_presence(object, ev.presence);
  return dump(object);
}

std::string encode(const status_event& ev) {
  out_json users = out_json::array();
  for (const auto& entry : ev.users)
    users.push_back(out_json{{"user", entry.user}, {"online", entry.online}, {"sessions", entry.sessions}});
  out_json object{{"type", "status"}, {"users", std::move(users)}};
  put_ref(object, ev.ref);
  return dump(object);
}

std::string encode(const typing_event& ev) {
  return dump(out_json{{"type", "typing"}, {"room", ev.room}, {"user", ev.user}});
}

std::string encode(const notice_event& ev) {
  return dump(out_json{{"type", "notice"}, {"room", ev.room}, {"text", ev.text}, {"ts", ev.ts}});
}

std::string encode(const pong_event& ev) {
  out_json object{{"type", "pong"}};
  put_ref(object, ev.ref);
  return dump(object);
}

std::string encode(const error_event& ev) {
  // Unlike replies, errors always carry "ref" so a client can tell "not about any request" (null)
  // from a missing key.
  out_json object{{"type", "error"}, {"code", to_string(ev.code)}, {"message", ev.message},
                  {"ref", ref_value(ev.ref)}};
  if (ev.until)
    object["until"] = *ev.until;
  return dump(object);
}

std::string encode(const chat_message& msg) {
  return dump(message_object(msg));
}

// -- JSON Web Token parts ------------------------------------------------------------------------

namespace {

/// A token's header and claims are flat objects; the deepest legitimate value is an array of
/// strings inside the top object (aud, roles, rooms). A little headroom, no more.
constexpr std::size_t token_json_depth = 4;

/// Parses a token part into an object, or nothing (bad JSON, too deep, not an object).
std::optional<json> parse_token_object(std::string_view text) {
  json root;
  std::size_t ignored = 0;
  if (parse_bounded(text, token_json_depth, root, ignored) != parse_status::ok || !root.is_object())
    return std::nullopt;
  return root;
}

/// Reads an optional string member. False when the member is there but not a string.
bool read_string(const json& object, const std::string& key, std::string& out) {
  auto it = object.find(key);
  if (it == object.end())
    return true;
  if (!it->is_string())
    return false;
  out = it->get<std::string>();
  return true;
}

/// Reads an optional integer member (a NumericDate). False for any other type, for fractions and
/// for unsigned values beyond int64_t.
bool read_integer(const json& object, const std::string& key, std::optional<int64_t>& out) {
  auto it = object.find(key);
  if (it == object.end())
    return true;
  if (it->is_number_unsigned()) {
    auto value = it->get<uint64_t>();
    if (value > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      return false;
    out = static_cast<int64_t>(value);
    return true;
  }
  if (!it->is_number_integer())
    return false;
  out = it->get<int64_t>();
  return true;
}

/// Reads an optional member that is an array of strings or, when `single_allowed`, one string.
bool read_strings(const json& object, const std::string& key, bool single_allowed,
                  std::vector<std::string>& out) {
  auto it = object.find(key);
  if (it == object.end())
    return true;
  if (it->is_string() && single_allowed) {
    out.push_back(it->get<std::string>());
    return true;
  }
  if (!it->is_array())
    return false;
  for (const auto& item : *it) {
    if (!item.is_string())
      return false;
    out.push_back(item.get<std::string>());
  }
  return true;
}

std::optional<auth::token_claims> decode_claims(std::string_view text,
                                                const std::string& roles_claim,
                                                const std::string& rooms_claim) {
  auto root = parse_token_object(text);
  if (!root)
    return std::nullopt;
  auth::token_claims claims;
  bool ok = read_string(*root, "sub", claims.sub) && read_string(*root, "name", claims.name)
            && read_string(*root, "iss", claims.iss) && read_strings(*root, "aud", true, claims.aud)
            && read_integer(*root, "exp", claims.exp) && read_integer(*root, "nbf", claims.nbf)
            && read_integer(*root, "iat", claims.iat)
            && read_strings(*root, roles_claim, true, claims.roles)
            && read_strings(*root, rooms_claim, false, claims.rooms);
  if (!ok)
    return std::nullopt;
  return claims;
}

} // namespace

std::optional<auth::token_header> decode_token_header(std::string_view text) {
  // Token parts come from unauthenticated clients: whatever goes wrong is "no header", never an
  // exception (only allocation failure could throw here).
  try {
    auto root = parse_token_object(text);
    if (!root)
      return std::nullopt;
    auto alg = root->find("alg");
    if (alg == root->end() || !alg->is_string())
      return std::nullopt;
    auth::token_header header;
    header.alg = alg->get<std::string>();
    if (!read_string(*root, "typ", header.typ))
      return std::nullopt;
    return header;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::optional<auth::token_claims> decode_token_claims(std::string_view text,
                                                      const std::string& roles_claim,
                                                      const std::string& rooms_claim) {
  try {
    return decode_claims(text, roles_claim, rooms_claim);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::string encode_token_header(const auth::token_header& header) {
  out_json object{{"alg", header.alg}};
  if (!header.typ.empty())
    object["typ"] = header.typ;
  return dump(object);
}

std::string encode_token_claims(const auth::token_claims& claims, const std::string& roles_claim,
                                const std::string& rooms_claim) {
  out_json object = out_json::object();
  auto put_string = [&](const char* key, const std::string& value) {
    if (!value.empty())
      object[key] = value;
  };
  auto put_integer = [&](const char* key, const std::optional<int64_t>& value) {
    if (value)
      object[key] = *value;
  };
  put_string("sub", claims.sub);
  put_string("name", claims.name);
  put_string("iss", claims.iss);
  // One audience is written as a plain string, as most issuers do; several as an array.
  if (claims.aud.size() == 1)
    object["aud"] = claims.aud.front();
  else if (!claims.aud.empty())
    object["aud"] = claims.aud;
  put_integer("iat", claims.iat);
  put_integer("nbf", claims.nbf);
  put_integer("exp", claims.exp);
  if (!claims.roles.empty())
    object[roles_claim] = claims.roles;
  if (!claims.rooms.empty())
    object[rooms_claim] = claims.rooms;
  return dump(object);
}

} // namespace parley::protocol
