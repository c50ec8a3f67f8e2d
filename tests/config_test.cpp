// config.ini must parse with CAF's config system and state exactly the compiled-in defaults.

#include "config/app_config.hpp"

#include <doctest/doctest.h>

#include <cstdio>
#include <fstream>
#include <optional>
#include <string>
#include <unistd.h>
#include <vector>

using namespace parley;

namespace {

/// The first problem parse_command_line found, or nullopt when it accepted the arguments.
std::optional<std::string> parse(app_config& cfg, std::vector<std::string> args) {
  std::vector<char*> argv{const_cast<char*>("parley")};
  for (auto& a : args)
    argv.push_back(a.data());
  auto problems = cfg.parse_command_line(static_cast<int>(argv.size()), argv.data());
  if (problems.empty())
    return std::nullopt;
  return problems.front();
}

} // namespace

TEST_CASE("the scheduler defaults to one sharing worker, and config.ini says the same") {
  app_config built_in;
  CHECK(caf::get_or(built_in, "scheduler.policy", caf::atom("none")) == caf::atom("sharing"));
  CHECK(caf::get_or(built_in, "scheduler.max-threads", std::size_t{0}) == 1);
  app_config from_file;
  REQUIRE_FALSE(parse(from_file, {"--config=" PARLEY_SOURCE_DIR "/config.ini"}));
  CHECK(caf::get_or(from_file, "scheduler.policy", caf::atom("none")) == caf::atom("sharing"));
  CHECK(caf::get_or(from_file, "scheduler.max-threads", std::size_t{0}) == 1);
  app_config overridden;
  REQUIRE_FALSE(parse(overridden, {"--config=" PARLEY_SOURCE_DIR "/config.ini", "--scheduler.policy=stealing",
                                   "--scheduler.max-threads=2"}));
  CHECK(caf::get_or(overridden, "scheduler.policy", caf::atom("none")) == caf::atom("stealing"));
  CHECK(caf::get_or(overridden, "scheduler.max-threads", std::size_t{0}) == 2);
}

TEST_CASE("config.ini parses and documents exactly the built-in defaults") {
  app_config cfg;
  REQUIRE_FALSE(parse(cfg, {"--config=" PARLEY_SOURCE_DIR "/config.ini"}));
  const settings defaults;
  const auto& v = cfg.values;
  CHECK(v.server.address == defaults.server.address);
  CHECK(v.server.port == defaults.server.port);
  CHECK(v.server.web_root == defaults.server.web_root);
  CHECK(v.server.io_threads == defaults.server.io_threads);
  CHECK(v.server.allowed_origins == defaults.server.allowed_origins);
  CHECK(v.server.shutdown_grace == defaults.server.shutdown_grace);
  CHECK(v.connection.max_frame_bytes == defaults.connection.max_frame_bytes);
  CHECK(v.connection.queue_soft_bytes == defaults.connection.queue_soft_bytes);
  CHECK(v.connection.queue_hard_bytes == defaults.connection.queue_hard_bytes);
  CHECK(v.connection.idle_timeout == defaults.connection.idle_timeout);
  CHECK(v.connection.handshake_timeout == defaults.connection.handshake_timeout);
  CHECK(v.connection.write_timeout == defaults.connection.write_timeout);
  CHECK(v.connection.rate_per_second == defaults.connection.rate_per_second);
  CHECK(v.connection.rate_burst == defaults.connection.rate_burst);
  CHECK(v.connection.abuse_limit == defaults.connection.abuse_limit);
  CHECK(v.connection.abuse_window == defaults.connection.abuse_window);
  CHECK(v.connection.max_rooms == defaults.connection.max_rooms);
  CHECK(v.protocol.max_text_bytes == defaults.protocol.max_text_bytes);
  CHECK(v.protocol.max_json_depth == defaults.protocol.max_json_depth);
  CHECK(v.protocol.max_history_page == defaults.protocol.max_history_page);
  CHECK(v.rooms.capacity == defaults.rooms.capacity);
  CHECK(v.rooms.history_size == defaults.rooms.history_size);
  CHECK(v.rooms.history_on_join == defaults.rooms.history_on_join);
  CHECK(v.rooms.max_replay == defaults.rooms.max_replay);
  CHECK(v.rooms.idle_retire == defaults.rooms.idle_retire);
  CHECK(v.rooms.typing_interval == defaults.rooms.typing_interval);
  CHECK(v.presence.grace == defaults.presence.grace);
  CHECK(v.presence.diff_interval == defaults.presence.diff_interval);
  CHECK(v.presence.count_interval == defaults.presence.count_interval);
  CHECK(v.presence.page_size == defaults.presence.page_size);
  CHECK(v.presence.user_limit == defaults.presence.user_limit);
  CHECK(v.supervisor.backoff_min == defaults.supervisor.backoff_min);
  CHECK(v.supervisor.backoff_max == defaults.supervisor.backoff_max);
  CHECK(v.supervisor.backoff_factor == defaults.supervisor.backoff_factor);
  CHECK(v.supervisor.backoff_reset == defaults.supervisor.backoff_reset);
  CHECK(v.supervisor.max_restarts == defaults.supervisor.max_restarts);
  CHECK(v.supervisor.restart_window == defaults.supervisor.restart_window);
  CHECK(v.testing.fault_injection == defaults.testing.fault_injection);
  CHECK(v.log.level == defaults.log.level);
  CHECK(v.log.format == defaults.log.format);
  CHECK(v.admin.address == defaults.admin.address);
  CHECK(v.admin.port == defaults.admin.port);
  CHECK(v.admin.token == defaults.admin.token);
  CHECK(v.admin.token_file == defaults.admin.token_file);
  CHECK(v.admin.web_root == defaults.admin.web_root);
  CHECK(v.cluster.mode == defaults.cluster.mode);
  CHECK(v.cluster.redis == defaults.cluster.redis);
  CHECK(v.cluster.node_id == defaults.cluster.node_id);
  CHECK(v.cluster.key_prefix == defaults.cluster.key_prefix);
  CHECK(v.cluster.durability == defaults.cluster.durability);
  CHECK(v.cluster.presence_ttl == defaults.cluster.presence_ttl);
  CHECK(v.cluster.timeout == defaults.cluster.timeout);
  CHECK(v.cluster.stream_max_length == defaults.cluster.stream_max_length);
  CHECK(v.cluster.stream_max_age == defaults.cluster.stream_max_age);
}

