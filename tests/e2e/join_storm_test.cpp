// End-to-end: a join storm. A few thousand connections join one room of the real server at once.
// Every client must end with the right member count, and one client's member list, kept from
// joined / presence_diff / presence_state / who as docs/protocol.md ("Presence") describes and
// then paged afresh with `who`, must be exactly the users who joined. This is a correctness test,
// not a benchmark: waits are bounded only so that a broken server fails instead of hanging.
//
// The connections come from the benchmarks' single-threaded epoll pool (bench/ws_client_pool.hpp):
// a blocking ws_client per connection would need a thread or an io_context each.

#include "harness.hpp"
#include "ws_client_pool.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdio>
#include <optional>
#include <set>
#include <string>
#include <vector>

using namespace parley::e2e;

namespace {

/// 3000 connections, or fewer when the open-file limit is lower: this process and the server
/// (which inherits the raised soft limit) each need one descriptor per connection plus headroom.
std::size_t storm_size() {
  long limit = bench::raise_fd_limit();
  return std::size_t(std::clamp(limit - 200, 50L, 3000L));
}

std::string user_name(std::size_t i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "js%05zu", i);
  return buf;
}

/// What one client learned about the room.
struct client_view {
  bool joined = false;
  long count = -1; // from joined, presence_diff and presence_state
};

/// Drives the pool: every client joins `room`; client 0 (the observer) also keeps the member list.
class join_storm : public bench::pool_events {
public:
  join_storm(uint16_t port, std::size_t n, std::string room)
    : pool_("127.0.0.1", port, n, *this, 64), views_(n), room_(std::move(room)) {
    for (std::size_t i = 0; i < n; ++i) pool_.set_path(i, "/ws?name=" + user_name(i));
  }

  /// Polls until `done()` or the deadline; false on timeout or once something went wrong.
  template <class Done>
  bool run_until(Done done, std::chrono::seconds limit) {
    auto deadline = bench::now_ns() + std::chrono::nanoseconds(limit).count();
    while (!done() && problems_.empty() && bench::now_ns() < deadline) pool_.poll(10);
    return done() && problems_.empty();
  }

  void start() { pool_.start_connecting(); }

  std::size_t joined() const { return joined_; }
  std::size_t size() const { return views_.size(); }
  const client_view& view(std::size_t i) const { return views_[i]; }
  std::size_t views_with_count(long n) const {
    return std::size_t(std::count_if(views_.begin(), views_.end(), [n](const client_view& v) { return v.count == n; }));
  }
  const std::vector<std::string>& problems() const { return problems_; }

  /// The observer's member list as the protocol keeps it, and whether it is still paging.
  const std::set<std::string>& observer_list() const { return observer_names_; }
  bool observer_paging() const { return paging_; }

  /// Starts a fresh `who` paging from the first name on the observer; see fresh_pages().
  void page_afresh() {
    fresh_names_.clear();
    fresh_pages_ = 0;
    fresh_done_ = false;
    fresh_ = true;
    send_who(std::nullopt);
  }
  bool fresh_done() const { return fresh_done_; }
  const std::vector<std::string>& fresh_names() const { return fresh_names_; }
  std::size_t fresh_pages() const { return fresh_pages_; }
  long fresh_count() const { return fresh_count_; }

  void close_all() {
    closing_ = true;
    for (std::size_t i = 0; i < pool_.size(); ++i) pool_.send_close(i, 1000);
    auto until = bench::now_ns() + 2'000'000'000;
    while (pool_.live_count() > 0 && bench::now_ns() < until) pool_.poll(10);
    pool_.abort_all();
  }

  // -- pool_events ----------------------------------------------------------------------------------

  void on_open(std::size_t) override {}

  void on_text(std::size_t i, const char* data, std::size_t n, int64_t) override {
    auto f = json::parse(data, data + n, nullptr, false);
    if (f.is_discarded() || !f.is_object()) return problem(i, "a frame that is not a JSON object");
    auto type = f.value("type", "");
    auto& v = views_[i];
    if (type == "welcome") {
      pool_.send_text(i, json{{"type", "join"}, {"room", room_}}.dump());
    } else if (type == "joined") {
      if (!f.contains("count"))
        return problem(i, "joined has no count: the server does not speak the presence protocol of "
                          "docs/protocol.md yet: " + f.dump().substr(0, 200));
      if (!v.joined) ++joined_;
      v.joined = true;
      v.count = f["count"].get<long>();
      if (i == 0) replace_list(f);
    } else if (type == "presence_state") {
      v.count = f.value("count", -1L);
      if (i == 0) replace_list(f);
    } else if (type == "presence_diff") {
      v.count = f.value("count", -1L);
      if (i == 0) apply_diff(f);
    } else if (type == "who") {
      if (i == 0) on_who(f);
    } else if (type == "error") {
      problem(i, "error frame " + f.dump());
    } else if (type == "presence") {
      problem(i, "an old-protocol presence frame: " + f.dump());
    }
  }

  void on_closed(std::size_t i, uint16_t code, const std::string& why) override {
    if (!closing_) problem(i, "connection ended (code " + std::to_string(code) + "): " + why);
  }

private:
  void problem(std::size_t i, std::string what) {
    if (problems_.size() < 10) problems_.push_back(user_name(i) + ": " + std::move(what));
  }

  // -- the observer's member list (docs/protocol.md, "Presence") -----------------------------------

