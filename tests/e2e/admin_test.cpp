// End-to-end: the admin listener of the real binary. Its own port, the bearer token (none, wrong,
// right, disabled), /metrics only there, /readyz turning 503 while draining and at the connection
// limit, and every route and action on live chat connections: rooms, members, a user's sessions,
// kick, ban and unban in a room and on the server, notices, and bad input.

#include "harness.hpp"

#include <doctest/doctest.h>

#include <signal.h>

#include <string>

using namespace parley::e2e;

namespace {

const std::string admin_token = "e2e-admin-token-0123456789";

server_options with_token(server_options opts = {}) {
  opts.ini["admin.token"] = "\"" + admin_token + "\"";
  return opts;
}

std::vector<std::pair<std::string, std::string>> bearer(const std::string& token = admin_token) {
  return {{"Authorization", "Bearer " + token}};
}

http_reply admin_get(const server_process& server, const std::string& target) {
  return http_get(server.admin_port(), target, bearer());
}

http_reply admin_post(const server_process& server, const std::string& target, const std::string& body) {
  return http_request(server.admin_port(), "POST", target, body, bearer());
}

json body_of(const http_reply& reply) {
  auto parsed = json::parse(reply.body, nullptr, false);
  REQUIRE_MESSAGE(!parsed.is_discarded(), "not JSON: " << reply.body);
  return parsed;
}

/// The entry of `room` in GET /admin/rooms, or null.
json room_entry(const server_process& server, const std::string& room) {
  auto reply = admin_get(server, "/admin/rooms");
  REQUIRE(reply.status == 200);
  auto body = body_of(reply);
  for (const auto& entry : body["rooms"])
    if (entry["name"] == room)
      return entry;
  return nullptr;
}

/// The user ids listed by GET /admin/rooms/<room>.
std::vector<std::string> members_of(const server_process& server, const std::string& room) {
  auto reply = admin_get(server, "/admin/rooms/" + room);
  REQUIRE(reply.status == 200);
  std::vector<std::string> users;
  auto body = body_of(reply);
  for (const auto& m : body["members"])
    users.push_back(m["user"].get<std::string>());
  return users;
}

/// Polls /readyz until it answers `status` (readiness follows the server within moments).
http_reply readyz_until(const server_process& server, unsigned status, millis timeout = 5s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  auto reply = http_get(server.admin_port(), "/readyz");
  while (reply.status != status && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(50ms);
    reply = http_get(server.admin_port(), "/readyz");
  }
  return reply;
}

} // namespace

TEST_CASE("the admin listener has its own port, logged on stdout") {
  server_process server{with_token()};
  CHECK(server.admin_port() != 0);
  CHECK(server.admin_port() != server.port());
  CHECK(server.output().find("parley admin listening on 127.0.0.1:" + std::to_string(server.admin_port()))
        != std::string::npos);
  CHECK(http_get(server.admin_port(), "/healthz").body == "ok\n");
}

TEST_CASE("the admin API answers 401 without the token or with a wrong one, 200 with it, and never logs it") {
  server_process server{with_token()};
  auto none = http_get(server.admin_port(), "/admin/rooms");
  CHECK(none.status == 401);
  CHECK(none.header("WWW-Authenticate").rfind("Bearer", 0) == 0);
  CHECK(body_of(none)["error"] == "unauthorized");
  auto wrong = http_get(server.admin_port(), "/admin/rooms", bearer(admin_token + "x"));
  CHECK(wrong.status == 401);
  CHECK(wrong.header("WWW-Authenticate").find("invalid_token") != std::string::npos);
  auto basic = http_get(server.admin_port(), "/admin/rooms", {{"Authorization", "Basic " + admin_token}});
  CHECK(basic.status == 401);
  auto right = admin_get(server, "/admin/rooms");
  CHECK(right.status == 200);
  CHECK(right.content_type == "application/json");
  CHECK(body_of(right)["rooms"].is_array());
  server.terminate();
  CHECK(server.output().find(admin_token) == std::string::npos);
}

