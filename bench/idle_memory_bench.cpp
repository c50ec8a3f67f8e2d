// idle_memory_bench: how much server memory does one idle WebSocket connection cost?
//
// Reads the server's VmRSS (/proc/<pid>/status), opens --clients connections
// (ws://host:port/ws?name=i<k>), optionally joins them to rooms of --room-size members each
// (0: no join), waits until every connection is welcomed (and joined), lets the server settle
// for --settle-ms, reads VmRSS again and prints (after - before) / clients. Then, with
// --idle-seconds, it measures the server's CPU time while every connection stays idle (this client
// only answers the server's pings) and prints it as a percentage of one core.
// One descriptor per client here and one per connection in the server: this process raises its
// own soft limit to the hard one (20000 here, so up to ~19,900 clients); start the server with
// `ulimit -n` raised too. --source-addresses spreads the clients over 127.0.0.x so that ~20k
// connections never run short of ephemeral ports.

#include "ws_client_pool.hpp"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

using bench::now_ns;

struct idle_options {
  std::string host = "127.0.0.1";
  uint16_t port = 8080;
  long pid = 0;
  std::size_t clients = 5000;
  std::size_t room_size = 0; // members per room; 0 = do not join any room
  std::string room_prefix = "idle";
  double settle_ms = 2000;
  double timeout_s = 60;
  double idle_seconds = 10; // 0: skip the idle CPU measurement
  std::size_t connect_window = 64;
  unsigned source_addresses = 4;
};

idle_options parse_options(int argc, char** argv) {
  bench::arg_map args(argc, argv);
  if (args.has("help") || !args.has("pid")) {
    std::puts("idle_memory_bench --pid SERVER_PID [--host 127.0.0.1 --port N --clients 5000\n"
              "                  --room-size 0 --room-prefix idle --settle-ms 2000 --timeout 60\n"
              "                  --idle-seconds 10 --connect-window 64 --source-addresses 4]");
    std::exit(args.has("help") ? 0 : 2);
  }
  idle_options o;
  o.host = args.str("host", o.host);
  o.port = static_cast<uint16_t>(args.num("port", o.port));
  o.pid = args.num("pid", 0);
  o.clients = static_cast<std::size_t>(args.num("clients", long(o.clients)));
  o.room_size = static_cast<std::size_t>(args.num("room-size", long(o.room_size)));
  o.room_prefix = args.str("room-prefix", o.room_prefix);
  o.settle_ms = args.real("settle-ms", o.settle_ms);
  o.timeout_s = args.real("timeout", o.timeout_s);
  o.idle_seconds = args.real("idle-seconds", o.idle_seconds);
  o.connect_window = static_cast<std::size_t>(std::max(1L, args.num("connect-window", long(o.connect_window))));
  o.source_addresses = static_cast<unsigned>(args.num("source-addresses", o.source_addresses));
  return o;
}

/// Counts connections that reached the state the measurement needs: welcomed, and joined if asked.
class idle_bench : public bench::pool_events {
public:
  explicit idle_bench(const idle_options& o)
    : opt_(o), pool_(o.host, o.port, o.clients, *this, o.connect_window), ready_flag_(o.clients, false) {
    for (std::size_t i = 0; i < o.clients; ++i) pool_.set_path(i, "/ws?name=i" + std::to_string(i));
    pool_.spread_source_addresses(o.source_addresses);
  }

  int run() {
    long before = bench::read_rss_kib(opt_.pid);
    if (before < 0) {
      std::fprintf(stderr, "cannot read /proc/%ld/status\n", opt_.pid);
      return 2;
    }
    int64_t t0 = now_ns();
    int64_t deadline = t0 + int64_t(opt_.timeout_s * 1e9);
    pool_.start_connecting();
    while (ready_ < opt_.clients && now_ns() < deadline && closed_ == 0) pool_.poll(5);
    double setup_s = double(now_ns() - t0) / 1e9;
    // Keep serving the sockets while settling: presence broadcasts from the joins must be read,
    // otherwise they sit in the server's queues and are counted as connection memory.
    int64_t settle_until = now_ns() + int64_t(opt_.settle_ms * 1e6);
    while (now_ns() < settle_until) pool_.poll(5);
    long after = bench::read_rss_kib(opt_.pid);
    bool complete = ready_ == opt_.clients;
    // Idle CPU: the connections only exist. Reading the sockets keeps answering the server's
    // keepalive pings (every idle_timeout / 2), which are part of what idling costs.
    double idle_cpu_pct = -1;
    if (opt_.idle_seconds > 0 && complete) {
      double cpu0 = bench::read_cpu_seconds(opt_.pid);
      int64_t t0 = now_ns();
      int64_t idle_until = t0 + int64_t(opt_.idle_seconds * 1e9);
      while (now_ns() < idle_until) pool_.poll(100);
      double cpu1 = bench::read_cpu_seconds(opt_.pid);
      if (cpu0 >= 0 && cpu1 >= 0) idle_cpu_pct = 100 * (cpu1 - cpu0) / (double(now_ns() - t0) / 1e9);
    }
    long after_idle = bench::read_rss_kib(opt_.pid);
    report(before, after, after_idle, setup_s, idle_cpu_pct, complete);
    finished_ = true; // the closes below are ours, not worth reporting
    pool_.abort_all();
    return complete ? 0 : 1;
  }

