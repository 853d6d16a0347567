// The real buildkitd the tests build on (scripts/buildkitd.sh starts it; `scripts/buildkitd.sh
// env` prints these settings): a unix socket, a loopback TLS port with client certificates from
// its CA and from a stranger's, and buildctl for what only the daemon's own tool does (prune).
// Environment variables of the same names override the defaults.
#pragma once

#include <cstdlib>
#include <string>

#include "support/test_support.h"

namespace slipway::testing {

struct BuildkitPeer {
  std::string host;       // unix:///run/slipway-buildkit/buildkitd.sock
  std::string tls_host;   // tcp://127.0.0.1:1234
  std::string tls_ca;
  std::string tls_cert;
  std::string tls_key;
  std::string rogue_cert;  // signed by another CA: the daemon must refuse it
  std::string rogue_key;
  std::string buildctl;
};

inline std::string EnvOr(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : fallback;
}

inline BuildkitPeer Buildkit() {
  const std::string tls = EnvOr("BUILDKITD_STATE", "/var/lib/slipway-buildkit") + "/tls/";
  BuildkitPeer p;
  p.host = EnvOr("BUILDKIT_HOST", "unix:///run/slipway-buildkit/buildkitd.sock");
  p.tls_host = EnvOr("BUILDKIT_TLS_HOST", "tcp://127.0.0.1:1234");
  p.tls_ca = EnvOr("BUILDKIT_TLS_CA", tls + "ca.pem");
  p.tls_cert = EnvOr("BUILDKIT_TLS_CERT", tls + "client.pem");
  p.tls_key = EnvOr("BUILDKIT_TLS_KEY", tls + "client.key");
  p.rogue_cert = tls + "rogue-client.pem";
  p.rogue_key = tls + "rogue-client.key";
  p.buildctl = EnvOr("BUILDCTL", "/var/cache/slipway/buildkit-v0.34.2/bin/buildctl");
  return p;
}

// Empty when the daemon answers; else what to do about it.
inline std::string BuildkitProblem() {
  BuildkitPeer p = Buildkit();
  CommandResult r = RunCommand(p.buildctl + " --addr " + p.host + " debug workers 2>&1");
  if (r.exit_code == 0) return "";
  return "buildkitd does not answer at " + p.host + " (start it with scripts/services.sh "
         "buildkitd): " + r.output;
}

// `buildctl prune --all`: the daemon forgets every cached layer it is not using right now.
inline CommandResult PruneBuildkit() {
  BuildkitPeer p = Buildkit();
  return RunCommand(p.buildctl + " --addr " + p.host + " prune --all 2>&1");
}

}  // namespace slipway::testing
