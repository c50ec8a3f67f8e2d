// join_storm_bench: can N clients join one room, and how does a big room behave under churn?
//
// Phase 1 (the storm): --clients N connect (at most --connect-window handshakes in flight) and
// join --room. It reports the time from the first connect until every client got `joined`, and
// until every client's view of the member count equals N. The view comes from whatever the server
// speaks: `count` in joined / presence_diff / presence_state, or with the old protocol the length
// of joined's `members` plus one per `presence` online and minus one per offline. A progress line
// every --progress seconds; after --timeout it prints how far it got.
// With --distinct-rooms every client joins a room of its own instead: that measures connection
// setup (accept, upgrade, session actor, new room, first join) per second, and phase 2 is skipped.
//
// Phase 2 (churn in the big room, only when phase 1 finished and --seconds > 0): for --seconds,
// --churn-per-second new clients join and as many members close per second (evenly spread), while
// member 0 sends --message-rate messages per second on a fixed schedule. It reports the delivery
// latency over all members, measured from each message's scheduled send time, and lost deliveries:
// a member that stays to the end must get every message sent after its `joined` arrived.
//
// Start the server without its per-connection rate limit and with --rooms.capacity above
// N + churn-per-second (joins run slightly ahead of leaves).
// Exit code: 0 when phase 1 finished and phase 2 (if run) lost nothing; 1 otherwise.

#include "frames.hpp"
#include "latency_histogram.hpp"
#include "ws_client_pool.hpp"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <string>
#include <vector>

namespace {

using bench::now_ns;

struct storm_options {
  std::string host = "127.0.0.1";
  uint16_t port = 8080;
  std::size_t clients = 10000;
  std::string room = "storm";
  bool distinct_rooms = false;
  std::size_t connect_window = 64;
  double timeout_s = 100;
  double progress_s = 1;
  double churn_per_second = 100;
  double message_rate = 10;
  double seconds = 20;
  double drain_s = 5;
  std::size_t size = 64; // bytes of message text
  unsigned source_addresses = 4;
  long pid = 0;
};

storm_options parse_options(int argc, char** argv) {
  bench::arg_map args(argc, argv);
  if (args.has("help")) {
    std::puts("join_storm_bench --host 127.0.0.1 --port N --clients 10000 --room storm [--distinct-rooms]\n"
              "                 --connect-window 64 --timeout 100 --progress 1\n"
              "                 --churn-per-second 100 --message-rate 10 --seconds 20 --drain 5 --size 64\n"
              "                 --source-addresses 4 [--pid SERVER_PID]");
    std::exit(0);
  }
  storm_options o;
  o.host = args.str("host", o.host);
  o.port = static_cast<uint16_t>(args.num("port", o.port));
  o.clients = static_cast<std::size_t>(std::max(2L, args.num("clients", long(o.clients))));
  o.room = args.str("room", o.room);
  o.distinct_rooms = args.has("distinct-rooms");
  o.connect_window = static_cast<std::size_t>(std::max(1L, args.num("connect-window", long(o.connect_window))));
  o.timeout_s = args.real("timeout", o.timeout_s);
  o.progress_s = args.real("progress", o.progress_s);
  o.churn_per_second = std::max(0.0, args.real("churn-per-second", o.churn_per_second));
  o.message_rate = std::max(0.0, args.real("message-rate", o.message_rate));
  o.seconds = args.real("seconds", o.seconds);
  o.drain_s = args.real("drain", o.drain_s);
  o.size = static_cast<std::size_t>(std::max(16L, args.num("size", long(o.size))));
  o.source_addresses = static_cast<unsigned>(args.num("source-addresses", o.source_addresses));
  o.pid = args.num("pid", 0);
  if (o.distinct_rooms) o.seconds = 0;
  return o;
}

struct member {
  int64_t joined_at = 0; // when its `joined` arrived; 0 = not joined
  bool join_failed = false; // an error or a close came instead of `joined`: it will never join
  bool leaving = false;  // phase 2 closed it on purpose
  bench::member_count_view view;
};

class storm_bench : public bench::pool_events {
public:
  explicit storm_bench(const storm_options& o)
    : opt_(o), extra_(o.seconds > 0 ? std::size_t(o.churn_per_second * o.seconds) + 1 : 0),
      pool_(o.host, o.port, o.clients + extra_, *this, o.connect_window), members_(o.clients + extra_) {
    run_id_ = static_cast<uint32_t>(now_ns() & 0xFFFFF);
    pool_.spread_source_addresses(o.source_addresses);
    for (std::size_t i = 0; i < members_.size(); ++i)
      pool_.set_path(i, "/ws?name=s" + std::to_string(run_id_) + "-" + std::to_string(i));
    target_ = o.distinct_rooms ? 1 : long(o.clients);
    std::size_t planned = o.seconds > 0 ? std::size_t(o.message_rate * o.seconds) + 1 : 0;
    sent_at_.assign(planned, 0);
    scheduled_at_.assign(planned, 0);
    got_.assign(planned * members_.size(), false);
  }