TEST_CASE("command-line options override the config file") {
  app_config cfg;
  REQUIRE_FALSE(parse(cfg, {"--config", PARLEY_SOURCE_DIR "/config.ini", "--server.port=9001",
                            "--presence.grace=250ms", "--rooms.capacity=7"}));
  CHECK(cfg.values.server.port == 9001);
  CHECK(cfg.values.presence.grace == std::chrono::milliseconds(250));
  CHECK(cfg.values.rooms.capacity == 7);
}

TEST_CASE("presence settings come from the command line, and a zero interval or page is refused") {
  app_config cfg;
  REQUIRE_FALSE(parse(cfg, {"--config=" PARLEY_SOURCE_DIR "/config.ini", "--presence.diff_interval=250ms",
                            "--presence.page_size=7", "--presence.user_limit=12"}));
  CHECK(cfg.values.presence.diff_interval == std::chrono::milliseconds(250));
  CHECK(cfg.values.presence.page_size == 7);
  CHECK(cfg.values.presence.user_limit == 12);
  for (auto bad : {"--presence.diff_interval=0s", "--presence.count_interval=0s", "--presence.page_size=0", "--presence.user_limit=0"}) {
    CAPTURE(bad);
    app_config refused;
    CHECK(parse(refused, {"--config=" PARLEY_SOURCE_DIR "/config.ini", bad}));
  }
}

TEST_CASE("--port is short for --server.port") {
  app_config cfg;
  REQUIRE_FALSE(parse(cfg, {"--config=" PARLEY_SOURCE_DIR "/config.ini", "--port=9002"}));
  CHECK(cfg.values.server.port == 9002);
}

TEST_CASE("an unknown option is an error, not ignored") {
  app_config cfg;
  CHECK(parse(cfg, {"--config=" PARLEY_SOURCE_DIR "/config.ini", "--server.prot=1"}));
}

