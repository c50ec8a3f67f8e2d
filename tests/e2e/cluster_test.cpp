// End-to-end: two Parley nodes share rooms through a real redis-server (docs/cluster.md). Chat,
// ids, presence and moderation across nodes, and what happens when Redis or a node fails.

#include "cluster_fixture.hpp"

#include <doctest/doctest.h>

#include <csignal>
#include <map>
#include <set>
#include <string>
#include <vector>

using namespace parley::e2e;

namespace {

bool is_type(const json& f, const char* type) {
  return f.value("type", "") == type;
}

/// Reads until the room's present count is `count` (presence_diff or presence_state); fails after `wait`.
json wait_for_count(ws_client& client, const std::string& room, std::size_t count, millis wait = 8s) {
  return client.next_matching(
    [&](const json& f) {
      return (is_type(f, "presence_diff") || is_type(f, "presence_state")) && f.value("room", "") == room
             && f.value("count", std::size_t{0}) == count;
    },
    "presence count " + std::to_string(count) + " in " + room, wait);
}

/// Sends a message to "general" and returns what answers it: its echo, or an error.
json send_for_reply(ws_client& client, const std::string& text, const std::string& cid) {
  client.send_json({{"type", "send"}, {"room", "general"}, {"text", text}, {"cid", cid}});
  return client.next_matching([](const json& f) { return is_type(f, "error") || is_type(f, "message"); },
                              "the answer to " + cid, 8s);
}

} // namespace

