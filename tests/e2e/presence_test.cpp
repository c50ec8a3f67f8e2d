// End-to-end: presence that scales with the room, against the real server: coalesced diffs, member
// pages with who, counts mode past user_limit, and the server-wide status command.

#include "harness.hpp"

#include <doctest/doctest.h>

#include <memory>
#include <set>
#include <string>
#include <vector>

using namespace parley::e2e;

namespace {

bool is_type(const json& f, const std::string& type) {
  return f.value("type", "") == type;
}

/// Connects `name` and joins `room`; returns the client and its "joined".
std::pair<std::unique_ptr<ws_client>, json> member(uint16_t port, const std::string& name,
                                                   const std::string& room) {
  auto client = std::make_unique<ws_client>();
  client->connect(port, name);
  auto joined = client->join(room);
  return {std::move(client), std::move(joined)};
}

/// Asks `who` and returns the reply (errors fail the test).
json who(ws_client& client, const std::string& room, json extra = json::object()) {
  json cmd = std::move(extra);
  cmd["type"] = "who";
  cmd["room"] = room;
  cmd["ref"] = "who";
  client.send_json(cmd);
  auto reply = client.next_matching(
    [](const json& f) { return is_type(f, "who") || is_type(f, "error"); }, "who reply");
  REQUIRE_MESSAGE(is_type(reply, "who"), "who failed: " << reply.dump());
  return reply;
}

json status(ws_client& client, const std::vector<std::string>& users) {
  client.send_json({{"type", "status"}, {"users", users}, {"ref", "st"}});
  auto reply = client.next_matching(
    [](const json& f) { return is_type(f, "status") || is_type(f, "error"); }, "status reply");
  REQUIRE_MESSAGE(is_type(reply, "status"), "status failed: " << reply.dump());
  CHECK(reply["ref"] == "st");
  return reply;
}

} // namespace

TEST_CASE("joins within one diff interval reach a member as one presence_diff naming them all") {
  server_options opts;
  opts.ini["presence.diff_interval"] = "1s";
  server_process server{opts};
  auto [alice, joined] = member(server.port(), "alice", "general");
  alice->next_matching([](const json& f) { return is_type(f, "presence_diff"); }, "alice's own join");

  constexpr int joiners = 8;
  std::vector<std::unique_ptr<ws_client>> others;
  auto started = std::chrono::steady_clock::now();
  for (int i = 0; i < joiners; ++i)
    others.push_back(member(server.port(), "user" + std::to_string(i), "general").first);
  auto joining_took = elapsed_ms(started);

  std::set<std::string> seen;
  int diffs = 0;
  json last;
  while (seen.size() < joiners) {
    last = alice->next_matching([](const json& f) { return is_type(f, "presence_diff"); },
                                "presence_diff", 5s);
    ++diffs;
    CHECK(last["leaves"] == json::array());
    for (auto& name : last["joins"])
      seen.insert(name.get<std::string>());
  }
  INFO(joiners << " joins took " << joining_took << " ms and arrived in " << diffs << " diff(s)");
  // One interval holds them all unless the joins themselves straddled an interval's end.
  CHECK(diffs <= (joining_took < 1000 ? 2 : joiners));
  CHECK(diffs < joiners);
  CHECK(last["count"] == joiners + 1);
}

TEST_CASE("who pages through a room's members in name order, and joined carries the first page") {
  server_options opts;
  opts.ini["presence.page_size"] = "2";
  server_process server{opts};
  std::vector<std::unique_ptr<ws_client>> clients;
  for (auto name : {"erin", "bob", "dave", "alice"})
    clients.push_back(member(server.port(), name, "general").first);
  auto [carol, joined] = member(server.port(), "carol", "general");
  CHECK(joined["count"] == 5);
  CHECK(joined["presence"] == "users");
  CHECK(joined["members"] == json{"alice", "bob"});

  std::vector<std::string> all;
  json page = who(*carol, "general");
  int pages = 1;
  for (;;) {
    CHECK(page["count"] == 5);
    CHECK(page["members"].size() <= 2);
    for (auto& name : page["members"])
      all.push_back(name.get<std::string>());
    if (!page["more"].get<bool>())
      break;
    REQUIRE(pages < 10);
    page = who(*carol, "general", {{"after", all.back()}});
    ++pages;
  }
  CHECK(pages == 3);
  CHECK(all == std::vector<std::string>{"alice", "bob", "carol", "dave", "erin"});
  CHECK(who(*carol, "general", {{"after", "bob"}, {"limit", 1}})["members"] == json{"carol"});

  carol->send_json({{"type", "who"}, {"room", "general"}, {"limit", 0}, {"ref", "z"}});
  auto error = carol->next_of_type("error");
  CHECK(error["code"] == "bad_field");
  CHECK(error["ref"] == "z");
}

