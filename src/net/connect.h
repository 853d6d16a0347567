// The Connect protocol (https://connectrpc.com/docs/protocol), unary calls over HTTP/1.1, with
// JSON (application/json) and binary protobuf (application/proto) bodies: a server-side router
// that plugs into HttpServer, and a client over HttpClient. Any Connect client (connect-es,
// connect-go, curl with JSON) can call a ConnectRouter; ConnectClient can call any Connect
// server.
//
// Errors cross the wire as the JSON body {"code":"not_found","message":"..."} with the HTTP
// status the spec assigns to the code; slipway::Status codes are Connect's, one-to-one.
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

namespace slipway::net {

// The HTTP status a Connect error with this code is sent with (spec: "Error Codes").
int HttpStatusForCode(Code code);
// The code a client infers from an HTTP status when the response carries no Connect error body
// (spec: "HTTP to Error Code"; a proxy's 502 page, say).
Code CodeForHttpStatus(int status);

// "/slipway.health.v1.HealthService/Check" from the service's full name and the method name.
std::string ConnectProcedure(std::string_view service, std::string_view method);

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
  // Headers sent back with the response, on success and on error.
  Headers& response_headers() { return response_headers_; }
  const Headers& response_headers() const { return response_headers_; }

 private:
  const HttpRequest& request_;
  std::string procedure_;
  std::optional<std::chrono::steady_clock::time_point> deadline_;
  Headers response_headers_;
};

// Routes POST /<package>.<Service>/<Method> to registered unary handlers.
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

  void SetAuthorizer(Authorizer authorizer);

  // True when path (HttpRequest::path) is a registered procedure.
  bool Handles(std::string_view path) const;

  // Serves one HTTP request as a Connect call. Usable directly as an HttpHandler body.
  void Serve(const HttpRequest& request, BodyReader& body, ResponseWriter& response) const;
  // An HttpHandler that calls Serve(); the router must outlive every server using it.
  HttpHandler AsHandler() const;

 private:
  struct Method;
  Options options_;
  std::map<std::string, std::unique_ptr<Method>, std::less<>> methods_;
  Authorizer authorizer_;
};

// Calls unary methods of a Connect server. Thread-safe; cheap to keep for the process lifetime.
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

  const Options& options() const { return options_; }

 private:
  Options options_;
  std::unique_ptr<HttpClient> http_;
};

}  // namespace slipway::net
