// Log lines: the JSON line stays valid whatever the message holds, and the access line never
// carries a query string (where ?name= or a token would be) or breaks onto a second line.

#include "config/app_config.hpp"
#include "logging/logging.hpp"
#include "net/access_log.hpp"
#include "protocol/log_line.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <string>

using namespace parley;

TEST_CASE("a JSON log line is one valid object with ts, level, logger and msg, whatever msg holds") {
  std::string tricky = "say \"hi\"\nsecond line\tand a \\ backslash \x01 and bad UTF-8 \xff\xfe end";
  auto line = protocol::encode_log_line({"2026-12-01T08:00:00.000Z", "info", "parley", tricky});
  CHECK(line.find('\n') == std::string::npos);
  auto parsed = nlohmann::json::parse(line);
  CHECK(parsed["ts"] == "2026-12-01T08:00:00.000Z");
  CHECK(parsed["level"] == "info");
  CHECK(parsed["logger"] == "parley");
  auto msg = parsed["msg"].get<std::string>();
  CHECK(msg.find("say \"hi\"\nsecond line\tand a \\ backslash \x01 and bad UTF-8 ") == 0);
  CHECK(msg.find("\xef\xbf\xbd") != std::string::npos);  // U+FFFD for the bytes that are not UTF-8
}

TEST_CASE("the access line leaves out the query and encodes what would break the line") {
  using namespace std::chrono_literals;
  auto line = net::format_access_line(
    {"203.0.113.7", "GET", "/ws?name=secret&token=abc", 101, 129, 2500us});
  CHECK(line == "203.0.113.7 GET /ws 101 129B 2.5ms");
  auto odd = net::format_access_line({"::1", "GET", "/a b\"c\x1b\xc3\xa9#frag", 404, 10, 0us});
  CHECK(odd == "::1 GET /a%20b%22c%1B%C3%A9 404 10B 0.0ms");
  auto refused = net::format_access_line({"127.0.0.1", "-", "-", 400, 0, 0us});
  CHECK(refused == "127.0.0.1 - - 400 0B 0.0ms");
  auto long_path = net::format_access_line({"h", "GET", "/" + std::string(1000, 'a'), 404, 1, 0us});
  CHECK(long_path.size() < 300);
  CHECK(long_path.find("...") != std::string::npos);
}

TEST_CASE("[log] level and format accept the documented names and refuse others") {
  for (auto level : {"trace", "debug", "info", "warn", "error"}) {
    CAPTURE(level);
    CHECK(logging::level_from_name(level));
    settings s;
    s.log.level = level;
    CHECK(value_problems(s).empty());
  }
  CHECK_FALSE(logging::level_from_name("warning"));
  settings s;
  s.log.level = "verbose";
  s.log.format = "yaml";
  CHECK(value_problems(s).size() == 2);
  s.log.format = "json";
  CHECK(value_problems(s).size() == 1);
}
