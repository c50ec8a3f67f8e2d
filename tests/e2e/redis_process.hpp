#pragma once

// Debian's redis-server as a child process of a test: in the foreground, on 127.0.0.1 and a free
// port, with its data (the append-only file) and its log in a directory the test owns. The
// cluster tests run Parley nodes against it (`--cluster.redis <address()>`), restart it under
// traffic on the same port and directory (the AOF carries the data over), SIGKILL it, freeze it,
// and look at the keys Parley wrote with command().

#include "harness.hpp"

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace parley::e2e {

/// Where the tests expect Debian's redis-server (package redis-server;
/// scripts/install-cluster-test-deps.sh).
inline constexpr const char* redis_binary = "/usr/bin/redis-server";

/// How to run Redis. The defaults are Parley's strict durability: every write is in the AOF and
/// fsynced before Redis answers it; no RDB snapshots.
struct redis_options {
  /// `--appendfsync`: "always", "everysec" or "no".
  std::string appendfsync = "always";
  /// `--appendonly yes|no`.
  bool appendonly = true;
  /// More `--option value` arguments, appended after the ones above (later ones win in Redis).
  std::vector<std::string> extra_args;
  /// How long start() waits for `PING` to answer `+PONG` (loading a large AOF takes a while).
  millis startup_timeout = 10s;
};

/// redis-server started by the constructor, which returns once it answers PING; stopped (and
/// reaped) by the destructor, so nothing is left running. start() after stop() or kill() runs it
/// again on the same port and data directory. Fails the test with Redis's log when Redis is
/// missing, rejects its options, or does not come up.
class redis_process {
public:
  explicit redis_process(redis_options opts = {});
  ~redis_process();
  redis_process(const redis_process&) = delete;
  redis_process& operator=(const redis_process&) = delete;

  /// The port, the same for the whole life of this object.
  uint16_t port() const { return port_; }
  /// "127.0.0.1:<port>", as `--cluster.redis` takes it.
  std::string address() const;
  /// The directory Redis keeps its AOF in (`--dir`); survives stop() and kill().
  std::string data_dir() const;

  /// Starts Redis again (same port, same directory) and waits for PING; fails the test if it
  /// is already running.
  void start();
  /// SIGTERM (Redis flushes and fsyncs the AOF, then exits) and waits; fails the test if Redis
  /// has not ended within `timeout` (it is then killed).
  void stop(millis timeout = 10s);
  /// SIGKILL and waits: a crash, nothing flushed beyond what appendfsync already wrote.
  void kill();
  /// SIGSTOP: Redis keeps its connections open but answers nothing (a hung server), until resume().
  void pause();
  /// SIGCONT after pause().
  void resume();
  /// True while the process runs (paused counts as running); reaps it once it has ended.
  bool running();

  /// Sends one command (each argument a bulk string) on a fresh connection and returns the raw
  /// RESP reply, e.g. ":3\r\n" for XLEN or "+OK\r\n"; an error reply ("-ERR ...") is returned,
  /// not failed. Fails the test, showing Redis's log, when Redis cannot be reached or does not
  /// answer within `timeout`.
  std::string command(const std::vector<std::string>& args, millis timeout = default_wait);
  /// The same, but nullopt when Redis cannot be reached or does not answer in time.
  std::optional<std::string> try_command(const std::vector<std::string>& args,
                                         millis timeout = default_wait) const;

  /// Redis's log file and whatever it wrote to stdout and stderr (for failure messages).
  std::string log() const;

private:
  void spawn();
  void wait_until_ready();
  /// SIGTERM, then SIGKILL after `timeout`; true when SIGTERM was enough (or nothing ran).
  bool stop_child(millis timeout);

  redis_options opts_;
  scratch_dir dir_;
  uint16_t port_ = 0;
  pid_t pid_ = -1;
  bool paused_ = false;
};

// -- reading replies ---------------------------------------------------------------------------------

/// The length of the first complete RESP (version 2) reply at the start of `text`, 0 when it is
/// not complete yet. Throws std::invalid_argument on bytes that are not RESP.
std::size_t resp_reply_length(const std::string& text);

/// The value of an integer reply (":42\r\n" -> 42); fails the test on any other reply.
long long resp_integer(const std::string& reply);

/// The elements of an array reply of bulk strings ("*2\r\n$1\r\na\r\n$1\r\nb\r\n" -> {"a", "b"}),
/// e.g. KEYS; a null element becomes "". Fails the test on any other reply.
std::vector<std::string> resp_strings(const std::string& reply);

/// The value of a bulk string reply, nullopt for the null reply ("$-1\r\n"), e.g. GET; fails the
/// test on any other reply.
std::optional<std::string> resp_bulk(const std::string& reply);

} // namespace parley::e2e
