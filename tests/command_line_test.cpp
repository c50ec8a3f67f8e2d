// The command line (config/command_line.hpp): the forms people type, brought into CAF's one form;
// one clear line for anything wrong; --help generated from the option table, matching config.ini.

#include "config/app_config.hpp"
#include "config/command_line.hpp"
#include "config/startup_check.hpp"

#include <doctest/doctest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

using namespace parley;

namespace {

command_line read(std::vector<std::string> args) {
  app_config cfg;
  return read_command_line(args, cfg.options());
}

using strings = std::vector<std::string>;

} // namespace

TEST_CASE("--port, -p and --section.key take their value after a space or an equals sign") {
  for (auto args : {strings{"--port", "9000"}, strings{"--port=9000"}, strings{"-p", "9000"},
                    strings{"-p9000"}, strings{"--server.port", "9000"}, strings{"--server.port=9000"}}) {
    CAPTURE(args.front());
    auto line = read(args);
    CHECK(line.error == "");
    CHECK(line.what == command::serve);
    CHECK(line.options == strings{"--server.port=9000"});
  }
  auto line = read({"--server.address", "::", "--presence.grace=250ms", "--auth.room_rules",
                    "[\"lobby post=everyone\"]"});
  CHECK(line.error == "");
  CHECK(line.options == strings{"--server.address=::", "--presence.grace=250ms",
                                "--auth.room_rules=[\"lobby post=everyone\"]"});
}

TEST_CASE("--config FILE and --config=FILE both name the config file") {
  CHECK(read({"--config", "a.ini"}).options == strings{"--config-file=a.ini"});
  CHECK(read({"--config=a.ini"}).options == strings{"--config-file=a.ini"});
  CHECK(read({"--config"}).error == "--config needs a value");
  CHECK(read({"--config="}).error == "--config needs a FILE");
}

TEST_CASE("a flag alone, or followed by true, switches it on") {
  CHECK(read({"--testing.fault_injection"}).options == strings{"--testing.fault_injection"});
  CHECK(read({"--testing.fault_injection", "true"}).options == strings{"--testing.fault_injection"});
  CHECK(read({"--testing.fault_injection=true"}).options == strings{"--testing.fault_injection"});
  CHECK(read({"--testing.fault_injection=maybe"}).error != "");
}

TEST_CASE("an unknown option or a stray argument is one line naming it") {
  CHECK(read({"--prot", "9000"}).error == "unknown option --prot (see parley --help)");
  CHECK(read({"--server.prot=1"}).error == "unknown option --server.prot (see parley --help)");
  // CAF's own options are not Parley's: the config file is named with --config only.
  CHECK(read({"--config-file=x.ini"}).error == "unknown option --config-file (see parley --help)");
  CHECK(read({"--dump-config"}).error == "unknown option --dump-config (see parley --help)");
  CHECK(read({"--logger.verbosity=debug"}).error
        == "unknown option --logger.verbosity (see parley --help)");
  CHECK(read({"-x"}).error == "unknown option -x (see parley --help)");
  CHECK(read({"serve"}).error == "unexpected argument \"serve\" (see parley --help)");
}

TEST_CASE("a value of the wrong type is one line naming the option, the value and what it should be") {
  CHECK(read({"--server.port", "abc"}).error
        == "--server.port: \"abc\" is not a valid port (0-65535)");
  CHECK(read({"--port=abc"}).error == "--server.port: \"abc\" is not a valid port (0-65535)");
  CHECK(read({"--connection.idle_timeout=soon"}).error.find("is not a valid duration") != std::string::npos);
  CHECK(read({"--rooms.capacity=-3"}).error.find("--rooms.capacity: \"-3\" is not") == 0);
  CHECK(read({"--connection.rate_burst=lots"}).error
        == "--connection.rate_burst: \"lots\" is not a valid number");
  CHECK(read({"--presence.grace=99999999999h"}).error == "--presence.grace: duration 99999999999h is too long");
  CHECK(read({"--port"}).error == "--server.port needs a value");
}

