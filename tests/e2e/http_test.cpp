// End-to-end: the plain HTTP side of the listener and the Origin check on /ws.

#include "harness.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace parley::e2e;
using namespace std::string_literals;

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

// -- refused requests: a status, Connection: close, and the socket closed right after --------------

namespace {

/// Sends `request` on a fresh connection and expects `status` with Connection: close, and the
/// server to close the connection within the wait: 5 s, half the handshake timeout, so a server
/// that keeps the connection open for another request fails.
void expect_refused_and_closed(uint16_t port, const std::string& request, unsigned status) {
  raw_connection conn{port};
  conn.send(request);
  auto reply = conn.read_until_close(5s);
  CHECK_MESSAGE(reply.status == status, "expected " << status << ", got:\n" << reply.text.substr(0, 300));
  CHECK(reply.header("Connection") == "close");
  CHECK_MESSAGE(reply.closed, "the server kept the connection open after " << reply.status);
}

} // namespace

TEST_CASE("malformed requests get 400 and the connection is closed") {
  server_process server;
  auto port = server.port();
  INFO("NUL byte in the target");
  expect_refused_and_closed(port, "GET /a\0b HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"s, 400);
  INFO("bad request line");
  expect_refused_and_closed(port, "HELLO\r\n\r\n", 400);
  INFO("bad header line");
  expect_refused_and_closed(port, "GET / HTTP/1.1\r\nHost 127.0.0.1\r\n\r\n", 400);
}

TEST_CASE("POST /ws gets 405 with Allow and the connection is closed") {
  server_process server;
  raw_connection conn{server.port()};
  conn.send("POST /ws HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(server.port()) +
            "\r\nContent-Length: 2\r\n\r\nhi");
  auto reply = conn.read_until_close(5s);
  CHECK(reply.status == 405);
  CHECK(reply.header("Allow") == "GET");
  CHECK(reply.header("Connection") == "close");
  CHECK(reply.closed);
}

TEST_CASE("GET /ws without Upgrade gets 426 and the connection is closed") {
  server_process server;
  raw_connection conn{server.port()};
  conn.send(raw_get(server.port(), "/ws"));
  auto reply = conn.read_until_close(5s);
  CHECK(reply.status == 426);
  CHECK(reply.header("Upgrade") == "websocket");
  CHECK(reply.header("Connection") == "close");
  CHECK(reply.closed);
}

TEST_CASE("a 10 KB path gets 414, a header past 8 KiB 431, a large body 413, each closing") {
  server_process server;
  auto port = server.port();
  INFO("long path");
  expect_refused_and_closed(port, raw_get(port, "/" + filler(10 * 1024)), 414);
  INFO("large header");
  expect_refused_and_closed(port, raw_get(port, "/", "X-Padding: " + filler(9 * 1024) + "\r\n"), 431);
  INFO("large body");
  expect_refused_and_closed(port,
                            "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\n" +
                              filler(100000),
                            413);
}

TEST_CASE("a request that does not arrive within handshake_timeout gets 408, then the close") {
  server_options opts;
  opts.ini["connection.handshake_timeout"] = "1s";
  server_process server{opts};
  INFO("half a request");
  raw_connection slow{server.port()};
  slow.send("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n");
  auto reply = slow.read_until_close(5s);
  CHECK(reply.status == 408);
  CHECK(reply.header("Connection") == "close");
  CHECK(reply.closed);
  INFO("nothing at all");
  raw_connection silent{server.port()};
  auto silent_reply = silent.read_until_close(5s);
  CHECK(silent_reply.status == 408);
  CHECK(silent_reply.closed);
}

TEST_CASE("a missing file (404) keeps the connection for the next request") {
  server_process server;
  raw_connection conn{server.port()};
  conn.send(raw_get(server.port(), "/no-such-file"));
  auto missing = conn.read_head();
  CHECK(missing.status == 404);
  CHECK(missing.header("Connection") != "close");
  CHECK_FALSE(missing.closed);
}

// -- DNS rebinding -------------------------------------------------------------------------------

TEST_CASE("a request for a foreign Host is refused with 421, even with a matching Origin") {
  server_process server;
  auto port = std::to_string(server.port());
  // A page on evil.example whose name resolves to this server: Host and Origin agree.
  auto evil = upgrade_headers("http://evil.example:" + port);
  evil.emplace_back("Host", "evil.example:" + port);
  CHECK(http_get(server.port(), "/ws?name=mallory", evil).status == 421);
  CHECK(http_get(server.port(), "/", {{"Host", "evil.example:" + port}}).status == 421);

  // Controls: the names of this machine work.
  auto own = upgrade_headers("http://127.0.0.1:" + port);
  own.emplace_back("Host", "127.0.0.1:" + port);
  CHECK(http_get(server.port(), "/ws?name=alice", own).status == 101);
  auto local = upgrade_headers("http://localhost:" + port);
  local.emplace_back("Host", "localhost:" + port);
  CHECK(http_get(server.port(), "/ws?name=bob", local).status == 101);
}

TEST_CASE("an empty allowed_hosts answers any Host") {
  server_options opts;
  opts.ini["server.allowed_hosts"] = "[]";
  server_process server{opts};
  auto port = std::to_string(server.port());
  CHECK(http_get(server.port(), "/healthz", {{"Host", "chat.example.com:" + port}}).status == 200);
}
