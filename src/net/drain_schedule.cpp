#include "net/drain_schedule.hpp"

#include <algorithm>

namespace parley::net {

std::size_t drain_schedule::due(duration elapsed) const noexcept {
  if (over(elapsed))
    return total_;
  if (elapsed <= duration::zero())
    return 0;
  // total * elapsed / period without overflow: elapsed < period here.
  auto fraction = static_cast<long double>(elapsed.count()) / static_cast<long double>(period_.count());
  return std::min(total_, static_cast<std::size_t>(fraction * static_cast<long double>(total_)));
}

drain_schedule::duration drain_schedule::step() const noexcept {
  using namespace std::chrono_literals;
  duration share = total_ > 0 ? period_ / static_cast<duration::rep>(total_) : period_;
  return std::clamp<duration>(share, 5ms, 100ms);
}

std::chrono::milliseconds drain_schedule::reconnect_delay(double random01) const noexcept {
  auto period_ms = std::chrono::duration_cast<std::chrono::milliseconds>(period_).count();
  auto r = std::clamp(random01, 0.0, 1.0);
  return std::chrono::milliseconds{static_cast<int64_t>(r * static_cast<double>(period_ms))};
}

std::string drain_close_reason(std::chrono::milliseconds reconnect_delay) {
  return "server draining; reconnect_after_ms=" + std::to_string(reconnect_delay.count());
}

} // namespace parley::net
