// What the deploy tests share: the real peers a deployment needs (dockerd through krane's
// docker backend, served in-process over HTTP; the embedded S3 server), app images FROM scratch
// with Debian's static busybox, built once per suite, and helpers to call ctrl and to look
// behind it (dockerd's containers, the partition database).
//
// Cleanup: every container of a deployment a test created (label slipway.deployment=<id>) is
// removed after the test, pass or fail; the suite's images (tag ...:run<pid>) after the suite.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "base/crypto.h"
#include "base/ids.h"
#include "db/database.h"
#include "krane/backend.h"
#include "krane/krane_service.h"
#include "net/connect.h"
#include "net/http.h"
#include "net/http_client.h"
#include "net/http_server.h"
#include "slipway/ctrl/v1/build.pb.h"
#include "slipway/ctrl/v1/deployment.pb.h"
#include "storage/s3_server.h"
#include "support/docker_api.h"
#include "support/test_support.h"

namespace slipway::ctrl::deploy_test {

namespace pb = slipway::ctrl::v1;
using Json = nlohmann::json;
using namespace std::chrono_literals;

inline constexpr const char* kKraneToken = "deploy-test-krane-token";
inline constexpr const char* kS3Access = "deploytestaccess";
inline constexpr const char* kS3Secret = "deploytestsecret";
inline constexpr const char* kDeploymentService = "slipway.ctrl.v1.DeploymentService";
inline constexpr const char* kOpenApiYaml =
    "openapi: 3.0.0\ninfo:\n  title: hello\n  version: '1'\npaths:\n  /:\n    get:\n"
    "      responses:\n        '200':\n          description: the greeting\n";

inline std::string RunTag() { return "run" + std::to_string(::getpid()); }
// Images of this suite: "slipway-test/deploy-<name>:run<pid>".
inline std::string Image(const std::string& name) {
  return "slipway-test/deploy-" + name + ":" + RunTag();
}

// dockerd's API, to check what happened behind krane.
inline Result<Json> Docker(const std::string& method, const std::string& path) {
  return slipway::testing::DockerApi(method, path);
}

// `docker ps -a --filter label=slipway.deployment=<id>`.
inline std::vector<Json> ContainersOf(const std::string& deployment_id) {
  Json filters = {{"label", Json::array({"slipway.deployment=" + deployment_id})}};
  auto list = Docker("GET", "/containers/json?all=1&filters=" + net::UriEncode(filters.dump()));
  EXPECT_TRUE(list.ok()) << list.status().ToString();
  std::vector<Json> out;
  if (list.ok() && list->is_array()) {
    for (const Json& c : *list) out.push_back(c);
  }
  return out;
}

inline void RemoveContainersOf(const std::string& deployment_id) {
  for (const Json& c : ContainersOf(deployment_id)) {
    (void)Docker("DELETE", "/containers/" + c["Id"].get<std::string>() + "?force=1&v=1");
  }
}

// The app images: a static site with an OpenAPI spec, the same without one, an app that exits
// at once, one that never listens, and one that listens only after a few seconds.
inline void BuildAppImages(const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  std::filesystem::copy_file("/bin/busybox", dir / "busybox",
                             std::filesystem::copy_options::overwrite_existing);
  std::filesystem::create_directories(dir / "www");
  std::filesystem::create_directories(dir / "plain");
  std::ofstream(dir / "www" / "index.html") << "hello from a deployment\n";
  std::ofstream(dir / "www" / "openapi.yaml") << kOpenApiYaml;
  std::ofstream(dir / "plain" / "index.html") << "no spec here\n";
  const std::string base =
      "FROM scratch\nCOPY busybox /bin/busybox\nCOPY www /www\nCOPY plain /plain\n";
  const std::string httpd = "exec /bin/busybox httpd -f -p 127.0.0.1:$PORT -h ";
  auto build = [&](const std::string& name, const std::string& cmd) {
    // The label makes this process's image its own: ctest runs the suite's tests as parallel
    // processes, and without it their identical builds would share one image id, which one
    // process's RemoveAppImages() could delete from under another's fresh tag.
    std::ofstream(dir / "Dockerfile") << base << "LABEL slipway.test-run=" << RunTag() << "\n"
                                      << cmd << "\n";
    auto result = testing::RunCommand("tar -C '" + dir.string() +
                                      "' -c . | /usr/bin/docker build -q --no-cache -t " + Image(name) + " -");
    ASSERT_EQ(result.exit_code, 0) << "building " << Image(name) << ": " << result.output;
  };
  build("hello", R"(CMD ["/bin/busybox","sh","-c",")" + httpd + R"(/www"])");
  build("plain", R"(CMD ["/bin/busybox","sh","-c",")" + httpd + R"(/plain"])");
  build("crash", R"(CMD ["/bin/busybox","sh","-c","echo starting; echo boom >&2; exit 3"])");
  build("sleeper", R"(CMD ["/bin/busybox","sleep","3600"])");
  // Serves, but on a port the kernel picks, never the one it was given (a fixed other port
  // could be in use by a parallel test and the app would crash instead).
  build("wrongport", R"(CMD ["/bin/busybox","sh","-c","exec /bin/busybox httpd -f -p 127.0.0.1:0 -h /www"])");
  build("slow", R"(CMD ["/bin/busybox","sh","-c","/bin/busybox sleep 5; )" + httpd + R"(/www"])");
}

inline void RemoveAppImages() {
  for (const char* name : {"hello", "plain", "crash", "sleeper", "slow", "wrongport"}) {
    (void)Docker("DELETE", "/images/" + net::UriEncode(Image(name)) + "?force=1&noprune=1");
  }
}

// krane with the docker backend, served over HTTP in this process.
class InProcessKrane {
 public:
  // On a free port the first time; again on the same port after Stop().
  void Start() {
    krane::KraneBackendConfig config;
    auto backend = krane::MakeKraneBackend(config);
    ASSERT_TRUE(backend.ok()) << backend.status().ToString();
    backend_ = std::move(*backend);
    service_ = std::make_unique<krane::KraneService>(*backend_, kKraneToken);
    router_ = std::make_unique<net::ConnectRouter>();
    service_->Register(*router_);
    net::HttpServer::Options options;
    if (!address_.empty()) options.listen = address_;
    auto server = net::HttpServer::Start(options, router_->AsHandler());
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(*server);
    address_ = server_->address();
  }
  void Stop() {
    if (server_) server_->Shutdown();
    server_.reset();
  }
  std::string url() const { return "http://" + address_; }

