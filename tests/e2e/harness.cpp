#include "harness.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <sstream>

#ifndef PARLEY_BINARY
#error "PARLEY_BINARY must name the parley executable"
#endif
#ifndef PARLEY_SOURCE_DIR
#error "PARLEY_SOURCE_DIR must name the source tree"
#endif

namespace parley::e2e {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace websocket = boost::beast::websocket;
using tcp = boost::asio::ip::tcp;
using steady = std::chrono::steady_clock;

namespace {

constexpr std::string_view listening_marker = "parley listening on ";
constexpr std::string_view admin_listening_marker = "parley admin listening on ";

/// Runs completion handlers until `done()` holds or the deadline passes; returns done(). This is how
/// every socket operation in the harness gets a deadline: synchronous Asio calls have none.
bool drive(asio::io_context& ioc, const std::function<bool()>& done, steady::time_point deadline) {
  while (!done()) {
    auto now = steady::now();
    if (now >= deadline)
      return false;
    if (ioc.stopped())
      ioc.restart();
    if (ioc.run_one_for(deadline - now) == 0 && ioc.stopped() && !done())
      return false;  // no outstanding work: nothing can ever complete
  }
  return true;
}

exit_status decode_wait_status(int raw) {
  exit_status st;
  if (WIFEXITED(raw)) {
    st.exited = true;
    st.code = WEXITSTATUS(raw);
  } else if (WIFSIGNALED(raw)) {
    st.signal = WTERMSIG(raw);
  }
  return st;
}

/// The listening line's port, once the whole line has arrived.
std::optional<uint16_t> find_listening_port(const std::string& text,
                                            std::string_view marker = listening_marker) {
  auto pos = text.find(marker);
  if (pos == std::string::npos)
    return std::nullopt;
  auto eol = text.find('\n', pos);
  if (eol == std::string::npos)
    return std::nullopt;
  auto line = text.substr(pos + marker.size(), eol - pos - marker.size());
  // With [log] format=json the line is the msg field of a JSON object: it ends at the quote.
  line = line.substr(0, line.find('"'));
  auto colon = line.rfind(':');
  if (colon == std::string::npos)
    return std::nullopt;
  unsigned long port = 0;
  std::size_t digits = 0;
  for (auto i = colon + 1; i < line.size() && std::isdigit(static_cast<unsigned char>(line[i])); ++i) {
    port = port * 10 + static_cast<unsigned long>(line[i] - '0');
    ++digits;
  }
  if (digits == 0 || port == 0 || port > 65535)
    return std::nullopt;
  return static_cast<uint16_t>(port);
}

/// Closes every inherited descriptor above stderr in the forked child; async-signal-safe.
void close_inherited_fds() {
#ifdef SYS_close_range
  if (syscall(SYS_close_range, 3u, ~0u, 0u) == 0)
    return;
#endif
  for (int fd = 3; fd < 4096; ++fd)
    ::close(fd);
}

std::string tail(const std::string& text, std::size_t n = 4000) {
  return text.size() <= n ? text : "..." + text.substr(text.size() - n);
}

} // namespace

// -- exit_status -----------------------------------------------------------------------------------

std::string exit_status::describe() const {
  if (exited)
    return "exit code " + std::to_string(code);
  if (signal != 0)
    return std::string("signal ") + std::to_string(signal) + " (" + strsignal(signal) + ")";
  return "unknown";
}

// -- server_process --------------------------------------------------------------------------------

server_process::server_process(server_options opts) {
  write_config(opts);
  spawn(opts);
  drainer_ = std::thread([this] { drain_output(); });
  if (opts.expect_listening && !wait_for_listening_line(opts.startup_timeout, opts.expect_admin)) {
    // FAIL throws and a throwing constructor runs no destructor: clean up here first.
    auto out = output();
    auto status = wait_for_exit(0ms);
    stop_child();
    remove_config();
    FAIL("parley did not print '" << listening_marker << "<address>:<port>'"
                                 << (opts.expect_admin ? " and its admin listening line" : "")
                                 << " within "
                                 << opts.startup_timeout.count() << " ms ("
                                 << (status ? "it ended with " + status->describe() : "still running")
                                 << "; binary " << PARLEY_BINARY << ")\n--- output ---\n"
                                 << tail(out));
  }
}

server_process::~server_process() {
  stop_child();
  // A test that failed (and is unwinding) shows what the server said: often the reason.
  if (std::uncaught_exceptions() > 0)
    std::fprintf(stderr, "--- parley output (the test failed) ---\n%s--- end of parley output ---\n",
                 output().c_str());
  remove_config();
}

void server_process::write_config(const server_options& opts) {
  char dir_template[] = "/tmp/parley-e2e-XXXXXX";
  if (mkdtemp(dir_template) == nullptr)
    FAIL("mkdtemp failed: " << strerror(errno));
  temp_dir_ = dir_template;
  config_path_ = temp_dir_ + "/parley.ini";
  // Loopback only, a free port, and the checked-in web root; tests override the rest.
  std::map<std::string, std::string> values = {
    {"server.address", "\"127.0.0.1\""},
    {"server.port", "0"},
    {"server.web_root", std::string("\"") + PARLEY_SOURCE_DIR + "/web\""},
    {"store.path", "\"" + temp_dir_ + "/parley.db\""},
    {"admin.web_root", std::string("\"") + PARLEY_SOURCE_DIR + "/web-admin\""},
    // Stopping closes every connection at once, as tests expect; drain tests set a period.
    {"server.drain_period", "0s"},
  };
  for (const auto& [key, value] : opts.ini)
    values[key] = value;
  std::map<std::string, std::vector<std::pair<std::string, std::string>>> sections;
  for (const auto& [key, value] : values) {
    auto dot = key.find('.');
    REQUIRE_MESSAGE(dot != std::string::npos, "INI override without a section: " << key);
    sections[key.substr(0, dot)].emplace_back(key.substr(dot + 1), value);
  }
  std::ofstream out(config_path_);
  for (const auto& [section, entries] : sections) {
    out << '[' << section << "]\n";
    for (const auto& [key, value] : entries)
      out << key << '=' << value << '\n';
    out << '\n';
  }
  REQUIRE_MESSAGE(out.good(), "could not write " << config_path_);
}

void server_process::spawn(const server_options& opts) {
  // Many servers run at once: the admin listener too gets a free port unless a test says otherwise.
  std::vector<std::string> args = {PARLEY_BINARY, "--config=" + config_path_, "--server.port=0",
                                   "--admin.port=0"};
  args.insert(args.end(), opts.args.begin(), opts.args.end());
  std::vector<char*> argv;
  for (auto& arg : args)
    argv.push_back(arg.data());
  argv.push_back(nullptr);
  // The environment is built before fork: the child may only make async-signal-safe calls.
  std::vector<std::string> env_entries;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view entry{*e};
    if (!opts.env.count(std::string{entry.substr(0, entry.find('='))}))
      env_entries.emplace_back(entry);
  }
  for (const auto& [key, value] : opts.env)
    env_entries.push_back(key + "=" + value);
  std::vector<char*> envp;
  for (auto& entry : env_entries)
    envp.push_back(entry.data());
  envp.push_back(nullptr);

