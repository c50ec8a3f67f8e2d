#include "admin/admin_json.hpp"

#include "protocol/codec.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

namespace parley::admin {

namespace {

using json = nlohmann::json;
using out_json = nlohmann::ordered_json;  // keys in the order written: easier to read with curl

/// Admin bodies are flat objects; anything nested deeper than this is refused before it becomes
/// a tree (nlohmann recurses when copying or dumping, so depth must be bounded up front).
constexpr std::size_t max_body_depth = 2;

/// The deepest nesting of objects and arrays in `text`, ignoring brackets inside strings.
std::size_t nesting_depth(std::string_view text) {
  std::size_t depth = 0;
  std::size_t deepest = 0;
  bool in_string = false;
  bool escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      deepest = std::max(deepest, ++depth);
    } else if ((c == '}' || c == ']') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

body_error bad_json(std::string message) {
  return body_error{"bad_json", std::move(message)};
}

body_error bad_field(std::string message) {
  return body_error{"bad_field", std::move(message)};
}

/// The body as a JSON object, or why not. An empty body is an empty object.
std::variant<json, body_error> parse_object(std::string_view body) {
  auto first = body.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos)
    return json::object();
  if (nesting_depth(body) > max_body_depth)
    return bad_json("the body nests too deeply: send a flat JSON object");
  auto root = json::parse(body.begin(), body.end(), nullptr, false);
  if (root.is_discarded())
    return bad_json("the body is not valid JSON");
  if (!root.is_object())
    return bad_json("the body must be a JSON object");
  return root;
}

/// Reads the fields of one body in turn and keeps the first problem.
class field_reader {
public:
  explicit field_reader(const json& object) : object_(object) {
    // nop
  }

  /// A required user name ([A-Za-z0-9_.-], 1-32).
  std::string user() {
    auto value = string_field("user", true);
    if (ok() && !protocol::is_valid_user_name(value))
      fail("\"user\" must be a user name: 1-32 characters of A-Z, a-z, 0-9, '_', '.', '-'");
    return value;
  }

  /// An optional string of at most `max_bytes` bytes ("" when absent).
  std::string text(const char* key, std::size_t max_bytes, bool required) {
    auto value = string_field(key, required);
    if (ok() && value.size() > max_bytes)
      fail(std::string{"\""} + key + "\" is longer than " + std::to_string(max_bytes) + " bytes");
    if (ok() && required && value.empty())
      fail(std::string{"\""} + key + "\" must not be empty");
    return value;
  }

  /// An optional positive integer no larger than `max`.
  std::optional<int64_t> integer(const char* key, int64_t min, int64_t max) {
    auto i = object_.find(key);
    if (!ok() || i == object_.end() || i->is_null())
      return std::nullopt;
    if (!i->is_number_integer()) {
      fail(std::string{"\""} + key + "\" must be an integer");
      return std::nullopt;
    }
    // Non-negative numbers parse as unsigned: compare those unsigned, so that 2^63 and up never
    // wrap into the range.
    bool in_range = i->is_number_unsigned()
                      ? max >= 0 && i->get<uint64_t>() <= static_cast<uint64_t>(max)
                          && static_cast<int64_t>(i->get<uint64_t>()) >= min
                      : i->get<int64_t>() >= min && i->get<int64_t>() <= max;
    if (!in_range) {
      fail(std::string{"\""} + key + "\" must be between " + std::to_string(min) + " and "
           + std::to_string(max));
      return std::nullopt;
    }
    return i->is_number_unsigned() ? static_cast<int64_t>(i->get<uint64_t>()) : i->get<int64_t>();
  }

  bool ok() const { return !error_; }
  body_error error() const { return *error_; }

  void fail(std::string message) {
    if (!error_)
      error_ = bad_field(std::move(message));
  }

private:
  std::string string_field(const char* key, bool required) {
    auto i = object_.find(key);
    if (!ok())
      return {};
    if (i == object_.end() || i->is_null()) {
      if (required)
        fail(std::string{"\""} + key + "\" is missing");
      return {};
    }
    if (!i->is_string()) {
      fail(std::string{"\""} + key + "\" must be a string");
      return {};
    }
    return i->get<std::string>();
  }

