// deploy/grafana/parley-dashboard.json may only chart what the server exports: every metric name in
// its PromQL (panel targets and the instance variable) must be one the catalogue renders. A renamed
// or mistyped metric would otherwise leave an empty panel that nobody notices.

#include "metrics/server_metrics.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace {

using json = nlohmann::json;

/// Series names the registry renders: each metric, and a histogram's _bucket, _sum and _count.
std::set<std::string> rendered_series(const std::string& exposition) {
  std::set<std::string> out;
  std::istringstream in{exposition};
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("# TYPE ", 0) != 0)
      continue;
    std::istringstream words{line.substr(7)};
    std::string name, type;
    words >> name >> type;
    out.insert(name);
    if (type == "histogram")
      for (const char* suffix : {"_bucket", "_sum", "_count"})
        out.insert(name + suffix);
  }
  return out;
}

/// PromQL functions, aggregations and keywords a dashboard may use.
const std::set<std::string> promql_words = {
  "rate",  "irate", "increase", "delta", "deriv", "sum", "avg", "min", "max", "count",
  "topk", "bottomk", "quantile", "histogram_quantile", "time", "abs", "clamp_min", "clamp_max",
  "label_values", "max_over_time", "min_over_time", "avg_over_time", "and", "or", "unless",
  "offset", "bool", "vector", "scalar", "changes", "resets"};

/// The metric names `expr` references that are not in `known`, plus an entry "(none)" when it
/// references no metric at all.
std::vector<std::string> unknown_metrics(std::string expr, const std::set<std::string>& known) {
  // Label matchers, range selectors, grouping clauses and strings name labels, not metrics.
  const std::regex label_matchers{R"(\{[^}]*\})"};
  const std::regex ranges{R"(\[[^\]]*\])"};
  const std::regex grouping{R"(\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\))"};
  const std::regex strings{R"("[^"]*")"};
  for (const auto* re : {&label_matchers, &ranges, &grouping, &strings})
    expr = std::regex_replace(expr, *re, " ");
  // label_values(metric, label): its second argument is a label.
  expr = std::regex_replace(expr, std::regex{R"(label_values\s*\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,\s*[a-zA-Z_]+\s*\))"},
                            "$1");
  std::vector<std::string> out;
  std::size_t metrics_seen = 0;
  const std::regex identifier{R"([a-zA-Z_:][a-zA-Z0-9_:]*)"};
  for (std::sregex_iterator i{expr.begin(), expr.end(), identifier}, end; i != end; ++i) {
    auto word = i->str();
    auto after = expr.find_first_not_of(' ', static_cast<std::size_t>(i->position() + i->length()));
    bool is_call = after != std::string::npos && expr[after] == '(';
    if (promql_words.count(word) > 0 && (is_call || word == "and" || word == "or" || word == "unless" ||
                                         word == "offset" || word == "bool"))
      continue;
    if (is_call) {
      out.push_back(word + "()");  // a function this check does not know: look at it
      continue;
    }
    ++metrics_seen;
    if (known.count(word) == 0)
      out.push_back(word);
  }
  if (metrics_seen == 0)
    out.push_back("(none)");
  return out;
}

/// Every PromQL expression of a dashboard: panel targets (also inside rows) and query variables.
std::vector<std::string> expressions(const json& dashboard) {
  std::vector<std::string> out;
  std::vector<const json*> panels;
  for (const auto& p : dashboard.at("panels")) {
    panels.push_back(&p);
    if (p.contains("panels"))  // a collapsed row keeps its panels inside
      for (const auto& inner : p["panels"])
        panels.push_back(&inner);
  }
  for (const auto* p : panels)
    for (const auto& t : p->value("targets", json::array()))
      if (t.contains("expr"))
        out.push_back(t["expr"].get<std::string>());
  for (const auto& v : dashboard["templating"].value("list", json::array()))
    if (v.value("type", "") == "query") {
      const auto& query = v["query"];
      out.push_back(query.is_string() ? query.get<std::string>() : query.value("query", ""));
    }
  return out;
}

json load_dashboard() {
  std::ifstream in{std::string{PARLEY_SOURCE_DIR} + "/deploy/grafana/parley-dashboard.json"};
  REQUIRE(in.good());
  return json::parse(in);
}

} // namespace

TEST_CASE("the metric check finds names the server does not render") {
  std::set<std::string> known = {"parley_rooms", "parley_x_seconds_bucket"};
  CHECK(unknown_metrics("sum(parley_rooms{instance=~\"$instance\"})", known).empty());
  CHECK(unknown_metrics(
          "histogram_quantile(0.99, sum by (kind, le) (rate(parley_x_seconds_bucket{a=\"b\"}[5m])))", known)
          .empty());
  CHECK(unknown_metrics("label_values(parley_rooms, instance)", known).empty());
  CHECK(unknown_metrics("rate(parley_romos[5m])", known) == std::vector<std::string>{"parley_romos"});
  CHECK(unknown_metrics("sum by (kind) (parley_rooms) / parley_other", known) ==
        std::vector<std::string>{"parley_other"});
  CHECK(unknown_metrics("rate(whatever[5m])", known) == std::vector<std::string>{"whatever"});
  CHECK(unknown_metrics("frobnicate(parley_rooms)", known) == std::vector<std::string>{"frobnicate()"});
  CHECK(unknown_metrics("time()", known) == std::vector<std::string>{"(none)"});
}

TEST_CASE("the Grafana dashboard charts only metrics the server renders, through a datasource input") {
  auto dashboard = load_dashboard();
  CHECK(dashboard["schemaVersion"].get<int>() >= 36);
  bool has_input = false;
  for (const auto& input : dashboard.value("__inputs", json::array()))
    has_input = has_input || (input.value("name", "") == "DS_PROMETHEUS" &&
                              input.value("pluginId", "") == "prometheus");
  CHECK(has_input);

  parley::metrics::server_metrics();  // registers the catalogue, if no test did yet
  auto known = rendered_series(parley::metrics::process_registry().render());
  auto exprs = expressions(dashboard);
  CHECK(exprs.size() >= 15);
  std::set<std::string> charted;
  for (const auto& expr : exprs) {
    INFO(expr);
    CHECK(unknown_metrics(expr, known).empty());
    const std::regex identifier{R"((parley|process)_[a-z_]+)"};
    for (std::sregex_iterator i{expr.begin(), expr.end(), identifier}, end; i != end; ++i)
      charted.insert(i->str());
  }
  // What the issue asks the dashboard to show.
  for (const char* name :
       {"parley_connections_open", "parley_messages_accepted_total", "parley_deliveries_total",
        "parley_delivery_latency_seconds_bucket", "parley_mailbox_depth_max", "parley_mailbox_depth_bucket",
        "parley_store_commit_seconds_bucket", "parley_supervisor_restarts_total",
        "parley_supervisor_give_ups_total", "parley_frames_dropped_total", "parley_handshakes_refused_total",
        "parley_slow_consumer_closes_total", "process_resident_memory_bytes", "process_open_fds",
        "process_cpu_seconds_total"}) {
    INFO(name);
    CHECK(charted.count(name) == 1);
  }
  // Every panel queries the input's datasource, so an import asks which Prometheus to use.
  for (const auto& p : dashboard["panels"])
    if (p.value("type", "") != "row") {
      INFO(p.value("title", ""));
      CHECK(p["datasource"]["uid"] == "${DS_PROMETHEUS}");
    }
}
