// End-to-end: the message store. History, epochs and ids survive SIGTERM and SIGKILL; clients
// recover with since/epoch and resend with their cids without duplicates; store faults are answered
// with store_unavailable while the server keeps running; a corrupt database stops start-up clearly.

#include "harness.hpp"

#include <doctest/doctest.h>

#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

using namespace parley::e2e;

namespace {

std::string quoted(const std::string& s) {
  return "\"" + s + "\"";
}

server_options on_database(const std::string& path, std::map<std::string, std::string> extra = {}) {
  server_options opts;
  opts.ini = std::move(extra);
  opts.ini["store.path"] = quoted(path);
  return opts;
}

json send_frame(const std::string& room, const std::string& text, const std::string& cid) {
  return {{"type", "send"}, {"room", room}, {"text", text}, {"cid", cid}};
}

/// Every message of a room, oldest first, paged through "history".
std::vector<json> whole_history(ws_client& client, const std::string& room) {
  std::vector<json> all;
  uint64_t before = 0;
  for (int page = 0; page < 1000; ++page) {
    json request = {{"type", "history"}, {"room", room}, {"limit", 100}, {"ref", page}};
    if (before > 0)
      request["before"] = before;
    client.send_json(request);
    auto reply = client.next_matching(
      [&](const json& f) { return f.value("type", "") == "history" && f["ref"] == page; }, "history page");
    auto& messages = reply["messages"];
    all.insert(all.begin(), messages.begin(), messages.end());
    if (!reply.value("more", false) || messages.empty())
      break;
    before = messages.front()["id"].get<uint64_t>();
  }
  return all;
}

} // namespace

TEST_CASE("history, epoch and ids survive a restart, and a rejoin with since recovers across it") {
  scratch_dir data;
  auto opts = on_database(data.file("chat.db"));
  uint64_t epoch = 0;
  {
    server_process server{opts};
    ws_client alice;
    alice.connect(server.port(), "alice");
    epoch = alice.join("general")["epoch"].get<uint64_t>();
    for (int i = 1; i <= 5; ++i)
      CHECK(alice.say("general", "m" + std::to_string(i), "a-" + std::to_string(i))["id"] == i);
    CHECK(server.terminate().code == 0);
  }
  server_process server{opts};
  ws_client alice;
  alice.connect(server.port(), "alice");
  auto joined = alice.join("general", {{"since", 2}, {"epoch", epoch}});
  CHECK(joined["epoch"] == epoch);
  CHECK(joined["last_id"] == 5);
  CHECK(joined.value("recovered", false) == true);
  REQUIRE(joined["history"].size() == 3);
  CHECK(joined["history"][0]["id"] == 3);
  CHECK(joined["history"][2]["text"] == "m5");
  CHECK(alice.say("general", "after the restart", "a-6")["id"] == 6);
  // A retry of a message accepted before the restart is recognised by its cid.
  CHECK(alice.say("general", "m1", "a-1")["id"] == 1);
}