  int run() {
    bool storm_done = run_storm();
    report_storm(storm_done);
    bool churn_ok = true;
    if (opt_.distinct_rooms) {
      // setup only: there is no big room to churn
    } else if (!storm_done || opt_.seconds <= 0) {
      std::printf("RESULT storm_churn members=%zu skipped=1\n", opt_.clients);
    } else {
      run_churn();
      churn_ok = report_churn();
    }
    shut_down();
    return storm_done && churn_ok ? 0 : 1;
  }

  // -- pool_events ----------------------------------------------------------------------------------

  void on_open(std::size_t i) override { ++connected_; }

  void on_text(std::size_t i, const char* data, std::size_t n, int64_t now) override {
    std::string_view f{data, n};
    auto type = bench::frame_type(f);
    auto& m = members_[i];
    if (type == "message") return on_message(i, f, now);
    if (type == "welcome") return pool_.send_text(i, R"({"type":"join","room":")" + room_of(i) + R"("})");
    if (type == "joined") {
      if (m.joined_at == 0) {
        m.joined_at = now;
        ++joined_;
      }
      return update_view(i, type, f);
    }
    if (type == "error") {
      if (++errors_ <= 5)
        std::fprintf(stderr, "client %zu got %.*s\n", i, int(std::min<std::size_t>(n, 200)), data);
      return mark_join_failed(i);
    }
    ++presence_frames_;
    update_view(i, type, f);
  }

  void on_closed(std::size_t i, uint16_t code, const std::string& why) override {
    if (finished_ || members_[i].leaving) return;
    if (++early_closes_ <= 5)
      std::fprintf(stderr, "client %zu ended (close code %u): %s\n", i, unsigned(code), why.c_str());
    mark_join_failed(i);
  }

private:
  std::string room_of(std::size_t i) const {
    return opt_.distinct_rooms ? opt_.room + "-" + std::to_string(run_id_) + "-" + std::to_string(i) : opt_.room;
  }

  /// A storm client that got an error or lost its connection before `joined` never joins: the
  /// storm cannot complete, and once every client has either joined or failed it stops waiting.
  void mark_join_failed(std::size_t i) {
    auto& m = members_[i];
    if (i >= opt_.clients || m.joined_at != 0 || m.join_failed) return;
    m.join_failed = true;
    ++join_failures_;
  }

  /// Keeps the number of storm clients whose view equals the target up to date.
  void update_view(std::size_t i, std::string_view type, std::string_view f) {
    auto& v = members_[i].view;
    long before = v.count;
    if (!v.apply(type, f) || i >= opt_.clients) return;
    if (before == target_) --at_target_;
    if (v.count == target_) ++at_target_;
  }

  // -- phase 1 --------------------------------------------------------------------------------------

  bool run_storm() {
    t_begin_ = now_ns();
    int64_t deadline = t_begin_ + int64_t(opt_.timeout_s * 1e9);
    int64_t next_progress = t_begin_ + int64_t(opt_.progress_s * 1e9);
    pool_.start_connecting(opt_.clients);
    while (now_ns() < deadline) {
      pool_.poll(5);
      int64_t now = now_ns();
      if (joined_ >= opt_.clients && t_all_joined_ == 0) t_all_joined_ = now;
      if (t_all_joined_ != 0 && at_target_ >= opt_.clients) {
        t_all_counted_ = now;
        return true;
      }
      if (join_failures_ > 0 && joined_ + join_failures_ >= opt_.clients) {
        t_all_answered_ = now; // the rest joined: nothing more will happen
        return false;
      }
      if (opt_.progress_s > 0 && now >= next_progress) {
        progress(now);
        next_progress += int64_t(opt_.progress_s * 1e9);
      }
    }
    return false;
  }

