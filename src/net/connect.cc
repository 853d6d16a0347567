#include "net/connect.h"

#include "base/metrics.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include <charconv>
#include <exception>

namespace slipway::net {
namespace {

namespace pb = google::protobuf;

constexpr std::string_view kJson = "application/json";
constexpr std::string_view kProto = "application/proto";

enum class Codec { kJson, kProto };

// The media type of a Content-Type value, lower-cased, parameters dropped:
// "Application/JSON; charset=utf-8" -> "application/json".
std::string MediaType(std::string_view content_type) {
  std::string_view media = content_type.substr(0, content_type.find(';'));
  while (!media.empty() && media.back() == ' ') media.remove_suffix(1);
  while (!media.empty() && media.front() == ' ') media.remove_prefix(1);
  return ToLower(media);
}

std::optional<Codec> CodecFor(std::string_view content_type) {
  std::string media = MediaType(content_type);
  if (media == kJson) return Codec::kJson;
  if (media == kProto) return Codec::kProto;
  return std::nullopt;
}

std::string_view ContentTypeOf(Codec codec) { return codec == Codec::kJson ? kJson : kProto; }

Status Decode(Codec codec, const std::string& bytes, pb::Message* message, std::string_view what) {
  if (codec == Codec::kProto) {
    if (!message->ParseFromString(bytes)) {
      return Status::InvalidArgument(std::string(what) + " is not a valid binary " +
                                     message->GetTypeName() +
                                     " message; send the protobuf encoding of that type.");
    }
    return Status::Ok();
  }
  // An empty JSON body is the empty message, as connect-go and connect-es accept it.
  if (bytes.find_first_not_of(" \t\r\n") == std::string::npos) {
    message->Clear();
    return Status::Ok();
  }
  pb::util::JsonParseOptions options;
  // Fields this build does not know are ignored, so newer clients can talk to older servers.
  options.ignore_unknown_fields = true;
  auto st = pb::util::JsonStringToMessage(bytes, message, options);
  if (!st.ok()) {
    return Status::InvalidArgument(std::string(what) + " is not valid JSON for " +
                                   message->GetTypeName() + " (" + std::string(st.message()) +
                                   "); send a JSON object using the proto field names.");
  }
  return Status::Ok();
}

Result<std::string> Encode(Codec codec, const pb::Message& message) {
  std::string out;
  if (codec == Codec::kProto) {
    if (!message.SerializeToString(&out)) {
      return Status::Internal("cannot serialize " + message.GetTypeName() +
                              " (required fields missing?); this is a bug in the handler.");
    }
    return out;
  }
  auto st = pb::util::MessageToJsonString(message, &out, pb::util::JsonPrintOptions());
  if (!st.ok()) {
    return Status::Internal("cannot write " + message.GetTypeName() + " as JSON: " +
                            std::string(st.message()) + "; this is a bug in the handler.");
  }
  return out;
}

// {"code":"not_found","message":"..."}: the Connect unary error body.
std::string ErrorBody(const Status& status) {
  pb::Struct error;
  (*error.mutable_fields())["code"].set_string_value(std::string(CodeName(status.code())));
  if (!status.message().empty()) {
    // Messages quote what clients sent, which need not be UTF-8; JSON must be.
    (*error.mutable_fields())["message"].set_string_value(ToValidUtf8(status.message()));
  }
  std::string out;
  if (!pb::util::MessageToJsonString(error, &out).ok()) {
    out = R"({"code":"internal"})";
  }
  return out;
}

// Both return the code sent, which the router's metrics count the call under.
Code SendError(ResponseWriter& response, const Status& status, int http_status,
               Headers headers = {}) {
  headers.Set("Content-Type", std::string(kJson));
  (void)response.Send(http_status, headers, ErrorBody(status));
  return status.code();
}

Code SendError(ResponseWriter& response, const Status& status, Headers headers = {}) {
  return SendError(response, status, HttpStatusForCode(status.code()), std::move(headers));
}

// Connect-Timeout-Ms: at most 10 ASCII digits (spec).
Result<std::optional<std::chrono::milliseconds>> ParseTimeout(const Headers& headers) {
  auto value = headers.Get("Connect-Timeout-Ms");
  if (!value) return std::optional<std::chrono::milliseconds>();
  int64_t ms = 0;
  auto [end, ec] = std::from_chars(value->data(), value->data() + value->size(), ms);
  if (value->empty() || value->size() > 10 || ec != std::errc() ||
      end != value->data() + value->size() || ms < 0) {
    return Status::InvalidArgument("Connect-Timeout-Ms \"" + std::string(*value) +
                                   "\" is not a number of milliseconds (up to 10 digits).");
  }
  return std::optional<std::chrono::milliseconds>(std::chrono::milliseconds(ms));
}

}  // namespace

int HttpStatusForCode(Code code) {
  switch (code) {
    case Code::kOk:
      return 200;
    case Code::kCanceled:
      return 499;
    case Code::kUnknown:
      return 500;
    case Code::kInvalidArgument:
      return 400;
    case Code::kDeadlineExceeded:
      return 504;
    case Code::kNotFound:
      return 404;
    case Code::kAlreadyExists:
      return 409;
    case Code::kPermissionDenied:
      return 403;
    case Code::kResourceExhausted:
      return 429;
    case Code::kFailedPrecondition:
      return 400;
    case Code::kAborted:
      return 409;
    case Code::kOutOfRange:
      return 400;
    case Code::kUnimplemented:
      return 501;
    case Code::kInternal:
      return 500;
    case Code::kUnavailable:
      return 503;
    case Code::kDataLoss:
      return 500;
    case Code::kUnauthenticated:
      return 401;
  }
  return 500;
}

Code CodeForHttpStatus(int status) {
  switch (status) {
    case 200:
      return Code::kOk;
    case 400:
      return Code::kInternal;
    case 401:
      return Code::kUnauthenticated;
    case 403:
      return Code::kPermissionDenied;
    case 404:
      return Code::kUnimplemented;
    case 429:
    case 502:
    case 503:
    case 504:
      return Code::kUnavailable;
    default:
      return Code::kUnknown;
  }
}

std::string ConnectProcedure(std::string_view service, std::string_view method) {
  std::string out = "/";
  out += service;
  out += '/';
  out += method;
  return out;
}

std::string CallContext::bearer_token() const {
  auto value = request_.headers.Get("Authorization");
  if (!value || value->size() < 7 || !EqualsIgnoreCase(value->substr(0, 7), "Bearer ")) return "";
  std::string_view token = value->substr(7);
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
  return std::string(token);
}

// ---------------------------------------------------------------------------------------------
// Envelopes and end-of-stream messages

std::string EncodeEnvelope(uint8_t flags, std::string_view message) {
  const auto size = static_cast<uint32_t>(message.size());
  std::string out;
  out.reserve(kEnvelopeHeaderBytes + message.size());
  out.push_back(static_cast<char>(flags));
  for (int shift = 24; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((size >> shift) & 0xff));
  out.append(message);
  return out;
}

Status EnvelopeReader::Feed(std::string_view bytes,
                            const std::function<Status(Envelope)>& on_envelope) {
  pending_.append(bytes);
  size_t pos = 0;
  Status result;
  while (pending_.size() - pos >= kEnvelopeHeaderBytes) {
    const auto* head = reinterpret_cast<const unsigned char*>(pending_.data() + pos);
    const uint64_t length = (uint64_t{head[1]} << 24) | (uint64_t{head[2]} << 16) |
                            (uint64_t{head[3]} << 8) | uint64_t{head[4]};
    if (length > max_message_bytes_) {
      result = Status::ResourceExhausted("a streamed message of " + std::to_string(length) +
                                         " bytes is larger than the limit of " +
                                         std::to_string(max_message_bytes_) +
                                         " bytes; send smaller messages.");
      break;
    }
    if (pending_.size() - pos - kEnvelopeHeaderBytes < length) break;
    Envelope envelope;
    envelope.flags = head[0];
    envelope.message = pending_.substr(pos + kEnvelopeHeaderBytes, length);
    pos += kEnvelopeHeaderBytes + length;
    result = on_envelope(std::move(envelope));
    if (!result.ok()) break;
  }
  pending_.erase(0, pos);
  return result;
}

std::string EndStreamJson(const Status& status, const Headers& trailers) {
  pb::Struct end;
  auto& fields = *end.mutable_fields();
  if (!status.ok()) {
    auto& error = *fields["error"].mutable_struct_value()->mutable_fields();
    error["code"].set_string_value(std::string(CodeName(status.code())));
    if (!status.message().empty()) error["message"].set_string_value(status.message());
  }
  if (trailers.size() > 0) {
    auto& metadata = *fields["metadata"].mutable_struct_value()->mutable_fields();
    for (const auto& [name, value] : trailers) {
      metadata[ToLower(name)].mutable_list_value()->add_values()->set_string_value(value);
    }
  }
  std::string out;
  if (!pb::util::MessageToJsonString(end, &out).ok()) out = R"({"error":{"code":"internal"}})";
  return out;
}

Status ParseEndStreamJson(std::string_view json, Headers* trailers) {
  auto malformed = [&](std::string_view why) {
    return Status::Internal("the server ended the stream with a malformed end-of-stream message (" +
                            std::string(why) + "): " + std::string(json.substr(0, 200)) +
                            "; check that the URL points at a Connect server.");
  };
  pb::Struct end;
  pb::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  if (!pb::util::JsonStringToMessage(std::string(json), &end, options).ok()) {
    return malformed("not a JSON object");
  }
  const auto& fields = end.fields();
  if (auto metadata = fields.find("metadata"); metadata != fields.end() && trailers != nullptr) {
    if (!metadata->second.has_struct_value()) return malformed("\"metadata\" is not an object");
    for (const auto& [name, values] : metadata->second.struct_value().fields()) {
      if (!values.has_list_value()) return malformed("a metadata value is not an array");
      for (const auto& v : values.list_value().values()) {
        if (!v.has_string_value()) return malformed("a metadata value is not a string");
        trailers->Add(name, v.string_value());
      }
    }
  }
  auto error = fields.find("error");
  if (error == fields.end()) return Status::Ok();
  if (!error->second.has_struct_value()) return malformed("\"error\" is not an object");
  const auto& e = error->second.struct_value().fields();
  auto code = e.find("code");
  if (code == e.end() || !code->second.has_string_value()) {
    return malformed("its error has no code");
  }
  Code c = CodeFromName(code->second.string_value());
  if (c == Code::kOk) c = Code::kUnknown;  // "ok" is no error code
  auto message = e.find("message");
  std::string text = message != e.end() && message->second.has_string_value()
                         ? message->second.string_value()
                         : "";
  if (text.empty()) {
    text = "the server ended the stream with " + code->second.string_value() + " and no message.";
  }
  return Status(c, std::move(text));
}

// ---------------------------------------------------------------------------------------------
// Server

struct ConnectRouter::Method {
  std::unique_ptr<pb::Message> request_prototype;
  std::unique_ptr<pb::Message> response_prototype;
  UnaryFunction unary;          // set for a unary method
  ServerStreamFunction stream;  // set for a server-streaming one
};

struct ConnectRouter::RpcMetrics {
  metrics::CounterFamily* requests;
  metrics::HistogramFamily* duration;
};

ConnectRouter::ConnectRouter() : ConnectRouter(Options()) {}
ConnectRouter::ConnectRouter(Options options) : options_(options) {}
ConnectRouter::~ConnectRouter() = default;

void ConnectRouter::SetMetrics(metrics::Registry& registry) {
  metrics_ = std::make_unique<RpcMetrics>(RpcMetrics{
      &registry.AddCounter("slipway_rpc_requests_total",
                           "Connect calls answered, by procedure and the code answered with",
                           {"procedure", "code"}),
      &registry.AddHistogram("slipway_rpc_duration_seconds",
                             "Time from a Connect call's arrival to its answer, by procedure",
                             {"procedure"})});
}

void ConnectRouter::RegisterUnary(std::string procedure,
                                  std::unique_ptr<pb::Message> request_prototype,
                                  std::unique_ptr<pb::Message> response_prototype,
                                  UnaryFunction function) {
  auto method = std::make_unique<Method>();
  method->request_prototype = std::move(request_prototype);
  method->response_prototype = std::move(response_prototype);
  method->unary = std::move(function);
  methods_[std::move(procedure)] = std::move(method);
}

void ConnectRouter::RegisterServerStream(std::string procedure,
                                         std::unique_ptr<pb::Message> request_prototype,
                                         std::unique_ptr<pb::Message> response_prototype,
                                         ServerStreamFunction function) {
  auto method = std::make_unique<Method>();
  method->request_prototype = std::move(request_prototype);
  method->response_prototype = std::move(response_prototype);
  method->stream = std::move(function);
  methods_[std::move(procedure)] = std::move(method);
}

void ConnectRouter::SetAuthorizer(Authorizer authorizer) { authorizer_ = std::move(authorizer); }

bool ConnectRouter::Handles(std::string_view path) const {
  return methods_.find(path) != methods_.end();
}

HttpHandler ConnectRouter::AsHandler() const {
  return [this](const HttpRequest& request, BodyReader& body, ResponseWriter& response) {
    Serve(request, body, response);
  };
}

namespace {

// Connect-Protocol-Version is optional, but a version we do not speak must not be guessed at.
Status CheckProtocolVersion(const HttpRequest& request) {
  if (auto version = request.headers.Get("Connect-Protocol-Version"); version && *version != "1") {
    return Status::InvalidArgument("Connect-Protocol-Version \"" + std::string(*version) +
                                   "\" is not supported; this server speaks 1.");
  }
  return Status::Ok();
}

// The call's deadline from Connect-Timeout-Ms, counted from now.
Result<std::optional<std::chrono::steady_clock::time_point>> CallDeadline(
    const HttpRequest& request) {
  SLIPWAY_ASSIGN_OR_RETURN(auto timeout, ParseTimeout(request.headers));
  std::optional<std::chrono::steady_clock::time_point> deadline;
  if (timeout) deadline = std::chrono::steady_clock::now() + *timeout;
  return deadline;
}

// The whole request body, refused above limit (before reading, when Content-Length says so,
// so a client waiting on 100-continue never sends the bytes).
Result<std::string> ReadRequestBody(const HttpRequest& request, BodyReader& body, uint64_t limit) {
  std::string limit_hint = "the request body for " + request.path + " is larger than " +
                           std::to_string(limit) + " bytes; send a smaller message.";
  if (request.content_length && *request.content_length > limit) {
    return Status::ResourceExhausted(limit_hint);
  }
  Result<std::string> bytes = body.ReadAll(limit);
  if (!bytes.ok()) {
    return bytes.status().code() == Code::kResourceExhausted
               ? Status::ResourceExhausted(limit_hint)
               : bytes.status().WithContext("reading the request body");
  }
  return bytes;
}

// Runs the authorizer, then the handler (unless the deadline already passed), turning a throw
// into Internal: a throw is a bug, but it must not take the connection (or the process) with it.
Status Invoke(const ConnectRouter::Authorizer& authorizer, CallContext& ctx,
              const std::function<Status()>& handler) {
  Status result;
  if (authorizer) result = authorizer(ctx);
  if (result.ok() && ctx.deadline_passed()) {
    result = Status::DeadlineExceeded("the call's deadline (Connect-Timeout-Ms) passed before " +
                                      ctx.procedure() + " started; allow a longer timeout.");
  }
  if (!result.ok()) return result;
  try {
    return handler();
  } catch (const std::exception& e) {
    return Status::Internal("the handler for " + ctx.procedure() + " failed unexpectedly (" +
                            e.what() + "); report this with the server's log.");
  }
}

constexpr std::string_view kConnectJson = "application/connect+json";
constexpr std::string_view kConnectProto = "application/connect+proto";

std::optional<Codec> StreamCodecFor(std::string_view content_type) {
  std::string media = MediaType(content_type);
  if (media == kConnectJson) return Codec::kJson;
  if (media == kConnectProto) return Codec::kProto;
  return std::nullopt;
}

std::string_view StreamContentTypeOf(Codec codec) {
  return codec == Codec::kJson ? kConnectJson : kConnectProto;
}

// A stream's response on an HttpServer connection: the head (status 200, the handler's headers)
// goes out with the first message or the end, each message as one chunk.
class ResponseStream final : public ServerStream {
 public:
  ResponseStream(ResponseWriter& response, Codec codec) : response_(response), codec_(codec) {}

