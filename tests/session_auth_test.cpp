// The session actor in jwt mode on the deterministic scheduler, with the real store, directory,
// rooms and presence tracker: signing in with an auth frame, token expiry and refresh, room
// permissions, and moderation (kick, ban, mute, delete, server-wide bans) through the session.
//
// Tokens are signed with HS256 for real. Expiry is computed by the session from the real clock
// (auth::unix_now), while its timers run on virtual time: a token with exp = now + n expires once
// virtual time has advanced n seconds.

#include "actor_fixture.hpp"

#include "actors/directory.hpp"
#include "actors/presence.hpp"
#include "actors/session.hpp"
#include "actors/supervisor.hpp"
#include "auth/jwt.hpp"
#include "protocol/codec.hpp"

#include <caf/stateful_actor.hpp>

using namespace parley;
using namespace parley::testing;
using namespace std::chrono_literals;

namespace {

const std::string secret = "0123456789abcdef0123456789abcdef-parley-test";

struct client {
  session_actor handle;
  std::shared_ptr<recording_sink> sink;
};

/// Milliseconds since the Unix epoch, by the real clock (as bans and mutes use).
int64_t real_now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

struct auth_fixture : fixture {
  supervisor_actor sup;
  std::shared_ptr<presence_memory> presence_mem = std::make_shared<presence_memory>(caf::timespan{5s});
  presence_actor tracker;
  session_config cfg;

  ~auth_fixture() {
    caf::anon_send(sup, stop_atom::value);
    run();
  }

  auth_fixture() {
    spawn_store();
    sup = spawn(supervisor, supervisor_settings{}, uint64_t{1}, [](const std::string&) {});
    tracker = spawn(presence, presence_mem);
    spawn(directory, std::make_shared<directory_memory>(), sup, room_config{});
    auth::verifier_settings vs;
    vs.algorithm = auth::jwt_algorithm::hs256;
    vs.secret = secret;
    cfg.verifier = std::make_shared<const auth::jwt_verifier>(vs);
    cfg.auth_timeout = 5s;
    cfg.refresh_grace = 30s;
    run();
  }

  /// A token for `sub` with these roles (none: the claim is left out), expiring in `ttl` seconds.
  static std::string token(const std::string& sub, std::vector<std::string> roles = {},
                           int64_t ttl = 3600, std::vector<std::string> rooms = {}) {
    auth::token_claims claims;
    claims.sub = sub;
    claims.exp = auth::unix_now() + ttl;
    claims.roles = std::move(roles);
    claims.rooms = std::move(rooms);
    return auth::sign_token(claims, auth::jwt_algorithm::hs256, secret);
  }

  /// A connection that came without a token: the session waits for an auth frame.
  client open() {
    client c{session_actor{}, std::make_shared<recording_sink>()};
    c.handle = spawn(session, frame_sink_ptr{c.sink}, std::optional<auth::identity>{}, std::make_shared<const session_config>(cfg));
    run();
    return c;
  }

  /// A connection signed in with an auth frame; its welcome is taken.
  client sign_in(const std::string& sub, std::vector<std::string> roles = {},
                 std::vector<std::string> rooms = {}) {
    auto c = open();
    send(c, R"({"type":"auth","token":")" + token(sub, std::move(roles), 3600, std::move(rooms)) + R"("})");
    auto welcome = c.sink->take("welcome");
    REQUIRE(welcome.size() == 1);
    return c;
  }

  void send(client& c, const std::string& json) {
    caf::anon_send(c.handle, inbound_atom::value, protocol::decode(json, protocol::codec_limits{}));
    run();
  }

  /// Joins `room` and drops what the join wrote.
  void join(client& c, const std::string& room) {
    send(c, R"({"type":"join","room":")" + room + R"("})");
    REQUIRE(c.sink->take("joined").size() == 1);
  }

  /// The single error frame recorded since the last take (fails the test otherwise).
  nlohmann::json only_error(client& c) {
    auto errors = c.sink->take("error");
    REQUIRE(errors.size() == 1);
    return errors[0];
  }
};

} // namespace

// -- signing in ----------------------------------------------------------------------------------

TEST_CASE_FIXTURE(auth_fixture, "without a handshake identity the session sends nothing until an auth frame") {
  auto c = open();
  advance(4s);
  CHECK(c.sink->size() == 0);
  CHECK(c.sink->close_code() == 0);
  CHECK(presence_mem->sessions.empty());
}

