#pragma once

// Counts refusals by reason and logs them as one summary line per interval instead of one line
// each, so that a flood of bad requests cannot flood the log. Thread-safe; any thread may count.
//
//   refused 1100 handshakes in the last 10 s: rate_limited 900, origin 200

#include "metrics/registry.hpp"

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace parley::net {

class refusal_log {
public:
  using clock = std::chrono::steady_clock;
  using now_function = std::function<clock::time_point()>;

  /// `what` names the refused things in the summary ("handshakes", "frames"). `by_reason`, if
  /// given, counts every refusal as well, under its reason (a metric that outlives the log).
  refusal_log(std::string what, clock::duration interval, now_function now = clock::now,
              metrics::family<metrics::counter>* by_reason = nullptr);

  /// Counts one refusal; logs the summary if the interval has passed since the last one.
  void count(std::string_view reason);

  /// Logs the summary of what was counted, if the interval has passed (a timer calls this, so
  /// the tail of a flood is reported too).
  void report();

  /// The summary line when the interval has passed and something was counted, and starts the
  /// next interval; nullopt otherwise.
  std::optional<std::string> take_summary();

  /// Like take_summary, but regardless of the interval (at shutdown).
  std::optional<std::string> take_summary_now();

private:
  std::optional<std::string> summarize(clock::time_point now);

  const std::string what_;
  const clock::duration interval_;
  const now_function now_;
  metrics::family<metrics::counter>* const by_reason_;
  std::mutex mtx_;
  std::map<std::string, std::size_t, std::less<>> counts_;
  clock::time_point period_start_;
};

} // namespace parley::net
