// store_bench: how many messages per second does the SQLite store persist, and how much latency
// does waiting for the commit add to a send?
//
// Drives the store actor directly (no network), as the rooms do: --rooms rooms append messages of
// --size bytes, keeping --inflight appends unanswered in total, until --messages are committed.
// An append is answered only after the transaction holding it is committed, so the time from
// sending an append to its answer is exactly what persistence adds before a message can be
// broadcast. The store runs detached (its own thread), as in the server.
//
//   store_bench --messages 200000 --rooms 100 --inflight 256 --size 100 --window-us 0 --sync full
//
// Each run uses a fresh database in a temporary directory (or --dir), removed afterwards.

#include "actors/store.hpp"

#include <caf/actor_registry.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/stateful_actor.hpp>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

namespace {

using namespace parley;
using clock_type = std::chrono::steady_clock;
using done_atom = caf::atom_constant<caf::atom("done")>;

struct bench_options {
  std::size_t messages = 200000;
  std::size_t rooms = 100;
  std::size_t inflight = 256;
  std::size_t size = 100;
  long window_us = 0;
  std::string sync = "full";
  std::string dir;
};

long arg(int argc, char** argv, const char* name, long fallback) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], name) == 0)
      return std::atol(argv[i + 1]);
  return fallback;
}

std::string arg(int argc, char** argv, const char* name, std::string fallback) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], name) == 0)
      return argv[i + 1];
  return fallback;
}

struct load_state {
  static inline const char* name = "store-load";
  store_actor store;
  bench_options opts;
  std::string text;
  caf::actor report_to;
  std::size_t sent = 0;
  std::size_t answered = 0;
  std::size_t failed = 0;
  std::vector<double> latency_us;
  clock_type::time_point start;
};

struct load_result {
  std::size_t answered = 0;
  std::size_t failed = 0;
  double seconds = 0;
  std::vector<double> latency_us;
};

void report(caf::stateful_actor<load_state>* self) {
  auto& st = self->state;
  auto seconds = std::chrono::duration<double>(clock_type::now() - st.start).count();
  self->send(st.report_to, done_atom::value, uint64_t{st.answered}, uint64_t{st.failed}, seconds,
             std::move(st.latency_us));
  self->quit();
}

void send_one(caf::stateful_actor<load_state>* self);

void on_answer(caf::stateful_actor<load_state>* self, clock_type::time_point sent_at, bool ok) {
  auto& st = self->state;
  if (ok) {
    ++st.answered;
    st.latency_us.push_back(std::chrono::duration<double, std::micro>(clock_type::now() - sent_at).count());
  } else {
    ++st.failed;
  }
  if (st.answered + st.failed == st.opts.messages)
    report(self);
  else if (st.sent < st.opts.messages)
    send_one(self);
}

void send_one(caf::stateful_actor<load_state>* self) {
  auto& st = self->state;
  auto n = st.sent++;
  protocol::chat_message msg{"room-" + std::to_string(n % st.opts.rooms), 0, "bench", st.text, 0,
                             "c" + std::to_string(n)};
  auto sent_at = clock_type::now();
  self->request(st.store, caf::infinite, append_atom::value, uint64_t{1}, std::move(msg))
    .then([self, sent_at](const append_result&) { on_answer(self, sent_at, true); },
          [self, sent_at](const caf::error&) { on_answer(self, sent_at, false); });
}

/// Keeps `inflight` appends outstanding until `messages` are answered, then reports to `report_to`.
caf::behavior load(caf::stateful_actor<load_state>* self, store_actor store, bench_options opts,
                   caf::actor report_to) {
  auto& st = self->state;
  st.store = std::move(store);
  st.opts = opts;
  st.text = std::string(opts.size, 'x');
  st.report_to = std::move(report_to);
  st.start = clock_type::now();
  for (std::size_t i = 0; i < std::min(opts.inflight, opts.messages); ++i)
    send_one(self);
  return {
    [](done_atom) {},
  };
}