TEST_CASE_FIXTURE(auth_fixture, "a good auth frame gets welcome with user, roles and expires_at in ms") {
  auto c = open();
  auto tok = token("alice", {"moderator"}, 600);
  auto exp = auth::unix_now() + 600;
  send(c, R"({"type":"auth","token":")" + tok + R"(","ref":"a1"})");
  auto frames = c.sink->take();
  REQUIRE(frames.size() == 1);
  CHECK(frames[0]["type"] == "welcome");
  CHECK(frames[0]["user"] == "alice");
  CHECK(frames[0]["roles"] == std::vector<std::string>{"moderator"});
  auto expires_at = frames[0]["expires_at"].get<int64_t>();
  CHECK(expires_at % 1000 == 0);
  CHECK(expires_at / 1000 >= exp - 1);
  CHECK(expires_at / 1000 <= exp);
  CHECK(c.sink->close_code() == 0);
  CHECK(presence_mem->session_count.count("alice") == 1);
  // Signed in: commands work, and the auth timeout no longer applies.
  advance(10s);
  send(c, R"({"type":"ping","ref":2})");
  CHECK(c.sink->take("pong").size() == 1);
  CHECK(c.sink->close_code() == 0);
}

TEST_CASE_FIXTURE(auth_fixture, "a token without a roles claim signs in as member") {
  auto c = open();
  send(c, R"({"type":"auth","token":")" + token("alice") + R"("})");
  auto welcome = c.sink->take("welcome");
  REQUIRE(welcome.size() == 1);
  CHECK(welcome[0]["roles"] == std::vector<std::string>{"member"});
}

TEST_CASE_FIXTURE(auth_fixture, "a non-auth first frame gets error unauthenticated and close 4401") {
  auto c = open();
  send(c, R"({"type":"join","room":"general","ref":"j1"})");
  auto err = only_error(c);
  CHECK(err["code"] == "unauthenticated");
  CHECK(err["ref"] == "j1");
  CHECK(c.sink->close_code() == close_code::unauthenticated);
  CHECK(presence_mem->sessions.empty());
  // Closed: nothing after it is answered, not even a good auth frame.
  send(c, R"({"type":"auth","token":")" + token("alice") + R"("})");
  CHECK(c.sink->size() == 0);
}

TEST_CASE_FIXTURE(auth_fixture, "an auth frame with a bad token gets error unauthenticated and close 4401") {
  SUBCASE("signed with another secret") {
    auth::token_claims claims;
    claims.sub = "alice";
    claims.exp = auth::unix_now() + 600;
    auto forged = auth::sign_token(claims, auth::jwt_algorithm::hs256,
                                   "another-secret-of-at-least-32-bytes-length");
    auto c = open();
    send(c, R"({"type":"auth","token":")" + forged + R"("})");
    auto err = only_error(c);
    CHECK(err["code"] == "unauthenticated");
    CHECK(err["message"].get<std::string>().find("signature") != std::string::npos);
    CHECK(c.sink->close_code() == close_code::unauthenticated);
  }
  SUBCASE("expired beyond the leeway") {
    auto c = open();
    send(c, R"({"type":"auth","token":")" + token("alice", {}, -120) + R"("})");
    auto err = only_error(c);
    CHECK(err["code"] == "unauthenticated");
    CHECK(err["message"].get<std::string>().find("expired") != std::string::npos);
    CHECK(c.sink->close_code() == close_code::unauthenticated);
  }
  SUBCASE("not a token at all") {
    auto c = open();
    send(c, R"({"type":"auth","token":"abc.def.ghi"})");
    CHECK(only_error(c)["code"] == "unauthenticated");
    CHECK(c.sink->close_code() == close_code::unauthenticated);
  }
  CHECK(presence_mem->sessions.empty());
}

TEST_CASE_FIXTURE(auth_fixture, "no auth frame within auth_timeout gets unauthenticated and close 4401") {
  auto c = open();
  advance(4s);
  CHECK(c.sink->size() == 0);
  advance(1s);
  auto err = only_error(c);
  CHECK(err["code"] == "unauthenticated");
  CHECK(err["ref"].is_null());
  CHECK(c.sink->close_code() == close_code::unauthenticated);
}

