// `slipway run krane --backend kubernetes` as a process, SIGKILLed mid-deploy and started
// again: it keeps no state of its own, so the new process finds the objects the old one made
// (by their labels), a repeated CreateDeployment makes nothing twice, and the pods run. And its
// /readyz: ready while the API server answers, 503 with the reason while it does not (the API
// server is reached through a relay of the test's own, which the test stops and starts again:
// the shared cluster is never touched).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <mutex>
#include <thread>
#include <vector>

#include "net/connect.h"
#include "net/http_client.h"
#include "slipway/krane/v1/deployment.pb.h"
#include "support/kubernetes_cluster.h"
#include "support/test_support.h"

namespace slipway::krane {
namespace {

namespace v1 = slipway::krane::v1;
using namespace std::chrono_literals;

constexpr const char* kToken = "krane-k8s-process-token";
constexpr const char* kService = "slipway.krane.v1.DeploymentService";

std::string Ns() {
  static const std::string ns = "kp" + std::to_string(::getpid());
  return ns;
}

// Relays TCP connections from a loopback port to another (the API server's), byte for byte, so
// TLS passes through unchanged; Stop() closes the port and every relayed connection, as an API
// server that went away would, and Start() opens the same port again.
class TcpRelay {
 public:
  TcpRelay(int listen_port, int target_port) : listen_port_(listen_port), target_port_(target_port) {}
  ~TcpRelay() { Stop(); }

  bool Start() {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr = Loopback(listen_port_);
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(listen_fd_, 64) != 0) {
      ::close(listen_fd_);
      listen_fd_ = -1;
      return false;
    }
    stopping_ = false;
    acceptor_ = std::thread([this] { Accept(); });
    return true;
  }

  void Stop() {
    if (listen_fd_ < 0) return;
    stopping_ = true;
    ::shutdown(listen_fd_, SHUT_RDWR);
    acceptor_.join();
    ::close(listen_fd_);
    listen_fd_ = -1;
    {
      std::lock_guard lock(mu_);
      for (int fd : open_) ::shutdown(fd, SHUT_RDWR);
    }
    for (auto& t : pumps_) t.join();
    pumps_.clear();
    std::lock_guard lock(mu_);
    for (int fd : open_) ::close(fd);
    open_.clear();
  }

 private:
  static sockaddr_in Loopback(int port) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return addr;
  }

