// parley: the standalone chat server. Reads config.ini (or --config FILE), starts the supervised
// actors (presence tracker, room directory; rooms on demand) and runs the WebSocket bridge until
// SIGINT/SIGTERM. `parley token ...` instead mints a signed token (auth/token_command.hpp);
// `parley check-config FILE` checks a file as start-up would; --help and --version
// (config/command_line.hpp).

#include "actors/directory.hpp"
#include "admin/admin_setup.hpp"
#include "admin/admin_token.hpp"
#include "actors/presence.hpp"
#include "actors/session.hpp"
#include "actors/store.hpp"
#include "actors/cluster_feed.hpp"
#include "actors/redis_store.hpp"
#include "cluster/cluster_config.hpp"
#include "actors/supervisor.hpp"
#include "auth/auth_config.hpp"
#include "auth/token_command.hpp"
#include "config/app_config.hpp"
#include "config/command_line.hpp"
#include "config/startup_check.hpp"
#include "logging/logging.hpp"
#include "net/server.hpp"

#include <caf/actor_registry.hpp>
#include <caf/actor_system.hpp>
#include <caf/scoped_actor.hpp>

#include <spdlog/spdlog.h>

#include <atomic>
#include <memory>
#include <csignal>
#include <iostream>
#include <random>
#include <string_view>

