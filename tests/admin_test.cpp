// The admin API's pieces without sockets or actors: routing, the bearer token, the JSON bodies and
// answers, readiness, the message rate, and admin_api end to end against a fake backend.

#include "actors/message_rate.hpp"
#include "admin/admin_api.hpp"
#include "admin/admin_json.hpp"
#include "admin/admin_routes.hpp"
#include "admin/admin_token.hpp"
#include "admin/readiness.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <optional>

#include <unistd.h>

namespace {

using namespace parley;
using namespace parley::admin;
using json = nlohmann::json;
using namespace std::chrono_literals;

const std::string good_token = "0123456789abcdef-admin";

// -- routing -------------------------------------------------------------------------------------------

TEST_CASE("admin routes are matched by path, with room and user names decoded and checked") {
  CHECK(match_route("/healthz").kind == route_kind::healthz);
  CHECK(match_route("/readyz?verbose").kind == route_kind::readyz);
  CHECK(match_route("/metrics").kind == route_kind::metrics);
  CHECK(match_route("/").kind == route_kind::page);
  CHECK(match_route("/admin.js").kind == route_kind::page);
  CHECK(match_route("/administration").kind == route_kind::page);
  CHECK(match_route("/admin/rooms").kind == route_kind::rooms);
  auto room = match_route("/admin/rooms/general");
  CHECK(room.kind == route_kind::room);
  CHECK(room.room == "general");
  CHECK(match_route("/admin/rooms/general/kick").kind == route_kind::room_kick);
  CHECK(match_route("/admin/rooms/general/ban").kind == route_kind::room_ban);
  CHECK(match_route("/admin/rooms/general/unban").kind == route_kind::room_unban);
  auto notice = match_route("/admin/rooms/team%2Dred/notice");
  CHECK(notice.kind == route_kind::room_notice);
  CHECK(notice.room == "team-red");
  auto user = match_route("/admin/users/bob");
  CHECK(user.kind == route_kind::user);
  CHECK(user.user == "bob");
  CHECK(match_route("/admin/ban").kind == route_kind::server_ban);
  CHECK(match_route("/admin/unban").kind == route_kind::server_unban);
  CHECK(match_route("/admin/drain").kind == route_kind::drain);
}

TEST_CASE("unknown admin paths are not found, and invalid names are refused as bad names") {
  CHECK(match_route("/admin").kind == route_kind::not_found);
  CHECK(match_route("/admin/").kind == route_kind::not_found);
  CHECK(match_route("/admin/rooms/").kind == route_kind::bad_name);
  CHECK(match_route("/admin/rooms/general/explode").kind == route_kind::not_found);
  CHECK(match_route("/admin/rooms/general/kick/now").kind == route_kind::not_found);
  CHECK(match_route("/admin/users").kind == route_kind::not_found);
  CHECK(match_route("/admin//rooms").kind == route_kind::not_found);
  CHECK(match_route("/admin/rooms/a%20b").kind == route_kind::bad_name);
  CHECK(match_route("/admin/rooms/%zz").kind == route_kind::bad_name);
  CHECK(match_route("/admin/users/" + std::string(33, 'x')).kind == route_kind::bad_name);
  CHECK(match_route("/admin/rooms/..%2F..%2Fetc").kind == route_kind::bad_name);
}

TEST_CASE("only /admin paths need the token, and each route has one method") {
  CHECK(needs_token("/admin/rooms"));
  CHECK(needs_token("/admin"));
  CHECK(needs_token("/admin/nothing-here"));
  CHECK_FALSE(needs_token("/metrics"));
  CHECK_FALSE(needs_token("/readyz"));
  CHECK_FALSE(needs_token("/admin.js"));
  CHECK(method_of(route_kind::rooms) == "GET");
  CHECK(method_of(route_kind::user) == "GET");
  CHECK(method_of(route_kind::room_kick) == "POST");
  CHECK(method_of(route_kind::drain) == "POST");
}

// -- the token -----------------------------------------------------------------------------------------

TEST_CASE("a bearer token is accepted only when it matches exactly") {
  CHECK(check_bearer("Bearer " + good_token, good_token) == token_check::accepted);
  CHECK(check_bearer("bearer  " + good_token + " ", good_token) == token_check::accepted);
  CHECK(check_bearer("Bearer " + good_token + "x", good_token) == token_check::wrong);
  CHECK(check_bearer("Bearer " + good_token.substr(1), good_token) == token_check::wrong);
  CHECK(check_bearer("Bearer x", good_token) == token_check::wrong);
  CHECK(check_bearer("", good_token) == token_check::missing);
  CHECK(check_bearer("Bearer", good_token) == token_check::missing);
  CHECK(check_bearer("Bearer    ", good_token) == token_check::missing);
  CHECK(check_bearer("Basic " + good_token, good_token) == token_check::missing);
  CHECK(check_bearer(good_token, good_token) == token_check::missing);
}

TEST_CASE("the admin token comes from token or token_file, and short or doubled settings are refused") {
  admin_settings cfg;
  CHECK(read_admin_token(cfg).empty());
  cfg.token = good_token;
  CHECK(read_admin_token(cfg) == good_token);
  cfg.token = "short";
  CHECK_THROWS_AS(read_admin_token(cfg), admin_config_error);

  auto path = std::string{"/tmp/parley-admin-token-test-"} + std::to_string(::getpid());
  {
    std::ofstream out{path};
    out << good_token << "\n";
  }
  admin_settings from_file;
  from_file.token_file = path;
  CHECK(read_admin_token(from_file) == good_token);
  from_file.token = good_token;
  CHECK_THROWS_AS(read_admin_token(from_file), admin_config_error);
  std::remove(path.c_str());
  admin_settings missing;
  missing.token_file = path;
  CHECK_THROWS_AS(read_admin_token(missing), admin_config_error);
}

// -- bodies --------------------------------------------------------------------------------------------

template <class T>
const T& ok(const decoded<T>& d) {
  REQUIRE_MESSAGE(std::holds_alternative<T>(d), "refused: " << std::get<body_error>(d).message);
  return std::get<T>(d);
}

template <class T>
std::string refused(const decoded<T>& d) {
  REQUIRE(std::holds_alternative<body_error>(d));
  return std::get<body_error>(d).code;
}

TEST_CASE("kick, ban and notice bodies are decoded with their fields checked") {
  body_limits limits;
  auto kick = ok(decode_kick(R"({"user":"bob","reason":"spam"})", limits));
  CHECK(kick.user == "bob");
  CHECK(kick.reason == "spam");
  CHECK(ok(decode_kick(R"({"user":"bob","extra":[1,2]})", limits)).reason.empty());

  int64_t now = 1'700'000'000'000;
  auto forever = ok(decode_ban(R"({"user":"bob"})", limits, now));
  CHECK_FALSE(forever.until);
  auto until = ok(decode_ban(R"({"user":"bob","until":1700000060000})", limits, now));
  CHECK(until.until == 1'700'000'060'000);
  auto duration = ok(decode_ban(R"({"user":"bob","duration":90})", limits, now));
  CHECK(duration.until == now + 90'000);

  CHECK(ok(decode_notice(R"({"text":"restart at 10:00"})", limits)).text == "restart at 10:00");
  CHECK_FALSE(ok(decode_drain("", limits)).period_ms);
  CHECK(ok(decode_drain(R"({"period_ms":5000})", limits)).period_ms == 5000);
}

TEST_CASE("malformed or invalid bodies are refused with a stable code") {
  body_limits limits;
  int64_t now = 1'700'000'000'000;
  CHECK(refused(decode_kick("{", limits)) == "bad_json");
  CHECK(refused(decode_kick("[1]", limits)) == "bad_json");
  CHECK(refused(decode_kick(R"({"user":{"a":{"b":1}}})", limits)) == "bad_json");
  CHECK(refused(decode_kick(std::string(10000, '[') + std::string(10000, ']'), limits)) == "bad_json");
  CHECK(refused(decode_kick("{}", limits)) == "bad_field");
  CHECK(refused(decode_kick(R"({"user":42})", limits)) == "bad_field");
  CHECK(refused(decode_kick(R"({"user":"bad name"})", limits)) == "bad_field");
  CHECK(refused(decode_kick(R"({"user":"bob","reason":")" + std::string(201, 'x') + "\"}", limits))
        == "bad_field");
  CHECK(refused(decode_ban(R"({"user":"bob","until":1})", limits, now)) == "bad_field");
  CHECK(refused(decode_ban(R"({"user":"bob","duration":0})", limits, now)) == "bad_field");
  CHECK(refused(decode_ban(R"({"user":"bob","duration":1.5})", limits, now)) == "bad_field");
  CHECK(refused(decode_ban(R"({"user":"bob","duration":18446744073709551615})", limits, now)) == "bad_field");
  CHECK(refused(decode_ban(R"({"user":"bob","duration":5,"until":1700000060000})", limits, now))
        == "bad_field");
  CHECK(refused(decode_notice(R"({"text":""})", limits)) == "bad_field");
  CHECK(refused(decode_notice("{}", limits)) == "bad_field");
  limits.max_notice_bytes = 8;
  CHECK(refused(decode_notice(R"({"text":"nine bytes"})", limits)) == "bad_field");
  CHECK(refused(decode_drain(R"({"period_ms":-1})", limits)) == "bad_field");
  CHECK(refused(decode_drain(R"({"period_ms":"soon"})", limits)) == "bad_field");
  CHECK(refused(decode_notice("{\"text\":\"\xff\xfe\"}", limits)) == "bad_json");
}

TEST_CASE("answers encode rooms, members and users as documented") {
  std::vector<room_summary> rooms{{"general", 3, 2, 2, 7, 41, 0.51666, true}, {"quiet", 0, 0, 0, 0, 0, 0, false}};
  auto encoded = json::parse(encode_rooms(rooms));
  CHECK(encoded["rooms"][0] == json{{"name", "general"}, {"members", 2}, {"connections", 3}, {"present", 2},
                                    {"epoch", 7}, {"last_id", 41}, {"message_rate", 0.517}});
  CHECK(encoded["rooms"][1] == json{{"name", "quiet"}, {"answered", false}});

  auto members = json::parse(encode_members("general", {{"alice", "Alice A.", 2}, {"bob", "", 1}}));
  CHECK(members == json{{"room", "general"},
                        {"members", {{{"user", "alice"}, {"name", "Alice A."}, {"connections", 2}},
                                     {{"user", "bob"}, {"connections", 1}}}}});

  user_report report;
  report.user = "bob";
  report.online = true;
  report.banned = true;
  report.banned_until = 1'800'000'000'000;
  report.sessions.push_back(session_info{"00000000000000ff", "bob", "", {"member"}, {"general"}, 1'700'000'000'000,
                                         "127.0.0.1", true});
  auto user = json::parse(encode_user(report));
  CHECK(user["banned_until"] == 1'800'000'000'000);
  CHECK(user["sessions"][0] == json{{"session", "00000000000000ff"}, {"address", "127.0.0.1"},
                                    {"connected_since", 1'700'000'000'000}, {"rooms", {"general"}},
                                    {"roles", {"member"}}, {"signed_in", true}});
  CHECK(json::parse(encode_error("not_found", "no room x")) == json{{"error", "not_found"}, {"message", "no room x"}});
}

// -- readiness -----------------------------------------------------------------------------------------

TEST_CASE("a node is ready only with the store open, the directory up, room for clients and no drain") {
  readiness_inputs in;
  in.store_open = true;
  in.directory_running = true;
  in.connections = 3;
  in.max_connections = 4;
  CHECK(not_ready_reasons(in).empty());
  CHECK(readiness_text({}) == "ready\n");
  in.connections = 4;
  REQUIRE(not_ready_reasons(in).size() == 1);
  CHECK(not_ready_reasons(in)[0] == "at connection limit (4 of 4)");
  in.max_connections = 0;  // no limit
  CHECK(not_ready_reasons(in).empty());
  in.draining = true;
  in.store_open = false;
  in.directory_running = false;
  auto reasons = not_ready_reasons(in);
  CHECK(reasons == std::vector<std::string>{"draining", "store not open", "directory down"});
  CHECK(readiness_text(reasons) == "draining\nstore not open\ndirectory down\n");
}

// -- message rate --------------------------------------------------------------------------------------

TEST_CASE("a room's message rate covers about the last minute and decays to zero") {
  message_rate rate;
  auto t0 = message_rate::clock::time_point{} + 1h;
  CHECK(rate.per_second(t0) == 0);
  for (int i = 0; i < 60; ++i)
    rate.record(t0 + std::chrono::seconds(i));
  // 60 messages within the first window: one per second.
  CHECK(rate.per_second(t0 + 59s) == doctest::Approx(1.0));
  // Half a window later half of the previous window still counts.
  CHECK(rate.per_second(t0 + 90s) == doctest::Approx(0.5));
  CHECK(rate.per_second(t0 + 121s) == doctest::Approx(0.0));
  rate.record(t0 + 10min);
  CHECK(rate.per_second(t0 + 10min) == doctest::Approx(1.0 / 60));
}

// -- admin_api against a fake backend ------------------------------------------------------------------

/// Answers from fixed data and records what it was asked to do.
class fake_backend : public admin_backend {
public:
  std::vector<room_summary> rooms;
  std::vector<moderation_record> moderated;
  std::vector<std::pair<std::string, std::string>> notices;
  actor_health healthy{true, true};
  std::optional<backend_error> fail_with;

