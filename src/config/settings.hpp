#pragma once

// Every Parley setting, with its default. config.ini documents each one; command-line options
// override the file. Parsing is CAF's own config system (see app_config.hpp).

#include <caf/timespan.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace parley {

using namespace std::chrono_literals;

/// Rooms the server holds at most: live in memory or stored (see docs/security.md, "Rooms and the database").
inline constexpr std::size_t default_max_rooms = 10000;

/// [server]: the listener and its threads.
struct server_settings {
  std::string address = "127.0.0.1";  ///< loopback by default; "0.0.0.0" or "::" for all
  uint16_t port = 8080;
  std::string web_root = "web";
  std::size_t io_threads = 1;  ///< Asio threads; CAF's scheduler threads are caf.scheduler.max-threads
  /// Origins allowed to open /ws, e.g. "https://chat.example.com". Empty: only the same host as the
  /// request's Host header. Requests without an Origin (non-browser clients) pass either way.
  std::vector<std::string> allowed_origins;
  /// Host header values the server answers (port optional), against DNS rebinding. Empty: any
  /// host, which is unsafe on a public address.
  std::vector<std::string> allowed_hosts = {"localhost", "127.0.0.1", "[::1]"};
  /// Reverse proxies (addresses or CIDRs) whose X-Forwarded-For names the client. Empty: none.
  std::vector<std::string> trusted_proxies;
  /// A drain (SIGTERM, SIGINT, the admin drain command) closes connections with 1001 spread over
  /// this long, each with a reconnect hint, so that clients do not all come back at once.
  caf::timespan drain_period = std::chrono::seconds(10);
  caf::timespan shutdown_grace = std::chrono::seconds(3);  ///< wait for close handshakes on SIGTERM
};

/// [limits]: limits per client address and for the whole server, checked before the upgrade.
struct limits_settings {
  std::size_t max_connections_per_address = 64;  ///< concurrent connections; 0: no limit
  double handshakes_per_second = 10;  ///< upgrade requests per address, refill; 0: no limit
  double handshake_burst = 20;        ///< upgrade requests per address, bucket size
  std::size_t max_connections = 0;    ///< 0: the file-descriptor limit minus a reserve
};

/// [connection]: limits of one WebSocket connection.
struct connection_settings {
  std::size_t max_frame_bytes = 64 * 1024;       ///< hard limit: larger frames close with 1009
  std::size_t queue_soft_bytes = 256 * 1024;     ///< past this, typing/presence frames are dropped
  std::size_t queue_hard_bytes = 1024 * 1024;    ///< past this, the connection closes with 4000
  caf::timespan idle_timeout = std::chrono::seconds(60);      ///< silent peers are dropped
  caf::timespan handshake_timeout = std::chrono::seconds(10); ///< HTTP request and upgrade
  caf::timespan write_timeout = std::chrono::seconds(10);     ///< a write stuck this long ends it
  double rate_per_second = 20;  ///< token bucket refill, frames per second
  double rate_burst = 40;       ///< token bucket size
  std::size_t abuse_limit = 20; ///< more errors than this within abuse_window close with 4002
  caf::timespan abuse_window = std::chrono::seconds(10);
  std::size_t max_rooms = 50;   ///< rooms one connection may join
  /// Joins that create a room (a name nobody uses and nothing is stored under) take a token from a
  /// bucket of their own; joining a room that exists costs nothing here.
  double new_rooms_per_minute = 30;
  double new_rooms_burst = 10;  ///< new rooms one connection may create at once
};

/// [protocol]: what the codec accepts.
struct protocol_settings {
  std::size_t max_text_bytes = 4096;
  std::size_t max_json_depth = 8;
  uint32_t max_history_page = 100;
};

