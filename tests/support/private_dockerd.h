// A dockerd of the test's own, so a test can stop and start the engine under krane without
// touching the shared daemon other tests run on: its own --data-root, --exec-root, --pidfile
// and unix socket under a temporary directory, `--bridge=none --iptables=false` like every
// daemon on these machines, and its own containerd (started by dockerd under the exec root).
// Images come from the local registry (127.0.0.1:5000), which 127.0.0.0/8 makes an insecure
// registry by default.
#pragma once

#include <sys/types.h>

#include <string>

#include "support/test_support.h"

namespace slipway::testing {

class PrivateDockerd {
 public:
  // Starts the daemon; problem() says why when it did not answer /_ping.
  PrivateDockerd();
  // Removes every container, stops the daemon by its PID, unmounts what it left and deletes
  // the directory.
  ~PrivateDockerd();
  PrivateDockerd(const PrivateDockerd&) = delete;
  PrivateDockerd& operator=(const PrivateDockerd&) = delete;

  // SIGTERM to the daemon's PID and wait for it to exit (its containers stop with it, as on a
  // daemon restart without live-restore).
  void Stop();
  // Starts it again on the same data; false (and problem()) when it does not answer.
  bool Start();

  const std::string& problem() const { return problem_; }
  std::string host() const { return "unix://" + socket_; }  // for DOCKER_HOST / --docker-host
  pid_t pid() const;

  // `docker ARGS` against this daemon (Debian's client), with its output.
  CommandResult Docker(const std::string& args) const;

 private:
  TempDir dir_;
  std::string socket_;
  std::string problem_;
  int starts_ = 0;
};

}  // namespace slipway::testing