TEST_CASE("values in the config file replace the defaults") {
  auto path = std::string{"/tmp/parley_config_test_"} + std::to_string(::getpid()) + ".ini";
  {
    std::ofstream out{path};
    out << "[server]\nport=9100\nallowed_origins=[\"https://chat.example.com\"]\n"
        << "[presence]\ngrace=750ms\n[rooms]\nidle_retire=2min\n"
        << "[connection]\nrate_per_second=1\nrate_burst=3\n[supervisor]\nbackoff_factor=3\n";
  }
  app_config cfg;
  auto err = parse(cfg, {"--config=" + path});
  std::remove(path.c_str());
  REQUIRE_FALSE(err);
  CHECK(cfg.values.server.port == 9100);
  CHECK(cfg.values.server.allowed_origins == std::vector<std::string>{"https://chat.example.com"});
  CHECK(cfg.values.presence.grace == std::chrono::milliseconds(750));
  CHECK(cfg.values.rooms.idle_retire == std::chrono::minutes(2));
  // Whole numbers for floating-point settings (CAF 0.17 alone would drop them silently).
  CHECK(cfg.values.connection.rate_per_second == 1.0);
  CHECK(cfg.values.connection.rate_burst == 3.0);
  CHECK(cfg.values.supervisor.backoff_factor == 3.0);
}

// Found while fuzzing the config parser: CAF accepts negative durations and wraps one too large
// for 64-bit nanoseconds into a negative value, and takes any double for the token bucket.
TEST_CASE("negative or overflowing durations and unusable rates are refused") {
  auto path = std::string{"/tmp/parley_config_test_bad_"} + std::to_string(::getpid()) + ".ini";
  for (auto bad : {"[presence]\ngrace=-5s\n", "[rooms]\nidle_retire=99999999999h\n",
                   "[connection]\nidle_timeout=-1ms\n", "[store]\nretain_max_age=-1s\n",
                   "[connection]\nrate_burst=-3\n", "[connection]\nrate_per_second=0\n",
                   "[connection]\nrate_burst=0.5\n", "[supervisor]\nbackoff_factor=0.5\n"}) {
    CAPTURE(bad);
    {
      std::ofstream out{path};
      out << bad;
    }
    app_config cfg;
    CHECK(parse(cfg, {"--config=" + path}));
  }
  std::remove(path.c_str());
  for (auto bad : {"--connection.write_timeout=-10s", "--connection.rate_per_second=-1.0"}) {
    CAPTURE(bad);
    app_config refused;
    CHECK(parse(refused, {"--config=" PARLEY_SOURCE_DIR "/config.ini", bad}));
  }
}

// Found by fuzz_config (UBSan): CAF 0.17 converts "99999999999h" to nanoseconds with a signed
// overflow. Such durations are refused before CAF parses them, in the file and on the command line.
TEST_CASE("durations too long for 64-bit nanoseconds are refused before CAF parses them") {
  CHECK(find_overflowing_duration("[rooms]\nidle_retire=99999999999h\n") == "99999999999h");
  CHECK(find_overflowing_duration("a=5124096h") == "5124096h");  // would wrap to about 25 min
  CHECK(find_overflowing_duration("a=-9999999999999min") == "9999999999999min");
  CHECK(find_overflowing_duration("a=0x7fffffffffffh") == "0x7fffffffffffh");
  CHECK(find_overflowing_duration("a=99999999999999999999999ns") == "99999999999999999999999ns");
  CHECK(find_overflowing_duration("a=[1,99999999999se]") == "99999999999se");  // CAF reads 99999999999s
  CHECK_FALSE(find_overflowing_duration("a=2562047h\nb=9223372036854775807ns\nc=10min"));
  CHECK_FALSE(find_overflowing_duration("a=\"99999999999h\" ; 99999999999h\nb='99999999999h'"));
  CHECK_FALSE(find_overflowing_duration("a=99999999999\nb=1.5e99s\nc=x99999999999h"));
  CHECK_FALSE(find_overflowing_duration(""));

  auto path = std::string{"/tmp/parley_config_test_overflow_"} + std::to_string(::getpid()) + ".ini";
  {
    std::ofstream out{path};
    out << "[rooms]\nidle_retire=99999999999h\n";
  }
  app_config from_file;
  auto err = parse(from_file, {"--config=" + path});
  std::remove(path.c_str());
  CHECK(err);
  app_config from_argument;
  CHECK(parse(from_argument, {"--config=" PARLEY_SOURCE_DIR "/config.ini", "--presence.grace=5124096h"}));
}