  /// min / median / max of the storm clients' views (-1 = not joined yet).
  void view_spread(long& lo, long& median, long& hi) const {
    std::vector<long> views;
    views.reserve(opt_.clients);
    for (std::size_t i = 0; i < opt_.clients; ++i) views.push_back(members_[i].view.count);
    std::nth_element(views.begin(), views.begin() + long(views.size() / 2), views.end());
    median = views[views.size() / 2];
    auto [mn, mx] = std::minmax_element(views.begin(), views.end());
    lo = *mn;
    hi = *mx;
  }

  void progress(int64_t now) {
    long lo = 0, median = 0, hi = 0;
    view_spread(lo, median, hi);
    std::fprintf(stderr,
                 "  %6.1f s: connected %zu/%zu, joined %zu, views at %ld: %zu (min %ld, median %ld, max %ld), "
                 "presence frames %" PRIu64 "\n",
                 double(now - t_begin_) / 1e9, connected_, opt_.clients, joined_, target_, at_target_, lo, median, hi,
                 presence_frames_);
  }

  void report_storm(bool done) {
    long lo = 0, median = 0, hi = 0;
    view_spread(lo, median, hi);
    auto secs = [&](int64_t t) { return t ? double(t - t_begin_) / 1e9 : -1.0; };
    std::printf("join storm: clients=%zu %s connect-window=%zu\n", opt_.clients,
                opt_.distinct_rooms ? "each in a room of its own" : ("one room " + opt_.room).c_str(),
                opt_.connect_window);
    if (t_all_joined_)
      std::printf("  all joined         %.2f s after the first connect = %.0f joins/s\n", secs(t_all_joined_),
                  double(opt_.clients) / secs(t_all_joined_));
    else if (t_all_answered_)
      std::printf("  all joined         NO: %zu joined, %zu failed to join (error or close), every client answered "
                  "after %.2f s = %.0f joins/s\n",
                  joined_, join_failures_, secs(t_all_answered_), double(joined_) / secs(t_all_answered_));
    else
      std::printf("  all joined         NOT within %.0f s: connected %zu, joined %zu of %zu, %zu failed to join\n",
                  opt_.timeout_s, connected_, joined_, opt_.clients, join_failures_);
    if (done)
      std::printf("  all counts = %-6ld %.2f s after the first connect\n", target_, secs(t_all_counted_));
    else
      std::printf("  all counts = %-6ld NOT within %.0f s: %zu of %zu clients see %ld; views min %ld, median %ld, "
                  "max %ld (-1: not joined)\n",
                  target_, opt_.timeout_s, at_target_, opt_.clients, target_, lo, median, hi);
    std::printf("  presence frames    %" PRIu64 " received, errors %" PRIu64 ", early closes %zu\n", presence_frames_,
                errors_, early_closes_);
    if (!done) std::printf("  !!! DID NOT FINISH !!!\n");
    // joins/s: over the time until every client had joined, or had at least an answer.
    int64_t t_rate = t_all_joined_ ? t_all_joined_ : t_all_answered_;
    std::printf("RESULT storm clients=%zu rooms=%s connected=%zu joined=%zu failed_joins=%zu views_at_target=%zu"
                " view_median=%ld all_joined_s=%.2f all_counted_s=%.2f all_answered_s=%.2f joins_per_s=%.0f"
                " errors=%" PRIu64 " complete=%d\n",
                opt_.clients, opt_.distinct_rooms ? "distinct" : "one", connected_, joined_, join_failures_, at_target_,
                median, secs(t_all_joined_), secs(t_all_counted_), secs(t_all_answered_ ? t_all_answered_ : t_all_joined_),
                t_rate ? double(joined_) / secs(t_rate) : 0.0, errors_, done ? 1 : 0);
    std::fflush(stdout);
  }

  // -- phase 2 --------------------------------------------------------------------------------------

