// Pure helpers of the actor layer: backoff, restart intensity, token bucket.

#include "actors/backoff.hpp"
#include "actors/token_bucket.hpp"

#include <doctest/doctest.h>

#include <random>
#include <set>

using namespace parley;
using namespace std::chrono_literals;

TEST_CASE("backoff delays grow by the factor up to the maximum, with jitter in the upper half") {
  backoff b{caf::timespan{100ms}, caf::timespan{1s}, 2.0};
  std::mt19937_64 rng{42};
  caf::timespan expected[] = {100ms, 200ms, 400ms, 800ms, 1s, 1s};
  for (auto ceiling : expected) {
    auto d = b.next(rng);
    CHECK(d <= ceiling);
    CHECK(d >= ceiling / 2);
  }
  CHECK(b.attempts() == 6);
}

TEST_CASE("backoff jitter spreads delays rather than repeating one value") {
  std::mt19937_64 rng{7};
  std::set<caf::timespan::rep> seen;
  for (int i = 0; i < 20; ++i) {
    backoff b{caf::timespan{1s}, caf::timespan{10s}, 2.0};
    seen.insert(b.next(rng).count());
  }
  CHECK(seen.size() > 10);
}

TEST_CASE("backoff starts over after a reset") {
  backoff b{caf::timespan{100ms}, caf::timespan{10s}, 3.0};
  std::mt19937_64 rng{1};
  b.next(rng);
  b.next(rng);
  b.reset();
  CHECK(b.next(rng) <= caf::timespan{100ms});
}

TEST_CASE("restart intensity allows max restarts within the window and forgets old ones") {
  restart_intensity limit{3, caf::timespan{10s}};
  std::chrono::steady_clock::time_point t{};
  CHECK(limit.allow_restart(t));
  CHECK(limit.allow_restart(t + 1s));
  CHECK(limit.allow_restart(t + 2s));
  CHECK_FALSE(limit.allow_restart(t + 3s));
  CHECK(limit.allow_restart(t + 12s));  // the first two fell out of the window
}

TEST_CASE("the token bucket allows a burst, then the refill rate") {
  std::chrono::steady_clock::time_point t{};
  token_bucket bucket{10.0, 3.0, t};
  CHECK(bucket.try_take(t));
  CHECK(bucket.try_take(t));
  CHECK(bucket.try_take(t));
  CHECK_FALSE(bucket.try_take(t));
  CHECK(bucket.try_take(t + 100ms));
  CHECK_FALSE(bucket.try_take(t + 100ms));
  // A long pause refills only up to the burst.
  auto later = t + 10s;
  int taken = 0;
  while (bucket.try_take(later))
    ++taken;
  CHECK(taken == 3);
}