/// [rooms]: room actors and the directory.
struct room_settings {
  std::size_t capacity = 10000;       ///< members (connections) per room
  std::size_t history_size = 500;     ///< messages kept in memory per room
  std::size_t history_on_join = 50;   ///< messages sent with "joined"
  std::size_t max_replay = 1000;      ///< a rejoin with since recovers at most this many messages
  caf::timespan idle_retire = std::chrono::minutes(10);  ///< empty rooms are retired after this
  caf::timespan typing_interval = std::chrono::seconds(2); ///< relay at most one typing per user per this
  /// Rooms the server holds at most: those in memory plus those stored (with messages). A join
  /// that would create one more is refused with room_limit. The store enforces it.
  std::size_t max_rooms = default_max_rooms;
};

/// [presence]: who is present in a room, and who is online on the server.
struct presence_settings {
  caf::timespan grace = std::chrono::seconds(5);  ///< a quick reconnect does not show as offline
  /// A room's presence changes leave at most this often, all of them in one presence_diff.
  caf::timespan diff_interval = std::chrono::milliseconds(100);
  /// In counts mode the count changes constantly and nobody reads it to the millisecond: it leaves
  /// at most this often, which keeps a large room's presence traffic small.
  caf::timespan count_interval = std::chrono::seconds(1);
  uint32_t page_size = 100;      ///< names in joined, presence_state and one who page
  std::size_t user_limit = 1000; ///< rooms with more present users send counts instead of names
};

/// [supervisor]: restart policy for the directory, the rooms and the presence tracker.
struct supervisor_settings {
  caf::timespan backoff_min = std::chrono::milliseconds(100);
  caf::timespan backoff_max = std::chrono::seconds(10);
  double backoff_factor = 2.0;
  caf::timespan backoff_reset = std::chrono::seconds(30);  ///< a child stable this long starts over
  std::size_t max_restarts = 5;                           ///< restarts allowed within restart_window
  caf::timespan restart_window = std::chrono::seconds(60);
};

/// [store]: the SQLite message database.
struct store_settings {
  std::string path = "data/parley.db";  ///< created on first run, with its directory
  /// An accepted message waits at most this long for others to share its transaction. 0: commit
  /// at once, grouping only what queued up while the previous commit ran.
  caf::timespan commit_window = caf::timespan{0};
  std::size_t max_batch = 1000;        ///< a group this large commits without waiting
  /// SQLite's synchronous mode: "full" syncs every commit to disk (survives power loss); "normal"
  /// syncs only at checkpoints (survives a crash of the server, may lose the last commits on power loss).
  std::string synchronous = "full";
  caf::timespan busy_timeout = std::chrono::seconds(1);  ///< wait for another writer's lock
  std::size_t max_db_bytes = 0;        ///< refuse writes past this file size; 0: no limit
  std::size_t retain_per_room = 100000;  ///< keep this many newest messages per room; 0: all
  caf::timespan retain_max_age = caf::timespan{0};  ///< drop messages older than this; 0: never
  caf::timespan retention_interval = std::chrono::minutes(5);  ///< how often retention runs
  /// Not read from [store]: the server copies [rooms] max_rooms here, since the store enforces it.
  std::size_t max_rooms = default_max_rooms;
};

/// [tls]: HTTPS and WSS on the server's port. Both files empty: plain HTTP and WS.
struct tls_settings {
  std::string certificate;  ///< PEM certificate chain (server certificate first)
  std::string key;          ///< PEM private key of that certificate

  bool enabled() const noexcept { return !certificate.empty() || !key.empty(); }
};

