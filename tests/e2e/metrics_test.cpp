// End-to-end: /metrics on the admin listener reports what really happened, in a format promtool
// accepts.

#include "harness.hpp"

#include <doctest/doctest.h>

#include <cstdio>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>

using namespace parley::e2e;
using namespace std::chrono_literals;

namespace {

/// The value of the sample written exactly as `series` (name plus labels as rendered), if any.
std::optional<double> sample(const std::string& text, const std::string& series) {
  std::istringstream in{text};
  std::string line;
  while (std::getline(in, line))
    if (line.size() > series.size() && line.compare(0, series.size(), series) == 0 && line[series.size()] == ' ')
      return std::stod(line.substr(series.size() + 1));
  return std::nullopt;
}

std::string scrape(const server_process& server) {
  auto reply = http_get(server.admin_port(), "/metrics");
  REQUIRE(reply.status == 200);
  CHECK_MESSAGE(reply.content_type.rfind("text/plain; version=0.0.4", 0) == 0, reply.content_type);
  return reply.body;
}

/// Waits until the sample reaches `want` (metrics of other threads land a moment later).
double wait_for_sample(const server_process& server, const std::string& series, double want) {
  double last = -1;
  for (int i = 0; i < 100; ++i) {
    last = sample(scrape(server), series).value_or(-1);
    if (last >= want)
      return last;
    std::this_thread::sleep_for(50ms);
  }
  return last;
}

} // namespace

TEST_CASE("/metrics on the admin port counts connections, frames, messages and deliveries") {
  server_process server;
  ws_client alice;
  alice.connect(server.port(), "alice");
  alice.join("general");
  ws_client bob;
  bob.connect(server.port(), "bob");
  bob.join("general");
  for (int i = 0; i < 3; ++i) {
    alice.say("general", "hello " + std::to_string(i), "c" + std::to_string(i));
    bob.next_of_type("message");
  }

  CHECK(wait_for_sample(server, "parley_messages_accepted_total", 3) == 3);
  // Each message reaches both members.
  CHECK(wait_for_sample(server, "parley_deliveries_total", 6) >= 6);
  auto text = scrape(server);
  CHECK(sample(text, "parley_connections_open") == 2);
  CHECK(sample(text, "parley_connections_opened_total") == 2);
  CHECK(sample(text, "parley_frames_in_total{type=\"send\"}") == 3);
  CHECK(sample(text, "parley_frames_in_total{type=\"join\"}") == 2);
  CHECK(sample(text, "parley_rooms") >= 1);
  CHECK(sample(text, "parley_room_members") == 2);
  CHECK(sample(text, "process_resident_memory_bytes").value_or(0) > 1e6);
  CHECK(sample(text, "process_open_fds").value_or(0) > 4);
  // Delivery latency was observed for the messages written to the members (each I/O thread
  // batches its observations and hands them over at least once a second).
  CHECK(wait_for_sample(server, "parley_delivery_latency_seconds_count", 6) >= 6);
  // Mailbox depth is sampled per actor kind.
  CHECK(text.find("parley_mailbox_depth_bucket{kind=\"room\"") != std::string::npos);
  CHECK(text.find("parley_mailbox_depth_bucket{kind=\"session\"") != std::string::npos);

  bob.close();
  CHECK(wait_for_sample(server, "parley_connections_closed_total{code=\"1000\"}", 1) == 1);
  CHECK(sample(scrape(server), "parley_connections_open") == 1);
}

TEST_CASE("/metrics is only on the admin port, not on the public one") {
  server_process server;
  CHECK(http_get(server.port(), "/metrics").status == 404);
  CHECK(http_get(server.admin_port(), "/metrics").status == 200);
}

TEST_CASE("promtool accepts the metrics a busy server renders") {
  server_process server;
  ws_client alice;
  alice.connect(server.port(), "alice");
  alice.join("general");
  alice.say("general", "hello", "c1");
  auto text = scrape(server);
  scratch_dir dir;
  auto path = dir.file("metrics.txt");
  std::ofstream{path} << text;
  auto command = "promtool check metrics < " + path + " 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  REQUIRE(pipe);
  std::string out;
  char buf[512];
  while (auto n = std::fread(buf, 1, sizeof buf, pipe))
    out.append(buf, n);
  int rc = ::pclose(pipe);
  CHECK_MESSAGE(rc == 0, "promtool check metrics failed (is the prometheus package installed?):\n" << out);
}
