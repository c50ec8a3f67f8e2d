#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace parley {

/// Users whose grace period runs: a user whose last connection dropped stays present (or online)
/// until `grace` has passed, unless they come back first. Every user gets the same grace, so the
/// order in which periods start is the order in which they end: a FIFO queue replaces a timer per
/// user, and the owner needs one timer, for next_deadline(). Every operation is O(1) amortized.
/// Time is passed in, so actors can use their (possibly virtual) clock and tests stay exact.
class grace_queue {
public:
  using clock = std::chrono::steady_clock;

  explicit grace_queue(clock::duration grace) : grace_(grace) {
    // nop
  }

  /// Starts the user's grace period at `now`, or starts it over if one runs. `now` must not go
  /// backwards between calls (a steady clock).
  void start(const std::string& user, clock::time_point now) {
    auto token = next_token_++;
    running_[user] = token;
    queue_.push_back(entry{user, now + grace_, token});
    drop_stale_head();
  }

  /// Ends the user's grace period early (the user came back); false if none ran.
  bool cancel(const std::string& user) {
    if (running_.erase(user) == 0)
      return false;
    // The queue entry stays behind, stale, and is dropped when it reaches the head.
    drop_stale_head();
    return true;
  }

  /// Removes and returns the users whose grace period ended at or before `now`, in expiry order.
  std::vector<std::string> take_expired(clock::time_point now) {
    std::vector<std::string> expired;
    while (!queue_.empty() && queue_.front().deadline <= now) {
      auto& head = queue_.front();
      auto i = running_.find(head.user);
      if (i != running_.end() && i->second == head.token) {
        running_.erase(i);
        expired.push_back(std::move(head.user));
      }
      queue_.pop_front();
    }
    drop_stale_head();
    return expired;
  }

  /// When the next grace period ends; nullopt if none runs.
  std::optional<clock::time_point> next_deadline() const {
    if (queue_.empty())
      return std::nullopt;
    return queue_.front().deadline;
  }

  /// True while the user's grace period runs.
  bool contains(const std::string& user) const { return running_.count(user) > 0; }

  /// How many grace periods run.
  std::size_t size() const { return running_.size(); }

  bool empty() const { return running_.empty(); }

  clock::duration grace() const { return grace_; }

private:
  struct entry {
    std::string user;
    clock::time_point deadline;
    uint64_t token;  ///< matches running_[user] while this entry is the user's live one
  };

  /// Keeps the invariant that the head, if any, is live: next_deadline() is then exact.
  void drop_stale_head() {
    while (!queue_.empty()) {
      auto i = running_.find(queue_.front().user);
      if (i != running_.end() && i->second == queue_.front().token)
        return;
      queue_.pop_front();
    }
  }

  clock::duration grace_;
  std::deque<entry> queue_;                           ///< oldest start first
  std::unordered_map<std::string, uint64_t> running_; ///< user -> token of their live entry
  uint64_t next_token_ = 1;
};

} // namespace parley
