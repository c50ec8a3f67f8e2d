#include "redis_process.hpp"

#include "child_process.hpp"
#include "nginx_process.hpp"  // free_loopback_port

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <exception>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace parley::e2e {

namespace {

/// The last `n` bytes of a log: enough to see why Redis stopped, short enough to read.
std::string tail(const std::string& text, std::size_t n = 6000) {
  return text.size() <= n ? text : "..." + text.substr(text.size() - n);
}

/// One command as RESP: an array of bulk strings.
std::string encode_command(const std::vector<std::string>& args) {
  std::string out = "*" + std::to_string(args.size()) + "\r\n";
  for (const auto& arg : args)
    out += "$" + std::to_string(arg.size()) + "\r\n" + arg + "\r\n";
  return out;
}

/// Where the reply that starts at `pos` ends (one past its last byte); npos when the text stops
/// before it does.
std::size_t reply_end(const std::string& text, std::size_t pos) {
  if (pos >= text.size())
    return std::string::npos;
  auto line_end = text.find("\r\n", pos);
  if (line_end == std::string::npos)
    return std::string::npos;
  auto after_line = line_end + 2;
  auto header = text.substr(pos + 1, line_end - pos - 1);
  switch (text[pos]) {
    case '+':
    case '-':
    case ':':
      return after_line;
    case '$': {
      long long size = std::stoll(header);  // throws std::invalid_argument on garbage
      if (size < 0)
        return after_line;  // the null bulk string
      auto end = after_line + static_cast<std::size_t>(size) + 2;
      return end <= text.size() ? end : std::string::npos;
    }
    case '*': {
      long long count = std::stoll(header);
      auto at = after_line;
      for (long long i = 0; i < count; ++i) {  // a null array (-1) has no elements
        at = reply_end(text, at);
        if (at == std::string::npos)
          return std::string::npos;
      }
      return at;
    }
    default:
      throw std::invalid_argument("not a RESP reply: " + text.substr(pos, 40));
  }
}

/// The connection's socket, or -1 when nothing accepts on the port.
int connect_loopback(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

/// Sends `request` and reads one whole reply; nullopt on a closed connection or the deadline.
std::optional<std::string> exchange(int fd, const std::string& request, millis timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::size_t sent = 0;
  while (sent < request.size()) {
    auto n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0)
      return std::nullopt;
    sent += static_cast<std::size_t>(n);
  }
  std::string received;
  char chunk[4096];
  for (;;) {
    auto left = std::chrono::duration_cast<millis>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0)
      return std::nullopt;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0)
      continue;  // the deadline check above ends the wait
    auto n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n <= 0)
      return std::nullopt;
    received.append(chunk, static_cast<std::size_t>(n));
    auto length = resp_reply_length(received);
    if (length > 0)
      return received.substr(0, length);
  }
}

void require_redis() {
  REQUIRE_MESSAGE(::access(redis_binary, X_OK) == 0,
                  std::string{redis_binary} << " is missing: the cluster tests need Debian's "
                                  "redis-server package; scripts/install-cluster-test-deps.sh "
                                  "(run by `make test`) installs it");
}

} // namespace

// -- redis_process ---------------------------------------------------------------------------------

redis_process::redis_process(redis_options opts) : opts_(std::move(opts)) {
  require_redis();
  REQUIRE(::mkdir(data_dir().c_str(), 0700) == 0);
  port_ = free_loopback_port();
  start();
}

redis_process::~redis_process() {
  stop_child(5s);
  // A test that failed (and is unwinding) shows what Redis said: sometimes the reason.
  if (std::uncaught_exceptions() > 0)
    std::fprintf(stderr, "--- redis-server log (the test failed) ---\n%s--- end of redis-server log ---\n",
                 tail(log()).c_str());
}

std::string redis_process::address() const {
  return "127.0.0.1:" + std::to_string(port_);
}

std::string redis_process::data_dir() const {
  return dir_.file("data");
}

void redis_process::start() {
  REQUIRE_MESSAGE(!running(), "redis_process::start: Redis is already running on port " << port_);
  spawn();
  wait_until_ready();
}

void redis_process::spawn() {
  // Options on the command line only (no config file): Redis reads `--name value` pairs as if
  // they were lines of redis.conf.
  std::vector<std::string> args = {redis_binary,
                                   "--port", std::to_string(port_),
                                   "--bind", "127.0.0.1",
                                   "--protected-mode", "no",
                                   "--daemonize", "no",
                                   "--dir", data_dir(),
                                   "--logfile", dir_.file("redis.log"),
                                   "--save", "",
                                   "--appendonly", opts_.appendonly ? "yes" : "no",
                                   "--appendfsync", opts_.appendfsync};
  args.insert(args.end(), opts_.extra_args.begin(), opts_.extra_args.end());
  // Until the log file is open, Redis complains on stderr (e.g. about a bad option).
  pid_ = spawn_child(std::move(args), dir_.file("output.log"));
  paused_ = false;
}

