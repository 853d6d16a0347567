// What the ctrl integration tests share: build contexts written as directories and packaged the
// way the CLI packages them, the embedded S3 store, the real dockerd and registry as seen from
// outside ctrl (to check what a build left behind), and a ctrl in-process on SQLite or
// PostgreSQL with tokens for two workspaces.
//
// Every image a test makes is named after a project of this test run (RunProject()), so
// RemoveImagesOf() cleans up exactly what the test built and never touches anyone else's.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cli/context_archive.h"
#include "ctrl/build/backend.h"
#include "ctrl/ctrl_server.h"
#include "net/connect.h"
#include "net/http_client.h"
#include "storage/s3_client.h"
#include "storage/s3_server.h"
#include "support/postgres.h"
#include "support/test_support.h"

namespace slipway::ctrl::test {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using namespace std::chrono_literals;

inline constexpr const char* kAccessKey = "ctrl-test-access";
inline constexpr const char* kSecretKey = "ctrl-test-secret-0123456789";
inline constexpr const char* kBucket = "slipway-ctrl-test";
inline constexpr const char* kRegistry = "127.0.0.1:5000";
inline constexpr const char* kDockerSocket = "/var/run/docker.sock";

// A project name unique to this test process: "cbt<pid>-<suffix>" (a valid project name, an
// image repository, and what the cleanup looks for).
inline std::string RunProject(const std::string& suffix) {
  return "cbt" + std::to_string(::getpid()) + "-" + suffix;
}

inline void WriteFile(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

// A context directory holding Debian's static busybox as ./busybox and the given Dockerfile.
inline void WriteBusyboxContext(const fs::path& dir, const std::string& dockerfile) {
  fs::create_directories(dir);
  fs::copy_file("/bin/busybox", dir / "busybox", fs::copy_options::overwrite_existing);
  WriteFile(dir / "Dockerfile", dockerfile);
}

// A Dockerfile that builds and prints a marker from a RUN step (BuildKit and classic both log
// RUN output), FROM scratch.
inline std::string HelloDockerfile(const std::string& marker) {
  return "FROM scratch\n"
         "COPY busybox /bin/busybox\n"
         "RUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo " +
         marker + " && /bin/busybox mkdir -p /www && echo " + marker +
         " > /www/index.html\"]\n"
         "CMD [\"/bin/busybox\", \"sh\", \"-c\", \"exec /bin/busybox httpd -f -p 127.0.0.1:$PORT "
         "-h /www\"]\n";
}

struct PackagedContext {
  fs::path path;
  std::string sha256;
  uint64_t size = 0;
};

// Packages dir as the CLI does (cli::PackageContext: .dockerignore applied, tar.gz) into out.
inline PackagedContext Package(const fs::path& dir, const fs::path& out,
                               const std::string& dockerfile = "Dockerfile") {
  cli::PackageOptions options;
  options.dockerfile = dockerfile;
  options.output_path = out;
  options.threads = 1;
  auto archive = cli::PackageContext(dir, options);
  EXPECT_TRUE(archive.ok()) << archive.status().ToString();
  if (!archive.ok()) return {};
  return {out, archive->sha256, archive->size};
}

// What a build backend produced, and the log lines it gave on the way.
struct Built {
  Result<build::BuildResult> result = Status::Internal("not built");
  std::vector<std::string> log;
  bool Logged(const std::string& text) const {
    return std::any_of(log.begin(), log.end(),
                       [&](const std::string& l) { return l.find(text) != std::string::npos; });
  }
  int Count(const std::string& text) const {
    return static_cast<int>(std::count_if(log.begin(), log.end(), [&](const std::string& l) {
      return l.find(text) != std::string::npos;
    }));
  }
  // Whether a BuildKit step printed `text` as a whole output line ("#3 text"): it ran rather
  // than came from a cache.
  bool Ran(const std::string& text) const {
    return std::any_of(log.begin(), log.end(), [&](const std::string& l) {
      size_t sp = l.find(' ');
      return l.size() > 1 && l[0] == '#' && sp != std::string::npos && l.substr(sp + 1) == text;
    });
  }
  std::string Joined() const {
    std::string all;
    for (const auto& l : log) all += l + "\n";
    return all;
  }
};

// The embedded object store on a free port, with its own data directory and bucket.
class EmbeddedS3 {
 public:
  EmbeddedS3() {
    storage::S3ServerOptions o;
    o.listen = "127.0.0.1:0";
    o.data_dir = (data_.path() / "s3").string();
    o.access_key = kAccessKey;
    o.secret_key = kSecretKey;
    auto server = storage::S3Server::Start(o);
    if (!server.ok()) throw std::runtime_error("embedded S3: " + server.status().ToString());
    server_ = std::move(server).value();
    client_ = std::make_unique<storage::S3Client>(ClientOptions());
    Status bucket = client_->CreateBucket(kBucket);
    if (!bucket.ok() && bucket.code() != Code::kAlreadyExists) {
      throw std::runtime_error("bucket: " + bucket.ToString());
    }
  }
  ~EmbeddedS3() { server_->Shutdown(); }

  storage::S3ClientOptions ClientOptions() const {
    storage::S3ClientOptions o;
    o.endpoint = server_->endpoint();
    o.credentials.access_key = kAccessKey;
    o.credentials.secret_key = kSecretKey;
    return o;
  }
  storage::S3Client& client() { return *client_; }

  // Packages dir as the CLI does into scratch_dir, stores it under the project's context key and
  // returns the presigned GET URL a build backend is handed, as ctrl hands it over.
  std::string StoreContext(const fs::path& dir, const fs::path& scratch_dir,
                           const std::string& project, const std::string& dockerfile = "Dockerfile") {
    PackagedContext ctx = Package(dir, scratch_dir / (project + "-" + dir.filename().string() + ".tar.gz"),
                                  dockerfile);
    std::string key = "contexts/" + project + "/" + ctx.sha256 + ".tar.gz";
    auto put = client_->PutObject(kBucket, key, ctx.path.string());
    EXPECT_TRUE(put.ok()) << put.status().ToString();
    return client_->PresignGet(kBucket, key, std::chrono::minutes(10), build::kContextContentType);
  }

 private:
  testing::TempDir data_;
  std::unique_ptr<storage::S3Server> server_;
  std::unique_ptr<storage::S3Client> client_;
};

// dockerd's Engine API, to look at what a build left behind.
inline Result<net::ClientResponse> DockerApi(const std::string& method, const std::string& path) {
  static net::HttpClient* http = new net::HttpClient();
  net::ClientRequest req;
  req.method = method;
  req.unix_socket = kDockerSocket;
  req.url = "http://docker/v1.41" + path;
  req.timeout = 60s;
  return http->Do(req);
}

// "sha256:..." of a local image, or empty when dockerd has no such image.
inline std::string LocalImageId(const std::string& reference) {
  auto resp = DockerApi("GET", "/images/" + reference + "/json");
  if (!resp.ok() || resp->status != 200) return "";
  Json j = Json::parse(resp->body, nullptr, false);
  return j.is_object() ? j.value("Id", "") : "";
}

// Removes every local image of the repositories `<registry>/<project>` and `<project>`. Untagged
// parents stay (noprune): ctest runs tests as parallel processes, and a parent may be the build
// cache another process's classic build is using at that moment.
inline void RemoveImagesOf(const std::string& project) {
  for (std::string repo : {project, std::string(kRegistry) + "/" + project}) {
    Json filters = {{"reference", Json::array({repo})}};
    auto list = DockerApi("GET", "/images/json?filters=" + net::UriEncode(filters.dump()));
    if (!list.ok() || list->status != 200) continue;
    Json images = Json::parse(list->body, nullptr, false);
    if (!images.is_array()) continue;
    for (const Json& image : images) {
      for (const Json& tag : image.value("RepoTags", Json::array())) {
        (void)DockerApi("DELETE",
                        "/images/" + net::UriEncode(tag.get<std::string>()) + "?force=1&noprune=1");
      }
    }
  }
}

// The paths in an image's filesystem (without a leading '/'), from `docker create` + `docker
// export`: what the image really holds, whatever the build log says.
inline std::set<std::string> ImageFiles(const std::string& image) {
  std::set<std::string> files;
  auto created = testing::RunCommand("/usr/bin/docker create " + image + " /bin/busybox true");
  EXPECT_EQ(created.exit_code, 0) << created.output;
  if (created.exit_code != 0) return files;
  std::string container = created.output.substr(0, created.output.find('\n'));
  auto listing = testing::RunCommand("/usr/bin/docker export " + container + " | tar t");
  EXPECT_EQ(listing.exit_code, 0) << listing.output;
  (void)testing::RunCommand("/usr/bin/docker rm -f " + container);
  size_t start = 0;
  for (size_t nl; (nl = listing.output.find('\n', start)) != std::string::npos; start = nl + 1) {
    std::string path = listing.output.substr(start, nl - start);
    while (!path.empty() && path.back() == '/') path.pop_back();
    if (!path.empty()) files.insert(path);
  }
  return files;
}

// The tags of a repository in the registry at 127.0.0.1:5000 (empty when it has none).
inline std::set<std::string> RegistryTags(const std::string& repository) {
  static net::HttpClient* http = new net::HttpClient();
  net::ClientRequest req;
  req.url = std::string("http://") + kRegistry + "/v2/" + repository + "/tags/list";
  req.timeout = 10s;
  std::set<std::string> tags;
  auto resp = http->Do(req);
  if (!resp.ok() || resp->status != 200) return tags;
  Json j = Json::parse(resp->body, nullptr, false);
  if (!j.is_object() || !j["tags"].is_array()) return tags;
  for (const Json& t : j["tags"]) tags.insert(t.get<std::string>());
  return tags;
}

// Deletes repository:tag's manifest from the registry (its storage.delete is enabled), so a
// test leaves the registry as it found it.
inline void DeleteFromRegistry(const std::string& repository, const std::string& tag) {
  net::HttpClient http;
  net::ClientRequest head;
  head.method = "HEAD";
  head.url = std::string("http://") + kRegistry + "/v2/" + repository + "/manifests/" + tag;
  head.headers.Set("Accept", "application/vnd.docker.distribution.manifest.v2+json");
  auto resp = http.Do(head);
  if (!resp.ok() || resp->status != 200) return;
  std::string digest = resp->headers.GetOr("Docker-Content-Digest", "");
  if (digest.empty()) return;
  net::ClientRequest del;
  del.method = "DELETE";
  del.url = std::string("http://") + kRegistry + "/v2/" + repository + "/manifests/" + digest;
  (void)http.Do(del);
}

// PUTs a file to a presigned URL with curl: a plain HTTP client with no credentials and no
// signing of its own, as any uploader would (curl -T sends Expect: 100-continue for large files).
// `headers` (GenerateUploadURLResponse's upload_headers) are sent as given.
template <class HeaderMap>
inline Status PutToPresignedUrl(const std::string& url, const HeaderMap& headers,
                                const fs::path& file) {
  std::string flags;
  for (const auto& [name, value] : headers) flags += " -H '" + name + ": " + value + "'";
  auto put = testing::RunCommand("curl -sS --fail-with-body -o /dev/null -w '%{http_code}'" +
                                 flags + " -T '" + file.string() + "' '" + url + "'");
  if (put.exit_code != 0 || put.output != "200") {
    return Status::Internal("curl PUT to the presigned URL failed: " + put.output);
  }
  return Status::Ok();
}

// Polls until pred holds; false after timeout.
inline bool Eventually(const std::function<bool()>& pred,
                       std::chrono::milliseconds timeout = 120s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(100ms);
  }
  return pred();
}

// A ctrl in this process on a fresh database of the given driver, with the embedded S3 store
// and the docker build backend on the real dockerd; tokens for workspaces "ws-a" and "ws-b".
class CtrlHarness {
 public:
  struct Settings {
    testing::TestDriver driver = testing::TestDriver::kSqlite;
    std::string registry;  // empty: images stay local
    std::string docker_host = std::string("unix://") + kDockerSocket;
    std::string docker_builder = "auto";
    uint64_t max_context_bytes = 64ull * 1024 * 1024;
    // Any other option (limits, the secret key), set last.
    std::function<void(CtrlOptions&)> configure;
  };

