// fanout_bench: how fast does Parley deliver one room's messages to all of its members?
//
// Connects --members WebSocket clients (ws://host:port/ws?name=m<i>), joins them all to --room,
// waits until every join is answered and the join-time presence traffic has died down, then lets
// the first --senders members send --messages messages in total. Each sender keeps at most
// --window of its own messages unacknowledged; its own echo (the room broadcasts to the sender
// too) is the acknowledgement, so the load follows the server instead of flooding its queues.
// Every member counts the `message` frames it receives; each text carries "<run>.<sender>.<seq>."
// so a receipt can be matched with the local send time to give a per-delivery latency.
//
// --sweep replaces the window with an open-loop rate sweep: the senders send at a fixed total rate
// (messages on a schedule, round-robin over the senders, whether or not earlier ones came back) for
// --step-seconds, starting at --rate messages/s and growing by --growth per step, until a step's
// p99 exceeds --p99-ms or a delivery is missing (or --max-steps). If the very first step fails,
// it steps down instead (/ --growth, not below --min-rate) until one passes. Latency is measured from each
// message's scheduled send time, so a server (or client) that falls behind cannot hide it
// (no coordinated omission). The answer is the highest passing step, in deliveries/s
// (messages/s x members).
//
// --ports spreads the members over several servers (the nodes of a cluster sharing the room):
// member i connects to the i-th port modulo their number, so sender m0 is on the first. --pid may
// then list every server's pid; the CPU reported is theirs together.
//
// Start the server without its per-connection rate limit and with room for every member:
//   parley --connection.rate_per_second=1000000 --connection.rate_burst=1000000 --rooms.capacity=N \
//          --limits.max_connections_per_address=0 --limits.handshakes_per_second=0
// Exit code: 0 when every expected delivery arrived before --timeout (sweep: when at least one
// step passed), 1 otherwise.

#include "latency_histogram.hpp"
#include "ws_client_pool.hpp"

#include <algorithm>
#include <array>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace {

using bench::now_ns;

struct fanout_options {
  std::string host = "127.0.0.1";
  uint16_t port = 8080;
  std::vector<uint16_t> ports; // --ports: member i connects to ports[i % n] (several servers)
  std::size_t members = 1000;
  std::size_t senders = 1;
  std::size_t messages = 2000; // in total, split evenly over the senders
  std::size_t size = 100;      // bytes of text per message
  std::size_t window = 32;     // unacknowledged messages per sender
  std::string room = "bench";
  double timeout_s = 60;
  double settle_ms = 500; // quiet time after the joins before sending starts
  std::size_t connect_window = 64;
  std::vector<long> pids; // server pid(s): when given, their CPU time during the sending phase is reported
  // --sweep: open-loop rate steps instead of the window
  bool sweep = false;
  double rate = 10;           // messages/s over all senders in the first step
  double growth = 1.25;       // rate factor from one step to the next
  double step_seconds = 3;
  double p99_limit_ms = 50;   // a step passes with p99 at most this and nothing lost
  double step_drain_s = 2;    // how long a step's last deliveries may take after its sending ended
  std::size_t max_steps = 25; // 10 msg/s x 1.25^24 = 2,100 msg/s
  double min_rate = 1;        // stepping down (the first step failed) stops below this
  unsigned source_addresses = 1;
};

/// "8081,8082" -> {8081, 8082}; anything that is not a positive number is an error.
std::vector<long> parse_number_list(const std::string& flag, const std::string& text) {
  std::vector<long> out;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    std::size_t comma = text.find(',', pos);
    if (comma == std::string::npos) comma = text.size();
    std::string item = text.substr(pos, comma - pos);
    char* end = nullptr;
    long v = std::strtol(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || v <= 0) {
      std::fprintf(stderr, "--%s wants a comma-separated list of positive numbers: %s\n", flag.c_str(),
                   text.c_str());
      std::exit(2);
    }
    out.push_back(v);
    pos = comma + 1;
  }
  return out;
}