TEST_CASE("a room past user_limit sends counts instead of names, relays no typing, and names again at 90 percent") {
  server_options opts;
  opts.ini["presence.user_limit"] = "3";
  opts.ini["presence.diff_interval"] = "50ms";
  server_process server{opts};
  auto [alice, a_joined] = member(server.port(), "alice", "lobby");
  auto [bob, b_joined] = member(server.port(), "bob", "lobby");
  auto [carol, c_joined] = member(server.port(), "carol", "lobby");
  auto [dave, d_joined] = member(server.port(), "dave", "lobby");  // 4 > 3

  auto is_counts_state = [](const json& f) {
    return is_type(f, "presence_state") && f.value("presence", "") == "counts";
  };
  for (auto* c : {alice.get(), bob.get(), carol.get(), dave.get()}) {
    auto state = c->next_matching(is_counts_state, "presence_state in counts mode");
    CHECK(state["count"] == 4);
    CHECK_FALSE(state.contains("members"));
  }
  auto [erin, e_joined] = member(server.port(), "erin", "lobby");
  CHECK(e_joined["presence"] == "counts");
  CHECK(e_joined["count"] == 5);
  CHECK_FALSE(e_joined.contains("members"));
  auto diff = alice->next_matching([](const json& f) { return is_type(f, "presence_diff"); },
                                   "count-only diff");
  CHECK(diff == json{{"type", "presence_diff"}, {"room", "lobby"}, {"count", 5}});

  // No typing in counts mode: a typing relayed to alice would come before bob's next message.
  bob->send_json({{"type", "typing"}, {"room", "lobby"}});
  bob->say("lobby", "after typing", "t-1");
  auto next = alice->next_matching(
    [](const json& f) { return is_type(f, "typing") || is_type(f, "message"); }, "typing or message");
  CHECK_MESSAGE(is_type(next, "message"), "typing relayed in counts mode: " << next.dump());
  // who names them all the same.
  CHECK(who(*alice, "lobby")["members"] == json{"alice", "bob", "carol", "dave", "erin"});

  // Down to 2 (90 % of 3 is 2.7): names again, for everyone.
  for (auto* c : {erin.get(), dave.get(), carol.get()}) {
    c->send_json({{"type", "leave"}, {"room", "lobby"}});
    c->next_of_type("left");
  }
  for (auto* c : {alice.get(), bob.get()}) {
    auto state = c->next_matching(
      [](const json& f) { return is_type(f, "presence_state") && f.value("presence", "") == "users"; },
      "presence_state in users mode");
    CHECK(state["count"] == 2);
    CHECK(state["members"] == json{"alice", "bob"});
  }
}

TEST_CASE("status tells whether users are online anywhere on the server, and for the grace after they left") {
  server_options opts;
  opts.ini["presence.grace"] = "600ms";
  server_process server{opts};
  ws_client alice;
  alice.connect(server.port(), "alice");
  auto bob1 = std::make_unique<ws_client>();
  auto bob2 = std::make_unique<ws_client>();
  bob1->connect(server.port(), "bob");
  bob2->connect(server.port(), "bob");
  bob2->join("elsewhere");  // status needs no room, and counts connections in any room or none

  auto answer = status(alice, {"bob", "carol", "alice"});
  CHECK(answer["users"] == json::parse(R"([{"user":"bob","online":true,"sessions":2},)"
                                       R"({"user":"carol","online":false,"sessions":0},)"
                                       R"({"user":"alice","online":true,"sessions":1}])"));

  bob1->close();
  bob2->close();
  auto closed_at = std::chrono::steady_clock::now();
  // The server learns of the closes a little later: wait until both are gone.
  json bob;
  for (int i = 0; i < 50; ++i) {
    bob = status(alice, {"bob"})["users"][0];
    if (bob["sessions"] == 0)
      break;
    std::this_thread::sleep_for(20ms);
  }
  REQUIRE(bob["sessions"] == 0);
  if (elapsed_ms(closed_at) < 400)
    CHECK_MESSAGE(bob["online"] == true, "offline within the grace: " << bob.dump());
  std::this_thread::sleep_for(1s);
  CHECK(status(alice, {"bob"})["users"][0] == json{{"user", "bob"}, {"online", false}, {"sessions", 0}});

  alice.send_json({{"type", "status"}, {"users", json::array()}, {"ref", "e"}});
  auto error = alice.next_of_type("error");
  CHECK(error["code"] == "bad_field");
  CHECK(error["ref"] == "e");
}
