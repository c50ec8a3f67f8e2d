// End-to-end: bad input gets precise errors, too much bad input or too large a frame ends the
// connection with the documented close code.

#include "harness.hpp"

#include <doctest/doctest.h>

#include <optional>
#include <string>
#include <vector>

using namespace parley::e2e;

namespace {

constexpr std::size_t max_text = 4096;
constexpr std::size_t max_frame = 65536;

struct bad_frame {
  std::string what;
  std::string payload;
  bool binary = false;
  std::string code;            ///< expected error code
  std::optional<std::string> ref;  ///< expected echoed ref, when the frame carried one
};

std::vector<bad_frame> bad_frames() {
  json too_long = {{"type", "send"}, {"room", "general"}, {"text", filler(max_text + 1)},
                   {"cid", "long"}, {"ref", "r-long"}};
  return {
    {"malformed JSON", R"({"type":"ping",)", false, "bad_json", std::nullopt},
    {"unknown type", R"({"type":"dance","ref":"r-type"})", false, "unknown_type", "r-type"},
    {"missing field", R"({"type":"join","ref":"r-missing"})", false, "missing_field", "r-missing"},
    {"invalid room name", R"({"type":"join","room":"no spaces!","ref":"r-name"})", false,
     "invalid_name", "r-name"},
    {"text over the limit", too_long.dump(), false, "text_too_long", "r-long"},
    {"not a member", R"({"type":"send","room":"elsewhere","text":"hi","ref":"r-member"})", false,
     "not_member", "r-member"},
    {"binary frame", "\x01\x02\x03", true, "binary_not_supported", std::nullopt},
  };
}

server_options limits(std::size_t abuse_limit) {
  server_options opts;
  opts.ini["protocol.max_text_bytes"] = std::to_string(max_text);
  opts.ini["connection.max_frame_bytes"] = std::to_string(max_frame);
  opts.ini["connection.abuse_limit"] = std::to_string(abuse_limit);
  return opts;
}

void expect_pong(ws_client& client, const std::string& ref) {
  client.send_json({{"type", "ping"}, {"ref", ref}});
  auto pong = client.next();
  CHECK_MESSAGE(pong.value("type", "") == "pong", "expected a pong, got " << pong.dump());
  CHECK(pong.value("ref", "") == ref);
}

} // namespace

TEST_CASE("each kind of bad frame gets its error code and the connection keeps working") {
  server_process server{limits(20)};
  ws_client client;
  client.connect(server.port(), "alice");
  client.join("general");
  // The room's presence_diff announcing this join reaches the joiner too: take it out of the way.
  client.next_of_type("presence_diff");

  int n = 0;
  for (const auto& bad : bad_frames()) {
    INFO("case: " << bad.what);
    if (bad.binary)
      client.send_binary(bad.payload);
    else
      client.send_raw_text(bad.payload);
    auto error = client.next();
    CHECK_MESSAGE(error.value("type", "") == "error", "expected an error, got " << error.dump());
    CHECK(error.value("code", "") == bad.code);
    CHECK(error.contains("message"));
    // Errors always carry "ref": the command's own, or null when it had none.
    REQUIRE_MESSAGE(error.contains("ref"), "error without a ref key: " << error.dump());
    if (bad.ref)
      CHECK(error["ref"] == *bad.ref);
    else
      CHECK(error["ref"].is_null());
    expect_pong(client, "after-" + std::to_string(++n));
  }

  // A text exactly at the limit is fine.
  auto echo = client.say("general", filler(max_text), "at-limit");
  CHECK(echo.value("text", "").size() == max_text);
}

TEST_CASE("a frame larger than max_frame_bytes closes the connection with 1009") {
  server_process server{limits(20)};
  ws_client client;
  client.connect(server.port(), "alice");
  expect_pong(client, "before");

  // The server may close while the frame is still arriving, so a failed write is not an error here.
  client.try_send_raw_text(filler(max_frame + 1024));
  auto end = client.expect_close();
  CHECK_MESSAGE(end.close_frame, "no close frame; transport error: " << end.error);
  CHECK(end.code == 1009);
}

TEST_CASE("an invalid user name gets invalid_name and then close 4001") {
  server_process server;
  for (const auto& name : std::vector<std::string>{"bad!name", filler(33, 'n')}) {
    CAPTURE(name);
    ws_client client;
    ws_connect_options opts;
    opts.expect_welcome = false;
    client.connect(server.port(), name, opts);
    auto error = client.next_of_type("error");
    CHECK(error.value("code", "") == "invalid_name");
    auto end = client.expect_close();
    CHECK_MESSAGE(end.close_frame, "no close frame; transport error: " << end.error);
    CHECK(end.code == 4001);
  }
}

TEST_CASE("continued abuse closes the connection with 4002") {
  constexpr std::size_t abuse_limit = 5;
  server_process server{limits(abuse_limit)};
  ws_client client;
  client.connect(server.port(), "mallory");

  // One bad frame at a time, so the server never closes with our data unread (which could reset
  // the connection and lose the close frame).
  std::size_t errors = 0;
  std::optional<close_info> end;
  for (int i = 0; i < 30 && !end; ++i) {
    REQUIRE_MESSAGE(client.try_send_raw_text("{not json"), "write failed before any close arrived");
    auto event = client.next_or_close();
    if (event.close) {
      end = event.close;
    } else {
      CHECK(event.frame->value("code", "") == "bad_json");
      ++errors;
    }
  }
  REQUIRE_MESSAGE(end, "still open after 30 bad frames with abuse_limit " << abuse_limit);
  CHECK_MESSAGE(end->close_frame, "no close frame; transport error: " << end->error);
  CHECK(end->code == 4002);
  INFO("errors answered before the close: " << errors);
  // "More than abuse_limit errors" close the connection: exactly abuse_limit errors are tolerated.
  CHECK(errors >= abuse_limit);
  CHECK(errors <= abuse_limit + 1);
}

TEST_CASE("rate limits written as INI integers take effect and excess frames get rate_limited") {
  // The documented INI form is "rate_per_second=20". A double setting that is silently ignored when
  // written as an integer would leave such deployments on the defaults (the command line form
  // --connection.rate_burst=3 does work).
  server_options opts;
  opts.ini["connection.rate_per_second"] = "1";
  opts.ini["connection.rate_burst"] = "3";
  server_process server{opts};
  ws_client client;
  client.connect(server.port(), "hasty");

  constexpr int sent = 10;
  for (int i = 0; i < sent; ++i)
    client.send_json({{"type", "ping"}, {"ref", "p-" + std::to_string(i)}});
  int pongs = 0;
  int limited = 0;
  for (int i = 0; i < sent; ++i) {
    auto reply = client.next();
    if (reply.value("type", "") == "pong")
      ++pongs;
    else if (reply.value("code", "") == "rate_limited")
      ++limited;
  }
  INFO("pongs " << pongs << ", rate_limited " << limited);
  CHECK(pongs >= 3);
  CHECK(pongs <= 5);  // the burst of 3, plus at most a token or two refilled meanwhile
  CHECK(limited == sent - pongs);
}
