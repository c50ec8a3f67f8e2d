#include "config/app_config.hpp"

#include "cluster/redis_address.hpp"
#include "config/command_line.hpp"

#include <caf/config_option_adder.hpp>
#include <caf/config_option.hpp>
#include <caf/config_value.hpp>
#include <caf/settings.hpp>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <limits>
#include <string>
#include <utility>

namespace parley {

app_config::app_config() {
  config_file_path = "config.ini";
  // CAF's own defaults are work-stealing pollers, one per core. On 2 cores one sharing worker
  // measured best for fan-out, churn and idle CPU alike (bench/README.md, "Thread defaults").
  set("scheduler.policy", caf::atom("sharing"));
  set("scheduler.max-threads", std::size_t{1});
  auto& v = values;
  opt_group{custom_options_, "server"}
    .add(v.server.address, "address", "address to listen on")
    .add(v.server.port, "port", "TCP port; 0 picks a free one")
    .add(v.server.web_root, "web_root", "directory served at /")
    .add(v.server.io_threads, "io_threads", "Asio threads")
    .add(v.server.allowed_origins, "allowed_origins",
         "origins allowed to open /ws; empty: same host only")
    .add(v.server.allowed_hosts, "allowed_hosts", "Host header values answered; empty: any (unsafe)")
    .add(v.server.trusted_proxies, "trusted_proxies", "proxies whose X-Forwarded-For is believed")
    .add(v.server.drain_period, "drain_period", "a drain closes connections spread over this long")
    .add(v.server.shutdown_grace, "shutdown_grace", "time for close handshakes on SIGTERM");
  opt_group{custom_options_, "limits"}
    .add(v.limits.max_connections_per_address, "max_connections_per_address",
         "concurrent connections per client address; 0: no limit")
    .add(v.limits.handshakes_per_second, "handshakes_per_second",
         "upgrade requests per address per second; 0: no limit")
    .add(v.limits.handshake_burst, "handshake_burst", "upgrade requests per address at once")
    .add(v.limits.max_connections, "max_connections", "connections in total; 0: from the fd limit");
  opt_group{custom_options_, "connection"}
    .add(v.connection.max_frame_bytes, "max_frame_bytes", "larger frames close with 1009")
    .add(v.connection.queue_soft_bytes, "queue_soft_bytes", "drop typing/presence past this")
    .add(v.connection.queue_hard_bytes, "queue_hard_bytes", "close with 4000 past this")
    .add(v.connection.idle_timeout, "idle_timeout", "drop peers silent this long")
    .add(v.connection.handshake_timeout, "handshake_timeout", "HTTP request and upgrade")
    .add(v.connection.write_timeout, "write_timeout", "a write stuck this long ends it")
    .add(v.connection.rate_per_second, "rate_per_second", "frames per second refill")
    .add(v.connection.rate_burst, "rate_burst", "token bucket size")
    .add(v.connection.abuse_limit, "abuse_limit", "more errors than this within abuse_window close with 4002")
    .add(v.connection.abuse_window, "abuse_window", "window of abuse_limit")
    .add(v.connection.max_rooms, "max_rooms", "rooms one connection may join")
    .add(v.connection.new_rooms_per_minute, "new_rooms_per_minute", "new rooms one connection may create per minute")
    .add(v.connection.new_rooms_burst, "new_rooms_burst", "new rooms one connection may create at once");
  opt_group{custom_options_, "protocol"}
    .add(v.protocol.max_text_bytes, "max_text_bytes", "longest message text")
    .add(v.protocol.max_json_depth, "max_json_depth", "deepest JSON nesting")
    .add(v.protocol.max_history_page, "max_history_page", "largest history page");
  opt_group{custom_options_, "rooms"}
    .add(v.rooms.capacity, "capacity", "members per room")
    .add(v.rooms.history_size, "history_size", "messages kept per room")
    .add(v.rooms.history_on_join, "history_on_join", "messages sent with joined")
    .add(v.rooms.max_replay, "max_replay", "most missed messages a rejoin with since recovers")
    .add(v.rooms.idle_retire, "idle_retire", "retire empty rooms after this")
    .add(v.rooms.typing_interval, "typing_interval", "one typing relay per user per this")
    .add(v.rooms.max_rooms, "max_rooms", "rooms in memory or stored at most; more are refused with room_limit");
  opt_group{custom_options_, "presence"}
    .add(v.presence.grace, "grace", "quick reconnects within this stay online")
    .add(v.presence.diff_interval, "diff_interval", "a room's presence changes leave this often")
    .add(v.presence.count_interval, "count_interval", "a large room's count leaves this often")
    .add(v.presence.page_size, "page_size", "names in joined, presence_state and a who page")
    .add(v.presence.user_limit, "user_limit", "rooms with more present users send counts");
  opt_group{custom_options_, "supervisor"}
    .add(v.supervisor.backoff_min, "backoff_min", "first restart delay")
    .add(v.supervisor.backoff_max, "backoff_max", "longest restart delay")
    .add(v.supervisor.backoff_factor, "backoff_factor", "delay growth per restart")
    .add(v.supervisor.backoff_reset, "backoff_reset", "stable this long resets the backoff")
    .add(v.supervisor.max_restarts, "max_restarts", "restarts allowed within restart_window")
    .add(v.supervisor.restart_window, "restart_window", "window of max_restarts");
  opt_group{custom_options_, "store"}
    .add(v.store.path, "path", "SQLite database file, created on first run")
    .add(v.store.commit_window, "commit_window", "longest wait to share a commit")
    .add(v.store.max_batch, "max_batch", "messages per commit at most")
    .add(v.store.synchronous, "synchronous", "\"full\": sync each commit (survives power loss); \"normal\"")
    .add(v.store.busy_timeout, "busy_timeout", "wait this long for a locked database")
    .add(v.store.max_db_bytes, "max_db_bytes", "refuse writes past this size; 0: no limit")
    .add(v.store.retain_per_room, "retain_per_room", "newest messages kept per room; 0: all")
    .add(v.store.retain_max_age, "retain_max_age", "drop older messages; 0: never")
    .add(v.store.retention_interval, "retention_interval", "how often retention runs");
  opt_group{custom_options_, "tls"}
    .add(v.tls.certificate, "certificate", "PEM certificate chain; with key: HTTPS and WSS")
    .add(v.tls.key, "key", "PEM private key of the certificate");
  opt_group{custom_options_, "auth"}
    .add(v.auth.mode, "mode", "\"open\" (unverified ?name=) or \"jwt\" (signed tokens)")
    .add(v.auth.algorithm, "algorithm", "HS256, RS256, ES256 or EdDSA")
    .add(v.auth.secret, "secret", "HS256 secret (at least 32 bytes)")
    .add(v.auth.secret_file, "secret_file", "file holding the HS256 secret")
    .add(v.auth.public_key, "public_key", "PEM public key file for RS256, ES256, EdDSA")
    .add(v.auth.issuer, "issuer", "required iss; empty: not checked")
    .add(v.auth.audience, "audience", "required aud; empty: not checked")
    .add(v.auth.leeway, "leeway", "clock skew allowed on exp and nbf")
    .add(v.auth.auth_timeout, "auth_timeout", "time for a first auth frame")
    .add(v.auth.refresh_grace, "refresh_grace", "time for a refresh after the token expired")
    .add(v.auth.roles_claim, "roles_claim", "claim holding the roles")
    .add(v.auth.rooms_claim, "rooms_claim", "claim listing private rooms")
    .add(v.auth.room_rules, "room_rules", "room permissions by name pattern, first match wins");
  opt_group{custom_options_, "log"}
    .add(v.log.level, "level", "least severe level logged: trace, debug, info, warn or error")
    .add(v.log.format, "format", "\"text\" lines, or \"json\": one object per line (ts, level, logger, msg)");
  opt_group{custom_options_, "admin"}
    .add(v.admin.address, "address", "address of the admin listener")
    .add(v.admin.port, "port", "port of the admin listener; 0 picks a free one")
    .add(v.admin.token, "token", "bearer token for /admin; empty: the admin API is off")
    .add(v.admin.token_file, "token_file", "file holding the admin token")
    .add(v.admin.web_root, "web_root", "directory of the admin page");
  opt_group{custom_options_, "cluster"}
    .add(v.cluster.mode, "mode", "\"single\" (SQLite, one node) or \"redis\" (nodes share rooms)")
    .add(v.cluster.redis, "redis", "host:port of Redis (redis mode)")
    .add(v.cluster.node_id, "node_id", "unique per node; empty: hostname-pid")
    .add(v.cluster.key_prefix, "key_prefix", "prefix of every Redis key")
    .add(v.cluster.durability, "durability",
         "\"strict\": ready only if Redis fsyncs every write (AOF always); \"relaxed\"")
    .add(v.cluster.presence_ttl, "presence_ttl", "a silent node's users go offline after this")
    .add(v.cluster.timeout, "timeout", "Redis connect and command timeout")
    .add(v.cluster.stream_max_length, "stream_max_length", "messages kept per room stream")
    .add(v.cluster.stream_max_age, "stream_max_age", "trim older messages; 0: never");
  opt_group{custom_options_, "testing"}.add(v.testing.fault_injection, "fault_injection",
                                            "accept crash_room (tests only)");
}

namespace {

/// The first duration setting below zero, if any: CAF accepts any signed duration ("-5s"), and no
/// Parley timeout, interval or window means anything below zero.
const char* negative_duration(const settings& v) {
  const std::pair<const char*, caf::timespan> durations[] = {
    {"server.drain_period", v.server.drain_period},
    {"server.shutdown_grace", v.server.shutdown_grace},
    {"connection.idle_timeout", v.connection.idle_timeout},
    {"connection.handshake_timeout", v.connection.handshake_timeout},
    {"connection.write_timeout", v.connection.write_timeout},
    {"connection.abuse_window", v.connection.abuse_window},
    {"rooms.idle_retire", v.rooms.idle_retire},
    {"rooms.typing_interval", v.rooms.typing_interval},
    {"presence.grace", v.presence.grace},
    {"supervisor.backoff_min", v.supervisor.backoff_min},
    {"supervisor.backoff_max", v.supervisor.backoff_max},
    {"supervisor.backoff_reset", v.supervisor.backoff_reset},
    {"supervisor.restart_window", v.supervisor.restart_window},
    {"store.commit_window", v.store.commit_window},
    {"store.busy_timeout", v.store.busy_timeout},
    {"store.retain_max_age", v.store.retain_max_age},
    {"store.retention_interval", v.store.retention_interval},
    {"auth.leeway", v.auth.leeway},
    {"auth.auth_timeout", v.auth.auth_timeout},
    {"auth.refresh_grace", v.auth.refresh_grace},
    {"cluster.stream_max_age", v.cluster.stream_max_age},
  };
  for (const auto& [key, value] : durations)
    if (value < caf::timespan{0})
      return key;
  return nullptr;
}

bool is_token_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.';
}

/// Nanoseconds per unit of the duration suffix `rest` starts with, or 0. Like CAF, only the
/// start counts: CAF takes "5se" as 5s followed by a stray character.
uint64_t unit_nanoseconds(std::string_view rest) {
  auto starts = [&](std::string_view unit) { return rest.substr(0, unit.size()) == unit; };
  if (starts("ns")) return 1;
  if (starts("us")) return 1'000;
  if (starts("ms")) return 1'000'000;
  if (starts("min")) return 60'000'000'000;
  if (starts("s")) return 1'000'000'000;
  if (starts("h")) return 3'600'000'000'000;
  return 0;
}

/// True if `token` reads as an integer (decimal, or hexadecimal after "0x") with a duration unit
/// whose value in nanoseconds does not fit in int64_t. An octal literal is read as decimal, which
/// only overestimates it.
bool overflows_as_duration(std::string_view token) {
  int base = 10;
  std::size_t i = 0;
  if (token.size() > 2 && token[0] == '0' && (token[1] == 'x' || token[1] == 'X')) {
    base = 16;
    i = 2;
  }
  constexpr uint64_t max = std::numeric_limits<int64_t>::max();
  uint64_t value = 0;
  bool too_big = false;
  std::size_t digits = 0;
  for (; i < token.size(); ++i, ++digits) {
    char c = token[i];
    int d = std::isdigit(static_cast<unsigned char>(c)) ? c - '0'
            : (base == 16 && std::isxdigit(static_cast<unsigned char>(c)))
              ? std::tolower(static_cast<unsigned char>(c)) - 'a' + 10
              : -1;
    // No unit letter (n, u, m, s, i, h) is a hex digit: the unit is whatever follows the digits.
    if (d < 0)
      break;
    if (value > (max - d) / base)
      too_big = true;
    else
      value = value * base + d;
  }
  auto unit = unit_nanoseconds(token.substr(i));
  if (digits == 0 || unit == 0)
    return false;
  return too_big || value > max / unit;
}

/// The entries of a config file CAF's INI reader skips without a word: keys in Parley's sections
/// that no setting has (a typo such as "prot=9000"), and values of the wrong type (it keeps the
/// default). A whole number for a floating-point setting is fine (parse_options takes it).
std::vector<std::string> unread_entries(const caf::settings& raw, const caf::config_option_set& options) {
  std::vector<std::string> problems;
  for (const auto& entry : raw) {
    // Not a structured binding: C++17 lambdas (the one below) cannot capture those in clang.
    const std::string& section = entry.first;
    auto entries = caf::get_if<caf::settings>(&entry.second);
    if (entries == nullptr)
      continue;
    bool parley_section = std::any_of(options.begin(), options.end(), [&](const caf::config_option& opt) {
      return std::string{opt.category().begin(), opt.category().end()} == section && is_setting(opt)
             && section != "scheduler";
    });
    for (const auto& [key, value] : *entries) {
      auto name = section + "." + key;
      auto opt = options.qualified_name_lookup(section, key);
      if (opt == nullptr) {
        if (parley_section)
          problems.push_back("unknown setting " + key + " in [" + section + "] (see parley --help)");
        continue;
      }
      std::string type{opt->type_name().begin(), opt->type_name().end()};
      bool real = type.find("double") != std::string::npos || type.find("real") != std::string::npos
                  || type.find("float") != std::string::npos;
      bool whole_for_real = real && caf::holds_alternative<int64_t>(value);
      if (!whole_for_real && opt->check(value))
        problems.push_back(name + ": " + caf::to_string(value) + " is not " + expected_value(*opt));
    }
  }
  return problems;
}

} // namespace