TEST_CASE_FIXTURE(auth_fixture, "a session signed in with a handshake identity is welcomed at once") {
  auto result = cfg.verifier->verify(token("alice", {"admin"}), auth::unix_now());
  REQUIRE(result);
  client c{session_actor{}, std::make_shared<recording_sink>()};
  c.handle = spawn(session, frame_sink_ptr{c.sink}, result.who, std::make_shared<const session_config>(cfg));
  run();
  auto welcome = c.sink->take("welcome");
  REQUIRE(welcome.size() == 1);
  CHECK(welcome[0]["user"] == "alice");
  CHECK(welcome[0]["roles"] == std::vector<std::string>{"admin"});
  advance(10s);
  CHECK(c.sink->close_code() == 0);
}

TEST_CASE_FIXTURE(auth_fixture, "an auth frame after signing in is refused and the session goes on") {
  auto c = sign_in("alice");
  send(c, R"({"type":"auth","token":")" + token("bob") + R"("})");
  CHECK(only_error(c)["code"] == "bad_field");
  CHECK(c.sink->close_code() == 0);
  send(c, R"({"type":"join","room":"general"})");
  auto joined = c.sink->take("joined");
  REQUIRE(joined.size() == 1);
}

// -- expiry and refresh --------------------------------------------------------------------------

TEST_CASE_FIXTURE(auth_fixture, "when the token expires the session sends error token_expired, once") {
  auto c = open();
  send(c, R"({"type":"auth","token":")" + token("alice", {}, 10) + R"("})");
  REQUIRE(c.sink->take("welcome").size() == 1);
  advance(5s);
  CHECK(c.sink->size() == 0);
  advance(5s);
  auto err = only_error(c);
  CHECK(err["code"] == "token_expired");
  CHECK(err["ref"].is_null());
  CHECK(c.sink->close_code() == 0);
  advance(10s);
  CHECK(c.sink->size() == 0);
}

TEST_CASE_FIXTURE(auth_fixture, "a token that expires in a thousand years is not taken for expired") {
  // Its exp in nanoseconds would overflow a timer: the session watches it a day at a time.
  auto c = open();
  send(c, R"({"type":"auth","token":")" + token("alice", {}, int64_t{1000} * 365 * 24 * 3600) + R"("})");
  REQUIRE(c.sink->take("welcome").size() == 1);
  advance(1s);
  CHECK(c.sink->take("error").empty());
  advance(std::chrono::hours(24 * 3 + 1));
  CHECK(c.sink->take("error").empty());
  CHECK(c.sink->close_code() == 0);
}

TEST_CASE_FIXTURE(auth_fixture, "after expiry every command but refresh gets token_expired") {
  auto c = open();
  send(c, R"({"type":"auth","token":")" + token("alice", {}, 2) + R"("})");
  REQUIRE(c.sink->take("welcome").size() == 1);
  advance(2s);
  CHECK(only_error(c)["code"] == "token_expired");
  for (auto cmd : {R"({"type":"ping","ref":"p"})", R"({"type":"join","room":"general","ref":"p"})",
                   R"({"type":"send","room":"general","text":"hi","ref":"p"})"}) {
    send(c, cmd);
    auto err = only_error(c);
    CHECK(err["code"] == "token_expired");
    CHECK(err["ref"] == "p");
  }
  CHECK(c.sink->close_code() == 0);
}

TEST_CASE_FIXTURE(auth_fixture, "a refresh after expiry answers refreshed with the new roles and the grace ends without a close") {
  auto c = open();
  send(c, R"({"type":"auth","token":")" + token("alice", {}, 2) + R"("})");
  REQUIRE(c.sink->take("welcome").size() == 1);
  advance(2s);
  CHECK(only_error(c)["code"] == "token_expired");
  auto exp = auth::unix_now() + 3600;
  send(c, R"({"type":"refresh","token":")" + token("alice", {"moderator"}, 3600) + R"(","ref":"r1"})");
  auto refreshed = c.sink->take("refreshed");
  REQUIRE(refreshed.size() == 1);
  CHECK(refreshed[0]["ref"] == "r1");
  CHECK(refreshed[0]["roles"] == std::vector<std::string>{"moderator"});
  CHECK(refreshed[0]["expires_at"].get<int64_t>() / 1000 >= exp - 1);
  // The grace deadline of the expired token passes and does nothing.
  advance(30s);
  advance(30s);
  CHECK(c.sink->size() == 0);
  CHECK(c.sink->close_code() == 0);
  send(c, R"({"type":"ping","ref":1})");
  CHECK(c.sink->take("pong").size() == 1);
}

