// krane's WatchDeployment on the docker backend against the real dockerd, served in-process so
// the test can read the backend's event counters and give the follow an hour-long safety poll:
// whatever the stream reports after every instance is RUNNING came from dockerd's /events.
// Shown: a container's way from PENDING to RUNNING, then its stop (a docker stop behind krane's
// back) reported as FAILED; until_settled ends the stream at RUNNING; an unknown deployment
// ends it with not_found; an event stream cut under the backend is opened again and its
// events still arrive.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "krane/backend.h"
#include "krane/docker/docker_backend.h"
#include "krane/krane_service.h"
#include "net/connect.h"
#include "net/http.h"
#include "net/http_server.h"
#include "slipway/krane/v1/deployment.pb.h"
#include "support/docker_api.h"
#include "support/krane_watch_reader.h"
#include "support/test_support.h"

namespace slipway::krane {
namespace {

namespace v1 = slipway::krane::v1;
using Json = nlohmann::json;
using namespace std::chrono_literals;

constexpr const char* kToken = "krane-watch-token";
constexpr const char* kService = "slipway.krane.v1.DeploymentService";
constexpr const char* kHelloImage = "slipway-test/krane-watch-hello:1";

std::string RunId() {
  static const std::string id = "kwt" + std::to_string(::getpid());
  return id;
}

void RemoveOurContainers() {
  Json filters = {{"label", Json::array({"slipway.namespace=" + RunId()})}};
  auto list = testing::DockerApi("GET", "/containers/json?all=1&filters=" +
                                            net::UriEncode(filters.dump()));
  if (!list.ok() || !list->is_array()) return;
  for (const Json& c : *list) {
    (void)testing::DockerApi("DELETE", "/containers/" + c["Id"].get<std::string>() + "?force=1");
  }
}

// A unix socket that forwards every connection to dockerd's, and can cut them all at once: a
// dockerd restart, as the event stream sees it.
class CuttableDockerSocket {
 public:
  explicit CuttableDockerSocket(std::string path) : path_(std::move(path)) {
    listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path_.c_str());
    EXPECT_EQ(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::listen(listen_fd_, 16), 0);
    acceptor_ = std::thread([this] { Accept(); });
  }
  ~CuttableDockerSocket() {
    ::shutdown(listen_fd_, SHUT_RDWR);
    ::close(listen_fd_);
    acceptor_.join();
    CutAll();
    for (auto& t : pumps_) t.join();
  }
  // While held, a new connection is closed at once instead of forwarded (dockerd down).
  void Hold(bool held) { held_ = held; }
  // Closes every connection forwarded so far.
  void CutAll() {
    std::lock_guard lock(mu_);
    for (int fd : open_) ::shutdown(fd, SHUT_RDWR);
  }

 private:
  void Accept() {
    for (;;) {
      int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (client < 0) return;
      if (held_) {
        ::close(client);
        continue;
      }
      int upstream = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_un addr{};
      addr.sun_family = AF_UNIX;
      std::snprintf(addr.sun_path, sizeof addr.sun_path, "/var/run/docker.sock");
      if (::connect(upstream, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        ::close(client);
        ::close(upstream);
        continue;
      }
      std::lock_guard lock(mu_);
      open_.push_back(client);
      open_.push_back(upstream);
      pumps_.emplace_back([client, upstream] { Pump(client, upstream); });
      pumps_.emplace_back([client, upstream] { Pump(upstream, client); });
    }
  }
  // A send into a connection cut under it fails with EPIPE, never SIGPIPE (which would end
  // the test process).
  static void Pump(int from, int to) {
    char buf[16384];
    for (;;) {
      ssize_t n = ::read(from, buf, sizeof buf);
      if (n <= 0) break;
      if (::send(to, buf, static_cast<size_t>(n), MSG_NOSIGNAL) != n) break;
    }
    ::shutdown(to, SHUT_RDWR);
    ::shutdown(from, SHUT_RDWR);
  }

  std::string path_;
  int listen_fd_ = -1;
  std::thread acceptor_;
  std::mutex mu_;
  std::vector<int> open_;  // closed by the process's end; a test makes a handful
  std::vector<std::thread> pumps_;
  std::atomic<bool> held_{false};
};

// One WatchDeployment stream, each wait bounded by 60s.
class StreamReader : public testing::KraneWatchReader {
 public:
  StreamReader(const net::ConnectClient& client, v1::WatchDeploymentRequest req)
      : KraneWatchReader(client, std::move(req), 60s) {}
};

bool IsRunning(const v1::Instance& in) { return in.status() == v1::INSTANCE_STATUS_RUNNING; }
bool IsFailed(const v1::Instance& in) { return in.status() == v1::INSTANCE_STATUS_FAILED; }

class KraneDockerWatchTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto ping = testing::DockerApi("GET", "/_ping");
    ASSERT_TRUE(ping.ok()) << "dockerd does not answer on /var/run/docker.sock ("
                           << ping.status().ToString() << "); start it with scripts/services.sh";
    testing::TempDir dir;
    std::filesystem::copy_file("/bin/busybox", dir.path() / "busybox");
    std::filesystem::create_directories(dir.path() / "www");
    std::ofstream(dir.path() / "www" / "index.html") << "watched\n";
    std::ofstream(dir.path() / "Dockerfile")
        << "FROM scratch\nCOPY busybox /bin/busybox\nCOPY www /www\n"
           R"(CMD ["/bin/busybox","sh","-c","exec /bin/busybox httpd -f -p 127.0.0.1:$PORT -h /www"])";
    auto built = testing::RunCommand("tar -C '" + dir.str() +
                                     "' -c . | /usr/bin/docker build -q -t " + kHelloImage + " -");
    ASSERT_EQ(built.exit_code, 0) << built.output;
  }

