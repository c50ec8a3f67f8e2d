// The pacing of a drain: closes spread over the period, reconnect hints within it.

#include "net/drain_schedule.hpp"

#include <doctest/doctest.h>

#include <chrono>

using namespace parley::net;
using namespace std::chrono_literals;

TEST_CASE("a drain closes its connections evenly over the period") {
  drain_schedule drain{1000, 10s};
  CHECK(drain.due(0s) == 0);
  CHECK(drain.due(1s) == 100);
  CHECK(drain.due(5s) == 500);
  CHECK(drain.due(9999ms) == 999);
  CHECK(drain.due(10s) == 1000);
  CHECK(drain.due(1h) == 1000);
  CHECK_FALSE(drain.over(9s));
  CHECK(drain.over(10s));
}

TEST_CASE("a drain with no period or no connections is over at once") {
  drain_schedule instant{500, 0s};
  CHECK(instant.over(0s));
  CHECK(instant.due(0s) == 500);
  drain_schedule empty{0, 10s};
  CHECK(empty.over(0s));
  CHECK(empty.due(0s) == 0);
}

TEST_CASE("a drain checks often enough for its pace, within bounds") {
  CHECK(drain_schedule{1000, 10s}.step() == 10ms);
  CHECK(drain_schedule{10000, 10s}.step() == 5ms);  // not more often than this
  CHECK(drain_schedule{3, 10s}.step() == 100ms);    // nor less often
}

TEST_CASE("reconnect hints spread over the period") {
  drain_schedule drain{10, 10s};
  CHECK(drain.reconnect_delay(0.0) == 0ms);
  CHECK(drain.reconnect_delay(0.25) == 2500ms);
  CHECK(drain.reconnect_delay(0.999) == 9990ms);
  CHECK(drain.reconnect_delay(7.0) == 10s);  // out-of-range randomness is clamped
}

TEST_CASE("the drain close reason carries the hint in the form clients parse") {
  CHECK(drain_close_reason(1234ms) == "server draining; reconnect_after_ms=1234");
  CHECK(drain_close_reason(std::chrono::milliseconds{120000}).size() <= 123);
}
