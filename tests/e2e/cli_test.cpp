// The command line of the real binary: --help, --version, options with a space or '=', one clear
// line and exit code 2 for a bad command line, and check-config agreeing with start-up.

#include "harness.hpp"

#include <doctest/doctest.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>

using namespace parley::e2e;

namespace {

/// A port nobody listens on right now (bound, read, released).
uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  socklen_t len = sizeof addr;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  ::close(fd);
  return ntohs(addr.sin_port);
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out{path};
  out << text;
  REQUIRE(out.good());
}

std::size_t count_lines(const std::string& text) {
  return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
}

/// A config a server can start from in a test: loopback, a free port, a scratch database.
std::string startable_config(const scratch_dir& dir) {
  return "[server]\naddress=\"127.0.0.1\"\nport=0\nweb_root=\"" PARLEY_SOURCE_DIR "/web\"\n"
         "[store]\npath=\"" + dir.file("parley.db") + "\"\n";
}

} // namespace

TEST_CASE("parley --help lists the general options, the subcommands and every setting with its default") {
  auto help = run_parley({"--help"});
  CHECK(help.status.exited);
  CHECK(help.status.code == 0);
  CHECK(help.err == "");
  for (auto expected : {"--config FILE", "--port N", "--version", "--help", "parley check-config FILE",
                        "parley token", "[server]", "[limits]", "[connection]", "[auth]", "[log]",
                        "[scheduler]", "  server.port = 8080\n", "  scheduler.max-threads = 1\n",
                        "  log.format = \"text\"\n"})
    CHECK_MESSAGE(help.out.find(expected) != std::string::npos, expected);
  CHECK(help.out.find("caf-application.ini") == std::string::npos);
  CHECK(help.out.find("--config-file") == std::string::npos);
  auto short_help = run_parley({"-h"});
  CHECK(short_help.status.code == 0);
  CHECK(short_help.out == help.out);
}

TEST_CASE("parley --version prints the project version and exits 0") {
  auto version = run_parley({"--version"});
  CHECK(version.status.exited);
  CHECK(version.status.code == 0);
  CHECK(version.out == std::string{"parley "} + PARLEY_VERSION + "\n");
}

TEST_CASE("--port N, --port=N and -p N all choose the port") {
  for (auto form : {"--port", "--port=", "-p"}) {
    CAPTURE(form);
    auto port = free_port();
    std::vector<std::string> args;
    if (std::string{form}.back() == '=')
      args = {form + std::to_string(port)};
    else
      args = {form, std::to_string(port)};
    server_process server{{{}, args}};
    CHECK(server.port() == port);
    CHECK(http_get(server.port(), "/healthz").status == 200);
  }
}

TEST_CASE("--config FILE and --config=FILE both read the file; a missing one is an error") {
  scratch_dir dir;
  auto path = dir.file("custom.ini");
  // A value only this file sets: the server must fail on it, whichever form named the file.
  write_file(path, startable_config(dir) + "[log]\nlevel=\"chatty\"\n");
  for (auto args : {std::vector<std::string>{"--config", path}, std::vector<std::string>{"--config=" + path}}) {
    auto run = run_parley(args);
    CHECK(run.status.code == 2);
    CHECK_MESSAGE(run.err.find("log.level must be") != std::string::npos, run.err);
  }
  auto missing = run_parley({"--config", dir.file("missing.ini")});
  CHECK(missing.status.code == 2);
  CHECK(missing.err == "parley: cannot read the config file " + dir.file("missing.ini")
                         + ": No such file or directory\n");
  CHECK(missing.out == "");
}

TEST_CASE("--section.key VALUE and --section.key=VALUE both override the file") {
  for (auto args : {std::vector<std::string>{"--server.address", "not-an-address"},
                    std::vector<std::string>{"--server.address=not-an-address"}}) {
    server_options opts;
    opts.args = args;
    opts.expect_listening = false;
    server_process server{opts};
    auto status = server.wait_for_exit(10s);
    REQUIRE(status);
    CHECK(status->code == 1);
    CHECK_MESSAGE(server.output().find("server.address: \"not-an-address\"") != std::string::npos,
                  server.output());
  }
}

