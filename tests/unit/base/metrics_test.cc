#include "base/metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <thread>
#include <vector>

namespace slipway::metrics {
namespace {

TEST(MetricsTest, CountersOnlyGoUp) {
  Registry registry;
  Counter& c = registry.AddCounter("jobs_total", "jobs").With({});
  c.Increment();
  c.Increment(2.5);
  c.Increment(-10);  // ignored: a counter never goes down
  c.Increment(std::numeric_limits<double>::quiet_NaN());
  EXPECT_EQ(c.value(), 3.5);
}

TEST(MetricsTest, HistogramBucketsAreCumulativeAndABoundCountsInItsOwnBucket) {
  Histogram h({1, 2, 5});
  for (double v : {0.5, 1.0, 1.5, 2.0, 4.0, 7.0, 100.0}) h.Observe(v);
  Histogram::Snapshot s = h.Read();
  ASSERT_EQ(s.cumulative.size(), 4u);
  EXPECT_EQ(s.cumulative[0], 2u);  // 0.5, 1.0
  EXPECT_EQ(s.cumulative[1], 4u);  // + 1.5, 2.0
  EXPECT_EQ(s.cumulative[2], 5u);  // + 4.0
  EXPECT_EQ(s.cumulative[3], 7u);  // + 7, 100 (+Inf)
  EXPECT_EQ(s.count, 7u);
  EXPECT_DOUBLE_EQ(s.sum, 116.0);
}

TEST(MetricsTest, ExpositionHasHelpTypeAndSortedEscapedSamples) {
  Registry registry;
  auto& requests = registry.AddCounter("b_requests_total", "Requests\nby \\ host", {"host", "code"});
  requests.With({"z.example", "200"}).Increment(3);
  requests.With({"a\"quoted\\\nhost", "404"}).Increment();
  registry.AddGauge("a_open", "Open connections").With({}).Set(-2);
  auto& latency = registry.AddHistogram("c_seconds", "Latency", {"route"}, {0.1, 1});
  latency.With({"/x"}).Observe(0.05);
  latency.With({"/x"}).Observe(0.5);
  latency.With({"/x"}).Observe(3);

  EXPECT_EQ(registry.Exposition(),
            "# HELP a_open Open connections\n"
            "# TYPE a_open gauge\n"
            "a_open -2\n"
            "# HELP b_requests_total Requests\\nby \\\\ host\n"
            "# TYPE b_requests_total counter\n"
            "b_requests_total{host=\"a\\\"quoted\\\\\\nhost\",code=\"404\"} 1\n"
            "b_requests_total{host=\"z.example\",code=\"200\"} 3\n"
            "# HELP c_seconds Latency\n"
            "# TYPE c_seconds histogram\n"
            "c_seconds_bucket{route=\"/x\",le=\"0.1\"} 1\n"
            "c_seconds_bucket{route=\"/x\",le=\"1\"} 2\n"
            "c_seconds_bucket{route=\"/x\",le=\"+Inf\"} 3\n"
            "c_seconds_sum{route=\"/x\"} 3.55\n"
            "c_seconds_count{route=\"/x\"} 3\n");
}

TEST(MetricsTest, FamiliesWithoutLabelsReadZeroBeforeFirstUse) {
  Registry registry;
  registry.AddCounter("never_total", "never incremented");
  registry.AddHistogram("never_seconds", "never observed", {}, {1});
  registry.AddCounter("labelled_total", "no child yet", {"kind"});
  EXPECT_EQ(registry.Exposition(),
            "# HELP labelled_total no child yet\n"
            "# TYPE labelled_total counter\n"
            "# HELP never_seconds never observed\n"
            "# TYPE never_seconds histogram\n"
            "never_seconds_bucket{le=\"1\"} 0\n"
            "never_seconds_bucket{le=\"+Inf\"} 0\n"
            "never_seconds_sum 0\n"
            "never_seconds_count 0\n"
            "# HELP never_total never incremented\n"
            "# TYPE never_total counter\n"
            "never_total 0\n");
}

TEST(MetricsTest, RegisteringTheSameDefinitionAgainReturnsTheSameFamily) {
  Registry registry;
  auto& first = registry.AddCounter("x_total", "x", {"a"});
  auto& second = registry.AddCounter("x_total", "x", {"a"});
  EXPECT_EQ(&first, &second);
  first.With({"1"}).Increment();
  EXPECT_EQ(second.With({"1"}).value(), 1);
  EXPECT_EQ(&first.With({"1"}), &second.With(std::vector<std::string>{"1"}));
}

TEST(MetricsDeathTest, MisuseAbortsSayingWhat) {
  Registry registry;
  registry.AddCounter("x_total", "x", {"a"});
  EXPECT_DEATH(registry.AddGauge("x_total", "x", {"a"}), "registered twice");
  EXPECT_DEATH(registry.AddCounter("bad-name", "x"), "invalid metric name");
  EXPECT_DEATH(registry.AddCounter("y_total", "x", {"__reserved"}), "invalid label name");
  EXPECT_DEATH(registry.AddHistogram("z_seconds", "x", {"le"}), "invalid label name");
  EXPECT_DEATH(registry.AddHistogram("w_seconds", "x", {}, {2, 1}), "increasing order");
  auto& f = registry.AddCounter("x_total", "x", {"a"});
  EXPECT_DEATH(f.With({"1", "2"}), "1 label names but was given 2");
}

TEST(MetricsTest, ConcurrentUpdatesAreNeverLost) {
  Registry registry;
  auto& counter = registry.AddCounter("hits_total", "hits", {"worker"});
  auto& histogram = registry.AddHistogram("work_seconds", "work", {}, {0.5});
  constexpr int kThreads = 4, kEach = 50'000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        counter.With({t % 2 == 0 ? "even" : "odd"}).Increment();
        histogram.With({}).Observe(i % 2 == 0 ? 0.25 : 1.0);
      }
    });
  }
  // Scrapes while the writers run must not disturb them (nor crash).
  for (int i = 0; i < 20; ++i) (void)registry.Exposition();
  for (auto& t : threads) t.join();
  EXPECT_EQ(counter.With({"even"}).value(), 2.0 * kEach);
  EXPECT_EQ(counter.With({"odd"}).value(), 2.0 * kEach);
  Histogram::Snapshot s = histogram.With({}).Read();
  EXPECT_EQ(s.count, uint64_t{kThreads} * kEach);
  EXPECT_EQ(s.cumulative[0], uint64_t{kThreads} * kEach / 2);
  EXPECT_DOUBLE_EQ(s.sum, kThreads * (kEach / 2) * 1.25);
}

TEST(MetricsTest, ValuesAreWrittenAsTheFormatExpects) {
  EXPECT_EQ(FormatValue(0), "0");
  EXPECT_EQ(FormatValue(12345678901), "12345678901");
  EXPECT_EQ(FormatValue(0.25), "0.25");
  EXPECT_EQ(FormatValue(-1.5), "-1.5");
  EXPECT_EQ(FormatValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(FormatValue(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(FormatValue(std::nan("")), "NaN");
  EXPECT_EQ(EscapeLabelValue("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
  EXPECT_EQ(EscapeHelp("a\\b\"c\nd"), "a\\\\b\"c\\nd");
}

TEST(MetricsTest, ProcessMetricsNameTheServiceAndVersion) {
  Registry registry;
  AddProcessMetrics(registry, "gateway");
  std::string page = registry.Exposition();
  EXPECT_NE(page.find("slipway_build_info{service=\"gateway\",version=\"" SLIPWAY_VERSION "\"} 1\n"),
            std::string::npos)
      << page;
  EXPECT_NE(page.find("\nprocess_start_time_seconds 1"), std::string::npos) << page;
}

}  // namespace
}  // namespace slipway::metrics
