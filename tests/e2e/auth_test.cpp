// End-to-end: signing in with JSON Web Tokens ([auth] mode=jwt). A token at the handshake (as a
// subprotocol) or in a first auth frame; every refusal of the verifier answered with 401 before
// the upgrade, or with unauthenticated and close 4401 after it; expiry on a live connection with
// and without a refresh; room permissions by role and pattern; and `parley token`.

#include "harness.hpp"

#include "auth/jwt.hpp"

#include <doctest/doctest.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
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

/// A jwt-mode server on HS256 with `secret`; `extra` adds or replaces settings.
server_options jwt_server(std::map<std::string, std::string> extra = {}) {
  server_options opts;
  opts.ini["auth.mode"] = quoted("jwt");
  opts.ini["auth.secret"] = quoted(secret);
  opts.ini["auth.leeway"] = "0s";
  for (auto& [key, value] : extra)
    opts.ini[key] = value;
  return opts;
}

/// Claims of a token for `sub`, valid for the next hour unless changed.
token_claims claims_for(const std::string& sub, std::vector<std::string> roles = {}) {
  token_claims c;
  c.sub = sub;
  c.iat = unix_now();
  c.exp = unix_now() + 3600;
  c.roles = std::move(roles);
  return c;
}

std::string token_for(const std::string& sub, std::vector<std::string> roles = {}) {
  return sign_token(claims_for(sub, std::move(roles)), jwt_algorithm::hs256, secret);
}

/// What the server answers an upgrade request that offers `token` as its subprotocol: the head
/// only (a 101 keeps the connection open), or everything until the close (a refusal ends it).
raw_reply upgrade_with_token(uint16_t port, const std::string& token, bool until_close = false) {
  raw_connection conn{port};
  conn.send(raw_upgrade(port, "Sec-WebSocket-Protocol: parley.v1, parley.token." + token + "\r\n"));
  return until_close ? conn.read_until_close(5s) : conn.read_head(5s);
}

std::string base64url(std::string_view bytes) {
  static constexpr char alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    uint32_t n = (uint8_t(bytes[i]) << 16) | (uint8_t(bytes[i + 1]) << 8) | uint8_t(bytes[i + 2]);
    for (int k = 18; k >= 0; k -= 6)
      out += alphabet[(n >> k) & 63];
  }
  if (i + 1 == bytes.size()) {
    uint32_t n = uint8_t(bytes[i]) << 16;
    out += alphabet[(n >> 18) & 63];
    out += alphabet[(n >> 12) & 63];
  } else if (i + 2 == bytes.size()) {
    uint32_t n = (uint8_t(bytes[i]) << 16) | (uint8_t(bytes[i + 1]) << 8);
    out += alphabet[(n >> 18) & 63];
    out += alphabet[(n >> 12) & 63];
    out += alphabet[(n >> 6) & 63];
  }
  return out;
}

/// Runs a shell command; fails the test unless it succeeds.
void run(const std::string& command) {
  REQUIRE_MESSAGE(std::system(command.c_str()) == 0, "command failed: " << command);
}

/// What a command printed on stdout (its exit code in `rc`).
std::string capture(const std::string& command, int& rc) {
  std::string out;
  std::unique_ptr<FILE, int (*)(FILE*)> pipe{popen(command.c_str(), "r"), pclose};
  REQUIRE(pipe);
  std::array<char, 4096> chunk{};
  while (auto n = std::fread(chunk.data(), 1, chunk.size(), pipe.get()))
    out.append(chunk.data(), n);
  rc = pclose(pipe.release());
  return out;
}

} // namespace

TEST_CASE("a token offered as a subprotocol signs the client in as its sub before the upgrade") {
  server_process server{jwt_server()};
  auto claims = claims_for("alice", {"moderator"});
  claims.name = "Alice Liddell";
  ws_client alice;
  ws_connect_options opts;
  opts.token = sign_token(claims, jwt_algorithm::hs256, secret);
  auto welcome = alice.connect(server.port(), "alice", opts);
  CHECK(alice.protocol() == "parley.v1");
  CHECK(welcome["user"] == "alice");
  CHECK(welcome["name"] == "Alice Liddell");
  CHECK(welcome["roles"] == json::array({"moderator"}));
  CHECK(welcome["expires_at"] == *claims.exp * 1000);

  // The display name travels with every message; the user id stays the sender.
  alice.join("general");
  auto echo = alice.say("general", "hello", "c1");
  CHECK(echo["from"] == "alice");
  CHECK(echo["name"] == "Alice Liddell");
}