  int out_pipe[2];
  int err_pipe[2];
  REQUIRE(pipe2(out_pipe, O_CLOEXEC) == 0);
  REQUIRE(pipe2(err_pipe, O_CLOEXEC) == 0);
  int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  REQUIRE(null_fd >= 0);
  pid_t parent = getpid();

  pid_ = fork();
  if (pid_ == 0) {
    // Child: async-signal-safe calls only until exec. Die with the test process so a crashed test
    // run never leaves a server behind.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
      _exit(126);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    dup2(null_fd, STDIN_FILENO);
    dup2(out_pipe[1], STDOUT_FILENO);
    dup2(err_pipe[1], STDERR_FILENO);
    close_inherited_fds();
    execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  ::close(null_fd);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  out_fd_ = out_pipe[0];
  err_fd_ = err_pipe[0];
  if (pid_ < 0) {
    ::close(out_fd_);
    ::close(err_fd_);
    out_fd_ = err_fd_ = -1;
    FAIL("fork failed: " << strerror(errno));
  }
}

void server_process::drain_output() {
  // Keeps reading both pipes for the whole life of the child, so a chatty server never blocks on
  // a full pipe.
  int fds[2] = {out_fd_, err_fd_};
  char chunk[4096];
  while (fds[0] >= 0 || fds[1] >= 0) {
    {
      std::lock_guard<std::mutex> guard{mtx_};
      if (stop_drain_)
        break;
    }
    pollfd pfds[2] = {{fds[0], POLLIN, 0}, {fds[1], POLLIN, 0}};
    int rc = ::poll(pfds, 2, 100);
    if (rc < 0 && errno != EINTR)
      break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i] < 0 || (pfds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0)
        continue;
      auto n = ::read(fds[i], chunk, sizeof(chunk));
      if (n > 0) {
        std::lock_guard<std::mutex> guard{mtx_};
        (i == 0 ? stdout_text_ : stderr_text_).append(chunk, static_cast<std::size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        ::close(fds[i]);
        fds[i] = -1;
      }
    }
    cv_.notify_all();
  }
  for (int fd : fds)
    if (fd >= 0)
      ::close(fd);
  std::lock_guard<std::mutex> guard{mtx_};
  drained_ = true;
  cv_.notify_all();
}

