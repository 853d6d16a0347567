#include "krane/kubernetes/kube_api.h"

#include <fmt/format.h>

#include <fstream>
#include <sstream>

#include "net/http.h"
#include "net/http_client.h"

namespace slipway::krane::kubernetes {
namespace {

using Json = nlohmann::json;

std::string ReadToken(const std::string& file) {
  std::ifstream in(file);
  std::stringstream s;
  s << in.rdbuf();
  std::string t = s.str();
  while (!t.empty() && (t.back() == '\n' || t.back() == '\r' || t.back() == ' ')) t.pop_back();
  return t;
}

std::string Where(const KubeAction& a) {
  return a.ns.empty() ? std::string("in the cluster") : fmt::format("in namespace \"{}\"", a.ns);
}

std::string What(const KubeAction& a) {
  std::string kind = a.resource;
  if (!a.name.empty()) kind += " \"" + a.name + "\"";
  return kind;
}

}  // namespace

std::string CollectionPath(const std::string& group, const std::string& resource,
                           const std::string& ns) {
  std::string base = group.empty() ? "/api/v1" : "/apis/" + group + "/v1";
  if (!ns.empty()) base += "/namespaces/" + ns;
  return base + "/" + resource;
}

KubeApi::KubeApi(KubeConnection connection)
    : connection_(std::move(connection)),
      http_(std::make_unique<net::HttpClient>(net::HttpClient::ConnectionReuse::kShared)) {}

KubeApi::~KubeApi() = default;

std::string KubeApi::BearerToken() const {
  if (!connection_.token_file.empty()) return ReadToken(connection_.token_file);
  return connection_.token;
}

Result<KubeReply> KubeApi::Call(const std::string& method, const std::string& path,
                                const Json* body, const std::string& content_type,
                                std::chrono::milliseconds timeout) {
  net::ClientRequest req;
  req.method = method;
  req.url = connection_.server + path;
  req.ca_file = connection_.ca_file;
  req.client_cert_file = connection_.client_cert_file;
  req.client_key_file = connection_.client_key_file;
  req.headers.Set("Accept", "application/json");
  if (std::string token = BearerToken(); !token.empty()) {
    req.headers.Set("Authorization", "Bearer " + token);
  }
  if (body != nullptr) {
    req.body = body->dump();
    req.headers.Set("Content-Type", content_type);
  }
  req.timeout = timeout;
  req.connect_timeout = std::chrono::seconds(5);
  auto reply = http_->Do(req);
  if (!reply.ok()) {
    return Status::Unavailable(fmt::format(
        "the Kubernetes API server at {} did not answer ({}); it may be restarting, krane tries "
        "again (check it runs and that {} points at it)",
        connection_.server, reply.status().message(), connection_.source));
  }
  KubeReply out;
  out.status = reply->status;
  out.text = std::move(reply->body);
  out.body = Json::parse(out.text, nullptr, false);
  if (out.body.is_discarded()) out.body = nullptr;
  return out;
}

Status KubeApi::Stream(const std::string& path,
                       const std::function<bool(std::string_view)>& on_line, int* status_out,
                       std::string* error_body, std::function<bool()> cancelled,
                       std::chrono::milliseconds timeout) {
  net::ClientRequest req;
  req.url = connection_.server + path;
  req.ca_file = connection_.ca_file;
  req.client_cert_file = connection_.client_cert_file;
  req.client_key_file = connection_.client_key_file;
  req.headers.Set("Accept", "application/json");
  if (std::string token = BearerToken(); !token.empty()) {
    req.headers.Set("Authorization", "Bearer " + token);
  }
  req.timeout = timeout;
  req.connect_timeout = std::chrono::seconds(5);
  req.low_speed_timeout = std::chrono::milliseconds(0);  // a quiet watch is not a stalled one
  req.max_attempts = 1;
  req.cancelled = std::move(cancelled);
  int status = 0;
  std::string pending;
  req.on_headers = [&](int s, const net::Headers&) {
    status = s;
    return true;
  };
  req.on_body = [&](std::string_view chunk) {
    if (status != 200) {
      if (error_body && error_body->size() < 64 * 1024) error_body->append(chunk);
      return true;
    }
    pending.append(chunk);
    size_t start = 0;
    for (size_t nl; (nl = pending.find('\n', start)) != std::string::npos; start = nl + 1) {
      if (nl > start && !on_line(std::string_view(pending).substr(start, nl - start))) {
        return false;
      }
    }
    pending.erase(0, start);
    return true;
  };
  auto reply = http_->Do(req);
  if (status_out) *status_out = status;
  if (!reply.ok()) {
    if (reply.status().code() == Code::kCanceled) return Status::Ok();  // on_line said stop
    if (status == 200) {
      return Status::Unavailable("the watch connection to " + connection_.server +
                                 " dropped: " + reply.status().message());
    }
    return Status::Unavailable(fmt::format("the Kubernetes API server at {} did not answer ({})",
                                           connection_.server, reply.status().message()));
  }
  return Status::Ok();
}

Status KubeApi::ErrorFor(const KubeReply& reply, const KubeAction& action) const {
  return ErrorFor(reply.status, reply.text, action);
}

Status KubeApi::ErrorFor(int status, const std::string& text, const KubeAction& a) const {
  const Json body = Json::parse(text, nullptr, false);
  std::string message = body.is_object() ? body.value("message", "") : "";
  if (message.empty()) message = text.substr(0, 300);
  const std::string group = a.group.empty() ? "\"\"" : "\"" + a.group + "\"";
  switch (status) {
    case 401:
      return Status::Unauthenticated(fmt::format(
          "the Kubernetes API server at {} did not accept krane's credentials ({}); check the "
          "client certificate or token in {}",
          connection_.server, message, connection_.source));
    case 403:
      return Status::PermissionDenied(fmt::format(
          "krane may not {} {} {} (the API server said: {}); grant its account a Role rule "
          "{{apiGroups: [{}], resources: [\"{}\"], verbs: [\"{}\"]}} with a RoleBinding, as "
          "deploy/kubernetes/rbac.yaml does",
          a.verb, a.resource, Where(a), message, group, a.resource, a.verb));
    case 404:
      return Status::NotFound(fmt::format("{} does not exist {} ({})", What(a), Where(a), message));
    case 409:
      return Status::Aborted(fmt::format("{} {} changed or exists already ({}); try again", What(a),
                                         Where(a), message));
    case 400:
    case 422: {
      std::string fields;
      if (body.is_object() && body.contains("details") && body["details"].is_object()) {
        for (const Json& cause : body["details"].value("causes", Json::array())) {
          if (!fields.empty()) fields += "; ";
          fields += fmt::format("{}: {}", cause.value("field", "?"), cause.value("message", ""));
        }
      }
      return Status::InvalidArgument(
          fmt::format("the Kubernetes API server refused to {} {} {}: {}", a.verb, What(a),
                      Where(a), fields.empty() ? message : fields));
    }
    case 410:
      return Status::Aborted(
          fmt::format("the API server no longer has that version of {} ({})", a.resource, message));
    case 429:
    case 500:
    case 502:
    case 503:
    case 504:
      return Status::Unavailable(fmt::format(
          "the Kubernetes API server at {} could not {} {} right now (HTTP {}: {}); krane tries "
          "again",
          connection_.server, a.verb, What(a), status, message));
    default:
      return Status::Unknown(
          fmt::format("the Kubernetes API server answered HTTP {} to {} {} {}: {}", status, a.verb,
                      What(a), Where(a), message));
  }
}

}  // namespace slipway::krane::kubernetes