void redis_process::wait_until_ready() {
  auto deadline = std::chrono::steady_clock::now() + opts_.startup_timeout;
  std::string last_reply = "(no connection)";
  for (;;) {
    if (!running())
      FAIL("redis-server ended before it answered PING on port " << port_ << ":\n" << tail(log()));
    if (auto reply = try_command({"PING"}, 1s)) {
      // While it loads the AOF, Redis answers -LOADING; ready means +PONG.
      if (reply->rfind("+PONG", 0) == 0)
        return;
      last_reply = *reply;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      auto text = log();
      stop_child(5s);
      FAIL("redis-server did not answer PING with +PONG on port "
           << port_ << " within " << opts_.startup_timeout.count() << " ms (last reply: "
           << last_reply << "):\n" << tail(text));
    }
    std::this_thread::sleep_for(20ms);
  }
}

void redis_process::stop(millis timeout) {
  REQUIRE_MESSAGE(running(), "redis_process::stop: Redis is not running");
  bool ended = stop_child(timeout);
  REQUIRE_MESSAGE(ended, "redis-server did not end within " << timeout.count()
                             << " ms of SIGTERM and was killed:\n" << tail(log()));
}

bool redis_process::stop_child(millis timeout) {
  if (!running())
    return true;
  if (paused_)
    ::kill(pid_, SIGCONT);  // a stopped process acts on SIGTERM only once it runs again
  ::kill(pid_, SIGTERM);
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (running()) {
    if (std::chrono::steady_clock::now() > deadline) {
      kill();
      return false;
    }
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

void redis_process::kill() {
  if (!running())
    return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
  paused_ = false;
}

void redis_process::pause() {
  REQUIRE_MESSAGE(running(), "redis_process::pause: Redis is not running");
  ::kill(pid_, SIGSTOP);
  paused_ = true;
}

void redis_process::resume() {
  REQUIRE_MESSAGE(running(), "redis_process::resume: Redis is not running");
  ::kill(pid_, SIGCONT);
  paused_ = false;
}

bool redis_process::running() {
  if (pid_ <= 0)
    return false;
  int status = 0;
  if (::waitpid(pid_, &status, WNOHANG) == pid_) {
    pid_ = -1;
    paused_ = false;
    return false;
  }
  return true;
}

std::string redis_process::command(const std::vector<std::string>& args, millis timeout) {
  auto reply = try_command(args, timeout);
  if (!reply) {
    std::string name = args.empty() ? "(empty)" : args.front();
    FAIL("Redis on port " << port_ << " did not answer " << name << " within " << timeout.count()
                          << " ms (running: " << running() << "):\n" << tail(log()));
  }
  return *reply;
}

std::optional<std::string> redis_process::try_command(const std::vector<std::string>& args,
                                                      millis timeout) const {
  int fd = connect_loopback(port_);
  if (fd < 0)
    return std::nullopt;
  auto reply = exchange(fd, encode_command(args), timeout);
  ::close(fd);
  return reply;
}

std::string redis_process::log() const {
  return "--- redis.log ---\n" + read_file(dir_.file("redis.log")) + "--- stdout and stderr ---\n" +
         read_file(dir_.file("output.log"));
}

// -- reading replies ---------------------------------------------------------------------------------

std::size_t resp_reply_length(const std::string& text) {
  auto end = reply_end(text, 0);
  return end == std::string::npos ? 0 : end;
}

long long resp_integer(const std::string& reply) {
  REQUIRE_MESSAGE((reply.size() > 3 && reply[0] == ':'), "not an integer reply: " << reply);
  return std::stoll(reply.substr(1));
}

std::optional<std::string> resp_bulk(const std::string& reply) {
  REQUIRE_MESSAGE((!reply.empty() && reply[0] == '$' && resp_reply_length(reply) == reply.size()),
                  "not a bulk string reply: " << reply);
  auto line_end = reply.find("\r\n");
  long long size = std::stoll(reply.substr(1, line_end - 1));
  if (size < 0)
    return std::nullopt;
  return reply.substr(line_end + 2, static_cast<std::size_t>(size));
}

std::vector<std::string> resp_strings(const std::string& reply) {
  REQUIRE_MESSAGE((!reply.empty() && reply[0] == '*' && resp_reply_length(reply) == reply.size()),
                  "not an array reply: " << reply);
  std::vector<std::string> out;
  auto at = reply.find("\r\n") + 2;
  while (at < reply.size()) {
    auto end = reply_end(reply, at);
    auto element = reply.substr(at, end - at);
    REQUIRE_MESSAGE(element[0] == '$', "array element is not a bulk string: " << element);
    out.push_back(resp_bulk(element).value_or(""));
    at = end;
  }
  return out;
}

} // namespace parley::e2e