  void TearDown() override { RemoveOurContainers(); }

  // krane in-process on a docker backend reaching dockerd at docker_host.
  void StartKrane(const std::string& docker_host = "unix:///var/run/docker.sock") {
    KraneBackendConfig c;
    c.docker_host = docker_host;
    auto backend = MakeKraneBackend(c);
    ASSERT_TRUE(backend.ok()) << backend.status().ToString();
    backend_ = std::move(*backend);
    FollowOptions follow;
    follow.safety_poll = 1h;  // only events (and probes of PENDING instances) make it read
    service_ = std::make_unique<KraneService>(*backend_, kToken, follow);
    service_->Register(router_);
    auto server = net::HttpServer::Start({}, router_.AsHandler());
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(*server);
    net::ConnectClient::Options o;
    o.base_url = "http://" + server_->address();
    o.bearer_token = kToken;
    client_ = std::make_unique<net::ConnectClient>(o);
  }

  docker::ContainerEventCounters Counters() {
    return dynamic_cast<docker::DockerBackendView&>(*backend_).EventCounters();
  }

  // The event stream opens on the follow's first wait, which may come after the instance is
  // already RUNNING on the stream: true once dockerd has answered it, false after 30s.
  bool WaitForEventStreamOpen() {
    const auto give_up = std::chrono::steady_clock::now() + 30s;
    while (Counters().opens < 1 && std::chrono::steady_clock::now() < give_up) {
      std::this_thread::sleep_for(10ms);
    }
    return Counters().opens >= 1;
  }

  std::string Create(const std::string& name) {
    v1::CreateDeploymentRequest req;
    req.set_namespace_(RunId());
    req.set_deployment_id(RunId() + "-" + name);
    req.set_image(kHelloImage);
    req.set_replicas(1);
    req.set_memory_mib(64);
    auto created = client_->Call<v1::CreateDeploymentResponse>(
        net::ConnectProcedure(kService, "CreateDeployment"), req);
    EXPECT_TRUE(created.ok()) << created.status().ToString();
    return req.deployment_id();
  }

  v1::WatchDeploymentRequest Watch(const std::string& id, bool until_settled) {
    v1::WatchDeploymentRequest req;
    req.set_namespace_(RunId());
    req.set_deployment_id(id);
    req.set_until_settled(until_settled);
    return req;
  }

  // Stops the deployment's container behind krane's back, as an operator's docker stop would.
  static void StopContainerOf(const std::string& id) {
    Json filters = {{"label", Json::array({"slipway.deployment=" + id})}};
    auto list = testing::DockerApi("GET", "/containers/json?all=1&filters=" +
                                              net::UriEncode(filters.dump()));
    ASSERT_TRUE(list.ok() && list->is_array() && !list->empty());
    const std::string container = (*list)[0]["Id"].get<std::string>();
    // A stopped container that dockerd would start again (unless-stopped) is PENDING, as after a
    // dockerd restart; with restart policy "no" its stop is final, which is what is followed here.
    auto updated = testing::DockerApi("POST", "/containers/" + container + "/update",
                                      Json{{"RestartPolicy", {{"Name", "no"}}}}.dump());
    ASSERT_TRUE(updated.ok()) << updated.status().ToString();
    auto stopped = testing::DockerApi("POST", "/containers/" + container + "/stop?t=1");
    ASSERT_TRUE(stopped.ok()) << stopped.status().ToString();
  }

  void TearDownKrane() {
    if (server_) server_->Shutdown(2s);
  }
  ~KraneDockerWatchTest() override { TearDownKrane(); }

  std::unique_ptr<KraneBackend> backend_;
  std::unique_ptr<KraneService> service_;
  net::ConnectRouter router_;
  std::unique_ptr<net::HttpServer> server_;
  std::unique_ptr<net::ConnectClient> client_;
};

