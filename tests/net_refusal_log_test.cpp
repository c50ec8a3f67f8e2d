// The refusal log's summaries, on an injected clock.

#include "net/refusal_log.hpp"

#include <doctest/doctest.h>

using namespace parley::net;
using namespace std::chrono_literals;

TEST_CASE("refusals are summed up by reason, at most once per interval") {
  refusal_log::clock::time_point now{};
  refusal_log log{"handshakes", 10s, [&] { return now; }};
  for (int i = 0; i < 900; ++i)
    log.count("rate_limited");
  for (int i = 0; i < 200; ++i)
    log.count("origin");
  now += 5s;
  CHECK_FALSE(log.take_summary());  // the interval has not passed
  now += 5s;
  auto line = log.take_summary();
  REQUIRE(line);
  CHECK(*line == "refused 1100 handshakes in the last 10 s: origin 200, rate_limited 900");
  // Counted afresh for the next interval; nothing counted, nothing said.
  now += 10s;
  CHECK_FALSE(log.take_summary());
  log.count("origin");
  now += 10s;
  CHECK(log.take_summary() == std::string{"refused 1 handshakes in the last 10 s: origin 1"});
}

TEST_CASE("a summary can be taken early at shutdown") {
  refusal_log::clock::time_point now{};
  refusal_log log{"frames", 10s, [&] { return now; }};
  CHECK_FALSE(log.take_summary_now());
  log.count("bad_utf8");
  now += 3s;
  CHECK(log.take_summary_now() == std::string{"refused 1 frames in the last 3 s: bad_utf8 1"});
  CHECK_FALSE(log.take_summary_now());
}
