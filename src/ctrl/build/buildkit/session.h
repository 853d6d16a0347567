// A BuildKit session: a small gRPC server of ours that the daemon calls back through a stream it
// accepted from us (Control/Session). slipway's session serves registry credentials
// (moby.filesync.v1.Auth/Credentials) and the health check the daemon uses to keep it alive.
//
// How the bytes flow: Control/Session is a bidirectional stream of BytesMessage; the daemon
// speaks HTTP/2 as the *client* inside it. We give one end of a socketpair to a port-less
// grpc::Server (AddInsecureChannelFromFd) and copy bytes between the other end and the stream.
// A Solve names the session by id (SolveRequest.Session); attach it only when it is needed,
// because a Solve that names a session the daemon never saw waits for it.
#pragma once

#include <memory>
#include <string>

#include "base/status.h"
#include "ctrl/build/buildkit/registry_credentials.h"

namespace grpc {
class Channel;
}

namespace slipway::ctrl::build::buildkit {

class Session {
 public:
  // Opens the session on the daemon behind `channel`. The session lives until destroyed.
  static Result<std::unique_ptr<Session>> Attach(std::shared_ptr<grpc::Channel> channel,
                                                 RegistryCredentials credentials);
  virtual ~Session() = default;
  virtual const std::string& id() const = 0;
};

}  // namespace slipway::ctrl::build::buildkit
