#pragma once

// Observations of one histogram gathered by one thread with plain (non-atomic) counts, added to
// the shared histogram in one go. For observations so frequent that their atomic updates would
// cost more than the work they measure: delivery latency is observed once per recipient of every
// message, on every I/O thread, and each histogram::observe is three atomic operations on cache
// lines all those threads share. A batch turns that into one add per bucket per flush.
//
// Not thread-safe: one batch per thread (thread_local), flushed by its owner. What a batch holds is
// invisible to /metrics until flushed, so the owner flushes it regularly as well as when full.

#include "metrics/registry.hpp"

#include <algorithm>
#include <cstdint>
#include <vector>

namespace parley::metrics {

class histogram_batch {
public:
  /// Observations a batch holds before observe() flushes it itself.
  static constexpr uint64_t flush_at = 1024;

  explicit histogram_batch(histogram& target)
    : target_(target), counts_(target.upper_bounds().size() + 1, 0) {
    // nop
  }

  ~histogram_batch() { flush(); }

  histogram_batch(const histogram_batch&) = delete;
  histogram_batch& operator=(const histogram_batch&) = delete;

  void observe(double v) noexcept {
    ++counts_[target_.bucket_of(v)];
    sum_ += v;
    if (++pending_ >= flush_at)
      flush();
  }

  /// Adds what the batch holds to the shared histogram and empties it.
  void flush() noexcept {
    if (pending_ == 0)
      return;
    target_.add(counts_.data(), sum_);
    std::fill(counts_.begin(), counts_.end(), 0);
    sum_ = 0;
    pending_ = 0;
  }

  /// Observations not yet flushed.
  uint64_t pending() const noexcept { return pending_; }

private:
  histogram& target_;
  std::vector<uint64_t> counts_;
  double sum_ = 0;
  uint64_t pending_ = 0;
};

} // namespace parley::metrics