  void list_rooms(backend_reply<std::vector<room_summary>> done) override {
    if (fail_with)
      return done(*fail_with);
    done(rooms);
  }
  void room_members(const std::string& room, backend_reply<std::vector<room_member_summary>> done) override {
    if (room != "general")
      return done(backend_error{backend_error::not_found, "room " + room + " in memory not found"});
    done(std::vector<room_member_summary>{{"alice", "", 1}});
  }
  void user_sessions(const std::string& user, backend_reply<user_report> done) override {
    user_report report;
    report.user = user;
    done(report);
  }
  void moderate(moderation_record record, backend_reply<done_t> done) override {
    moderated.push_back(record);
    done(done_t{});
  }
  void notice(const std::string& room, const std::string& text, backend_reply<uint64_t> done) override {
    notices.emplace_back(room, text);
    done(uint64_t{2});
  }
  void health(std::function<void(actor_health)> done) override { done(healthy); }
};

struct api_fixture {
  std::shared_ptr<fake_backend> backend = std::make_shared<fake_backend>();
  bool draining = false;
  std::size_t connections = 0;
  std::size_t max_connections = 10;
  std::optional<std::chrono::milliseconds> drained_over;

  std::shared_ptr<admin_api> make(std::string token = good_token) {
    api_options opts;
    opts.token = std::move(token);
    opts.web_root = PARLEY_SOURCE_DIR "/web-admin";
    opts.default_drain_period = 30s;
    server_hooks hooks;
    hooks.draining = [this] { return draining; };
    hooks.connections = [this] { return connections; };
    hooks.max_connections = [this] { return max_connections; };
    hooks.start_drain = [this](std::chrono::milliseconds period) {
      drained_over = period;
      draining = true;
    };
    return std::make_shared<admin_api>(opts, backend, hooks);
  }

