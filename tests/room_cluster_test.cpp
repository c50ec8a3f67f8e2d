// The room actor in cluster mode on the deterministic scheduler: it fans out only what the cluster
// feed delivers (once, in id order), answers a post once its message went out, merges the users
// present on other nodes into its presence, reports its own part to the feed, and puts other
// nodes' moderation in force. A stand-in feed records what the room tells it.

#include "actor_fixture.hpp"

#include "actors/room.hpp"

#include <caf/stateful_actor.hpp>

using namespace parley;
using namespace parley::testing;
using namespace std::chrono_literals;

namespace {

using json = nlohmann::json;

constexpr caf::timespan interval = 100ms;

/// What the stand-in feed received.
struct feed_log {
  std::vector<uint64_t> watched_from;                  ///< `delivered` of each watch
  std::vector<std::string> events_from;                ///< `events_after` of each watch
  std::vector<std::vector<std::string>> presence;      ///< each report of the users here
  std::vector<std::string> unwatched;
};

cluster_feed_actor::behavior_type fake_feed(cluster_feed_actor::pointer self, std::shared_ptr<feed_log> log) {
  self->system().registry().put(cluster_atom::value, caf::actor_cast<caf::strong_actor_ptr>(self));
  return {
    [log](watch_atom, const std::string&, room_actor&, uint64_t delivered, const std::string& events_after) {
      log->watched_from.push_back(delivered);
      log->events_from.push_back(events_after);
    },
    [log](unwatch_atom, const std::string& name, const room_actor&) { log->unwatched.push_back(name); },
    [log](presence_atom, const std::string&, std::vector<std::string>& users) {
      log->presence.push_back(std::move(users));
    },
    [](tick_atom) {},
    [](heartbeat_atom) {},
  };
}

struct member {
  caf::actor session;
  std::shared_ptr<recording_sink> sink;
  std::shared_ptr<session_log> log;
};

struct cluster_room_fixture : fixture {
  room_config cfg;
  std::shared_ptr<room_memory> mem;
  std::shared_ptr<feed_log> feed = std::make_shared<feed_log>();
  room_actor room_handle;

  cluster_room_fixture() {
    cfg.rooms.capacity = 10;
    cfg.rooms.history_size = 5;
    cfg.rooms.history_on_join = 3;
    cfg.rooms.max_replay = 6;
    cfg.presence.grace = 5s;
    cfg.presence.diff_interval = interval;
    cfg.presence.count_interval = 1s;
    cfg.presence.page_size = 100;
    cfg.presence.user_limit = 1000;
    cfg.clustered = true;
    spawn_store();
    spawn(fake_feed, feed);
    run();
    mem = std::make_shared<room_memory>("general", 7, cfg.presence.grace);
    room_handle = spawn(room, mem, cfg);
    run();
  }

  ~cluster_room_fixture() { sys.registry().erase(cluster_atom::value); }

  member join(const std::string& user) {
    member m{nullptr, std::make_shared<recording_sink>(), std::make_shared<session_log>()};
    m.session = caf::actor_cast<caf::actor>(spawn(fake_session, m.log));
    run();
    ask<join_result>(room_handle, join_atom::value, m.session, join_request{user, m.sink, {}, {}, {}});
    return m;
  }

  void deliver(std::vector<protocol::chat_message> batch) {
    caf::anon_send(room_handle, deliver_atom::value, std::move(batch));
    run();
  }

  void remote(std::vector<std::string> users) {
    caf::anon_send(room_handle, remote_atom::value, std::move(users));
    run();
  }

  static protocol::chat_message message(uint64_t id, const std::string& from, const std::string& text) {
    return protocol::chat_message{"general", id, from, text, 1700000000000, "", ""};
  }
};

std::vector<uint64_t> ids_of(const std::vector<json>& frames) {
  std::vector<uint64_t> out;
  for (const auto& f : frames)
    out.push_back(f["id"].get<uint64_t>());
  return out;
}

json last_presence(member& m) {
  json last;
  for (auto& f : m.sink->take())
    if (f["type"] == "presence_diff" || f["type"] == "presence_state")
      last = f;
  return last;
}

} // namespace

TEST_CASE_FIXTURE(cluster_room_fixture, "a clustered room watches its stream from the last id it holds") {
  REQUIRE(feed->watched_from.size() == 1);
  CHECK(feed->watched_from[0] == 0);
}

TEST_CASE_FIXTURE(cluster_room_fixture,
                  "a post is stored but fanned out only when the feed delivers it, and answered after") {
  auto alice = join("alice");
  auto bob = join("bob");
  alice.sink->take();
  bob.sink->take();

  auto answer = self->request(room_handle, caf::infinite, post_atom::value, alice.session,
                              std::string{"hi"}, std::string{"c1"});
  run();
  CHECK(self->mailbox().size() == 0);  // stored, but the answer waits for the delivery
  CHECK(bob.sink->take("message").empty());

  auto stored = message(1, "alice", "hi");
  stored.cid = "c1";
  deliver({stored});
  auto at_bob = bob.sink->take("message");
  REQUIRE(at_bob.size() == 1);
  CHECK(at_bob[0]["text"] == "hi");
  CHECK(alice.sink->take("message").size() == 1);
  REQUIRE(self->mailbox().size() == 1);
  uint64_t answered = 0;
  answer.receive([&](uint64_t id) { answered = id; },
                 [&](caf::error& err) { FAIL("post failed: " << sys.render(err)); });
  CHECK(answered == 1);
}

