// Pieces the gateway tests share: upstream apps (real HTTP servers on loopback), the partition
// database as ctrl writes it, and a client that talks to the gateway with a chosen Host.
// Header-only: the test globs compile *_test.cc files only.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "base/crypto.h"
#include "db/database.h"
#include "db/migrations.h"
#include "net/http.h"
#include "net/http_client.h"
#include "net/http_server.h"
#include "support/loopback_socket.h"
#include "support/test_support.h"

namespace slipway::gateway::testing {

// Deterministic pseudo-random bytes, produced in chunks on the fly (never all in memory). The
// stream is the same whatever the chunk sizes asked for.
class DeterministicBytes {
 public:
  explicit DeterministicBytes(uint64_t total, uint64_t seed = 7) : left_(total), state_(seed) {}
  // Fills up to n bytes; 0 at the end.
  size_t Fill(char* out, size_t n) {
    n = static_cast<size_t>(std::min<uint64_t>(n, left_));
    size_t i = 0;
    while (i < n && spare_ > 0) {  // the rest of a word a previous call started
      out[i++] = static_cast<char>(word_ >> (8 * (8 - spare_)));
      --spare_;
    }
    for (; i + 8 <= n; i += 8) {
      Step();
      std::memcpy(out + i, &word_, 8);
    }
    if (i < n) {
      Step();
      spare_ = 8;
      while (i < n) {
        out[i++] = static_cast<char>(word_ >> (8 * (8 - spare_)));
        --spare_;
      }
    }
    left_ -= n;
    return n;
  }
  uint64_t left() const { return left_; }

 private:
  void Step() {
    state_ ^= state_ << 13;
    state_ ^= state_ >> 7;
    state_ ^= state_ << 17;
    word_ = state_;
  }
  uint64_t left_;
  uint64_t state_;
  uint64_t word_ = 0;
  int spare_ = 0;  // bytes of word_ not yet handed out
};

// The sha256 (hex) of DeterministicBytes(total, seed), computed by generating them.
inline std::string DeterministicSha256(uint64_t total, uint64_t seed = 7) {
  DeterministicBytes bytes(total, seed);
  Sha256Stream hash;
  std::vector<char> buf(256 * 1024);
  while (size_t n = bytes.Fill(buf.data(), buf.size())) hash.Update(buf.data(), n);
  return hash.FinishHex();
}

// What an upstream saw of one request.
struct SeenRequest {
  std::string method;
  std::string target;
  net::Headers headers;
  std::string remote_address;
};

// An app instance: an HttpServer on 127.0.0.1 that answers
//   /hash              "<sha256 hex> <length>" of the request body, read as a stream;
//   /download?bytes=N  N DeterministicBytes, streamed, with Content-Length;
//   /chunked?bytes=N   the same without Content-Length (sent chunked);
//   /echo              the request body back, streamed as it arrives;
//   /break             half of a promised body, then a closed connection;
//   /ws                with Upgrade: 101, then echoes bytes (a WebSocket stand-in);
//   /ws-refuse, /ws-refuse-chunked  426 with a body (with a length, or chunked);
//   anything else      "<name>" (200), so a test sees which instance answered.
class Upstream {
 public:
  explicit Upstream(std::string name) : name_(std::move(name)) {
    net::HttpServer::Options options;
    options.listen = "127.0.0.1:0";
    auto server =
        net::HttpServer::Start(options, [this](const net::HttpRequest& r, net::BodyReader& b,
                                               net::ResponseWriter& w) { Handle(r, b, w); });
    EXPECT_TRUE(server.ok()) << server.status().ToString();
    if (server.ok()) server_ = std::move(server).value();
  }
  Upstream(const Upstream&) = delete;
  Upstream& operator=(const Upstream&) = delete;

  const std::string& name() const { return name_; }
  std::string address() const { return server_->address(); }
  int requests() const { return requests_.load(); }
  // Body bytes the streaming endpoints (/download, /chunked) have handed to their connections.
  uint64_t bytes_sent() const { return bytes_sent_.load(); }
  std::vector<SeenRequest> seen() {
    std::lock_guard lock(mu_);
    return seen_;
  }
  // Distinct gateway-side addresses requests arrived from: one per upstream connection.
  std::set<std::string> connections() {
    std::set<std::string> out;
    for (const auto& r : seen()) out.insert(r.remote_address);
    return out;
  }

 private:
  static uint64_t BytesParam(const net::HttpRequest& request) {
    for (const auto& [k, v] : net::ParseQuery(request.query)) {
      if (k == "bytes") return std::stoull(v);
    }
    return 0;
  }