  void Accept() {
    for (;;) {
      int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (client < 0) return;  // shut down by Stop()
      if (stopping_) {
        ::close(client);
        return;
      }
      int server = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in addr = Loopback(target_port_);
      if (::connect(server, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        ::close(server);
        ::close(client);
        continue;
      }
      {
        std::lock_guard lock(mu_);
        open_.push_back(client);
        open_.push_back(server);
      }
      pumps_.emplace_back([client, server] { Pump(client, server); });
    }
  }

  // Copies both ways until either side closes; then shuts both down.
  static void Pump(int a, int b) {
    char buf[16384];
    pollfd fds[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
    for (;;) {
      if (::poll(fds, 2, 1000) < 0) break;
      bool done = false;
      for (int i = 0; i < 2 && !done; ++i) {
        if ((fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
        ssize_t n = ::recv(fds[i].fd, buf, sizeof buf, 0);
        if (n <= 0 || ::send(fds[1 - i].fd, buf, static_cast<size_t>(n), MSG_NOSIGNAL) != n) done = true;
      }
      if (done) break;
    }
    ::shutdown(a, SHUT_RDWR);
    ::shutdown(b, SHUT_RDWR);
  }

  const int listen_port_, target_port_;
  int listen_fd_ = -1;
  std::atomic<bool> stopping_{false};
  std::thread acceptor_;
  std::vector<std::thread> pumps_;  // only the acceptor thread adds, only Stop() joins
  std::mutex mu_;
  std::vector<int> open_;
};

class KubernetesKraneProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string problem = testing::KubernetesClusterProblem();
    ASSERT_TRUE(problem.empty()) << problem;
    testing::Kubectl("create namespace " + Ns());
    std::string error;
    image_ = testing::BuildAndPushImage(
        "slipway-test/k8s-hello:1",
        R"(CMD ["/bin/busybox","sh","-c","exec /bin/busybox httpd -f -p 127.0.0.1:$PORT -h /www"])",
        &error);
    ASSERT_FALSE(image_.empty()) << error;
    port_ = testing::FreePort();
    log_ = (dir_.path() / "krane.log").string();
  }
  void TearDown() override {
    krane_.reset();
    testing::Kubectl("delete namespace " + Ns() + " --wait=false");
  }

  void StartKrane(const std::string& kubeconfig = testing::TestKubeconfig()) {
    krane_ = std::make_unique<testing::Process>(
        std::vector<std::string>{testing::SlipwayBinary(), "run", "krane", "--listen",
                                 "127.0.0.1:" + std::to_string(port_), "--backend", "kubernetes",
                                 "--kubeconfig", kubeconfig},
        std::map<std::string, std::string>{
            {"KRANE_TOKEN", kToken},
            {"KRANE_NAMESPACE", Ns()},
            {"KRANE_NODE_SELECTOR", "type=kwok"},
            {"KRANE_TOLERATIONS", "kwok.x-k8s.io/node=fake:NoSchedule"},
            {"KRANE_ADDRESS", "pod-ip"}},
        log_);
    ASSERT_TRUE(testing::WaitForPort(port_)) << testing::ReadFile(log_);
  }

  void KillKrane() {
    krane_->Signal(SIGKILL);
    krane_->Wait(10s);
    krane_.reset();
  }

  net::ConnectClient Client() const {
    net::ConnectClient::Options o;
    o.base_url = "http://127.0.0.1:" + std::to_string(port_);
    o.bearer_token = kToken;
    o.timeout = 60s;
    return net::ConnectClient(o);
  }

  v1::CreateDeploymentRequest Request(const std::string& id) const {
    v1::CreateDeploymentRequest req;
    req.set_namespace_("team");
    req.set_deployment_id(id);
    req.set_image(image_);
    req.set_replicas(2);
    req.set_cpu_millicores(100);
    req.set_memory_mib(64);
    return req;
  }

  Result<v1::CreateDeploymentResponse> Create(const std::string& id) const {
    return Client().Call<v1::CreateDeploymentResponse>(
        net::ConnectProcedure(kService, "CreateDeployment"), Request(id));
  }

  // Polls GetDeployment until both instances are RUNNING (true) or 60 s pass.
  bool WaitRunning(const std::string& id, v1::GetDeploymentResponse* last) const {
    v1::GetDeploymentRequest req;
    req.set_namespace_("team");
    req.set_deployment_id(id);
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    while (std::chrono::steady_clock::now() < deadline) {
      auto got = Client().Call<v1::GetDeploymentResponse>(
          net::ConnectProcedure(kService, "GetDeployment"), req);
      if (got.ok()) {
        *last = *got;
        int running = 0;
        for (const auto& i : got->instances()) running += i.status() == v1::INSTANCE_STATUS_RUNNING;
        if (running == 2 && got->instances_size() == 2) return true;
      }
      std::this_thread::sleep_for(200ms);
    }
    return false;
  }

  size_t Count(const std::string& kind, const std::string& id) const {
    auto list =
        testing::KubectlJson("-n " + Ns() + " get " + kind + " -l slipway.dev/deployment=" + id);
    return list.is_object() ? list["items"].size() : 999;
  }

  testing::TempDir dir_;
  std::string image_;
  int port_ = 0;
  std::string log_;
  std::unique_ptr<testing::Process> krane_;
};

TEST_F(KubernetesKraneProcessTest, KilledMidDeployAndRestartedFindsItsObjectsAgain) {
  StartKrane();
  // Killed right after CreateDeployment answered, before any pod was ready.
  const std::string first = Ns() + "-first";
  ASSERT_TRUE(Create(first).ok());
  KillKrane();
  // Killed while a CreateDeployment is in flight.
  const std::string second = Ns() + "-second";
  StartKrane();
  std::thread call([&] { (void)Create(second); });
  std::this_thread::sleep_for(15ms);
  KillKrane();
  call.join();

  StartKrane();
  v1::GetDeploymentResponse got;
  EXPECT_TRUE(WaitRunning(first, &got)) << got.DebugString() << testing::ReadFile(log_);
  // The caller (ctrl's schedule step) repeats its request after a failure: nothing doubles.
  auto again = Create(second);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_TRUE(WaitRunning(second, &got)) << got.DebugString();
  for (const std::string& id : {first, second}) {
    EXPECT_EQ(Count("statefulsets", id), 1u) << id;
    EXPECT_EQ(Count("services", id), 1u) << id;
    EXPECT_EQ(Count("pods", id), 2u) << id;
  }
}

struct Answer {
  int status = 0;
  std::string body;
};

Answer GetPath(int port, const std::string& path) {
  net::HttpClient http;
  net::ClientRequest req;
  req.url = "http://127.0.0.1:" + std::to_string(port) + path;
  req.timeout = 30s;
  auto resp = http.Do(req);
  if (!resp.ok()) return {0, resp.status().ToString()};
  return {resp->status, resp->body};
}

TEST_F(KubernetesKraneProcessTest, ReadyzIsReadyWhileTheApiServerAnswersAndNotReadyWithTheReasonWhileItDoesNot) {
  // The test kubeconfig with its server moved to the relay's port (the API server's certificate
  // names 127.0.0.1, whatever the port).
  std::string config = testing::ReadFile(testing::TestKubeconfig());
  const std::string server = "server: https://127.0.0.1:";
  const size_t at = config.find(server);
  ASSERT_NE(at, std::string::npos) << config;
  const size_t port_at = at + server.size();
  const size_t port_end = config.find_first_not_of("0123456789", port_at);
  const int api_port = std::stoi(config.substr(port_at, port_end - port_at));
  const int relay_port = testing::FreePort();
  config.replace(port_at, port_end - port_at, std::to_string(relay_port));
  const std::string relayed = (dir_.path() / "relayed-kubeconfig").string();
  std::ofstream(relayed) << config;

  TcpRelay relay(relay_port, api_port);
  ASSERT_TRUE(relay.Start());
  StartKrane(relayed);
  Answer ready = GetPath(port_, "/readyz");
  EXPECT_EQ(ready.status, 200) << ready.body << testing::ReadFile(log_);
  EXPECT_EQ(ready.body.rfind("ready", 0), 0u) << ready.body;

  relay.Stop();  // nothing answers at the API server's address any more
  Answer down = GetPath(port_, "/readyz");
  EXPECT_EQ(down.status, 503) << down.body;
  EXPECT_NE(down.body.find("not ready"), std::string::npos) << down.body;
  EXPECT_NE(down.body.find("127.0.0.1:" + std::to_string(relay_port)), std::string::npos)
      << "the reason names the API server: " << down.body;
  EXPECT_EQ(GetPath(port_, "/healthz").status, 200) << "alive, if not ready";

  ASSERT_TRUE(relay.Start());  // the API server is back at its address
  Answer again = GetPath(port_, "/readyz");
  EXPECT_EQ(again.status, 200) << again.body;
}

}  // namespace
}  // namespace slipway::krane