bool server_process::wait_for_listening_line(millis timeout, bool with_admin) {
  std::unique_lock<std::mutex> lock{mtx_};
  auto found = [this] {
    if (auto port = find_listening_port(stdout_text_)) {
      port_ = *port;
      listening_on_stdout_ = true;
    } else if (auto port = find_listening_port(stderr_text_)) {
      port_ = *port;
    }
    if (auto port = find_listening_port(stdout_text_, admin_listening_marker))
      admin_port_ = *port;
    else if (auto port = find_listening_port(stderr_text_, admin_listening_marker))
      admin_port_ = *port;
    return port_ != 0;
  };
  auto done = [&] { return (found() && (!with_admin || admin_port_ != 0)) || drained_; };
  cv_.wait_for(lock, timeout, done);
  return port_ != 0 && (!with_admin || admin_port_ != 0);
}

void server_process::send_signal(int sig) {
  if (pid_ > 0 && !status_)
    ::kill(pid_, sig);
}

std::optional<exit_status> server_process::wait_for_exit(millis timeout) {
  if (status_ || pid_ <= 0)
    return status_;
  auto deadline = steady::now() + timeout;
  for (;;) {
    int raw = 0;
    auto rc = ::waitpid(pid_, &raw, WNOHANG);
    if (rc == pid_) {
      status_ = decode_wait_status(raw);
      return status_;
    }
    if (rc < 0 && errno != EINTR)
      return std::nullopt;
    if (steady::now() >= deadline)
      return std::nullopt;
    std::this_thread::sleep_for(10ms);
  }
}

exit_status server_process::terminate(millis timeout) {
  send_signal(SIGTERM);
  auto status = wait_for_exit(timeout);
  if (!status) {
    kill();
    FAIL("parley did not exit within " << timeout.count() << " ms of SIGTERM\n--- output ---\n"
                                       << tail(output()));
  }
  return *status;
}

void server_process::kill() {
  send_signal(SIGKILL);
  wait_for_exit(5s);
}

std::string server_process::output() const {
  std::lock_guard<std::mutex> guard{mtx_};
  std::string result = stdout_text_;
  if (!stderr_text_.empty())
    result += "\n--- stderr ---\n" + stderr_text_;
  return result;
}

