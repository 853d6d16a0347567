#include "cli/ctrl_api.h"

#include <fmt/format.h>

#include <thread>

#include "cli/interrupt.h"

namespace slipway::cli {

CtrlApi::CtrlApi(Connection connection, std::chrono::milliseconds timeout)
    : connection_(std::move(connection)) {
  net::ConnectClient::Options o;
  o.base_url = connection_.control_plane;
  o.bearer_token = connection_.token;
  o.binary = true;
  o.timeout = timeout;
  o.connect_timeout = std::chrono::seconds(5);
  o.headers.Add("User-Agent", "slipway-cli/" SLIPWAY_VERSION);
  client_ = std::make_unique<net::ConnectClient>(o);
}

Status CtrlApi::Call(std::string_view service, std::string_view method,
                     const google::protobuf::Message& request,
                     google::protobuf::Message* response) const {
  std::string procedure = net::ConnectProcedure(fmt::format("slipway.ctrl.v1.{}", service), method);
  Status st = client_->CallUnary(procedure, request, response);
  if (st.ok()) return st;
  return ExplainCtrlError(st, connection_);
}

Status CtrlApi::Watch(std::string_view service, std::string_view method,
                      const google::protobuf::Message& request,
                      const google::protobuf::Message& response_prototype,
                      const std::function<bool(const google::protobuf::Message&)>& on_message,
                      const std::function<bool()>& cancelled) const {
  std::string procedure = net::ConnectProcedure(fmt::format("slipway.ctrl.v1.{}", service), method);
  net::StreamCallOptions call;
  call.cancelled = cancelled;
  return client_->CallServerStream(procedure, request, response_prototype, on_message, call);
}

Status CtrlApi::CallPatiently(std::string_view service, std::string_view method,
                              const google::protobuf::Message& request,
                              google::protobuf::Message* response,
                              std::chrono::milliseconds patience,
                              const std::function<void(const Status&)>& on_retry) const {
  auto give_up_at = std::chrono::steady_clock::now() + patience;
  while (true) {
    Status st = Call(service, method, request, response);
    if (st.ok() || !IsTransientCtrlError(st) || std::chrono::steady_clock::now() >= give_up_at) {
      return st;
    }
    if (on_retry) on_retry(st);
    for (int i = 0; i < 20; ++i) {
      if (Interrupted()) return Status::Canceled("interrupted");
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
}

Status ExplainCtrlError(const Status& status, const Connection& c) {
  switch (status.code()) {
    case Code::kUnavailable:
      return Status::Unavailable(fmt::format(
          "cannot reach the control plane at {} ({}): is it running? Start one with `slipway "
          "dev`, or point --control-plane (SLIPWAY_CONTROL_PLANE) at yours",
          c.control_plane, status.message()));
    case Code::kDeadlineExceeded:
      return Status::DeadlineExceeded(
          fmt::format("the control plane at {} did not answer in time ({}); try again in a moment",
                      c.control_plane, status.message()));
    case Code::kUnauthenticated:
      return Status::Unauthenticated(fmt::format(
          "the control plane at {} refused the API token from {} ({}): check the token, or "
          "take the one `slipway dev` wrote",
          c.control_plane, c.token_source, status.message()));
    case Code::kUnimplemented:
      return Status::Unimplemented(fmt::format(
          "the server at {} is not a slipway control plane, or an older one ({}): check "
          "--control-plane",
          c.control_plane, status.message()));
    default:
      return status;
  }
}

bool IsTransientCtrlError(const Status& status) {
  return status.code() == Code::kUnavailable || status.code() == Code::kDeadlineExceeded;
}

}  // namespace slipway::cli
