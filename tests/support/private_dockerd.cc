#include "support/private_dockerd.h"

#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <thread>

namespace slipway::testing {
PrivateDockerd::PrivateDockerd() {
  socket_ = (dir_.path() / "docker.sock").string();
  Start();
}

PrivateDockerd::~PrivateDockerd() {
  if (ProcessRunning(pid())) Docker("ps -aq | xargs -r /usr/bin/docker -H " + host() + " rm -f");
  Stop();
  // The daemon leaves its network namespace file mounted under the exec root; the directory
  // cannot be removed while it is.
  RunCommand("grep -F ' " + dir_.str() + "/' /proc/mounts | cut -d' ' -f2 | sort -r | "
             "xargs -r umount -l");
}

pid_t PrivateDockerd::pid() const {
  return static_cast<pid_t>(std::atol(ReadFile(dir_.path() / "dockerd.pid").c_str()));
}

bool PrivateDockerd::Start() {
  ++starts_;
  const std::string d = dir_.str();
  const std::string log = d + "/dockerd-" + std::to_string(starts_) + ".log";
  // Started from a shell in the background so it is no child of the test: the test stops it by
  // the PID in its pidfile, as an operator's service manager would.
  RunCommand("setsid /usr/sbin/dockerd --data-root " + d + "/root --exec-root " + d +
             "/exec --pidfile " + d + "/dockerd.pid -H unix://" + socket_ +
             " --bridge=none --iptables=false --ip-masq=false >" + log + " 2>&1 </dev/null &");
  for (int i = 0; i < 300; ++i) {
    if (Docker("version --format '{{.Server.Version}}'").exit_code == 0) {
      problem_.clear();
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  problem_ = "the private dockerd did not answer on " + socket_ + " within 30 s:\n" + ReadFile(log);
  return false;
}

void PrivateDockerd::Stop() {
  const pid_t daemon = pid();
  if (!ProcessRunning(daemon)) return;
  ::kill(daemon, SIGTERM);
  // dockerd gives its containers 10 s to stop, then kills them; then it exits.
  for (int i = 0; i < 600 && ProcessRunning(daemon); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (ProcessRunning(daemon)) ::kill(daemon, SIGKILL);
}

CommandResult PrivateDockerd::Docker(const std::string& args) const {
  return RunCommand("/usr/bin/docker -H " + host() + " " + args);
}

}  // namespace slipway::testing
