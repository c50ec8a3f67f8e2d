#pragma once

// A fixed-size latency histogram shared by the benchmarks (a header: CMake builds every bench/*.cpp
// as its own executable).

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>

namespace bench {

/// Log-linear histogram of nanosecond values: 64 sub-buckets per power of two (error < 1.6%).
/// Fixed size, so millions of deliveries cost no memory growth and no sort.
class latency_histogram {
public:
  void record(int64_t ns) {
    uint64_t v = ns > 0 ? uint64_t(ns) : 0;
    ++counts_[index_of(v)];
    ++total_;
    max_ = std::max(max_, v);
  }

  uint64_t count() const { return total_; }
  uint64_t max() const { return max_; }

  /// The value below which `q` (0..1) of the recorded values lie (bucket upper bound).
  uint64_t quantile(double q) const {
    if (total_ == 0) return 0;
    auto rank = static_cast<uint64_t>(q * double(total_ - 1)) + 1;
    uint64_t seen = 0;
    for (std::size_t b = 0; b < counts_.size(); ++b) {
      seen += counts_[b];
      if (seen >= rank) return std::min(upper_of(b), max_);
    }
    return max_;
  }

  /// Adds another histogram's counts (e.g. per-step histograms into a total).
  void merge(const latency_histogram& other) {
    for (std::size_t b = 0; b < counts_.size(); ++b) counts_[b] += other.counts_[b];
    total_ += other.total_;
    max_ = std::max(max_, other.max_);
  }

  void clear() { *this = latency_histogram{}; }

private:
  static constexpr unsigned sub_bits = 6;
  static constexpr uint64_t sub = uint64_t(1) << sub_bits;

  static std::size_t index_of(uint64_t v) {
    if (v < sub) return std::size_t(v);
    unsigned exp = 63u - unsigned(__builtin_clzll(v)); // >= sub_bits
    uint64_t mantissa = (v >> (exp - sub_bits)) - sub; // 0..sub-1
    return std::size_t((exp - sub_bits + 1) * sub + mantissa);
  }

  static uint64_t upper_of(std::size_t b) {
    if (b < sub) return b;
    uint64_t exp = b / sub + sub_bits - 1;
    uint64_t mantissa = b % sub;
    return ((sub + mantissa + 1) << (exp - sub_bits)) - 1;
  }

  std::array<uint64_t, (64 - sub_bits + 1) * sub> counts_{};
  uint64_t total_ = 0;
  uint64_t max_ = 0;
};

} // namespace bench