 private:
  std::string address_;
  std::unique_ptr<krane::KraneBackend> backend_;
  std::unique_ptr<krane::KraneService> service_;
  std::unique_ptr<net::ConnectRouter> router_;
  std::unique_ptr<net::HttpServer> server_;
};

inline std::unique_ptr<storage::S3Server> StartS3(const std::filesystem::path& data_dir) {
  storage::S3ServerOptions o;
  o.listen = "127.0.0.1:0";
  o.data_dir = data_dir.string();
  o.access_key = kS3Access;
  o.secret_key = kS3Secret;
  auto server = storage::S3Server::Start(o);
  EXPECT_TRUE(server.ok()) << server.status().ToString();
  return server.ok() ? std::move(*server) : nullptr;
}

// A client of ctrl's DeploymentService with a workspace's token.
class CtrlClient {
 public:
  CtrlClient(std::string endpoint, std::string token) {
    net::ConnectClient::Options o;
    o.base_url = std::move(endpoint);
    o.bearer_token = std::move(token);
    o.timeout = 30s;
    client_ = std::make_unique<net::ConnectClient>(o);
  }

  const net::ConnectClient& connect() const { return *client_; }

  Result<std::string> DeployImage(const std::string& project, const std::string& image,
                                  int replicas, const std::string& branch = "",
                                  const std::string& environment = "") {
    pb::CreateDeploymentRequest req;
    req.set_project(project);
    req.set_image(image);
    req.set_branch(branch);
    req.set_environment(environment);
    req.mutable_resources()->set_replicas(replicas);
    req.mutable_resources()->set_memory_mib(64);
    req.mutable_resources()->set_cpu_millicores(250);
    auto resp = client_->Call<pb::CreateDeploymentResponse>(
        net::ConnectProcedure(kDeploymentService, "CreateDeployment"), req);
    if (!resp.ok()) return resp.status();
    return resp->deployment_id();
  }

  Result<pb::Deployment> Get(const std::string& id) {
    pb::GetDeploymentRequest req;
    req.set_deployment_id(id);
    auto resp = client_->Call<pb::GetDeploymentResponse>(
        net::ConnectProcedure(kDeploymentService, "GetDeployment"), req);
    if (!resp.ok()) return resp.status();
    return resp->deployment();
  }

  Result<pb::GetOpenApiSpecResponse> Spec(const std::string& id) {
    pb::GetOpenApiSpecRequest req;
    req.set_deployment_id(id);
    return client_->Call<pb::GetOpenApiSpecResponse>(
        net::ConnectProcedure(kDeploymentService, "GetOpenApiSpec"), req);
  }

  // Polls GetDeployment until done says so or the timeout; returns the last answer.
  pb::Deployment WaitFor(const std::string& id, std::chrono::milliseconds timeout,
                         const std::function<bool(const pb::Deployment&)>& done) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    pb::Deployment last;
    while (true) {
      auto got = Get(id);
      if (got.ok()) {
        last = *got;
        if (done(last)) return last;
      }
      if (std::chrono::steady_clock::now() >= deadline) return last;
      std::this_thread::sleep_for(100ms);
    }
  }

