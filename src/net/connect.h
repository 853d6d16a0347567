// The Connect protocol (https://connectrpc.com/docs/protocol) over HTTP/1.1: unary calls with
// JSON (application/json) and binary protobuf (application/proto) bodies, and server-streaming
// calls (application/connect+json, application/connect+proto) whose messages travel in Connect
// envelopes. A server-side router plugs into HttpServer, and a client runs over HttpClient. Any
// Connect client (connect-es, connect-go, curl with JSON) can call a ConnectRouter;
// ConnectClient can call any Connect server.
//
// Unary errors cross the wire as the JSON body {"code":"not_found","message":"..."} with the
// HTTP status the spec assigns to the code; slipway::Status codes are Connect's, one-to-one.
// A stream always answers HTTP 200 and ends with an end-of-stream envelope (flag 0x02) whose
// JSON carries the error, if any, and the trailing metadata. Each streamed message is written
// to the connection as its own chunk the moment the handler sends it: nothing is buffered whole.
//
// Cheap to include: only google/protobuf/message.h, no generated headers, no Beast, no curl.
#pragma once

#include <google/protobuf/message.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "base/status.h"
#include "net/http.h"
#include "net/http_client.h"
#include "net/http_server.h"

namespace slipway::metrics {
class Registry;
}

namespace slipway::net {

// The HTTP status a Connect error with this code is sent with (spec: "Error Codes").
int HttpStatusForCode(Code code);
// The code a client infers from an HTTP status when the response carries no Connect error body
// (spec: "HTTP to Error Code"; a proxy's 502 page, say).
Code CodeForHttpStatus(int status);

// "/slipway.health.v1.HealthService/Check" from the service's full name and the method name.
std::string ConnectProcedure(std::string_view service, std::string_view method);

// ----- The streaming envelope (spec: "Streaming-Request") ----------------------------------
// 1 flag byte, the message length as 4 bytes big-endian, the message.
inline constexpr uint8_t kEnvelopeCompressed = 0x01;
inline constexpr uint8_t kEnvelopeEndStream = 0x02;
inline constexpr size_t kEnvelopeHeaderBytes = 5;

std::string EncodeEnvelope(uint8_t flags, std::string_view message);

struct Envelope {
  uint8_t flags = 0;
  std::string message;
  bool end_stream() const { return (flags & kEnvelopeEndStream) != 0; }
};

// Cuts a byte stream into envelopes, however the bytes were split on the way (one envelope
// over several reads, several in one read). Not thread-safe; one per stream.
class EnvelopeReader {
 public:
  // An envelope announcing more than max_message_bytes is refused (ResourceExhausted) before
  // its bytes are buffered.
  explicit EnvelopeReader(uint64_t max_message_bytes) : max_message_bytes_(max_message_bytes) {}
  // Takes the next bytes and hands every envelope they complete to on_envelope, in order; stops
  // at, and returns, the first error on_envelope returns.
  Status Feed(std::string_view bytes, const std::function<Status(Envelope)>& on_envelope);
  // True while the bytes of an unfinished envelope are held: a stream that ends now was cut.
  bool partial() const { return !pending_.empty(); }

 private:
  uint64_t max_message_bytes_;
  std::string pending_;
};

// The JSON of an end-of-stream message: {"error":{"code":..,"message":..},"metadata":{..}};
// no "error" for an ok status, "metadata" with every trailer (a name repeated gives several
// values). Names are written lower-case.
std::string EndStreamJson(const Status& status, const Headers& trailers);
// Reads an end-of-stream message: the call's outcome (the error it carries, Ok without one) and
// its trailers into *trailers (when not null). A message that is not such JSON gives Internal.
Status ParseEndStreamJson(std::string_view json, Headers* trailers);

// What a handler knows about its call besides the request message. Lives for one call.
class CallContext {
 public:
  CallContext(const HttpRequest& request, std::string procedure,
              std::optional<std::chrono::steady_clock::time_point> deadline)
      : request_(request), procedure_(std::move(procedure)), deadline_(deadline) {}

  // Every request header as the client sent it (Authorization included).
  const Headers& request_headers() const { return request_.headers; }
  // The token of "Authorization: Bearer <token>", or empty when there is none.
  std::string bearer_token() const;
  const std::string& procedure() const { return procedure_; }
  const std::string& remote_address() const { return request_.remote_address; }
  // From Connect-Timeout-Ms; nullopt when the client set no timeout. A handler that waits
  // should stop by this time point: past it the client has given up.
  std::optional<std::chrono::steady_clock::time_point> deadline() const { return deadline_; }
  bool deadline_passed() const {
    return deadline_ && std::chrono::steady_clock::now() >= *deadline_;
  }
  // Headers sent back with the response, on success and on error. A stream sends them with
  // its first message: set them before that.
  Headers& response_headers() { return response_headers_; }
  const Headers& response_headers() const { return response_headers_; }
  // A stream's trailing metadata, sent in its end-of-stream message (unary calls: unused).
  Headers& response_trailers() { return response_trailers_; }

