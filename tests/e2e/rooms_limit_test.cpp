// End-to-end: creating rooms is bounded. A connection creating rooms fast is refused with
// rate_limited, the server refuses rooms past [rooms] max_rooms with room_limit, connections stay
// usable, and rooms nobody wrote in never reach the database.

#include "harness.hpp"

#include "storage/message_db.hpp"

#include <doctest/doctest.h>

#include <map>
#include <string>

using namespace parley::e2e;

namespace {

/// Sends a join for each room at once (no waiting in between), then collects the answer to each:
/// "joined" or the error's code, by room.
std::map<std::string, std::string> join_all(ws_client& client, const std::vector<std::string>& rooms) {
  for (auto& room : rooms)
    client.send_json({{"type", "join"}, {"room", room}, {"ref", room}});
  std::map<std::string, std::string> answers;
  while (answers.size() < rooms.size()) {
    auto f = client.next_matching(
      [](const json& f) {
        auto type = f.value("type", "");
        return (type == "joined" || type == "error") && f.contains("ref") && f["ref"].is_string();
      },
      "joined or error");
    auto room = f["ref"].get<std::string>();
    answers[room] = f["type"] == "joined" ? "joined" : f["code"].get<std::string>();
  }
  return answers;
}

std::size_t count(const std::map<std::string, std::string>& answers, const std::string& what) {
  std::size_t n = 0;
  for (auto& [room, answer] : answers)
    n += answer == what;
  return n;
}

std::size_t rooms_in(const std::string& path) {
  parley::storage::db_options opts;
  opts.path = path;
  parley::storage::message_db db{opts};
  return db.count_rooms();
}

std::vector<std::string> names(const std::string& prefix, int n) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i)
    out.push_back(prefix + std::to_string(i));
  return out;
}

} // namespace

TEST_CASE("a client creating rooms fast gets rate_limited, the cap answers room_limit, and the "
          "database holds only rooms with messages") {
  scratch_dir data;
  auto db_path = data.file("chat.db");
  server_options opts;
  opts.ini["store.path"] = "\"" + db_path + "\"";
  opts.ini["rooms.max_rooms"] = "8";
  opts.ini["connection.new_rooms_per_minute"] = "1";
  opts.ini["connection.new_rooms_burst"] = "5";
  // Neither the frame rate nor the abuse limit may be what answers here.
  opts.ini["connection.rate_per_second"] = "1000";
  opts.ini["connection.rate_burst"] = "1000";
  opts.ini["connection.abuse_limit"] = "1000";
  server_process server{opts};

  ws_client alice;
  alice.connect(server.port(), "alice");
  alice.join("lobby");
  alice.say("lobby", "the only message", "c1");
  CHECK(rooms_in(db_path) == 1);

  // lobby took one of alice's five new-room tokens: four more rooms, then rate_limited.
  auto answers = join_all(alice, names("a", 20));
  CHECK(count(answers, "joined") == 4);
  CHECK(count(answers, "rate_limited") == 16);
  for (auto& [room, answer] : answers)
    if (answer == "joined")
      alice.send_json({{"type", "leave"}, {"room", room}});
  // Rooms that exist are joined all the same, and the connection goes on working.
  alice.send_json({{"type", "leave"}, {"room", "lobby"}});
  alice.next_of_type("left");
  CHECK(alice.join("lobby")["last_id"] == 1);

  // Five rooms exist (lobby and four empty ones): bob, with tokens to spare, may add three.
  ws_client bob;
  bob.connect(server.port(), "bob");
  auto bobs = join_all(bob, names("b", 5));
  CHECK(count(bobs, "joined") == 3);
  CHECK(count(bobs, "room_limit") == 2);
  CHECK(bob.join("lobby")["last_id"] == 1);
  bob.say("lobby", "still usable", "c2");

  // Joining and leaving all those names wrote nothing: only lobby, which has messages, is stored.
  CHECK(rooms_in(db_path) == 1);
  CHECK(server.terminate().code == 0);
  CHECK(rooms_in(db_path) == 1);
}