namespace {

using namespace parley;

std::atomic<bool> fatal_failure{false};

/// Starts one supervised child and waits for its handle.
caf::actor start_child(caf::scoped_actor& self, const supervisor_actor& sup, child_spec spec) {
  caf::actor handle;
  self->request(sup, caf::infinite, start_atom::value, std::move(spec))
    .receive([&](caf::actor& h) { handle = std::move(h); },
             [&](caf::error& err) { spdlog::error("failed to start a child: {}", self->system().render(err)); });
  return handle;
}

session_config make_session_config(const settings& s) {
  session_config cfg;
  cfg.rate_per_second = s.connection.rate_per_second;
  cfg.rate_burst = s.connection.rate_burst;
  cfg.abuse_limit = s.connection.abuse_limit;
  cfg.abuse_window = s.connection.abuse_window;
  cfg.max_rooms = s.connection.max_rooms;
  cfg.new_rooms_per_second = s.connection.new_rooms_per_minute / 60.0;
  cfg.new_rooms_burst = s.connection.new_rooms_burst;
  cfg.fault_injection = s.testing.fault_injection;
  cfg.auth_timeout = s.auth.auth_timeout;
  cfg.refresh_grace = s.auth.refresh_grace;
  return cfg;
}

protocol::codec_limits make_codec_limits(const settings& s) {
  protocol::codec_limits limits;
  limits.max_text_bytes = s.protocol.max_text_bytes;
  limits.max_depth = s.protocol.max_json_depth;
  limits.max_history_page = s.protocol.max_history_page;
  limits.page_size = s.presence.page_size;
  return limits;
}

/// Opens the database once before anything starts, so that a file that is not a database (or a
/// directory that cannot be created) stops the server with a clear message instead of later errors.
bool check_database(const store_settings& s) {
  try {
    storage::message_db db{make_db_options(s)};
    return true;
  } catch (const storage::db_error& err) {
    spdlog::critical("cannot use the message database {}: {}", s.path, err.what());
    spdlog::critical("restore it from a backup or move it aside (a new one is created), or set "
                     "[store] path in the configuration");
    return false;
  }
}

/// What the log says about the way users sign in, once the check passed.
void log_auth_mode(const auth_settings& s) {
  if (s.jwt())
    spdlog::info("users sign in with {} tokens", s.algorithm);
  else
    spdlog::warn("[auth] mode is open: users name themselves and nothing verifies it; use jwt "
                 "anywhere but on your own machine");
}

/// What the admin listener reads from, and asks of, the public server.
admin::server_hooks admin_hooks(net::server& srv) {
  admin::server_hooks hooks;
  hooks.draining = [&srv] { return srv.draining(); };
  hooks.connections = [&srv] { return srv.connections(); };
  hooks.max_connections = [&srv] { return srv.max_connections(); };
  hooks.start_drain = [&srv](std::chrono::milliseconds period) { srv.drain(period); };
  return hooks;
}

/// Single mode: the SQLite store. Detached: SQLite calls block their thread, which must not be
/// one of CAF's scheduler threads.
void start_single_store(caf::scoped_actor& self, const supervisor_actor& sup, const settings& s) {
  auto store_cfg = s.store;
  store_cfg.max_rooms = s.rooms.max_rooms;  // the store counts the rooms, so it enforces the cap
  start_child(self, sup, child_spec{"store",
                                    [store_cfg](caf::actor_system& sys) {
                                      return caf::actor_cast<caf::actor>(
                                        sys.spawn<caf::detached>(store, store_cfg));
                                    },
                                    nullptr, true});
  spdlog::info("messages are stored in {}", s.store.path);
}

/// Cluster mode: the Redis store and the cluster feed, each detached with its own connection
/// (a blocking XREAD cannot share a connection with the store's commands).
void start_cluster_actors(caf::scoped_actor& self, const supervisor_actor& sup,
                          const cluster::cluster_config& cfg) {
  start_child(self, sup, child_spec{"store",
                                    [cfg](caf::actor_system& sys) {
                                      return caf::actor_cast<caf::actor>(
                                        sys.spawn<caf::detached>(redis_store, cfg));
                                    },
                                    nullptr, true});
  auto feed_mem = std::make_shared<cluster_feed_memory>();
  start_child(self, sup, child_spec{"cluster",
                                    [cfg, feed_mem](caf::actor_system& sys) {
                                      return caf::actor_cast<caf::actor>(
                                        sys.spawn<caf::detached>(cluster_feed, cfg, feed_mem));
                                    },
                                    nullptr, true});
  spdlog::info("cluster mode: node {} shares rooms through Redis at {} (durability {})", cfg.node,
               cfg.settings.redis, cfg.settings.durability);
}

int run(app_config& cfg) {
  const settings& s = cfg.values;
  auto checked = check_startup(s);
  for (const auto& problem : checked.problems)
    spdlog::critical("parley cannot start: {}", problem);
  if (!checked.ok())
    return 1;
  if (s.testing.fault_injection)
    spdlog::warn("fault injection is enabled ([testing] fault_injection): never in production");
  if (!s.cluster.redis_mode() && !check_database(s.store))
    return 1;
  auto session_cfg = make_session_config(s);
  session_cfg.permissions = checked.permissions;
  session_cfg.verifier = checked.verifier;
  log_auth_mode(s.auth);
  std::string admin_token;
  try {
    admin_token = admin::read_admin_token(s.admin);
  } catch (const admin::admin_config_error& e) {
    spdlog::critical("cannot start the admin listener: {}", e.what());
    return 1;
  }
  caf::actor_system sys{cfg};

  auto sup = sys.spawn(supervisor, s.supervisor, std::random_device{}(), [](const std::string& key) {
    spdlog::critical("essential actor {} cannot be kept up: shutting down", key);
    fatal_failure = true;
    std::raise(SIGTERM);
  });
  caf::scoped_actor self{sys};

  if (s.cluster.redis_mode())
    start_cluster_actors(self, sup, cluster::make_cluster_config(s.cluster, s.rooms.max_rooms));
  else
    start_single_store(self, sup, s);

  auto presence_mem = std::make_shared<presence_memory>(s.presence.grace);
  start_child(self, sup, child_spec{"presence",
                                    [presence_mem](caf::actor_system& sys) {
                                      return caf::actor_cast<caf::actor>(
                                        sys.spawn(presence, presence_mem));
                                    },
                                    nullptr, true});

  auto directory_mem = std::make_shared<directory_memory>();
  room_config rooms{s.rooms, s.presence, s.cluster.redis_mode()};
  start_child(self, sup, child_spec{"directory",
                                    [directory_mem, sup, rooms](caf::actor_system& sys) {
                                      return caf::actor_cast<caf::actor>(
                                        sys.spawn(directory, directory_mem, sup, rooms));
                                    },
                                    nullptr, true});

  net::shutdown_signals signals;
  net::server public_server{
    s, make_codec_limits(s),
    [&sys, shared = std::make_shared<const session_config>(session_cfg)](
      frame_sink_ptr sink, std::optional<auth::identity> who) {
      return sys.spawn(session, std::move(sink), std::move(who), shared);
    },
    session_cfg.verifier};
  int rc = 1;
  if (public_server.start()) {
    // The admin listener starts once the public one listens, stays up while it drains, and stops
    // before it (its hooks read the server).
    auto admin_listener = admin::make_admin_server(
      s, admin_token, sys, admin_hooks(public_server),
      std::chrono::duration_cast<std::chrono::milliseconds>(s.server.drain_period));
    if (admin_listener->start())
      rc = signals.wait(public_server);
    else
      public_server.stop();
  }

  self->request(sup, std::chrono::seconds(5), stop_atom::value)
    .receive([](ok_atom) {}, [](caf::error&) {});
  // The registry holds strong references; the detached store's thread ends only once they are gone.
  sys.registry().erase(store_atom::value);
  sys.registry().erase(directory_atom::value);
  sys.registry().erase(presence_atom::value);
  sys.registry().erase(cluster_atom::value);
  if (fatal_failure)
    return 1;
  return rc;
}

/// `parley check-config FILE [options]`: "FILE: ok" on stdout and 0, or one line per problem on
/// stderr and 1. Checks what start-up checks (check_startup), without opening the database.
int check_config(app_config& cfg, const command_line& line) {
  std::vector<std::string> problems;
  problems = cfg.parse_options(line.options);
  if (problems.empty())
    problems = check_startup(cfg.values).problems;
  for (const auto& problem : problems)
    std::cerr << line.check_file << ": " << problem << '\n';
  if (!problems.empty())
    return 1;
  std::cout << line.check_file << ": ok\n";
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::string_view{argv[1]} == "token")
    return parley::auth::run_token_command(argc, argv);
  parley::app_config cfg;
  auto line = parley::read_command_line(parley::arguments_of(argc, argv), cfg.options());
  if (!line.error.empty()) {
    std::cerr << "parley: " << line.error << '\n';
    return 2;
  }
  switch (line.what) {
    case parley::command::help:
      std::cout << parley::help_text(cfg);
      return 0;
    case parley::command::version:
      std::cout << parley::version_text() << '\n';
      return 0;
    case parley::command::check_config:
      return check_config(cfg, line);
    case parley::command::serve:
      break;
  }
  // A file or a value no setting allows is a configuration error like a bad option (2); what
  // start-up finds in files, keys and addresses (check_startup in run) stops it with 1.
  auto problems = cfg.parse_options(line.options);
  if (problems.empty())
    problems = parley::value_problems(cfg.values);
  for (const auto& problem : problems)
    std::cerr << "parley: " << problem << '\n';
  if (!problems.empty())
    return 2;
  parley::logging::configure(cfg.values.log);
  return run(cfg);
}