  void Attach(CallContext* ctx) { ctx_ = ctx; }

  Status Send(const pb::Message& message) override {
    if (!failure_.ok()) return failure_;
    SLIPWAY_ASSIGN_OR_RETURN(std::string bytes, Encode(codec_, message));
    Status sent = Write(EncodeEnvelope(0, bytes));
    if (sent.ok()) ++sent_;
    return sent;
  }

  bool Cancelled() const override {
    return !failure_.ok() || response_.Abandoned() || (ctx_ != nullptr && ctx_->deadline_passed());
  }

  uint64_t messages_sent() const override { return sent_; }

  // Ends the stream with its outcome; a client that can no longer be written to loses the
  // connection instead of a complete-looking end.
  // Returns the outcome's code.
  Code End(const Status& outcome) {
    static const Headers kNone;
    const Headers& trailers = ctx_ != nullptr ? ctx_->response_trailers() : kNone;
    if (!Write(EncodeEnvelope(kEnvelopeEndStream, EndStreamJson(outcome, trailers))).ok() ||
        !response_.Finish().ok()) {
      response_.Abort();
    }
    return outcome.code();
  }

 private:
  Status Write(const std::string& bytes) {
    if (!failure_.ok()) return failure_;
    if (!response_.head_written()) {
      Headers headers = ctx_ != nullptr ? ctx_->response_headers() : Headers();
      headers.Set("Content-Type", std::string(StreamContentTypeOf(codec_)));
      failure_ = response_.WriteHead(200, headers, std::nullopt);
      if (!failure_.ok()) return failure_;
    }
    failure_ = response_.Write(bytes);
    return failure_;
  }

