#pragma once

// A room's message rate for the admin API: messages per second over about the last minute, kept in
// two counters (this window and the one before) instead of a timestamp per message. The rate
// weighs the previous window by how much of it still lies within the last minute, the way sliding
// window rate limiters estimate a count. Time is an argument, so tests need no clock.

#include <chrono>
#include <cstdint>

namespace parley {

class message_rate {
public:
  using clock = std::chrono::steady_clock;
  using duration = clock::duration;

  explicit message_rate(duration window = std::chrono::minutes(1)) : window_(window) {
    // nop
  }

  /// Counts one message at `now`.
  void record(clock::time_point now) noexcept {
    advance(now);
    ++current_;
  }

  /// Messages per second over about the last window before `now`.
  double per_second(clock::time_point now) noexcept {
    advance(now);
    auto into = std::chrono::duration<double>(now - started_) / std::chrono::duration<double>(window_);
    double estimate = static_cast<double>(previous_) * (1.0 - into) + static_cast<double>(current_);
    return estimate / std::chrono::duration<double>(window_).count();
  }

private:
  /// Moves the windows along: one window later the current one becomes the previous one; two or
  /// more later both are empty.
  void advance(clock::time_point now) noexcept {
    if (!started_set_) {
      started_ = now;
      started_set_ = true;
      return;
    }
    if (now - started_ < window_)
      return;
    auto windows = (now - started_) / window_;
    previous_ = windows == 1 ? current_ : 0;
    current_ = 0;
    started_ += windows * window_;
  }

  duration window_;
  clock::time_point started_{};
  bool started_set_ = false;
  uint64_t previous_ = 0;
  uint64_t current_ = 0;
};

} // namespace parley
