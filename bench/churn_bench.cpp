// churn_bench: how many short chat sessions per second does Parley serve?
//
// --concurrency slots each run sessions back to back: connect -> upgrade -> `welcome` -> `join`
// -> `joined` -> (unless --no-send) `send` one message with a cid and wait for its own echo ->
// close handshake (our close, the server's echo, the server's FIN) -> the next session on the same
// slot under a fresh user name. Rooms: --rooms 1 puts every session in one room, --rooms N spreads
// them round-robin over N rooms, --unique-rooms gives every session a room of its own (that
// measures connection setup: accept, upgrade, session actor, a new room, the first join).
//
// Sessions that end within --seconds after a --warmup count. A session fails on an `error` frame,
// a close it did not ask for, a failed connect or upgrade, or no progress for --session-timeout;
// any failure makes the run say so loudly and exit 1.
//
// Start the server without its per-connection rate limit:
//   parley --connection.rate_per_second=1000000 --connection.rate_burst=1000000 \
//          --limits.max_connections_per_address=0 --limits.handshakes_per_second=0
//   churn_bench --port N --concurrency 50 --rooms 1 --seconds 10 --warmup 2 --pid <server pid>

#include "frames.hpp"
#include "latency_histogram.hpp"
#include "ws_client_pool.hpp"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

namespace {

using bench::now_ns;

struct churn_options {
  std::string host = "127.0.0.1";
  uint16_t port = 8080;
  std::size_t concurrency = 50;
  std::size_t rooms = 1;
  bool unique_rooms = false;
  bool no_send = false;
  double seconds = 10;
  double warmup_s = 2;
  double session_timeout_s = 5;
  std::size_t size = 32; // bytes of message text
  std::string room_prefix = "churn";
  unsigned source_addresses = 4;
  long pid = 0;
};

churn_options parse_options(int argc, char** argv) {
  bench::arg_map args(argc, argv);
  if (args.has("help")) {
    std::puts("churn_bench --host 127.0.0.1 --port N --concurrency 50 [--rooms 1 | --unique-rooms]\n"
              "            [--no-send] --seconds 10 --warmup 2 --session-timeout 5 --size 32\n"
              "            --room-prefix churn --source-addresses 4 [--pid SERVER_PID]");
    std::exit(0);
  }
  churn_options o;
  o.host = args.str("host", o.host);
  o.port = static_cast<uint16_t>(args.num("port", o.port));
  o.concurrency = static_cast<std::size_t>(std::max(1L, args.num("concurrency", long(o.concurrency))));
  o.rooms = static_cast<std::size_t>(std::max(1L, args.num("rooms", long(o.rooms))));
  o.unique_rooms = args.has("unique-rooms");
  o.no_send = args.has("no-send");
  o.seconds = args.real("seconds", o.seconds);
  o.warmup_s = args.real("warmup", o.warmup_s);
  o.session_timeout_s = args.real("session-timeout", o.session_timeout_s);
  o.size = static_cast<std::size_t>(std::max(1L, args.num("size", long(o.size))));
  o.room_prefix = args.str("room-prefix", o.room_prefix);
  o.source_addresses = static_cast<unsigned>(args.num("source-addresses", o.source_addresses));
  o.pid = args.num("pid", 0);
  return o;
}

/// Where a slot's current session is.
enum class stage : uint8_t { idle, connecting, welcoming, joining, echoing, closing, failed };

struct slot_state {
  stage at = stage::idle;
  bool restart = false; // start the next session after this poll (never from inside a callback)
  uint64_t seq = 0;     // the session's number, unique in this run: names its user and cid
  int64_t started_at = 0;
  int64_t joined_at = 0;
  int64_t progress_deadline = 0;
  std::string room;
  std::string cid;
};

class churn_bench : public bench::pool_events {
public:
  explicit churn_bench(const churn_options& o)
    : opt_(o), pool_(o.host, o.port, o.concurrency, *this), slots_(o.concurrency) {
    run_id_ = static_cast<uint32_t>(now_ns() & 0xFFFFF);
    pool_.spread_source_addresses(o.source_addresses);
    text_.assign(o.size, 'x');
  }

