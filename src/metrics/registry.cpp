#include "metrics/registry.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <variant>

namespace parley::metrics {

// -- primitives -------------------------------------------------------------------------------

void gauge::raise_to(int64_t v) noexcept {
  auto current = value_.load(std::memory_order_relaxed);
  while (current < v && !value_.compare_exchange_weak(current, v, std::memory_order_relaxed))
    ; // retry with the value another thread stored
}

histogram::histogram(std::vector<double> upper_bounds)
  : bounds_(std::move(upper_bounds)),
    buckets_(std::make_unique<std::atomic<uint64_t>[]>(bounds_.size() + 1)) {
  if (!std::is_sorted(bounds_.begin(), bounds_.end()))
    throw std::invalid_argument("histogram bounds must ascend");
  for (std::size_t i = 0; i <= bounds_.size(); ++i)
    buckets_[i].store(0, std::memory_order_relaxed);
}

std::size_t histogram::bucket_of(double v) const noexcept {
  // Prometheus buckets are "less than or equal": the first bound >= v.
  return static_cast<std::size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
}

void histogram::observe(double v) noexcept {
  buckets_[bucket_of(v)].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  add_to_sum(v);
}

void histogram::add(const uint64_t* bucket_counts, double sum) noexcept {
  uint64_t total = 0;
  for (std::size_t i = 0; i <= bounds_.size(); ++i) {
    if (bucket_counts[i] == 0)
      continue;
    buckets_[i].fetch_add(bucket_counts[i], std::memory_order_relaxed);
    total += bucket_counts[i];
  }
  if (total == 0)
    return;
  count_.fetch_add(total, std::memory_order_relaxed);
  add_to_sum(sum);
}

void histogram::add_to_sum(double v) noexcept {
  auto bits = sum_bits_.load(std::memory_order_relaxed);
  for (;;) {
    double sum;
    std::memcpy(&sum, &bits, sizeof sum);
    sum += v;
    uint64_t next;
    std::memcpy(&next, &sum, sizeof next);
    if (sum_bits_.compare_exchange_weak(bits, next, std::memory_order_relaxed))
      return;
  }
}

histogram::snapshot histogram::read() const {
  snapshot out;
  out.buckets.reserve(bounds_.size() + 1);
  for (std::size_t i = 0; i <= bounds_.size(); ++i)
    out.buckets.push_back(buckets_[i].load(std::memory_order_relaxed));
  // The count is the sum of the buckets read, so that +Inf and _count always agree.
  for (auto n : out.buckets)
    out.count += n;
  auto bits = sum_bits_.load(std::memory_order_relaxed);
  std::memcpy(&out.sum, &bits, sizeof out.sum);
  return out;
}

std::vector<double> exponential_buckets(double start, double factor, std::size_t count) {
  std::vector<double> out;
  double bound = start;
  for (std::size_t i = 0; i < count; ++i, bound *= factor)
    out.push_back(bound);
  return out;
}

// -- names and values -------------------------------------------------------------------------

bool valid_name(std::string_view name, bool is_label) {
  if (name.empty())
    return false;
  auto allowed = [&](char c, bool first) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (!is_label && c == ':')
           || (!first && c >= '0' && c <= '9');
  };
  for (std::size_t i = 0; i < name.size(); ++i)
    if (!allowed(name[i], i == 0))
      return false;
  return true;
}

std::string escape_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