void server_process::stop_child() {
  // Ask politely first (clients are normally gone by now, so this is quick), then insist.
  if (pid_ > 0 && !status_) {
    send_signal(SIGTERM);
    if (!wait_for_exit(3s))
      kill();
  }
  if (drainer_.joinable()) {
    {
      std::unique_lock<std::mutex> lock{mtx_};
      cv_.wait_for(lock, 1s, [this] { return drained_; });
      stop_drain_ = true;
    }
    drainer_.join();
  } else {
    for (int fd : {out_fd_, err_fd_})
      if (fd >= 0)
        ::close(fd);
  }
  out_fd_ = err_fd_ = -1;
}

void server_process::remove_config() {
  std::error_code ignored;
  if (!temp_dir_.empty())
    std::filesystem::remove_all(temp_dir_, ignored);  // the config and the default database
  config_path_.clear();
  temp_dir_.clear();
}

scratch_dir::scratch_dir() {
  char dir_template[] = "/tmp/parley-e2e-data-XXXXXX";
  if (mkdtemp(dir_template) == nullptr)
    FAIL("mkdtemp failed: " << strerror(errno));
  path_ = dir_template;
}

scratch_dir::~scratch_dir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

// -- run_parley ----------------------------------------------------------------------------------------

run_result run_parley(const std::vector<std::string>& args, millis timeout) {
  std::vector<std::string> all = {PARLEY_BINARY};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& arg : all)
    argv.push_back(arg.data());
  argv.push_back(nullptr);
  int out_pipe[2];
  int err_pipe[2];
  REQUIRE(pipe2(out_pipe, O_CLOEXEC) == 0);
  REQUIRE(pipe2(err_pipe, O_CLOEXEC) == 0);
  int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  REQUIRE(null_fd >= 0);
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
      _exit(126);
    dup2(null_fd, STDIN_FILENO);
    dup2(out_pipe[1], STDOUT_FILENO);
    dup2(err_pipe[1], STDERR_FILENO);
    close_inherited_fds();
    execv(argv[0], argv.data());
    _exit(127);
  }
  ::close(null_fd);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  REQUIRE_MESSAGE(pid > 0, "fork failed: " << strerror(errno));
  run_result result;
  int fds[2] = {out_pipe[0], err_pipe[0]};
  auto deadline = steady::now() + timeout;
  bool timed_out = false;
  char chunk[4096];
  while (fds[0] >= 0 || fds[1] >= 0) {
    auto left = std::chrono::duration_cast<millis>(deadline - steady::now()).count();
    if (left <= 0) {
      timed_out = true;
      break;
    }
    pollfd pfds[2] = {{fds[0], POLLIN, 0}, {fds[1], POLLIN, 0}};
    if (::poll(pfds, 2, static_cast<int>(left)) < 0 && errno != EINTR)
      break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i] < 0 || (pfds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0)
        continue;
      auto n = ::read(fds[i], chunk, sizeof(chunk));
      if (n > 0) {
        (i == 0 ? result.out : result.err).append(chunk, static_cast<std::size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        ::close(fds[i]);
        fds[i] = -1;
      }
    }
  }
  for (int fd : fds)
    if (fd >= 0)
      ::close(fd);
  if (timed_out)
    ::kill(pid, SIGKILL);
  int raw = 0;
  while (::waitpid(pid, &raw, 0) < 0 && errno == EINTR) {
  }
  result.status = decode_wait_status(raw);
  REQUIRE_MESSAGE(!timed_out, "parley did not end within " << timeout.count() << " ms\n--- stdout ---\n"
                                                        << tail(result.out) << "\n--- stderr ---\n"
                                                        << tail(result.err));
  return result;
}

// -- ws_client -------------------------------------------------------------------------------------

ws_client::ws_client() : ws_(ioc_) {
  // One protocol message per WebSocket frame, so size-limit tests mean what they say.
  ws_.auto_fragment(false);
}

ws_client::~ws_client() {
  drop();
  // Let aborted operations finish while every member they touch is still alive.
  ioc_.restart();
  ioc_.poll();
}

