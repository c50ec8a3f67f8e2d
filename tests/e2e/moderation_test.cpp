// End-to-end: moderation on live connections in jwt mode. Kick, ban, mute and delete in a room,
// each answered to the moderator and broadcast to the room; bans and deleted messages survive a
// restart; an admin's server-wide ban closes every connection of the user within a second and
// keeps them out; members may not moderate.

#include "harness.hpp"

#include "auth/jwt.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace parley::e2e;
using parley::auth::jwt_algorithm;
using parley::auth::sign_token;
using parley::auth::token_claims;
using parley::auth::unix_now;

namespace {

const std::string secret = "an-e2e-test-secret-that-is-long-enough-for-hs256";

std::string quoted(const std::string& s) {
  return "\"" + s + "\"";
}

server_options jwt_server(const std::string& db) {
  server_options opts;
  opts.ini["auth.mode"] = quoted("jwt");
  opts.ini["auth.secret"] = quoted(secret);
  opts.ini["store.path"] = quoted(db);
  return opts;
}

/// Connects `client` as `sub` with the given roles.
json sign_in(ws_client& client, uint16_t port, const std::string& sub,
             std::vector<std::string> roles = {}) {
  token_claims c;
  c.sub = sub;
  c.exp = unix_now() + 3600;
  c.roles = std::move(roles);
  ws_connect_options opts;
  opts.token = sign_token(c, jwt_algorithm::hs256, secret);
  return client.connect(port, sub, opts);
}

/// Sends a moderation command and returns the "moderated" answer (matched by ref).
json moderate(ws_client& client, json command, int ref) {
  command["ref"] = ref;
  client.send_json(command);
  return client.next_matching(
    [&](const json& f) {
      return (f.value("type", "") == "moderated" || f.value("type", "") == "error") && f["ref"] == ref;
    },
    "the answer to " + command.dump());
}

} // namespace

TEST_CASE("kick, ban, mute and delete are answered, broadcast and in force at once") {
  scratch_dir data;
  server_process server{jwt_server(data.file("chat.db"))};
  ws_client carol, bob, dave;
  sign_in(carol, server.port(), "carol", {"moderator"});
  sign_in(bob, server.port(), "bob");
  sign_in(dave, server.port(), "dave");
  carol.join("general");
  bob.join("general");
  dave.join("general");

  SUBCASE("a member may not moderate") {
    auto answer = moderate(bob, {{"type", "kick"}, {"room", "general"}, {"user", "dave"}}, 1);
    CHECK(answer["type"] == "error");
    CHECK(answer["code"] == "forbidden");
  }

  SUBCASE("kick: the user's sessions leave the room and may join again") {
    auto answer = moderate(carol, {{"type", "kick"}, {"room", "general"}, {"user", "bob"}, {"reason", "cool off"}}, 2);
    CHECK(answer["type"] == "moderated");
    CHECK(answer["action"] == "kick");
    auto left = bob.next_of_type("left");
    CHECK(left["room"] == "general");
    CHECK(left["reason"] == "kicked");
    auto seen = dave.next_of_type("moderation");
    CHECK(seen["action"] == "kick");
    CHECK(seen["user"] == "bob");
    CHECK(seen["by"] == "carol");
    CHECK(seen["reason"] == "cool off");
    bob.send_json({{"type", "send"}, {"room", "general"}, {"text", "still?"}, {"ref", 3}});
    CHECK(bob.next_of_type("error")["code"] == "not_member");
    bob.join("general");
  }

  SUBCASE("ban: out at once, and a join is refused with banned until the end") {
    auto before = unix_now() * 1000;
    auto answer = moderate(carol, {{"type", "ban"}, {"room", "general"}, {"user", "bob"}, {"duration", 3600}}, 4);
    CHECK(answer["type"] == "moderated");
    CHECK(bob.next_of_type("left")["reason"] == "banned");
    auto seen = dave.next_of_type("moderation");
    CHECK(seen["action"] == "ban");
    CHECK(seen["until"].get<int64_t>() >= before + 3600 * 1000);
    bob.send_json({{"type", "join"}, {"room", "general"}, {"ref", 5}});
    auto refused = bob.next_of_type("error");
    CHECK(refused["code"] == "banned");
    CHECK(refused["until"] == seen["until"]);
    // Other rooms are not affected, and unban lets the user back in.
    bob.join("elsewhere");
    CHECK(moderate(carol, {{"type", "unban"}, {"room", "general"}, {"user", "bob"}}, 6)["type"] == "moderated");
    bob.join("general");
  }

  SUBCASE("mute: sends are refused with muted until unmuted; reading goes on") {
    CHECK(moderate(carol, {{"type", "mute"}, {"room", "general"}, {"user", "bob"}, {"duration", 600}}, 7)["type"] == "moderated");
    bob.send_json({{"type", "send"}, {"room", "general"}, {"text", "let me talk"}, {"ref", 8}});
    auto refused = bob.next_of_type("error");
    CHECK(refused["code"] == "muted");
    CHECK(refused.contains("until"));
    dave.say("general", "bob can still read this", "d1");
    CHECK(bob.next_of_type("message")["text"] == "bob can still read this");
    CHECK(moderate(carol, {{"type", "unmute"}, {"room", "general"}, {"user", "bob"}}, 9)["type"] == "moderated");
    bob.say("general", "thanks", "b1");
  }

  SUBCASE("delete: the message becomes a tombstone in the broadcast and in history") {
    auto msg = bob.say("general", "something regrettable", "b2");
    auto id = msg["id"].get<uint64_t>();
    auto answer = moderate(carol, {{"type", "delete"}, {"room", "general"}, {"id", id}}, 10);
    CHECK(answer["type"] == "moderated");
    CHECK(answer["id"] == id);
    auto seen = dave.next_of_type("moderation");
    CHECK(seen["action"] == "delete");
    CHECK(seen["id"] == id);
    dave.send_json({{"type", "history"}, {"room", "general"}, {"ref", 11}});
    auto page = dave.next_of_type("history");
    bool found = false;
    for (auto& m : page["messages"])
      if (m["id"] == id) {
        found = true;
        CHECK(m["deleted"] == true);
        CHECK(m["text"] == "");
      }
    CHECK(found);
    auto missing = moderate(carol, {{"type", "delete"}, {"room", "general"}, {"id", 999999}}, 12);
    CHECK(missing["code"] == "not_found");
  }
}

