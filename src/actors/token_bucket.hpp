#pragma once

#include <algorithm>
#include <chrono>

namespace parley {

/// A token bucket: `rate` tokens per second refill up to `burst`; each frame takes one.
/// Time is passed in, so actors can use their (possibly virtual) clock and tests stay exact.
class token_bucket {
public:
  using clock = std::chrono::steady_clock;

  token_bucket(double rate_per_second, double burst, clock::time_point now)
    : rate_(rate_per_second), burst_(burst), tokens_(burst), last_(now) {
    // nop
  }

  /// Takes one token if there is one.
  bool try_take(clock::time_point now) {
    refill(now);
    if (tokens_ < 1.0)
      return false;
    tokens_ -= 1.0;
    return true;
  }

  /// Returns a token taken for something that did not happen after all.
  void give_back() { tokens_ = std::min(burst_, tokens_ + 1.0); }

private:
  void refill(clock::time_point now) {
    if (now <= last_)
      return;
    std::chrono::duration<double> elapsed = now - last_;
    tokens_ = std::min(burst_, tokens_ + elapsed.count() * rate_);
    last_ = now;
  }

  double rate_;
  double burst_;
  double tokens_;
  clock::time_point last_;
};

} // namespace parley
