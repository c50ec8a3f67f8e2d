#include "config/app_config.hpp"

#include <caf/config_option_adder.hpp>
#include <caf/settings.hpp>

#include <algorithm>

namespace parley {

app_config::app_config() {
  config_file_path = "config.ini";
  // CAF's own defaults are work-stealing pollers, one per core. On 2 cores one sharing worker
  // measured best for fan-out, churn and idle CPU alike (bench/README.md, "Thread defaults").
  set("scheduler.policy", caf::atom("sharing"));
  set("scheduler.max-threads", std::size_t{1});
  auto& v = values;
  opt_group{custom_options_, "global"}.add(v.server.port, "port,p", "shortcut for server.port");
  opt_group{custom_options_, "server"}
    .add(v.server.address, "address", "address to listen on")
    .add(v.server.port, "port", "TCP port; 0 picks a free one")
    .add(v.server.web_root, "web_root", "directory served at /")
    .add(v.server.io_threads, "io_threads", "Asio threads")
    .add(v.server.allowed_origins, "allowed_origins",
         "origins allowed to open /ws; empty: same host only")
    .add(v.server.allowed_hosts, "allowed_hosts", "Host header values answered; empty: any (unsafe)")
    .add(v.server.trusted_proxies, "trusted_proxies", "proxies whose X-Forwarded-For is believed")
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
    .add(v.connection.max_rooms, "max_rooms", "rooms one connection may join");
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
    .add(v.rooms.typing_interval, "typing_interval", "one typing relay per user per this");
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
  opt_group{custom_options_, "testing"}.add(v.testing.fault_injection, "fault_injection",
                                            "accept crash_room (tests only)");
}

std::vector<std::string> normalize_arguments(int argc, char** argv) {
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--config" && i + 1 < argc)
      args.push_back("--config-file=" + std::string{argv[++i]});
    else if (arg.rfind("--config=", 0) == 0)
      args.push_back("--config-file=" + arg.substr(9));
    else
      args.push_back(std::move(arg));
  }
  return args;
}

caf::error app_config::parse_command_line(int argc, char** argv) {
  auto args = normalize_arguments(argc, argv);
  if (auto err = parse(args))
    return err;
  // CAF 0.17's INI reader refuses "rate_burst=3" for a double option and keeps the default without
  // a word. Read the file's raw values and accept whole numbers, unless the command line overrode.
  auto raw = parse_config_file(config_file_path.c_str());
  if (!raw)
    return caf::none;
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
  accept_whole_number("limits.handshakes_per_second", values.limits.handshakes_per_second);
  accept_whole_number("limits.handshake_burst", values.limits.handshake_burst);
  if (values.limits.handshakes_per_second > 0 && values.limits.handshake_burst < 1)
    return caf::make_error(caf::pec::illegal_argument,
                           "limits.handshake_burst must be at least 1 when handshakes are limited");
  // A zero interval would flush (and, while a member is stale, tick) without pause; an empty page
  // could never page through a room.
  if (values.presence.diff_interval <= caf::timespan{0} || values.presence.count_interval <= caf::timespan{0})
    return caf::make_error(caf::pec::illegal_argument,
                           "presence.diff_interval and presence.count_interval must be positive");
  if (values.presence.page_size == 0 || values.presence.user_limit == 0)
    return caf::make_error(caf::pec::illegal_argument,
                           "presence.page_size and presence.user_limit must be at least 1");
  if (values.store.synchronous != "full" && values.store.synchronous != "normal")
    return caf::make_error(caf::pec::illegal_argument, "store.synchronous must be \"full\" or \"normal\"");
  return caf::none;
}

} // namespace parley