 private:
  const HttpRequest& request_;
  std::string procedure_;
  std::optional<std::chrono::steady_clock::time_point> deadline_;
  Headers response_headers_;
  Headers response_trailers_;
};

// Where a server-streaming handler sends its messages. Lives for one call; used by the
// handler's thread only.
class ServerStream {
 public:
  virtual ~ServerStream() = default;
  // Writes one message to the client at once (its own envelope, flushed). May block while the
  // client reads slowly, up to the server's write timeout. An error means the client cannot
  // receive it (gone, or the message cannot be encoded): the handler should return.
  virtual Status Send(const google::protobuf::Message& message) = 0;
  // True when nobody waits for more: the client closed the connection, the server is shutting
  // down, or the call's deadline passed. A handler that waits for its next message asks this
  // every so often (say each 250 ms) and returns when it is true.
  virtual bool Cancelled() const = 0;
  // Messages sent so far.
  virtual uint64_t messages_sent() const = 0;
};

// A ServerStream that takes only Response messages.
template <typename Response>
class StreamWriter {
 public:
  explicit StreamWriter(ServerStream& stream) : stream_(stream) {}
  Status Send(const Response& message) { return stream_.Send(message); }
  bool Cancelled() const { return stream_.Cancelled(); }
  uint64_t messages_sent() const { return stream_.messages_sent(); }
  const ServerStream& stream() const { return stream_; }

 private:
  ServerStream& stream_;
};

// Routes POST /<package>.<Service>/<Method> to registered unary and server-streaming handlers.
//
// Register everything before serving; after that the router is read-only and Serve() is safe
// from many threads at once (handlers must be thread-safe themselves). A request that is not a
// registered procedure gets a Connect 404 unimplemented error, so the router can be the whole
// HttpHandler of a server, or be consulted first with Handles().
class ConnectRouter {
 public:
  struct Options {
    // Request bodies above this are refused with resource_exhausted, before being read when
    // Content-Length says so.
    uint64_t max_request_bytes = 4 * 1024 * 1024;
  };
  using UnaryFunction = std::function<Status(CallContext&, const google::protobuf::Message&,
                                             google::protobuf::Message*)>;
  // Runs before every handler; a non-ok Status is sent to the client instead of calling it.
  // Where authentication goes: read ctx.bearer_token(), return Unauthenticated to refuse.
  using Authorizer = std::function<Status(CallContext&)>;
  // A server-streaming handler: sends any number of messages through the stream, then returns
  // how the call ended (sent to the client in the end-of-stream message). It runs on the
  // connection's own thread and may block as long as the call lasts.
  using ServerStreamFunction =
      std::function<Status(CallContext&, const google::protobuf::Message&, ServerStream&)>;

  ConnectRouter();
  explicit ConnectRouter(Options options);
  ~ConnectRouter();
  ConnectRouter(const ConnectRouter&) = delete;
  ConnectRouter& operator=(const ConnectRouter&) = delete;

  // The type-erased registration: prototypes give the message types; the function receives a
  // parsed request of the first and fills a fresh message of the second. Registering a
  // procedure twice replaces the first handler.
  void RegisterUnary(std::string procedure,
                     std::unique_ptr<google::protobuf::Message> request_prototype,
                     std::unique_ptr<google::protobuf::Message> response_prototype,
                     UnaryFunction function);

  // Typed registration: router.Unary<CheckRequest, CheckResponse>(
  //     ConnectProcedure("slipway.health.v1.HealthService", "Check"),
  //     [](CallContext& ctx, const CheckRequest& req, CheckResponse* resp) { ...; return Status();
  //     });
  template <typename Request, typename Response, typename Function>
  void Unary(std::string procedure, Function function) {
    RegisterUnary(std::move(procedure), std::make_unique<Request>(), std::make_unique<Response>(),
                  [f = std::move(function)](CallContext& ctx, const google::protobuf::Message& req,
                                            google::protobuf::Message* resp) -> Status {
                    return f(ctx, static_cast<const Request&>(req), static_cast<Response*>(resp));
                  });
  }

  // The streaming twin of RegisterUnary: the response prototype types the streamed messages.
  void RegisterServerStream(std::string procedure,
                            std::unique_ptr<google::protobuf::Message> request_prototype,
                            std::unique_ptr<google::protobuf::Message> response_prototype,
                            ServerStreamFunction function);

  // Typed registration of a server-streaming method:
  // router.ServerStreaming<WatchRequest, WatchResponse>(procedure,
  //     [](CallContext& ctx, const WatchRequest& req, StreamWriter<WatchResponse>& out) {
  //       ...; out.Send(message); ...; return Status(); });
  template <typename Request, typename Response, typename Function>
  void ServerStreaming(std::string procedure, Function function) {
    RegisterServerStream(
        std::move(procedure), std::make_unique<Request>(), std::make_unique<Response>(),
        [f = std::move(function)](CallContext& ctx, const google::protobuf::Message& req,
                                  ServerStream& stream) -> Status {
          StreamWriter<Response> writer(stream);
          return f(ctx, static_cast<const Request&>(req), writer);
        });
  }

  void SetAuthorizer(Authorizer authorizer);