namespace {

std::string escape_help(std::string_view help) {
  std::string out;
  for (char c : help) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::string format_value(double v) {
  if (std::isnan(v))
    return "NaN";
  if (std::isinf(v))
    return v > 0 ? "+Inf" : "-Inf";
  char buf[32];
  if (v == std::floor(v) && std::fabs(v) < 1e15)
    std::snprintf(buf, sizeof buf, "%.0f", v);
  else
    std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

using label_pairs = std::vector<std::pair<std::string, std::string>>;

std::string format_labels(const label_pairs& labels) {
  if (labels.empty())
    return {};
  std::string out = "{";
  for (const auto& [name, value] : labels) {
    if (out.size() > 1)
      out += ',';
    out += name;
    out += "=\"";
    out += escape_label_value(value);
    out += '"';
  }
  out += '}';
  return out;
}

label_pairs pair_up(const std::vector<std::string>& names, const label_values& values) {
  label_pairs out;
  for (std::size_t i = 0; i < names.size() && i < values.size(); ++i)
    out.emplace_back(names[i], values[i]);
  return out;
}

void write_sample(std::string& out, const std::string& name, const label_pairs& labels, double v) {
  out += name;
  out += format_labels(labels);
  out += ' ';
  out += format_value(v);
  out += '\n';
}

void write_histogram(std::string& out, const std::string& name, const label_pairs& labels,
                     const histogram& h) {
  auto snap = h.read();
  uint64_t cumulative = 0;
  const auto& bounds = h.upper_bounds();
  for (std::size_t i = 0; i <= bounds.size(); ++i) {
    cumulative += snap.buckets[i];
    auto with_le = labels;
    with_le.emplace_back("le", i < bounds.size() ? format_value(bounds[i]) : "+Inf");
    write_sample(out, name + "_bucket", with_le, static_cast<double>(cumulative));
  }
  write_sample(out, name + "_sum", labels, snap.sum);
  write_sample(out, name + "_count", labels, static_cast<double>(snap.count));
}

const char* type_name(metric_type type) {
  switch (type) {
    case metric_type::counter:
      return "counter";
    case metric_type::gauge:
      return "gauge";
    case metric_type::histogram:
      return "histogram";
  }
  return "untyped";
}

} // namespace

// -- registry ---------------------------------------------------------------------------------

struct registry::entry {
  std::string name;
  std::string help;
  metric_type type;
  std::variant<std::monostate, std::unique_ptr<counter>, std::unique_ptr<gauge>,
               std::unique_ptr<histogram>, std::unique_ptr<family<counter>>,
               std::unique_ptr<family<gauge>>, std::unique_ptr<family<histogram>>,
               std::function<std::vector<computed_sample>()>>
    metric;
};

registry::registry() = default;
registry::~registry() = default;

registry::entry& registry::add(const std::string& name, const std::string& help, metric_type type) {
  if (!valid_name(name))
    throw std::invalid_argument("invalid metric name: " + name);
  std::lock_guard<std::mutex> guard{mtx_};
  for (const auto& e : entries_)
    if (e->name == name)
      throw std::invalid_argument("metric registered twice: " + name);
  entries_.push_back(std::make_unique<entry>(entry{name, help, type, {}}));
  return *entries_.back();
}

namespace {

void check_labels(const std::vector<std::string>& names) {
  for (const auto& n : names)
    if (!valid_name(n, true) || n == "le")
      throw std::invalid_argument("invalid label name: " + n);
}

} // namespace

counter& registry::add_counter(const std::string& name, const std::string& help) {
  auto m = std::make_unique<counter>();
  auto& ref = *m;
  add(name, help, metric_type::counter).metric = std::move(m);
  return ref;
}

gauge& registry::add_gauge(const std::string& name, const std::string& help) {
  auto m = std::make_unique<gauge>();
  auto& ref = *m;
  add(name, help, metric_type::gauge).metric = std::move(m);
  return ref;
}

histogram& registry::add_histogram(const std::string& name, const std::string& help,
                                   std::vector<double> upper_bounds) {
  auto m = std::make_unique<histogram>(std::move(upper_bounds));
  auto& ref = *m;
  add(name, help, metric_type::histogram).metric = std::move(m);
  return ref;
}

family<counter>& registry::add_counter_family(const std::string& name, const std::string& help,
                                              std::vector<std::string> label_names) {
  check_labels(label_names);
  auto f = std::make_unique<family<counter>>(std::move(label_names),
                                             [] { return std::make_unique<counter>(); });
  auto& ref = *f;
  add(name, help, metric_type::counter).metric = std::move(f);
  return ref;
}

family<gauge>& registry::add_gauge_family(const std::string& name, const std::string& help,
                                          std::vector<std::string> label_names) {
  check_labels(label_names);
  auto f = std::make_unique<family<gauge>>(std::move(label_names),
                                           [] { return std::make_unique<gauge>(); });
  auto& ref = *f;
  add(name, help, metric_type::gauge).metric = std::move(f);
  return ref;
}

family<histogram>& registry::add_histogram_family(const std::string& name, const std::string& help,
                                                  std::vector<std::string> label_names,
                                                  std::vector<double> upper_bounds) {
  check_labels(label_names);
  histogram probe{upper_bounds};  // throws here, not at the first child, on unsorted bounds
  auto f = std::make_unique<family<histogram>>(
    std::move(label_names), [bounds = std::move(upper_bounds)] { return std::make_unique<histogram>(bounds); });
  auto& ref = *f;
  add(name, help, metric_type::histogram).metric = std::move(f);
  return ref;
}

void registry::add_computed(const std::string& name, const std::string& help, metric_type type,
                            std::function<std::vector<computed_sample>()> collect) {
  if (type == metric_type::histogram)
    throw std::invalid_argument("computed metrics are counters or gauges: " + name);
  add(name, help, type).metric = std::move(collect);
}

std::string registry::render() const {
  std::lock_guard<std::mutex> guard{mtx_};
  std::string out;
  out.reserve(entries_.size() * 256);
  for (const auto& e : entries_) {
    out += "# HELP " + e->name + ' ' + escape_help(e->help) + '\n';
    out += "# TYPE " + e->name + ' ' + type_name(e->type) + '\n';
    const auto& name = e->name;
    std::visit(
      [&](const auto& m) {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, std::unique_ptr<counter>>) {
          write_sample(out, name, {}, static_cast<double>(m->value()));
        } else if constexpr (std::is_same_v<T, std::unique_ptr<gauge>>) {
          write_sample(out, name, {}, static_cast<double>(m->value()));
        } else if constexpr (std::is_same_v<T, std::unique_ptr<histogram>>) {
          write_histogram(out, name, {}, *m);
        } else if constexpr (std::is_same_v<T, std::unique_ptr<family<counter>>>
                             || std::is_same_v<T, std::unique_ptr<family<gauge>>>) {
          m->for_each([&](const label_values& values, const auto& child) {
            write_sample(out, name, pair_up(m->label_names(), values), static_cast<double>(child.value()));
          });
        } else if constexpr (std::is_same_v<T, std::unique_ptr<family<histogram>>>) {
          m->for_each([&](const label_values& values, const histogram& child) {
            write_histogram(out, name, pair_up(m->label_names(), values), child);
          });
        } else if constexpr (std::is_same_v<T, std::function<std::vector<computed_sample>()>>) {
          for (const auto& s : m())
            write_sample(out, name, s.labels, s.value);
        }
      },
      e->metric);
  }
  return out;
}

registry& process_registry() {
  static registry instance;
  return instance;
}

} // namespace parley::metrics
