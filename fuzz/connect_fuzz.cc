// The Connect unary server: procedure routing, the Connect headers (Content-Type,
// Connect-Protocol-Version, Content-Encoding, Connect-Timeout-Ms) and the JSON and binary
// protobuf decoding of request bodies, then the encoding of the answer.
//
// Input: a byte choosing the procedure, then header lines ("name: value") up to an empty line,
// then the body. Whatever arrives, the router answers exactly once: 200 with a body of the
// negotiated codec, or an error status with a Connect error body ({"code": ...}) that parses;
// every JSON answer is UTF-8.
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "fuzz_input.h"
#include "net/connect.h"
#include "net/http_server.h"
#include "slipway/ctrl/v1/deployment.pb.h"
#include "slipway/health/v1/health.pb.h"

namespace {

using namespace slipway;
namespace v1 = slipway::ctrl::v1;

class StringBody final : public net::BodyReader {
 public:
  explicit StringBody(std::string_view data) : data_(data) {}
  Result<size_t> Read(char* buf, size_t n) override {
    size_t take = std::min(n, data_.size() - pos_);
    std::memcpy(buf, data_.data() + pos_, take);
    pos_ += take;
    return take;
  }
  uint64_t bytes_read() const override { return pos_; }

 private:
  std::string_view data_;
  size_t pos_ = 0;
};

class RecordingWriter final : public net::ResponseWriter {
 public:
  Status WriteHead(int status, const net::Headers& headers,
                   std::optional<uint64_t> content_length) override {
    SLIPWAY_FUZZ_CHECK(!head_written_);  // one response per call
    head_written_ = true;
    status_ = status;
    headers_ = headers;
    return Status::Ok();
  }
  Status Write(std::string_view data) override {
    SLIPWAY_FUZZ_CHECK(head_written_ && !finished_);
    body_.append(data);
    return Status::Ok();
  }
  Status Finish() override {
    SLIPWAY_FUZZ_CHECK(head_written_ && !finished_);
    finished_ = true;
    return Status::Ok();
  }
  bool head_written() const override { return head_written_; }

  int status_ = 0;
  net::Headers headers_;
  std::string body_;
  bool head_written_ = false;
  bool finished_ = false;
};

const net::ConnectRouter& Router() {
  static net::ConnectRouter* router = [] {
    auto* r = new net::ConnectRouter(net::ConnectRouter::Options{64 * 1024});
    // Echoes: whatever was decoded is encoded again, so both directions see fuzzed messages.
    r->Unary<v1::CreateDeploymentRequest, v1::CreateDeploymentRequest>(
        "/slipway.ctrl.v1.CtrlService/CreateDeployment",
        [](net::CallContext&, const v1::CreateDeploymentRequest& req,
           v1::CreateDeploymentRequest* resp) {
          *resp = req;
          return Status::Ok();
        });
    r->Unary<v1::GetDeploymentResponse, v1::GetDeploymentResponse>(
        "/slipway.ctrl.v1.CtrlService/GetDeployment",
        [](net::CallContext&, const v1::GetDeploymentResponse& req,
           v1::GetDeploymentResponse* resp) {
          *resp = req;
          return Status::Ok();
        });
    r->Unary<health::v1::CheckRequest, health::v1::CheckResponse>(
        "/slipway.health.v1.HealthService/Check",
        [](net::CallContext& ctx, const health::v1::CheckRequest&, health::v1::CheckResponse*) {
          return ctx.bearer_token().empty() ? Status::Unauthenticated("no token; log in first.")
                                            : Status::Ok();
        });
    return r;
  }();
  return *router;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static constexpr std::string_view kPaths[] = {
      "/slipway.ctrl.v1.CtrlService/CreateDeployment", "/slipway.ctrl.v1.CtrlService/GetDeployment",
      "/slipway.health.v1.HealthService/Check", "/slipway.ctrl.v1.CtrlService/Nope"};
  fuzz::FuzzInput in(data, size);
  uint8_t selector = in.Byte();
  net::HttpRequest request;
  request.method = (selector & 0x80) ? "GET" : "POST";
  request.path = std::string(kPaths[selector % std::size(kPaths)]);
  request.target = request.path;
  for (;;) {
    std::string_view line = in.Line();
    if (line.empty()) break;
    size_t colon = line.find(':');
    std::string_view value = colon == std::string_view::npos ? "" : line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    request.headers.Add(std::string(line.substr(0, colon)), std::string(value));
  }
  std::string_view body_bytes = in.Rest();
  if (selector & 0x40) request.content_length = body_bytes.size();
  StringBody body(body_bytes);
  RecordingWriter writer;
  Router().Serve(request, body, writer);

  SLIPWAY_FUZZ_CHECK(writer.head_written_ && writer.finished_);
  // JSON must be UTF-8, or strict clients cannot read the answer.
  if (writer.headers_.GetOr("Content-Type", "") == "application/json") {
    SLIPWAY_FUZZ_CHECK(net::ToValidUtf8(writer.body_) == writer.body_);
  }
  if (writer.status_ != 200) {
    google::protobuf::Struct error;
    SLIPWAY_FUZZ_CHECK(google::protobuf::util::JsonStringToMessage(writer.body_, &error).ok());
    SLIPWAY_FUZZ_CHECK(error.fields().count("code") == 1);
    // No handler here fails with internal: a bad request must be told what is wrong with it.
    SLIPWAY_FUZZ_CHECK(error.fields().at("code").string_value() != "internal");
  }
  return 0;
}