  void Handle(const net::HttpRequest& request, net::BodyReader& body, net::ResponseWriter& writer) {
    ++requests_;
    {
      std::lock_guard lock(mu_);
      seen_.push_back({request.method, request.target, request.headers, request.remote_address});
    }
    std::vector<char> buf(64 * 1024);
    if (request.path == "/hash") {
      Sha256Stream hash;
      uint64_t total = 0;
      for (;;) {
        auto n = body.Read(buf.data(), buf.size());
        if (!n.ok()) {
          (void)writer.Send(400, {}, n.status().ToString());
          return;
        }
        if (*n == 0) break;
        hash.Update(buf.data(), *n);
        total += *n;
      }
      (void)writer.Send(200, {{"Content-Type", "text/plain"}},
                        hash.FinishHex() + " " + std::to_string(total));
    } else if (request.path == "/download" || request.path == "/chunked") {
      uint64_t size = BytesParam(request);
      std::optional<uint64_t> length;
      if (request.path == "/download") length = size;
      if (!writer.WriteHead(200, {{"Content-Type", "application/octet-stream"}}, length).ok())
        return;
      DeterministicBytes bytes(size);
      while (size_t n = bytes.Fill(buf.data(), buf.size())) {
        if (!writer.Write(std::string_view(buf.data(), n)).ok()) return;
        bytes_sent_ += n;
      }
      (void)writer.Finish();
    } else if (request.path == "/echo") {
      if (!writer.WriteHead(200, {{"Content-Type", "application/octet-stream"}}, std::nullopt).ok())
        return;
      for (;;) {
        auto n = body.Read(buf.data(), buf.size());
        if (!n.ok() || *n == 0) break;
        if (!writer.Write(std::string_view(buf.data(), *n)).ok()) return;
      }
      (void)writer.Finish();
    } else if (request.path == "/ws" && request.headers.Has("Upgrade")) {
      auto conn = writer.Upgrade({{"Upgrade", request.headers.GetOr("Upgrade", "")},
                                  {"Connection", "Upgrade"},
                                  {"X-Instance", name_}});
      if (!conn.ok()) return;
      for (;;) {  // echo
        auto n = (*conn)->Read(buf.data(), buf.size());
        if (!n.ok() || *n == 0) return;
        if (!(*conn)->Write(std::string_view(buf.data(), *n)).ok()) return;
      }
    } else if (request.path == "/ws-refuse") {
      (void)writer.Send(426, {{"Content-Type", "text/plain"}}, "upgrade refused by " + name_);
    } else if (request.path == "/ws-refuse-chunked") {
      if (!writer.WriteHead(426, {}, std::nullopt).ok()) return;
      (void)writer.Write("refused ");
      (void)writer.Write("in chunks");
      (void)writer.Finish();
    } else if (request.path == "/break") {
      if (!writer.WriteHead(200, {}, 1000).ok()) return;
      (void)writer.Write(std::string(500, 'x'));
      writer.Abort();
    } else {
      (void)body.ReadAll(1 << 20);
      (void)writer.Send(200, {{"Content-Type", "text/plain"}}, name_);
    }
  }

  std::string name_;
  std::atomic<int> requests_{0};
  std::atomic<uint64_t> bytes_sent_{0};
  std::mutex mu_;
  std::vector<SeenRequest> seen_;
  std::unique_ptr<net::HttpServer> server_;
};

// An upstream that answers every request with the same raw bytes and closes the connection:
// for responses HttpServer would never produce (hop-by-hop fields of our choosing).
class RawUpstream {
 public:
  explicit RawUpstream(std::string response) : response_(std::move(response)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    EXPECT_EQ(::listen(fd_, 16), 0);
    thread_ = std::thread([this] {
      for (;;) {
        int c = ::accept(fd_, nullptr, nullptr);
        if (c < 0) return;
        std::string got;
        char buf[4096];
        while (got.find("\r\n\r\n") == std::string::npos) {
          ssize_t n = ::recv(c, buf, sizeof buf, 0);
          if (n <= 0) break;
          got.append(buf, static_cast<size_t>(n));
        }
        (void)::send(c, response_.data(), response_.size(), MSG_NOSIGNAL);
        ::close(c);
      }
    });
  }
  ~RawUpstream() {
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  std::string response_;
  int fd_ = -1;
  int port_ = 0;
  std::thread thread_;
};

// A raw TCP client, to speak what HTTP clients will not (an upgraded connection).
class RawClient : public slipway::testing::LoopbackSocket {
 public:
  explicit RawClient(uint16_t port) : LoopbackSocket(port, std::chrono::seconds(10)) {
    EXPECT_TRUE(connected()) << "cannot connect to 127.0.0.1:" << port;
  }
};

// The partition database as ctrl and krane write it.
class Partition {
 public:
  explicit Partition(const std::string& url) {
    auto opened = db::OpenPartition(url);
    if (!opened.ok()) throw std::runtime_error(opened.status().ToString());
    db_ = std::move(opened).value();
  }
  db::Database& db() { return *db_; }