  void run_churn() {
    t_churn_ = now_ns();
    int64_t end = t_churn_ + int64_t(opt_.seconds * 1e9);
    std::size_t joins_started = 0, leaves_started = 0, next_leaver = 1; // member 0 is the sender
    std::size_t next_progress_s = 1;
    mark_cpu(cpu_start_);
    for (;;) {
      int64_t now = now_ns();
      if (now >= end) break;
      double t = double(now - t_churn_) / 1e9;
      // Fixed schedules: what is due by now happens now, however late the loop got to it.
      while (joins_started < extra_ && double(joins_started) < t * opt_.churn_per_second)
        pool_.connect_now(opt_.clients + joins_started++);
      while (double(leaves_started) < t * opt_.churn_per_second && next_leaver < opt_.clients) {
        members_[next_leaver].leaving = true;
        pool_.send_close(next_leaver++, 1000);
        ++leaves_started;
      }
      while (messages_sent_ < sent_at_.size() && double(messages_sent_) < t * opt_.message_rate) send_message();
      if (t >= double(next_progress_s)) {
        std::fprintf(stderr, "  churn %zu s: %zu joined, %zu left, %zu messages sent, %" PRIu64 " deliveries\n",
                     next_progress_s, joins_started, leaves_started, messages_sent_, deliveries_);
        ++next_progress_s;
      }
      pool_.poll(1);
    }
    mark_cpu(cpu_end_);
    churn_joins_ = joins_started;
    churn_leaves_ = leaves_started;
    // Wait for the last deliveries: until nothing is missing, or --drain.
    int64_t until = now_ns() + int64_t(opt_.drain_s * 1e9);
    int64_t next_check = 0;
    while (now_ns() < until) {
      pool_.poll(5);
      if (now_ns() >= next_check) {
        auto [expected, received] = count_expected();
        if (received == expected) break;
        next_check = now_ns() + 100'000'000;
      }
    }
  }

  void send_message() {
    std::size_t seq = messages_sent_++;
    std::string text = std::to_string(run_id_) + "." + std::to_string(seq) + ".";
    if (text.size() < opt_.size) text.append(opt_.size - text.size(), 'x');
    scheduled_at_[seq] = t_churn_ + int64_t(double(seq) / opt_.message_rate * 1e9);
    sent_at_[seq] = now_ns();
    pool_.send_text(0, R"({"type":"send","room":")" + opt_.room + R"(","text":")" + text + R"("})");
  }

  void on_message(std::size_t i, std::string_view f, int64_t now) {
    auto text = bench::string_field(f, "text");
    if (!text) return;
    // "<run>.<seq>."
    uint64_t fields[2] = {0, 0};
    std::size_t pos = 0;
    for (auto& field : fields) {
      std::size_t start = pos;
      while (pos < text->size() && (*text)[pos] >= '0' && (*text)[pos] <= '9')
        field = field * 10 + uint64_t((*text)[pos++] - '0');
      if (pos == start || pos >= text->size() || (*text)[pos] != '.') return;
      ++pos;
    }
    if (fields[0] != run_id_ || fields[1] >= messages_sent_) return;
    std::size_t seq = fields[1];
    std::size_t bit = i * sent_at_.size() + seq;
    if (got_[bit]) {
      ++duplicates_;
      return;
    }
    got_[bit] = true;
    ++deliveries_;
    latency_.record(now - scheduled_at_[seq]);
  }

  /// (expected, received) over members that stay: every message sent after their joined arrived.
  std::pair<uint64_t, uint64_t> count_expected() const {
    uint64_t expected = 0, received = 0;
    for (std::size_t i = 0; i < members_.size(); ++i) {
      const auto& m = members_[i];
      if (m.joined_at == 0 || m.leaving) continue;
      for (std::size_t seq = 0; seq < messages_sent_; ++seq) {
        if (sent_at_[seq] <= m.joined_at) continue;
        ++expected;
        received += got_[i * sent_at_.size() + seq];
      }
    }
    return {expected, received};
  }