TEST_CASE("without a token the admin API is disabled with 403, while /metrics, /healthz and /readyz work") {
  server_process server;
  auto off = http_get(server.admin_port(), "/admin/rooms", bearer());
  CHECK(off.status == 403);
  CHECK(body_of(off)["error"] == "admin_disabled");
  CHECK(body_of(off)["message"] == "admin API disabled: set [admin] token or token_file");
  CHECK(http_get(server.admin_port(), "/healthz").status == 200);
  CHECK(readyz_until(server, 200).body == "ready\n");
  CHECK(http_get(server.admin_port(), "/metrics").status == 200);
}

TEST_CASE("/metrics answers in the Prometheus format on the admin port and not on the public one") {
  server_process server{with_token()};
  REQUIRE(readyz_until(server, 200).status == 200);
  auto metrics = http_get(server.admin_port(), "/metrics");
  CHECK(metrics.status == 200);
  CHECK(metrics.content_type == "text/plain; version=0.0.4; charset=utf-8");
  CHECK(metrics.body.find("# TYPE parley_ready gauge") != std::string::npos);
  CHECK(metrics.body.find("parley_ready 1") != std::string::npos);
  CHECK(metrics.body.find("parley_draining 0") != std::string::npos);
  CHECK(http_get(server.port(), "/metrics").status == 404);
  // Nor does the public listener serve the admin page or API.
  CHECK(http_get(server.port(), "/admin/rooms", bearer()).status == 404);
  CHECK(http_get(server.port(), "/admin.js").status == 404);
  auto page = http_get(server.admin_port(), "/");
  CHECK(page.status == 200);
  CHECK(page.content_type.rfind("text/html", 0) == 0);
  CHECK(page.body.find("Parley admin") != std::string::npos);
}

TEST_CASE("rooms, members and a user's sessions are listed; an unknown room is 404") {
  server_process server{with_token()};
  ws_client alice, bob, bob2;
  alice.connect(server.port(), "alice");
  bob.connect(server.port(), "bob");
  bob2.connect(server.port(), "bob");
  alice.join("general");
  bob.join("general");
  bob2.join("general");
  alice.say("general", "one", "c1");
  alice.say("general", "two", "c2");

  auto room = room_entry(server, "general");
  REQUIRE(room.is_object());
  CHECK(room["members"] == 2);
  CHECK(room["connections"] == 3);
  CHECK(room["last_id"] == 2);
  CHECK(room["message_rate"].get<double>() > 0);

  auto members = body_of(admin_get(server, "/admin/rooms/general"));
  CHECK(members["room"] == "general");
  REQUIRE(members["members"].size() == 2);
  CHECK(members["members"][0] == json{{"user", "alice"}, {"connections", 1}});
  CHECK(members["members"][1] == json{{"user", "bob"}, {"connections", 2}});

  auto missing = admin_get(server, "/admin/rooms/nowhere");
  CHECK(missing.status == 404);
  CHECK(body_of(missing)["error"] == "not_found");
  CHECK(admin_get(server, "/admin/rooms/bad%20name").status == 400);

  auto user = body_of(admin_get(server, "/admin/users/bob"));
  CHECK(user["online"] == true);
  CHECK(user["banned"] == false);
  REQUIRE(user["sessions"].size() == 2);
  for (const auto& s : user["sessions"]) {
    CHECK(s["rooms"] == json{"general"});
    CHECK(s["address"] == "127.0.0.1");
    CHECK(s["session"].get<std::string>().size() == 16);
    CHECK(s["connected_since"].get<int64_t>() > 1'700'000'000'000);
  }
  CHECK((user["sessions"][0]["session"] == bob.session() || user["sessions"][1]["session"] == bob.session()));
  auto nobody = body_of(admin_get(server, "/admin/users/nobody"));
  CHECK(nobody["online"] == false);
  CHECK(nobody["sessions"].empty());
}