TEST_CASE_FIXTURE(auth_fixture, "a refresh before expiry replaces the token and the old expiry does nothing") {
  auto c = open();
  send(c, R"({"type":"auth","token":")" + token("alice", {}, 10) + R"("})");
  REQUIRE(c.sink->take("welcome").size() == 1);
  send(c, R"({"type":"refresh","token":")" + token("alice", {}, 3600) + R"("})");
  REQUIRE(c.sink->take("refreshed").size() == 1);
  advance(10s);
  advance(30s);
  CHECK(c.sink->size() == 0);
  CHECK(c.sink->close_code() == 0);
}

TEST_CASE_FIXTURE(auth_fixture, "the refreshed roles decide what the session may do next") {
  auto alice = sign_in("alice");
  auto bob = sign_in("bob");
  join(alice, "general");
  join(bob, "general");
  send(alice, R"({"type":"kick","room":"general","user":"bob"})");
  CHECK(only_error(alice)["code"] == "forbidden");
  send(alice, R"({"type":"refresh","token":")" + token("alice", {"moderator"}) + R"("})");
  REQUIRE(alice.sink->take("refreshed").size() == 1);
  send(alice, R"({"type":"kick","room":"general","user":"bob"})");
  CHECK(alice.sink->take("moderated").size() == 1);
}

TEST_CASE_FIXTURE(auth_fixture, "a refresh for another user is refused with forbidden and the token stays expired") {
  auto c = open();
  send(c, R"({"type":"auth","token":")" + token("alice", {}, 2) + R"("})");
  REQUIRE(c.sink->take("welcome").size() == 1);
  advance(2s);
  CHECK(only_error(c)["code"] == "token_expired");
  send(c, R"({"type":"refresh","token":")" + token("mallory", {"admin"}) + R"(","ref":"r"})");
  auto err = only_error(c);
  CHECK(err["code"] == "forbidden");
  CHECK(err["ref"] == "r");
  send(c, R"({"type":"ping"})");
  CHECK(only_error(c)["code"] == "token_expired");
  advance(30s);
  CHECK(only_error(c)["code"] == "token_expired");
  CHECK(c.sink->close_code() == close_code::reauthenticate);
}

TEST_CASE_FIXTURE(auth_fixture, "a refresh with a bad token is refused with unauthenticated and the grace runs on") {
  auto c = open();
  send(c, R"({"type":"auth","token":")" + token("alice", {}, 2) + R"("})");
  REQUIRE(c.sink->take("welcome").size() == 1);
  advance(2s);
  CHECK(only_error(c)["code"] == "token_expired");
  send(c, R"({"type":"refresh","token":"abc.def.ghi"})");
  CHECK(only_error(c)["code"] == "unauthenticated");
  CHECK(c.sink->close_code() == 0);
  advance(30s);
  CHECK(c.sink->close_code() == close_code::reauthenticate);
}

TEST_CASE_FIXTURE(auth_fixture, "no refresh within refresh_grace closes with 4408") {
  auto c = open();
  send(c, R"({"type":"auth","token":")" + token("alice", {}, 2) + R"("})");
  REQUIRE(c.sink->take("welcome").size() == 1);
  advance(2s);
  CHECK(only_error(c)["code"] == "token_expired");
  advance(29s);
  CHECK(c.sink->size() == 0);
  CHECK(c.sink->close_code() == 0);
  advance(1s);
  auto err = only_error(c);
  CHECK(err["code"] == "token_expired");
  CHECK(c.sink->close_code() == close_code::reauthenticate);
  // Closed: a late refresh is not answered.
  send(c, R"({"type":"refresh","token":")" + token("alice") + R"("})");
  CHECK(c.sink->size() == 0);
}

// -- permissions ---------------------------------------------------------------------------------

TEST_CASE_FIXTURE(auth_fixture, "a readonly user joins and reads but a send is refused with forbidden") {
  auto reader = sign_in("rita", {"readonly"});
  auto writer = sign_in("walt");
  join(reader, "general");
  join(writer, "general");
  send(reader, R"({"type":"send","room":"general","text":"hello","ref":"s1"})");
  auto err = only_error(reader);
  CHECK(err["code"] == "forbidden");
  CHECK(err["ref"] == "s1");
  CHECK(writer.sink->take("message").empty());
  send(writer, R"({"type":"send","room":"general","text":"hello"})");
  CHECK(reader.sink->take("message").size() == 1);
}

