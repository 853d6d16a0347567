// The CLI's line to the control plane: Connect calls to ctrl's services
// (proto/slipway/ctrl/v1) with the resolved connection, and failures a person can act on: an
// unreachable ctrl names its address and suggests `slipway dev`; a refused token says where the
// token came from; the server's own messages pass through unchanged. Thread-safe.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string_view>

#include "base/status.h"
#include "cli/credentials.h"
#include "net/connect.h"

namespace slipway::cli {

class CtrlApi {
 public:
  explicit CtrlApi(Connection connection,
                   std::chrono::milliseconds timeout = std::chrono::seconds(30));

  // Calls `method` of ctrl's `service` ("BuildService", "DeploymentService").
  Status Call(std::string_view service, std::string_view method,
              const google::protobuf::Message& request, google::protobuf::Message* response) const;

  // For reads (Get*, List*), which are safe to repeat: rides out a control plane that is away
  // (restarting, overloaded) for up to `patience`, calling on_retry before each new attempt.
  Status CallPatiently(std::string_view service, std::string_view method,
                       const google::protobuf::Message& request,
                       google::protobuf::Message* response, std::chrono::milliseconds patience,
                       const std::function<void(const Status&)>& on_retry) const;

  // Calls the server-streaming `method`: on_message gets each message (of the prototype's type)
  // as it arrives. Without a deadline of its own: ends when ctrl ends the stream, on_message
  // returns false, or `cancelled` (asked about once a second) says so; returns what
  // net::ConnectClient::CallServerStream does, unexplained: the caller decides between falling
  // back to polling and ExplainCtrlError.
  Status Watch(std::string_view service, std::string_view method,
               const google::protobuf::Message& request,
               const google::protobuf::Message& response_prototype,
               const std::function<bool(const google::protobuf::Message&)>& on_message,
               const std::function<bool()>& cancelled) const;

  const Connection& connection() const { return connection_; }

 private:
  Connection connection_;
  std::unique_ptr<net::ConnectClient> client_;
};

// The Status a person sees for a failed call to the control plane of `connection`.
Status ExplainCtrlError(const Status& status, const Connection& connection);

// Whether a failed call is worth repeating later (the control plane restarting, a timeout):
// what a poll loop rides out.
bool IsTransientCtrlError(const Status& status);

}  // namespace slipway::cli