json ws_client::connect(uint16_t port, const std::string& name, ws_connect_options opts) {
  name_ = name;
  auto deadline = steady::now() + opts.timeout;
  auto& sock = ws_.next_layer();
  sock.open(tcp::v4());
  if (opts.receive_buffer > 0)
    sock.set_option(asio::socket_base::receive_buffer_size(opts.receive_buffer));

  bool done = false;
  beast::error_code ec;
  tcp::endpoint endpoint{asio::ip::make_address("127.0.0.1"), port};
  sock.async_connect(endpoint, [&](beast::error_code e) {
    ec = e;
    done = true;
  });
  if (!drive(ioc_, [&] { return done; }, deadline)) {
    drop();
    FAIL(name << ": TCP connect to port " << port << " timed out");
  }
  REQUIRE_MESSAGE(!ec, name << ": TCP connect failed: " << ec.message());

  auto protocols = opts.token.empty() ? opts.protocols : "parley.v1, parley.token." + opts.token;
  ws_.set_option(websocket::stream_base::decorator(
    [origin = opts.origin, protocols](websocket::request_type& req) {
      if (!origin.empty())
        req.set(http::field::origin, origin);
      if (!protocols.empty())
        req.set(http::field::sec_websocket_protocol, protocols);
    }));
  websocket::response_type response;
  done = false;
  auto target = opts.no_name || !opts.token.empty() ? std::string{"/ws"} : "/ws?name=" + name;
  ws_.async_handshake(response, "127.0.0.1:" + std::to_string(port), target,
                      [&](beast::error_code e) {
                        ec = e;
                        done = true;
                      });
  if (!drive(ioc_, [&] { return done; }, deadline)) {
    drop();
    FAIL(name << ": WebSocket upgrade timed out");
  }
  REQUIRE_MESSAGE(!ec, name << ": WebSocket upgrade failed: " << ec.message() << " (HTTP "
                            << response.result_int() << ")");
  protocol_ = std::string{response[http::field::sec_websocket_protocol]};
  if (!opts.expect_welcome)
    return json();

  auto remaining = std::chrono::duration_cast<millis>(deadline - steady::now());
  auto welcome = next(std::max(remaining, millis{1}));
  REQUIRE_MESSAGE(welcome.value("type", "") == "welcome", name << ": first frame is not a welcome: "
                                                               << welcome.dump());
  CHECK(welcome.value("user", "") == name);
  session_ = welcome.value("session", "");
  return welcome;
}

void ws_client::send_json(const json& frame) {
  write_frame(frame.dump(), false);
}

void ws_client::send_raw_text(std::string_view text) {
  write_frame(text, false);
}

void ws_client::send_binary(std::string_view bytes) {
  write_frame(bytes, true);
}

bool ws_client::try_send_raw_text(std::string_view text, millis timeout) {
  beast::error_code ec;
  return try_write_frame(text, false, timeout, ec);
}

void ws_client::write_frame(std::string_view payload, bool binary) {
  beast::error_code ec;
  if (!try_write_frame(payload, binary, default_wait, ec))
    FAIL(name_ << ": write of " << payload.size() << " bytes failed: "
               << (ec ? ec.message() : std::string("timed out")));
}

bool ws_client::try_write_frame(std::string_view payload, bool binary, millis timeout,
                                beast::error_code& ec) {
  if (!ws_.is_open()) {
    ec = asio::error::not_connected;
    return false;
  }
  ws_.binary(binary);
  bool done = false;
  ws_.async_write(asio::buffer(payload.data(), payload.size()), [&](beast::error_code e, std::size_t) {
    ec = e;
    done = true;
  });
  if (!drive(ioc_, [&] { return done; }, steady::now() + timeout)) {
    // The buffer dies with this call, so the write must not outlive it.
    drop();
    drive(ioc_, [&] { return done; }, steady::now() + 1s);
    return false;
  }
  return !ec;
}

void ws_client::start_read() {
  reading_ = true;
  read_ = read_result{};
  ws_.async_read(buffer_, [this](beast::error_code ec, std::size_t) {
    read_.done = true;
    read_.ec = ec;
    read_.binary = !ws_.got_text();
    read_.payload = beast::buffers_to_string(buffer_.data());
    buffer_.consume(buffer_.size());
    reading_ = false;
  });
}