std::optional<std::string> find_overflowing_duration(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    char c = text[i];
    if (c == '"' || c == '\'') {
      // A quoted string holds no duration; a backslash escapes the next character.
      for (++i; i < text.size() && text[i] != c; ++i)
        if (text[i] == '\\')
          ++i;
      ++i;
    } else if (c == ';') {
      while (i < text.size() && text[i] != '\n')
        ++i;
    } else if (std::isdigit(static_cast<unsigned char>(c)) && (i == 0 || !is_token_char(text[i - 1]))) {
      std::size_t end = i;
      while (end < text.size() && is_token_char(text[end]))
        ++end;
      auto token = text.substr(i, end - i);
      if (overflows_as_duration(token))
        return std::string{token};
      i = end;
    } else {
      ++i;
    }
  }
  return std::nullopt;
}

std::vector<std::string> app_config::parse_command_line(int argc, char** argv) {
  auto line = read_command_line(arguments_of(argc, argv), options());
  if (!line.error.empty())
    return {line.error};
  if (auto problems = parse_options(line.options); !problems.empty())
    return problems;
  return value_problems(values);
}

std::vector<std::string> app_config::parse_options(const std::vector<std::string>& args) {
  // Refuse durations CAF cannot represent before it parses (and overflows on) them.
  bool file_named = false;
  for (const auto& arg : args) {
    if (arg.rfind("--config-file=", 0) == 0) {
      config_file_path = arg.substr(14);
      file_named = true;
    } else if (auto bad = find_overflowing_duration(arg)) {
      return {"duration " + *bad + " in " + arg + " is too long"};
    }
  }
  std::ifstream in{config_file_path, std::ios::binary};
  if (!in && file_named)
    return {"cannot read the config file " + config_file_path + ": " + std::strerror(errno)};
  if (in) {
    std::string text{std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{}};
    if (auto bad = find_overflowing_duration(text))
      return {"duration " + *bad + " in " + config_file_path + " is too long"};
  }
  if (auto err = parse(args)) {
    // CAF names the problem by its parser code; say which file it is in.
    auto where = in ? config_file_path : std::string{"the command line"};
    return {where + ": " + caf::to_string(err)};
  }
  // CAF 0.17's INI reader refuses "rate_burst=3" for a double option and keeps the default without
  // a word. Read the file's raw values and accept whole numbers, unless the command line overrode.
  std::vector<std::string> problems;
  if (auto raw = parse_config_file(config_file_path.c_str())) {
    problems = unread_entries(*raw, options());
    auto accept_whole_number = [&](const std::string& key, double& target) {
      auto on_command_line = std::any_of(args.begin(), args.end(), [&](const std::string& arg) {
        return arg.rfind("--" + key + "=", 0) == 0;
      });
      if (auto whole = caf::get_if<int64_t>(&*raw, key); whole && !on_command_line)
        target = static_cast<double>(*whole);
    };
    accept_whole_number("connection.rate_per_second", values.connection.rate_per_second);
    accept_whole_number("connection.rate_burst", values.connection.rate_burst);
    accept_whole_number("supervisor.backoff_factor", values.supervisor.backoff_factor);
    accept_whole_number("connection.new_rooms_per_minute", values.connection.new_rooms_per_minute);
    accept_whole_number("connection.new_rooms_burst", values.connection.new_rooms_burst);
    accept_whole_number("limits.handshakes_per_second", values.limits.handshakes_per_second);
    accept_whole_number("limits.handshake_burst", values.limits.handshake_burst);
  }
  return problems;
}