  explicit CtrlHarness(const Settings& settings) : settings_(settings) {
    options_.listen = "127.0.0.1:0";
    options_.database_url = testing::FreshDatabaseUrl(settings.driver, dir_.path());
    options_.partition_database_url = testing::FreshDatabaseUrl(settings.driver, dir_.path());
    options_.s3 = s3_.ClientOptions();
    options_.bucket = kBucket;
    options_.max_context_bytes = settings.max_context_bytes;
    options_.build.docker_host = settings.docker_host;
    options_.build.registry = settings.registry;
    options_.build.docker_builder = settings.docker_builder;
    options_.workers = 2;
    if (settings.configure) settings.configure(options_);
    auto server = CtrlServer::Start(options_);
    if (!server.ok()) throw std::runtime_error("ctrl: " + server.status().ToString());
    server_ = std::move(server).value();
    token_a_ = server_->IssueToken("ws-a").value();
    token_b_ = server_->IssueToken("ws-b").value();
  }
  ~CtrlHarness() { server_->Shutdown(); }

  // A Connect client of this ctrl; JSON unless binary.
  net::ConnectClient Client(const std::string& token, bool binary = false) const {
    net::ConnectClient::Options o;
    o.base_url = server_->endpoint();
    o.bearer_token = token;
    o.binary = binary;
    return net::ConnectClient(o);
  }

  const CtrlOptions& options() const { return options_; }
  const std::string& token_a() const { return token_a_; }
  const std::string& token_b() const { return token_b_; }
  std::string endpoint() const { return server_->endpoint(); }
  EmbeddedS3& s3() { return s3_; }
  const fs::path& dir() const { return dir_.path(); }

 private:
  Settings settings_;
  testing::TempDir dir_;
  EmbeddedS3 s3_;
  CtrlOptions options_;
  std::unique_ptr<CtrlServer> server_;
  std::string token_a_, token_b_;
};

}  // namespace slipway::ctrl::test