TEST_F(KraneDockerWatchTest, StreamFollowsAContainerToRunningAndReportsItsStopFromDockerEvents) {
  StartKrane();
  const std::string id = Create("follow");
  StreamReader stream(*client_, Watch(id, /*until_settled=*/false));
  ASSERT_TRUE(stream.WaitFor(IsRunning)) << "the instance never became RUNNING on the stream";
  const int64_t events_before = Counters().events;
  // Every instance is RUNNING: with an hour-long safety poll, only dockerd's events make the
  // follow read again.
  StopContainerOf(id);
  ASSERT_TRUE(stream.WaitFor(IsFailed)) << "the stop never reached the stream";
  EXPECT_GT(Counters().events, events_before);
  EXPECT_GE(Counters().opens, 1);
  auto messages = stream.messages();
  const auto& last = messages.back().instances(0);
  EXPECT_NE(last.reason().find("exit"), std::string::npos) << last.reason();
  // Each message is a change: no two in a row are the same.
  for (size_t i = 1; i < messages.size(); ++i) {
    EXPECT_NE(messages[i].SerializeAsString(), messages[i - 1].SerializeAsString()) << i;
  }
}

TEST_F(KraneDockerWatchTest, UntilSettledEndsTheStreamWhenTheInstanceIsRunning) {
  StartKrane();
  const std::string id = Create("settle");
  StreamReader stream(*client_, Watch(id, /*until_settled=*/true));
  auto ended = stream.WaitEnded();
  ASSERT_TRUE(ended.has_value()) << "the stream did not end";
  EXPECT_TRUE(ended->ok()) << ended->ToString();
  auto messages = stream.messages();
  ASSERT_FALSE(messages.empty());
  EXPECT_TRUE(IsRunning(messages.back().instances(0)));
}

TEST_F(KraneDockerWatchTest, AnUnknownDeploymentEndsTheStreamWithNotFound) {
  StartKrane();
  StreamReader stream(*client_, Watch(RunId() + "-nothing", false));
  auto ended = stream.WaitEnded();
  ASSERT_TRUE(ended.has_value());
  EXPECT_EQ(ended->code(), Code::kNotFound) << ended->ToString();
  EXPECT_TRUE(stream.messages().empty());
}

TEST_F(KraneDockerWatchTest, ACutEventStreamIsOpenedAgainAndItsEventsStillArrive) {
  testing::TempDir dir;
  CuttableDockerSocket socket((dir.path() / "docker.sock").string());
  StartKrane("unix://" + (dir.path() / "docker.sock").string());
  const std::string id = Create("cut");
  StreamReader stream(*client_, Watch(id, false));
  ASSERT_TRUE(stream.WaitFor(IsRunning));
  ASSERT_TRUE(WaitForEventStreamOpen()) << "no event stream: " << Counters().last_error;
  const int64_t opens = Counters().opens;
  socket.CutAll();
  const auto give_up = std::chrono::steady_clock::now() + 30s;
  while (Counters().opens <= opens && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_GT(Counters().opens, opens) << "the event stream was not opened again; last error: "
                                     << Counters().last_error;
  EXPECT_FALSE(Counters().last_error.empty());
  StopContainerOf(id);
  ASSERT_TRUE(stream.WaitFor(IsFailed)) << "an event after the reopening never reached the stream";
}

// The container stops while krane's event stream is down; the reopened stream asks dockerd
// for what happened since, so the stop arrives as an event (not only as the reopening's
// wake-up of every waiter).
TEST_F(KraneDockerWatchTest, EventsDuringAGapInTheStreamAreReplayedWhenItIsOpenedAgain) {
  testing::TempDir dir;
  CuttableDockerSocket socket((dir.path() / "docker.sock").string());
  StartKrane("unix://" + (dir.path() / "docker.sock").string());
  const std::string id = Create("gap");
  StreamReader stream(*client_, Watch(id, false));
  ASSERT_TRUE(stream.WaitFor(IsRunning));
  ASSERT_TRUE(WaitForEventStreamOpen()) << "no event stream: " << Counters().last_error;
  const int64_t opens = Counters().opens;
  socket.Hold(true);
  socket.CutAll();
  StopContainerOf(id);  // straight to dockerd's own socket, while krane's is down
  const int64_t events_before_reopen = Counters().events;
  socket.Hold(false);
  const auto give_up = std::chrono::steady_clock::now() + 30s;
  while ((Counters().opens <= opens || Counters().events == events_before_reopen) &&
         std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_GT(Counters().opens, opens) << "the stream was not opened again: "
                                     << Counters().last_error;
  EXPECT_GT(Counters().events, events_before_reopen)
      << "the stop that happened during the gap was not replayed by the reopened stream";
  ASSERT_TRUE(stream.WaitFor(IsFailed));
}

}  // namespace
}  // namespace slipway::krane
