#pragma once

// End-to-end test harness: starts the real `parley` binary on a free loopback port and talks to it
// over WebSocket and HTTP. Every wait is bounded, so a broken server makes a test fail quickly
// instead of hanging the suite.

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket/stream.hpp>
#include <nlohmann/json.hpp>

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace parley::e2e {

using json = nlohmann::json;
using namespace std::chrono_literals;
using millis = std::chrono::milliseconds;

/// How long a test waits for one expected frame before it fails.
inline constexpr millis default_wait = 5s;

// -- the server process ------------------------------------------------------------------------------

/// What to start the server with.
struct server_options {
  /// INI settings as "section.key" -> value text exactly as it goes into the file (CAF INI strings
  /// need their quotes, e.g. "\"127.0.0.1\""). Entries here replace the harness defaults.
  std::map<std::string, std::string> ini;
  /// Extra command-line arguments after --config and --server.port.
  std::vector<std::string> args;
  /// Environment variables set (or replaced) for the server, e.g. NOTIFY_SOCKET.
  std::map<std::string, std::string> env;
  /// How long the server may take to print its listening line.
  millis startup_timeout = 15s;
  /// False for a start-up that is meant to fail: the constructor returns without waiting.
  bool expect_listening = true;
  /// Also wait for "parley admin listening on <address>:<port>" (the admin listener runs on a free
  /// port by default: the harness passes --admin.port=0).
  bool expect_admin = true;
};

/// A temporary directory a test owns (e.g. a database two server runs share); removed at the end.
class scratch_dir {
public:
  scratch_dir();
  ~scratch_dir();
  scratch_dir(const scratch_dir&) = delete;
  scratch_dir& operator=(const scratch_dir&) = delete;

  /// A path inside the directory.
  std::string file(const std::string& name) const { return path_ + "/" + name; }

private:
  std::string path_;
};

/// How a child process ended.
struct exit_status {
  bool exited = false;  ///< ended by exit(): `code` is valid
  int code = -1;
  int signal = 0;       ///< ended by this signal when !exited
  std::string describe() const;
};

/// The `parley` binary running as a child process. The constructor returns once the server prints
/// "parley listening on <address>:<port>" (failing the test otherwise); the destructor always
/// stops and reaps the child, so no test leaves zombies or orphans behind.
class server_process {
public:
  explicit server_process(server_options opts = {});
  ~server_process();

  server_process(const server_process&) = delete;
  server_process& operator=(const server_process&) = delete;

  /// The port the server actually listens on (parsed from its listening line).
  uint16_t port() const { return port_; }

  /// The admin listener's port (parsed from its listening line; 0 unless expect_admin).
  uint16_t admin_port() const { return admin_port_; }

  /// True if the listening line arrived on stdout (as documented), not only on stderr.
  bool listening_line_on_stdout() const { return listening_on_stdout_; }

  /// Sends a signal without waiting.
  void send_signal(int sig);

  /// Waits up to `timeout` for the child to end; nullopt if it still runs.
  std::optional<exit_status> wait_for_exit(millis timeout);

  /// SIGTERM, then waits up to `timeout`; fails the test if the process does not end in time.
  exit_status terminate(millis timeout = 10s);

  /// SIGKILL and reap.
  void kill();

  /// Everything the server wrote to stdout and stderr so far (for failure messages).
  std::string output() const;

private:
  void write_config(const server_options& opts);
  void spawn(const server_options& opts);
  void drain_output();
  bool wait_for_listening_line(millis timeout, bool with_admin);
  void stop_child();
  void remove_config();

  pid_t pid_ = -1;
  std::optional<exit_status> status_;  ///< set once reaped
  uint16_t port_ = 0;
  uint16_t admin_port_ = 0;
  bool listening_on_stdout_ = false;
  std::string temp_dir_;
  std::string config_path_;
  int out_fd_ = -1;
  int err_fd_ = -1;
  std::thread drainer_;
  mutable std::mutex mtx_;
  std::condition_variable cv_;
  std::string stdout_text_;
  std::string stderr_text_;
  bool drained_ = false;     ///< both pipes reached EOF
  bool stop_drain_ = false;  ///< the destructor asks the drainer to give up
};

/// What a run of the binary that ends by itself printed, and how it ended.
struct run_result {
  exit_status status;
  std::string out;  ///< stdout
  std::string err;  ///< stderr
};

/// Runs `parley <args...>` to its end (with stdin from /dev/null) and captures what it printed;
/// kills it and fails the test if it runs longer than `timeout`.
run_result run_parley(const std::vector<std::string>& args, millis timeout = 10s);

// -- a synchronous WebSocket client --------------------------------------------------------------

/// Options for ws_client::connect.
struct ws_connect_options {
  std::string origin;          ///< sent as the Origin header when not empty
  int receive_buffer = 0;      ///< when > 0, SO_RCVBUF set before connecting (slow consumers)
  bool expect_welcome = true;  ///< read and check the welcome frame
  /// jwt mode: offered as the subprotocol "parley.token.<token>" beside "parley.v1"; the welcome
  /// is then checked against `name` as the token's sub.
  std::string token;
  /// Sent as Sec-WebSocket-Protocol as it is (when `token` is empty and this is not).
  std::string protocols;
  /// Leave "?name=" out of the URL (jwt mode clients have no name to ask for).
  bool no_name = false;
  millis timeout = default_wait;
};

/// How a connection ended, as seen by the client.
struct close_info {
  bool close_frame = false;  ///< the server sent a close frame: `code` is valid
  uint16_t code = 0;
  std::string reason;
  std::string error;          ///< the transport error when there was no close frame
  std::size_t frames_before = 0;  ///< data frames received while waiting for the end
};

/// One read that may also meet the end of the connection.
struct frame_or_close {
  std::optional<json> frame;
  std::optional<close_info> close;
};

/// A blocking WebSocket client whose every operation has a deadline. Reads happen only inside
/// next()/expect_close() and friends, so a client that stops calling them stops reading — the
/// slow-consumer test relies on that.
class ws_client {
public:
  ws_client();
  ~ws_client();

  ws_client(const ws_client&) = delete;
  ws_client& operator=(const ws_client&) = delete;

  /// Connects to ws://127.0.0.1:<port>/ws?name=<name>; returns the welcome frame (or null json when
  /// opts.expect_welcome is false).
  json connect(uint16_t port, const std::string& name, ws_connect_options opts = {});

  void send_json(const json& frame);
  void send_raw_text(std::string_view text);
  void send_binary(std::string_view bytes);
  /// Like send_raw_text, but reports a failed write instead of failing the test.
  bool try_send_raw_text(std::string_view text, millis timeout = default_wait);

  /// The next frame, parsed; fails the test on timeout, close or a frame that is not JSON.
  json next(millis timeout = default_wait);
  /// The next frame, or nullopt when none arrives within `timeout` (the read stays pending).
  std::optional<json> try_next(millis timeout);
  /// Skips frames until one has this "type".
  json next_of_type(std::string_view type, millis timeout = default_wait);
  /// Skips frames until one satisfies `match`; `what` names it in the failure message.
  json next_matching(const std::function<bool(const json&)>& match, std::string_view what,
                     millis timeout = default_wait);
  /// The next frame or the end of the connection; fails the test only on timeout.
  frame_or_close next_or_close(millis timeout = default_wait);
  /// Reads (and counts) frames until the connection ends; fails the test if it does not end in time.
  close_info expect_close(millis timeout = default_wait);

  /// Sends a join and returns the matching "joined" frame.
  json join(const std::string& room, json extra = json::object(), millis timeout = default_wait);
  /// Sends a message and returns its echo to this client (matched by cid).
  json say(const std::string& room, const std::string& text, const std::string& cid,
           millis timeout = default_wait);

  /// A polite close handshake (code 1000), bounded; falls back to dropping the socket.
  void close(millis timeout = 2s);
  /// Drops the TCP connection without a close handshake.
  void drop();

  bool is_open() const;
  const std::string& name() const { return name_; }
  const std::string& session() const { return session_; }
  /// The Sec-WebSocket-Protocol the server selected ("" when none).
  const std::string& protocol() const { return protocol_; }

private:
  struct read_result {
    bool done = false;
    boost::beast::error_code ec;
    std::string payload;
    bool binary = false;
  };

  void start_read();
  bool wait_read(millis timeout);
  read_result take_read();
  close_info end_of(const read_result& result);
  json parse(const read_result& result);
  void write_frame(std::string_view payload, bool binary);
  bool try_write_frame(std::string_view payload, bool binary, millis timeout,
                       boost::beast::error_code& ec);

  boost::asio::io_context ioc_;
  boost::beast::websocket::stream<boost::asio::ip::tcp::socket> ws_;
  boost::beast::flat_buffer buffer_;
  bool reading_ = false;
  read_result read_;
  std::string name_;
  std::string session_;
  std::string protocol_;
};

// -- plain HTTP ------------------------------------------------------------------------------------

struct http_reply {
  unsigned status = 0;
  std::string content_type;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  ///< every header field, in order
  /// The value of the first header with this name (case-insensitive), or "" when absent.
  std::string header(std::string_view name) const;
};

/// One GET request on a fresh connection with the given extra headers; fails the test on timeout.
http_reply http_get(uint16_t port, const std::string& target,
                    const std::vector<std::pair<std::string, std::string>>& headers = {},
                    millis timeout = default_wait);

/// One request with any method and body (sent as application/json when not empty) on a fresh
/// connection; fails the test on timeout.
http_reply http_request(uint16_t port, const std::string& method, const std::string& target,
                        const std::string& body = {},
                        const std::vector<std::pair<std::string, std::string>>& headers = {},
                        millis timeout = default_wait);

// -- raw TCP, for requests no HTTP library would send -------------------------------------------------

/// What a raw connection received until the server closed it (or the wait ended).
struct raw_reply {
  unsigned status = 0;       ///< from the status line; 0 when nothing arrived
  std::string text;          ///< everything received
  bool closed = false;       ///< the server closed the connection (EOF or reset) within the wait
  /// The value of the first header with this name (case-insensitive), or "" when absent.
  std::string header(std::string_view name) const;
};

/// A plain TCP connection to 127.0.0.1 that sends exactly the bytes it is given.
class raw_connection {
public:
  /// Connects; fails the test when it cannot.
  explicit raw_connection(uint16_t port);
  ~raw_connection();
  raw_connection(const raw_connection&) = delete;
  raw_connection& operator=(const raw_connection&) = delete;

  /// Sends all of `bytes` (a write the server refuses because it closed is not an error).
  void send(std::string_view bytes);
  /// Reads until the server closes the connection or `timeout` passes.
  raw_reply read_until_close(millis timeout = default_wait);
  /// Reads one response head (up to the blank line) without waiting for the close.
  raw_reply read_head(millis timeout = default_wait);
  /// Closes the connection from this side.
  void close();

private:
  /// Receives until `done(received so far)`, the deadline, or the server's close; true only for
  /// the close.
  bool receive_until(std::chrono::steady_clock::time_point deadline,
                     const std::function<bool(const std::string&)>& done);

  int fd_ = -1;
  std::string received_;
};

/// A GET request for `target` with Host 127.0.0.1:port and the extra header lines given (each
/// ending in \r\n), as raw bytes.
std::string raw_get(uint16_t port, const std::string& target, const std::string& extra_lines = "");

/// The same as a WebSocket upgrade request for /ws.
std::string raw_upgrade(uint16_t port, const std::string& extra_lines = "");

// -- small helpers -----------------------------------------------------------------------------------

/// A string of `n` bytes, for size limits.
std::string filler(std::size_t n, char c = 'x');

/// True if the JSON array holds this string.
bool contains(const json& array, std::string_view value);

/// Milliseconds elapsed since `start`.
long long elapsed_ms(std::chrono::steady_clock::time_point start);

} // namespace parley::e2e
