// A small Docker Engine API client for krane: JSON calls to dockerd over its unix socket (or
// TCP), with dockerd's errors turned into Status values a person can act on.
//
// Thread-safe (HttpClient is); one per backend, kept for the process lifetime.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "base/status.h"
#include "net/http_client.h"

namespace slipway::krane::docker {

class EngineClient {
 public:
  struct Reply {
    int status = 0;
    std::string body;
  };

  // docker_host: "unix:///var/run/docker.sock", "tcp://127.0.0.1:2375" or "http://...".
  static Result<std::unique_ptr<EngineClient>> Connect(const std::string& docker_host);

  // One API call; path_and_query starts with '/' and excludes the version prefix. A non-empty
  // json_body is sent as application/json. Transport failures are Unavailable with a hint to
  // start dockerd; any HTTP status is a Reply for the caller to judge.
  Result<Reply> Call(std::string_view method, std::string_view path_and_query,
                     std::string json_body = "",
                     std::chrono::milliseconds timeout = std::chrono::seconds(30),
                     const net::Headers& headers = {}) const;

  // A long-lived GET whose body is one JSON object per line (/events): on_line gets each line
  // as it arrives, until dockerd ends the stream, on_line returns false, cancelled() returns
  // true (checked about once a second while the stream is idle) or the connection drops.
  // on_open runs once dockerd answered 200, before the first line, with the answer's headers. A status other than 200 is
  // an error Status built by ErrorFor; the end of the stream, for whatever reason, is Ok or
  // the transport's error.
  Status StreamLines(std::string_view path_and_query,
                     const std::function<void(const net::Headers&)>& on_open,
                     const std::function<bool(std::string_view line)>& on_line,
                     std::function<bool()> cancelled) const;

  // Like Call, but a status outside 2xx becomes an error Status built by ErrorFor.
  Result<nlohmann::json> CallJson(std::string_view method, std::string_view path_and_query,
                                  std::string json_body, std::string_view what) const;

  // "<what>: dockerd answered HTTP 404: No such image: x:1" with a code that matches
  // (400 InvalidArgument, 404 NotFound, 409 AlreadyExists, otherwise FailedPrecondition).
  static Status ErrorFor(const Reply& reply, std::string_view what);

  const std::string& docker_host() const { return docker_host_; }

 private:
  EngineClient(std::string docker_host, std::string unix_socket, std::string base_url)
      : docker_host_(std::move(docker_host)),
        unix_socket_(std::move(unix_socket)),
        base_url_(std::move(base_url)) {}

  std::string docker_host_;
  std::string unix_socket_;
  std::string base_url_;
  mutable net::HttpClient http_;
};

}  // namespace slipway::krane::docker
