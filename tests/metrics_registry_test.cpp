// The metric primitives and their Prometheus text exposition.

#include "metrics/histogram_batch.hpp"
#include "metrics/registry.hpp"

#include <doctest/doctest.h>

#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace parley::metrics;

TEST_CASE("a counter renders with its HELP and TYPE lines") {
  registry r;
  auto& c = r.add_counter("parley_test_total", "Things that happened.");
  c.inc();
  c.inc(4);
  CHECK(r.render() == "# HELP parley_test_total Things that happened.\n"
                      "# TYPE parley_test_total counter\n"
                      "parley_test_total 5\n");
}

TEST_CASE("a histogram renders cumulative buckets, +Inf, sum and count") {
  registry r;
  auto& h = r.add_histogram("parley_latency_seconds", "Latency.", {0.01, 0.1, 1});
  h.observe(0.005);
  h.observe(0.01);  // on the bound: counts in that bucket ("less than or equal")
  h.observe(0.5);
  h.observe(7);
  auto text = r.render();
  CHECK(text.find("parley_latency_seconds_bucket{le=\"0.01\"} 2\n") != std::string::npos);
  CHECK(text.find("parley_latency_seconds_bucket{le=\"0.10000000000000001\"} 2\n") != std::string::npos);
  CHECK(text.find("parley_latency_seconds_bucket{le=\"1\"} 3\n") != std::string::npos);
  CHECK(text.find("parley_latency_seconds_bucket{le=\"+Inf\"} 4\n") != std::string::npos);
  CHECK(text.find("parley_latency_seconds_count 4\n") != std::string::npos);
  CHECK(text.find("parley_latency_seconds_sum 7.5149999999999997\n") != std::string::npos);
}

TEST_CASE("labelled children render one line each, with escaped values") {
  registry r;
  auto& f = r.add_counter_family("parley_closed_total", "Closes.", {"code"});
  f.with({"1000"}).inc(2);
  f.with({"say \"hi\"\\\n"}).inc();
  auto text = r.render();
  CHECK(text.find("parley_closed_total{code=\"1000\"} 2\n") != std::string::npos);
  CHECK(text.find("parley_closed_total{code=\"say \\\"hi\\\"\\\\\\n\"} 1\n") != std::string::npos);
  // The same label values give the same child.
  CHECK(&f.with({"1000"}) == &f.with({"1000"}));
}

TEST_CASE("computed samples are taken at render time") {
  registry r;
  int calls = 0;
  r.add_computed("parley_rooms", "Rooms.", metric_type::gauge, [&] {
    ++calls;
    return std::vector<computed_sample>{{{{"kind", "live"}}, 3}};
  });
  CHECK(calls == 0);
  CHECK(r.render().find("parley_rooms{kind=\"live\"} 3\n") != std::string::npos);
  CHECK(calls == 1);
}

TEST_CASE("invalid or duplicate names are refused") {
  registry r;
  CHECK_THROWS_AS(r.add_counter("9lives", "x"), std::invalid_argument);
  CHECK_THROWS_AS(r.add_counter("has space", "x"), std::invalid_argument);
  CHECK_THROWS_AS(r.add_counter_family("ok_total", "x", {"le"}), std::invalid_argument);
  r.add_gauge("parley_once", "x");
  CHECK_THROWS_AS(r.add_counter("parley_once", "x"), std::invalid_argument);
  CHECK_THROWS_AS(r.add_histogram("parley_h", "x", {1, 0.5}), std::invalid_argument);
}

TEST_CASE("a gauge's high-water mark only rises") {
  gauge g;
  g.raise_to(5);
  g.raise_to(3);
  CHECK(g.value() == 5);
  g.set(1);
  CHECK(g.value() == 1);
}

TEST_CASE("counters and histograms lose no update across threads") {
  counter c;
  histogram h{{1, 10}};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        c.inc();
        h.observe(2);
      }
    });
  for (auto& t : threads)
    t.join();
  CHECK(c.value() == 40000);
  auto snap = h.read();
  CHECK(snap.count == 40000);
  CHECK(snap.buckets[1] == 40000);
  CHECK(snap.sum == doctest::Approx(80000));
}

TEST_CASE("a histogram batch adds its observations to the histogram only when flushed") {
  histogram h{{1, 10}};
  {
    histogram_batch batch{h};
    batch.observe(0.5);
    batch.observe(5);
    batch.observe(50);
    CHECK(batch.pending() == 3);
    CHECK(h.read().count == 0);
    batch.flush();
    CHECK(batch.pending() == 0);
    auto snap = h.read();
    CHECK(snap.count == 3);
    CHECK(snap.buckets == std::vector<uint64_t>{1, 1, 1});
    CHECK(snap.sum == doctest::Approx(55.5));
    batch.observe(2);
  }  // a batch that goes away flushes what it holds
  CHECK(h.read().count == 4);
  CHECK(h.read().buckets[1] == 2);
}

TEST_CASE("a full histogram batch flushes itself") {
  histogram h{{1}};
  histogram_batch batch{h};
  for (uint64_t i = 0; i < histogram_batch::flush_at; ++i)
    batch.observe(0.1);
  CHECK(batch.pending() == 0);
  CHECK(h.read().count == histogram_batch::flush_at);
}