  ResponseWriter& response_;
  const Codec codec_;
  CallContext* ctx_ = nullptr;
  Status failure_;
  uint64_t sent_ = 0;
};

}  // namespace

void ConnectRouter::Serve(const HttpRequest& request, BodyReader& body,
                          ResponseWriter& response) const {
  if (!metrics_) {
    (void)ServeCall(request, body, response);
    return;
  }
  auto started = std::chrono::steady_clock::now();
  Code code = ServeCall(request, body, response);
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  // A procedure nobody registered is counted under one name: the label set stays bounded
  // whatever paths clients send.
  std::string_view procedure = Handles(request.path) ? std::string_view(request.path) : "unknown";
  metrics_->requests->With({procedure, CodeName(code)}).Increment();
  metrics_->duration->With({procedure}).Observe(seconds);
}

Code ConnectRouter::ServeCall(const HttpRequest& request, BodyReader& body,
                              ResponseWriter& response) const {
  auto it = methods_.find(request.path);
  if (it == methods_.end()) {
    // Unknown procedures are 404 (a route that does not exist), with the Connect code that
    // clients expect for them.
    return SendError(response,
              Status::Unimplemented("no procedure " + request.path +
                                    " on this server; check the service and method names "
                                    "and that client and server use the same API version."),
              404);
  }
  if (request.method != "POST") {
    return SendError(response,
              Status::Unimplemented(request.path + " accepts only POST (got " + request.method +
                                    "); send the request as a POST."),
              405, Headers{{"Allow", "POST"}});
  }
  const Method& method = *it->second;
  return method.stream ? ServeStream(method, request, body, response)
                       : ServeUnary(method, request, body, response);
}

Code ConnectRouter::ServeUnary(const Method& method, const HttpRequest& request, BodyReader& body,
                               ResponseWriter& response) const {
  std::optional<Codec> codec = CodecFor(request.headers.GetOr("Content-Type", ""));
  if (!codec) {
    return SendError(response,
              Status::InvalidArgument(
                  "unsupported Content-Type \"" + request.headers.GetOr("Content-Type", "") +
                  "\" for " + request.path + "; send application/json or application/proto."),
              415, Headers{{"Accept-Post", "application/json, application/proto"}});
  }
  if (Status st = CheckProtocolVersion(request); !st.ok()) {
    return SendError(response, st);
  }
  if (auto encoding = request.headers.Get("Content-Encoding");
      encoding && !EqualsIgnoreCase(*encoding, "identity")) {
    return SendError(response,
              Status::Unimplemented("Content-Encoding \"" + std::string(*encoding) +
                                    "\" is not supported; send the request uncompressed."),
              Headers{{"Accept-Encoding", "identity"}});
  }
  auto deadline = CallDeadline(request);
  if (!deadline.ok()) {
    return SendError(response, deadline.status());
  }
  Result<std::string> bytes = ReadRequestBody(request, body, options_.max_request_bytes);
  if (!bytes.ok()) {
    return SendError(response, bytes.status());
  }

  std::unique_ptr<pb::Message> req(method.request_prototype->New());
  std::unique_ptr<pb::Message> resp(method.response_prototype->New());
  if (Status st = Decode(*codec, *bytes, req.get(), "the request body"); !st.ok()) {
    return SendError(response, st);
  }

  CallContext ctx(request, request.path, *deadline);
  Status result = Invoke(authorizer_, ctx, [&] { return method.unary(ctx, *req, resp.get()); });
  if (!result.ok()) {
    return SendError(response, result, ctx.response_headers());
  }
  Result<std::string> out = Encode(*codec, *resp);
  if (!out.ok()) {
    return SendError(response, out.status(), ctx.response_headers());
  }
  Headers headers = ctx.response_headers();
  headers.Set("Content-Type", std::string(ContentTypeOf(*codec)));
  (void)response.Send(200, headers, *out);
  return Code::kOk;
}

Code ConnectRouter::ServeStream(const Method& method, const HttpRequest& request, BodyReader& body,
                                ResponseWriter& response) const {
  std::optional<Codec> codec = StreamCodecFor(request.headers.GetOr("Content-Type", ""));
  if (!codec) {
    // A client that does not speak Connect streaming must not take the 200 of a streamed
    // error for success (spec: "Streaming-Request").
    return SendError(response,
              Status::InvalidArgument("unsupported Content-Type \"" +
                                      request.headers.GetOr("Content-Type", "") + "\" for " +
                                      request.path +
                                      ", a server-streaming procedure; send "
                                      "application/connect+json or application/connect+proto."),
              415, Headers{{"Accept-Post", "application/connect+json, application/connect+proto"}});
  }
  // From here on every answer is a stream: HTTP 200 and an end-of-stream message.
  ResponseStream stream(response, *codec);
  if (Status st = CheckProtocolVersion(request); !st.ok()) return stream.End(st);
  if (auto encoding = request.headers.Get("Connect-Content-Encoding");
      encoding && !EqualsIgnoreCase(*encoding, "identity")) {
    return stream.End(Status::Unimplemented("Connect-Content-Encoding \"" + std::string(*encoding) +
                                            "\" is not supported; send the request uncompressed."));
  }
  auto deadline = CallDeadline(request);
  if (!deadline.ok()) return stream.End(deadline.status());
  Result<std::string> bytes =
      ReadRequestBody(request, body, options_.max_request_bytes + kEnvelopeHeaderBytes);
  if (!bytes.ok()) return stream.End(bytes.status());

  // A server-streaming request is exactly one enveloped message.
  std::vector<Envelope> envelopes;
  EnvelopeReader reader(options_.max_request_bytes);
  Status cut = reader.Feed(*bytes, [&](Envelope e) {
    envelopes.push_back(std::move(e));
    return Status::Ok();
  });
  if (!cut.ok()) return stream.End(cut);
  if (reader.partial() || envelopes.size() != 1) {
    return stream.End(Status::InvalidArgument(
        "the request body for " + request.path + " holds " + std::to_string(envelopes.size()) +
        (reader.partial() ? " whole envelope(s) and a cut one" : " envelope(s)") +
        "; a server-streaming call sends exactly one enveloped message."));
  }
  if (envelopes[0].flags != 0) {
    return stream.End(
        Status::InvalidArgument("the request message for " + request.path + " has envelope flags " +
                                std::to_string(envelopes[0].flags) +
                                "; send it uncompressed and without the end-of-stream flag."));
  }
  std::unique_ptr<pb::Message> req(method.request_prototype->New());
  if (Status st = Decode(*codec, envelopes[0].message, req.get(), "the request message");
      !st.ok()) {
    return stream.End(st);
  }

  CallContext ctx(request, request.path, *deadline);
  stream.Attach(&ctx);
  return stream.End(Invoke(authorizer_, ctx, [&] { return method.stream(ctx, *req, stream); }));
}

// ---------------------------------------------------------------------------------------------
// Client

ConnectClient::ConnectClient(Options options)
    : options_(std::move(options)), http_(std::make_unique<HttpClient>()) {
  while (!options_.base_url.empty() && options_.base_url.back() == '/')
    options_.base_url.pop_back();
}

ConnectClient::~ConnectClient() = default;

namespace {

// The Status a non-200 answer stands for: the Connect error body when there is one, else the
// code the spec infers from the HTTP status.
Status ErrorFromResponse(const ClientResponse& res, const std::string& url) {
  if (MediaType(res.headers.GetOr("Content-Type", "")) == kJson) {
    pb::Struct error;
    pb::util::JsonParseOptions options;
    options.ignore_unknown_fields = true;
    if (pb::util::JsonStringToMessage(res.body, &error, options).ok()) {
      const auto& fields = error.fields();
      auto code = fields.find("code");
      if (code != fields.end() && code->second.has_string_value()) {
        auto message = fields.find("message");
        std::string text = message != fields.end() && message->second.has_string_value()
                               ? message->second.string_value()
                               : "";
        if (text.empty()) {
          text = "the server answered " + url + " with " + code->second.string_value() +
                 " and no message.";
        }
        Code c = CodeFromName(code->second.string_value());
        // "ok" is not an error code; a server sending it with a failure status is confused.
        if (c == Code::kOk) c = Code::kUnknown;
        return Status(c, std::move(text));
      }
    }
  }
  Code code = CodeForHttpStatus(res.status);
  if (code == Code::kOk) code = Code::kUnknown;
  std::string excerpt = res.body.substr(0, 200);
  return Status(code, "the server answered " + url + " with HTTP " + std::to_string(res.status) +
                          " " + std::string(StatusReason(res.status)) + " and no Connect error" +
                          (excerpt.empty() ? "" : ": " + excerpt) +
                          "; check that the URL points at a Connect server.");
}

// What the streaming and unary calls send alike.
ClientRequest ConnectRequest(const ConnectClient::Options& options, std::string_view procedure,
                             std::string_view content_type) {
  ClientRequest req;
  req.method = "POST";
  req.url = options.base_url + std::string(procedure);
  req.unix_socket = options.unix_socket;
  req.idempotent = false;
  req.headers = options.headers;
  req.headers.Set("Content-Type", std::string(content_type));
  req.headers.Set("Connect-Protocol-Version", "1");
  if (!options.bearer_token.empty()) {
    req.headers.Set("Authorization", "Bearer " + options.bearer_token);
  }
  req.connect_timeout = options.connect_timeout;
  return req;
}

}  // namespace

Status ConnectClient::CallUnary(std::string_view procedure, const pb::Message& request,
                                pb::Message* response) const {
  Codec codec = options_.binary ? Codec::kProto : Codec::kJson;
  ClientRequest req = ConnectRequest(options_, procedure, ContentTypeOf(codec));
  if (options_.timeout.count() > 0) {
    req.headers.Set("Connect-Timeout-Ms", std::to_string(options_.timeout.count()));
    req.timeout = options_.timeout;
  }
  req.max_response_bytes = options_.max_response_bytes;
  SLIPWAY_ASSIGN_OR_RETURN(req.body, Encode(codec, request));

  SLIPWAY_ASSIGN_OR_RETURN(ClientResponse res, http_->Do(req));
  if (res.status != 200) return ErrorFromResponse(res, req.url);
  std::optional<Codec> got = CodecFor(res.headers.GetOr("Content-Type", ""));
  if (got != codec) {
    return Status::Internal("the server answered " + req.url + " with Content-Type \"" +
                            res.headers.GetOr("Content-Type", "") + "\" instead of " +
                            std::string(ContentTypeOf(codec)) +
                            "; check that the URL points at a Connect server.");
  }
  if (response == nullptr) return Status::Ok();
  Status st = Decode(codec, res.body, response, "the response from " + req.url);
  if (!st.ok()) return Status::Internal(st.message());
  return Status::Ok();
}

Status ConnectClient::CallServerStream(std::string_view procedure, const pb::Message& request,
                                       const pb::Message& response_prototype,
                                       const std::function<bool(const pb::Message&)>& on_message,
                                       const StreamCallOptions& call) const {
  const Codec codec = options_.binary ? Codec::kProto : Codec::kJson;
  ClientRequest req = ConnectRequest(options_, procedure, StreamContentTypeOf(codec));
  if (call.timeout.count() > 0) {
    req.headers.Set("Connect-Timeout-Ms", std::to_string(call.timeout.count()));
    req.timeout = call.timeout;
  }
  // A stream may rightly stay quiet for minutes (a long build step); only the deadline and the
  // caller end it.
  req.low_speed_timeout = std::chrono::milliseconds(0);
  req.cancelled = call.cancelled;
  SLIPWAY_ASSIGN_OR_RETURN(std::string message, Encode(codec, request));
  req.body = EncodeEnvelope(0, message);

  const std::string& url = req.url;
  int status = 0;
  Headers headers;
  std::string error_body;  // a non-stream answer's body (an error), bounded
  EnvelopeReader reader(options_.max_response_bytes);
  std::optional<Status> outcome;  // from the end-of-stream message
  bool stopped = false;           // on_message asked to stop
  Status failure;                 // why this side stopped reading

  req.on_headers = [&](int got, const Headers& got_headers) {
    status = got;
    headers = got_headers;
    if (status != 200) return true;  // an error: its body says which
    std::optional<Codec> answered = StreamCodecFor(headers.GetOr("Content-Type", ""));
    if (answered != codec) {
      failure = Status::Internal("the server answered " + url + " with Content-Type \"" +
                                 headers.GetOr("Content-Type", "") + "\" instead of " +
                                 std::string(StreamContentTypeOf(codec)) +
                                 "; check that the URL points at a Connect server.");
      return false;
    }
    return true;
  };
  req.on_body = [&](std::string_view chunk) {
    if (status != 200) {
      if (error_body.size() < 64 * 1024) error_body.append(chunk.substr(0, 64 * 1024));
      return true;
    }
    Status read = reader.Feed(chunk, [&](Envelope envelope) -> Status {
      if (outcome) {
        return Status::Internal("the server sent more of the stream from " + url +
                                " after its end-of-stream message; this is a bug in the server.");
      }
      if (envelope.flags & kEnvelopeCompressed) {
        return Status::Internal("the server sent a compressed message on " + url +
                                " although this client asked for none.");
      }
      if (envelope.end_stream()) {
        outcome = ParseEndStreamJson(envelope.message, nullptr);
        return Status::Ok();
      }
      std::unique_ptr<pb::Message> m(response_prototype.New());
      Status decoded =
          Decode(codec, envelope.message, m.get(), "a message of the stream from " + url);
      if (!decoded.ok()) return Status::Internal(decoded.message());
      if (!on_message(*m)) {
        stopped = true;
        return Status::Canceled("the caller stopped reading the stream");
      }
      return Status::Ok();
    });
    if (read.ok()) return true;
    if (!stopped) failure = read;
    return false;
  };

  Result<ClientResponse> done = http_->Do(req);
  if (stopped) return Status::Ok();
  if (!failure.ok()) return failure;
  if (outcome) return *outcome;  // the stream ended; how the connection closed then is moot
  if (!done.ok()) {
    return Status(done.status().code(),
                  "the stream from " + url + " broke: " + done.status().message());
  }
  if (status != 200) {
    ClientResponse answer;
    answer.status = status;
    answer.headers = headers;
    answer.body = std::move(error_body);
    return ErrorFromResponse(answer, url);
  }
  return Status::Unavailable("the stream from " + url + " ended without its end-of-stream message" +
                             (reader.partial() ? " (in the middle of a message)" : "") +
                             "; the server stopped or something between cut it, try again.");
}

}  // namespace slipway::net