TEST_CASE("an admin kick removes the user from the room, and the room is told it was the admin") {
  server_process server{with_token()};
  ws_client alice, bob;
  alice.connect(server.port(), "alice");
  bob.connect(server.port(), "bob");
  alice.join("general");
  bob.join("general");

  auto kicked = admin_post(server, "/admin/rooms/general/kick", R"({"user":"bob","reason":"cool off"})");
  REQUIRE(kicked.status == 200);
  CHECK(body_of(kicked) == json{{"ok", true}, {"action", "kick"}, {"room", "general"}, {"user", "bob"}});
  auto left = bob.next_of_type("left");
  CHECK(left["room"] == "general");
  CHECK(left["reason"] == "kicked");
  auto told = alice.next_of_type("moderation");
  CHECK(told["action"] == "kick");
  CHECK(told["by"] == "admin");
  CHECK(told["reason"] == "cool off");
  CHECK(members_of(server, "general") == std::vector<std::string>{"alice"});

  // Only members can be kicked, and only in rooms that are in memory.
  CHECK(admin_post(server, "/admin/rooms/general/kick", R"({"user":"bob"})").status == 404);
  CHECK(admin_post(server, "/admin/rooms/nowhere/kick", R"({"user":"bob"})").status == 404);
  // A kick is no ban: bob may come back.
  CHECK(bob.join("general")["type"] == "joined");
}

TEST_CASE("an admin ban in a room removes the user and refuses the rejoin until the unban") {
  server_process server{with_token()};
  ws_client alice, bob;
  alice.connect(server.port(), "alice");
  bob.connect(server.port(), "bob");
  alice.join("general");
  bob.join("general");

  auto banned = admin_post(server, "/admin/rooms/general/ban", R"({"user":"bob","duration":600,"reason":"spam"})");
  REQUIRE(banned.status == 200);
  CHECK(body_of(banned)["until"].get<int64_t>() > 1'700'000'000'000);
  CHECK(bob.next_of_type("left")["reason"] == "banned");
  bob.send_json({{"type", "join"}, {"room", "general"}, {"ref", "again"}});
  auto refused = bob.next_of_type("error");
  CHECK(refused["code"] == "banned");
  CHECK(refused["until"].is_number());

  CHECK(admin_post(server, "/admin/rooms/general/unban", R"({"user":"bob"})").status == 200);
  CHECK(bob.join("general")["type"] == "joined");
  // A room that is neither in memory nor stored cannot be banned from.
  CHECK(admin_post(server, "/admin/rooms/never-used/ban", R"({"user":"bob"})").status == 404);
}

TEST_CASE("a server-wide admin ban closes the user's connections with 4403 and shows in the user's state") {
  server_process server{with_token()};
  ws_client mallory, alice;
  mallory.connect(server.port(), "mallory");
  alice.connect(server.port(), "alice");
  auto banned = admin_post(server, "/admin/ban", R"({"user":"mallory","reason":"abuse"})");
  REQUIRE(banned.status == 200);
  CHECK_FALSE(body_of(banned).contains("room"));
  auto closed = mallory.expect_close(2s);
  CHECK(closed.code == 4403);
  auto state = body_of(admin_get(server, "/admin/users/mallory"));
  CHECK(state["banned"] == true);
  CHECK_FALSE(state.contains("banned_until"));
  CHECK(admin_post(server, "/admin/unban", R"({"user":"mallory"})").status == 200);
  CHECK(body_of(admin_get(server, "/admin/users/mallory"))["banned"] == false);
  CHECK(alice.is_open());
}

TEST_CASE("a notice reaches every member of the room and nobody else, and is not kept in history") {
  server_process server{with_token()};
  ws_client alice, bob, carol;
  alice.connect(server.port(), "alice");
  bob.connect(server.port(), "bob");
  carol.connect(server.port(), "carol");
  alice.join("general");
  bob.join("general");
  carol.join("elsewhere");

  auto sent = admin_post(server, "/admin/rooms/general/notice", R"({"text":"restart at 10:00 UTC"})");
  REQUIRE(sent.status == 200);
  CHECK(body_of(sent) == json{{"ok", true}, {"room", "general"}, {"delivered", 2}});
  for (auto* member : {&alice, &bob}) {
    auto notice = member->next_of_type("notice");
    CHECK(notice["room"] == "general");
    CHECK(notice["text"] == "restart at 10:00 UTC");
    CHECK(notice["ts"].get<int64_t>() > 1'700'000'000'000);
    CHECK_FALSE(notice.contains("id"));
  }
  while (auto frame = carol.try_next(300ms))
    CHECK((*frame)["type"] != "notice");
  ws_client later;
  later.connect(server.port(), "later");
  CHECK(later.join("general")["history"].empty());

  CHECK(admin_post(server, "/admin/rooms/nowhere/notice", R"({"text":"hello"})").status == 404);
  CHECK(admin_post(server, "/admin/rooms/general/notice", R"({"text":""})").status == 400);
}

