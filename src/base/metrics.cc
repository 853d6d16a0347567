#include "base/metrics.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace slipway::metrics {
namespace {

[[noreturn]] void Misuse(const std::string& what) {
  std::fprintf(stderr, "slipway metrics: %s\n", what.c_str());
  std::abort();
}

bool ValidName(std::string_view name, bool allow_colon) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                  (allow_colon && c == ':');
    bool digit = c >= '0' && c <= '9';
    if (!(letter || (i > 0 && digit))) return false;
  }
  return true;
}

std::string_view TypeName(Type type) {
  switch (type) {
    case Type::kCounter:
      return "counter";
    case Type::kGauge:
      return "gauge";
    case Type::kHistogram:
      return "histogram";
  }
  return "untyped";
}

void AddAtomic(std::atomic<double>& target, double by) {
  target.fetch_add(by, std::memory_order_relaxed);
}

// `{a="x",b="y"}` (with extra appended last, for a histogram's le), or "" without labels.
std::string LabelSet(const std::vector<std::string>& names, const std::vector<std::string>& values,
                     std::string_view extra_name = {}, std::string_view extra_value = {}) {
  if (names.empty() && extra_name.empty()) return "";
  std::string out = "{";
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += ',';
    out += names[i];
    out += "=\"";
    out += EscapeLabelValue(values[i]);
    out += '"';
  }
  if (!extra_name.empty()) {
    if (!names.empty()) out += ',';
    out += extra_name;
    out += "=\"";
    out += extra_value;
    out += '"';
  }
  out += '}';
  return out;
}

template <typename Child>
using SortedChildren = std::vector<std::pair<const std::vector<std::string>*, const Child*>>;

// The family's children in label-value order, read under its lock. Children are never removed,
// so the pointers stay valid after the lock is released.
template <typename Child, typename Map>
SortedChildren<Child> Sorted(const Map& children, std::shared_mutex& mu) {
  SortedChildren<Child> out;
  {
    std::shared_lock lock(mu);
    out.reserve(children.size());
    for (const auto& [key, entry] : children) out.emplace_back(&entry.first, entry.second.get());
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return *a.first < *b.first; });
  return out;
}

}  // namespace

void Counter::Increment(double by) {
  if (!(by > 0)) return;
  AddAtomic(value_, by);
}

void Gauge::Add(double by) { AddAtomic(value_, by); }

Histogram::Histogram(const std::vector<double>& upper_bounds)
    : bounds_(upper_bounds), counts_(new std::atomic<uint64_t>[upper_bounds.size() + 1]) {
  for (size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0, std::memory_order_relaxed);
}

void Histogram::Observe(double value) {
  // Buckets are "less than or equal": a value on a bound counts in that bound's bucket.
  size_t bucket = std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin();
  counts_[bucket].fetch_add(1, std::memory_order_relaxed);
  AddAtomic(sum_, value);
}

Histogram::Snapshot Histogram::Read() const {
  Snapshot s;
  s.cumulative.resize(bounds_.size() + 1);
  uint64_t running = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    running += counts_[i].load(std::memory_order_relaxed);
    s.cumulative[i] = running;
  }
  s.count = running;
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

const std::vector<double>& LatencyBuckets() {
  static const std::vector<double> kBuckets = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                               0.5,   1,    2.5,   5,    10};
  return kBuckets;
}

const std::vector<double>& LongTaskBuckets() {
  static const std::vector<double> kBuckets = {0.1, 0.5, 1,   2.5, 5,   10,
                                               30,  60,  120, 300, 600, 1800};
  return kBuckets;
}