TEST_CASE_FIXTURE(auth_fixture, "a readonly user's typing reaches nobody and costs no error") {
  auto reader = sign_in("rita", {"readonly"});
  auto writer = sign_in("walt");
  join(reader, "general");
  join(writer, "general");
  writer.sink->take();
  send(reader, R"({"type":"typing","room":"general"})");
  CHECK(writer.sink->take("typing").empty());
  CHECK(reader.sink->take("error").empty());
  send(writer, R"({"type":"typing","room":"general"})");
  CHECK(reader.sink->take("typing").size() == 1);
}

TEST_CASE_FIXTURE(auth_fixture, "with announcements post=moderator only moderators post there") {
  cfg.permissions = std::make_shared<const auth::room_permissions>(
    std::vector<std::string>{"announcements post=moderator"});
  auto member = sign_in("mia");
  auto mod = sign_in("max", {"moderator"});
  join(member, "announcements");
  join(mod, "announcements");
  send(member, R"({"type":"send","room":"announcements","text":"me too"})");
  CHECK(only_error(member)["code"] == "forbidden");
  send(mod, R"({"type":"send","room":"announcements","text":"news"})");
  auto got = member.sink->take("message");
  REQUIRE(got.size() == 1);
  CHECK(got[0]["text"] == "news");
  // Elsewhere the defaults hold.
  join(member, "general");
  send(member, R"({"type":"send","room":"general","text":"hi"})");
  CHECK(member.sink->take("message").size() == 1);
}

TEST_CASE_FIXTURE(auth_fixture, "with team-* join=listed only users whose token lists the room join it") {
  cfg.permissions = std::make_shared<const auth::room_permissions>(
    std::vector<std::string>{"team-* join=listed post=listed"});
  auto red = sign_in("rob", {}, {"team-red"});
  join(red, "team-red");
  send(red, R"({"type":"join","room":"team-blue","ref":"j"})");
  auto err = only_error(red);
  CHECK(err["code"] == "forbidden");
  CHECK(err["ref"] == "j");
  CHECK(red.sink->take("joined").empty());
  auto outsider = sign_in("oscar", {"moderator"});
  send(outsider, R"({"type":"join","room":"team-red"})");
  CHECK(only_error(outsider)["code"] == "forbidden");
  auto boss = sign_in("ada", {"admin"});
  join(boss, "team-red");
}

TEST_CASE_FIXTURE(auth_fixture, "a refresh that drops a listed room keeps the membership but stops posting there") {
  cfg.permissions = std::make_shared<const auth::room_permissions>(
    std::vector<std::string>{"team-* join=listed post=listed"});
  auto c = sign_in("rob", {}, {"team-red"});
  join(c, "team-red");
  send(c, R"({"type":"refresh","token":")" + token("rob") + R"("})");
  REQUIRE(c.sink->take("refreshed").size() == 1);
  send(c, R"({"type":"send","room":"team-red","text":"still here?"})");
  CHECK(only_error(c)["code"] == "forbidden");
}

// -- moderation in a room ------------------------------------------------------------------------

namespace {

/// A moderator, a member and a bystander in "general".
struct moderation_fixture : auth_fixture {
  client mod = sign_in("max", {"moderator"});
  client bob = sign_in("bob");
  client carol = sign_in("carol");

  moderation_fixture() {
    join(mod, "general");
    join(bob, "general");
    join(carol, "general");
    advance(1s);  // the presence diffs of the joins go out
    mod.sink->take();
    bob.sink->take();
    carol.sink->take();
  }
};

} // namespace

TEST_CASE_FIXTURE(moderation_fixture, "a member's kick is refused with forbidden and nobody leaves") {
  send(bob, R"({"type":"kick","room":"general","user":"carol","ref":"k"})");
  auto err = only_error(bob);
  CHECK(err["code"] == "forbidden");
  CHECK(err["ref"] == "k");
  CHECK(carol.sink->take("left").empty());
  CHECK(carol.sink->take().empty());
  send(carol, R"({"type":"send","room":"general","text":"still here"})");
  CHECK(bob.sink->take("message").size() == 1);
}

