// Metrics a process exposes to Prometheus: counters, gauges and histograms, each a family with
// label names whose children are told apart by label values, rendered in the Prometheus text
// exposition format (version 0.0.4) by Registry::Exposition().
//
// Promises:
//  - everything is thread-safe. The hot path (Counter::Increment, Gauge::Set, Histogram::Observe)
//    takes no lock: relaxed atomics only. Finding a child by its label values takes a shared
//    lock (creating one, an exclusive lock once); keep the child (Counter&) where the same
//    labels are used on every call. Children and families live as long as their registry.
//  - the exposition is valid whatever the label values and help texts hold: backslashes,
//    double quotes and line breaks are escaped as the format says, so a label value taken from
//    a request (a host name) cannot break the page. Every family gets its # HELP and # TYPE
//    lines, families are sorted by name, children by label values, and a histogram's buckets
//    are cumulative and end with le="+Inf", whose count equals _count.
//  - label values are kept as given: callers bound their cardinality (a gateway labels by the
//    routed host, never by whatever Host a client sends).
//
// Names follow Prometheus: metric [a-zA-Z_:][a-zA-Z0-9_:]*, label [a-zA-Z_][a-zA-Z0-9_]*
// (not "le" on a histogram). Registering an invalid name, or one name twice with another type,
// label set or buckets, is a programming error: the process aborts with a message saying which.
// Registering it again with the same definition returns the existing family.
#pragma once

#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace slipway::metrics {

// A value that only goes up (requests served, bytes received).
class Counter {
 public:
  // by must not be negative (a negative step is ignored: a counter never goes down).
  void Increment(double by = 1);
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// A value that goes up and down (connections open, time a process started).
class Gauge {
 public:
  void Set(double value) { value_.store(value, std::memory_order_relaxed); }
  void Add(double by);
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// Counts observations into buckets by upper bound, and keeps their sum.
class Histogram {
 public:
  explicit Histogram(const std::vector<double>& upper_bounds);
  void Observe(double value);

  struct Snapshot {
    std::vector<uint64_t> cumulative;  // one per bound, then the +Inf bucket
    uint64_t count = 0;                // == cumulative.back()
    double sum = 0;
  };
  Snapshot Read() const;

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // per bucket, not cumulative; last: +Inf
  std::atomic<double> sum_{0};
};

// Seconds: request latencies (5 ms .. 10 s).
const std::vector<double>& LatencyBuckets();
// Seconds: work that takes a while, such as builds and deployment steps (100 ms .. 30 min).
const std::vector<double>& LongTaskBuckets();

enum class Type { kCounter, kGauge, kHistogram };

// The children of one metric: label values -> child.
template <typename Child>
class Family {
 public:
  // The child with these label values (as many as the family has label names, in their
  // order), made on first use.
  Child& With(std::initializer_list<std::string_view> values);
  Child& With(const std::vector<std::string>& values);

  const std::string& name() const { return name_; }

 private:
  friend class Registry;
  Family(std::string name, std::string help, std::vector<std::string> label_names,
         std::vector<double> buckets)
      : name_(std::move(name)),
        help_(std::move(help)),
        label_names_(std::move(label_names)),
        buckets_(std::move(buckets)) {}
  template <typename Values>
  Child& Find(const Values& values);

  std::string name_;
  std::string help_;
  std::vector<std::string> label_names_;
  std::vector<double> buckets_;  // histograms only
  mutable std::shared_mutex mu_;
  // Key: the label values joined by '\xff' (a byte no UTF-8 text holds).
  std::unordered_map<std::string, std::pair<std::vector<std::string>, std::unique_ptr<Child>>>
      children_;
};

using CounterFamily = Family<Counter>;
using GaugeFamily = Family<Gauge>;
using HistogramFamily = Family<Histogram>;

// The metrics of one server. Each server in a process (slipway dev runs four) has its own, so
// each /metrics shows only its own.
class Registry {
 public:
  Registry();
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  CounterFamily& AddCounter(std::string name, std::string help,
                            std::vector<std::string> label_names = {});
  GaugeFamily& AddGauge(std::string name, std::string help,
                        std::vector<std::string> label_names = {});
  HistogramFamily& AddHistogram(std::string name, std::string help,
                                std::vector<std::string> label_names,
                                std::vector<double> upper_bounds = LatencyBuckets());

  // The page GET /metrics answers with (Content-Type kExpositionContentType).
  std::string Exposition() const;

 private:
  struct Entry;
  Entry& Add(Type type, std::string name, std::string help, std::vector<std::string> labels,
             std::vector<double> buckets);

  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<Entry>, std::less<>> families_;
};

// The metrics every slipway server has: slipway_build_info{service,version} (always 1) and
// process_start_time_seconds (Unix time the registry was made, about when the server started).
void AddProcessMetrics(Registry& registry, std::string_view service);

inline constexpr std::string_view kExpositionContentType = "text/plain; version=0.0.4; charset=utf-8";

// The text format's escaping: in label values backslash, double quote and line feed; in help
// texts backslash and line feed.
std::string EscapeLabelValue(std::string_view value);
std::string EscapeHelp(std::string_view help);
// A sample value as the format writes it: "3", "0.25", "+Inf", "-Inf", "NaN".
std::string FormatValue(double value);

// ---------------------------------------------------------------------------------------------

namespace internal {
std::string JoinKey(std::initializer_list<std::string_view> values, size_t expected,
                    const std::string& family);
std::string JoinKey(const std::vector<std::string>& values, size_t expected,
                    const std::string& family);
template <typename Child>
std::unique_ptr<Child> MakeChild(const std::vector<double>& buckets) {
  if constexpr (std::is_same_v<Child, Histogram>) {
    return std::make_unique<Histogram>(buckets);
  } else {
    return std::make_unique<Child>();
  }
}
}  // namespace internal

template <typename Child>
template <typename Values>
Child& Family<Child>::Find(const Values& values) {
  std::string key = internal::JoinKey(values, label_names_.size(), name_);
  {
    std::shared_lock lock(mu_);
    auto it = children_.find(key);
    if (it != children_.end()) return *it->second.second;
  }
  std::unique_lock lock(mu_);
  auto& slot = children_[key];
  if (!slot.second) {
    slot.first.assign(values.begin(), values.end());
    slot.second = internal::MakeChild<Child>(buckets_);
  }
  return *slot.second;
}

template <typename Child>
Child& Family<Child>::With(std::initializer_list<std::string_view> values) {
  return Find(values);
}

template <typename Child>
Child& Family<Child>::With(const std::vector<std::string>& values) {
  return Find(values);
}

}  // namespace slipway::metrics