std::string EscapeLabelValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string EscapeHelp(std::string_view help) {
  std::string out;
  out.reserve(help.size());
  for (char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string FormatValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  // Whole numbers (counts, bytes) without an exponent up to 2^53, where doubles stay exact.
  if (value == std::floor(value) && std::fabs(value) < 9007199254740992.0) {
    return fmt::format("{}", static_cast<int64_t>(value));
  }
  return fmt::format("{}", value);
}

namespace internal {

template <typename Values>
std::string Join(const Values& values, size_t expected, const std::string& family) {
  if (values.size() != expected) {
    Misuse(fmt::format("{} has {} label names but was given {} label values", family, expected,
                       values.size()));
  }
  std::string key;
  for (const auto& v : values) {
    key.append(v.data(), v.size());
    key += '\xff';
  }
  return key;
}

std::string JoinKey(std::initializer_list<std::string_view> values, size_t expected,
                    const std::string& family) {
  return Join(values, expected, family);
}

std::string JoinKey(const std::vector<std::string>& values, size_t expected,
                    const std::string& family) {
  return Join(values, expected, family);
}

}  // namespace internal

struct Registry::Entry {
  Type type;
  std::unique_ptr<CounterFamily> counter;
  std::unique_ptr<GaugeFamily> gauge;
  std::unique_ptr<HistogramFamily> histogram;

  const std::vector<std::string>& label_names() const {
    switch (type) {
      case Type::kCounter:
        return counter->label_names_;
      case Type::kGauge:
        return gauge->label_names_;
      case Type::kHistogram:
        break;
    }
    return histogram->label_names_;
  }
};

Registry::Registry() = default;
Registry::~Registry() = default;

Registry::Entry& Registry::Add(Type type, std::string name, std::string help,
                               std::vector<std::string> labels, std::vector<double> buckets) {
  if (!ValidName(name, /*allow_colon=*/true)) Misuse("invalid metric name \"" + name + "\"");
  for (const auto& label : labels) {
    if (!ValidName(label, false) || label.starts_with("__") ||
        (type == Type::kHistogram && label == "le")) {
      Misuse("invalid label name \"" + label + "\" on " + name);
    }
  }
  if (type == Type::kHistogram && !std::is_sorted(buckets.begin(), buckets.end())) {
    Misuse("the buckets of " + name + " are not in increasing order");
  }
  std::lock_guard lock(mu_);
  auto it = families_.find(name);
  if (it != families_.end()) {
    Entry& existing = *it->second;
    bool same = existing.type == type && existing.label_names() == labels &&
                (type != Type::kHistogram || existing.histogram->buckets_ == buckets);
    if (!same) Misuse(name + " is registered twice with different definitions");
    return existing;
  }
  auto entry = std::make_unique<Entry>();
  entry->type = type;
  switch (type) {
    case Type::kCounter:
      entry->counter.reset(new CounterFamily(name, std::move(help), std::move(labels), {}));
      break;
    case Type::kGauge:
      entry->gauge.reset(new GaugeFamily(name, std::move(help), std::move(labels), {}));
      break;
    case Type::kHistogram:
      entry->histogram.reset(
          new HistogramFamily(name, std::move(help), std::move(labels), std::move(buckets)));
      break;
  }
  Entry& added = *entry;
  families_.emplace(std::move(name), std::move(entry));
  return added;
}

// A family without labels has exactly one child: made at once, so it reads 0 before first use
// instead of being absent.
CounterFamily& Registry::AddCounter(std::string name, std::string help,
                                    std::vector<std::string> label_names) {
  bool plain = label_names.empty();
  CounterFamily& f =
      *Add(Type::kCounter, std::move(name), std::move(help), std::move(label_names), {}).counter;
  if (plain) f.With({});
  return f;
}

GaugeFamily& Registry::AddGauge(std::string name, std::string help,
                                std::vector<std::string> label_names) {
  bool plain = label_names.empty();
  GaugeFamily& f =
      *Add(Type::kGauge, std::move(name), std::move(help), std::move(label_names), {}).gauge;
  if (plain) f.With({});
  return f;
}

HistogramFamily& Registry::AddHistogram(std::string name, std::string help,
                                        std::vector<std::string> label_names,
                                        std::vector<double> upper_bounds) {
  bool plain = label_names.empty();
  HistogramFamily& f = *Add(Type::kHistogram, std::move(name), std::move(help),
                            std::move(label_names), std::move(upper_bounds))
                            .histogram;
  if (plain) f.With({});
  return f;
}

void AddProcessMetrics(Registry& registry, std::string_view service) {
#ifdef SLIPWAY_VERSION
  std::string_view version = SLIPWAY_VERSION;
#else
  std::string_view version = "unknown";
#endif
  registry.AddGauge("slipway_build_info", "Always 1; the labels say which server and version",
                    {"service", "version"})
      .With({service, version})
      .Set(1);
  auto started = std::chrono::duration<double>(
      std::chrono::system_clock::now().time_since_epoch());
  registry.AddGauge("process_start_time_seconds", "When the server started, in Unix seconds")
      .With({})
      .Set(std::floor(started.count()));
}

std::string Registry::Exposition() const {
  std::vector<const Entry*> entries;
  {
    std::lock_guard lock(mu_);
    for (const auto& [name, entry] : families_) entries.push_back(entry.get());
  }
  std::string out;
  auto header = [&out](const auto& family, Type type) {
    out += "# HELP " + family.name_ + " " + EscapeHelp(family.help_) + "\n";
    out += "# TYPE " + family.name_ + " " + std::string(TypeName(type)) + "\n";
  };
  auto scalar = [&out](const auto& family, const auto* child, const std::vector<std::string>& values) {
    out += family.name_ + LabelSet(family.label_names_, values) + " " +
           FormatValue(child->value()) + "\n";
  };
  for (const Entry* e : entries) {
    switch (e->type) {
      case Type::kCounter:
        header(*e->counter, e->type);
        for (auto [values, child] : Sorted<Counter>(e->counter->children_, e->counter->mu_)) {
          scalar(*e->counter, child, *values);
        }
        break;
      case Type::kGauge:
        header(*e->gauge, e->type);
        for (auto [values, child] : Sorted<Gauge>(e->gauge->children_, e->gauge->mu_)) {
          scalar(*e->gauge, child, *values);
        }
        break;
      case Type::kHistogram: {
        const HistogramFamily& f = *e->histogram;
        header(f, e->type);
        for (auto [values, child] : Sorted<Histogram>(f.children_, f.mu_)) {
          Histogram::Snapshot s = child->Read();
          for (size_t i = 0; i < s.cumulative.size(); ++i) {
            std::string le = i < f.buckets_.size() ? FormatValue(f.buckets_[i]) : "+Inf";
            out += f.name_ + "_bucket" + LabelSet(f.label_names_, *values, "le", le) + " " +
                   FormatValue(static_cast<double>(s.cumulative[i])) + "\n";
          }
          std::string labels = LabelSet(f.label_names_, *values);
          out += f.name_ + "_sum" + labels + " " + FormatValue(s.sum) + "\n";
          out += f.name_ + "_count" + labels + " " + FormatValue(static_cast<double>(s.count)) +
                 "\n";
        }
        break;
      }
    }
  }
  return out;
}

}  // namespace slipway::metrics
