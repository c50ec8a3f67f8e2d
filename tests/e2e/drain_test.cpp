// End-to-end: a drain (SIGTERM) lets connections go spread over [server] drain_period, each close
// hinting a reconnect delay, and refuses new connections meanwhile.

#include "harness.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <csignal>
#include <mutex>
#include <regex>
#include <set>
#include <thread>
#include <vector>

using namespace parley::e2e;
using namespace std::chrono_literals;

namespace {

struct observed_close {
  close_info end;
  long long at_ms = 0;  ///< after the signal
};

/// The reconnect delay in a drain close reason, or -1.
long long hinted_delay(const std::string& reason) {
  std::smatch m;
  static const std::regex hint{"reconnect_after_ms=(\\d+)"};
  return std::regex_search(reason, m, hint) ? std::stoll(m[1]) : -1;
}

} // namespace

TEST_CASE("SIGTERM drains: 1001 closes spread over drain_period, each with a reconnect hint") {
  constexpr int client_count = 20;
  server_options opts;
  opts.ini["server.drain_period"] = "2s";
  server_process server{opts};
  std::vector<ws_client> clients(client_count);
  for (int i = 0; i < client_count; ++i)
    clients[i].connect(server.port(), "user" + std::to_string(i));

  std::vector<observed_close> closes(client_count);
  auto signalled = std::chrono::steady_clock::now();
  server.send_signal(SIGTERM);
  std::vector<std::thread> readers;
  for (int i = 0; i < client_count; ++i)
    readers.emplace_back([&, i] {
      closes[i].end = clients[i].expect_close(8s);
      closes[i].at_ms = elapsed_ms(signalled);
    });

  // Meanwhile the server takes no new connection: a load balancer's next node (or this one
  // after its restart) gets the client.
  std::this_thread::sleep_for(300ms);
  auto refused = http_get(server.port(), "/ws?name=late",
                          {{"Upgrade", "websocket"},
                           {"Connection", "Upgrade"},
                           {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="},
                           {"Sec-WebSocket-Version", "13"}});
  CHECK(refused.status == 503);
  for (auto& t : readers)
    t.join();

  std::set<long long> hints;
  long long first = 1'000'000;
  long long last = 0;
  for (const auto& c : closes) {
    CHECK_MESSAGE(c.end.close_frame, "no close frame: " << c.end.error);
    CHECK(c.end.code == 1001);
    auto hint = hinted_delay(c.end.reason);
    CHECK_MESSAGE(hint >= 0, "no reconnect hint in \"" << c.end.reason << '"');
    CHECK(hint <= 2000);
    hints.insert(hint);
    first = std::min(first, c.at_ms);
    last = std::max(last, c.at_ms);
  }
  // Evenly paced, the 20 closes span about 1.9 s; all at once they would span a few ms.
  CHECK_MESSAGE(last - first >= 1000, "closes from " << first << " to " << last << " ms");
  CHECK_MESSAGE(last <= 4000, "the last close came " << last << " ms after the signal");
  CHECK_MESSAGE(hints.size() >= 10, "the hints barely differ: " << hints.size() << " distinct");

  auto status = server.wait_for_exit(6s);
  REQUIRE_MESSAGE(status, "still running after the drain");
  CHECK_MESSAGE(status->exited, status->describe());
  CHECK(status->code == 0);
}

TEST_CASE("a second SIGTERM during a drain stops the server at once") {
  server_options opts;
  opts.ini["server.drain_period"] = "30s";
  server_process server{opts};
  ws_client alice;
  alice.connect(server.port(), "alice");
  ws_client bob;
  bob.connect(server.port(), "bob");

  auto signalled = std::chrono::steady_clock::now();
  server.send_signal(SIGTERM);
  // Read while the server stops, as a browser would: a close frame left unread when the server
  // drops the socket would be lost to the reset.
  close_info ends[2];
  std::thread readers[] = {std::thread{[&] { ends[0] = alice.expect_close(8s); }},
                           std::thread{[&] { ends[1] = bob.expect_close(8s); }}};
  std::this_thread::sleep_for(300ms);
  server.send_signal(SIGTERM);
  auto status = server.wait_for_exit(8s);
  for (auto& t : readers)
    t.join();
  REQUIRE_MESSAGE(status, "a second SIGTERM did not stop a 30 s drain");
  CHECK(status->code == 0);
  CHECK(elapsed_ms(signalled) < 8000);
  // Whoever was still connected got the shutdown close, not silence.
  for (const auto& end : ends) {
    CHECK_MESSAGE(end.close_frame, "no close frame: " << end.error);
    CHECK(end.code == 1001);
  }
}
