// Cluster mode's translation between Redis and Parley's records (cluster/redis_schema.*) and its
// settings: what goes into Redis must come back the same, and a malformed [cluster] is refused.

#include "cluster/redis_client.hpp"
#include "cluster/redis_schema.hpp"
#include "config/app_config.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace parley;
using namespace parley::cluster;

namespace {

redis_reply text(std::string s) {
  return redis_reply{redis_reply::kind::string, 0, std::move(s), {}};
}

redis_reply array(std::vector<redis_reply> elements) {
  return redis_reply{redis_reply::kind::array, 0, {}, std::move(elements)};
}

redis_reply flat(const std::vector<std::string>& items) {
  std::vector<redis_reply> out;
  for (const auto& item : items)
    out.push_back(text(item));
  return array(std::move(out));
}

bool refused(std::vector<std::string> args) {
  app_config cfg;
  std::vector<char*> argv{const_cast<char*>("parley")};
  std::string config = "--config=" PARLEY_SOURCE_DIR "/config.ini";
  argv.push_back(config.data());
  for (auto& a : args)
    argv.push_back(a.data());
  return !cfg.parse_command_line(static_cast<int>(argv.size()), argv.data()).empty();
}

} // namespace

TEST_CASE("keys live under the prefix, and a user's cid key cannot collide with another user's") {
  redis_keys keys{"chat"};
  CHECK(keys.stream("general") == "chat:stream:general");
  CHECK(keys.room("general") == "chat:room:general");
  CHECK(keys.events() == "chat:events");
  CHECK(keys.cid("r", "a:b", "c") != keys.cid("r", "a", "b:c"));
}

TEST_CASE("a stream entry decodes into the message it was appended as; a deleted one is a tombstone") {
  auto entry = array({text("42-0"), flat({"from", "alice", "text", "hi", "ts", "1700000000000", "cid", "c-1",
                                          "name", "Alice"})});
  auto msg = decode_message("general", entry, false);
  REQUIRE(msg);
  CHECK(msg->room == "general");
  CHECK(msg->id == 42);
  CHECK(msg->from == "alice");
  CHECK(msg->text == "hi");
  CHECK(msg->ts == 1700000000000);
  CHECK(msg->cid == "c-1");
  CHECK(msg->name == "Alice");
  CHECK_FALSE(msg->deleted);

  auto gone = decode_message("general", entry, true);
  REQUIRE(gone);
  CHECK(gone->deleted);
  CHECK(gone->text.empty());
  CHECK(gone->id == 42);

  CHECK_FALSE(decode_message("general", array({text("not-an-id"), flat({})}), false));
  CHECK_FALSE(decode_message("general", array({}), false));
}

TEST_CASE("entry ids and message ids convert both ways; 0 and junk are no message id") {
  CHECK(entry_id(7) == "7-0");
  CHECK(message_id("7-0") == 7u);
  CHECK_FALSE(message_id("0-0"));
  CHECK_FALSE(message_id("x"));
  CHECK_FALSE(message_id(""));
}

TEST_CASE("stream entry ids order by time, then sequence") {
  CHECK(entry_before("0-0", "1-0"));
  CHECK(entry_before("5-1", "5-2"));
  CHECK(entry_before("9-9", "10-0"));  // numerically, not as text
  CHECK_FALSE(entry_before("10-0", "9-9"));
  CHECK_FALSE(entry_before("5-2", "5-2"));
  CHECK(entry_before("", "1-0"));
}

TEST_CASE("restrictions keep those in force: a ban for good, and a ban until a later time") {
  auto hash = flat({"forever", "", "later", "2000", "over", "500"});
  auto in_force = restrictions_in_force(hash, 1000);
  REQUIRE(in_force.size() == 2);
  CHECK(in_force[0].user == "forever");
  CHECK_FALSE(in_force[0].until);
  CHECK(in_force[1].user == "later");
  CHECK(in_force[1].until == 2000);
}

TEST_CASE("a moderation record survives the events stream with the node that recorded it") {
  moderation_record rec;
  rec.action = protocol::moderation_action::ban;
  rec.room = "general";
  rec.user = "mallory";
  rec.by = "admin";
  rec.until = 123456;
  rec.reason = "spam";
  rec.ts = 99;
  auto ev = decode_event(flat(encode_record(rec, "a#1")));
  REQUIRE(ev);
  CHECK(ev->node == "a#1");
  CHECK(ev->kind == "moderation");
  CHECK(ev->room == "general");
  CHECK(ev->record.action == protocol::moderation_action::ban);
  CHECK(ev->record.room == "general");
  CHECK(ev->record.user == "mallory");
  CHECK(ev->record.by == "admin");
  CHECK(ev->record.until == 123456);
  CHECK(ev->record.reason == "spam");
  CHECK(ev->record.ts == 99);

  rec.action = protocol::moderation_action::delete_message;
  rec.room.clear();
  rec.until.reset();
  rec.message_id = 17;
  auto del = decode_event(flat(encode_record(rec, "b#2")));
  REQUIRE(del);
  CHECK(del->room.empty());
  CHECK(del->record.message_id == 17);
  CHECK_FALSE(del->record.until);

  CHECK_FALSE(decode_event(flat({"kind", "moderation", "action", "explode"})));
  CHECK_FALSE(decode_event(flat({"kind", "gossip"})));
  CHECK(decode_event(flat({"kind", "presence", "room", "r", "node", "n"}))->room == "r");
}

TEST_CASE("Redis addresses are host:port with a port from 1 to 65535") {
  auto address = parse_redis_address("redis.internal:6380");
  REQUIRE(address);
  CHECK(address->host == "redis.internal");
  CHECK(address->port == 6380);
  CHECK(parse_redis_address("[::1]:6379")->host == "[::1]");
  for (auto bad : {"", "redis", ":6379", "redis:", "redis:0", "redis:65536", "redis:63x9"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_redis_address(bad));
  }
}

TEST_CASE("reply numbers parse from integers and digit strings only") {
  CHECK(redis_reply{redis_reply::kind::integer, 5, {}, {}}.as_integer() == 5);
  CHECK(text("12").as_integer() == 12);
  CHECK_FALSE(text("12a").as_integer());
  CHECK_FALSE(redis_reply{}.as_integer());
}

TEST_CASE("a malformed [cluster] section is refused at start-up") {
  CHECK_FALSE(refused({"--cluster.mode=redis", "--cluster.redis=127.0.0.1:6379", "--cluster.node_id=a"}));
  CHECK(refused({"--cluster.mode=sharded"}));
  CHECK(refused({"--cluster.durability=sometimes"}));
  CHECK(refused({"--cluster.mode=redis", "--cluster.redis=localhost"}));
  CHECK(refused({"--cluster.mode=redis", "--cluster.key_prefix=a:b"}));
  CHECK(refused({"--cluster.mode=redis", "--cluster.node_id=a b"}));
  CHECK(refused({"--cluster.mode=redis", "--cluster.presence_ttl=100ms"}));
  CHECK(refused({"--cluster.mode=redis", "--cluster.stream_max_length=0"}));
  CHECK(refused({"--cluster.stream_max_age=-1s"}));
}
