// Load on one `slipway dev`: N concurrent `slipway deploy`s of distinct projects (default 100)
// and P concurrent pollers of GetDeployment (default 1,000), each on its own connection.
// Prints, beside baselines from the same run: the wall time of the N deploys against one deploy
// alone; the resident memory of the `slipway dev` process (ctrl, krane, gateway and store in
// one) before and after, per deployment; the poll latencies against one poller alone; and every
// deploy that did not end READY and every poll that failed.
//
// Usage: load_bench [DEPLOYS] [POLLERS] [MAX_CONNECTIONS]. MAX_CONNECTIONS is ctrl's
// --max-connections (default 1024): more pollers than that get ctrl's 503 naming the setting,
// printed among the errors. Needs scripts/services.sh dockerd registry base-images.
#include <gtest/gtest.h>  // dev_stack.h reports through gtest's macros

#include <cstdio>

#include "integration/e2e/load.h"

using namespace slipway::testing;

namespace {

void PrintPolls(const char* what, const ConcurrentPolls& p) {
  std::printf("%-26s %6d answered, %4d errors, p50 %7.1f ms, p99 %7.1f ms, max %7.1f ms\n", what,
              p.answered, p.error_count, Percentile(p.latencies_ms, 0.5),
              Percentile(p.latencies_ms, 0.99), Percentile(p.latencies_ms, 1.0));
  for (const auto& e : p.errors) std::printf("  error: %s\n", e.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  const int deploys = argc > 1 ? std::atoi(argv[1]) : 100;
  const int pollers = argc > 2 ? std::atoi(argv[2]) : 1000;
  std::vector<std::string> flags = {"--max-concurrent-builds", "0"};  // one workspace's deploys
  if (argc > 3) {
    flags.push_back("--max-connections");
    flags.push_back(argv[3]);
  }
  std::printf("ctrl's --max-connections  %s\n", argc > 3 ? argv[3] : "1024 (default)");
  DevStack stack(flags);
  if (!stack.ready()) {
    std::fprintf(stderr, "slipway dev did not start:\n%s\n", stack.log().c_str());
    return 1;
  }
  // Baseline: one deploy alone, after which the stack has loaded everything once.
  ConcurrentDeploys one = DeployConcurrently(stack, "warm", 1);
  if (one.ids.size() != 1) {
    std::fprintf(stderr, "the warm-up deploy failed: %s\n", one.failures.front().c_str());
    return 1;
  }
  const long rss_before = RssKib(stack.pid());
  ConcurrentDeploys many = DeployConcurrently(stack, "load", deploys);
  std::this_thread::sleep_for(std::chrono::seconds(2));  // let finished runs free what they held
  const long rss_after = RssKib(stack.pid());
  std::printf("one deploy alone           %7.1f s\n", one.seconds);
  std::printf("%4d concurrent deploys     %7.1f s, %zu READY, %zu not\n", deploys, many.seconds,
              many.ids.size(), many.failures.size());
  for (size_t i = 0; i < many.failures.size() && i < 5; ++i) {
    std::printf("  %s\n", many.failures[i].c_str());
  }
  std::printf("slipway dev RSS            %7.1f MiB before, %7.1f MiB after: %+.3f MiB per deployment "
              "(limit 1 MiB)\n",
              rss_before / 1024.0, rss_after / 1024.0,
              (rss_after - rss_before) / 1024.0 / std::max(1, deploys));
  std::vector<std::string> ids = many.ids;
  ids.push_back(one.ids.front());
  PrintPolls("1 poller (baseline)", PollConcurrently(stack, ids, 1, 20, std::chrono::milliseconds(50)));
  char label[64];
  std::snprintf(label, sizeof label, "%d concurrent pollers", pollers);
  ConcurrentPolls polls = PollConcurrently(stack, ids, pollers, 10, std::chrono::milliseconds(100));
  PrintPolls(label, polls);
  std::printf("slipway dev RSS after polls %6.1f MiB\n", RssKib(stack.pid()) / 1024.0);
  return many.failures.empty() && polls.error_count == 0 ? 0 : 1;
}
