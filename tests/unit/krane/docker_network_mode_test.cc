// The docker krane backend's network modes, against a scripted Engine API on a loopback socket
// (DOCKER_HOST=tcp://...): what krane asks dockerd to create in host mode (unchanged: NetworkMode
// host, PORT = the loopback port) and in bridge mode (the app's port published on 127.0.0.1 at a
// krane-chosen port, PORT = the app's port), that the address stays on the loopback port, that a
// published port is only ready once the app behind it holds a connection open, and that an
// unknown mode is refused before dockerd is asked anything. No real bridge network is used.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "krane/backend.h"
#include "krane/docker/docker_backend.h"
#include "net/http.h"
#include "net/http_server.h"

namespace slipway::krane::docker {
namespace {

using Json = nlohmann::json;

// The value of key in a raw query string ("all=1&filters=%7B...%7D"), percent-decoded.
std::string QueryParam(const std::string& query, const std::string& key) {
  size_t start = 0;
  while (start <= query.size()) {
    size_t end = query.find('&', start);
    if (end == std::string::npos) end = query.size();
    std::string_view pair(query.data() + start, end - start);
    if (pair.rfind(key + "=", 0) == 0) {
      std::string value;
      if (net::UriDecode(pair.substr(key.size() + 1), &value)) return value;
      return "";
    }
    start = end + 1;
  }
  return "";
}

// An Engine API that keeps the containers it was asked to create (with their labels, so label
// filters work as dockerd's do) and records every create body. Inspect reports container_status.
class ScriptedEngine {
 public:
  explicit ScriptedEngine(std::string container_status = "created")
      : container_status_(std::move(container_status)) {
    auto server = net::HttpServer::Start(
        {}, [this](const net::HttpRequest& req, net::BodyReader& body, net::ResponseWriter& resp) {
          auto text = body.ReadAll(1 << 20);
          net::Headers h;
          h.Set("Content-Type", "application/json");
          auto [status, answer] = Answer(req, text.ok() ? *text : "");
          (void)resp.Send(status, h, answer);
        });
    EXPECT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(server).value();
  }
  ~ScriptedEngine() { server_->Shutdown(); }

  std::string host() const { return "tcp://" + server_->address(); }
  std::vector<Json> create_bodies() {
    std::lock_guard lock(mu_);
    return create_bodies_;
  }
  int requests() {
    std::lock_guard lock(mu_);
    return requests_;
  }

 private:
  struct Container {
    std::string id;
    std::string name;
    Json labels;
  };

  std::pair<int, std::string> Answer(const net::HttpRequest& req, const std::string& body) {
    std::lock_guard lock(mu_);
    ++requests_;
    const std::string prefix = "/v1.41";
    if (req.path.rfind(prefix, 0) != 0) return {404, R"({"message":"no API version in path"})"};
    const std::string path = req.path.substr(prefix.size());
    if (req.method == "GET" && path == "/containers/json") return {200, List(req.query).dump()};
    if (req.method == "GET" && path.rfind("/images/", 0) == 0) return {200, R"({"Id":"sha256:1"})"};
    if (req.method == "POST" && path == "/containers/create") {
      Json parsed = Json::parse(body, nullptr, false);
      create_bodies_.push_back(parsed);
      Container c{"cid-" + QueryParam(req.query, "name"), QueryParam(req.query, "name"),
                  parsed.is_object() ? parsed.value("Labels", Json::object()) : Json::object()};
      containers_.push_back(c);
      return {201, Json{{"Id", c.id}, {"Warnings", Json::array()}}.dump()};
    }
    for (const Container& c : containers_) {
      const std::string base = "/containers/" + c.id;
      if (req.method == "POST" && path == base + "/start") return {204, ""};
      if (req.method == "GET" && path == base + "/logs") return {200, ""};
      if (req.method == "GET" && path == base + "/json") {
        Json inspect = {{"Id", c.id},
                        {"Name", "/" + c.name},
                        {"RestartCount", 0},
                        {"Config", {{"Labels", c.labels}}},
                        {"State",
                         {{"Status", container_status_},
                          {"Running", container_status_ == "running"},
                          {"ExitCode", 0},
                          {"OOMKilled", false}}}};
        return {200, inspect.dump()};
      }
    }
    return {404, R"({"message":"the scripted engine has no answer for this"})"};
  }