TEST_CASE("a room ban and a deleted message survive a server restart") {
  scratch_dir data;
  uint64_t deleted_id = 0;
  {
    server_process server{jwt_server(data.file("chat.db"))};
    ws_client carol, bob;
    sign_in(carol, server.port(), "carol", {"moderator"});
    sign_in(bob, server.port(), "bob");
    carol.join("general");
    bob.join("general");
    deleted_id = bob.say("general", "delete me", "b1")["id"].get<uint64_t>();
    bob.say("general", "keep me", "b2");
    CHECK(moderate(carol, {{"type", "delete"}, {"room", "general"}, {"id", deleted_id}}, 1)["type"] == "moderated");
    CHECK(moderate(carol, {{"type", "ban"}, {"room", "general"}, {"user", "bob"}, {"reason", "spam"}}, 2)["type"] == "moderated");
    server.terminate();
  }
  server_process server{jwt_server(data.file("chat.db"))};
  ws_client bob, dave;
  sign_in(bob, server.port(), "bob");
  bob.send_json({{"type", "join"}, {"room", "general"}, {"ref", 3}});
  auto refused = bob.next_of_type("error");
  CHECK(refused["code"] == "banned");
  CHECK_FALSE(refused.contains("until"));  // for good

  sign_in(dave, server.port(), "dave");
  auto joined = dave.join("general");
  bool tombstone = false, kept = false;
  for (auto& m : joined["history"]) {
    if (m["id"] == deleted_id)
      tombstone = m.value("deleted", false) && m["text"] == "";
    if (m["text"] == "keep me")
      kept = true;
  }
  CHECK(tombstone);
  CHECK(kept);
}

TEST_CASE("an admin's server-wide ban closes every connection of the user within a second, and keeps them out") {
  scratch_dir data;
  server_process server{jwt_server(data.file("chat.db"))};
  ws_client admin, carol, bob1, bob2;
  sign_in(admin, server.port(), "root", {"admin"});
  sign_in(carol, server.port(), "carol", {"moderator"});
  sign_in(bob1, server.port(), "bob");
  sign_in(bob2, server.port(), "bob");
  bob1.join("general");

  // Moderators moderate rooms; only admins ban from the whole server.
  auto refused = moderate(carol, {{"type", "ban"}, {"user", "bob"}}, 1);
  CHECK(refused["code"] == "forbidden");

  auto start = std::chrono::steady_clock::now();
  auto answer = moderate(admin, {{"type", "ban"}, {"user", "bob"}, {"reason", "abuse"}}, 2);
  CHECK(answer["type"] == "moderated");
  CHECK_FALSE(answer.contains("room"));
  for (auto* bob : {&bob1, &bob2}) {
    auto error = bob->next_of_type("error", 2s);
    CHECK(error["code"] == "banned");
    auto end = bob->expect_close(2s);
    CHECK(end.code == 4403);
  }
  CHECK(elapsed_ms(start) < 1000);

  // A new connection with a valid token is refused too, also after a restart.
  ws_client again;
  ws_connect_options opts;
  token_claims c;
  c.sub = "bob";
  c.exp = unix_now() + 3600;
  opts.token = sign_token(c, jwt_algorithm::hs256, secret);
  opts.expect_welcome = false;
  again.connect(server.port(), "bob", opts);
  CHECK(again.next_of_type("error")["code"] == "banned");
  CHECK(again.expect_close().code == 4403);

  server.terminate();
  server_process restarted{jwt_server(data.file("chat.db"))};
  ws_client after;
  after.connect(restarted.port(), "bob", opts);
  CHECK(after.next_of_type("error")["code"] == "banned");
  CHECK(after.expect_close().code == 4403);

  // Unbanned, bob is welcome again.
  ws_client admin2;
  INFO(restarted.output());
  sign_in(admin2, restarted.port(), "root", {"admin"});
  CHECK(moderate(admin2, {{"type", "unban"}, {"user", "bob"}}, 3)["type"] == "moderated");
  ws_client back;
  sign_in(back, restarted.port(), "bob");
}