TEST_CASE_FIXTURE(moderation_fixture, "a moderator's kick answers moderated, removes the user with left kicked and tells the room") {
  send(mod, R"({"type":"kick","room":"general","user":"bob","reason":"spam","ref":"k1"})");
  auto answer = mod.sink->take("moderated");
  REQUIRE(answer.size() == 1);
  CHECK(answer[0]["action"] == "kick");
  CHECK(answer[0]["room"] == "general");
  CHECK(answer[0]["user"] == "bob");
  CHECK(answer[0]["ref"] == "k1");
  auto left = bob.sink->take("left");
  REQUIRE(left.size() == 1);
  CHECK(left[0]["room"] == "general");
  CHECK(left[0]["reason"] == "kicked");
  auto told = carol.sink->take("moderation");
  REQUIRE(told.size() == 1);
  CHECK(told[0]["action"] == "kick");
  CHECK(told[0]["user"] == "bob");
  CHECK(told[0]["by"] == "max");
  CHECK(told[0]["reason"] == "spam");
  // bob is no member any more, and no longer receives the room's messages.
  send(bob, R"({"type":"send","room":"general","text":"hey"})");
  CHECK(only_error(bob)["code"] == "not_member");
  send(carol, R"({"type":"send","room":"general","text":"bye bob"})");
  CHECK(bob.sink->take("message").empty());
  // A kick is no ban: bob may come back.
  join(bob, "general");
}

TEST_CASE_FIXTURE(moderation_fixture, "a kicked user leaves the room's presence at the next diff") {
  send(mod, R"({"type":"kick","room":"general","user":"bob"})");
  carol.sink->take();
  advance(1s);
  auto diffs = carol.sink->take("presence_diff");
  REQUIRE(diffs.size() == 1);
  CHECK(diffs[0]["leaves"] == std::vector<std::string>{"bob"});
}