bool ws_client::wait_read(millis timeout) {
  if (!reading_ && !read_.done)
    start_read();
  return drive(ioc_, [this] { return read_.done; }, steady::now() + timeout);
}

ws_client::read_result ws_client::take_read() {
  auto result = std::move(read_);
  read_ = read_result{};
  return result;
}

std::optional<json> ws_client::try_next(millis timeout) {
  if (!wait_read(timeout))
    return std::nullopt;
  auto result = take_read();
  if (result.ec == websocket::error::closed)
    FAIL(name_ << ": connection closed by the server (code " << ws_.reason().code << " '"
               << std::string(ws_.reason().reason.c_str()) << "') while waiting for a frame");
  if (result.ec)
    FAIL(name_ << ": read failed: " << result.ec.message());
  return parse(result);
}

json ws_client::parse(const read_result& result) {
  auto parsed = json::parse(result.payload, nullptr, false);
  if (parsed.is_discarded())
    FAIL(name_ << ": received a frame that is not JSON: " << result.payload.substr(0, 200));
  return parsed;
}

close_info ws_client::end_of(const read_result& result) {
  close_info info;
  if (result.ec == websocket::error::closed) {
    info.close_frame = true;
    info.code = static_cast<uint16_t>(ws_.reason().code);
    info.reason = std::string(ws_.reason().reason.c_str());
  } else {
    info.error = result.ec.message();
  }
  drop();
  return info;
}

frame_or_close ws_client::next_or_close(millis timeout) {
  if (!wait_read(timeout))
    FAIL(name_ << ": neither a frame nor a close within " << timeout.count() << " ms");
  auto result = take_read();
  frame_or_close out;
  if (result.ec)
    out.close = end_of(result);
  else
    out.frame = parse(result);
  return out;
}

json ws_client::next(millis timeout) {
  auto frame = try_next(timeout);
  if (!frame)
    FAIL(name_ << ": no frame within " << timeout.count() << " ms");
  return *frame;
}

json ws_client::next_of_type(std::string_view type, millis timeout) {
  return next_matching([type](const json& f) { return f.value("type", "") == type; },
                       "'" + std::string(type) + "' frame", timeout);
}

json ws_client::next_matching(const std::function<bool(const json&)>& match, std::string_view what,
                              millis timeout) {
  auto deadline = steady::now() + timeout;
  std::vector<std::string> skipped;
  for (;;) {
    auto remaining = std::chrono::duration_cast<millis>(deadline - steady::now());
    std::optional<json> frame;
    if (remaining.count() > 0)
      frame = try_next(remaining);
    if (!frame) {
      std::ostringstream seen;
      for (const auto& s : skipped)
        seen << "\n  " << s.substr(0, 300);
      FAIL(name_ << ": no " << what << " within " << timeout.count() << " ms; skipped "
                 << skipped.size() << " frame(s):" << seen.str());
    }
    if (match(*frame))
      return *frame;
    if (skipped.size() < 20)
      skipped.push_back(frame->dump());
  }
}

close_info ws_client::expect_close(millis timeout) {
  auto deadline = steady::now() + timeout;
  close_info info;
  std::string last_frame;
  for (;;) {
    auto remaining = std::chrono::duration_cast<millis>(deadline - steady::now());
    if (remaining.count() <= 0 || !wait_read(remaining))
      FAIL(name_ << ": connection still open after " << timeout.count() << " ms ("
                 << info.frames_before << " frame(s) received meanwhile, last: "
                 << last_frame.substr(0, 300) << ")");
    auto result = take_read();
    if (!result.ec) {
      ++info.frames_before;
      last_frame = std::move(result.payload);
      continue;
    }
    auto frames = info.frames_before;
    info = end_of(result);
    info.frames_before = frames;
    return info;
  }
}