double percentile(std::vector<double>& v, double p) {
  if (v.empty())
    return 0;
  auto k = static_cast<std::size_t>(p / 100.0 * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

} // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i)
    if (std::strcmp(argv[i], "--help") == 0) {
      std::puts("store_bench --messages 200000 --rooms 100 --inflight 256 --size 100 --window-us 0\n"
                "            --sync full [--dir DIR]");
      return 0;
    }
  bench_options opts;
  opts.messages = static_cast<std::size_t>(arg(argc, argv, "--messages", long(opts.messages)));
  opts.rooms = static_cast<std::size_t>(std::max(1L, arg(argc, argv, "--rooms", long(opts.rooms))));
  opts.inflight = static_cast<std::size_t>(std::max(1L, arg(argc, argv, "--inflight", long(opts.inflight))));
  opts.size = static_cast<std::size_t>(arg(argc, argv, "--size", long(opts.size)));
  opts.window_us = arg(argc, argv, "--window-us", opts.window_us);
  opts.sync = arg(argc, argv, "--sync", opts.sync);
  opts.dir = arg(argc, argv, "--dir", std::string{});

  namespace fs = std::filesystem;
  std::string pattern = (opts.dir.empty() ? fs::temp_directory_path() : fs::path(opts.dir)).string()
                        + "/parley-store-bench-XXXXXX";
  if (!mkdtemp(pattern.data())) {
    std::perror("mkdtemp");
    return 1;
  }
  fs::path dir = pattern;

  store_settings cfg;
  cfg.path = (dir / "bench.db").string();
  cfg.commit_window = std::chrono::microseconds(opts.window_us);
  cfg.synchronous = opts.sync;
  cfg.retain_per_room = 0;

  load_result result;
  {
    caf::actor_system_config sys_cfg;
    sys_cfg.set("logger.verbosity", caf::atom("quiet"));
    caf::actor_system sys{sys_cfg};
    auto store_handle = sys.spawn<caf::detached>(store, cfg);
    caf::scoped_actor self{sys};
    sys.spawn(load, store_handle, opts, caf::actor{self});
    self->receive([&](done_atom, uint64_t answered, uint64_t failed, double seconds,
                      std::vector<double>& latency_us) {
      result.answered = answered;
      result.failed = failed;
      result.seconds = seconds;
      result.latency_us = std::move(latency_us);
    });
    self->send_exit(store_handle, caf::exit_reason::user_shutdown);
    sys.registry().erase(store_atom::value);
  }
  auto db_bytes = fs::exists(cfg.path) ? fs::file_size(cfg.path) : 0;
  std::error_code ignored;
  fs::remove_all(dir, ignored);

  auto& lat = result.latency_us;
  std::printf("store_bench: %zu messages of %zu bytes over %zu rooms, %zu in flight, window %ld us, "
              "synchronous %s\n",
              opts.messages, opts.size, opts.rooms, opts.inflight, opts.window_us,
              opts.sync.c_str());
  std::printf("  committed   %zu (failed %zu) in %.2f s\n", result.answered, result.failed,
              result.seconds);
  std::printf("  throughput  %.0f messages/s persisted\n",
              static_cast<double>(result.answered) / result.seconds);
  std::printf("  added latency (append -> committed answer), us: p50 %.0f  p90 %.0f  p99 %.0f  max %.0f\n",
              percentile(lat, 50), percentile(lat, 90), percentile(lat, 99),
              lat.empty() ? 0.0 : *std::max_element(lat.begin(), lat.end()));
  std::printf("  database    %.1f MiB\n",
              static_cast<double>(db_bytes) / (1024.0 * 1024.0));
  std::printf("RESULT store rooms=%zu inflight=%zu window_us=%ld sync=%s committed=%zu failed=%zu "
              "messages_per_s=%.0f p50_us=%.0f p99_us=%.0f\n",
              opts.rooms, opts.inflight, opts.window_us, opts.sync.c_str(), result.answered,
              result.failed, static_cast<double>(result.answered) / result.seconds,
              percentile(lat, 50), percentile(lat, 99));
  return result.failed == 0 ? 0 : 1;
}