TEST_CASE_FIXTURE(moderation_fixture, "a banned user's sessions get left banned and a join is refused with banned and until") {
  auto bob2 = sign_in("bob");
  join(bob2, "general");
  auto before = real_now_ms();
  send(mod, R"({"type":"ban","room":"general","user":"bob","duration":60,"ref":"b1"})");
  auto after = real_now_ms();
  auto answer = mod.sink->take("moderated");
  REQUIRE(answer.size() == 1);
  CHECK(answer[0]["action"] == "ban");
  CHECK(answer[0]["ref"] == "b1");
  for (auto* c : {&bob, &bob2}) {
    auto left = c->sink->take("left");
    REQUIRE(left.size() == 1);
    CHECK(left[0]["reason"] == "banned");
  }
  auto told = carol.sink->take("moderation");
  REQUIRE(told.size() == 1);
  CHECK(told[0]["action"] == "ban");
  auto until = told[0]["until"].get<int64_t>();
  CHECK(until >= before + 60'000);
  CHECK(until <= after + 60'000);
  send(bob, R"({"type":"join","room":"general","ref":"j"})");
  auto err = only_error(bob);
  CHECK(err["code"] == "banned");
  CHECK(err["ref"] == "j");
  CHECK(err["until"] == until);
  CHECK(bob.sink->take("joined").empty());
  // A room ban closes nothing: the connection goes on, and other rooms are open.
  CHECK(bob.sink->close_code() == 0);
  join(bob, "other");
}

TEST_CASE_FIXTURE(moderation_fixture, "a ban without duration refuses joins with banned and no until") {
  send(mod, R"({"type":"ban","room":"general","user":"bob"})");
  REQUIRE(mod.sink->take("moderated").size() == 1);
  send(bob, R"({"type":"join","room":"general"})");
  auto err = only_error(bob);
  CHECK(err["code"] == "banned");
  CHECK_FALSE(err.contains("until"));
}

TEST_CASE_FIXTURE(moderation_fixture, "an unban lets the user join again") {
  send(mod, R"({"type":"ban","room":"general","user":"bob"})");
  send(mod, R"({"type":"unban","room":"general","user":"bob"})");
  CHECK(mod.sink->take("moderated").size() == 2);
  join(bob, "general");
}

TEST_CASE_FIXTURE(moderation_fixture, "a muted user's send is refused with muted and until, and the user stays a member") {
  auto before = real_now_ms();
  send(mod, R"({"type":"mute","room":"general","user":"bob","duration":60,"ref":"m1"})");
  auto answer = mod.sink->take("moderated");
  REQUIRE(answer.size() == 1);
  CHECK(answer[0]["action"] == "mute");
  CHECK(answer[0]["ref"] == "m1");
  auto told = carol.sink->take("moderation");
  REQUIRE(told.size() == 1);
  CHECK(told[0]["action"] == "mute");
  CHECK(bob.sink->take("left").empty());
  send(bob, R"({"type":"send","room":"general","text":"let me talk","ref":"s"})");
  auto err = only_error(bob);
  CHECK(err["code"] == "muted");
  CHECK(err["ref"] == "s");
  CHECK(err["until"].get<int64_t>() >= before + 60'000);
  CHECK(carol.sink->take("message").empty());
  // Still a member: bob reads what others post.
  send(carol, R"({"type":"send","room":"general","text":"quiet now"})");
  CHECK(bob.sink->take("message").size() == 1);
  carol.sink->take();
  send(mod, R"({"type":"unmute","room":"general","user":"bob"})");
  send(bob, R"({"type":"send","room":"general","text":"thanks"})");
  CHECK(carol.sink->take("message").size() == 1);
}

TEST_CASE_FIXTURE(moderation_fixture, "a muted user's typing is not relayed") {
  send(mod, R"({"type":"mute","room":"general","user":"bob"})");
  carol.sink->take();
  send(bob, R"({"type":"typing","room":"general"})");
  CHECK(carol.sink->take("typing").empty());
  send(mod, R"({"type":"unmute","room":"general","user":"bob"})");
  advance(3s);  // past the room's typing interval
  send(bob, R"({"type":"typing","room":"general"})");
  CHECK(carol.sink->take("typing").size() == 1);
}

TEST_CASE_FIXTURE(moderation_fixture, "a delete turns the message into a tombstone in the room's history") {
  send(bob, R"({"type":"send","room":"general","text":"oops"})");
  send(bob, R"({"type":"send","room":"general","text":"fine"})");
  auto posted = carol.sink->take("message");
  REQUIRE(posted.size() == 2);
  auto id = posted[0]["id"].get<uint64_t>();
  send(mod, R"({"type":"delete","room":"general","id":)" + std::to_string(id) + R"(,"ref":"d1"})");
  auto answer = mod.sink->take("moderated");
  REQUIRE(answer.size() == 1);
  CHECK(answer[0]["action"] == "delete");
  CHECK(answer[0]["id"] == id);
  CHECK(answer[0]["ref"] == "d1");
  auto told = carol.sink->take("moderation");
  REQUIRE(told.size() == 1);
  CHECK(told[0]["action"] == "delete");
  CHECK(told[0]["id"] == id);
  send(carol, R"({"type":"history","room":"general"})");
  auto history = carol.sink->take("history");
  REQUIRE(history.size() == 1);
  auto& messages = history[0]["messages"];
  REQUIRE(messages.size() == 2);
  CHECK(messages[0]["id"] == id);
  CHECK(messages[0]["deleted"] == true);
  CHECK(messages[0]["text"] == "");
  CHECK_FALSE(messages[1].contains("deleted"));
  CHECK(messages[1]["text"] == "fine");
  // A late joiner's "joined" history shows the tombstone too.
  auto dave = sign_in("dave");
  send(dave, R"({"type":"join","room":"general"})");
  auto joined = dave.sink->take("joined");
  REQUIRE(joined.size() == 1);
  REQUIRE(joined[0]["history"].size() == 2);
  CHECK(joined[0]["history"][0]["deleted"] == true);
  CHECK(joined[0]["history"][0]["text"] == "");
}

TEST_CASE_FIXTURE(moderation_fixture, "a delete of an id above the last one is refused with not_found") {
  send(bob, R"({"type":"send","room":"general","text":"only one"})");
  send(mod, R"({"type":"delete","room":"general","id":99,"ref":"d"})");
  auto err = only_error(mod);
  CHECK(err["code"] == "not_found");
  CHECK(err["ref"] == "d");
  CHECK(mod.sink->take("moderated").empty());
  CHECK(carol.sink->take("moderation").empty());
}

TEST_CASE_FIXTURE(moderation_fixture, "a moderator who is not a member of the room gets not_member") {
  send(mod, R"({"type":"kick","room":"elsewhere","user":"bob"})");
  CHECK(only_error(mod)["code"] == "not_member");
}

// -- server-wide bans ----------------------------------------------------------------------------

TEST_CASE_FIXTURE(moderation_fixture, "a server-wide ban by a non-admin is refused with forbidden") {
  send(mod, R"({"type":"ban","user":"bob","ref":"b"})");
  auto err = only_error(mod);
  CHECK(err["code"] == "forbidden");
  CHECK(err["ref"] == "b");
  CHECK(bob.sink->take().empty());
  CHECK(bob.sink->close_code() == 0);
  CHECK(presence_mem->server_bans.empty());
}

TEST_CASE_FIXTURE(moderation_fixture, "a server-wide ban by an admin closes every session of the user with banned and 4403") {
  auto bob2 = sign_in("bob");
  auto ada = sign_in("ada", {"admin"});
  auto before = real_now_ms();
  send(ada, R"({"type":"ban","user":"bob","duration":3600,"reason":"abuse","ref":"sb"})");
  auto answer = ada.sink->take("moderated");
  REQUIRE(answer.size() == 1);
  CHECK(answer[0]["action"] == "ban");
  CHECK(answer[0]["user"] == "bob");
  CHECK_FALSE(answer[0].contains("room"));
  CHECK(answer[0]["ref"] == "sb");
  for (auto* c : {&bob, &bob2}) {
    auto err = only_error(*c);
    CHECK(err["code"] == "banned");
    CHECK(err["until"].get<int64_t>() >= before + 3'600'000);
    CHECK(err["message"].get<std::string>().find("abuse") != std::string::npos);
    CHECK(c->sink->close_code() == close_code::banned);
  }
  CHECK(carol.sink->close_code() == 0);
  CHECK(mod.sink->close_code() == 0);
}

TEST_CASE_FIXTURE(moderation_fixture, "a new session of a user banned from the server is refused with banned and 4403") {
  auto ada = sign_in("ada", {"admin"});
  send(ada, R"({"type":"ban","user":"bob"})");
  REQUIRE(ada.sink->take("moderated").size() == 1);
  SUBCASE("signing in with an auth frame") {
    auto c = open();
    send(c, R"({"type":"auth","token":")" + token("bob") + R"(","ref":"a"})");
    auto frames = c.sink->take();
    REQUIRE(frames.size() == 1);
    CHECK(frames[0]["type"] == "error");
    CHECK(frames[0]["code"] == "banned");
    CHECK(frames[0]["ref"] == "a");
    CHECK_FALSE(frames[0].contains("until"));
    CHECK(c.sink->close_code() == close_code::banned);
    // The refused session never counted as online.
    send(c, R"({"type":"join","room":"general"})");
    CHECK(c.sink->size() == 0);
  }
  SUBCASE("with a handshake identity") {
    auto result = cfg.verifier->verify(token("bob"), auth::unix_now());
    REQUIRE(result);
    client c{session_actor{}, std::make_shared<recording_sink>()};
    c.handle = spawn(session, frame_sink_ptr{c.sink}, result.who, std::make_shared<const session_config>(cfg));
    run();
    auto frames = c.sink->take();
    REQUIRE(frames.size() == 1);
    CHECK(frames[0]["code"] == "banned");
    CHECK(c.sink->close_code() == close_code::banned);
  }
  // Others still get in.
  sign_in("erin");
}

TEST_CASE_FIXTURE(moderation_fixture, "a server-wide unban by an admin lets the user sign in again") {
  auto ada = sign_in("ada", {"admin"});
  send(ada, R"({"type":"ban","user":"bob"})");
  send(ada, R"({"type":"unban","user":"bob"})");
  CHECK(ada.sink->take("moderated").size() == 2);
  sign_in("bob");
}

// -- edges ---------------------------------------------------------------------------------------

TEST_CASE_FIXTURE(auth_fixture, "a token past exp but within the leeway signs in and asks for a refresh at once") {
  auto c = open();
  send(c, R"({"type":"auth","token":")" + token("alice", {}, -5) + R"("})");
  advance(0s);
  auto frames = c.sink->take();
  REQUIRE(frames.size() == 2);
  CHECK(frames[0]["type"] == "welcome");
  CHECK(frames[1]["type"] == "error");
  CHECK(frames[1]["code"] == "token_expired");
  send(c, R"({"type":"refresh","token":")" + token("alice") + R"("})");
  CHECK(c.sink->take("refreshed").size() == 1);
  advance(30s);
  CHECK(c.sink->close_code() == 0);
}

TEST_CASE_FIXTURE(auth_fixture, "a token's name claim shows on welcome and on the user's messages") {
  auth::token_claims claims;
  claims.sub = "alice";
  claims.name = "Alice Liddell";
  claims.exp = auth::unix_now() + 600;
  auto c = open();
  send(c, R"({"type":"auth","token":")" + auth::sign_token(claims, auth::jwt_algorithm::hs256, secret) + R"("})");
  auto welcome = c.sink->take("welcome");
  REQUIRE(welcome.size() == 1);
  CHECK(welcome[0]["name"] == "Alice Liddell");
  join(c, "general");
  send(c, R"({"type":"send","room":"general","text":"hi"})");
  auto got = c.sink->take("message");
  REQUIRE(got.size() == 1);
  CHECK(got[0]["from"] == "alice");
  CHECK(got[0]["name"] == "Alice Liddell");
}