/// CPU seconds used so far by all the given server processes together; -1 if none was given or
/// one cannot be read.
double servers_cpu_seconds(const std::vector<long>& pids) {
  if (pids.empty()) return -1;
  double sum = 0;
  for (long pid : pids) {
    double s = bench::read_cpu_seconds(pid);
    if (s < 0) return -1;
    sum += s;
  }
  return sum;
}

fanout_options parse_options(int argc, char** argv) {
  bench::arg_map args(argc, argv);
  if (args.has("help")) {
    std::puts("fanout_bench --host 127.0.0.1 --port N | --ports N1,N2,... --members 1000 --senders 1 --messages 2000\n"
              "             --size 100 --room bench --window 32 --timeout 60 --settle-ms 500 [--pid SERVER_PID[,PID2...]]\n"
              "             [--sweep --rate 10 --growth 1.25 --step-seconds 3 --p99-ms 50 --step-drain 2\n"
              "              --max-steps 25 --min-rate 1] [--source-addresses 1]");
    std::exit(0);
  }
  fanout_options o;
  o.host = args.str("host", o.host);
  o.port = static_cast<uint16_t>(args.num("port", o.port));
  o.members = static_cast<std::size_t>(args.num("members", long(o.members)));
  o.senders = static_cast<std::size_t>(args.num("senders", long(o.senders)));
  o.messages = static_cast<std::size_t>(args.num("messages", long(o.messages)));
  o.size = static_cast<std::size_t>(args.num("size", long(o.size)));
  o.window = static_cast<std::size_t>(std::max(1L, args.num("window", long(o.window))));
  o.room = args.str("room", o.room);
  o.timeout_s = args.real("timeout", o.timeout_s);
  o.settle_ms = args.real("settle-ms", o.settle_ms);
  o.connect_window = static_cast<std::size_t>(args.num("connect-window", long(o.connect_window)));
  if (args.has("pid")) o.pids = parse_number_list("pid", args.str("pid", ""));
  if (args.has("ports")) {
    for (long p : parse_number_list("ports", args.str("ports", ""))) {
      if (p > 65535) {
        std::fprintf(stderr, "--ports: %ld is not a port\n", p);
        std::exit(2);
      }
      o.ports.push_back(static_cast<uint16_t>(p));
    }
    o.port = o.ports.front();
  }
  o.sweep = args.has("sweep");
  o.rate = std::max(0.1, args.real("rate", o.rate));
  o.growth = std::max(1.01, args.real("growth", o.growth));
  o.step_seconds = std::max(0.1, args.real("step-seconds", o.step_seconds));
  o.p99_limit_ms = args.real("p99-ms", o.p99_limit_ms);
  o.step_drain_s = args.real("step-drain", o.step_drain_s);
  o.max_steps = static_cast<std::size_t>(std::max(1L, args.num("max-steps", long(o.max_steps))));
  o.min_rate = std::max(0.1, args.real("min-rate", o.min_rate));
  o.source_addresses = static_cast<unsigned>(args.num("source-addresses", o.source_addresses));
  if (o.members == 0 || o.senders == 0 || o.senders > o.members) {
    std::fprintf(stderr, "need 1 <= senders <= members\n");
    std::exit(2);
  }
  return o;
}

// -- the benchmark ---------------------------------------------------------------------------------

enum class phase { joining, settling, sending, sweeping, done };

/// One step of the rate sweep.
struct sweep_step {
  double rate = 0;            // messages/s over all senders
  std::size_t first_seq = 0;  // its messages are first_seq .. first_seq + messages - 1
  std::size_t messages = 0;
  int64_t start = 0;          // the first message's scheduled time
  int64_t sending_end = 0;
  uint64_t received = 0;
  std::size_t closes_at_start = 0;
  bench::latency_histogram latency;
  double server_cpu_start = -1;
  double server_cpu = -1;
};

/// One sender's bookkeeping: what it may still send and when each message left.
struct sender_state {
  std::size_t quota = 0;
  std::size_t next_seq = 0;
  std::size_t in_flight = 0;
  std::vector<int64_t> sent_at; // by sequence number
};

