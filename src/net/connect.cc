#include "net/connect.h"

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
    (*error.mutable_fields())["message"].set_string_value(status.message());
  }
  std::string out;
  if (!pb::util::MessageToJsonString(error, &out).ok()) {
    out = R"({"code":"internal"})";
  }
  return out;
}

void SendError(ResponseWriter& response, const Status& status, int http_status,
               Headers headers = {}) {
  headers.Set("Content-Type", std::string(kJson));
  (void)response.Send(http_status, headers, ErrorBody(status));
}

void SendError(ResponseWriter& response, const Status& status, Headers headers = {}) {
  SendError(response, status, HttpStatusForCode(status.code()), std::move(headers));
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
// Server

struct ConnectRouter::Method {
  std::unique_ptr<pb::Message> request_prototype;
  std::unique_ptr<pb::Message> response_prototype;
  UnaryFunction function;
};

ConnectRouter::ConnectRouter() : ConnectRouter(Options()) {}
ConnectRouter::ConnectRouter(Options options) : options_(options) {}
ConnectRouter::~ConnectRouter() = default;

void ConnectRouter::RegisterUnary(std::string procedure,
                                  std::unique_ptr<pb::Message> request_prototype,
                                  std::unique_ptr<pb::Message> response_prototype,
                                  UnaryFunction function) {
  auto method = std::make_unique<Method>();
  method->request_prototype = std::move(request_prototype);
  method->response_prototype = std::move(response_prototype);
  method->function = std::move(function);
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

void ConnectRouter::Serve(const HttpRequest& request, BodyReader& body,
                          ResponseWriter& response) const {
  auto it = methods_.find(request.path);
  if (it == methods_.end()) {
    // Unknown procedures are 404 (a route that does not exist), with the Connect code that
    // clients expect for them.
    SendError(response,
              Status::Unimplemented("no procedure " + request.path +
                                    " on this server; check the service and method names "
                                    "and that client and server use the same API version."),
              404);
    return;
  }
  const Method& method = *it->second;

  if (request.method != "POST") {
    SendError(response,
              Status::Unimplemented(request.path + " accepts only POST (got " + request.method +
                                    "); send the request as a POST."),
              405, Headers{{"Allow", "POST"}});
    return;
  }
  std::optional<Codec> codec = CodecFor(request.headers.GetOr("Content-Type", ""));
  if (!codec) {
    SendError(response,
              Status::InvalidArgument(
                  "unsupported Content-Type \"" + request.headers.GetOr("Content-Type", "") +
                  "\" for " + request.path + "; send application/json or application/proto."),
              415, Headers{{"Accept-Post", "application/json, application/proto"}});
    return;
  }
  // Connect-Protocol-Version is optional, but a version we do not speak must not be guessed at.
  if (auto version = request.headers.Get("Connect-Protocol-Version"); version && *version != "1") {
    SendError(response,
              Status::InvalidArgument("Connect-Protocol-Version \"" + std::string(*version) +
                                      "\" is not supported; this server speaks 1."));
    return;
  }
  if (auto encoding = request.headers.Get("Content-Encoding");
      encoding && !EqualsIgnoreCase(*encoding, "identity")) {
    SendError(response,
              Status::Unimplemented("Content-Encoding \"" + std::string(*encoding) +
                                    "\" is not supported; send the request uncompressed."),
              Headers{{"Accept-Encoding", "identity"}});
    return;
  }
  auto timeout = ParseTimeout(request.headers);
  if (!timeout.ok()) {
    SendError(response, timeout.status());
    return;
  }
  std::optional<std::chrono::steady_clock::time_point> deadline;
  if (*timeout) deadline = std::chrono::steady_clock::now() + **timeout;

  std::string limit_hint = "the request body for " + request.path + " is larger than " +
                           std::to_string(options_.max_request_bytes) +
                           " bytes; send a smaller message.";
  // Refused before reading, so a client waiting on 100-continue never sends the bytes.
  if (request.content_length && *request.content_length > options_.max_request_bytes) {
    SendError(response, Status::ResourceExhausted(limit_hint));
    return;
  }
  Result<std::string> bytes = body.ReadAll(options_.max_request_bytes);
  if (!bytes.ok()) {
    SendError(response, bytes.status().code() == Code::kResourceExhausted
                            ? Status::ResourceExhausted(limit_hint)
                            : bytes.status().WithContext("reading the request body"));
    return;
  }

  std::unique_ptr<pb::Message> req(method.request_prototype->New());
  std::unique_ptr<pb::Message> resp(method.response_prototype->New());
  if (Status st = Decode(*codec, *bytes, req.get(), "the request body"); !st.ok()) {
    SendError(response, st);
    return;
  }

  CallContext ctx(request, request.path, deadline);
  Status result;
  if (authorizer_) result = authorizer_(ctx);
  if (result.ok() && ctx.deadline_passed()) {
    result = Status::DeadlineExceeded("the call's deadline (Connect-Timeout-Ms) passed before " +
                                      request.path + " started; allow a longer timeout.");
  }
  if (result.ok()) {
    try {
      result = method.function(ctx, *req, resp.get());
    } catch (const std::exception& e) {
      // Handlers report failure through Status; a throw is a bug, but it must not take the
      // connection (or the process) with it.
      result = Status::Internal("the handler for " + request.path + " failed unexpectedly (" +
                                e.what() + "); report this with the server's log.");
    }
  }
  if (!result.ok()) {
    SendError(response, result, ctx.response_headers());
    return;
  }
  Result<std::string> out = Encode(*codec, *resp);
  if (!out.ok()) {
    SendError(response, out.status(), ctx.response_headers());
    return;
  }
  Headers headers = ctx.response_headers();
  headers.Set("Content-Type", std::string(ContentTypeOf(*codec)));
  (void)response.Send(200, headers, *out);
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

}  // namespace

Status ConnectClient::CallUnary(std::string_view procedure, const pb::Message& request,
                                pb::Message* response) const {
  Codec codec = options_.binary ? Codec::kProto : Codec::kJson;
  ClientRequest req;
  req.method = "POST";
  req.url = options_.base_url + std::string(procedure);
  req.unix_socket = options_.unix_socket;
  req.idempotent = false;
  req.headers = options_.headers;
  req.headers.Set("Content-Type", std::string(ContentTypeOf(codec)));
  req.headers.Set("Connect-Protocol-Version", "1");
  if (!options_.bearer_token.empty()) {
    req.headers.Set("Authorization", "Bearer " + options_.bearer_token);
  }
  if (options_.timeout.count() > 0) {
    req.headers.Set("Connect-Timeout-Ms", std::to_string(options_.timeout.count()));
    req.timeout = options_.timeout;
  }
  req.connect_timeout = options_.connect_timeout;
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

}  // namespace slipway::net
