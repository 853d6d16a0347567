#include "cli/interrupt.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>

namespace slipway::cli {
namespace {

std::atomic<bool> interrupted{false};

void OnInterrupt(int sig) {
  if (interrupted.exchange(true)) _exit(128 + sig);  // the second one: stop now
}

}  // namespace

void CatchInterrupts() {
  struct sigaction sa = {};
  sa.sa_handler = OnInterrupt;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

bool Interrupted() { return interrupted.load(); }

}  // namespace slipway::cli
