#include "net/refusal_log.hpp"

#include <spdlog/spdlog.h>

namespace parley::net {

refusal_log::refusal_log(std::string what, clock::duration interval, now_function now,
                         metrics::family<metrics::counter>* by_reason)
  : what_(std::move(what)),
    interval_(interval),
    now_(std::move(now)),
    by_reason_(by_reason),
    period_start_(now_()) {
  // nop
}

void refusal_log::count(std::string_view reason) {
  if (by_reason_)
    by_reason_->with({std::string{reason}}).inc();
  std::optional<std::string> line;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    auto it = counts_.find(reason);
    if (it == counts_.end())
      counts_.emplace(std::string{reason}, 1);
    else
      ++it->second;
    auto now = now_();
    if (now - period_start_ >= interval_)
      line = summarize(now);
  }
  if (line)
    spdlog::warn("{}", *line);
}

void refusal_log::report() {
  if (auto line = take_summary())
    spdlog::warn("{}", *line);
}

std::optional<std::string> refusal_log::take_summary() {
  std::lock_guard<std::mutex> guard{mtx_};
  auto now = now_();
  if (now - period_start_ < interval_)
    return std::nullopt;
  return summarize(now);
}

std::optional<std::string> refusal_log::take_summary_now() {
  std::lock_guard<std::mutex> guard{mtx_};
  return summarize(now_());
}

std::optional<std::string> refusal_log::summarize(clock::time_point now) {
  // The period reported is the time since the last summary, which may be longer than the
  // interval after a quiet spell.
  auto seconds = std::chrono::duration_cast<std::chrono::seconds>(now - period_start_).count();
  period_start_ = now;
  if (counts_.empty())
    return std::nullopt;
  std::size_t total = 0;
  std::string details;
  for (const auto& [reason, n] : counts_) {
    total += n;
    if (!details.empty())
      details += ", ";
    details += reason + " " + std::to_string(n);
  }
  counts_.clear();
  return "refused " + std::to_string(total) + " " + what_ + " in the last " +
         std::to_string(seconds) + " s: " + details;
}

} // namespace parley::net
