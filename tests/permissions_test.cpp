// Pure tests of room-name patterns and the room rules (auth/permissions.hpp): who may join, post
// and moderate where, with the defaults, with [auth] room_rules, and the rules' parse errors.

#include "auth/permissions.hpp"

#include <doctest/doctest.h>

#include <stdexcept>
#include <string>
#include <vector>

using namespace parley::auth;

namespace {

identity user_with(role_set roles, std::vector<std::string> rooms = {}) {
  identity who;
  who.user = "someone";
  who.roles = roles;
  who.rooms = std::move(rooms);
  return who;
}

constexpr role_set bit(role r) {
  return static_cast<role_set>(r);
}

const identity readonly_user = user_with(bit(role::readonly));
const identity member = user_with(bit(role::member));
const identity moderator = user_with(bit(role::moderator));
const identity admin = user_with(bit(role::admin));

/// The parse error's message, or "" if the rule parsed.
std::string parse_error(const std::string& text) {
  try {
    parse_room_rule(text);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return {};
}

} // namespace

// -- matches -------------------------------------------------------------------------------------

TEST_CASE("a pattern without stars matches only the exact name") {
  CHECK(matches("general", "general"));
  CHECK_FALSE(matches("general", "general2"));
  CHECK_FALSE(matches("general", "genera"));
  CHECK_FALSE(matches("general", "General"));
  CHECK_FALSE(matches("general", ""));
}

TEST_CASE("a star matches any run of characters, also none, at the start, middle or end") {
  CHECK(matches("team-*", "team-a"));
  CHECK(matches("team-*", "team-"));
  CHECK(matches("team-*", "team-red-blue"));
  CHECK_FALSE(matches("team-*", "team"));
  CHECK_FALSE(matches("team-*", "my-team-a"));

  CHECK(matches("*-ops", "sre-ops"));
  CHECK(matches("*-ops", "-ops"));
  CHECK_FALSE(matches("*-ops", "sre-ops2"));

  CHECK(matches("a*z", "az"));
  CHECK(matches("a*z", "abcz"));
  CHECK(matches("a*z", "azzz"));
  CHECK_FALSE(matches("a*z", "azb"));

  CHECK(matches("*a*b*", "xxaxxbxx"));
  CHECK(matches("*a*b*", "ab"));
  CHECK_FALSE(matches("*a*b*", "ba"));
  CHECK(matches("**", "anything"));
}

TEST_CASE("a lone star matches every name, the empty one too; an empty pattern only the empty name") {
  CHECK(matches("*", "general"));
  CHECK(matches("*", ""));
  CHECK(matches("", ""));
  CHECK_FALSE(matches("", "general"));
}

TEST_CASE("a star backtracks: a failed try lets it swallow more") {
  CHECK(matches("*abc", "ababc"));
  CHECK(matches("a*bc*d", "abcbcxd"));
  CHECK_FALSE(matches("a*bc*d", "abcbcx"));
}

// -- defaults ------------------------------------------------------------------------------------

TEST_CASE("by default a readonly user joins but cannot post or moderate") {
  room_permissions rules;
  CHECK(rules.allows(readonly_user, room_action::join, "general"));
  CHECK_FALSE(rules.allows(readonly_user, room_action::post, "general"));
  CHECK_FALSE(rules.allows(readonly_user, room_action::moderate, "general"));
}

TEST_CASE("by default a member joins and posts but does not moderate") {
  room_permissions rules;
  CHECK(rules.allows(member, room_action::join, "general"));
  CHECK(rules.allows(member, room_action::post, "general"));
  CHECK_FALSE(rules.allows(member, room_action::moderate, "general"));
}

TEST_CASE("by default only moderators and admins moderate") {
  room_permissions rules;
  CHECK(rules.allows(moderator, room_action::join, "general"));
  CHECK(rules.allows(moderator, room_action::post, "general"));
  CHECK(rules.allows(moderator, room_action::moderate, "general"));
  CHECK(rules.allows(admin, room_action::moderate, "general"));
}

TEST_CASE("a user with no roles at all may do nothing") {
  room_permissions rules;
  auto nobody = user_with(0);
  CHECK_FALSE(rules.allows(nobody, room_action::join, "general"));
  CHECK_FALSE(rules.allows(nobody, room_action::post, "general"));
}

TEST_CASE("a user with several roles gets what any of them allows") {
  room_permissions rules;
  auto both = user_with(bit(role::readonly) | bit(role::moderator));
  CHECK(rules.allows(both, room_action::post, "general"));
  CHECK(rules.allows(both, room_action::moderate, "general"));
}

// -- rules ---------------------------------------------------------------------------------------

TEST_CASE("an admin may do everything everywhere, even where a rule says nobody") {
  room_permissions rules{{"vault join=nobody post=nobody moderate=nobody", "team-* join=listed"}};
  for (auto action : {room_action::join, room_action::post, room_action::moderate}) {
    CHECK(rules.allows(admin, action, "vault"));
    CHECK(rules.allows(admin, action, "team-red"));
    CHECK(rules.allows(admin, action, "general"));
  }
}

TEST_CASE("announcements post=moderator lets only moderators and admins post there") {
  room_permissions rules{{"announcements post=moderator"}};
  CHECK_FALSE(rules.allows(member, room_action::post, "announcements"));
  CHECK_FALSE(rules.allows(readonly_user, room_action::post, "announcements"));
  CHECK(rules.allows(moderator, room_action::post, "announcements"));
  CHECK(rules.allows(admin, room_action::post, "announcements"));
  // What the rule leaves out keeps the default: everyone joins, moderators moderate.
  CHECK(rules.allows(member, room_action::join, "announcements"));
  CHECK(rules.allows(readonly_user, room_action::join, "announcements"));
  CHECK_FALSE(rules.allows(member, room_action::moderate, "announcements"));
  // Other rooms keep the defaults.
  CHECK(rules.allows(member, room_action::post, "general"));
  CHECK(rules.allows(member, room_action::post, "announcements2"));
  CHECK(rules.allows(member, room_action::post, "announcement"));
}

TEST_CASE("team-* join=listed post=listed admits only users whose token lists the room") {
  room_permissions rules{{"team-* join=listed post=listed"}};
  auto red = user_with(bit(role::member), {"team-red"});
  CHECK(rules.allows(red, room_action::join, "team-red"));
  CHECK(rules.allows(red, room_action::post, "team-red"));
  CHECK_FALSE(rules.allows(red, room_action::join, "team-blue"));
  CHECK_FALSE(rules.allows(red, room_action::post, "team-blue"));
  CHECK_FALSE(rules.allows(member, room_action::join, "team-red"));
  // Listed means listed, whatever the role, moderators included (admins aside).
  CHECK_FALSE(rules.allows(moderator, room_action::join, "team-red"));
  auto listed_readonly = user_with(bit(role::readonly), {"team-red"});
  CHECK(rules.allows(listed_readonly, room_action::post, "team-red"));
  // Moderation was left out: the default (moderators), not "listed".
  CHECK_FALSE(rules.allows(red, room_action::moderate, "team-red"));
  // Rooms outside the pattern keep the defaults.
  CHECK(rules.allows(member, room_action::join, "general"));
}

TEST_CASE("listed compares the whole room name, not a pattern or a prefix") {
  room_permissions rules{{"team-* join=listed"}};
  CHECK_FALSE(rules.allows(user_with(bit(role::member), {"team-*"}), room_action::join, "team-red"));
  CHECK_FALSE(rules.allows(user_with(bit(role::member), {"team-re"}), room_action::join, "team-red"));
}

TEST_CASE("the first matching rule wins, even for an action it leaves to the default") {
  room_permissions rules{{"lobby post=everyone", "lob* post=nobody", "* post=admin"}};
  CHECK(rules.allows(readonly_user, room_action::post, "lobby"));
  CHECK_FALSE(rules.allows(moderator, room_action::post, "lobbyist"));
  CHECK_FALSE(rules.allows(member, room_action::post, "general"));

  room_permissions first_silent{{"open join=everyone", "open post=nobody"}};
  // "open" matched the first rule, which says nothing of post: the default, not the second rule.
  CHECK(first_silent.allows(member, room_action::post, "open"));
}

TEST_CASE("a rule lists several roles, and everyone and nobody") {
  room_permissions rules{{"staff join=moderator,readonly post=nobody moderate=member"}};
  CHECK(rules.allows(readonly_user, room_action::join, "staff"));
  CHECK(rules.allows(moderator, room_action::join, "staff"));
  CHECK_FALSE(rules.allows(member, room_action::join, "staff"));
  CHECK_FALSE(rules.allows(moderator, room_action::post, "staff"));
  CHECK(rules.allows(member, room_action::moderate, "staff"));
  CHECK_FALSE(rules.allows(moderator, room_action::moderate, "staff"));
}

// -- parsing -------------------------------------------------------------------------------------

TEST_CASE("parse_room_rule reads the pattern and the actions it names, leaving the rest unset") {
  auto rule = parse_room_rule("team-* join=listed post=member,moderator");
  CHECK(rule.pattern == "team-*");
  REQUIRE(rule.join);
  CHECK(rule.join->listed);
  CHECK(rule.join->roles == 0);
  REQUIRE(rule.post);
  CHECK_FALSE(rule.post->listed);
  CHECK(rule.post->roles == (bit(role::member) | bit(role::moderator)));
  CHECK_FALSE(rule.moderate);
}

TEST_CASE("parse_room_rule tolerates extra spaces between words") {
  auto rule = parse_room_rule("  announcements   post=moderator  ");
  CHECK(rule.pattern == "announcements");
  REQUIRE(rule.post);
  CHECK(rule.post->roles == bit(role::moderator));
}

TEST_CASE("a rule without an action is refused") {
  CHECK(parse_error("announcements").find("names no action") != std::string::npos);
}

TEST_CASE("a rule with an unknown action is refused, naming it") {
  auto message = parse_error("announcements speak=member");
  CHECK(message.find("\"speak\" is not join, post or moderate") != std::string::npos);
}

TEST_CASE("a rule with a word that is not action=who is refused") {
  CHECK(parse_error("announcements post").find("is not action=who") != std::string::npos);
}

TEST_CASE("a rule with an unknown role is refused, naming it") {
  auto message = parse_error("announcements post=moderator,owner");
  CHECK(message.find("\"owner\" is not a role") != std::string::npos);
}

TEST_CASE("a rule without a pattern is refused") {
  CHECK(parse_error("post=moderator").find("must start with a room pattern") != std::string::npos);
  CHECK(parse_error("").find("empty") != std::string::npos);
  CHECK(parse_error("   ").find("empty") != std::string::npos);
}

TEST_CASE("room_permissions refuses a list with one bad rule") {
  CHECK_THROWS_AS(room_permissions(std::vector<std::string>{"lobby post=everyone", "x post=owner"}),
                  std::invalid_argument);
}