/// [auth]: who may connect, and what each role may do in which rooms (docs/auth.md).
struct auth_settings {
  /// "open": clients name themselves with ?name= (names are not verified; local use only).
  /// "jwt": clients sign in with a JSON Web Token (handshake subprotocol or a first auth frame).
  std::string mode = "open";
  std::string algorithm = "HS256";  ///< HS256, RS256, ES256 or EdDSA; never taken from a token
  std::string secret;               ///< HS256: the shared secret, at least 32 bytes
  std::string secret_file;          ///< HS256: a file holding the secret (instead of `secret`)
  std::string public_key;           ///< RS256, ES256, EdDSA: PEM file of the public key
  std::string issuer;               ///< non-empty: tokens must carry this "iss"
  std::string audience;             ///< non-empty: tokens' "aud" must contain this
  caf::timespan leeway = std::chrono::seconds(30);        ///< clock skew allowed on exp and nbf
  caf::timespan auth_timeout = std::chrono::seconds(5);   ///< a first auth frame must come this soon
  caf::timespan refresh_grace = std::chrono::seconds(30); ///< after exp, a refresh must come this soon
  std::string roles_claim = "roles";  ///< the claim holding the user's roles
  std::string rooms_claim = "rooms";  ///< the claim listing the private rooms a user may join
  /// Room permissions by room-name pattern, first match wins, e.g.
  /// "announcements post=moderator" or "team-* join=listed" (auth/permissions.hpp).
  std::vector<std::string> room_rules;

  bool jwt() const noexcept { return mode == "jwt"; }
};

/// [testing]: switches for the end-to-end tests. Never enable in production.
struct testing_settings {
  bool fault_injection = false;  ///< accept {"type":"crash_room"} to kill a room actor
};

/// [log]: what the server logs, and how.
struct log_settings {
  /// The least severe level logged: "trace", "debug", "info", "warn" or "error". debug adds each
  /// WebSocket connection's open and close; the access log is at info.
  std::string level = "info";
  /// "text": one human-readable line per event; "json": one JSON object per line with ts, level,
  /// logger and msg, for log collectors.
  std::string format = "text";
};

/// [admin]: the internal listener for /metrics, /healthz, /readyz, the admin JSON API and the admin
/// page (docs/operations.md, "Admin listener and API"). Keep it off the public network.
struct admin_settings {
  std::string address = "127.0.0.1";  ///< loopback by default
  uint16_t port = 9090;               ///< 0 picks a free port (the log line names it)
  /// Bearer token for /admin/*. Empty (and no token_file): the API answers 403, while /metrics,
  /// /healthz and /readyz still work.
  std::string token;
  std::string token_file;             ///< a file holding the token (instead of `token`)
  std::string web_root = "web-admin"; ///< the admin page, served at / of this listener only
};

/// [cluster]: one node alone (SQLite), or one of several nodes sharing rooms through Redis
/// (docs/cluster.md).
struct cluster_settings {
  std::string mode = "single";           ///< "single": SQLite, this node alone; "redis": shared rooms
  std::string redis = "127.0.0.1:6379";  ///< host:port of Redis (redis mode)
  std::string node_id;                   ///< unique per node; empty: hostname-pid
  std::string key_prefix = "parley";     ///< every Redis key starts with this and a colon
  /// "strict": the node is ready only while Redis runs with appendonly yes and appendfsync always,
  /// so an acknowledged message survives a Redis crash; "relaxed": whatever Redis is set to.
  std::string durability = "strict";
  /// A node's presence entries live this long unless it refreshes them: after a node dies
  /// silently, its users go offline within this time. Refreshed every third of it.
  caf::timespan presence_ttl = std::chrono::seconds(6);
  caf::timespan timeout = std::chrono::seconds(2);  ///< connect and command timeout
  std::size_t stream_max_length = 100000;  ///< newest messages kept per room stream (approximately)
  caf::timespan stream_max_age = caf::timespan{0};  ///< trim older messages; 0: never

  bool redis_mode() const noexcept { return mode == "redis"; }
};

/// Everything, as one value handed to the parts that need it.
struct settings {
  server_settings server;
  limits_settings limits;
  connection_settings connection;
  protocol_settings protocol;
  room_settings rooms;
  presence_settings presence;
  supervisor_settings supervisor;
  store_settings store;
  tls_settings tls;
  auth_settings auth;
  testing_settings testing;
  log_settings log;
  admin_settings admin;
  cluster_settings cluster;
};

} // namespace parley