  void Route(const std::string& host, const std::string& deployment) {
    auto done = db_->Exec(
        "INSERT INTO gateway_routes (hostname, deployment_id, updated_at) VALUES ($1, $2, $3) "
        "ON CONFLICT (hostname) DO UPDATE SET deployment_id = excluded.deployment_id, "
        "updated_at = excluded.updated_at",
        {host, deployment, Now()});
    ASSERT_TRUE(done.ok()) << done.status().ToString();
  }

  void Instance(const std::string& deployment, const std::string& instance,
                const std::string& address, const std::string& status = "RUNNING") {
    auto done = db_->Exec(
        "INSERT INTO instances (deployment_id, instance_id, address, status, reason, updated_at) "
        "VALUES ($1, $2, $3, $4, '', $5) ON CONFLICT (deployment_id, instance_id) DO UPDATE SET "
        "address = excluded.address, status = excluded.status, updated_at = excluded.updated_at",
        {deployment, instance, address, status, Now()});
    ASSERT_TRUE(done.ok()) << done.status().ToString();
  }

  // Moves every given host to deployment in one transaction, the way ctrl switches domains.
  void SwitchHosts(const std::vector<std::string>& hosts, const std::string& deployment) {
    Status done = db_->WithTransaction([&](db::Executor& tx) -> Status {
      for (const auto& host : hosts) {
        auto n = tx.Exec(
            "UPDATE gateway_routes SET deployment_id = $1, updated_at = $2 WHERE hostname = $3",
            {deployment, Now(), host});
        if (!n.ok()) return n.status();
      }
      return Status::Ok();
    });
    ASSERT_TRUE(done.ok()) << done.ToString();
  }

 private:
  static int64_t Now() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  std::unique_ptr<db::Database> db_;
};

// One host routed to one app instance, in a partition database of its own in a temporary
// directory: what each gateway test starts from.
struct RoutedApp {
  RoutedApp(const std::string& host, const std::string& deployment, const std::string& name)
      : upstream(name),
        db_path((dir.path() / "partition.db").string()),
        partition(std::make_unique<Partition>(db_path)) {
    partition->Route(host, deployment);
    partition->Instance(deployment, "i1", upstream.address());
  }
  slipway::testing::TempDir dir;
  Upstream upstream;
  std::string db_path;
  std::unique_ptr<Partition> partition;
};

// `slipway run gateway` listening on 127.0.0.1:port, routing from the partition database at db,
// its admin listener on a port of its own choosing, with more flags after.
inline std::vector<std::string> GatewayCommand(int port, const std::string& db,
                                               const std::vector<std::string>& more = {}) {
  std::vector<std::string> argv = {slipway::testing::SlipwayBinary(),
                                   "run",
                                   "gateway",
                                   "--admin-listen",
                                   "127.0.0.1:0",
                                   "--listen",
                                   "127.0.0.1:" + std::to_string(port),
                                   "--partition-database",
                                   db};
  argv.insert(argv.end(), more.begin(), more.end());
  return argv;
}

// The same, configured through the environment twins of those flags instead.
inline std::map<std::string, std::string> GatewayEnvironment(int port, const std::string& db) {
  return {{"GATEWAY_LISTEN", "127.0.0.1:" + std::to_string(port)},
          {"PARTITION_DATABASE_URL", db},
          {"GATEWAY_ADMIN_LISTEN", "127.0.0.1:0"}};
}

struct GatewayResponse {
  int status = 0;  // 0: the request failed in transport (error says why)
  net::Headers headers;
  std::string body;
  std::string error;
};

// One request through the gateway at port, with the given Host header. Calls from one thread
// reuse one keep-alive connection (the HTTP client's per-thread handle).
inline GatewayResponse Fetch(uint16_t port, const std::string& host, const std::string& path = "/",
                             const std::string& method = "GET", net::Headers headers = {}) {
  static net::HttpClient client;
  net::ClientRequest request;
  request.method = method;
  request.url = "http://127.0.0.1:" + std::to_string(port) + path;
  request.headers = std::move(headers);
  request.headers.Set("Host", host);
  request.max_attempts = 1;
  request.timeout = std::chrono::seconds(10);
  GatewayResponse out;
  auto response = client.Do(request);
  if (!response.ok()) {
    out.error = response.status().ToString();
    return out;
  }
  out.status = response->status;
  out.headers = response->headers;
  out.body = response->body;
  return out;
}

// Fetches until the response body equals want, for up to timeout; true when it did.
inline bool EventuallyServes(uint16_t port, const std::string& host, const std::string& want,
                             std::chrono::milliseconds timeout = std::chrono::seconds(3)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (Fetch(port, host).body == want) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

}  // namespace slipway::gateway::testing