TEST_CASE("an unknown option or a bad value prints one line naming it and exits 2") {
  struct bad_line {
    std::vector<std::string> args;
    std::string line;
  };
  for (const auto& bad : {
         bad_line{{"--prot", "9000"}, "parley: unknown option --prot (see parley --help)\n"},
         bad_line{{"--server.port", "abc"}, "parley: --server.port: \"abc\" is not a valid port (0-65535)\n"},
         bad_line{{"--port=70000"}, "parley: --server.port: \"70000\" is not a valid port (0-65535)\n"},
         bad_line{{"--port"}, "parley: --server.port needs a value\n"},
         bad_line{{"--config-file=config.ini"}, "parley: unknown option --config-file (see parley --help)\n"},
         bad_line{{"stray"}, "parley: unexpected argument \"stray\" (see parley --help)\n"},
       }) {
    CAPTURE(bad.args.front());
    auto run = run_parley(bad.args);
    CHECK(run.status.exited);
    CHECK(run.status.code == 2);
    CHECK(run.err == bad.line);
    CHECK(count_lines(run.err) == 1);
    CHECK(run.out == "");
  }
}

TEST_CASE("check-config says ok for a good file, and lists every problem of a bad one") {
  scratch_dir dir;
  auto good = run_parley({"check-config", PARLEY_SOURCE_DIR "/config.ini"});
  CHECK(good.status.code == 0);
  CHECK(good.out == PARLEY_SOURCE_DIR "/config.ini: ok\n");
  CHECK(good.err == "");

  auto path = dir.file("bad.ini");
  write_file(path,
             "[server]\naddress=\"nowhere\"\ntrusted_proxies=[\"10.0.0.0/99\"]\n"
             "[presence]\npage_size=0\n"
             "[log]\nlevel=\"loud\"\n"
             "[auth]\nroom_rules=[\"lobby post\"]\n"
             "[tls]\ncertificate=\"" + dir.file("none.pem") + "\"\nkey=\"" + dir.file("none.key") + "\"\n");
  auto bad = run_parley({"check-config", path});
  CHECK(bad.status.code == 1);
  CHECK(bad.out == "");
  CHECK_MESSAGE(count_lines(bad.err) == 6, bad.err);
  for (auto expected : {"server.address", "server.trusted_proxies", "presence.page_size", "log.level",
                        "invalid [auth] room_rules", "[tls]"})
    CHECK_MESSAGE(bad.err.find(path + ": " + expected) != std::string::npos, expected);
  // check-config writes nothing: no database appeared.
  CHECK(run_parley({"check-config", path, "--store.path", dir.file("never.db")}).status.code == 1);
  CHECK_FALSE(std::ifstream{dir.file("never.db")});

  auto missing = run_parley({"check-config", dir.file("missing.ini")});
  CHECK(missing.status.code == 1);
  CHECK(missing.err.find("cannot read the config file") != std::string::npos);

  auto jwt_path = dir.file("jwt.ini");
  write_file(jwt_path, "[auth]\nmode=\"jwt\"\n");
  auto jwt = run_parley({"check-config", jwt_path});
  CHECK(jwt.status.code == 1);
  CHECK(jwt.err.find("[auth] cannot sign users in") != std::string::npos);
}

TEST_CASE("start-up refuses a file for the same problems check-config reports") {
  scratch_dir dir;
  auto path = dir.file("proxies.ini");
  write_file(path, startable_config(dir) + "[server]\ntrusted_proxies=[\"10.0.0.0/99\"]\n");
  auto check = run_parley({"check-config", path});
  REQUIRE(check.status.code == 1);
  auto problem = check.err.substr(path.size() + 2, check.err.find('\n') - path.size() - 2);
  auto start = run_parley({"--config", path});
  CHECK(start.status.code == 1);
  auto printed = start.out + start.err;
  CHECK_MESSAGE(printed.find(problem) != std::string::npos, printed);
  CHECK_FALSE(std::ifstream{dir.file("parley.db")});  // refused before the database was opened
}
