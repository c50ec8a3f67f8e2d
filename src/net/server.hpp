#pragma once

// The network bridge's entry point: an HTTP/WebSocket listener on Boost.Beast that serves web/,
// /healthz and the /ws upgrade, and hands each WebSocket connection to a session actor.

#include "actors/actors.hpp"
#include "config/settings.hpp"
#include "protocol/codec.hpp"

#include <functional>
#include <string>

namespace parley::net {

/// Starts the session actor for a new WebSocket connection. `requested_name` is the validated
/// `?name=` value, or empty for a generated guest name.
using session_spawner = std::function<session_actor(frame_sink_ptr sink, std::string requested_name)>;

/// Runs the listener until SIGINT or SIGTERM, then stops accepting, closes every connection with
/// 1001 (waiting up to server.shutdown_grace for close handshakes) and returns 0. Returns non-zero
/// when it cannot listen. Logs "parley listening on <address>:<port>" once accepting (port 0 in
/// the settings picks a free port; the log line names the real one).
int run_server(const settings& cfg, const protocol::codec_limits& limits, session_spawner spawn);

} // namespace parley::net
