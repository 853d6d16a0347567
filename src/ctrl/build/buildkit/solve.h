// One image build on a BuildKit daemon: Solve with the Dockerfile frontend over a context URL
// the daemon downloads itself, the image exported and pushed, the project's layer cache
// imported from and exported to the registry, progress streamed as build log lines.
// Used by the buildkit backend (a daemon the operator runs) and the depot backend (a machine
// Depot provisions per build).
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <string>

#include "base/status.h"
#include "ctrl/build/backend.h"
#include "ctrl/build/buildkit/registry_credentials.h"

namespace grpc {
class Channel;
}

namespace slipway::ctrl::build::buildkit {

struct SolveSpec {
  std::string build_id;     // names the BuildKit job (with a random suffix: reruns differ)
  std::string context_url;  // presigned GET of the context archive
  std::string dockerfile = "Dockerfile";
  std::string target;       // the Dockerfile stage to build; empty: the last one
  std::map<std::string, std::string> build_args;
  std::string platforms;    // "linux/amd64" or "linux/amd64,linux/arm64"
  std::string image;        // where to push: "127.0.0.1:5000/app:dep_x"
  std::string cache_ref;    // registry cache of the project; empty: no cache import/export
  bool no_cache = false;    // run every step again (the cache is still exported for next time)
};

struct SolveTarget {
  std::shared_ptr<grpc::Channel> channel;
  std::string daemon;  // how errors name the daemon: "unix:///run/buildkit/buildkitd.sock"
  bool tls = false;    // the channel uses mutual TLS
  const RegistryCredentials* credentials = nullptr;  // a session serves them when non-empty
};

// Builds and pushes; the result's image is the pushed reference pinned by digest
// ("127.0.0.1:5000/app:dep_x@sha256:..."). Errors are one sentence that says what happened and
// what to do: kUnavailable when the daemon cannot be reached (worth retrying), a terminal code
// for everything the daemon refused (a failing RUN with its step and last output lines, no
// Dockerfile, an unknown base image, a refused push, a rejected certificate), kCanceled when
// *cancel became true (the Solve is canceled on the daemon too).
Result<BuildResult> Solve(const SolveTarget& target, const SolveSpec& spec, const BuildLogSink& log,
                          const std::atomic<bool>* cancel);

}  // namespace slipway::ctrl::build::buildkit