  /// joined and presence_state replace the list with their first page; `who` fetches the rest.
  void replace_list(const json& f) {
    if (f.value("presence", "") != "users")
      return problem(0, "room in counts mode although user_limit is above the storm: " + f.dump().substr(0, 200));
    observer_names_.clear();
    page_cursor_.reset();
    for (const auto& name : f.value("members", json::array())) {
      observer_names_.insert(name.get<std::string>());
      page_cursor_ = name.get<std::string>();
    }
    // A page still on its way belongs to the list just replaced.
    if (paging_)
      discard_page_ = true;
    page_if_incomplete();
  }

  void apply_diff(const json& f) {
    for (const auto& name : f.value("joins", json::array())) observer_names_.insert(name.get<std::string>());
    for (const auto& name : f.value("leaves", json::array())) observer_names_.erase(name.get<std::string>());
    page_if_incomplete();
  }

  /// Pages after the last name of the previous page, not after the last name held: a diff may have
  /// added a name further down the alphabet, and paging after it would skip everyone between.
  void page_if_incomplete() {
    if (!paging_ && long(observer_names_.size()) < views_[0].count) {
      paging_ = true;
      send_who(page_cursor_);
    }
  }

  void send_who(std::optional<std::string> after) {
    json who{{"type", "who"}, {"room", room_}};
    if (after) who["after"] = *after;
    pool_.send_text(0, who.dump());
  }

  void on_who(const json& f) {
    const auto& members = f.value("members", json::array());
    bool more = f.value("more", false);
    if (fresh_) {
      ++fresh_pages_;
      fresh_count_ = f.value("count", -1L);
      for (const auto& name : members) fresh_names_.push_back(name.get<std::string>());
      if (more && !members.empty()) return send_who(members.back().get<std::string>());
      fresh_ = false;
      fresh_done_ = true;
      return;
    }
    if (discard_page_) {
      discard_page_ = false;
      paging_ = false;
      return page_if_incomplete();
    }
    for (const auto& name : members) observer_names_.insert(name.get<std::string>());
    if (more && !members.empty()) {
      page_cursor_ = members.back().get<std::string>();
      return send_who(page_cursor_);
    }
    // The list is complete now (diffs kept it current meanwhile); a wrong list fails the test.
    paging_ = false;
  }

  bench::client_pool pool_;
  std::vector<client_view> views_;
  std::string room_;
  std::size_t joined_ = 0;
  std::vector<std::string> problems_;
  bool closing_ = false;
  std::set<std::string> observer_names_;
  bool paging_ = false;
  bool discard_page_ = false;
  std::optional<std::string> page_cursor_;
  bool fresh_ = false;
  bool fresh_done_ = false;
  std::size_t fresh_pages_ = 0;
  long fresh_count_ = -1;
  std::vector<std::string> fresh_names_;
};

} // namespace

TEST_CASE("a few thousand clients joining one room at once all end with the right member count "
          "and the member list pages to exactly the users who joined") {
  const std::size_t n = storm_size(); // raises the soft fd limit before the server is started
  INFO("clients: " << n);
  server_options opts;
  opts.ini["rooms.capacity"] = std::to_string(n + 100);
  opts.ini["presence.user_limit"] = std::to_string(n + 1000); // stay in "users" mode: names are listed
  opts.ini["connection.rate_per_second"] = "1000000.0";
  opts.ini["connection.rate_burst"] = "1000000.0";
  // Thousands of clients from 127.0.0.1 at once: lift the limits per address (0: no limit).
  opts.ini["limits.max_connections_per_address"] = "0";
  opts.ini["limits.handshakes_per_second"] = "0.0";
  server_process server{opts};

  join_storm storm{server.port(), n, "storm"};
  storm.start();
  // Bounds, not expectations: 60 s + 20 s below keep a broken server within ctest's 120 s.
  bool settled = storm.run_until(
    [&] { return storm.joined() == n && storm.views_with_count(long(n)) == n && !storm.observer_paging(); },
    std::chrono::seconds(60));
  std::string problems;
  for (const auto& p : storm.problems()) problems += "\n  " + p;
  REQUIRE_MESSAGE(storm.problems().empty(), "problems (first 10):" << problems);
  CHECK_MESSAGE(settled, "joined " << storm.joined() << "/" << n << ", " << storm.views_with_count(long(n))
                                   << " clients see count " << n);
  CHECK(storm.joined() == n);
  std::size_t wrong = 0;
  for (std::size_t i = 0; i < storm.size(); ++i) wrong += storm.view(i).count != long(n);
  CHECK_MESSAGE(wrong == 0, wrong << " clients end with a count other than " << n << " (e.g. client 0: "
                                  << storm.view(0).count << ")");

  std::set<std::string> expected;
  for (std::size_t i = 0; i < n; ++i) expected.insert(user_name(i));
  CHECK_MESSAGE(storm.observer_list() == expected,
                "the list kept from joined/presence_diff/who holds " << storm.observer_list().size() << " names, "
                                                                     << "expected " << n);

  // Page the whole list afresh, as a client does after joined with count > first page.
  storm.page_afresh();
  REQUIRE(storm.run_until([&] { return storm.fresh_done(); }, std::chrono::seconds(20)));
  const auto& names = storm.fresh_names();
  CHECK(storm.fresh_count() == long(n));
  CHECK_MESSAGE(std::is_sorted(names.begin(), names.end()), "who pages are not in name order");
  CHECK_MESSAGE(std::set<std::string>(names.begin(), names.end()).size() == names.size(), "who repeated a name");
  CHECK(std::set<std::string>(names.begin(), names.end()) == expected);
  CHECK(storm.fresh_pages() >= (n + 99) / 100); // the default page_size is 100 names

  storm.close_all();
}
