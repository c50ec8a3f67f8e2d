// The metric catalogue: registered once, every contract name present, and each metric moved by the
// code it instruments (actors on the deterministic scheduler, the net layer's sink and refusal log,
// the process readings). Metrics are process-wide, so every check compares before and after.
// Last, the whole exposition after real activity goes through `promtool check metrics`.

#include "actor_fixture.hpp"

#include "actors/directory.hpp"
#include "actors/presence.hpp"
#include "actors/session.hpp"
#include "actors/supervisor.hpp"
#include "metrics/process_metrics.hpp"
#include "metrics/server_metrics.hpp"
#include "net/connection_sink.hpp"
#include "net/io_loop.hpp"
#include "net/refusal_log.hpp"
#include "protocol/codec.hpp"

#include <boost/asio/io_context.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

using namespace parley;
using namespace parley::testing;
using namespace std::chrono_literals;

namespace {

metrics::catalogue& stats() {
  return metrics::server_metrics();
}

uint64_t count_of(metrics::family<metrics::counter>& f, const std::string& label) {
  return f.with({label}).value();
}

uint64_t observations(const metrics::histogram& h) {
  return h.read().count;
}

/// The names and types of the "# TYPE" lines of an exposition.
std::map<std::string, std::string> declared_types(const std::string& text) {
  std::map<std::string, std::string> out;
  std::istringstream in{text};
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("# TYPE ", 0) != 0)
      continue;
    std::istringstream words{line.substr(7)};
    std::string name, type;
    words >> name >> type;
    out[name] = type;
  }
  return out;
}

// -- a session with the real directory, rooms, presence and store ----------------------------------

struct client {
  session_actor handle;
  std::shared_ptr<recording_sink> sink;
};

struct server_fixture : fixture {
  supervisor_actor sup;
  session_config cfg;

  server_fixture() {
    spawn_store();
    sup = spawn(supervisor, supervisor_settings{}, uint64_t{1}, [](const std::string&) {});
    spawn(presence, std::make_shared<presence_memory>(caf::timespan{5s}));
    room_config rcfg;
    rcfg.rooms.capacity = 10;
    spawn(directory, std::make_shared<directory_memory>(), sup, rcfg);
    cfg.rate_per_second = 5;
    cfg.rate_burst = 10;
    cfg.abuse_limit = 1000;
    cfg.abuse_window = 10s;
    cfg.max_rooms = 5;
    run();
  }

  ~server_fixture() {
    caf::anon_send(sup, stop_atom::value);
    run();
  }

  client connect(const std::string& name) {
    client c{session_actor{}, std::make_shared<recording_sink>()};
    auth::identity who;
    who.user = name;
    c.handle = spawn(session, frame_sink_ptr{c.sink}, std::optional<auth::identity>{who},
                     std::make_shared<const session_config>(cfg));
    run();
    return c;
  }

  void send(client& c, const std::string& json) {
    caf::anon_send(c.handle, inbound_atom::value, protocol::decode(json, protocol::codec_limits{}));
    run();
  }

  /// Two members in "lobby", one message from each: some of everything the actors count.
  void chat() {
    auto alice = connect("alice");
    auto bob = connect("bob");
    send(alice, R"({"type":"join","room":"lobby"})");
    send(bob, R"({"type":"join","room":"lobby"})");
    send(alice, R"({"type":"send","room":"lobby","text":"hi"})");
    send(bob, R"({"type":"send","room":"lobby","text":"hello"})");
  }
};

// -- a supervisor with idle children --------------------------------------------------------------

caf::behavior idle_child(caf::event_based_actor* self, int /* UBSan and spawns without arguments */) {
  return {[self](stop_atom) { self->quit(); }};
}

} // namespace