TEST_CASE("--help and --version win; check-config takes its FILE and options") {
  CHECK(read({"--prot", "--help"}).what == command::help);
  CHECK(read({"-h"}).what == command::help);
  CHECK(read({"--version"}).what == command::version);
  auto check = read({"check-config", "x.ini", "--port", "9001"});
  CHECK(check.error == "");
  CHECK(check.what == command::check_config);
  CHECK(check.check_file == "x.ini");
  CHECK(check.options == strings{"--config-file=x.ini", "--server.port=9001"});
  CHECK(read({"check-config"}).error != "");
  CHECK(read({"check-config", "--port=1"}).error != "");
}

TEST_CASE("--help names every setting config.ini documents, with its section, default and description") {
  app_config defaults;
  auto help = help_text(defaults);
  CHECK(help.find("caf-application.ini") == std::string::npos);
  CHECK(help.find("--config-file") == std::string::npos);
  for (auto general : {"--config FILE", "--port N", "--version", "--help", "check-config FILE",
                       "parley token"})
    CHECK_MESSAGE(help.find(general) != std::string::npos, general);
  CHECK(help.find("[server]\n  server.address = \"127.0.0.1\"\n      address to listen on\n") != std::string::npos);
  CHECK(help.find("  server.port = 8080\n") != std::string::npos);
  CHECK(help.find("  server.allowed_hosts = [\"localhost\", \"127.0.0.1\", \"[::1]\"]\n") != std::string::npos);
  CHECK(help.find("  presence.diff_interval = 100ms\n") != std::string::npos);
  CHECK(help.find("  rooms.idle_retire = 10min\n") != std::string::npos);
  CHECK(help.find("  connection.rate_burst = 40.0\n") != std::string::npos);
  CHECK(help.find("  log.level = \"info\"\n") != std::string::npos);
  CHECK(help.find("  scheduler.policy = 'sharing'\n") != std::string::npos);
  CHECK(help.find("  scheduler.max-threads = 1\n") != std::string::npos);

  // Every key config.ini sets appears under its section, with the value config.ini gives it
  // (config_test checks that config.ini states the defaults).
  std::ifstream in{PARLEY_SOURCE_DIR "/config.ini"};
  REQUIRE(in);
  std::string line;
  std::string section;
  int keys = 0;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == ';')
      continue;
    if (line[0] == '[') {
      section = line.substr(1, line.find(']') - 1);
      CHECK_MESSAGE(help.find("\n[" + section + "]\n") != std::string::npos, section);
      continue;
    }
    auto eq = line.find('=');
    REQUIRE(eq != std::string::npos);
    auto key = section + "." + line.substr(0, eq);
    auto value = line.substr(eq + 1);
    CHECK_MESSAGE(help.find("  " + key + " = ") != std::string::npos, key);
    ++keys;
  }
  CHECK(keys > 70);  // the file was read (75 keys when this was written)
}

TEST_CASE("--version names the version CMake's project() states") {
  CHECK(version_text() == std::string{"parley "} + PARLEY_VERSION);
}

TEST_CASE("start-up checks report every problem, one line each naming the setting") {
  settings good;
  CHECK(check_startup(good).ok());

  settings bad;
  bad.server.address = "nowhere";
  bad.server.trusted_proxies = {"10.0.0.0/99"};
  bad.log.level = "loud";
  bad.log.format = "xml";
  bad.auth.room_rules = {"lobby post"};
  bad.tls.certificate = "/nonexistent/cert.pem";
  bad.tls.key = "/nonexistent/key.pem";
  auto result = check_startup(bad);
  REQUIRE(result.problems.size() == 6);
  auto has = [&](const std::string& text) {
    for (const auto& p : result.problems)
      if (p.find(text) != std::string::npos)
        return true;
    return false;
  };
  CHECK(has("server.address: \"nowhere\""));
  CHECK(has("server.trusted_proxies: \"10.0.0.0/99\""));
  CHECK(has("log.level must be"));
  CHECK(has("log.format must be"));
  CHECK(has("invalid [auth] room_rules"));
  CHECK(has("[tls] cannot serve TLS"));

  settings jwt;
  jwt.auth.mode = "jwt";
  auto no_secret = check_startup(jwt);
  REQUIRE(no_secret.problems.size() == 1);
  CHECK(no_secret.problems.front().find("[auth] cannot sign users in") == 0);
}
