#include "net/ops_http.h"

namespace slipway::net {

bool ServeOpsEndpoint(const HttpRequest& request, ResponseWriter& response,
                      const OpsEndpoints& endpoints) {
  std::optional<OpsAnswer> answer = AnswerOpsRequest(request.method, request.path, endpoints);
  if (!answer) return false;
  Headers headers = {{"Content-Type", answer->content_type}, {"Cache-Control", "no-store"}};
  if (!answer->allow.empty()) headers.Add("Allow", answer->allow);
  (void)response.Send(answer->status, headers, answer->body);
  return true;
}

HttpHandler WithOpsEndpoints(HttpHandler inner, const OpsEndpoints& endpoints) {
  return [inner = std::move(inner), &endpoints](const HttpRequest& request, BodyReader& body,
                                                ResponseWriter& response) {
    if (ServeOpsEndpoint(request, response, endpoints)) return;
    inner(request, body, response);
  };
}

}  // namespace slipway::net