  admin_response call(admin_api& api, std::string method, std::string target, std::string body = {},
                      bool with_token = true) {
    admin_request req{std::move(method), std::move(target), with_token ? "Bearer " + good_token : "",
                      std::move(body)};
    std::optional<admin_response> answer;
    int calls = 0;
    api.handle(req, [&](admin_response res) {
      ++calls;
      answer = std::move(res);
    });
    REQUIRE(calls == 1);
    return *answer;
  }

  static std::string header(const admin_response& res, const std::string& name) {
    for (auto& [key, value] : res.headers)
      if (key == name)
        return value;
    return {};
  }
};

TEST_CASE_FIXTURE(api_fixture, "the admin API refuses requests without the right token, and is off without one") {
  auto api = make();
  auto missing = call(*api, "GET", "/admin/rooms", {}, false);
  CHECK(missing.status == 401);
  CHECK(header(missing, "WWW-Authenticate").rfind("Bearer", 0) == 0);
  CHECK(json::parse(missing.body)["error"] == "unauthorized");
  admin_request wrong{"GET", "/admin/rooms", "Bearer not-the-token-at-all", {}};
  admin_response wrong_answer;
  api->handle(wrong, [&](admin_response res) { wrong_answer = std::move(res); });
  CHECK(wrong_answer.status == 401);
  CHECK(header(wrong_answer, "WWW-Authenticate").find("invalid_token") != std::string::npos);
  // Unknown routes are not revealed before the token is checked.
  CHECK(call(*api, "GET", "/admin/secret-route", {}, false).status == 401);
  CHECK(call(*api, "GET", "/admin/rooms").status == 200);

  auto disabled = make("");
  auto off = call(*disabled, "GET", "/admin/rooms");
  CHECK(off.status == 403);
  CHECK(json::parse(off.body)["message"] == "admin API disabled: set [admin] token or token_file");
  CHECK(call(*disabled, "GET", "/healthz", {}, false).status == 200);
  CHECK(call(*disabled, "GET", "/readyz", {}, false).status == 200);
}

TEST_CASE_FIXTURE(api_fixture, "wrong methods get 405 with Allow, unknown routes 404, bad names 400") {
  auto api = make();
  auto wrong = call(*api, "POST", "/admin/rooms");
  CHECK(wrong.status == 405);
  CHECK(header(wrong, "Allow") == "GET, HEAD");
  CHECK(header(call(*api, "GET", "/admin/drain"), "Allow") == "POST");
  CHECK(call(*api, "DELETE", "/metrics").status == 405);
  CHECK(call(*api, "HEAD", "/admin/rooms").status == 200);
  CHECK(call(*api, "GET", "/admin/nothing").status == 404);
  CHECK(call(*api, "GET", "/admin/rooms/no%20way").status == 400);
  CHECK(call(*api, "GET", "/admin/rooms/elsewhere").status == 404);
  CHECK(call(*api, "GET", "/no-such-file.txt").status == 404);
}

TEST_CASE_FIXTURE(api_fixture, "actions go to the backend as moderation by admin, and bad bodies never do") {
  auto api = make();
  auto kicked = call(*api, "POST", "/admin/rooms/general/kick", R"({"user":"bob","reason":"spam"})");
  CHECK(kicked.status == 200);
  CHECK(json::parse(kicked.body) == json{{"ok", true}, {"action", "kick"}, {"room", "general"}, {"user", "bob"}});
  REQUIRE(backend->moderated.size() == 1);
  CHECK(backend->moderated[0].action == protocol::moderation_action::kick);
  CHECK(backend->moderated[0].room == "general");
  CHECK(backend->moderated[0].by == "admin");
  CHECK(backend->moderated[0].reason == "spam");

  CHECK(call(*api, "POST", "/admin/ban", R"({"user":"mallory","duration":60})").status == 200);
  REQUIRE(backend->moderated.size() == 2);
  CHECK(backend->moderated[1].room.empty());
  CHECK(backend->moderated[1].action == protocol::moderation_action::ban);
  CHECK(backend->moderated[1].until.has_value());
  CHECK(call(*api, "POST", "/admin/rooms/general/unban", R"({"user":"mallory"})").status == 200);
  CHECK(backend->moderated.back().action == protocol::moderation_action::unban);

  auto malformed = call(*api, "POST", "/admin/rooms/general/kick", R"({"user":)");
  CHECK(malformed.status == 400);
  CHECK(json::parse(malformed.body)["error"] == "bad_json");
  CHECK(call(*api, "POST", "/admin/rooms/general/ban", R"({"user":"a b"})").status == 400);
  CHECK(backend->moderated.size() == 3);

  auto notice = call(*api, "POST", "/admin/rooms/general/notice", R"({"text":"hello"})");
  CHECK(notice.status == 200);
  CHECK(json::parse(notice.body)["delivered"] == 2);
  CHECK(backend->notices == std::vector<std::pair<std::string, std::string>>{{"general", "hello"}});
}

TEST_CASE_FIXTURE(api_fixture, "backend failures become 404 and 503 with a JSON error") {
  auto api = make();
  backend->fail_with = backend_error{backend_error::unavailable, "the room directory did not answer in time"};
  auto slow = call(*api, "GET", "/admin/rooms");
  CHECK(slow.status == 503);
  CHECK(header(slow, "Retry-After") == "1");
  CHECK(json::parse(slow.body)["error"] == "unavailable");
  auto missing = call(*api, "GET", "/admin/rooms/elsewhere");
  CHECK(json::parse(missing.body)["error"] == "not_found");
}

TEST_CASE_FIXTURE(api_fixture, "readyz follows the drain, the connection limit and the actors; drain answers 202 once") {
  auto api = make();
  auto ready = call(*api, "GET", "/readyz", {}, false);
  CHECK(ready.status == 200);
  CHECK(ready.body == "ready\n");
  connections = 10;
  auto full = call(*api, "GET", "/readyz", {}, false);
  CHECK(full.status == 503);
  CHECK(full.body == "at connection limit (10 of 10)\n");
  connections = 0;
  backend->healthy = actor_health{false, true};
  CHECK(call(*api, "GET", "/readyz", {}, false).body == "store not open\n");
  backend->healthy = actor_health{true, true};

  auto drain = call(*api, "POST", "/admin/drain", R"({"period_ms":1500})");
  CHECK(drain.status == 202);
  CHECK(json::parse(drain.body) == json{{"draining", true}, {"period_ms", 1500}});
  CHECK(drained_over == 1500ms);
  CHECK(call(*api, "GET", "/readyz", {}, false).body == "draining\n");
  CHECK(call(*api, "POST", "/admin/drain", "").status == 409);

  auto metrics = call(*api, "GET", "/metrics", {}, false);
  CHECK(metrics.content_type.rfind("text/plain; version=0.0.4", 0) == 0);
  CHECK(metrics.body.find("parley_draining 1") != std::string::npos);
  CHECK(metrics.body.find("parley_ready 0") != std::string::npos);
}

TEST_CASE_FIXTURE(api_fixture, "a drain without a period uses the configured one") {
  auto api = make();
  CHECK(call(*api, "POST", "/admin/drain").status == 202);
  CHECK(drained_over == 30s);
}

TEST_CASE_FIXTURE(api_fixture, "the admin page is served with headers that keep it from being framed") {
  auto api = make("");
  auto page = call(*api, "GET", "/", {}, false);
  CHECK(page.status == 200);
  CHECK(page.content_type.rfind("text/html", 0) == 0);
  CHECK(header(page, "X-Frame-Options") == "DENY");
  CHECK(header(page, "Content-Security-Policy").find("frame-ancestors 'none'") != std::string::npos);
  CHECK(call(*api, "GET", "/..%2f..%2fconfig.ini", {}, false).status >= 400);
}

} // namespace