  // GET /containers/json?all=1&filters={"label":["k=v",...]}: containers carrying every label.
  Json List(const std::string& query) const {
    Json filters = Json::parse(QueryParam(query, "filters"), nullptr, false);
    std::vector<std::string> wanted;
    if (filters.is_object() && filters.contains("label")) {
      wanted = filters["label"].get<std::vector<std::string>>();
    }
    Json out = Json::array();
    for (const Container& c : containers_) {
      bool match = std::all_of(wanted.begin(), wanted.end(), [&](const std::string& kv) {
        const size_t eq = kv.find('=');
        const std::string key = kv.substr(0, eq);
        return c.labels.contains(key) && c.labels[key].is_string() &&
               c.labels[key].get<std::string>() == kv.substr(eq + 1);
      });
      if (!match) continue;
      out.push_back({{"Id", c.id},
                     {"Names", Json::array({"/" + c.name})},
                     {"State", container_status_},
                     {"Labels", c.labels}});
    }
    return out;
  }

  std::string container_status_;
  std::mutex mu_;
  std::vector<Json> create_bodies_;
  std::vector<Container> containers_;
  int requests_ = 0;
  std::unique_ptr<net::HttpServer> server_;
};

// A TCP listener on 127.0.0.1:port standing in for what answers a published port: with
// kCloseAtOnce it is docker-proxy with no app behind it (accept, then close); with kHoldOpen it
// is the app (accept and keep the connection).
class LoopbackListener {
 public:
  enum class Behaviour { kCloseAtOnce, kHoldOpen };

  LoopbackListener(int port, Behaviour behaviour) : behaviour_(behaviour) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port));
    listening_ = ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
                 ::listen(fd_, 16) == 0;
    if (listening_) thread_ = std::thread([this] { Serve(); });
  }
  ~LoopbackListener() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    for (int fd : held_) ::close(fd);
    ::close(fd_);
  }
  bool listening() const { return listening_; }

 private:
  void Serve() {
    while (!stop_) {
      pollfd pfd{fd_, POLLIN, 0};
      if (::poll(&pfd, 1, 50) <= 0) continue;
      int conn = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (conn < 0) continue;
      if (behaviour_ == Behaviour::kCloseAtOnce) {
        ::close(conn);
      } else {
        held_.push_back(conn);
      }
    }
  }

  Behaviour behaviour_;
  int fd_ = -1;
  bool listening_ = false;
  std::atomic<bool> stop_{false};
  std::vector<int> held_;  // touched by the serving thread only, until it is joined
  std::thread thread_;
};

std::unique_ptr<KraneBackend> Backend(const ScriptedEngine& engine, const std::string& mode) {
  KraneBackendConfig config;
  config.docker_host = engine.host();
  config.network_mode = mode;
  auto backend = MakeKraneBackend(config);
  EXPECT_TRUE(backend.ok()) << backend.status().ToString();
  return backend.ok() ? std::move(backend).value() : nullptr;
}

DeploymentSpec Spec(const std::string& deployment_id, int port, int replicas) {
  DeploymentSpec spec;
  spec.ref = {"ns1", deployment_id};
  spec.image = "127.0.0.1:5000/app:1";
  spec.port = port;
  spec.replicas = replicas;
  return spec;
}

std::vector<std::string> PortEnv(const Json& body) {
  std::vector<std::string> out;
  for (const Json& e : body["Env"]) {
    const std::string s = e.get<std::string>();
    if (s.rfind("PORT=", 0) == 0) out.push_back(s);
  }
  return out;
}

int HostPortLabel(const Json& body) {
  return std::stoi(body["Labels"][kLabelPort].get<std::string>());
}

TEST(KraneDockerNetworkModeTest, BridgePublishesTheAppPortOnLoopbackAtKranesPort) {
  ScriptedEngine engine;
  auto backend = Backend(engine, "bridge");
  ASSERT_NE(backend, nullptr);
  auto instances = backend->CreateDeployment(Spec("web", 0, 1));
  ASSERT_TRUE(instances.ok()) << instances.status().ToString();

  auto bodies = engine.create_bodies();
  ASSERT_EQ(bodies.size(), 1u);
  const Json& body = bodies[0];
  const int host_port = HostPortLabel(body);
  EXPECT_GT(host_port, 0);
  EXPECT_NE(host_port, kDefaultBridgeContainerPort);
  EXPECT_EQ(body["HostConfig"]["NetworkMode"], "bridge");
  EXPECT_EQ(body["HostConfig"]["PortBindings"],
            Json::parse(R"({"8080/tcp":[{"HostIp":"127.0.0.1","HostPort":")" +
                        std::to_string(host_port) + R"("}]})"));
  EXPECT_EQ(body["ExposedPorts"], Json::parse(R"({"8080/tcp":{}})"));
  EXPECT_EQ(PortEnv(body), std::vector<std::string>{"PORT=8080"});
  EXPECT_EQ(body["Labels"][kLabelContainerPort], "8080");
  EXPECT_EQ(body["Labels"][kLabelDeployment], "web");
  EXPECT_EQ(body["Labels"][kLabelNamespace], "ns1");
  EXPECT_EQ(body["Labels"][kLabelManagedBy], "krane");

  // The address is rebuilt from the labels alone, on the loopback side.
  ASSERT_EQ(instances->size(), 1u);
  EXPECT_EQ((*instances)[0].id, "web-0");
  EXPECT_EQ((*instances)[0].address, "127.0.0.1:" + std::to_string(host_port));
  EXPECT_EQ((*instances)[0].status, InstanceStatus::kPending);
}

