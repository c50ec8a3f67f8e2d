// Fuzzes the config parser: the input is a config.ini file.
//
// Two passes over each input (unless app_config's find_overflowing_duration refuses it, as the
// server does before CAF reads the file):
//   1. CAF's INI reader (caf/detail/parser/read_ini.hpp, a template) instantiated here with CAF's
//      own ini_consumer and Parley's options. libcaf_core comes from Debian without coverage
//      instrumentation, so this copy is what lets libFuzzer see which parser paths an input takes.
//   2. The real path: the input written to a file and handed to app_config::parse_command_line as
//      `--config=FILE`, exactly as `parley --config=FILE` does (CAF parses it, then Parley reads
//      whole numbers for double options and checks the values it cannot work with).
// Checked: nothing crashes or throws, and whenever parse_command_line accepts a file, the values
// it promises to have checked hold (positive presence intervals, pages of at least one name, a
// known synchronous mode, no negative duration, a token bucket that can let a frame through).

#include "fuzz_check.hpp"

#include "config/app_config.hpp"

#include <caf/config_option_set.hpp>
#include <caf/detail/ini_consumer.hpp>
#include <caf/detail/parser/read_ini.hpp>
#include <caf/parser_state.hpp>
#include <caf/settings.hpp>
#include <caf/string_view.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <unistd.h>

namespace {

/// Gives the harness the option set app_config registers (CAF keeps it protected).
struct exposed_config : parley::app_config {
  const caf::config_option_set& options() const { return custom_options_; }
};

/// One scratch file per fuzzing process, rewritten for every input and removed at exit.
struct scratch_file {
  std::string path;

  scratch_file() {
    char pattern[] = "/tmp/parley-fuzz-config-XXXXXX";
    int fd = mkstemp(pattern);
    if (fd < 0)
      fuzz_fail("mkstemp", __FILE__, __LINE__);
    close(fd);
    path = pattern;
  }
  ~scratch_file() { std::remove(path.c_str()); }
};

const std::string& scratch_path() {
  static scratch_file file;
  return file.path;
}

/// Pass 1: CAF's INI reader on the bytes in memory.
void read_ini_in_memory(std::string_view text, const caf::config_option_set& options) {
  caf::settings result;
  caf::detail::ini_consumer consumer{options, result};
  caf::string_parser_state ps{text.begin(), text.end()};
  caf::detail::parser::read_ini(ps, consumer);
  FUZZ_CHECK(ps.i >= text.begin() && ps.i <= text.end());
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  std::string_view text{reinterpret_cast<const char*>(data), size};
  // Durations too long for CAF's nanoseconds overflow inside CAF's parser (undefined behaviour),
  // so Parley refuses such a file before CAF reads it; pass 1 does the same.
  auto overflowing = parley::find_overflowing_duration(text);
  if (!overflowing) {
    exposed_config cfg;
    read_ini_in_memory(text, cfg.options());
  }

  const auto& path = scratch_path();
  {
    std::ofstream out{path, std::ios::binary | std::ios::trunc};
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
  }
  parley::app_config cfg;
  std::string arg0 = "parley";
  std::string arg1 = "--config=" + path;
  char* argv[] = {arg0.data(), arg1.data(), nullptr};
  if (!cfg.parse_command_line(2, argv).empty())
    return 0;
  FUZZ_CHECK(!overflowing);
  const auto& v = cfg.values;
  FUZZ_CHECK(v.presence.diff_interval > caf::timespan{0});
  FUZZ_CHECK(v.presence.count_interval > caf::timespan{0});
  FUZZ_CHECK(v.presence.page_size >= 1 && v.presence.user_limit >= 1);
  FUZZ_CHECK(v.store.synchronous == "full" || v.store.synchronous == "normal");
  // No duration below zero (listed here independently of app_config.cpp's own list).
  for (auto d : {v.server.shutdown_grace, v.connection.idle_timeout, v.connection.handshake_timeout,
                 v.connection.write_timeout, v.connection.abuse_window, v.rooms.idle_retire,
                 v.rooms.typing_interval, v.presence.grace, v.supervisor.backoff_min,
                 v.supervisor.backoff_max, v.supervisor.backoff_reset, v.supervisor.restart_window,
                 v.store.commit_window, v.store.busy_timeout, v.store.retain_max_age,
                 v.store.retention_interval})
    FUZZ_CHECK(d >= caf::timespan{0});
  FUZZ_CHECK(v.connection.rate_per_second > 0 && v.connection.rate_burst >= 1);
  FUZZ_CHECK(v.supervisor.backoff_factor >= 1);
  return 0;
}