json ws_client::join(const std::string& room, json extra, millis timeout) {
  json cmd = std::move(extra);
  cmd["type"] = "join";
  cmd["room"] = room;
  send_json(cmd);
  auto joined = next_matching(
    [&](const json& f) {
      auto type = f.value("type", "");
      return (type == "joined" && f.value("room", "") == room) || type == "error";
    },
    "'joined' for room " + room, timeout);
  REQUIRE_MESSAGE(joined.value("type", "") == "joined", name_ << ": join " << room << " failed: "
                                                              << joined.dump());
  return joined;
}

json ws_client::say(const std::string& room, const std::string& text, const std::string& cid,
                    millis timeout) {
  send_json({{"type", "send"}, {"room", room}, {"text", text}, {"cid", cid}});
  auto echo = next_matching(
    [&](const json& f) {
      auto type = f.value("type", "");
      return (type == "message" && f.value("cid", "") == cid) || type == "error";
    },
    "echo of cid " + cid, timeout);
  REQUIRE_MESSAGE(echo.value("type", "") == "message", name_ << ": send " << cid << " failed: "
                                                             << echo.dump());
  return echo;
}

void ws_client::close(millis timeout) {
  if (!ws_.is_open())
    return drop();
  auto deadline = steady::now() + timeout;
  bool done = false;
  ws_.async_close(websocket::close_code::normal, [&](beast::error_code) { done = true; });
  drive(ioc_, [&] { return done; }, deadline);
  if (reading_)
    drive(ioc_, [this] { return read_.done; }, deadline);
  drop();
  // The close handler refers to this frame's locals: it must have run before we return.
  drive(ioc_, [&] { return done; }, steady::now() + 1s);
  take_read();
}

void ws_client::drop() {
  beast::error_code ignored;
  auto& sock = ws_.next_layer();
  if (sock.is_open()) {
    sock.shutdown(tcp::socket::shutdown_both, ignored);
    sock.close(ignored);
  }
}

bool ws_client::is_open() const {
  return ws_.is_open();
}

// -- http_get --------------------------------------------------------------------------------------

http_reply http_get(uint16_t port, const std::string& target,
                    const std::vector<std::pair<std::string, std::string>>& headers, millis timeout) {
  return http_request(port, "GET", target, {}, headers, timeout);
}

http_reply http_request(uint16_t port, const std::string& method, const std::string& target,
                        const std::string& body,
                        const std::vector<std::pair<std::string, std::string>>& headers,
                        millis timeout) {
  asio::io_context ioc;
  tcp::socket sock{ioc};
  auto deadline = steady::now() + timeout;
  bool done = false;
  beast::error_code ec;
  auto finish = [&](beast::error_code e, auto&&...) {
    ec = e;
    done = true;
  };
  auto run_step = [&](const char* step) {
    if (!drive(ioc, [&] { return done; }, deadline)) {
      sock.close(ec);
      ioc.restart();
      ioc.poll();
      FAIL(method << " " << target << ": " << step << " timed out");
    }
    REQUIRE_MESSAGE(!ec, method << " " << target << ": " << step << " failed: " << ec.message());
    done = false;
  };

  sock.async_connect(tcp::endpoint{asio::ip::make_address("127.0.0.1"), port},
                     [&](beast::error_code e) { finish(e); });
  run_step("connect");

  http::request<http::string_body> req{http::string_to_verb(method), target, 11};
  if (req.method() == http::verb::unknown)
    req.method_string(method);
  req.set(http::field::host, "127.0.0.1:" + std::to_string(port));
  req.set(http::field::user_agent, "parley-e2e");
  if (!body.empty())
    req.set(http::field::content_type, "application/json");
  for (const auto& [field, value] : headers)
    req.set(field, value);
  req.body() = body;
  if (!body.empty() || req.method() == http::verb::post)
    req.prepare_payload();
  http::async_write(sock, req, finish);
  run_step("write");

  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(64 * 1024 * 1024);  // /metrics may be large
  if (req.method() == http::verb::head)
    parser.skip(true);
  http::async_read(sock, buffer, parser, finish);
  run_step("read");
  auto res = parser.release();

  beast::error_code ignored;
  sock.shutdown(tcp::socket::shutdown_both, ignored);
  sock.close(ignored);
  http_reply reply{res.result_int(), std::string(res[http::field::content_type]), res.body(), {}};
  for (const auto& field : res)
    reply.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  return reply;
}