  int run() {
    warn_about_ports();
    int64_t t0 = now_ns();
    warm_end_ = t0 + int64_t(opt_.warmup_s * 1e9);
    measure_end_ = warm_end_ + int64_t(opt_.seconds * 1e9);
    for (std::size_t s = 0; s < slots_.size(); ++s) start_session(s);
    bool measuring = false;
    while (now_ns() < measure_end_) {
      pool_.poll(2);
      int64_t now = now_ns();
      if (!measuring && now >= warm_end_) {
        measuring = true;
        mark_cpu(cpu_start_);
      }
      check_timeouts(now);
      restart_slots();
    }
    mark_cpu(cpu_end_);
    stopping_ = true;
    drain();
    report();
    return failed_total() == 0 ? 0 : 1;
  }

  // -- pool_events ----------------------------------------------------------------------------------

  void on_open(std::size_t s) override {
    auto& slot = slots_[s];
    slot.at = stage::welcoming;
    touch(slot);
  }

  void on_text(std::size_t s, const char* data, std::size_t n, int64_t now) override {
    std::string_view f{data, n};
    auto& slot = slots_[s];
    auto type = bench::frame_type(f);
    if (type == "error") {
      auto code = bench::string_field(f, "code");
      return fail(s, "error " + std::string(code ? *code : "?"), "error frame: " + std::string(f.substr(0, 200)));
    }
    switch (slot.at) {
      case stage::welcoming:
        if (type != "welcome") return;
        slot.at = stage::joining;
        touch(slot);
        return pool_.send_text(s, R"({"type":"join","room":")" + slot.room + R"("})");
      case stage::joining:
        if (type != "joined") return;
        slot.joined_at = now;
        touch(slot);
        if (opt_.no_send) return close_session(s);
        slot.at = stage::echoing;
        slot.cid = "c" + std::to_string(slot.seq);
        return pool_.send_text(s, R"({"type":"send","room":")" + slot.room + R"(","text":")" +
                                    text_ + R"(","cid":")" + slot.cid + R"("})");
      case stage::echoing:
        if (type != "message" || bench::string_field(f, "cid") != std::string_view{slot.cid}) return;
        return close_session(s);
      default:
        return; // presence and other members' messages: part of the load, nothing to check
    }
  }

  void on_closed(std::size_t s, uint16_t code, const std::string& why) override {
    auto& slot = slots_[s];
    if (finished_) return; // the final abort of sessions that did not finish while draining
    if (slot.at == stage::failed) { // counted when it failed; this is our own abort
      slot.at = stage::idle;
      slot.restart = true;
      return;
    }
    if (slot.at == stage::closing && code == 1000) {
      int64_t now = now_ns();
      if (in_window(now)) {
        ++sessions_;
        session_latency_.record(now - slot.started_at);
        join_latency_.record(slot.joined_at - slot.started_at);
      }
      slot.at = stage::idle;
      slot.restart = true;
      return;
    }
    std::string what = slot.at == stage::closing ? "close answered with code " + std::to_string(code)
                                                 : "unexpected close (code " + std::to_string(code) +
                                                     (why.empty() ? "" : ": " + why) + ")";
    std::string kind = slot.at == stage::connecting ? "connect/upgrade failed"
                       : slot.at == stage::closing  ? "close code " + std::to_string(code)
                                                    : "closed by server (" + std::to_string(code) + ")";
    count_failure(s, kind, what);
    slot.at = stage::idle;
    slot.restart = true;
  }