class fanout_bench : public bench::pool_events {
public:
  explicit fanout_bench(const fanout_options& o)
    : opt_(o), pool_(o.host, o.port, o.members, *this, o.connect_window),
      received_by_(o.members, 0), senders_(o.senders) {
    run_id_ = static_cast<uint32_t>(now_ns() & 0xFFFFFF);
    for (std::size_t i = 0; i < o.members; ++i) {
      pool_.set_path(i, "/ws?name=m" + std::to_string(i));
      // Spread over the servers round-robin: with two, the even members (and sender m0) on the first.
      if (!o.ports.empty()) pool_.set_port(i, o.ports[i % o.ports.size()]);
    }
    for (std::size_t s = 0; s < o.senders; ++s) {
      senders_[s].quota = o.messages / o.senders + (s < o.messages % o.senders ? 1 : 0);
      senders_[s].sent_at.assign(senders_[s].quota, 0);
    }
    join_frame_ = R"({"type":"join","room":")" + o.room + R"(","ref":"bench"})";
  }

  int run() {
    t_begin_ = now_ns();
    deadline_ = t_begin_ + int64_t(opt_.timeout_s * 1e9);
    pool_.spread_source_addresses(opt_.source_addresses);
    pool_.start_connecting();
    // The sweep bounds itself (steps x (step + drain)); --timeout covers the joins before it.
    while (phase_ != phase::done && (phase_ == phase::sweeping || now_ns() < deadline_)) {
      pool_.poll(phase_ == phase::sweeping ? sweep_poll_ms() : 5);
      advance();
    }
    if (opt_.sweep) {
      bool passed = report_sweep();
      shut_down();
      return passed ? 0 : 1;
    }
    bool complete = phase_ == phase::done;
    report(complete);
    shut_down();
    return complete ? 0 : 1;
  }

  // -- pool_events ----------------------------------------------------------------------------------

  void on_open(std::size_t) override {} // wait for `welcome` before joining

  void on_text(std::size_t i, const char* data, std::size_t n, int64_t now) override {
    last_frame_at_ = now;
    std::string_view f{data, n};
    if (starts_with(f, R"({"type":"message")")) return on_message(i, f, now);
    if (starts_with(f, R"({"type":"welcome")")) return pool_.send_text(i, join_frame_);
    if (starts_with(f, R"({"type":"joined")")) return on_joined(i);
    if (starts_with(f, R"({"type":"error")")) return on_error(i, f);
    ++other_frames_; // presence, typing: expected noise while members join
  }

  void on_closed(std::size_t i, uint16_t code, const std::string& why) override {
    if (phase_ == phase::done) return;
    if (++closed_ <= 5)
      std::fprintf(stderr, "client m%zu ended early (close code %u): %s\n", i, unsigned(code),
                   why.c_str());
  }

private:
  static bool starts_with(std::string_view s, std::string_view p) {
    return s.size() >= p.size() && std::memcmp(s.data(), p.data(), p.size()) == 0;
  }

  void on_joined(std::size_t i) {
    if (joined_flag_.empty()) joined_flag_.assign(opt_.members, false);
    if (joined_flag_[i]) return;
    joined_flag_[i] = true;
    ++joined_;
  }

  void on_error(std::size_t i, std::string_view f) {
    if (++errors_ <= 5)
      std::fprintf(stderr, "m%zu got %.*s\n", i, int(std::min<std::size_t>(f.size(), 200)), f.data());
  }