std::string http_reply::header(std::string_view name) const {
  auto same = [](std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
             return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
           });
  };
  for (const auto& [field, value] : headers)
    if (same(field, name))
      return value;
  return {};
}

// -- raw TCP ---------------------------------------------------------------------------------------

namespace {

unsigned status_of(const std::string& text) {
  // "HTTP/1.1 404 Not Found"
  if (text.rfind("HTTP/1.", 0) != 0 || text.size() < 12)
    return 0;
  return static_cast<unsigned>(std::atoi(text.c_str() + 9));
}

} // namespace

std::string raw_reply::header(std::string_view name) const {
  auto head = text.substr(0, text.find("\r\n\r\n"));
  std::istringstream lines{head};
  std::string line;
  while (std::getline(lines, line)) {
    auto colon = line.find(':');
    if (colon != name.size())
      continue;
    bool same = std::equal(name.begin(), name.end(), line.begin(), [](char a, char b) {
      return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
    });
    if (!same)
      continue;
    auto value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
      value.erase(0, 1);
    while (!value.empty() && (value.back() == '\r' || value.back() == ' '))
      value.pop_back();
    return value;
  }
  return "";
}

raw_connection::raw_connection(uint16_t port) {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE_MESSAGE(fd_ >= 0, "socket: " << strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE_MESSAGE(::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0,
                  "connect: " << strerror(errno));
}

raw_connection::~raw_connection() {
  close();
}

void raw_connection::send(std::string_view bytes) {
  while (!bytes.empty()) {
    auto n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n <= 0)
      return;  // the server may refuse and close before reading everything
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
}

bool raw_connection::receive_until(steady::time_point deadline,
                                   const std::function<bool(const std::string&)>& done) {
  while (!done(received_)) {
    auto left = std::chrono::duration_cast<millis>(deadline - steady::now()).count();
    pollfd p{fd_, POLLIN, 0};
    if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) <= 0)
      return false;
    char buf[4096];
    auto n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0)
      return true;
    received_.append(buf, static_cast<std::size_t>(n));
  }
  return false;
}

raw_reply raw_connection::read_until_close(millis timeout) {
  raw_reply reply;
  reply.closed = receive_until(steady::now() + timeout, [](const std::string&) { return false; });
  reply.text = received_;
  reply.status = status_of(reply.text);
  return reply;
}

raw_reply raw_connection::read_head(millis timeout) {
  raw_reply reply;
  reply.closed = receive_until(steady::now() + timeout, [](const std::string& received) {
    return received.find("\r\n\r\n") != std::string::npos;
  });
  auto end = received_.find("\r\n\r\n");
  reply.text = received_.substr(0, end == std::string::npos ? received_.size() : end + 4);
  // Keep what follows the head (a body, frames) for the next read.
  received_.erase(0, reply.text.size());
  reply.status = status_of(reply.text);
  return reply;
}

void raw_connection::close() {
  if (fd_ >= 0)
    ::close(fd_);
  fd_ = -1;
}

std::string raw_get(uint16_t port, const std::string& target, const std::string& extra_lines) {
  return "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) + "\r\n" +
         extra_lines + "\r\n";
}

std::string raw_upgrade(uint16_t port, const std::string& extra_lines) {
  return raw_get(port, "/ws",
                 "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" +
                   extra_lines);
}

// -- helpers ---------------------------------------------------------------------------------------

std::string filler(std::size_t n, char c) {
  return std::string(n, c);
}

bool contains(const json& array, std::string_view value) {
  if (!array.is_array())
    return false;
  for (const auto& item : array)
    if (item.is_string() && item.get<std::string>() == value)
      return true;
  return false;
}

long long elapsed_ms(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration_cast<millis>(std::chrono::steady_clock::now() - start).count();
}

} // namespace parley::e2e
