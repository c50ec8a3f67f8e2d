// End-to-end: limits per client address and for the whole server, each refused with an HTTP
// answer before the upgrade, and X-Forwarded-For believed only from trusted proxies.

#include "harness.hpp"

#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

using namespace parley::e2e;

namespace {

using connections = std::vector<std::unique_ptr<raw_connection>>;

/// Opens `n` connections that send nothing (yet).
connections open_idle(uint16_t port, std::size_t n) {
  connections out;
  for (std::size_t i = 0; i < n; ++i)
    out.push_back(std::make_unique<raw_connection>(port));
  return out;
}

/// GET /healthz on a new connection, with extra header lines; the connection stays open.
raw_reply healthz(connections& keep, uint16_t port, const std::string& extra_lines = "") {
  keep.push_back(std::make_unique<raw_connection>(port));
  keep.back()->send(raw_get(port, "/healthz", extra_lines));
  return keep.back()->read_head();
}

/// Retries `request` until it is answered with `status` (the server learns of closed
/// connections a moment later); the last reply otherwise.
raw_reply eventually(uint16_t port, const std::string& request, unsigned status) {
  raw_reply reply;
  for (int attempt = 0; attempt < 100; ++attempt) {
    raw_connection conn{port};
    conn.send(request);
    reply = conn.read_head();
    if (reply.status == status)
      break;
    std::this_thread::sleep_for(20ms);
  }
  return reply;
}

} // namespace

TEST_CASE("past max_connections_per_address a client address gets 429 with Retry-After") {
  server_options opts;
  opts.args = {"--limits.max_connections_per_address=3"};
  server_process server{opts};
  auto port = server.port();
  // Idle connections count too: they hold a descriptor each.
  auto idle = open_idle(port, 3);
  raw_connection fourth{port};
  fourth.send(raw_upgrade(port));
  auto refused = fourth.read_until_close();
  CHECK_MESSAGE(refused.status == 429, refused.text);
  CHECK(!refused.header("Retry-After").empty());
  CHECK(refused.header("Connection") == "close");
  CHECK(refused.closed);

  // One connection ends: its place is free again (the refused one counts until it is closed).
  fourth.close();
  idle.front()->close();
  auto accepted = eventually(port, raw_upgrade(port), 101);
  CHECK(accepted.status == 101);
}

TEST_CASE("past handshakes_per_second and handshake_burst upgrades get 429 with Retry-After") {
  server_options opts;
  // Half a token per second: nothing refills while the test runs.
  opts.ini["limits.handshakes_per_second"] = "0.5";
  opts.ini["limits.handshake_burst"] = "3.0";
  server_process server{opts};
  auto port = server.port();
  connections upgraded;
  for (int i = 0; i < 3; ++i) {
    upgraded.push_back(std::make_unique<raw_connection>(port));
    upgraded.back()->send(raw_upgrade(port));
    CHECK(upgraded.back()->read_head().status == 101);
  }
  raw_connection over{port};
  over.send(raw_upgrade(port));
  auto refused = over.read_until_close();
  CHECK_MESSAGE(refused.status == 429, refused.text);
  CHECK(std::stoi("0" + refused.header("Retry-After")) >= 1);
  CHECK(refused.closed);
  // Plain HTTP requests spend no handshake tokens.
  CHECK(http_get(port, "/healthz").status == 200);
}

TEST_CASE("at max_connections upgrades get 503 while /healthz is still answered, and past the "
          "reserve connections are closed at once") {
  server_options opts;
  opts.args = {"--limits.max_connections=3"};
  server_process server{opts};
  auto port = server.port();
  auto idle = open_idle(port, 3);

  raw_connection over{port};
  over.send(raw_upgrade(port));
  auto refused = over.read_until_close();
  CHECK_MESSAGE(refused.status == 503, refused.text);
  CHECK(refused.header("Connection") == "close");
  CHECK(refused.closed);

  connections answered;
  auto health = healthz(answered, port);
  CHECK(health.status == 200);

  // The answer reserve (16 connections over the limit) filled up: the next is closed unanswered.
  auto reserve = open_idle(port, 15);
  raw_connection beyond{port};
  beyond.send(raw_get(port, "/healthz"));
  auto dropped = beyond.read_until_close();
  CHECK(dropped.closed);
  CHECK(dropped.status == 0);

  // Once connections end, upgrades work again.
  over.close();
  beyond.close();
  idle.clear();
  reserve.clear();
  answered.clear();
  CHECK(eventually(port, raw_upgrade(port), 101).status == 101);
}

TEST_CASE("X-Forwarded-For from an untrusted peer does not dodge the per-address limit") {
  server_options opts;
  opts.args = {"--limits.max_connections_per_address=2"};
  server_process server{opts};
  auto port = server.port();
  connections open;
  CHECK(healthz(open, port, "X-Forwarded-For: 198.51.100.1\r\n").status == 200);
  CHECK(healthz(open, port, "X-Forwarded-For: 198.51.100.2\r\n").status == 200);
  CHECK(healthz(open, port, "X-Forwarded-For: 198.51.100.3\r\n").status == 429);
}

TEST_CASE("from a trusted proxy the per-address limit applies per forwarded address") {
  server_options opts;
  opts.ini["server.trusted_proxies"] = "[\"127.0.0.1\"]";
  opts.args = {"--limits.max_connections_per_address=2"};
  server_process server{opts};
  auto port = server.port();
  connections open;
  // Four connections from 127.0.0.1, the proxy: two clients, two connections each.
  CHECK(healthz(open, port, "X-Forwarded-For: 198.51.100.1\r\n").status == 200);
  CHECK(healthz(open, port, "X-Forwarded-For: 198.51.100.1\r\n").status == 200);
  CHECK(healthz(open, port, "X-Forwarded-For: 203.0.113.5, 198.51.100.2\r\n").status == 200);
  CHECK(healthz(open, port, "X-Forwarded-For: 198.51.100.2\r\n").status == 200);
  // A third from the first client is over its limit; so is a forged entry left of it.
  CHECK(healthz(open, port, "X-Forwarded-For: 198.51.100.1\r\n").status == 429);
  CHECK(healthz(open, port, "X-Forwarded-For: 203.0.113.9, 198.51.100.1\r\n").status == 429);
}
