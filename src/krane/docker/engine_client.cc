#include "krane/docker/engine_client.h"

#include <fmt/format.h>

namespace slipway::krane::docker {
namespace {

// The Engine API version we speak: dockerd 20.10 (Debian 12) serves 1.41.
constexpr std::string_view kApiVersion = "v1.41";

}  // namespace

Result<std::unique_ptr<EngineClient>> EngineClient::Connect(const std::string& docker_host) {
  std::unique_ptr<EngineClient> client;
  if (docker_host.rfind("unix://", 0) == 0) {
    client.reset(new EngineClient(docker_host, docker_host.substr(7), "http://docker"));
  } else if (docker_host.rfind("tcp://", 0) == 0) {
    client.reset(new EngineClient(docker_host, "", "http://" + docker_host.substr(6)));
  } else if (docker_host.rfind("http://", 0) == 0) {
    client.reset(new EngineClient(docker_host, "", docker_host));
  } else {
    return Status::InvalidArgument(
        fmt::format("DOCKER_HOST \"{}\" is neither unix:///path nor tcp://host:port; set "
                    "--docker-host to one of those",
                    docker_host));
  }
  return client;
}

Result<EngineClient::Reply> EngineClient::Call(std::string_view method,
                                               std::string_view path_and_query,
                                               std::string json_body,
                                               std::chrono::milliseconds timeout,
                                               const net::Headers& headers) const {
  net::ClientRequest req;
  req.headers = headers;
  req.method = std::string(method);
  req.unix_socket = unix_socket_;
  req.url = fmt::format("{}/{}{}", base_url_, kApiVersion, path_and_query);
  if (!json_body.empty()) {
    req.headers.Set("Content-Type", "application/json");
    req.body = std::move(json_body);
  }
  req.connect_timeout = std::chrono::seconds(5);
  req.timeout = timeout;
  // Creating, starting and removing containers are not safe to repeat blindly; the callers
  // are idempotent at a higher level instead.
  req.idempotent = req.method == "GET";
  auto resp = http_.Do(req);
  if (!resp.ok()) {
    return resp.status().WithContext(fmt::format(
        "calling dockerd at {} ({} {}) failed; is dockerd running? scripts/services.sh starts it",
        docker_host_, method, path_and_query));
  }
  return Reply{resp->status, std::move(resp->body)};
}

Status EngineClient::StreamLines(std::string_view path_and_query,
                                 const std::function<void(const net::Headers&)>& on_open,
                                 const std::function<bool(std::string_view line)>& on_line,
                                 std::function<bool()> cancelled) const {
  net::ClientRequest req;
  req.method = "GET";
  req.unix_socket = unix_socket_;
  req.url = fmt::format("{}/{}{}", base_url_, kApiVersion, path_and_query);
  req.connect_timeout = std::chrono::seconds(5);
  req.timeout = std::chrono::milliseconds(0);
  // An event stream is quiet for as long as nothing happens: silence is not a failure.
  req.low_speed_timeout = std::chrono::milliseconds(0);
  req.idempotent = false;  // the caller reopens it, knowing what it may have missed
  req.max_attempts = 1;
  req.cancelled = std::move(cancelled);
  int status = 0;
  std::string pending;  // a line not yet ended, or the error body
  req.on_headers = [&](int s, const net::Headers& headers) {
    status = s;
    if (status == 200 && on_open) on_open(headers);
    return true;
  };
  req.on_body = [&](std::string_view chunk) {
    pending.append(chunk);
    if (status != 200) return pending.size() < 64 * 1024;
    size_t start = 0;
    for (size_t end; (end = pending.find('\n', start)) != std::string::npos; start = end + 1) {
      std::string_view line(pending.data() + start, end - start);
      if (!line.empty() && !on_line(line)) return false;
    }
    pending.erase(0, start);
    return true;
  };
  auto resp = http_.Do(req);
  if (status != 0 && status != 200) return ErrorFor(Reply{status, pending}, "following dockerd's events");
  if (!resp.ok()) {
    return resp.status().WithContext(fmt::format(
        "following dockerd's events at {} failed; is dockerd running? scripts/services.sh "
        "starts it",
        docker_host_));
  }
  return Status::Ok();
}

Result<nlohmann::json> EngineClient::CallJson(std::string_view method,
                                              std::string_view path_and_query,
                                              std::string json_body, std::string_view what) const {
  SLIPWAY_ASSIGN_OR_RETURN(Reply reply, Call(method, path_and_query, std::move(json_body)));
  if (reply.status < 200 || reply.status > 299) return ErrorFor(reply, what);
  if (reply.body.empty()) return nlohmann::json();
  auto parsed = nlohmann::json::parse(reply.body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) {
    return Status::Internal(fmt::format("{}: dockerd answered with JSON we cannot parse: {}", what,
                                        reply.body.substr(0, 200)));
  }
  return parsed;
}

Status EngineClient::ErrorFor(const Reply& reply, std::string_view what) {
  std::string message = reply.body;
  auto parsed = nlohmann::json::parse(reply.body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_object() && parsed.contains("message") && parsed["message"].is_string()) {
    message = parsed["message"].get<std::string>();
  }
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
  std::string text = fmt::format("{}: dockerd answered HTTP {}: {}", what, reply.status, message);
  switch (reply.status) {
    case 400:
      return Status::InvalidArgument(std::move(text));
    case 404:
      return Status::NotFound(std::move(text));
    case 409:
      return Status::AlreadyExists(std::move(text));
    default:
      return Status::FailedPrecondition(std::move(text));
  }
}

}  // namespace slipway::krane::docker