  bool report_churn() {
    auto [expected, received] = count_expected();
    uint64_t lost = expected - received;
    auto ms = [&](double q) { return double(latency_.quantile(q)) / 1e6; };
    std::size_t members_now = 0;
    for (std::size_t i = 0; i < members_.size(); ++i)
      members_now += members_[i].joined_at != 0 && !members_[i].leaving && pool_.is_open(i);
    double server_cpu = cpu_start_.server >= 0 && cpu_end_.server >= 0 ? cpu_end_.server - cpu_start_.server : -1;
    std::printf("churn in the room: %.0f joins + %.0f leaves per second, %.0f messages/s from one member, %.0f s\n",
                opt_.churn_per_second, opt_.churn_per_second, opt_.message_rate, opt_.seconds);
    std::printf("  churn              %zu joined, %zu left; %zu members at the end\n", churn_joins_, churn_leaves_,
                members_now);
    std::printf("  messages           %zu sent; deliveries %" PRIu64 " received (all members)\n", messages_sent_,
                deliveries_);
    std::printf("  latency            p50 %.2f ms, p99 %.2f ms, max %.2f ms (scheduled send -> receipt)\n", ms(0.5),
                ms(0.99), double(latency_.max()) / 1e6);
    std::printf("  lost               %" PRIu64 " of %" PRIu64 " deliveries owed to members that stayed%s\n", lost,
                expected, lost ? "  !!! LOST DELIVERIES !!!" : "");
    std::printf("  duplicates %" PRIu64 ", errors %" PRIu64 ", early closes %zu\n", duplicates_, errors_,
                early_closes_);
    if (server_cpu >= 0)
      std::printf("  server CPU         %.0f%% of one core during the churn\n", 100 * server_cpu / opt_.seconds);
    std::printf("RESULT storm_churn members=%zu churn_per_s=%.0f message_rate=%.0f seconds=%.0f sent=%zu"
                " expected=%" PRIu64 " received=%" PRIu64 " lost=%" PRIu64 " p50_ms=%.2f p99_ms=%.2f"
                " server_cpu_pct=%.0f skipped=0\n",
                opt_.clients, opt_.churn_per_second, opt_.message_rate, opt_.seconds, messages_sent_, expected,
                received, lost, ms(0.5), ms(0.99), server_cpu >= 0 ? 100 * server_cpu / opt_.seconds : -1.0);
    std::fflush(stdout);
    return lost == 0 && errors_ == 0;
  }

  struct cpu_mark {
    double server = -1;
  };

  void mark_cpu(cpu_mark& m) const {
    if (opt_.pid > 0) m.server = bench::read_cpu_seconds(opt_.pid);
  }

  /// Closes politely, but waits at most two seconds (a server still busy with the storm may not
  /// answer), then drops what is left.
  void shut_down() {
    finished_ = true;
    for (std::size_t i = 0; i < pool_.size(); ++i) pool_.send_close(i, 1000);
    int64_t until = now_ns() + 2'000'000'000;
    while (pool_.live_count() > 0 && now_ns() < until) pool_.poll(10);
    pool_.abort_all();
  }

  storm_options opt_;
  std::size_t extra_; // slots for phase 2's joiners
  bench::client_pool pool_;
  std::vector<member> members_;
  uint32_t run_id_ = 0;
  long target_ = 0;
  std::size_t connected_ = 0;
  std::size_t joined_ = 0;
  std::size_t at_target_ = 0;
  std::size_t early_closes_ = 0;
  uint64_t errors_ = 0;
  uint64_t presence_frames_ = 0;
  bool finished_ = false;
  int64_t t_begin_ = 0;
  int64_t t_all_joined_ = 0;
  int64_t t_all_counted_ = 0;
  int64_t t_all_answered_ = 0;
  std::size_t join_failures_ = 0;
  // phase 2
  int64_t t_churn_ = 0;
  std::size_t churn_joins_ = 0;
  std::size_t churn_leaves_ = 0;
  std::size_t messages_sent_ = 0;
  std::vector<int64_t> scheduled_at_;
  std::vector<int64_t> sent_at_;
  std::vector<bool> got_; // member i got message seq: got_[i * planned + seq]
  uint64_t deliveries_ = 0;
  uint64_t duplicates_ = 0;
  bench::latency_histogram latency_;
  cpu_mark cpu_start_;
  cpu_mark cpu_end_;
};

} // namespace

int main(int argc, char** argv) {
  long limit = bench::raise_fd_limit();
  auto o = parse_options(argc, argv);
  std::size_t needed = o.clients + 64;
  if (limit > 0 && std::size_t(limit) < needed) {
    std::fprintf(stderr, "open-file limit %ld is below the %zu this run needs\n", limit, needed);
    return 2;
  }
  storm_bench b{o};
  return b.run();
}
