// The metrics library's hot path beside its baseline, in the same run: a plain relaxed atomic
// increment (the least a thread-safe counter can cost), a Counter kept by the caller, a labelled
// child looked up on every call (what the gateway does per request: two label values), and a
// histogram observation; each on 1 and 2 threads, so contention shows.
//
// Usage: metrics_bench [Google Benchmark flags]
#include <benchmark/benchmark.h>

#include <atomic>

#include "base/metrics.h"

namespace {

using slipway::metrics::Registry;

std::atomic<double> g_baseline{0};

void BM_BaselineRelaxedAtomicAdd(benchmark::State& state) {
  for (auto _ : state) g_baseline.fetch_add(1, std::memory_order_relaxed);
}

Registry& SharedRegistry() {
  static Registry registry;
  return registry;
}

void BM_CounterKeptByCaller(benchmark::State& state) {
  auto& counter = SharedRegistry().AddCounter("bench_kept_total", "kept").With({});
  for (auto _ : state) counter.Increment();
}

void BM_CounterLookedUpByTwoLabels(benchmark::State& state) {
  auto& family = SharedRegistry().AddCounter("bench_lookup_total", "lookup", {"host", "code"});
  for (auto _ : state) family.With({"myapp-production.example.com", "200"}).Increment();
}

void BM_HistogramObserveLookedUp(benchmark::State& state) {
  auto& family = SharedRegistry().AddHistogram("bench_seconds", "latency", {"host"});
  double v = 0;
  for (auto _ : state) {
    family.With({"myapp-production.example.com"}).Observe(v);
    v = v > 10 ? 0 : v + 0.013;
  }
}

}  // namespace

BENCHMARK(BM_BaselineRelaxedAtomicAdd)->Threads(1)->Threads(2);
BENCHMARK(BM_CounterKeptByCaller)->Threads(1)->Threads(2);
BENCHMARK(BM_CounterLookedUpByTwoLabels)->Threads(1)->Threads(2);
BENCHMARK(BM_HistogramObserveLookedUp)->Threads(1)->Threads(2);
BENCHMARK_MAIN();