  const json& object_;
  std::optional<body_error> error_;
};

/// Parses `body` and hands the object to `read`, which fills a T through a field_reader.
template <class T, class Read>
decoded<T> decode_with(std::string_view body, Read&& read) {
  auto parsed = parse_object(body);
  if (auto* error = std::get_if<body_error>(&parsed))
    return *error;
  field_reader fields{std::get<json>(parsed)};
  T out = read(fields);
  if (!fields.ok())
    return fields.error();
  return out;
}

// Ten years: far enough for "for a long time", small enough that no arithmetic overflows.
constexpr int64_t max_duration_s = 10LL * 365 * 24 * 3600;

} // namespace

decoded<kick_body> decode_kick(std::string_view body, const body_limits& limits) {
  return decode_with<kick_body>(body, [&](field_reader& f) {
    kick_body out;
    out.user = f.user();
    out.reason = f.text("reason", limits.max_reason_bytes, false);
    return out;
  });
}

decoded<ban_body> decode_ban(std::string_view body, const body_limits& limits, int64_t now_ms) {
  return decode_with<ban_body>(body, [&](field_reader& f) {
    ban_body out;
    out.user = f.user();
    out.reason = f.text("reason", limits.max_reason_bytes, false);
    auto until = f.integer("until", now_ms + 1, now_ms + max_duration_s * 1000);
    auto duration = f.integer("duration", 1, max_duration_s);
    if (until && duration)
      f.fail("give \"until\" or \"duration\", not both");
    if (until)
      out.until = until;
    else if (duration)
      out.until = now_ms + *duration * 1000;
    return out;
  });
}

decoded<unban_body> decode_unban(std::string_view body, const body_limits& limits) {
  return decode_with<unban_body>(body, [&](field_reader& f) {
    unban_body out;
    out.user = f.user();
    out.reason = f.text("reason", limits.max_reason_bytes, false);
    return out;
  });
}

decoded<notice_body> decode_notice(std::string_view body, const body_limits& limits) {
  return decode_with<notice_body>(body, [&](field_reader& f) {
    return notice_body{f.text("text", limits.max_notice_bytes, true)};
  });
}

decoded<drain_body> decode_drain(std::string_view body, const body_limits& limits) {
  return decode_with<drain_body>(body, [&](field_reader& f) {
    return drain_body{f.integer("period_ms", 0, limits.max_drain_period_ms)};
  });
}

// -- answers -------------------------------------------------------------------------------------------

namespace {

std::string dump(const out_json& value) {
  // Strings come from users (names are checked, reasons and notices are not): never throw on
  // invalid UTF-8, replace it.
  return value.dump(-1, ' ', false, out_json::error_handler_t::replace);
}

/// Rates with three decimals: 0.016666... messages/s reads better as 0.017.
double rounded(double rate) {
  if (!std::isfinite(rate) || rate < 0)
    return 0;
  return std::round(rate * 1000) / 1000;
}

} // namespace

std::string encode_error(std::string_view code, std::string_view message) {
  return dump(out_json{{"error", code}, {"message", message}});
}

std::string encode_rooms(const std::vector<room_summary>& rooms) {
  auto list = out_json::array();
  for (const auto& r : rooms) {
    if (!r.answered) {
      list.push_back(out_json{{"name", r.name}, {"answered", false}});
      continue;
    }
    list.push_back(out_json{{"name", r.name},
                            {"members", r.users},
                            {"connections", r.connections},
                            {"present", r.present},
                            {"epoch", r.epoch},
                            {"last_id", r.last_id},
                            {"message_rate", rounded(r.message_rate)}});
  }
  return dump(out_json{{"rooms", std::move(list)}});
}

std::string encode_members(std::string_view room, const std::vector<room_member_summary>& members) {
  auto list = out_json::array();
  for (const auto& m : members) {
    out_json entry{{"user", m.user}};
    if (!m.name.empty() && m.name != m.user)
      entry["name"] = m.name;
    entry["connections"] = m.connections;
    list.push_back(std::move(entry));
  }
  return dump(out_json{{"room", room}, {"members", std::move(list)}});
}

std::string encode_user(const user_report& report) {
  out_json out{{"user", report.user},
               {"online", report.online},
               {"in_grace", report.in_grace},
               {"banned", report.banned}};
  if (report.banned && report.banned_until)
    out["banned_until"] = *report.banned_until;
  auto sessions = out_json::array();
  for (const auto& s : report.sessions) {
    out_json entry{{"session", s.session}};
    if (!s.name.empty() && s.name != s.user)
      entry["name"] = s.name;
    entry["address"] = s.address.empty() ? out_json(nullptr) : out_json(s.address);
    entry["connected_since"] = s.connected_since;
    entry["rooms"] = s.rooms;
    entry["roles"] = s.roles;
    entry["signed_in"] = s.signed_in;
    sessions.push_back(std::move(entry));
  }
  out["sessions"] = std::move(sessions);
  out["unanswered"] = report.unanswered;
  return dump(out);
}

std::string encode_moderated(std::string_view action, std::string_view room, std::string_view user,
                             std::optional<int64_t> until) {
  out_json out{{"ok", true}, {"action", action}};
  if (!room.empty())
    out["room"] = room;
  out["user"] = user;
  if (until)
    out["until"] = *until;
  return dump(out);
}

std::string encode_notice_sent(std::string_view room, uint64_t delivered) {
  return dump(out_json{{"ok", true}, {"room", room}, {"delivered", delivered}});
}

std::string encode_drain_started(int64_t period_ms) {
  return dump(out_json{{"draining", true}, {"period_ms", period_ms}});
}

} // namespace parley::admin
