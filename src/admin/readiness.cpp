#include "admin/readiness.hpp"

#include "metrics/registry.hpp"

namespace parley::admin {

std::vector<std::string> not_ready_reasons(const readiness_inputs& in) {
  std::vector<std::string> reasons;
  if (in.draining)
    reasons.emplace_back("draining");
  if (!in.store_open)
    reasons.emplace_back("store not open");
  if (!in.directory_running)
    reasons.emplace_back("directory down");
  if (in.max_connections > 0 && in.connections >= in.max_connections)
    reasons.push_back("at connection limit (" + std::to_string(in.connections) + " of "
                      + std::to_string(in.max_connections) + ")");
  return reasons;
}

std::string readiness_text(const std::vector<std::string>& reasons) {
  if (reasons.empty())
    return "ready\n";
  std::string text;
  for (const auto& reason : reasons)
    text += reason + "\n";
  return text;
}

namespace {

struct readiness_gauges {
  metrics::gauge& draining;
  metrics::gauge& ready;
};

readiness_gauges& gauges() {
  // Registered on first use, once per process: the registry refuses a name twice.
  static readiness_gauges instance{
    metrics::process_registry().add_gauge("parley_draining", "1 while the node drains"),
    metrics::process_registry().add_gauge("parley_ready", "1 when /readyz answers 200"),
  };
  return instance;
}

} // namespace

void set_readiness_gauges(bool draining, bool ready) {
  auto& g = gauges();
  g.draining.set(draining ? 1 : 0);
  g.ready.set(ready ? 1 : 0);
}

} // namespace parley::admin