TEST_CASE("after a SIGKILL mid-stream every acknowledged message is back exactly once, in order, and "
          "resent messages are not duplicated") {
  constexpr int users = 3;
  constexpr int per_user = 120;
  constexpr int sent_before_kill = 80;
  scratch_dir data;
  // A long commit window keeps the last groups uncommitted when the kill lands. A small memory
  // makes the rejoins after the restart recover their gaps from the database.
  auto opts = on_database(data.file("chat.db"), {{"store.commit_window", "50ms"},
                                                 {"connection.rate_per_second", "100000.0"},
                                                 {"connection.rate_burst", "100000.0"},
                                                 {"rooms.history_size", "20"}});
  auto cid = [](int user, int n) { return "u" + std::to_string(user) + "-" + std::to_string(n); };

  std::map<std::string, uint64_t> acknowledged;  // cid -> id, as echoed to its sender
  std::vector<std::set<uint64_t>> seen(users);   // ids each client has received
  uint64_t epoch = 0;
  {
    server_process server{opts};
    std::vector<std::unique_ptr<ws_client>> clients;
    for (int u = 0; u < users; ++u) {
      clients.push_back(std::make_unique<ws_client>());
      clients[u]->connect(server.port(), "user" + std::to_string(u));
      epoch = clients[u]->join("durable")["epoch"].get<uint64_t>();
    }
    auto absorb = [&](int u, const json& f) {
      if (f.value("type", "") != "message")
        return;
      auto id = f["id"].get<uint64_t>();
      seen[u].insert(id);
      if (f["from"] == "user" + std::to_string(u))
        acknowledged[f["cid"].get<std::string>()] = id;
    };
    auto send_numbers = [&](int from, int to) {
      for (int n = from; n <= to; ++n)
        for (int u = 0; u < users; ++u)
          clients[u]->try_send_raw_text(send_frame("durable", "number " + std::to_string(n), cid(u, n)).dump());
    };
    // The first half is surely acknowledged: wait for the last of its echoes.
    send_numbers(1, sent_before_kill / 2);
    for (int u = 0; u < users; ++u) {
      auto last = cid(u, sent_before_kill / 2);
      while (acknowledged.count(last) == 0)
        absorb(u, clients[u]->next_of_type("message"));
    }
    // The second half is in flight when the server dies.
    send_numbers(sent_before_kill / 2 + 1, sent_before_kill);
    server.kill();
    for (int u = 0; u < users; ++u) {
      for (;;) {
        auto f = clients[u]->next_or_close(5s);
        if (f.close)
          break;
        if (f.frame)
          absorb(u, *f.frame);
      }
    }
  }
  MESSAGE(acknowledged.size() << " of " << users * sent_before_kill
                              << " messages were acknowledged before the kill");

  server_process server{opts};
  std::vector<std::unique_ptr<ws_client>> clients;
  for (int u = 0; u < users; ++u) {
    CAPTURE(u);
    clients.push_back(std::make_unique<ws_client>());
    clients[u]->connect(server.port(), "user" + std::to_string(u));
    uint64_t since = seen[u].empty() ? 0 : *seen[u].rbegin();
    auto joined = clients[u]->join("durable", {{"since", since}, {"epoch", epoch}});
    CHECK(joined["epoch"] == epoch);
    CHECK(joined.value("recovered", false) == true);
    // The replay is exactly what this client missed: the ids after `since`, each once.
    uint64_t expected = since + 1;
    for (auto& m : joined["history"]) {
      CHECK(m["id"] == expected++);
      seen[u].insert(m["id"].get<uint64_t>());
    }
    CHECK(joined["last_id"] == expected - 1);
    CHECK(seen[u].size() == expected - 1);  // nothing missing before since either
  }

  // Every client resends what it has no acknowledgement for, with the original cids, then the rest.
  for (int u = 0; u < users; ++u)
    for (int n = 1; n <= per_user; ++n)
      if (acknowledged.count(cid(u, n)) == 0)
        clients[u]->send_json(send_frame("durable", "number " + std::to_string(n), cid(u, n)));
  for (int u = 0; u < users; ++u) {
    CAPTURE(u);
    std::set<std::string> waiting;
    for (int n = 1; n <= per_user; ++n)
      if (acknowledged.count(cid(u, n)) == 0)
        waiting.insert(cid(u, n));
    while (!waiting.empty()) {
      auto f = clients[u]->next_matching(
        [&](const json& f) {
          return f.value("type", "") == "error" ||
                 (f.value("type", "") == "message" && f.value("from", "") == "user" + std::to_string(u));
        },
        "an echo of a resent message");
      REQUIRE_MESSAGE(f["type"] == "message", f.dump());
      waiting.erase(f["cid"].get<std::string>());
    }
  }

  ws_client auditor;
  auditor.connect(server.port(), "auditor");
  auditor.join("durable");
  auto all = whole_history(auditor, "durable");
  REQUIRE(all.size() == users * per_user);
  std::map<std::string, uint64_t> id_of;
  for (std::size_t i = 0; i < all.size(); ++i) {
    CHECK(all[i]["id"] == i + 1);  // ids continue without gaps across the kill
    auto c = all[i]["cid"].get<std::string>();
    CHECK_MESSAGE(id_of.count(c) == 0, "cid " << c << " stored twice");
    id_of[c] = all[i]["id"].get<uint64_t>();
  }
  for (auto& [c, id] : acknowledged)
    CHECK_MESSAGE(id_of[c] == id, "acknowledged " << c << " as " << id << ", stored as " << id_of[c]);
  for (int u = 0; u < users; ++u)
    for (int n = 2; n <= per_user; ++n)
      CHECK_MESSAGE(id_of[cid(u, n - 1)] < id_of[cid(u, n)], cid(u, n) << " out of order");
}