TEST(KraneDockerNetworkModeTest, BridgeReplicasShareTheSpecPortBehindTheirOwnHostPorts) {
  ScriptedEngine engine;
  auto backend = Backend(engine, "bridge");
  ASSERT_NE(backend, nullptr);
  auto instances = backend->CreateDeployment(Spec("api", 3000, 2));
  ASSERT_TRUE(instances.ok()) << instances.status().ToString();

  auto bodies = engine.create_bodies();
  ASSERT_EQ(bodies.size(), 2u);
  std::vector<int> host_ports;
  for (const Json& body : bodies) {
    const int host_port = HostPortLabel(body);
    host_ports.push_back(host_port);
    EXPECT_EQ(PortEnv(body), std::vector<std::string>{"PORT=3000"});
    EXPECT_EQ(body["ExposedPorts"], Json::parse(R"({"3000/tcp":{}})"));
    EXPECT_EQ(body["HostConfig"]["PortBindings"]["3000/tcp"][0]["HostPort"],
              std::to_string(host_port));
    EXPECT_EQ(body["HostConfig"]["PortBindings"]["3000/tcp"][0]["HostIp"], "127.0.0.1");
    EXPECT_EQ(body["Labels"][kLabelContainerPort], "3000");
  }
  EXPECT_NE(host_ports[0], host_ports[1]);
  EXPECT_NE(host_ports[0], 3000);
  ASSERT_EQ(instances->size(), 2u);
  EXPECT_EQ((*instances)[0].address, "127.0.0.1:" + std::to_string(host_ports[0]));
  EXPECT_EQ((*instances)[1].address, "127.0.0.1:" + std::to_string(host_ports[1]));

  // The same request again creates nothing (idempotent in bridge mode too).
  ASSERT_TRUE(backend->CreateDeployment(Spec("api", 3000, 2)).ok());
  EXPECT_EQ(engine.create_bodies().size(), 2u);
}

TEST(KraneDockerNetworkModeTest, HostModeCreateBodyIsExactlyAsBefore) {
  ScriptedEngine engine;
  auto backend = Backend(engine, "host");
  ASSERT_NE(backend, nullptr);
  DeploymentSpec spec = Spec("site", 45123, 1);
  spec.env = {{"GREETING", "hi"}, {"PORT", "1"}};
  spec.memory_mib = 64;
  spec.cpu_millicores = 250;
  spec.health_check_path = "/healthz";
  auto instances = backend->CreateDeployment(spec);
  ASSERT_TRUE(instances.ok()) << instances.status().ToString();

  auto bodies = engine.create_bodies();
  ASSERT_EQ(bodies.size(), 1u);
  // What krane sent before network modes existed, key for key.
  EXPECT_EQ(bodies[0].dump(),
            // LogConfig: krane's log rotation (KRANE_LOG_MAX_SIZE, KRANE_LOG_MAX_FILES defaults).
            R"({"Env":["GREETING=hi","PORT=45123"],"HostConfig":{"Init":true,)"
            R"("LogConfig":{"Config":{"max-file":"3","max-size":"10485760"},"Type":"json-file"},)"
            R"("Memory":67108864,)"
            R"("MemorySwap":67108864,"NanoCpus":250000000,"NetworkMode":"host","PidsLimit":4096,)"
            R"("RestartPolicy":{"Name":"unless-stopped"}},"Image":"127.0.0.1:5000/app:1",)"
            R"("Labels":{"slipway.deployment":"site","slipway.health-check-path":"/healthz",)"
            R"("slipway.managed-by":"krane","slipway.namespace":"ns1","slipway.port":"45123"}})");
  ASSERT_EQ(instances->size(), 1u);
  EXPECT_EQ((*instances)[0].address, "127.0.0.1:45123");
}