TEST_CASE("the catalogue is registered once and renders every metric of the contract") {
  auto& first = metrics::server_metrics();
  auto& second = metrics::server_metrics();
  CHECK(&first == &second);
  // Registering again by hand is what a second registration would do: the registry refuses it.
  CHECK_THROWS_AS(metrics::process_registry().add_gauge("parley_rooms", "again"), std::invalid_argument);

  // docs/operations.md "Metrics" and /work/notes/metric-names.md; parley_draining and parley_ready
  // belong to the admin listener.
  const std::map<std::string, std::string> contract = {
    {"parley_connections_open", "gauge"},
    {"parley_connections_opened_total", "counter"},
    {"parley_connections_closed_total", "counter"},
    {"parley_handshakes_refused_total", "counter"},
    {"parley_frames_in_total", "counter"},
    {"parley_messages_accepted_total", "counter"},
    {"parley_deliveries_total", "counter"},
    {"parley_frames_dropped_total", "counter"},
    {"parley_slow_consumer_closes_total", "counter"},
    {"parley_rate_limited_total", "counter"},
    {"parley_rooms", "gauge"},
    {"parley_room_members", "gauge"},
    {"parley_mailbox_depth_max", "gauge"},
    {"parley_mailbox_depth", "histogram"},
    {"parley_store_commit_seconds", "histogram"},
    {"parley_store_commit_group_size", "histogram"},
    {"parley_delivery_latency_seconds", "histogram"},
    {"parley_supervisor_restarts_total", "counter"},
    {"parley_supervisor_give_ups_total", "counter"},
    {"parley_redis_failures_total", "counter"},
    {"parley_cluster_messages_read_total", "counter"},
    {"parley_cluster_events_total", "counter"},
    {"process_resident_memory_bytes", "gauge"},
    {"process_open_fds", "gauge"},
    {"process_max_fds", "gauge"},
    {"process_cpu_seconds_total", "counter"},
    {"process_start_time_seconds", "gauge"},
  };
  auto declared = declared_types(metrics::process_registry().render());
  for (const auto& [name, type] : contract) {
    INFO(name);
    REQUIRE(declared.count(name) == 1);
    CHECK(declared[name] == type);
  }
  // Every actor kind has its mailbox series from the start.
  auto text = metrics::process_registry().render();
  for (const char* kind : {"session", "room", "presence", "directory", "store", "supervisor"}) {
    INFO(kind);
    CHECK(text.find(std::string{"parley_mailbox_depth_max{kind=\""} + kind + "\"}") != std::string::npos);
  }
}

TEST_CASE("a child's kind is its key up to the first colon") {
  CHECK(metrics::child_kind("room:general") == "room");
  CHECK(metrics::child_kind("room:a:b") == "room");
  CHECK(metrics::child_kind("store") == "store");
  CHECK(metrics::child_kind("") == "");
}

TEST_CASE_FIXTURE(server_fixture, "sessions, rooms and the store count frames, messages, deliveries and commits") {
  auto& m = stats();
  auto joins = count_of(m.frames_in, "join");
  auto sends = count_of(m.frames_in, "send");
  auto accepted = m.messages_accepted.value();
  auto deliveries = m.deliveries.value();
  auto rooms = m.rooms.value();
  auto members = m.room_members.value();
  auto commits = observations(m.store_commit_seconds);
  auto grouped = m.store_commit_group_size.read();
  auto session_samples = observations(*m.depth[0]);
  auto room_samples = observations(*m.depth[1]);
  auto directory_samples = observations(*m.depth[3]);
  auto store_samples = observations(*m.depth[4]);

  auto alice = connect("alice");
  auto bob = connect("bob");
  send(alice, R"({"type":"join","room":"lobby"})");
  send(bob, R"({"type":"join","room":"lobby"})");
  CHECK(m.rooms.value() == rooms + 1);
  CHECK(m.room_members.value() == members + 2);
  send(alice, R"({"type":"send","room":"lobby","text":"hi"})");
  send(bob, R"({"type":"send","room":"lobby","text":"hello"})");
  send(bob, R"({"type":"kick","room":"lobby","user":"alice"})");
  send(bob, R"({"nonsense":1})");

  CHECK(count_of(m.frames_in, "join") == joins + 2);
  CHECK(count_of(m.frames_in, "send") == sends + 2);
  CHECK(count_of(m.frames_in, "kick") >= 1);
  CHECK(count_of(m.frames_in, "invalid") >= 1);
  CHECK(m.messages_accepted.value() == accepted + 2);
  // Two messages fanned out to two members each.
  CHECK(m.deliveries.value() == deliveries + 4);
  CHECK(observations(m.store_commit_seconds) >= commits + 1);
  auto group = m.store_commit_group_size.read();
  CHECK(group.count > grouped.count);
  CHECK(group.sum >= grouped.sum + 2);  // both messages were written, in one commit or two
  CHECK(observations(*m.depth[0]) >= session_samples + 6);
  CHECK(observations(*m.depth[1]) >= room_samples + 4);  // two joins, two posts
  CHECK(observations(*m.depth[3]) >= directory_samples + 2);
  CHECK(observations(*m.depth[4]) >= store_samples + 2);
  CHECK(m.depth_max[0]->value() >= 0);
}