std::vector<std::string> value_problems(const settings& values) {
  std::vector<std::string> problems;
  auto refuse = [&](std::string line) { problems.push_back(std::move(line)); };
  if (values.limits.handshakes_per_second > 0 && values.limits.handshake_burst < 1)
    refuse("limits.handshake_burst must be at least 1 when handshakes are limited");
  // A zero interval would flush (and, while a member is stale, tick) without pause; an empty page
  // could never page through a room.
  if (values.presence.diff_interval <= caf::timespan{0} || values.presence.count_interval <= caf::timespan{0})
    refuse("presence.diff_interval and presence.count_interval must be positive");
  if (values.presence.page_size == 0 || values.presence.user_limit == 0)
    refuse("presence.page_size and presence.user_limit must be at least 1");
  if (values.rooms.max_rooms == 0)
    refuse("rooms.max_rooms must be at least 1");
  if (values.store.synchronous != "full" && values.store.synchronous != "normal")
    refuse("store.synchronous must be \"full\" or \"normal\"");
  if (values.auth.mode != "open" && values.auth.mode != "jwt")
    refuse("auth.mode must be \"open\" or \"jwt\"");
  if (auto key = negative_duration(values))
    refuse(std::string{key} + " must not be negative");
  // A bucket that never refills or holds less than one token would refuse every frame, and a
  // negative or NaN rate breaks its arithmetic; a backoff below 1 would shrink restart delays.
  const auto& c = values.connection;
  if (!(c.rate_per_second > 0 && std::isfinite(c.rate_per_second)) || !(c.rate_burst >= 1 && std::isfinite(c.rate_burst)))
    refuse("connection.rate_per_second must be positive and connection.rate_burst at least 1");
  if (!(values.supervisor.backoff_factor >= 1 && std::isfinite(values.supervisor.backoff_factor)))
    refuse("supervisor.backoff_factor must be at least 1");
  const auto& log = values.log;
  if (log.level != "trace" && log.level != "debug" && log.level != "info" && log.level != "warn"
      && log.level != "error")
    refuse("log.level must be \"trace\", \"debug\", \"info\", \"warn\" or \"error\", not \"" + log.level + "\"");
  if (log.format != "text" && log.format != "json")
    refuse("log.format must be \"text\" or \"json\", not \"" + log.format + "\"");
  const auto& shared = values.cluster;
  if (shared.mode != "single" && shared.mode != "redis")
    refuse("cluster.mode must be \"single\" or \"redis\", not \"" + shared.mode + "\"");
  if (shared.durability != "strict" && shared.durability != "relaxed")
    refuse("cluster.durability must be \"strict\" or \"relaxed\"");
  if (shared.redis_mode()) {
    if (!cluster::parse_redis_address(shared.redis))
      refuse("cluster.redis must be host:port, not \"" + shared.redis + "\"");
    if (shared.key_prefix.empty() || shared.key_prefix.find_first_of(" :{}") != std::string::npos)
      refuse("cluster.key_prefix must be a non-empty word without spaces, colons or braces");
    if (shared.node_id.find_first_of(" :#") != std::string::npos)
      refuse("cluster.node_id must not contain spaces, colons or #");
    if (shared.presence_ttl < std::chrono::seconds(1) || shared.timeout <= caf::timespan{0})
      refuse("cluster.presence_ttl must be at least 1s and cluster.timeout positive");
    if (shared.stream_max_length == 0)
      refuse("cluster.stream_max_length must be at least 1");
  }
  return problems;
}

} // namespace parley
