// The grace queue as a pure policy: time is an argument, no actors.

#include "actors/grace_queue.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace parley;
using namespace std::chrono_literals;
using users = std::vector<std::string>;

namespace {

const grace_queue::clock::time_point t0{};

} // namespace

TEST_CASE("a grace period ends exactly grace after it started, not before") {
  grace_queue q{5s};
  q.start("bob", t0);
  CHECK(q.contains("bob"));
  CHECK(q.next_deadline() == t0 + 5s);
  CHECK(q.take_expired(t0 + 5s - 1ms).empty());
  CHECK(q.contains("bob"));
  CHECK(q.take_expired(t0 + 5s) == users{"bob"});
  CHECK_FALSE(q.contains("bob"));
  CHECK(q.empty());
  CHECK_FALSE(q.next_deadline().has_value());
}

TEST_CASE("grace periods end in the order they started, each user once") {
  grace_queue q{5s};
  q.start("carol", t0);
  q.start("alice", t0 + 1s);
  q.start("bob", t0 + 2s);
  CHECK(q.size() == 3);
  CHECK(q.take_expired(t0 + 6s) == users{"carol", "alice"});
  CHECK(q.next_deadline() == t0 + 7s);
  CHECK(q.take_expired(t0 + 60s) == users{"bob"});
  CHECK(q.take_expired(t0 + 120s).empty());
}

TEST_CASE("a cancelled user never expires and the next deadline moves to the next live user") {
  grace_queue q{5s};
  q.start("alice", t0);
  q.start("bob", t0 + 1s);
  CHECK(q.cancel("alice"));
  CHECK_FALSE(q.contains("alice"));
  CHECK(q.next_deadline() == t0 + 6s);
  CHECK(q.take_expired(t0 + 10s) == users{"bob"});
  CHECK_FALSE(q.cancel("alice"));  // nothing runs for her any more
  CHECK_FALSE(q.cancel("nobody"));
}

TEST_CASE("a cancel in the middle of the queue leaves the others' order intact") {
  grace_queue q{5s};
  q.start("a", t0);
  q.start("b", t0 + 1s);
  q.start("c", t0 + 2s);
  q.cancel("b");
  CHECK(q.next_deadline() == t0 + 5s);
  CHECK(q.take_expired(t0 + 10s) == users{"a", "c"});
}

TEST_CASE("starting a running user's grace again restarts it from the new time") {
  grace_queue q{5s};
  q.start("alice", t0);
  q.start("bob", t0 + 1s);
  q.start("alice", t0 + 3s);  // came back and dropped again
  CHECK(q.size() == 2);
  CHECK(q.next_deadline() == t0 + 6s);
  CHECK(q.take_expired(t0 + 6s) == users{"bob"});
  CHECK(q.take_expired(t0 + 7s).empty());
  CHECK(q.take_expired(t0 + 8s) == users{"alice"});
}

TEST_CASE("a user who comes back and drops again within the grace expires once, after the latest drop") {
  grace_queue q{5s};
  for (int i = 0; i < 100; ++i) {
    q.start("flaky", t0 + std::chrono::milliseconds(i * 10));
    q.cancel("flaky");
  }
  q.start("flaky", t0 + 1s);
  CHECK(q.size() == 1);
  CHECK(q.next_deadline() == t0 + 6s);
  CHECK(q.take_expired(t0 + 5500ms).empty());
  CHECK(q.take_expired(t0 + 6s) == users{"flaky"});
  CHECK(q.empty());
}