TEST_CASE("in jwt mode ?name= is ignored: who a client is comes from its token only") {
  server_process server{jwt_server()};
  ws_client client;
  ws_connect_options opts;
  opts.token = token_for("alice");
  client.connect(server.port(), "alice", opts);  // the harness checks the welcome names alice
  raw_connection conn{server.port()};
  conn.send(raw_get(server.port(), "/ws?name=mallory",
                    "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                    "Sec-WebSocket-Protocol: parley.v1, parley.token." + token_for("alice") + "\r\n"));
  auto head = conn.read_head(5s);
  CHECK(head.status == 101);
  CHECK(head.header("Sec-WebSocket-Protocol") == "parley.v1");
  CHECK(head.text.find("parley.token") == std::string::npos);  // never echoed
}

TEST_CASE("every refused token gets 401 before the upgrade, with the reason") {
  server_process server{jwt_server({{"auth.issuer", quoted("https://id.example")},
                                    {"auth.audience", quoted("parley")}})};
  auto good = claims_for("alice");
  good.iss = "https://id.example";
  good.aud = {"parley"};
  auto sign = [](const token_claims& c) { return sign_token(c, jwt_algorithm::hs256, secret); };
  REQUIRE(upgrade_with_token(server.port(), sign(good)).status == 101);

  auto expired = good;
  expired.exp = unix_now() - 10;
  auto no_exp = good;
  no_exp.exp.reset();
  auto early = good;
  early.nbf = unix_now() + 600;
  auto wrong_iss = good;
  wrong_iss.iss = "https://evil.example";
  auto wrong_aud = good;
  wrong_aud.aud = {"someone-else"};
  auto bad_sub = good;
  bad_sub.sub = "not a valid name!";
  auto valid = sign(good);
  auto header_end = valid.find('.');
  auto payload_end = valid.rfind('.');
  auto alg_none = base64url(R"({"alg":"none","typ":"JWT"})") + valid.substr(header_end, payload_end - header_end) + ".";
  auto tampered_claims = good;
  tampered_claims.sub = "admin";
  auto tampered_payload = sign(tampered_claims);
  auto tampered = valid.substr(0, header_end) +
                  tampered_payload.substr(tampered_payload.find('.'),
                                          tampered_payload.rfind('.') - tampered_payload.find('.')) +
                  valid.substr(payload_end);
  auto other_secret = sign_token(good, jwt_algorithm::hs256, secret + "-not-ours");

  const std::pair<const char*, std::string> refused[] = {
    {"expired", sign(expired)},          {"missing exp", sign(no_exp)},
    {"not yet valid", sign(early)},      {"wrong issuer", sign(wrong_iss)},
    {"wrong audience", sign(wrong_aud)}, {"invalid sub", sign(bad_sub)},
    {"alg none", alg_none},              {"tampered payload", tampered},
    {"another secret", other_secret},    {"garbage", "not.a.token"},
  };
  for (const auto& [what, token] : refused) {
    CAPTURE(what);
    auto reply = upgrade_with_token(server.port(), token, true);
    CHECK(reply.status == 401);
    CHECK(reply.header("WWW-Authenticate").find("invalid_token") != std::string::npos);
    CHECK(reply.text.find("token refused") != std::string::npos);
  }
}

TEST_CASE("an HS256 token made with the server's RSA public key as its secret is refused") {
  scratch_dir keys;
  run("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out " + keys.file("key.pem") +
      " 2>/dev/null");
  run("openssl pkey -in " + keys.file("key.pem") + " -pubout -out " + keys.file("pub.pem"));
  server_process server{jwt_server({{"auth.algorithm", quoted("RS256")},
                                    {"auth.secret", quoted("")},
                                    {"auth.public_key", quoted(keys.file("pub.pem"))}})};
  std::ifstream in{keys.file("pub.pem")};
  std::string public_pem{std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{}};
  std::ifstream key_in{keys.file("key.pem")};
  std::string private_pem{std::istreambuf_iterator<char>{key_in}, std::istreambuf_iterator<char>{}};

  auto confused = sign_token(claims_for("alice", {"admin"}), jwt_algorithm::hs256, public_pem);
  CHECK(upgrade_with_token(server.port(), confused).status == 401);
  auto honest = sign_token(claims_for("alice"), jwt_algorithm::rs256, private_pem);
  CHECK(upgrade_with_token(server.port(), honest).status == 101);
}

TEST_CASE("a first auth frame signs in; until then nothing else is accepted") {
  server_process server{jwt_server({{"auth.auth_timeout", "1s"}})};

  ws_client alice;
  ws_connect_options quiet;
  quiet.expect_welcome = false;
  quiet.no_name = true;
  alice.connect(server.port(), "alice", quiet);
  alice.send_json({{"type", "auth"}, {"token", token_for("alice")}, {"ref", 1}});
  auto welcome = alice.next_of_type("welcome");
  CHECK(welcome["user"] == "alice");
  alice.join("general");

  ws_client eager;
  eager.connect(server.port(), "eager", quiet);
  eager.send_json({{"type", "join"}, {"room", "general"}, {"ref", 7}});
  auto error = eager.next_of_type("error");
  CHECK(error["code"] == "unauthenticated");
  CHECK(error["ref"] == 7);
  auto end = eager.expect_close();
  CHECK(end.code == 4401);

  ws_client forger;
  forger.connect(server.port(), "forger", quiet);
  forger.send_json({{"type", "auth"}, {"token", token_for("alice") + "x"}});
  CHECK(forger.next_of_type("error")["code"] == "unauthenticated");
  CHECK(forger.expect_close().code == 4401);

  ws_client silent;
  silent.connect(server.port(), "silent", quiet);
  auto start = std::chrono::steady_clock::now();
  auto late = silent.next_of_type("error", 5s);
  CHECK(late["code"] == "unauthenticated");
  CHECK(silent.expect_close().code == 4401);
  CHECK(elapsed_ms(start) >= 800);
}

TEST_CASE("a token that expires on a live connection: refreshed it keeps going, unrefreshed it closes with 4408") {
  server_process server{jwt_server({{"auth.refresh_grace", "2s"}})};
  auto short_lived = [](const std::string& sub) {
    auto c = claims_for(sub);
    c.exp = unix_now() + 2;
    return sign_token(c, jwt_algorithm::hs256, secret);
  };

  ws_client alice;
  ws_connect_options opts;
  opts.token = short_lived("alice");
  alice.connect(server.port(), "alice", opts);
  alice.join("general");
  auto asked = alice.next_of_type("error", 6s);
  CHECK(asked["code"] == "token_expired");
  // Until the refresh, other commands are refused (and the room membership stays).
  alice.send_json({{"type", "send"}, {"room", "general"}, {"text", "too late"}, {"ref", 2}});
  CHECK(alice.next_of_type("error")["code"] == "token_expired");
  // Someone else's token does not refresh this connection.
  alice.send_json({{"type", "refresh"}, {"token", token_for("bob")}, {"ref", 3}});
  CHECK(alice.next_of_type("error")["code"] == "forbidden");
  alice.send_json({{"type", "refresh"}, {"token", token_for("alice", {"moderator"})}, {"ref", 4}});
  auto refreshed = alice.next_of_type("refreshed");
  CHECK(refreshed["ref"] == 4);
  CHECK(refreshed["roles"] == json::array({"moderator"}));
  CHECK(refreshed["expires_at"].get<int64_t>() > unix_now() * 1000);
  alice.say("general", "still here", "c2", 5s);
  CHECK_FALSE(alice.try_next(3s).has_value());  // no close after the old grace

  ws_client bob;
  opts.token = short_lived("bob");
  bob.connect(server.port(), "bob", opts);
  CHECK(bob.next_of_type("error", 6s)["code"] == "token_expired");
  auto start = std::chrono::steady_clock::now();
  auto end = bob.expect_close(6s);
  CHECK(end.code == 4408);
  CHECK(elapsed_ms(start) >= 1500);
}

TEST_CASE("room permissions follow roles and room patterns from the configuration") {
  server_process server{jwt_server({{"auth.room_rules",
                                     R"(["announcements post=moderator", "team-* join=listed post=listed"])"}})};
  auto connect = [&](ws_client& c, const std::string& sub, std::vector<std::string> roles,
                     std::vector<std::string> rooms = {}) {
    auto claims = claims_for(sub, std::move(roles));
    claims.rooms = std::move(rooms);
    ws_connect_options opts;
    opts.token = sign_token(claims, jwt_algorithm::hs256, secret);
    c.connect(server.port(), sub, opts);
  };
  ws_client mod, member, reader, insider;
  connect(mod, "mod", {"moderator"});
  connect(member, "member", {});
  connect(reader, "reader", {"readonly"});
  connect(insider, "insider", {}, {"team-red"});

  // Announcements: everyone joins, only moderators post.
  mod.join("announcements");
  member.join("announcements");
  mod.say("announcements", "welcome", "a1");
  member.send_json({{"type", "send"}, {"room", "announcements"}, {"text", "me too"}, {"ref", 1}});
  auto refused = member.next_of_type("error");
  CHECK(refused["code"] == "forbidden");
  CHECK(refused["ref"] == 1);

  // Readonly users read but never post.
  reader.join("general");
  reader.send_json({{"type", "send"}, {"room", "general"}, {"text", "hi"}, {"ref", 2}});
  CHECK(reader.next_of_type("error")["code"] == "forbidden");

  // Private rooms: only users whose token lists the room.
  insider.join("team-red");
  insider.say("team-red", "secret plans", "t1");
  member.send_json({{"type", "join"}, {"room", "team-red"}, {"ref", 3}});
  CHECK(member.next_of_type("error")["code"] == "forbidden");
  insider.send_json({{"type", "join"}, {"room", "team-blue"}, {"ref", 4}});
  CHECK(insider.next_of_type("error")["code"] == "forbidden");
}

TEST_CASE("parley token prints a token the server accepts") {
  scratch_dir dir;
  auto config = dir.file("token.ini");
  {
    std::ofstream out{config};
    out << "[auth]\nmode=\"jwt\"\nsecret=\"" << secret << "\"\n";
  }
  int rc = -1;
  auto out = capture(std::string{PARLEY_BINARY} + " token --config " + config +
                       " --sub carol --role moderator --name Carol --ttl 1h",
                     rc);
  REQUIRE(rc == 0);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r'))
    out.pop_back();
  server_process server{jwt_server()};
  ws_client carol;
  ws_connect_options opts;
  opts.token = out;
  auto welcome = carol.connect(server.port(), "carol", opts);
  CHECK(welcome["roles"] == json::array({"moderator"}));
  CHECK(welcome["name"] == "Carol");
  CHECK(welcome["expires_at"].get<int64_t>() / 1000 - unix_now() > 3500);
}

TEST_CASE("open mode warns that names are not verified and keeps ?name=") {
  server_process server;
  CHECK(server.output().find("[auth] mode is open") != std::string::npos);
  ws_client a, b;
  a.connect(server.port(), "alice");
  b.connect(server.port(), "alice");  // two claims of one name: open mode cannot tell them apart

  // No ?name= at all: a guest name. An empty one is an invalid name, refused with 4001.
  ws_connect_options quiet;
  quiet.expect_welcome = false;
  ws_client guest;
  quiet.no_name = true;
  guest.connect(server.port(), "", quiet);
  CHECK(guest.next_of_type("welcome")["user"].get<std::string>().rfind("guest-", 0) == 0);
  ws_client empty;
  quiet.no_name = false;
  empty.connect(server.port(), "", quiet);
  CHECK(empty.next_of_type("error")["code"] == "invalid_name");
  CHECK(empty.expect_close().code == 4001);
}