TEST_CASE("a store that cannot write answers store_unavailable, the server keeps running, and "
          "recovers when space is freed") {
  scratch_dir data;
  server_process server{on_database(data.file("chat.db"), {{"store.max_db_bytes", "131072"},
                                                           {"store.retain_per_room", "3"},
                                                           {"store.retention_interval", "1s"},
                                                           {"protocol.max_text_bytes", "4000"},
                                                           {"connection.rate_per_second", "1000.0"},
                                                           {"connection.rate_burst", "1000.0"}})};
  ws_client alice;
  alice.connect(server.port(), "alice");
  alice.join("general");
  ws_client bob;
  bob.connect(server.port(), "bob");
  bob.join("general");
  auto big = filler(3900);
  json refusal;
  int accepted = 0;
  for (int i = 0; i < 200 && refusal.is_null(); ++i) {
    alice.send_json({{"type", "send"}, {"room", "general"}, {"text", big}, {"cid", "c" + std::to_string(i)}, {"ref", i}});
    auto f = alice.next_matching(
      [](const json& f) { return f.value("type", "") == "error" || f.value("type", "") == "message"; },
      "echo or error");
    if (f["type"] == "error")
      refusal = f;
    else
      ++accepted;
  }
  REQUIRE_MESSAGE(!refusal.is_null(), "the database never filled up");
  CHECK(refusal["code"] == "store_unavailable");
  auto refused_cid = "c" + std::to_string(refusal["ref"].get<int>());
  // Bob got every accepted message and nothing of the refused one.
  for (int i = 0; i < accepted; ++i)
    CHECK(bob.next_of_type("message")["cid"] != refused_cid);
  CHECK_FALSE(bob.try_next(300ms).has_value());
  // The server is still up and answering.
  alice.send_json({{"type", "ping"}, {"ref", "alive"}});
  CHECK(alice.next_of_type("pong")["ref"] == "alive");
  CHECK(http_get(server.port(), "/healthz").status == 200);
  // Retention frees space in the background; the client's retry with the same cid then lands.
  bool landed = false;
  for (int attempt = 0; attempt < 50 && !landed; ++attempt) {
    alice.send_json({{"type", "send"}, {"room", "general"}, {"text", big}, {"cid", refused_cid}});
    auto f = alice.next_matching(
      [](const json& f) { return f.value("type", "") == "error" || f.value("type", "") == "message"; },
      "echo or error");
    landed = f["type"] == "message";
    if (landed)
      CHECK(f["id"] == accepted + 1);
    else
      std::this_thread::sleep_for(200ms);
  }
  CHECK(landed);
  CHECK(server.output().find("message store unavailable") != std::string::npos);
  CHECK(server.output().find("message store recovered") != std::string::npos);
}

TEST_CASE("a database file that is not a database stops start-up with a clear message") {
  scratch_dir data;
  auto path = data.file("chat.db");
  {
    std::ofstream garbage{path, std::ios::binary};
    garbage << filler(10000, 'Z');
  }
  auto opts = on_database(path);
  opts.expect_listening = false;
  server_process server{opts};
  auto status = server.wait_for_exit(10s);
  REQUIRE_MESSAGE(status.has_value(), "the server kept running on a corrupt database");
  CHECK(status->exited);
  CHECK(status->code == 1);
  auto out = server.output();
  CHECK_MESSAGE(out.find("not a database") != std::string::npos, out);
  CHECK_MESSAGE(out.find(path) != std::string::npos, out);
  // The file is left as it was, for the operator to inspect or restore.
  CHECK(std::filesystem::file_size(path) == 10000);
}
