// End-to-end: rejoining with "since" recovers what a client missed while it was away.

#include "harness.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace parley::e2e;

namespace {

/// What alice knew when she went away.
struct last_seen {
  uint64_t epoch = 0;
  uint64_t id = 0;
};

/// Alice joins, sees one message from bob, and disconnects.
last_seen alice_sees_one_message_and_leaves(uint16_t port, ws_client& bob) {
  ws_client alice;
  alice.connect(port, "alice");
  auto joined = alice.join("general");
  REQUIRE(joined["epoch"].is_number_unsigned());
  auto sent = bob.say("general", "before you left", "b-0");
  auto seen = alice.next_of_type("message");
  CHECK(seen["id"] == sent["id"]);
  alice.close();
  return {joined["epoch"].get<uint64_t>(), seen["id"].get<uint64_t>()};
}

} // namespace

TEST_CASE("rejoining with since and the current epoch recovers exactly the missed messages in order") {
  server_process server;
  ws_client bob;
  bob.connect(server.port(), "bob");
  bob.join("general");
  auto seen = alice_sees_one_message_and_leaves(server.port(), bob);

  std::vector<json> missed;
  for (int i = 1; i <= 3; ++i)
    missed.push_back(bob.say("general", "missed " + std::to_string(i), "b-" + std::to_string(i)));

  ws_client alice;
  alice.connect(server.port(), "alice");
  auto joined = alice.join("general", {{"since", seen.id}, {"epoch", seen.epoch}});
  CHECK(joined.value("recovered", false) == true);
  CHECK(joined["epoch"] == seen.epoch);
  CHECK(joined["last_id"] == missed.back()["id"]);
  const auto& history = joined["history"];
  REQUIRE_MESSAGE(history.size() == missed.size(), "history: " << history.dump());
  for (std::size_t i = 0; i < missed.size(); ++i) {
    CAPTURE(i);
    CHECK(history[i]["id"] == missed[i]["id"]);
    CHECK(history[i]["text"] == missed[i]["text"]);
    CHECK(history[i]["from"] == "bob");
    CHECK(history[i]["cid"] == missed[i]["cid"]);
  }
}

TEST_CASE("rejoining with a stale epoch reports recovered false") {
  server_process server;
  ws_client bob;
  bob.connect(server.port(), "bob");
  bob.join("general");
  auto seen = alice_sees_one_message_and_leaves(server.port(), bob);
  bob.say("general", "missed", "b-1");

  ws_client alice;
  alice.connect(server.port(), "alice");
  auto joined = alice.join("general", {{"since", seen.id}, {"epoch", seen.epoch + 1}});
  REQUIRE_MESSAGE(joined.contains("recovered"), "joined without 'recovered': " << joined.dump());
  CHECK(joined["recovered"] == false);
  CHECK(joined["epoch"] == seen.epoch);
}
