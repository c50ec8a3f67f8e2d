// End-to-end: the plain HTTP side of the listener and the Origin check on /ws.

#include "harness.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace parley::e2e;

namespace {

/// The headers of a WebSocket upgrade request for /ws, with this Origin.
std::vector<std::pair<std::string, std::string>> upgrade_headers(const std::string& origin) {
  return {{"Upgrade", "websocket"},
          {"Connection", "Upgrade"},
          {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="},
          {"Sec-WebSocket-Version", "13"},
          {"Origin", origin}};
}

} // namespace

TEST_CASE("the server announces its listening address on stdout") {
  server_process server;
  CHECK(server.port() != 0);
  CHECK_MESSAGE(server.listening_line_on_stdout(), "listening line only on stderr:\n" << server.output());
}

TEST_CASE("GET / serves the chat page as text/html") {
  server_process server;
  auto reply = http_get(server.port(), "/");
  CHECK(reply.status == 200);
  CHECK_MESSAGE(reply.content_type.rfind("text/html", 0) == 0, "Content-Type: " << reply.content_type);
  CHECK(!reply.body.empty());
}

TEST_CASE("GET /healthz answers 200") {
  server_process server;
  auto reply = http_get(server.port(), "/healthz");
  CHECK(reply.status == 200);
}

TEST_CASE("a WebSocket upgrade with a foreign Origin is refused with 403") {
  server_process server;
  auto reply = http_get(server.port(), "/ws?name=mallory", upgrade_headers("http://evil.example"));
  CHECK(reply.status == 403);

  // Controls: the same upgrade from the server's own origin, or without an Origin, is accepted.
  auto own = "http://127.0.0.1:" + std::to_string(server.port());
  auto same_origin = http_get(server.port(), "/ws?name=alice", upgrade_headers(own));
  CHECK(same_origin.status == 101);
  ws_client bob;
  auto welcome = bob.connect(server.port(), "bob");
  CHECK(welcome.value("user", "") == "bob");
}