TEST_CASE_FIXTURE(cluster_room_fixture, "deliveries fan out once each, in id order, whatever the feed repeats") {
  auto bob = join("bob");
  bob.sink->take();
  deliver({message(1, "carol", "one"), message(2, "carol", "two")});
  deliver({message(2, "carol", "two"), message(3, "dave", "three")});
  deliver({message(1, "carol", "one")});
  CHECK(ids_of(bob.sink->take("message")) == std::vector<uint64_t>{1, 2, 3});
  CHECK(mem->next_id == 4);
  // A member joining now gets them as history, like any other message.
  auto erin = join("erin");
  auto joined = erin.sink->take("joined");
  REQUIRE(joined.size() == 1);
  CHECK(joined[0]["last_id"] == 3);
  CHECK(joined[0]["history"].size() == 3);
}

TEST_CASE_FIXTURE(cluster_room_fixture,
                  "users on other nodes count as present: joins and leaves of the merged set go out as diffs") {
  auto alice = join("alice");
  advance(interval);
  alice.sink->take();

  remote({"bob", "carol"});
  advance(interval);
  auto diff = last_presence(alice);
  CHECK(diff["type"] == "presence_diff");
  CHECK(diff["count"] == 3);
  CHECK(diff["joins"] == json::array({"bob", "carol"}));

  // Alice is on another node too: her leaving here is no leave while she is present there.
  remote({"alice", "bob", "carol"});
  ask<ok_atom>(room_handle, leave_atom::value, alice.session);
  auto dave = join("dave");
  advance(interval);
  auto after = last_presence(dave);
  CHECK(after["count"] == 4);
  CHECK(mem->present.count("alice") == 1);

  remote({"bob"});
  advance(interval);
  auto left = last_presence(dave);
  CHECK(left["count"] == 2);
  CHECK(left["leaves"] == json::array({"alice", "carol"}));
}

TEST_CASE_FIXTURE(cluster_room_fixture, "the room tells the feed who is present through this node, not the others") {
  feed->presence.clear();
  auto alice = join("alice");
  remote({"bob"});
  advance(interval);
  REQUIRE_FALSE(feed->presence.empty());
  CHECK(feed->presence.back() == std::vector<std::string>{"alice"});

  // A dropped connection keeps its user present here for the grace; then the feed learns she left.
  caf::anon_send_exit(alice.session, caf::exit_reason::user_shutdown);
  run();
  advance(interval);
  CHECK(feed->presence.back() == std::vector<std::string>{"alice"});
  advance(cfg.presence.grace);
  advance(interval);
  CHECK(feed->presence.back().empty());
}

TEST_CASE_FIXTURE(cluster_room_fixture, "another node's kick and delete take effect without being recorded again") {
  auto alice = join("alice");
  auto bob = join("bob");
  deliver({message(1, "bob", "spam")});
  alice.sink->take();

  moderation_record kick;
  kick.action = protocol::moderation_action::kick;
  kick.room = "general";
  kick.user = "bob";
  kick.by = "mod-on-b";
  caf::anon_send(room_handle, enforce_atom::value, kick, std::string{"1700000000000-0"});
  run();
  REQUIRE(bob.log->kicked.size() == 1);
  CHECK(bob.log->kicked[0].second == "kicked");
  CHECK(mem->members.size() == 1);

  moderation_record del;
  del.action = protocol::moderation_action::delete_message;
  del.room = "general";
  del.message_id = 1;
  del.by = "mod-on-b";
  caf::anon_send(room_handle, enforce_atom::value, del, std::string{"1700000000001-0"});
  run();
  CHECK(mem->events_position == "1700000000001-0");
  auto frames = alice.sink->take("moderation");
  REQUIRE(frames.size() == 2);
  CHECK(frames[0]["action"] == "kick");
  CHECK(frames[1]["action"] == "delete");
  CHECK(mem->history.back().msg.deleted);
  auto page = ask<history_page>(room_handle, history_atom::value, uint64_t{0}, uint32_t{10});
  REQUIRE(page.messages.size() == 1);
  CHECK(page.messages[0].deleted);
}

TEST_CASE_FIXTURE(cluster_room_fixture,
                  "a restarted room watches again from its ids and from the last moderation it put in force") {
  deliver({message(1, "carol", "one")});
  moderation_record mute;
  mute.action = protocol::moderation_action::mute;
  mute.room = "general";
  mute.user = "carol";
  caf::anon_send(room_handle, enforce_atom::value, mute, std::string{"5-0"});
  run();
  caf::anon_send_exit(room_handle, caf::exit_reason::kill);
  run();
  room_handle = spawn(room, mem, cfg);
  run();
  REQUIRE(feed->watched_from.size() == 2);
  CHECK(feed->watched_from[1] == 1);
  CHECK(feed->events_from[1] == "5-0");
  CHECK(mem->mutes.count("carol") == 1);
}