  pb::Deployment WaitForFinal(const std::string& id, std::chrono::milliseconds timeout = 90s) {
    return WaitFor(id, timeout, [](const pb::Deployment& d) {
      return d.status() == pb::DEPLOYMENT_STATUS_READY ||
             d.status() == pb::DEPLOYMENT_STATUS_FAILED;
    });
  }

 private:
  std::unique_ptr<net::ConnectClient> client_;
};

// Uploads, through GenerateUploadURL and a presigned PUT, the context of a static site saying
// `text` (busybox httpd FROM scratch) for the project; returns its context key. With
// listen_after_seconds the site starts listening only that long after it starts.
inline std::string UploadSiteContext(CtrlClient& client, const std::string& project,
                                     const std::string& text, const std::filesystem::path& scratch,
                                     int listen_after_seconds = 0) {
  testing::TempDir src;
  std::filesystem::copy_file("/bin/busybox", src.path() / "busybox");
  std::filesystem::create_directories(src.path() / "www");
  std::ofstream(src.path() / "www" / "index.html") << text << "\n";
  std::ofstream(src.path() / "Dockerfile")
      << "FROM scratch\nCOPY busybox /bin/busybox\nCOPY www /www\n"
      << R"(CMD ["/bin/busybox","sh","-c",")"
      << (listen_after_seconds > 0 ? "/bin/busybox sleep " + std::to_string(listen_after_seconds) + "; " : "")
      << R"(exec /bin/busybox httpd -f -p 127.0.0.1:$PORT -h /www"])"
      << "\n";
  const auto archive = scratch / (project + "-" + RandomHex(4) + ".tar.gz");
  auto tar = testing::RunCommand("tar -C '" + src.str() + "' -czf '" + archive.string() + "' .");
  EXPECT_EQ(tar.exit_code, 0) << tar.output;
  pb::GenerateUploadURLRequest up;
  up.set_project(project);
  up.set_sha256(testing::FileSha256(archive));
  up.set_size(static_cast<int64_t>(std::filesystem::file_size(archive)));
  auto presigned = client.connect().Call<pb::GenerateUploadURLResponse>(
      net::ConnectProcedure("slipway.ctrl.v1.BuildService", "GenerateUploadURL"), up);
  EXPECT_TRUE(presigned.ok()) << presigned.status().ToString();
  if (!presigned.ok()) return "";
  net::HttpClient http;
  net::ClientRequest put;
  put.method = "PUT";
  put.url = presigned->upload_url();
  for (const auto& [name, value] : presigned->upload_headers()) put.headers.Add(name, value);
  put.body_file = archive.string();
  auto uploaded = http.Do(put);
  EXPECT_TRUE(uploaded.ok() && uploaded->status == 200);
  return presigned->context_key();
}

// Creates a deployment of an uploaded context; returns its id (empty, with a failure, if refused).
inline std::string DeployContext(CtrlClient& client, const std::string& project,
                                 const std::string& key) {
  pb::CreateDeploymentRequest create;
  create.set_project(project);
  create.mutable_context()->set_context_key(key);
  auto created = client.connect().Call<pb::CreateDeploymentResponse>(
      net::ConnectProcedure(kDeploymentService, "CreateDeployment"), create);
  EXPECT_TRUE(created.ok()) << created.status().ToString();
  return created.ok() ? created->deployment_id() : "";
}

inline const pb::DeploymentStep* FindStep(const pb::Deployment& d, const std::string& name) {
  for (const auto& s : d.steps()) {
    if (s.name() == name) return &s;
  }
  return nullptr;
}

struct InstanceRowView {
  std::string instance_id, address, status, reason;
};

inline std::vector<InstanceRowView> PartitionInstances(db::Database& partition,
                                                       const std::string& deployment_id) {
  auto rows = partition.Query(
      "SELECT instance_id, address, status, reason FROM instances WHERE deployment_id = $1 "
      "ORDER BY instance_id",
      {deployment_id});
  EXPECT_TRUE(rows.ok()) << rows.status().ToString();
  std::vector<InstanceRowView> out;
  if (!rows.ok()) return out;
  for (const auto& r : *rows) {
    out.push_back({r["instance_id"].AsText(), r["address"].AsText(), r["status"].AsText(),
                   r["reason"].AsText()});
  }
  return out;
}

// hostname -> deployment id, every row of gateway_routes.
inline std::map<std::string, std::string> PartitionRoutes(db::Database& partition) {
  auto rows = partition.Query("SELECT hostname, deployment_id FROM gateway_routes");
  EXPECT_TRUE(rows.ok()) << rows.status().ToString();
  std::map<std::string, std::string> out;
  if (!rows.ok()) return out;
  for (const auto& r : *rows) out[r["hostname"].AsText()] = r["deployment_id"].AsText();
  return out;
}

}  // namespace slipway::ctrl::deploy_test
