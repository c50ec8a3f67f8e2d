#pragma once

// Metric primitives and their Prometheus text exposition (format 0.0.4). Debian 12 has no
// prometheus-cpp, and Parley needs little: counters, gauges and histograms, optionally with
// labels, that any thread updates lock-free, and one render() for /metrics.
//
// Updating a metric is an atomic add; looking up a labelled child takes a lock, so hot paths look
// their children up once and keep the reference (children live as long as the registry).

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace parley::metrics {

/// A count that only goes up (restarts at 0 with the process).
class counter {
public:
  void inc(uint64_t n = 1) noexcept { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

private:
  std::atomic<uint64_t> value_{0};
};

/// A value that goes up and down.
class gauge {
public:
  void set(int64_t v) noexcept { value_.store(v, std::memory_order_relaxed); }
  void add(int64_t n = 1) noexcept { value_.fetch_add(n, std::memory_order_relaxed); }
  void sub(int64_t n = 1) noexcept { value_.fetch_sub(n, std::memory_order_relaxed); }
  /// Raises the value to `v` if it is below (a high-water mark).
  void raise_to(int64_t v) noexcept;
  int64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

private:
  std::atomic<int64_t> value_{0};
};

/// Counts observations into buckets with fixed upper bounds (ascending), plus their sum.
class histogram {
public:
  explicit histogram(std::vector<double> upper_bounds);

  void observe(double v) noexcept;

  /// Adds many observations at once (see histogram_batch): `bucket_counts` holds one count per
  /// bucket, upper_bounds().size() + 1 of them (the last for +Inf); `sum` is their total.
  void add(const uint64_t* bucket_counts, double sum) noexcept;

  /// The index of the bucket `v` falls in (upper_bounds().size() for +Inf).
  std::size_t bucket_of(double v) const noexcept;

  /// A consistent-enough copy for rendering: per-bucket (not cumulative) counts, the last one
  /// being +Inf, then the total count and sum.
  struct snapshot {
    std::vector<uint64_t> buckets;
    uint64_t count = 0;
    double sum = 0;
  };
  snapshot read() const;
  const std::vector<double>& upper_bounds() const noexcept { return bounds_; }

private:
  void add_to_sum(double v) noexcept;

  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  ///< bounds_.size() + 1 (the +Inf bucket)
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sum_bits_{0};  ///< a double, updated by compare-and-swap
};

/// Bucket bounds start, start*factor, ... (count of them).
std::vector<double> exponential_buckets(double start, double factor, std::size_t count);

/// Label values of one child, in the order of the family's label names.
using label_values = std::vector<std::string>;

/// One metric name with a child per combination of label values.
template <class Metric>
class family {
public:
  family(std::vector<std::string> label_names, std::function<std::unique_ptr<Metric>()> make)
    : label_names_(std::move(label_names)), make_(std::move(make)) {
    // nop
  }

  /// The child with these label values (created on first use). Keep the reference on hot paths.
  Metric& with(label_values values) {
    std::lock_guard<std::mutex> guard{mtx_};
    auto& slot = children_[std::move(values)];
    if (!slot)
      slot = make_();
    return *slot;
  }

  const std::vector<std::string>& label_names() const noexcept { return label_names_; }

  /// Calls f(values, metric) for every child, in label order.
  template <class F>
  void for_each(F&& f) const {
    std::lock_guard<std::mutex> guard{mtx_};
    for (const auto& [values, metric] : children_)
      f(values, *metric);
  }

private:
  std::vector<std::string> label_names_;
  std::function<std::unique_ptr<Metric>()> make_;
  mutable std::mutex mtx_;
  std::map<label_values, std::unique_ptr<Metric>> children_;
};

/// A sample computed when scraped (process RSS, rooms in memory, ...).
struct computed_sample {
  std::vector<std::pair<std::string, std::string>> labels;
  double value = 0;
};

enum class metric_type { counter, gauge, histogram };

/// The metrics of one process, rendered in registration order. Names must be valid Prometheus
/// names and unique; registering a name twice throws std::invalid_argument (a programming error
/// caught by the first test that builds the catalogue).
class registry {
public:
  registry();
  ~registry();
  registry(const registry&) = delete;
  registry& operator=(const registry&) = delete;

  counter& add_counter(const std::string& name, const std::string& help);
  gauge& add_gauge(const std::string& name, const std::string& help);
  histogram& add_histogram(const std::string& name, const std::string& help,
                           std::vector<double> upper_bounds);
  family<counter>& add_counter_family(const std::string& name, const std::string& help,
                                      std::vector<std::string> label_names);
  family<gauge>& add_gauge_family(const std::string& name, const std::string& help,
                                  std::vector<std::string> label_names);
  family<histogram>& add_histogram_family(const std::string& name, const std::string& help,
                                          std::vector<std::string> label_names,
                                          std::vector<double> upper_bounds);
  /// A counter or gauge whose samples `collect` computes at each render (on the scraping thread:
  /// it must be thread-safe and quick).
  void add_computed(const std::string& name, const std::string& help, metric_type type,
                    std::function<std::vector<computed_sample>()> collect);

  /// Everything in the Prometheus text exposition format, version 0.0.4.
  std::string render() const;

private:
  struct entry;
  entry& add(const std::string& name, const std::string& help, metric_type type);

  mutable std::mutex mtx_;
  std::vector<std::unique_ptr<entry>> entries_;
};

/// The registry /metrics renders: the process's one set of metrics.
registry& process_registry();

/// The Content-Type of render()'s output.
inline constexpr std::string_view content_type = "text/plain; version=0.0.4; charset=utf-8";

/// True if `name` is a valid metric or label name ([a-zA-Z_:][a-zA-Z0-9_:]*; labels without ':').
bool valid_name(std::string_view name, bool is_label = false);

/// A label value escaped for the text format (backslash, double quote, line feed).
std::string escape_label_value(std::string_view value);

} // namespace parley::metrics
