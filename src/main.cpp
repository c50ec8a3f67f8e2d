// parley: the standalone chat server. Reads config.ini (or --config=FILE), starts the supervised
// actors (presence tracker, room directory; rooms on demand) and runs the WebSocket bridge until
// SIGINT/SIGTERM.

#include "actors/directory.hpp"
#include "actors/presence.hpp"
#include "actors/session.hpp"
#include "actors/supervisor.hpp"
#include "config/app_config.hpp"
#include "net/server.hpp"

#include <caf/actor_system.hpp>
#include <caf/scoped_actor.hpp>

#include <spdlog/spdlog.h>

#include <atomic>
#include <csignal>
#include <iostream>
#include <random>

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
  cfg.fault_injection = s.testing.fault_injection;
  return cfg;
}

protocol::codec_limits make_codec_limits(const settings& s) {
  protocol::codec_limits limits;
  limits.max_text_bytes = s.protocol.max_text_bytes;
  limits.max_depth = s.protocol.max_json_depth;
  limits.max_history_page = s.protocol.max_history_page;
  return limits;
}

int run(app_config& cfg) {
  const settings& s = cfg.values;
  if (s.testing.fault_injection)
    spdlog::warn("fault injection is enabled ([testing] fault_injection): never in production");
  caf::actor_system sys{cfg};

  auto sup = sys.spawn(supervisor, s.supervisor, std::random_device{}(), [](const std::string& key) {
    spdlog::critical("essential actor {} cannot be kept up: shutting down", key);
    fatal_failure = true;
    std::raise(SIGTERM);
  });
  caf::scoped_actor self{sys};

  auto presence_mem = std::make_shared<presence_memory>();
  auto grace = s.presence.grace;
  start_child(self, sup, child_spec{"presence",
                                    [presence_mem, grace](caf::actor_system& sys) {
                                      return caf::actor_cast<caf::actor>(
                                        sys.spawn(presence, presence_mem, grace));
                                    },
                                    nullptr, true});

  auto directory_mem = std::make_shared<directory_memory>();
  room_config rooms{s.rooms, s.presence.grace};
  start_child(self, sup, child_spec{"directory",
                                    [directory_mem, sup, rooms](caf::actor_system& sys) {
                                      return caf::actor_cast<caf::actor>(
                                        sys.spawn(directory, directory_mem, sup, rooms));
                                    },
                                    nullptr, true});

  auto session_cfg = make_session_config(s);
  int rc = net::run_server(s, make_codec_limits(s), [&sys, session_cfg](frame_sink_ptr sink, std::string name) {
    return sys.spawn(session, std::move(sink), std::move(name), session_cfg);
  });

  self->request(sup, std::chrono::seconds(5), stop_atom::value)
    .receive([](ok_atom) {}, [](caf::error&) {});
  if (fatal_failure)
    return 1;
  return rc;
}

} // namespace

int main(int argc, char** argv) {
  parley::app_config cfg;
  if (auto err = cfg.parse_command_line(argc, argv)) {
    std::cerr << "parley: invalid configuration: " << caf::to_string(err) << '\n';
    return 2;
  }
  if (cfg.cli_helptext_printed)
    return 0;
  return run(cfg);
}
