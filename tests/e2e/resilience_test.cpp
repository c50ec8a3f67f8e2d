// End-to-end: slow consumers, crashing rooms and shutdown do not hurt the clients that behave.

#include "harness.hpp"

#include <doctest/doctest.h>

#include <signal.h>

#include <string>
#include <thread>
#include <vector>

using namespace parley::e2e;

namespace {

std::string cid_of(int i) {
  return "m-" + std::to_string(i);
}

/// Reads `count` messages in order and checks they carry the cids first..first+count-1 with
/// strictly increasing ids.
void read_batch(ws_client& client, int first, int count, uint64_t& last_id) {
  for (int i = first; i < first + count; ++i) {
    auto msg = client.next_of_type("message");
    REQUIRE_MESSAGE(msg.value("cid", "") == cid_of(i), client.name() << " got " << msg.value("cid", "")
                                                                      << " where " << cid_of(i)
                                                                      << " was due");
    auto id = msg["id"].get<uint64_t>();
    REQUIRE(id > last_id);
    last_id = id;
  }
}

} // namespace

TEST_CASE("a client that never reads is disconnected while another member keeps receiving every "
          "message in order") {
  // The loopback kernel buffers alone absorb about 3 MB for a stalled reader on this machine, so the
  // flood must be well beyond that plus queue_hard_bytes before the server's own queue overflows.
  constexpr int total = 2000;
  constexpr int batch = 50;
  const std::string body = filler(3500);
  server_options opts;
  opts.ini["connection.queue_soft_bytes"] = std::to_string(64 * 1024);
  opts.ini["connection.queue_hard_bytes"] = std::to_string(256 * 1024);
  // Written as reals: the rate settings are doubles (integers are covered by the abuse tests).
  opts.ini["connection.rate_per_second"] = "100000.0";
  opts.ini["connection.rate_burst"] = "100000.0";
  server_process server{opts};

  ws_client stalled;
  stalled.connect(server.port(), "stalled", {/*origin*/ "", /*receive_buffer*/ 4096});
  stalled.join("general");  // from here on it never reads
  ws_client sender;
  ws_client reader;
  sender.connect(server.port(), "sender");
  sender.join("general");
  reader.connect(server.port(), "reader");
  reader.join("general");

  // Send in batches and let both readers catch up after each, so only the stalled client falls behind.
  uint64_t sender_last = 0;
  uint64_t reader_last = 0;
  for (int first = 0; first < total; first += batch) {
    for (int i = first; i < first + batch; ++i)
      sender.send_json({{"type", "send"}, {"room", "general"}, {"text", body}, {"cid", cid_of(i)}});
    read_batch(sender, first, batch, sender_last);
    read_batch(reader, first, batch, reader_last);
  }

  auto end = stalled.expect_close(15s);
  MESSAGE("stalled client read " << end.frames_before << " frame(s) before the end; close frame: "
                              << end.close_frame << " code " << end.code << " error '" << end.error
                              << "'");
  CHECK(end.frames_before < static_cast<std::size_t>(total));
  if (end.close_frame)
    CHECK(end.code == 4000);
  else
    CHECK(!end.error.empty());
}

TEST_CASE("a killed room actor is restarted and chat continues with the same members and no "
          "duplicate ids") {
  server_options opts;
  opts.ini["testing.fault_injection"] = "true";
  server_process server{opts};
  ws_client alice;
  ws_client bob;
  alice.connect(server.port(), "alice");
  bob.connect(server.port(), "bob");
  auto first_join = alice.join("general");
  bob.join("general");
  auto before = alice.say("general", "before the crash", "c-0");

  alice.send_json({{"type", "crash_room"}, {"room", "general"}});

  // Retry with the same cid while the room is restarting, as clients are told to.
  auto deadline = std::chrono::steady_clock::now() + 10s;
  int unavailable = 0;
  json after;
  for (int attempt = 0;; ++attempt) {
    auto ref = "try-" + std::to_string(attempt);
    alice.send_json(
      {{"type", "send"}, {"room", "general"}, {"text", "after the crash"}, {"cid", "c-1"}, {"ref", ref}});
    auto reply = alice.next_matching(
      [](const json& f) {
        auto type = f.value("type", "");
        return (type == "message" && f.value("cid", "") == "c-1") || type == "error";
      },
      "echo of c-1 or an error");
    if (reply.value("type", "") == "message") {
      after = reply;
      break;
    }
    REQUIRE_MESSAGE(reply.value("code", "") == "room_unavailable", "unexpected error: " << reply.dump());
    ++unavailable;
    REQUIRE_MESSAGE(std::chrono::steady_clock::now() < deadline,
                    "room still unavailable after 10 s (" << unavailable << " attempts)");
    std::this_thread::sleep_for(100ms);
  }
  MESSAGE("room_unavailable answers while restarting: " << unavailable);
  CHECK(after["id"].get<uint64_t>() > before["id"].get<uint64_t>());

  // Bob never rejoined: he is still a member, can talk, and heard every message exactly once, in
  // order, with increasing ids (his own echo included).
  bob.send_json({{"type", "send"}, {"room", "general"}, {"text", "still here"}, {"cid", "c-2"}});
  std::vector<std::string> expected = {"c-0", "c-1", "c-2"};
  std::vector<json> heard;
  for (const auto& cid : expected) {
    auto msg = bob.next_of_type("message");
    CHECK_MESSAGE(msg.value("cid", "") == cid, "bob expected " << cid << ", got " << msg.dump());
    if (!heard.empty())
      CHECK(msg["id"].get<uint64_t>() > heard.back()["id"].get<uint64_t>());
    heard.push_back(msg);
  }
  CHECK(heard[0]["id"] == before["id"]);
  CHECK(heard[1]["id"] == after["id"]);

  auto alice_sees_bob = alice.next_matching(
    [](const json& f) { return f.value("type", "") == "message" && f.value("cid", "") == "c-2"; },
    "bob's message after the restart");
  CHECK(alice_sees_bob["id"] == heard[2]["id"]);
  alice.send_json({{"type", "who"}, {"room", "general"}, {"ref", "who-1"}});
  auto who = alice.next_of_type("who");
  CHECK(contains(who["members"], "alice"));
  CHECK(contains(who["members"], "bob"));

  // A restarted room keeps its epoch, ids and history: a newcomer sees all three messages.
  ws_client carol;
  carol.connect(server.port(), "carol");
  auto joined = carol.join("general");
  CHECK(joined["epoch"] == first_join["epoch"]);
  CHECK(joined["last_id"] == heard[2]["id"]);
  REQUIRE_MESSAGE(joined["history"].size() == heard.size(), "history: " << joined["history"].dump());
  for (std::size_t i = 0; i < heard.size(); ++i)
    CHECK(joined["history"][i]["id"] == heard[i]["id"]);
}

TEST_CASE("SIGTERM closes connections with 1001 and the server exits with 0") {
  server_process server;
  ws_client client;
  client.connect(server.port(), "alice");
  client.join("general");

  server.send_signal(SIGTERM);
  auto end = client.expect_close(10s);
  CHECK_MESSAGE(end.close_frame, "no close frame; transport error: " << end.error);
  CHECK(end.code == 1001);

  auto status = server.wait_for_exit(10s);
  REQUIRE_MESSAGE(status, "still running 10 s after SIGTERM");
  CHECK_MESSAGE(status->exited, status->describe());
  CHECK(status->code == 0);
}
