#pragma once

// The supervisor's restart policy as pure values, so it can be tested without actors.

#include <caf/timespan.hpp>

#include <chrono>
#include <cstddef>
#include <deque>
#include <random>

namespace parley {

/// Exponential backoff with jitter: attempt n waits a random time in [d/2, d] where
/// d = min(max, min_delay * factor^n). Half the delay stays fixed so restarts never bunch at zero;
/// the random half spreads restarts of many children apart.
class backoff {
public:
  backoff(caf::timespan min_delay, caf::timespan max_delay, double factor)
    : min_(min_delay), max_(max_delay), factor_(factor) {
    // nop
  }

  /// The delay before the next restart; each call grows the next one.
  template <class Rng>
  caf::timespan next(Rng& rng) {
    auto ceiling = ceiling_for(attempts_++);
    auto half = ceiling.count() / 2;
    std::uniform_int_distribution<caf::timespan::rep> jitter{0, ceiling.count() - half};
    return caf::timespan{half + jitter(rng)};
  }

  /// The upper bound of the delay for the n-th attempt (0-based).
  caf::timespan ceiling_for(std::size_t attempt) const {
    double d = static_cast<double>(min_.count());
    for (std::size_t i = 0; i < attempt && d < static_cast<double>(max_.count()); ++i)
      d *= factor_;
    auto capped = std::min(d, static_cast<double>(max_.count()));
    return caf::timespan{static_cast<caf::timespan::rep>(capped)};
  }

  /// Starts over after a child has been stable long enough.
  void reset() { attempts_ = 0; }

  std::size_t attempts() const { return attempts_; }

private:
  caf::timespan min_;
  caf::timespan max_;
  double factor_;
  std::size_t attempts_ = 0;
};

/// Restart intensity: at most `max_restarts` restarts within `window`.
class restart_intensity {
public:
  using time_point = std::chrono::steady_clock::time_point;

  restart_intensity(std::size_t max_restarts, caf::timespan window)
    : max_(max_restarts), window_(window) {
    // nop
  }

  /// Records a failure at `now`; false means the limit is exceeded and the child should be given up.
  bool allow_restart(time_point now) {
    while (!recent_.empty() && now - recent_.front() > window_)
      recent_.pop_front();
    if (recent_.size() >= max_)
      return false;
    recent_.push_back(now);
    return true;
  }

  /// Restarts counted in the current window.
  std::size_t recent() const { return recent_.size(); }

private:
  std::size_t max_;
  caf::timespan window_;
  std::deque<time_point> recent_;
};

} // namespace parley
