// The server's logs: JSON lines that all parse, an access line per request that never carries a
// name or token, and WebSocket open/close at debug.

#include "harness.hpp"

#include <doctest/doctest.h>

#include <sstream>

using namespace parley::e2e;

namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in{text};
  for (std::string line; std::getline(in, line);)
    if (!line.empty())
      lines.push_back(line);
  return lines;
}

/// Connects, joins, says something and closes politely (1000), so the logs have a whole session.
void chat_once(uint16_t port, ws_connect_options opts = {}) {
  ws_client client;
  client.connect(port, "secretname", opts);
  client.join("lobby");
  client.say("lobby", "hello", "c1");
  client.close();
}

} // namespace

TEST_CASE("with log.format json every output line is a JSON object, access lines included, and no secret leaks") {
  server_process server{{{{"log.format", "\"json\""}, {"log.level", "\"debug\""}}}};
  CHECK(http_get(server.port(), "/index.html?name=secretquery").status == 200);
  CHECK(http_get(server.port(), "/missing?token=secrettoken").status == 404);
  chat_once(server.port());
  ws_connect_options with_token;
  with_token.protocols = "parley.v1, parley.token.secretprotocol";
  chat_once(server.port(), with_token);
  {
    // A refusal is logged too: an upgrade from a foreign origin.
    raw_connection raw{server.port()};
    raw.send(raw_upgrade(server.port(), "Origin: https://evil.example\r\n"));
    CHECK(raw.read_until_close().status == 403);
  }
  CHECK(server.terminate().code == 0);
  auto out = server.output();
  CHECK_MESSAGE(out.find("secret") == std::string::npos, out);

  std::vector<json> access;
  bool listening = false;
  bool ws_opened = false;
  bool ws_closed_1000 = false;
  for (const auto& line : lines_of(out)) {
    if (line == "--- stderr ---")
      continue;  // the harness's separator between stdout and stderr
    json entry;
    REQUIRE_NOTHROW_MESSAGE(entry = json::parse(line), line);
    REQUIRE_MESSAGE(entry.is_object(), line);
    CHECK_MESSAGE(entry.contains("ts"), line);
    CHECK_MESSAGE(entry.contains("level"), line);
    REQUIRE_MESSAGE(entry["msg"].is_string(), line);
    auto msg = entry["msg"].get<std::string>();
    if (entry["logger"] == "access")
      access.push_back(entry);
    listening = listening || msg.rfind("parley listening on 127.0.0.1:", 0) == 0;
    ws_opened = ws_opened || (entry["level"] == "debug" && msg.find("websocket from 127.0.0.1 opened") == 0);
    ws_closed_1000 = ws_closed_1000 || msg == "websocket from 127.0.0.1 closed by the client with 1000";
  }
  CHECK(listening);
  CHECK(ws_opened);
  CHECK(ws_closed_1000);
  auto has_access = [&](const std::string& start) {
    for (const auto& entry : access)
      if (entry["level"] == "info" && entry["msg"].get<std::string>().rfind(start, 0) == 0)
        return true;
    return false;
  };
  CHECK(has_access("127.0.0.1 GET /index.html 200 "));
  CHECK(has_access("127.0.0.1 GET /missing 404 "));
  CHECK(has_access("127.0.0.1 GET /ws 101 "));
  CHECK(has_access("127.0.0.1 GET /ws 403 "));
}

TEST_CASE("text logs carry an access line per request, and debug lines only when asked for") {
  server_process server;
  CHECK(http_get(server.port(), "/healthz?name=secretquery").status == 200);
  chat_once(server.port());
  server.terminate();
  auto out = server.output();
  CHECK_MESSAGE(out.find("[access] [info] 127.0.0.1 GET /healthz 200 ") != std::string::npos, out);
  CHECK(out.find("127.0.0.1 GET /ws 101 ") != std::string::npos);
  CHECK(out.find("secret") == std::string::npos);
  CHECK(out.find("websocket from") == std::string::npos);  // debug: not at the default level
}

TEST_CASE("the access log names the client a trusted proxy forwards for") {
  server_process server{{{{"server.trusted_proxies", "[\"127.0.0.1\"]"}}}};
  CHECK(http_get(server.port(), "/healthz", {{"X-Forwarded-For", "203.0.113.9"}}).status == 200);
  server.terminate();
  CHECK_MESSAGE(server.output().find("203.0.113.9 GET /healthz 200 ") != std::string::npos, server.output());
}
