// End-to-end: chatting, presence joins and leaves, and cid deduplication against the real server.

#include "harness.hpp"

#include <doctest/doctest.h>

#include <thread>

using namespace parley::e2e;

namespace {

/// Matches a presence_diff in `room` that names `user` in `list` ("joins" or "leaves").
auto diff_naming(std::string room, std::string list, std::string user) {
  return [room, list, user](const json& f) {
    return f.value("type", "") == "presence_diff" && f.value("room", "") == room && f.contains(list)
           && contains(f[list], user);
  };
}

/// Matches a chat message carrying this cid.
auto message_with_cid(std::string cid) {
  return [cid](const json& f) { return f.value("type", "") == "message" && f.value("cid", "") == cid; };
}

/// A server whose presence grace is short enough to observe within a test.
server_options with_grace(const std::string& grace) {
  server_options opts;
  opts.ini["presence.grace"] = grace;
  return opts;
}

void check_message(const json& msg, const std::string& from, const std::string& text,
                   const std::string& cid) {
  CHECK(msg.value("type", "") == "message");
  CHECK(msg.value("room", "") == "general");
  CHECK(msg.value("from", "") == from);
  CHECK(msg.value("text", "") == text);
  CHECK(msg.value("cid", "") == cid);
  CHECK(msg["id"].is_number_unsigned());
  CHECK(msg["ts"].is_number());
}

} // namespace

TEST_CASE("two users chatting in a room both see the message with the same id, sender, text and cid") {
  server_process server;
  ws_client alice;
  ws_client bob;
  alice.connect(server.port(), "alice");
  bob.connect(server.port(), "bob");
  alice.join("general");
  auto joined = bob.join("general");
  CHECK(contains(joined["members"], "alice"));
  CHECK(contains(joined["members"], "bob"));

  alice.send_json({{"type", "send"}, {"room", "general"}, {"text", "hello bob"}, {"cid", "a-1"}});
  auto at_alice = alice.next_of_type("message");
  auto at_bob = bob.next_of_type("message");

  check_message(at_alice, "alice", "hello bob", "a-1");
  check_message(at_bob, "alice", "hello bob", "a-1");
  CHECK(at_alice["id"] == at_bob["id"]);
  CHECK(at_alice["ts"] == at_bob["ts"]);
}

TEST_CASE("a member joining shows as a join to the others and its disconnect as a leave only after "
          "the presence grace") {
  constexpr long long grace_ms = 400;
  server_process server{with_grace("400ms")};
  ws_client alice;
  ws_client bob;
  alice.connect(server.port(), "alice");
  alice.join("general");
  bob.connect(server.port(), "bob");
  bob.join("general");
  alice.next_matching(diff_naming("general", "joins", "bob"), "bob joining general");

  bob.close();
  auto closed_at = std::chrono::steady_clock::now();
  alice.next_matching(diff_naming("general", "leaves", "bob"), "bob leaving general");
  auto waited = elapsed_ms(closed_at);
  INFO("the leave arrived " << waited << " ms after bob's close; grace is " << grace_ms << " ms");
  // The server starts its grace timer after it sees the close, so it can never be early.
  CHECK(waited >= grace_ms - 20);
  CHECK(waited < grace_ms + 3000);
}

TEST_CASE("a reconnect within the presence grace shows neither a leave nor a second join") {
  constexpr auto grace = 1500ms;
  server_process server{with_grace("1500ms")};
  ws_client alice;
  alice.connect(server.port(), "alice");
  alice.join("general");
  {
    ws_client bob;
    bob.connect(server.port(), "bob");
    bob.join("general");
    alice.next_matching(diff_naming("general", "joins", "bob"), "bob joining general");
    bob.close();
  }
  ws_client bob_again;
  bob_again.connect(server.port(), "bob");
  bob_again.join("general");

  // Watch well past the grace: neither an offline nor a second online for bob may show up.
  auto until = std::chrono::steady_clock::now() + grace + 1000ms;
  auto is_bob_offline = diff_naming("general", "leaves", "bob");
  auto is_bob_online = diff_naming("general", "joins", "bob");
  while (std::chrono::steady_clock::now() < until) {
    auto left = std::chrono::duration_cast<millis>(until - std::chrono::steady_clock::now());
    auto frame = alice.try_next(std::max(left, millis{1}));
    if (frame) {
      CHECK_MESSAGE(!is_bob_offline(*frame), "leave shown despite a reconnect: " << frame->dump());
      CHECK_MESSAGE(!is_bob_online(*frame), "second join after a reconnect: " << frame->dump());
    }
  }

  // Control: without a reconnect the same server does show offline, so the silence above meant it.
  bob_again.close();
  alice.next_matching(is_bob_offline, "bob leaving after the final close", grace + 3000ms);
}

TEST_CASE("an explicit leave shows as a leave at the next diff, without waiting for the grace") {
  server_process server{with_grace("5s")};
  ws_client alice;
  ws_client bob;
  alice.connect(server.port(), "alice");
  alice.join("general");
  bob.connect(server.port(), "bob");
  bob.join("general");
  alice.next_matching(diff_naming("general", "joins", "bob"), "bob joining general");

  auto left_at = std::chrono::steady_clock::now();
  bob.send_json({{"type", "leave"}, {"room", "general"}, {"ref", "l1"}});
  auto left = bob.next_of_type("left");
  CHECK(left.value("room", "") == "general");
  CHECK(left.value("reason", "") == "left");
  CHECK(left.value("ref", "") == "l1");
  alice.next_matching(diff_naming("general", "leaves", "bob"), "bob leaving general", 2s);
  CHECK(elapsed_ms(left_at) < 2000);
}

TEST_CASE("sending the same cid twice yields one message id and one broadcast") {
  server_process server;
  ws_client alice;
  ws_client bob;
  alice.connect(server.port(), "alice");
  bob.connect(server.port(), "bob");
  alice.join("general");
  bob.join("general");

  auto first = alice.say("general", "only once", "dup-1");
  auto resent = alice.say("general", "only once", "dup-1");
  CHECK(resent["id"] == first["id"]);
  CHECK(resent.value("text", "") == "only once");

  auto at_bob = bob.next_matching(message_with_cid("dup-1"), "message dup-1");
  CHECK(at_bob["id"] == first["id"]);

  // The resend goes to the sender only: bob's next message must be the following one.
  auto marker = alice.say("general", "next", "dup-2");
  CHECK(marker["id"].get<uint64_t>() > first["id"].get<uint64_t>());
  auto bob_next = bob.next_of_type("message");
  CHECK_MESSAGE(bob_next.value("cid", "") == "dup-2", "bob got a second broadcast: " << bob_next.dump());
  CHECK(bob_next["id"] == marker["id"]);
}