  // Counts every call in registry: slipway_rpc_requests_total{procedure,code} (the Connect code
  // answered with, "ok" included) and slipway_rpc_duration_seconds{procedure}. Calls to
  // procedures that are not registered count as procedure "unknown". Call before serving;
  // registry must outlive the router.
  void SetMetrics(metrics::Registry& registry);

  // True when path (HttpRequest::path) is a registered procedure.
  bool Handles(std::string_view path) const;

  // Serves one HTTP request as a Connect call. Usable directly as an HttpHandler body.
  void Serve(const HttpRequest& request, BodyReader& body, ResponseWriter& response) const;
  // An HttpHandler that calls Serve(); the router must outlive every server using it.
  HttpHandler AsHandler() const;

 private:
  struct Method;
  struct RpcMetrics;
  // Serve one call and return the code it answered with (a stream: the code it ended with).
  Code ServeCall(const HttpRequest& request, BodyReader& body, ResponseWriter& response) const;
  Code ServeUnary(const Method& method, const HttpRequest& request, BodyReader& body,
                  ResponseWriter& response) const;
  Code ServeStream(const Method& method, const HttpRequest& request, BodyReader& body,
                   ResponseWriter& response) const;

  Options options_;
  std::unique_ptr<RpcMetrics> metrics_;
  std::map<std::string, std::unique_ptr<Method>, std::less<>> methods_;
  Authorizer authorizer_;
};

// How one server-streaming call may end early, besides the server ending it.
struct StreamCallOptions {
  // The whole stream's deadline, sent as Connect-Timeout-Ms and enforced locally
  // (DeadlineExceeded). 0 = as long as the server keeps it open. Options::timeout, meant for
  // unary calls, does not apply to streams.
  std::chrono::milliseconds timeout{0};
  // Asked about every second while the stream is quiet (and between messages): true ends the
  // call with Canceled. For a CLI's Ctrl-C, or a caller that gives up waiting.
  std::function<bool()> cancelled;
};

// Calls unary and server-streaming methods of a Connect server. Thread-safe; cheap to keep for
// the process lifetime.
class ConnectClient {
 public:
  struct Options {
    std::string base_url;      // "http://127.0.0.1:7000"; a path prefix is kept
    std::string unix_socket;   // speak HTTP over this unix socket instead of TCP
    bool binary = false;       // application/proto instead of application/json
    std::string bearer_token;  // sent as "Authorization: Bearer <token>" when not empty
    // Sent as Connect-Timeout-Ms so the server sees the deadline, and enforced locally too.
    // 0 = no timeout.
    std::chrono::milliseconds timeout{30'000};
    std::chrono::milliseconds connect_timeout{10'000};
    Headers headers;  // added to every call
    uint64_t max_response_bytes = 64ull * 1024 * 1024;
  };

  explicit ConnectClient(Options options);
  ~ConnectClient();

  // Sends request to procedure ("/pkg.Service/Method") and parses the answer into response
  // (which may be null when the caller wants only the Status).
  // A Connect error comes back as its code and message; an HTTP error without a Connect body
  // as the code the spec infers from the HTTP status; transport failures as Unavailable or
  // DeadlineExceeded. Calls are never retried (a POST may have had effects).
  Status CallUnary(std::string_view procedure, const google::protobuf::Message& request,
                   google::protobuf::Message* response) const;

  template <typename Response, typename Request>
  Result<Response> Call(std::string_view procedure, const Request& request) const {
    Response response;
    Status st = CallUnary(procedure, request, &response);
    if (!st.ok()) return st;
    return response;
  }

  // Calls a server-streaming procedure: on_message gets each message (a fresh message of the
  // prototype's type) as soon as its envelope has arrived, on the calling thread; returning
  // false stops reading, and the call returns Ok.
  // Returns Ok when the server ended the stream without an error; the error of its
  // end-of-stream message otherwise; for an answer that is not a stream (an older server's
  // 404 for a procedure it does not have) the code from its error body or HTTP status
  // (Unimplemented for that 404); Unavailable for a stream that broke before its end-of-stream
  // message; DeadlineExceeded / Canceled for call.timeout / call.cancelled.
  Status CallServerStream(std::string_view procedure, const google::protobuf::Message& request,
                          const google::protobuf::Message& response_prototype,
                          const std::function<bool(const google::protobuf::Message&)>& on_message,
                          const StreamCallOptions& call = {}) const;

  // Typed: client.Stream<WatchResponse>(procedure, request,
  //     [](const WatchResponse& m) { ...; return true; });
  template <typename Response, typename Request, typename Function>
  Status Stream(std::string_view procedure, const Request& request, Function on_message,
                const StreamCallOptions& call = {}) const {
    Response prototype;
    return CallServerStream(
        procedure, request, prototype,
        [&on_message](const google::protobuf::Message& m) -> bool {
          return on_message(static_cast<const Response&>(m));
        },
        call);
  }

  const Options& options() const { return options_; }

 private:
  Options options_;
  std::unique_ptr<HttpClient> http_;
};

}  // namespace slipway::net