TEST_CASE_FIXTURE(server_fixture, "frames past the token bucket and rooms past the new-room rate count as rate-limited") {
  auto& m = stats();
  auto frames = m.limit_hits[0]->value();
  auto new_rooms = m.limit_hits[1]->value();
  auto c = connect("carol");
  for (int i = 0; i < 14; ++i)  // burst 10: the last four are refused
    send(c, R"({"type":"ping"})");
  CHECK(m.limit_hits[0]->value() == frames + 4);

  cfg.new_rooms_burst = 2;
  cfg.new_rooms_per_second = 1.0 / 60;
  auto d = connect("dave");
  for (auto room : {"r1", "r2", "r3"})  // the third new room finds the bucket empty
    send(d, std::string{R"({"type":"join","room":")"} + room + R"("})");
  CHECK(m.limit_hits[1]->value() == new_rooms + 1);
  CHECK(m.limit_hits[0]->value() == frames + 4);
}

TEST_CASE_FIXTURE(fixture, "supervisor restarts and give-ups are counted by the child's kind") {
  auto& m = stats();
  supervisor_settings cfg;
  cfg.backoff_min = 100ms;
  cfg.backoff_max = 1s;
  cfg.max_restarts = 1;
  cfg.restart_window = 60s;
  auto sup = spawn(supervisor, cfg, uint64_t{7}, [](const std::string&) {});
  run();
  auto restarts = count_of(m.supervisor_restarts, "room");
  auto give_ups = count_of(m.supervisor_give_ups, "room");
  auto other_restarts = count_of(m.supervisor_restarts, "presence");
  child_spec spec{"room:general", [](caf::actor_system& s) { return s.spawn(idle_child, 0); }, nullptr,
                  false};
  auto child = ask<caf::actor>(sup, start_atom::value, spec);
  auto crash = [&] {
    caf::anon_send_exit(ask<caf::actor>(sup, get_atom::value, std::string{"room:general"}),
                        caf::exit_reason::kill);
    run();
    advance(2s);  // past the backoff
  };
  crash();
  CHECK(count_of(m.supervisor_restarts, "room") == restarts + 1);
  CHECK(count_of(m.supervisor_give_ups, "room") == give_ups);
  crash();  // a second restart within the window is one too many
  CHECK(count_of(m.supervisor_give_ups, "room") == give_ups + 1);
  CHECK(count_of(m.supervisor_restarts, "presence") == other_restarts);
  caf::anon_send(sup, stop_atom::value);
  run();
}

TEST_CASE("a connection's sink counts dropped frames by class and slow-consumer closes") {
  auto& m = stats();
  auto typing = count_of(m.frames_dropped, "typing");
  auto presence = count_of(m.frames_dropped, "presence");
  auto slow = m.slow_consumer_closes.value();
  boost::asio::io_context ioc;  // never run: nothing is written here
  net::connection_sink sink{net::outbound_limits{100, 400}, std::make_shared<net::wake_list>(ioc)};
  auto big = make_frame(std::string(120, 'x'), frame_class::message);
  CHECK(sink.push(big, frame_priority::essential));  // now past the soft mark
  CHECK_FALSE(sink.push(make_frame("t", frame_class::typing), frame_priority::droppable));
  CHECK_FALSE(sink.push(make_frame("p", frame_class::presence), frame_priority::droppable));
  CHECK_FALSE(sink.push(make_frame("p", frame_class::presence), frame_priority::droppable));
  CHECK(count_of(m.frames_dropped, "typing") == typing + 1);
  CHECK(count_of(m.frames_dropped, "presence") == presence + 2);
  CHECK(m.slow_consumer_closes.value() == slow);
  for (int i = 0; i < 4; ++i)
    sink.push(big, frame_priority::essential);  // the fourth in the queue passes the hard mark
  CHECK(m.slow_consumer_closes.value() == slow + 1);
}

TEST_CASE("refusals counted by the request log also count in the metric, by reason") {
  metrics::registry r;
  auto& by_reason = r.add_counter_family("test_refused_total", "x", {"reason"});
  net::refusal_log log{"requests", std::chrono::hours(1), net::refusal_log::clock::now, &by_reason};
  log.count("origin");
  log.count("origin");
  log.count("rate_limited");
  CHECK(by_reason.with({"origin"}).value() == 2);
  CHECK(by_reason.with({"rate_limited"}).value() == 1);
  // Taking the log's summary starts its next interval; the metric keeps counting from where it was.
  log.take_summary_now();
  log.count("origin");
  CHECK(by_reason.with({"origin"}).value() == 3);
}

TEST_CASE("process metrics read this process") {
  auto rss = metrics::resident_memory_bytes();
  REQUIRE(rss);
  CHECK(*rss > 1024 * 1024);
  auto before = metrics::open_fds();
  REQUIRE(before);
  int fd = dup(0);
  REQUIRE(fd >= 0);
  CHECK(*metrics::open_fds() == *before + 1);
  close(fd);
  CHECK(metrics::max_fds().value_or(0) >= *before);
  CHECK(metrics::cpu_seconds() > 0);
  auto started = metrics::start_time_seconds();
  REQUIRE(started);
  auto now = static_cast<double>(std::time(nullptr));
  CHECK(*started <= now + 1);
  CHECK(*started > now - 24 * 3600 * 365);
}

TEST_CASE("the start time field is found after a command name with spaces and parentheses") {
  CHECK(metrics::start_ticks_from_stat(
          "42 (a) b (c) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 12345 99 100") == 12345ULL);
  CHECK_FALSE(metrics::start_ticks_from_stat("42 (short) S 1 2 3"));
  CHECK_FALSE(metrics::start_ticks_from_stat("no parenthesis at all"));
}

TEST_CASE_FIXTURE(server_fixture, "the exposition passes promtool check metrics after some activity") {
  chat();
  boost::asio::io_context ioc;
  net::connection_sink sink{net::outbound_limits{10, 1000}, std::make_shared<net::wake_list>(ioc)};
  sink.push(make_frame(std::string(20, 'x')), frame_priority::essential);
  sink.push(make_frame("t", frame_class::typing), frame_priority::droppable);
  metrics::server_metrics().delivery_latency.observe(0.002);
  auto text = metrics::process_registry().render();

  if (std::system("command -v promtool >/dev/null 2>&1") != 0)
    FAIL("promtool is missing: install the Debian package 'prometheus' "
         "(scripts/install-ops-deps.sh, run by make test-deps)");
  auto path = std::string{"/tmp/parley-metrics-"} + std::to_string(getpid()) + ".txt";
  {
    std::ofstream out{path};
    out << text;
  }
  auto output_path = path + ".out";
  // promtool reads the exposition on stdin; lint problems and format errors fail it (exit 1).
  auto command = "promtool check metrics < " + path + " > " + output_path + " 2>&1";
  int status = std::system(command.c_str());
  std::ifstream result{output_path};
  std::string report{std::istreambuf_iterator<char>{result}, std::istreambuf_iterator<char>{}};
  INFO("promtool said: " << report);
  CHECK(status == 0);
  CHECK(report.find("problem") == std::string::npos);
  std::remove(path.c_str());
  std::remove(output_path.c_str());
}