TEST_CASE("bad input gets a JSON error: malformed JSON 400, wrong method 405, unknown path 404, too large 413") {
  server_process server{with_token()};
  ws_client bob;
  bob.connect(server.port(), "bob");
  bob.join("general");
  auto malformed = admin_post(server, "/admin/rooms/general/kick", R"({"user":)");
  CHECK(malformed.status == 400);
  CHECK(body_of(malformed)["error"] == "bad_json");
  auto no_user = admin_post(server, "/admin/rooms/general/kick", R"({"reason":"x"})");
  CHECK(no_user.status == 400);
  CHECK(body_of(no_user)["error"] == "bad_field");
  CHECK(members_of(server, "general") == std::vector<std::string>{"bob"});

  auto method = http_request(server.admin_port(), "DELETE", "/admin/rooms", {}, bearer());
  CHECK(method.status == 405);
  CHECK(method.header("Allow") == "GET, HEAD");
  CHECK(http_request(server.admin_port(), "GET", "/admin/drain", {}, bearer()).status == 405);
  auto unknown = admin_get(server, "/admin/no-such-thing");
  CHECK(unknown.status == 404);
  CHECK(body_of(unknown)["error"] == "not_found");
  auto huge = admin_post(server, "/admin/rooms/general/notice", "{\"text\":\"" + filler(20000) + "\"}");
  CHECK(huge.status == 413);
  // The listener keeps answering after all that.
  CHECK(admin_get(server, "/admin/rooms").status == 200);
}

TEST_CASE("/readyz is 200 when up and 503 while draining") {
  server_process server{with_token()};
  auto up = readyz_until(server, 200);
  CHECK(up.status == 200);
  CHECK(up.body == "ready\n");
  auto drain = admin_post(server, "/admin/drain", R"({"period_ms":2000})");
  CHECK(drain.status == 202);
  CHECK(body_of(drain) == json{{"draining", true}, {"period_ms", 2000}});
  auto draining = http_get(server.admin_port(), "/readyz");
  CHECK(draining.status == 503);
  CHECK(draining.body.find("draining") != std::string::npos);
  CHECK(http_get(server.admin_port(), "/metrics").body.find("parley_draining 1") != std::string::npos);
  CHECK(admin_post(server, "/admin/drain", "").status == 409);
}

TEST_CASE("/readyz is 503 at the connection limit and 200 again below it") {
  server_options opts = with_token();
  opts.ini["limits.max_connections"] = "2";
  server_process server{opts};
  CHECK(readyz_until(server, 200).status == 200);
  ws_client a, b;
  a.connect(server.port(), "a");
  b.connect(server.port(), "b");
  auto full = readyz_until(server, 503);
  CHECK(full.status == 503);
  CHECK(full.body == "at connection limit (2 of 2)\n");
  b.close();
  CHECK(readyz_until(server, 200).status == 200);
}

TEST_CASE("an admin port that is taken stops the server with a clear error") {
  server_process first;
  server_options opts;
  opts.args = {"--admin.port=" + std::to_string(first.admin_port())};
  opts.expect_listening = false;
  server_process second{opts};
  auto status = second.wait_for_exit(10s);
  REQUIRE(status.has_value());
  CHECK(status->exited);
  CHECK(status->code != 0);
  CHECK(second.output().find("parley admin cannot listen on 127.0.0.1:" + std::to_string(first.admin_port()))
        != std::string::npos);
}

TEST_CASE("a token shorter than 16 bytes stops the server") {
  server_options opts;
  opts.ini["admin.token"] = "\"short\"";
  opts.expect_listening = false;
  server_process server{opts};
  auto status = server.wait_for_exit(10s);
  REQUIRE(status.has_value());
  CHECK(status->code == 1);
  CHECK(server.output().find("at least 16 bytes") != std::string::npos);
  CHECK(server.output().find("\"short\"") == std::string::npos);
}