TEST(KraneDockerNetworkModeTest, HostModeByDefaultPassesKranesPortAsPort) {
  ScriptedEngine engine;
  KraneBackendConfig config;
  config.docker_host = engine.host();
  auto backend = MakeKraneBackend(config);  // network_mode left at its default
  ASSERT_TRUE(backend.ok()) << backend.status().ToString();
  ASSERT_TRUE((*backend)->CreateDeployment(Spec("web", 0, 2)).ok());

  auto bodies = engine.create_bodies();
  ASSERT_EQ(bodies.size(), 2u);
  for (const Json& body : bodies) {
    const int host_port = HostPortLabel(body);
    EXPECT_GT(host_port, 0);
    EXPECT_EQ(body["HostConfig"]["NetworkMode"], "host");
    EXPECT_EQ(PortEnv(body), std::vector<std::string>{"PORT=" + std::to_string(host_port)});
    EXPECT_FALSE(body["HostConfig"].contains("PortBindings"));
    EXPECT_FALSE(body.contains("ExposedPorts"));
    EXPECT_FALSE(body["Labels"].contains(kLabelContainerPort));
  }
  EXPECT_NE(HostPortLabel(bodies[0]), HostPortLabel(bodies[1]));
  // Host mode still refuses one fixed port for several replicas: they would share it.
  auto refused = (*backend)->CreateDeployment(Spec("fixed", 3000, 2));
  EXPECT_EQ(refused.status().code(), Code::kInvalidArgument);
}

TEST(KraneDockerNetworkModeTest, UnknownNetworkModeIsRefusedBeforeAskingDockerd) {
  ScriptedEngine engine;
  KraneBackendConfig config;
  config.docker_host = engine.host();
  config.network_mode = "overlay";
  auto backend = MakeKraneBackend(config);
  ASSERT_FALSE(backend.ok());
  EXPECT_EQ(backend.status().code(), Code::kInvalidArgument);
  const std::string message(backend.status().message());
  EXPECT_NE(message.find("\"overlay\""), std::string::npos) << message;
  EXPECT_NE(message.find("KRANE_NETWORK_MODE"), std::string::npos) << message;
  EXPECT_NE(message.find("host"), std::string::npos) << message;
  EXPECT_NE(message.find("bridge"), std::string::npos) << message;
  EXPECT_EQ(engine.requests(), 0);
}

TEST(KraneDockerNetworkModeTest, PublishedPortIsReadyOnlyWhenTheAppHoldsTheConnection) {
  ScriptedEngine engine("running");
  auto backend = Backend(engine, "bridge");
  ASSERT_NE(backend, nullptr);
  ASSERT_TRUE(backend->CreateDeployment(Spec("web", 0, 1)).ok());
  auto bodies = engine.create_bodies();
  ASSERT_EQ(bodies.size(), 1u);
  const int host_port = HostPortLabel(bodies[0]);
  const DeploymentRef ref{"ns1", "web"};

  {
    // docker-proxy with no app behind it: connections are accepted, then closed.
    LoopbackListener proxy(host_port, LoopbackListener::Behaviour::kCloseAtOnce);
    ASSERT_TRUE(proxy.listening());
    auto instances = backend->GetDeployment(ref);
    ASSERT_TRUE(instances.ok()) << instances.status().ToString();
    ASSERT_EQ(instances->size(), 1u);
    EXPECT_EQ((*instances)[0].status, InstanceStatus::kPending);
    EXPECT_NE((*instances)[0].reason.find("closes them at once"), std::string::npos)
        << (*instances)[0].reason;
  }
  {
    LoopbackListener app(host_port, LoopbackListener::Behaviour::kHoldOpen);
    ASSERT_TRUE(app.listening());
    auto instances = backend->GetDeployment(ref);
    ASSERT_TRUE(instances.ok()) << instances.status().ToString();
    ASSERT_EQ(instances->size(), 1u);
    EXPECT_EQ((*instances)[0].status, InstanceStatus::kRunning) << (*instances)[0].reason;
    EXPECT_EQ((*instances)[0].address, "127.0.0.1:" + std::to_string(host_port));
  }
}

TEST(KraneDockerNetworkModeTest, HostModeTcpProbeStillOnlyNeedsAConnect) {
  ScriptedEngine engine("running");
  auto backend = Backend(engine, "host");
  ASSERT_NE(backend, nullptr);
  ASSERT_TRUE(backend->CreateDeployment(Spec("web", 0, 1)).ok());
  const int host_port = HostPortLabel(engine.create_bodies().at(0));
  // An app that accepts and closes is the app itself answering: RUNNING, as before.
  LoopbackListener app(host_port, LoopbackListener::Behaviour::kCloseAtOnce);
  ASSERT_TRUE(app.listening());
  auto instances = backend->GetDeployment({"ns1", "web"});
  ASSERT_TRUE(instances.ok()) << instances.status().ToString();
  ASSERT_EQ(instances->size(), 1u);
  EXPECT_EQ((*instances)[0].status, InstanceStatus::kRunning) << (*instances)[0].reason;
}

}  // namespace
}  // namespace slipway::krane::docker