  /// Decodes "<run>.<sender>.<seq>." at the start of the text; false for foreign messages.
  bool parse_tag(std::string_view f, std::size_t& sender, std::size_t& seq) const {
    static constexpr std::string_view key = R"("text":")";
    auto pos = f.find(key);
    if (pos == std::string_view::npos) return false;
    const char* p = f.data() + pos + key.size();
    const char* end = f.data() + f.size();
    uint64_t fields[3];
    for (auto& field : fields) {
      uint64_t v = 0;
      const char* start = p;
      while (p < end && *p >= '0' && *p <= '9') v = v * 10 + uint64_t(*p++ - '0');
      if (p == start || p == end || *p != '.') return false;
      ++p;
      field = v;
    }
    if (fields[0] != run_id_ || fields[1] >= senders_.size()) return false;
    sender = fields[1];
    seq = fields[2];
    if (opt_.sweep) return seq < sweep_sched_.size();
    return seq < senders_[sender].quota;
  }

  void on_message(std::size_t i, std::string_view f, int64_t now) {
    std::size_t s = 0, seq = 0;
    if (!parse_tag(f, s, seq)) {
      ++foreign_messages_; // history replayed in joins is nested, but stray broadcasts count here
      return;
    }
    if (opt_.sweep) return on_sweep_message(i, seq, now);
    auto& snd = senders_[s];
    latency_.record(now - snd.sent_at[seq]);
    ++received_;
    ++received_by_[i];
    last_delivery_at_ = now;
    if (i == s) { // the sender's own echo acknowledges the message
      --snd.in_flight;
      pump(s);
    }
  }

  std::string make_text(std::size_t sender, std::size_t seq) const {
    std::string t = std::to_string(run_id_) + "." + std::to_string(sender) + "." +
                    std::to_string(seq) + ".";
    if (t.size() < opt_.size) t.append(opt_.size - t.size(), 'x');
    return t;
  }

  void pump(std::size_t s) {
    auto& snd = senders_[s];
    while (snd.in_flight < opt_.window && snd.next_seq < snd.quota) {
      std::size_t seq = snd.next_seq++;
      std::string frame = R"({"type":"send","room":")" + opt_.room + R"(","text":")" +
                          make_text(s, seq) + R"("})";
      snd.sent_at[seq] = now_ns();
      if (first_send_at_ == 0) first_send_at_ = snd.sent_at[seq];
      ++snd.in_flight;
      ++sent_;
      pool_.send_text(s, frame);
    }
  }

  /// Moves from phase to phase once the previous one is complete.
  void advance() {
    int64_t now = now_ns();
    switch (phase_) {
      case phase::joining:
        if (joined_ == opt_.members) {
          t_joined_ = now;
          phase_ = phase::settling;
          std::fprintf(stderr, "%zu members joined in %.2f s; settling\n", joined_,
                       double(t_joined_ - t_begin_) / 1e9);
        }
        return;
      case phase::settling:
        // Every join broadcast `presence` to the members already in: wait for that to drain so
        // it does not compete with the messages being measured (at most 10 s).
        if (now - last_frame_at_ >= int64_t(opt_.settle_ms * 1e6) || now - t_joined_ > 10'000'000'000) {
          mark_cpu(cpu_at_start_);
          if (opt_.sweep) {
            phase_ = phase::sweeping;
            next_rate_ = opt_.rate;
            start_step(now_ns());
            return;
          }
          phase_ = phase::sending;
          for (std::size_t s = 0; s < senders_.size(); ++s) pump(s);
        }
        return;
      case phase::sending:
        if (received_ == expected()) {
          phase_ = phase::done;
          mark_cpu(cpu_at_end_);
        }
        return;
      case phase::sweeping:
        return advance_sweep(now);
      case phase::done:
        return;
    }
  }

  // -- the rate sweep -------------------------------------------------------------------------------

  void start_step(int64_t now) {
    sweep_step step;
    step.rate = next_rate_;
    step.first_seq = sweep_sched_.size();
    step.messages = std::max<std::size_t>(1, std::size_t(std::llround(step.rate * opt_.step_seconds)));
    step.start = now;
    step.sending_end = now + int64_t(double(step.messages) / step.rate * 1e9);
    step.closes_at_start = closed_;
    step.server_cpu_start = servers_cpu_seconds(opt_.pids);
    for (std::size_t k = 0; k < step.messages; ++k)
      sweep_sched_.push_back(now + int64_t(double(k) / step.rate * 1e9));
    sweep_step_of_.resize(sweep_sched_.size(), steps_.size());
    next_sweep_seq_ = step.first_seq;
    steps_.push_back(std::move(step));
  }

  /// Sleeps no longer than until the next scheduled send.
  int sweep_poll_ms() const {
    if (next_sweep_seq_ >= sweep_sched_.size()) return 5;
    int64_t wait = sweep_sched_[next_sweep_seq_] - now_ns();
    return wait <= 0 ? 0 : int(std::min<int64_t>(5, wait / 1'000'000));
  }

  void advance_sweep(int64_t now) {
    auto& step = steps_.back();
    // Open loop: every message whose time has come goes now, however late we are.
    while (next_sweep_seq_ < sweep_sched_.size() && sweep_sched_[next_sweep_seq_] <= now) {
      std::size_t seq = next_sweep_seq_++;
      std::size_t s = seq % senders_.size();
      pool_.send_text(s, R"({"type":"send","room":")" + opt_.room + R"(","text":")" + make_text(s, seq) + R"("})");
      ++sent_;
    }
    if (next_sweep_seq_ < sweep_sched_.size()) return;
    uint64_t expected = uint64_t(step.messages) * opt_.members;
    bool all_in = step.received == expected;
    if (!all_in && now < step.sending_end + int64_t(opt_.step_drain_s * 1e9)) return;
    // The step is over: judge it.
    if (step.server_cpu_start >= 0) step.server_cpu = servers_cpu_seconds(opt_.pids) - step.server_cpu_start;
    bool passed = all_in && closed_ == step.closes_at_start &&
                  double(step.latency.quantile(0.99)) <= opt_.p99_limit_ms * 1e6;
    print_step(steps_.size() - 1, passed);
    if (passed) {
      last_passed_ = steps_.size();
      ++passed_steps_;
    }
    bool go_on = false;
    if (!stepping_down_ && !passed && passed_steps_ == 0) {
      // Even the start rate fails: look below it rather than report nothing.
      stepping_down_ = true;
      std::printf("  (the first step failed: stepping down)\n");
    }
    if (stepping_down_) {
      next_rate_ = step.rate / opt_.growth;
      go_on = !passed && next_rate_ >= opt_.min_rate;
    } else {
      next_rate_ = step.rate * opt_.growth;
      go_on = passed;
    }
    if (!go_on || steps_.size() >= opt_.max_steps) {
      phase_ = phase::done;
      mark_cpu(cpu_at_end_);
      return;
    }
    start_step(now);
  }

  void on_sweep_message(std::size_t i, std::size_t seq, int64_t now) {
    auto& step = steps_[sweep_step_of_[seq]];
    ++step.received;
    ++received_;
    ++received_by_[i];
    step.latency.record(now - sweep_sched_[seq]);
    latency_.record(now - sweep_sched_[seq]);
    last_delivery_at_ = now;
  }

  void print_step(std::size_t k, bool passed) const {
    const auto& step = steps_[k];
    uint64_t expected = uint64_t(step.messages) * opt_.members;
    double seconds = double(step.sending_end - step.start) / 1e9;
    std::printf("  step %2zu  %8.1f msg/s = %9.0f deliveries/s offered  p50 %7.2f ms  p99 %8.2f ms  max %8.2f ms"
                "  lost %" PRIu64 "%s  server CPU %s  %s\n",
                k + 1, step.rate, step.rate * double(opt_.members), double(step.latency.quantile(0.5)) / 1e6,
                double(step.latency.quantile(0.99)) / 1e6, double(step.latency.max()) / 1e6,
                expected - step.received, closed_ > step.closes_at_start ? " (connections closed)" : "",
                step.server_cpu >= 0 ? (std::to_string(int(100 * step.server_cpu / seconds)) + "%").c_str() : "-",
                passed ? "pass" : "FAIL");
    std::fflush(stdout);
  }

  bool report_sweep() {
    std::printf("fanout sweep: servers=%zu members=%zu senders=%zu size=%zu room=%s; %zu steps of %.1f s from %.1f msg/s,"
                " x%.2f, pass = p99 <= %.0f ms and nothing lost\n",
                server_count(), opt_.members, opt_.senders, opt_.size, opt_.room.c_str(), steps_.size(), opt_.step_seconds,
                opt_.rate, opt_.growth, opt_.p99_limit_ms);
    std::printf("  connected+joined   %zu/%zu in %.2f s\n", joined_, opt_.members,
                double((t_joined_ ? t_joined_ : now_ns()) - t_begin_) / 1e9);
    double best_rate = 0, best_p99_ms = 0;
    if (last_passed_ > 0) {
      const auto& best = steps_[last_passed_ - 1];
      best_rate = best.rate;
      best_p99_ms = double(best.latency.quantile(0.99)) / 1e6;
      std::printf("  max deliveries/s at p99 <= %.0f ms, nothing lost: %.0f (%.1f messages/s, p99 %.2f ms, step %zu)%s\n",
                  opt_.p99_limit_ms, best_rate * double(opt_.members), best_rate, best_p99_ms, last_passed_,
                  !stepping_down_ && last_passed_ == opt_.max_steps ? "  (every step passed: raise --max-steps)" : "");
    } else {
      std::printf("  !!! NO STEP PASSED: %s !!!\n",
                  steps_.empty() ? "the members never all joined" : "not even at --min-rate");
    }
    std::printf("  errors %" PRIu64 ", early closes %zu, other frames %" PRIu64 "\n", errors_, closed_, other_frames_);
    std::printf("RESULT fanout_sweep servers=%zu members=%zu senders=%zu size=%zu start_rate=%.1f steps=%zu passed_steps=%zu"
                " stepped_down=%d max_msgs_per_s=%.1f max_deliveries_per_s=%.0f p99_ms_at_max=%.2f\n",
                server_count(), opt_.members, opt_.senders, opt_.size, opt_.rate, steps_.size(), passed_steps_, stepping_down_ ? 1 : 0,
                best_rate, best_rate * double(opt_.members), best_p99_ms);
    std::fflush(stdout);
    return last_passed_ > 0;
  }

  /// CPU seconds of the server (if --pid) and of this process, to turn throughput into cost.
  struct cpu_mark {
    double server = -1;
    double client = 0;
  };

  void mark_cpu(cpu_mark& m) const {
    m.server = servers_cpu_seconds(opt_.pids);
    m.client = bench::own_cpu_seconds();
  }

  std::size_t server_count() const { return opt_.ports.empty() ? 1 : opt_.ports.size(); }

  uint64_t expected() const { return uint64_t(opt_.messages) * opt_.members; }

  void report(bool complete) {
    double elapsed = last_delivery_at_ > first_send_at_ && first_send_at_ != 0
                       ? double(last_delivery_at_ - first_send_at_) / 1e9
                       : 0.0;
    std::size_t starved = std::count(received_by_.begin(), received_by_.end(), uint64_t(0));
    auto us = [&](double q) { return double(latency_.quantile(q)) / 1e3; };
    std::printf("fanout: servers=%zu members=%zu senders=%zu window=%zu size=%zu room=%s\n", server_count(),
                opt_.members, opt_.senders, opt_.window, opt_.size, opt_.room.c_str());
    std::printf("  connected+joined   %zu/%zu in %.2f s\n", joined_, opt_.members,
                double((t_joined_ ? t_joined_ : now_ns()) - t_begin_) / 1e9);
    std::printf("  messages sent      %" PRIu64 " of %zu\n", sent_, opt_.messages);
    std::printf("  deliveries         %" PRIu64 " received / %" PRIu64 " expected%s\n", received_,
                expected(), complete ? "" : "  (INCOMPLETE: timeout)");
    std::printf("  elapsed            %.3f s (first send -> last delivery)\n", elapsed);
    std::printf("  throughput         %.0f deliveries/s, %.0f messages/s\n",
                elapsed > 0 ? double(received_) / elapsed : 0.0,
                elapsed > 0 ? double(received_) / double(opt_.members) / elapsed : 0.0);
    std::printf("  latency (send->receipt) p50 %.0f us, p99 %.0f us, p99.9 %.0f us, max %.0f us\n",
                us(0.50), us(0.99), us(0.999), double(latency_.max()) / 1e3);
    std::printf("  errors %" PRIu64 ", early closes %zu, members with no delivery %zu, other frames %" PRIu64
                ", client frames in %" PRIu64 " (%.1f MB)\n",
                errors_, closed_, starved, other_frames_, pool_.stats().frames_in,
                double(pool_.stats().bytes_in) / 1e6);
    bool sending_started = first_send_at_ != 0;
    if (!complete) mark_cpu(cpu_at_end_);
    double client_cpu = cpu_at_end_.client - cpu_at_start_.client;
    double server_cpu = cpu_at_start_.server >= 0 && cpu_at_end_.server >= 0
                          ? cpu_at_end_.server - cpu_at_start_.server
                          : -1;
    double per_delivery = received_ ? 1e6 / double(received_) : 0.0;
    if (sending_started && server_cpu >= 0)
      std::printf("  server CPU         %.2f s while sending = %.2f us per delivery\n", server_cpu,
                  server_cpu * per_delivery);
    if (sending_started)
      std::printf("  bench client CPU   %.2f s while sending = %.2f us per delivery\n", client_cpu,
                client_cpu * per_delivery);
    // One machine-readable line for bench/run.sh.
    std::printf("RESULT fanout servers=%zu members=%zu senders=%zu window=%zu size=%zu sent=%" PRIu64
                " expected=%" PRIu64 " received=%" PRIu64
                " elapsed_s=%.3f deliveries_per_s=%.0f p50_us=%.0f p99_us=%.0f"
                " server_cpu_us_per_delivery=%.2f client_cpu_us_per_delivery=%.2f complete=%d\n",
                server_count(), opt_.members, opt_.senders, opt_.window, opt_.size, sent_, expected(), received_,
                elapsed, elapsed > 0 ? double(received_) / elapsed : 0.0, us(0.50), us(0.99),
                server_cpu >= 0 ? server_cpu * per_delivery : -1.0, client_cpu * per_delivery,
                complete ? 1 : 0);
    std::fflush(stdout);
  }

  /// Closes politely (so the server logs no errors), but never waits more than a second.
  void shut_down() {
    phase_ = phase::done;
    for (std::size_t i = 0; i < pool_.size(); ++i) pool_.send_close(i, 1000);
    int64_t until = now_ns() + 1'000'000'000;
    while (pool_.live_count() > 0 && now_ns() < until) pool_.poll(10);
    pool_.abort_all();
  }

  fanout_options opt_;
  bench::client_pool pool_;
  phase phase_ = phase::joining;
  uint32_t run_id_ = 0;
  std::string join_frame_;
  std::vector<bool> joined_flag_;
  std::vector<uint64_t> received_by_;
  std::vector<sender_state> senders_;
  bench::latency_histogram latency_;
  std::size_t joined_ = 0;
  std::size_t closed_ = 0;
  uint64_t sent_ = 0;
  uint64_t received_ = 0;
  uint64_t errors_ = 0;
  uint64_t other_frames_ = 0;
  uint64_t foreign_messages_ = 0;
  int64_t t_begin_ = 0;
  int64_t t_joined_ = 0;
  int64_t deadline_ = 0;
  int64_t first_send_at_ = 0;
  int64_t last_delivery_at_ = 0;
  int64_t last_frame_at_ = 0;
  cpu_mark cpu_at_start_;
  cpu_mark cpu_at_end_;
  // the sweep
  std::vector<sweep_step> steps_;
  std::vector<int64_t> sweep_sched_;      // by sequence number: the scheduled send time
  std::vector<uint32_t> sweep_step_of_;   // by sequence number: the step it belongs to
  std::size_t next_sweep_seq_ = 0;
  std::size_t last_passed_ = 0;           // the step (1-based) that set the best passing rate
  std::size_t passed_steps_ = 0;
  double next_rate_ = 0;
  bool stepping_down_ = false;            // the first step failed: rates go down until one passes
};

} // namespace

int main(int argc, char** argv) {
  fanout_bench b{parse_options(argc, argv)};
  return b.run();
}
