#include "nginx_process.hpp"

#include "child_process.hpp"

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

namespace parley::e2e {

namespace {

void require_nginx() {
  REQUIRE_MESSAGE(::access(nginx_binary, X_OK) == 0,
                  std::string{nginx_binary} << " is missing: these tests need Debian's nginx package; "
                                  "scripts/install-deploy-test-deps.sh (run by `make test`) installs it");
}

/// Runs nginx with these arguments after the prefix ones; stdout and stderr go to `output_path`.
pid_t spawn_nginx(const std::string& prefix, std::vector<std::string> extra, const std::string& output_path) {
  ::mkdir((prefix + "/temp").c_str(), 0700);  // nginx makes the temporary paths, not their parent
  std::vector<std::string> args = {nginx_binary,   "-p", prefix + "/", "-c", prefix + "/nginx.conf",
                                   "-e", prefix + "/error.log"};
  args.insert(args.end(), extra.begin(), extra.end());
  return spawn_child(std::move(args), output_path);
}

} // namespace

void make_localhost_certificate(const std::string& certificate, const std::string& key) {
  auto command = "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
                 "-days 1 -subj /CN=localhost -addext subjectAltName=DNS:localhost -keyout " +
                 key + " -out " + certificate + " >/dev/null 2>&1";
  REQUIRE_MESSAGE(std::system(command.c_str()) == 0, "openssl could not make a certificate: " << command);
}

uint16_t free_loopback_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
            ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
  ::close(fd);
  REQUIRE_MESSAGE(ok, "no free loopback port: " << std::strerror(errno));
  return ntohs(addr.sin_port);
}

std::string nginx_main_config(const std::string& prefix, const std::string& http_snippet) {
  std::string out = "worker_processes 1;\n"
         "pid " + prefix + "/nginx.pid;\n"
         "error_log " + prefix + "/error.log info;\n"
         "events { worker_connections 256; }\n"
         "http {\n"
         "    access_log " + prefix + "/access.log;\n"
         "    client_body_temp_path " + prefix + "/temp/body;\n"
         "    proxy_temp_path " + prefix + "/temp/proxy;\n"
         "    fastcgi_temp_path " + prefix + "/temp/fastcgi;\n"
         "    uwsgi_temp_path " + prefix + "/temp/uwsgi;\n"
         "    scgi_temp_path " + prefix + "/temp/scgi;\n"
         "    include " + http_snippet + ";\n"
         "}\n";
  return out;
}

nginx_check check_nginx_config(const std::string& prefix) {
  require_nginx();
  auto output_path = prefix + "/nginx-t.out";
  pid_t pid = spawn_nginx(prefix, {"-t"}, output_path);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return {WIFEXITED(status) && WEXITSTATUS(status) == 0, read_file(output_path)};
}

nginx_process::nginx_process(const std::string& prefix, uint16_t port, millis startup_timeout)
  : prefix_(prefix) {
  require_nginx();
  // One process (no master and workers): nothing is left behind should the test process die,
  // since the child dies with it, and no worker drops to a user who cannot enter the scratch dir.
  pid_ = spawn_nginx(prefix_, {"-g", "daemon off; master_process off;"}, prefix_ + "/stderr.log");
  auto deadline = std::chrono::steady_clock::now() + startup_timeout;
  while (!accepts_connections(port)) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      FAIL("nginx ended before listening on port " << port << ":\n" << log());
    }
    if (std::chrono::steady_clock::now() > deadline) {
      auto text = log();
      stop();
      FAIL("nginx did not listen on port " << port << " within " << startup_timeout.count()
                                           << " ms:\n" << text);
    }
    std::this_thread::sleep_for(20ms);
  }
}

nginx_process::~nginx_process() {
  stop();
}

void nginx_process::stop() {
  if (pid_ <= 0)
    return;
  // SIGTERM is nginx's fast shutdown.
  ::kill(pid_, SIGTERM);
  auto deadline = std::chrono::steady_clock::now() + 5s;
  int status = 0;
  while (::waitpid(pid_, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
      break;
    }
    std::this_thread::sleep_for(10ms);
  }
  pid_ = -1;
}

std::string nginx_process::log() const {
  return "--- error.log ---\n" + read_file(prefix_ + "/error.log") + "--- stderr ---\n" +
         read_file(prefix_ + "/stderr.log");
}

} // namespace parley::e2e
