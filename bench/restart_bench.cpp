// restart_bench: what a restart under load looks like. --clients N connect to a server this
// benchmark starts itself; then it sends the server SIGTERM, starts a new server on the same port
// as soon as the old one has exited, and lets every client come back the way parley-client.js
// does: after the reconnect delay a draining server hints in its 1001 close reason
// ("reconnect_after_ms=<n>"), or else with full-jitter backoff (0.5 s doubling to 20 s), also
// after every failed attempt (connection refused while no server listens, 503 while draining).
//
// It reports when the closes came, when the old server exited and the new one listened, how many
// connection attempts failed, and the reconnects per second: the peak is what a restart costs
// the node (or, behind a load balancer, its neighbours). Run it with --drain-period 0 to see the
// storm a drain avoids.
//
//   restart_bench --server-bin build-bench/parley --config config.ini --port 18090 --clients 10000
//                 --drain-period 10 [--timeout 120] [--source-addresses 4]
// Exit code: 0 when every client was back before --timeout.

#include "ws_client_pool.hpp"

#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <map>
#include <queue>
#include <regex>
#include <string>
#include <vector>

namespace {

using bench::now_ns;

constexpr int64_t ms_ns = 1'000'000;

struct restart_options {
  std::string server_bin = "build-bench/parley";
  std::string config = "config.ini";
  uint16_t port = 18090;
  std::size_t clients = 10000;
  double drain_period_s = 10;
  double timeout_s = 120;
  unsigned source_addresses = 4;
  std::string db = "/tmp/parley-restart-bench.db";
};

/// Starts the server; returns its pid.
pid_t start_server(const restart_options& o) {
  std::vector<std::string> args = {
    o.server_bin,
    "--config=" + o.config,
    "--server.address=127.0.0.1",
    "--server.port=" + std::to_string(o.port),
    "--admin.port=0",
    "--store.path=" + o.db,
    "--server.drain_period=" + std::to_string(static_cast<long>(o.drain_period_s * 1000)) + "ms",
    // Every client connects from 127.0.0.x: lift the per-address limits.
    "--limits.max_connections_per_address=0",
    "--limits.handshakes_per_second=0",
  };
  std::fflush(stdout);  // the child must not inherit (and later write) our buffered output
  pid_t pid = fork();
  if (pid == 0) {
    std::vector<char*> argv;
    for (auto& a : args)
      argv.push_back(a.data());
    argv.push_back(nullptr);
    freopen("/tmp/parley-restart-bench.log", "a", stdout);
    freopen("/tmp/parley-restart-bench.log", "a", stderr);
    execv(argv[0], argv.data());
    std::perror("execv");
    _exit(127);
  }
  return pid;
}

/// The hinted reconnect delay in a 1001 close reason, or -1.
int64_t hinted_delay_ms(uint16_t code, const std::string& reason) {
  static const std::regex hint{"reconnect_after_ms=(\\d+)"};
  std::smatch m;
  if (code != 1001 || !std::regex_search(reason, m, hint))
    return -1;
  return std::min<int64_t>(std::stoll(m[1]), 120'000);
}

class restart_run : public bench::pool_events {
public:
  explicit restart_run(const restart_options& o) : o_(o), attempts_(o.clients, 0), back_(o.clients, false) {}

  void set_pool(bench::client_pool* pool) { pool_ = pool; }

  void on_open(std::size_t i) override {
    ++open_now_;
    attempts_[i] = 0;
    if (!restarting_)
      return;
    if (!back_[i]) {
      back_[i] = true;
      ++back_count_;
      bucket(back_per_second_);
    }
  }

  void on_text(std::size_t, const char*, std::size_t, int64_t) override {}

  void on_closed(std::size_t i, uint16_t code, const std::string& why) override {
    auto now = now_ns();
    if (code != 0) {
      --open_now_;
      bucket(closes_per_second_);
      first_close_ = first_close_ ? first_close_ : now;
      last_close_ = now;
    } else {
      ++failed_attempts_;
      bucket(failures_per_second_);
    }
    if (!restarting_)
      return;
    int64_t delay_ms = hinted_delay_ms(code, why);
    if (delay_ms >= 0) {
      ++hinted_;
    } else {
      // Full jitter like parley-client.js: uniform in [0, min(20 s, 0.5 s * 2^attempt)).
      double ceiling = std::min(20000.0, 500.0 * std::pow(2.0, attempts_[i]));
      delay_ms = static_cast<int64_t>(ceiling * static_cast<double>(rng_.next() % 1'000'000) / 1e6);
      ++attempts_[i];
    }
    due_.push({now + delay_ms * ms_ns, i});
  }

  /// Starts reconnects that are due.
  void reconnect_due() {
    auto now = now_ns();
    while (!due_.empty() && due_.top().first <= now) {
      auto i = due_.top().second;
      due_.pop();
      if (!pool_->is_live(i))
        pool_->connect_now(i);
    }
  }

  void begin_restart(int64_t t0) {
    restarting_ = true;
    t0_ = t0;
  }

  std::size_t open_now() const { return open_now_; }
  std::size_t back() const { return back_count_; }

  void report(int64_t old_exit, int64_t new_listening, int64_t all_back) const {
    auto at = [&](int64_t t) { return t ? static_cast<double>(t - t0_) / 1e9 : -1.0; };
    std::printf("restart of %zu clients, drain_period %.1f s\n", o_.clients, o_.drain_period_s);
    std::printf("  closes: first %.2f s, last %.2f s after SIGTERM (%" PRIu64 " with a hint)\n",
                at(first_close_), at(last_close_), hinted_);
    std::printf("  old server exited %.2f s, new server listening %.2f s after SIGTERM\n", at(old_exit),
                at(new_listening));
    std::printf("  all back %.2f s after SIGTERM; %zu of %zu back; %" PRIu64 " failed attempts\n", at(all_back),
                back_count_, o_.clients, failed_attempts_);
    auto peak = [](const std::map<int64_t, uint64_t>& m) {
      uint64_t p = 0;
      for (const auto& [s, n] : m)
        p = std::max(p, n);
      return p;
    };
    std::printf("  peak per second: closes %" PRIu64 ", reconnects %" PRIu64 ", failed attempts %" PRIu64 "\n",
                peak(closes_per_second_), peak(back_per_second_), peak(failures_per_second_));
    std::printf("  second  closes  reconnects  failed\n");
    int64_t last = 0;
    for (const auto* m : {&closes_per_second_, &back_per_second_, &failures_per_second_})
      if (!m->empty())
        last = std::max(last, m->rbegin()->first);
    for (int64_t s = 0; s <= last; ++s) {
      auto get = [&](const std::map<int64_t, uint64_t>& m) {
        auto it = m.find(s);
        return it == m.end() ? uint64_t{0} : it->second;
      };
      std::printf("  %6" PRId64 "  %6" PRIu64 "  %10" PRIu64 "  %6" PRIu64 "\n", s, get(closes_per_second_),
                  get(back_per_second_), get(failures_per_second_));
    }
  }

private:
  void bucket(std::map<int64_t, uint64_t>& m) {
    if (!restarting_)
      return;
    ++m[(now_ns() - t0_) / 1'000'000'000];
  }

  const restart_options& o_;
  bench::client_pool* pool_ = nullptr;
  bench::fast_rng rng_{static_cast<uint64_t>(now_ns())};
  std::vector<int> attempts_;
  std::vector<bool> back_;
  std::priority_queue<std::pair<int64_t, std::size_t>, std::vector<std::pair<int64_t, std::size_t>>,
                      std::greater<>>
    due_;
  std::map<int64_t, uint64_t> closes_per_second_, back_per_second_, failures_per_second_;
  std::size_t open_now_ = 0;
  std::size_t back_count_ = 0;
  uint64_t failed_attempts_ = 0;
  uint64_t hinted_ = 0;
  int64_t first_close_ = 0;
  int64_t last_close_ = 0;
  int64_t t0_ = 0;
  bool restarting_ = false;
};

/// True once something accepts TCP connections on the port.
bool port_open(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

} // namespace

int main(int argc, char** argv) {
  bench::arg_map args(argc, argv);
  if (args.has("help")) {
    std::puts("restart_bench --server-bin PATH --config FILE --port 18090 --clients 10000 --drain-period 10\n"
              "              [--timeout 120] [--source-addresses 4] [--db /tmp/parley-restart-bench.db]");
    return 0;
  }
  restart_options o;
  o.server_bin = args.str("server-bin", o.server_bin);
  o.config = args.str("config", o.config);
  o.port = static_cast<uint16_t>(args.num("port", o.port));
  o.clients = static_cast<std::size_t>(std::max(1L, args.num("clients", long(o.clients))));
  o.drain_period_s = args.real("drain-period", o.drain_period_s);
  o.timeout_s = args.real("timeout", o.timeout_s);
  o.source_addresses = static_cast<unsigned>(args.num("source-addresses", o.source_addresses));
  o.db = args.str("db", o.db);
  bench::raise_fd_limit();
  std::remove(o.db.c_str());

  pid_t server = start_server(o);
  auto wait_listening = [&](double seconds) {
    auto until = now_ns() + static_cast<int64_t>(seconds * 1e9);
    while (now_ns() < until) {
      if (port_open(o.port))
        return now_ns();
      usleep(2000);
    }
    return int64_t{0};
  };
  if (!wait_listening(15)) {
    std::fprintf(stderr, "the server did not listen on port %u (see /tmp/parley-restart-bench.log)\n", o.port);
    kill(server, SIGKILL);
    return 1;
  }

  restart_run run{o};
  bench::client_pool pool{"127.0.0.1", o.port, o.clients, run, 128};
  run.set_pool(&pool);
  pool.spread_source_addresses(o.source_addresses);
  for (std::size_t i = 0; i < o.clients; ++i)
    pool.set_path(i, "/ws?name=r" + std::to_string(i));
  pool.start_connecting();
  auto connect_deadline = now_ns() + 120 * 1'000'000'000LL;
  while (run.open_now() < o.clients && now_ns() < connect_deadline)
    pool.poll(10);
  if (run.open_now() < o.clients) {
    std::fprintf(stderr, "only %zu of %zu clients connected\n", run.open_now(), o.clients);
    kill(server, SIGKILL);
    return 1;
  }
  std::printf("%zu clients connected; sending SIGTERM\n", o.clients);

  auto t0 = now_ns();
  run.begin_restart(t0);
  kill(server, SIGTERM);
  int64_t old_exit = 0;
  int64_t new_listening = 0;
  int64_t all_back = 0;
  pid_t next = -1;
  auto deadline = t0 + static_cast<int64_t>(o.timeout_s * 1e9);
  while (now_ns() < deadline) {
    pool.poll(5);
    run.reconnect_due();
    if (!old_exit) {
      int status = 0;
      if (waitpid(server, &status, WNOHANG) == server) {
        old_exit = now_ns();
        next = start_server(o);
      }
    } else if (!new_listening && port_open(o.port)) {
      new_listening = now_ns();
    }
    if (run.back() == o.clients) {
      all_back = now_ns();
      break;
    }
  }
  run.report(old_exit, new_listening, all_back);
  pool.abort_all();
  for (pid_t p : {server, next})
    if (p > 0) {
      kill(p, SIGKILL);
      waitpid(p, nullptr, 0);
    }
  return all_back ? 0 : 1;
}