  void on_open(std::size_t) override {}

  void on_text(std::size_t i, const char* data, std::size_t n, int64_t) override {
    std::string_view f{data, n};
    if (starts_with(f, R"({"type":"welcome")")) {
      if (opt_.room_size == 0) return mark_ready(i);
      return pool_.send_text(i, R"({"type":"join","room":")" + room_of(i) + R"(","ref":"idle"})");
    }
    if (starts_with(f, R"({"type":"joined")")) return mark_ready(i);
    if (starts_with(f, R"({"type":"error")") && ++errors_ <= 5)
      std::fprintf(stderr, "i%zu got %.*s\n", i, int(std::min<std::size_t>(n, 200)), data);
  }

  void on_closed(std::size_t i, uint16_t code, const std::string& why) override {
    if (finished_) return;
    if (++closed_ <= 5)
      std::fprintf(stderr, "client i%zu ended (close code %u): %s\n", i, unsigned(code), why.c_str());
  }

private:
  static bool starts_with(std::string_view s, std::string_view p) {
    return s.size() >= p.size() && std::memcmp(s.data(), p.data(), p.size()) == 0;
  }

  std::string room_of(std::size_t i) const {
    return opt_.room_prefix + "-" + std::to_string(i / opt_.room_size);
  }

  void mark_ready(std::size_t i) {
    if (ready_flag_[i]) return;
    ready_flag_[i] = true;
    ++ready_;
  }

  void report(long before, long after, long after_idle, double setup_s, double idle_cpu_pct, bool complete) {
    double per_conn = ready_ ? double(after - before) / double(ready_) : 0.0;
    std::printf("idle memory: clients=%zu room_size=%zu (%s)\n", opt_.clients, opt_.room_size,
                opt_.room_size ? "each joined to one room" : "no rooms joined");
    std::printf("  ready              %zu/%zu in %.2f s%s\n", ready_, opt_.clients, setup_s,
                complete ? "" : "  (INCOMPLETE)");
    std::printf("  server VmRSS       %ld KiB before, %ld KiB after (+%ld KiB)\n", before, after,
                after - before);
    std::printf("  per connection     %.2f KiB\n", per_conn);
    if (idle_cpu_pct >= 0)
      std::printf("  idle server CPU    %.2f%% of one core over %.0f s (VmRSS then %ld KiB = %.1f MB)\n",
                  idle_cpu_pct, opt_.idle_seconds, after_idle, double(after_idle) / 1024);
    std::printf("RESULT idle clients=%zu room_size=%zu ready=%zu rss_before_kib=%ld "
                "rss_after_kib=%ld rss_after_mb=%.1f kib_per_conn=%.2f idle_cpu_pct=%.2f complete=%d\n",
                opt_.clients, opt_.room_size, ready_, before, after, double(std::max(after, after_idle)) / 1024,
                per_conn, idle_cpu_pct, complete ? 1 : 0);
    std::fflush(stdout);
  }

  idle_options opt_;
  bench::client_pool pool_;
  std::vector<bool> ready_flag_;
  std::size_t ready_ = 0;
  std::size_t closed_ = 0;
  uint64_t errors_ = 0;
  bool finished_ = false;
};

} // namespace

int main(int argc, char** argv) {
  long limit = bench::raise_fd_limit();
  auto o = parse_options(argc, argv);
  if (limit > 0 && std::size_t(limit) < o.clients + 32) {
    std::fprintf(stderr, "open-file limit %ld is below the %zu this run needs\n", limit, o.clients + 32);
    return 2;
  }
  idle_bench b{o};
  return b.run();
}