TEST_SUITE("cluster") {

TEST_CASE("a message sent on one node reaches members on both nodes with the same id") {
  cluster_fixture cluster;
  ws_client alice, bob;
  alice.connect(cluster.a().port(), "alice");
  bob.connect(cluster.b().port(), "bob");
  alice.join("general");
  bob.join("general");

  auto echo = alice.say("general", "hello from a", "a-1");
  auto seen = bob.next_of_type("message");
  CHECK(seen["text"] == "hello from a");
  CHECK(seen["from"] == "alice");
  CHECK(seen["id"] == echo["id"]);
  CHECK(echo["id"] == 1);

  auto reply = bob.say("general", "hello from b", "b-1");
  CHECK(reply["id"] == 2);
  auto at_alice = alice.next_of_type("message");
  CHECK(at_alice["id"] == 2);
  CHECK(at_alice["text"] == "hello from b");
  CHECK(resp_integer(cluster.redis().command({"XLEN", "parley:stream:general"})) == 2);
  // Each node read both messages from the stream for its own members.
  CHECK(metric_value(cluster.a(), "parley_cluster_messages_read_total") == 2);
  CHECK(metric_value(cluster.b(), "parley_cluster_messages_read_total") == 2);
}

TEST_CASE("ids stay gap-free and every node delivers the same sequence when both nodes send at once") {
  cluster_fixture cluster;
  ws_client a_sender, b_sender, a_reader, b_reader;
  a_sender.connect(cluster.a().port(), "ann");
  b_sender.connect(cluster.b().port(), "ben");
  a_reader.connect(cluster.a().port(), "ada");
  b_reader.connect(cluster.b().port(), "bea");
  for (auto* c : {&a_sender, &b_sender, &a_reader, &b_reader})
    c->join("busy");

  // Within a connection's burst of 40 frames (the join is one): a refused send would leave a gap
  // in what the readers expect that is the rate limit's doing, not the cluster's.
  constexpr int per_sender = 30;
  // Interleaved without waiting for echoes, so the two nodes' appends race in Redis.
  for (int i = 0; i < per_sender; ++i) {
    a_sender.send_json({{"type", "send"}, {"room", "busy"}, {"text", "a" + std::to_string(i)},
                        {"cid", "a-" + std::to_string(i)}});
    b_sender.send_json({{"type", "send"}, {"room", "busy"}, {"text", "b" + std::to_string(i)},
                        {"cid", "b-" + std::to_string(i)}});
  }
  auto read_all = [](ws_client& reader) {
    std::vector<json> got;
    while (got.size() < 2 * per_sender)
      got.push_back(reader.next_of_type("message", 10s));
    return got;
  };
  auto at_a = read_all(a_reader);
  auto at_b = read_all(b_reader);
  for (std::size_t i = 0; i < at_a.size(); ++i) {
    CAPTURE(i);
    CHECK(at_a[i]["id"] == i + 1);
    CHECK(at_b[i]["id"] == at_a[i]["id"]);
    CHECK(at_b[i]["text"] == at_a[i]["text"]);
  }
  std::set<std::string> texts;
  for (auto& m : at_a)
    texts.insert(m["text"].get<std::string>());
  CHECK(texts.size() == 2 * per_sender);
}

TEST_CASE("a retry of a cid sent through the other node is answered with the original, not stored twice") {
  cluster_fixture cluster;
  ws_client alice_a, alice_b;
  alice_a.connect(cluster.a().port(), "alice");
  alice_b.connect(cluster.b().port(), "alice");
  alice_a.join("general");
  alice_b.join("general");
  auto first = alice_a.say("general", "once", "same-cid");
  alice_b.next_of_type("message");  // the broadcast of the first
  auto retry = alice_b.say("general", "once", "same-cid");
  CHECK(retry["id"] == first["id"]);
  CHECK(resp_integer(cluster.redis().command({"XLEN", "parley:stream:general"})) == 1);
}

TEST_CASE("presence is shared: a user on either node shows in both, and counts agree") {
  cluster_fixture cluster;
  ws_client alice, bob;
  alice.connect(cluster.a().port(), "alice");
  alice.join("lobby");
  bob.connect(cluster.b().port(), "bob");
  auto joined = bob.join("lobby");
  // Bob's node may not have read alice's entry yet when he joins: he learns it within moments.
  if (joined["count"] != 2)
    wait_for_count(bob, "lobby", 2);
  auto diff = alice.next_matching(
    [](const json& f) {
      return is_type(f, "presence_diff") && f["joins"].is_array()
             && std::find(f["joins"].begin(), f["joins"].end(), "bob") != f["joins"].end();
    },
    "bob's join at alice", 8s);
  CHECK(diff["count"] == 2);

  bob.send_json({{"type", "who"}, {"room", "lobby"}});
  auto who = bob.next_of_type("who");
  CHECK(who["members"] == json::array({"alice", "bob"}));

  bob.send_json({{"type", "leave"}, {"room", "lobby"}});
  auto left = alice.next_matching(
    [](const json& f) {
      return is_type(f, "presence_diff") && f["leaves"].is_array()
             && std::find(f["leaves"].begin(), f["leaves"].end(), "bob") != f["leaves"].end();
    },
    "bob's leave at alice", 8s);
  CHECK(left["count"] == 1);
}

TEST_CASE("a node that dies silently has its users go offline on the other node after the TTL") {
  cluster_fixture cluster;
  ws_client alice, bob;
  alice.connect(cluster.a().port(), "alice");
  alice.join("lobby");
  bob.connect(cluster.b().port(), "bob");
  bob.join("lobby");
  wait_for_count(alice, "lobby", 2);

  auto killed_at = std::chrono::steady_clock::now();
  cluster.b().kill();
  auto diff = wait_for_count(alice, "lobby", 1, cluster_presence_ttl + 5s);
  auto took = std::chrono::steady_clock::now() - killed_at;
  CHECK(diff["leaves"] == json::array({"bob"}));
  // Not at once: nobody told Redis; the entry ends when the dead node's heartbeat is too old.
  CHECK(took >= cluster_presence_ttl / 2);
}

TEST_CASE("a server-wide ban recorded on one node closes the user's socket on the other within a second") {
  cluster_fixture cluster;
  ws_client mallory, alice;
  mallory.connect(cluster.b().port(), "mallory");
  mallory.join("general");
  alice.connect(cluster.b().port(), "alice");
  auto banned = cluster.admin_post(cluster.a(), "/admin/ban", R"({"user":"mallory","reason":"spam"})");
  REQUIRE_MESSAGE(banned.status == 200, banned.body);
  auto started = std::chrono::steady_clock::now();
  auto closed = mallory.expect_close(2s);
  CHECK(closed.code == 4403);
  CHECK(std::chrono::steady_clock::now() - started < 1s);
  CHECK(alice.is_open());
  CHECK(metric_value(cluster.b(), "parley_cluster_events_total{kind=\"moderation\"}") == 1);
  CHECK(metric_value(cluster.a(), "parley_cluster_events_total{kind=\"moderation\"}") == 0);
}

TEST_CASE("a kick and a room ban on one node remove the user's sessions on the other") {
  cluster_fixture cluster;
  // Carol is in the room through both nodes; node a's kick must reach her session on node b.
  ws_client carol_on_a, carol_on_b, bob_on_b;
  carol_on_a.connect(cluster.a().port(), "carol");
  carol_on_a.join("general");
  carol_on_b.connect(cluster.b().port(), "carol");
  carol_on_b.join("general");
  bob_on_b.connect(cluster.b().port(), "bob");
  bob_on_b.join("general");

  auto removed_from_general = [](const json& f) {
    return f.dump().find("general") != std::string::npos
           && (f.dump().find("kicked") != std::string::npos || f.dump().find("banned") != std::string::npos)
           && !is_type(f, "moderation");
  };
  REQUIRE(cluster.admin_post(cluster.a(), "/admin/rooms/general/kick", R"({"user":"carol"})").status == 200);
  auto started = std::chrono::steady_clock::now();
  auto kicked = carol_on_b.next_matching(removed_from_general, "carol's kick on node b", 3s);
  CHECK(std::chrono::steady_clock::now() - started < 1s);
  CHECK(kicked.dump().find("kicked") != std::string::npos);
  // Bob saw it announced in the room on his node.
  auto announced = bob_on_b.next_of_type("moderation", 3s);
  CHECK(announced["action"] == "kick");
  CHECK(announced["user"] == "carol");

  // A ban needs no membership on the node that records it.
  REQUIRE(cluster.admin_post(cluster.a(), "/admin/rooms/general/ban", R"({"user":"bob"})").status == 200);
  auto ban = bob_on_b.next_matching(removed_from_general, "bob's ban on node b", 3s);
  CHECK(ban.dump().find("banned") != std::string::npos);
  // And the ban holds on node b for a new join.
  bob_on_b.send_json({{"type", "join"}, {"room", "general"}});
  auto refused = bob_on_b.next_of_type("error");
  CHECK(refused["code"] == "banned");
}

TEST_CASE("recovery with since and epoch on the other node returns what a client missed") {
  cluster_fixture cluster;
  ws_client bob;
  bob.connect(cluster.b().port(), "bob");
  bob.join("general");
  uint64_t epoch = 0, seen = 0;
  {
    ws_client alice;
    alice.connect(cluster.a().port(), "alice");
    epoch = alice.join("general")["epoch"].get<uint64_t>();
    seen = bob.say("general", "before", "b-0")["id"].get<uint64_t>();
    alice.next_of_type("message");
    alice.close();
  }
  std::vector<json> missed;
  for (int i = 1; i <= 3; ++i)
    missed.push_back(bob.say("general", "missed " + std::to_string(i), "b-" + std::to_string(i)));
  ws_client alice;
  alice.connect(cluster.b().port(), "alice");
  auto joined = alice.join("general", {{"since", seen}, {"epoch", epoch}});
  CHECK(joined["recovered"] == true);
  REQUIRE(joined["history"].size() == missed.size());
  for (std::size_t i = 0; i < missed.size(); ++i)
    CHECK(joined["history"][i]["id"] == missed[i]["id"]);
}

TEST_CASE("while Redis is down sends are refused with store_unavailable and the node is not ready; "
          "afterwards nothing acknowledged is lost and nothing is delivered twice") {
  cluster_fixture cluster;
  ws_client alice, bob;
  alice.connect(cluster.a().port(), "alice");
  bob.connect(cluster.b().port(), "bob");
  alice.join("general");
  bob.join("general");
  std::vector<uint64_t> acknowledged;
  acknowledged.push_back(alice.say("general", "before", "c-0")["id"].get<uint64_t>());

  cluster.redis().stop();
  auto refused = send_for_reply(alice, "during", "c-1");
  CHECK(refused["type"] == "error");
  CHECK(refused["code"] == "store_unavailable");
  CHECK(http_get(cluster.a().admin_port(), "/readyz").status == 503);
  CHECK(metric_value(cluster.a(), "parley_redis_failures_total{client=\"store\"}") >= 1);

  cluster.redis().start();
  // The client's retry of c-1 and new messages go through once Redis is back.
  json retry;
  for (int attempt = 0; attempt < 50; ++attempt) {
    retry = send_for_reply(alice, "during", "c-1");
    if (is_type(retry, "message"))
      break;
    std::this_thread::sleep_for(200ms);
  }
  REQUIRE(is_type(retry, "message"));
  acknowledged.push_back(retry["id"].get<uint64_t>());
  acknowledged.push_back(alice.say("general", "after", "c-2")["id"].get<uint64_t>());
  CHECK(acknowledged == std::vector<uint64_t>{1, 2, 3});

  // Bob, on the other node, gets every acknowledged message exactly once, in order.
  std::vector<uint64_t> at_bob;
  while (at_bob.size() < acknowledged.size())
    at_bob.push_back(bob.next_of_type("message", 10s)["id"].get<uint64_t>());
  CHECK(at_bob == acknowledged);
  // Nothing twice: no further message within half a second (presence frames may come and go:
  // the nodes' heartbeats lapsed while Redis was down).
  while (auto extra = bob.try_next(500ms))
    CHECK_MESSAGE((*extra)["type"] != "message", "delivered again: " << extra->dump());
  CHECK(http_get(cluster.a().admin_port(), "/readyz").status == 200);
}

TEST_CASE("with strict durability a node refuses messages while Redis does not fsync every write") {
  redis_options lax;
  lax.appendfsync = "everysec";
  cluster_fixture cluster{lax};
  ws_client alice;
  alice.connect(cluster.a().port(), "alice");
  alice.join("general");
  auto refused = send_for_reply(alice, "not durable", "x-1");
  CHECK(refused["code"] == "store_unavailable");
  CHECK(http_get(cluster.a().admin_port(), "/readyz").status == 503);

  cluster.redis().command({"CONFIG", "SET", "appendfsync", "always"});
  CHECK(alice.say("general", "durable now", "x-2")["id"] == 1);
  CHECK(http_get(cluster.a().admin_port(), "/readyz").status == 200);
}

} // TEST_SUITE
