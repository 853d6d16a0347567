// Where a BuildKit daemon listens and how to reach it: a unix socket, or TCP with mutual TLS (the
// way Depot's builder machines and an operator's BuildKit fleet are reached).
#pragma once

#include <memory>
#include <string>

#include "base/status.h"

namespace grpc {
class Channel;
}

namespace slipway::ctrl::build::buildkit {

struct BuildkitEndpoint {
  std::string host;         // "unix:///run/buildkit/buildkitd.sock" or "tcp://10.0.0.5:1234"
  // PEM contents (not paths). All three of ca/cert/key for mTLS; none for plain TCP or unix.
  std::string tls_ca;
  std::string tls_cert;
  std::string tls_key;
  std::string tls_server_name;  // the name the daemon's certificate carries; default: the host
};

// Reads the PEM files named by BUILDKIT_TLS_CA / _CERT / _KEY into an endpoint. A file that
// cannot be read, or only some of the three given, is InvalidArgument naming the setting.
Result<BuildkitEndpoint> LoadEndpoint(const std::string& host, const std::string& ca_file,
                                      const std::string& cert_file, const std::string& key_file,
                                      const std::string& server_name);

// A gRPC channel to the daemon (lazy: nothing is dialed until the first call). The channel
// accepts the large error metadata BuildKit sends (stack traces) and large status messages.
Result<std::shared_ptr<grpc::Channel>> Dial(const BuildkitEndpoint& endpoint);

}  // namespace slipway::ctrl::build::buildkit
