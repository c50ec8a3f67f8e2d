// End-to-end: the sd_notify protocol (net/service_notify.hpp) against the real binary. The test
// plays systemd: it binds the unix datagram socket, starts parley with NOTIFY_SOCKET naming it,
// and checks that READY=1 comes only once the port accepts connections and STOPPING=1 on SIGTERM.

#include "harness.hpp"
#include "child_process.hpp"
#include "nginx_process.hpp"  // free_loopback_port

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstddef>
#include <cstring>
#include <optional>
#include <string>
#include <thread>

using namespace parley::e2e;

namespace {

/// The service manager's end: a bound unix datagram socket.
class notify_listener {
public:
  /// `name` is a path, or "@name" for an abstract socket (as in NOTIFY_SOCKET).
  explicit notify_listener(const std::string& name) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    REQUIRE(name.size() < sizeof addr.sun_path);
    std::memcpy(addr.sun_path, name.data(), name.size());
    socklen_t length = offsetof(sockaddr_un, sun_path) + name.size();
    if (name.front() == '@')
      addr.sun_path[0] = '\0';
    else
      length += 1;
    REQUIRE_MESSAGE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), length) == 0,
                    "cannot bind " << name << ": " << std::strerror(errno));
  }
  ~notify_listener() { ::close(fd_); }
  notify_listener(const notify_listener&) = delete;
  notify_listener& operator=(const notify_listener&) = delete;

  /// The next datagram, or nullopt when none comes within `timeout`.
  std::optional<std::string> next(millis timeout) {
    pollfd pfd{fd_, POLLIN, 0};
    if (::poll(&pfd, 1, static_cast<int>(timeout.count())) != 1)
      return std::nullopt;
    char buffer[4096];
    auto n = ::recv(fd_, buffer, sizeof buffer, 0);
    if (n < 0)
      return std::nullopt;
    return std::string(buffer, static_cast<std::size_t>(n));
  }

private:
  int fd_ = -1;
};

} // namespace

TEST_CASE("with NOTIFY_SOCKET set, parley sends READY=1 once it listens and STOPPING=1 on SIGTERM") {
  scratch_dir dir;
  for (std::string socket_name : {dir.file("notify.sock"), "@parley-e2e-notify-" + std::to_string(::getpid())}) {
    CAPTURE(socket_name);
    notify_listener manager{socket_name};
    // A port chosen here, so that the test can try it the moment READY=1 arrives, before it
    // would otherwise learn the port from the server's output.
    auto port = free_loopback_port();
    server_options opts;
    opts.args = {"--server.port=" + std::to_string(port)};
    opts.env["NOTIFY_SOCKET"] = socket_name;
    opts.expect_listening = false;
    server_process server{opts};

    auto ready = manager.next(15s);
    REQUIRE_MESSAGE(ready, "no notification within 15 s\n" << server.output());
    CHECK(*ready == "READY=1");
    CHECK_MESSAGE(accepts_connections(port), "READY=1 arrived but port " << port << " refuses connections");
    CHECK(http_get(port, "/healthz").status == 200);

    server.send_signal(SIGTERM);
    auto stopping = manager.next(5s);
    REQUIRE_MESSAGE(stopping, "no notification after SIGTERM\n" << server.output());
    CHECK(*stopping == "STOPPING=1");
    auto status = server.wait_for_exit(10s);
    REQUIRE(status);
    CHECK(status->exited);
    CHECK(status->code == 0);
    CHECK_FALSE(manager.next(100ms));  // nothing else was sent
  }
}

TEST_CASE("a NOTIFY_SOCKET parley cannot use is logged and the server runs anyway") {
  server_options opts;
  opts.env["NOTIFY_SOCKET"] = "relative/path";
  server_process server{opts};
  CHECK(http_get(server.port(), "/healthz").status == 200);
  const std::string warning = "unsupported NOTIFY_SOCKET 'relative/path'";
  auto deadline = std::chrono::steady_clock::now() + default_wait;
  while (server.output().find(warning) == std::string::npos && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(20ms);
  CHECK_MESSAGE(server.output().find(warning) != std::string::npos, server.output());
}