private:
  std::string room_for(uint64_t seq) const {
    if (opt_.unique_rooms) return opt_.room_prefix + "-" + std::to_string(run_id_) + "-" + std::to_string(seq);
    if (opt_.rooms == 1) return opt_.room_prefix;
    return opt_.room_prefix + "-" + std::to_string(seq % opt_.rooms);
  }

  void start_session(std::size_t s) {
    auto& slot = slots_[s];
    slot.seq = next_seq_++;
    slot.room = room_for(slot.seq);
    slot.cid.clear();
    slot.at = stage::connecting;
    slot.restart = false;
    slot.started_at = now_ns();
    slot.joined_at = 0;
    touch(slot);
    // A fresh user per session: names are not reserved, but a fresh one makes every join a new
    // presence entry, as with real visitors.
    pool_.set_path(s, "/ws?name=ch" + std::to_string(run_id_) + "-" + std::to_string(slot.seq));
    pool_.connect_now(s);
  }

  void close_session(std::size_t s) {
    slots_[s].at = stage::closing;
    touch(slots_[s]);
    pool_.send_close(s, 1000);
  }

  void touch(slot_state& slot) {
    slot.progress_deadline = now_ns() + int64_t(opt_.session_timeout_s * 1e9);
  }

  void fail(std::size_t s, const std::string& kind, const std::string& what) {
    count_failure(s, kind, what);
    slots_[s].at = stage::failed;
    pool_.abort(s, what); // on_closed sees `failed` and schedules the next session
  }

  void count_failure(std::size_t s, const std::string& kind, const std::string& what) {
    ++failure_kinds_[kind];
    int64_t now = now_ns();
    if (now < warm_end_) ++failed_in_warmup_;
    else if (now <= measure_end_) ++failed_;
    else ++failed_in_drain_;
    if (failed_total() <= 10)
      std::fprintf(stderr, "session %" PRIu64 " (slot %zu) failed: %s\n", slots_[s].seq, s, what.c_str());
  }

  uint64_t failed_total() const { return failed_ + failed_in_warmup_ + failed_in_drain_; }

  bool in_window(int64_t t) const { return t >= warm_end_ && t <= measure_end_; }

  void check_timeouts(int64_t now) {
    for (std::size_t s = 0; s < slots_.size(); ++s) {
      auto& slot = slots_[s];
      if (slot.at == stage::idle || slot.at == stage::failed || now < slot.progress_deadline) continue;
      static const char* names[] = {"idle", "connect/upgrade", "welcome", "joined", "own echo", "close", ""};
      std::string what = std::string("timeout waiting for ") + names[int(slot.at)];
      fail(s, what, what);
    }
  }

  void restart_slots() {
    for (std::size_t s = 0; s < slots_.size(); ++s)
      if (slots_[s].restart && !pool_.is_live(s)) {
        if (stopping_) slots_[s].restart = false;
        else start_session(s);
      }
  }

  /// Lets the sessions in flight finish (not counted, but their failures are), so the server sees
  /// no aborted ones. Their own timeouts bound the wait.
  void drain() {
    int64_t until = now_ns() + int64_t((opt_.session_timeout_s + 1) * 1e9);
    while (pool_.live_count() > 0 && now_ns() < until) {
      pool_.poll(5);
      check_timeouts(now_ns());
      restart_slots();
    }
    finished_ = true;
    pool_.abort_all();
  }

  /// Says up front whether the client side may run out of ephemeral ports.
  void warn_about_ports() {
    auto range = bench::read_sysctl("/proc/sys/net/ipv4/ip_local_port_range");
    auto reuse = bench::read_sysctl("/proc/sys/net/ipv4/tcp_tw_reuse");
    std::fprintf(stderr, "ports: ip_local_port_range %s, tcp_tw_reuse %s, %u source address(es)\n",
                 range.c_str(), reuse.c_str(), std::max(1u, opt_.source_addresses));
  }

  struct cpu_mark {
    double server = -1;
    double client = 0;
  };

  void mark_cpu(cpu_mark& m) const {
    if (opt_.pid > 0) m.server = bench::read_cpu_seconds(opt_.pid);
    m.client = bench::own_cpu_seconds();
  }

  static long time_wait_sockets() {
    std::ifstream in("/proc/net/sockstat");
    std::string word;
    while (in >> word)
      if (word == "tw") {
        long n = -1;
        in >> n;
        return n;
      }
    return -1;
  }

  void report() {
    double rate = double(sessions_) / opt_.seconds;
    auto ms = [](const bench::latency_histogram& h, double q) { return double(h.quantile(q)) / 1e6; };
    double server_cpu = cpu_start_.server >= 0 && cpu_end_.server >= 0 ? cpu_end_.server - cpu_start_.server : -1;
    double client_cpu = cpu_end_.client - cpu_start_.client;
    double per_session = sessions_ ? 1e6 / double(sessions_) : 0.0;
    const char* mode = opt_.unique_rooms ? "unique" : opt_.rooms == 1 ? "one" : "spread";
    const auto& st = pool_.stats();
    std::printf("churn: concurrency=%zu rooms=%s%s send=%s seconds=%.0f warmup=%.0f\n", opt_.concurrency,
                opt_.unique_rooms ? "a new one per session" : std::to_string(opt_.rooms).c_str(),
                opt_.rooms > 1 && !opt_.unique_rooms ? " (round-robin)" : "", opt_.no_send ? "no" : "one message",
                opt_.seconds, opt_.warmup_s);
    std::printf("  sessions           %" PRIu64 " completed in the measured %.0f s = %.0f sessions/s\n", sessions_,
                opt_.seconds, rate);
    std::printf("  session latency    p50 %.2f ms, p99 %.2f ms, max %.2f ms (connect -> closed)\n",
                ms(session_latency_, 0.5), ms(session_latency_, 0.99), double(session_latency_.max()) / 1e6);
    std::printf("  setup latency      p50 %.2f ms, p99 %.2f ms (connect -> joined)\n", ms(join_latency_, 0.5),
                ms(join_latency_, 0.99));
    if (server_cpu >= 0)
      std::printf("  server CPU         %.2f s = %.1f us per session (%.0f%% of one core)\n", server_cpu,
                  server_cpu * per_session, 100 * server_cpu / opt_.seconds);
    std::printf("  bench client CPU   %.2f s = %.1f us per session\n", client_cpu, client_cpu * per_session);
    std::printf("  connects %" PRIu64 ", connect errors %" PRIu64 " (out of ports: %" PRIu64 "), TIME_WAIT sockets now %ld\n",
                st.connects, st.connect_errors, st.no_port_errors, time_wait_sockets());
    if (failed_total() > 0) {
      std::printf("  !!! FAILED SESSIONS: %" PRIu64 " in the measurement, %" PRIu64 " in the warmup, %" PRIu64
                  " while draining (see stderr for the first ones) !!!\n",
                  failed_, failed_in_warmup_, failed_in_drain_);
      for (const auto& [kind, n] : failure_kinds_) std::printf("      %-30s %" PRIu64 "\n", kind.c_str(), n);
      if (st.no_port_errors > 0)
        std::printf("  !!! the client ran out of ephemeral ports: raise --source-addresses !!!\n");
    }
    std::printf("RESULT churn concurrency=%zu rooms=%zu mode=%s send=%d seconds=%.0f sessions=%" PRIu64
                " sessions_per_s=%.0f failed=%" PRIu64 " p50_ms=%.2f p99_ms=%.2f setup_p50_ms=%.2f"
                " setup_p99_ms=%.2f server_cpu_us_per_session=%.1f client_cpu_us_per_session=%.1f\n",
                opt_.concurrency, opt_.unique_rooms ? 0 : opt_.rooms, mode, opt_.no_send ? 0 : 1, opt_.seconds,
                sessions_, rate, failed_total(), ms(session_latency_, 0.5), ms(session_latency_, 0.99),
                ms(join_latency_, 0.5), ms(join_latency_, 0.99), server_cpu >= 0 ? server_cpu * per_session : -1.0,
                client_cpu * per_session);
    std::fflush(stdout);
  }

  churn_options opt_;
  bench::client_pool pool_;
  std::vector<slot_state> slots_;
  uint32_t run_id_ = 0;
  std::string text_;
  uint64_t next_seq_ = 0;
  int64_t warm_end_ = 0;
  int64_t measure_end_ = 0;
  bool stopping_ = false;
  bool finished_ = false;
  uint64_t sessions_ = 0;
  uint64_t failed_ = 0;
  uint64_t failed_in_warmup_ = 0;
  uint64_t failed_in_drain_ = 0;
  std::map<std::string, uint64_t> failure_kinds_;
  bench::latency_histogram session_latency_;
  bench::latency_histogram join_latency_;
  cpu_mark cpu_start_;
  cpu_mark cpu_end_;
};

} // namespace

int main(int argc, char** argv) {
  bench::raise_fd_limit();
  churn_bench b{parse_options(argc, argv)};
  return b.run();
}
