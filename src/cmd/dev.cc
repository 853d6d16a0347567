// `slipway dev`: the whole stack in one process on embedded defaults — the object store, ctrl
// (SQLite), krane (docker backend) and the gateway, each on its own loopback port and talking to
// the others over HTTP exactly as separate processes would. On start it issues a token for the
// local workspace and writes the CLI's credentials file, so `slipway deploy` needs no flags.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "base/crypto.h"
#include "cli/credentials.h"
#include "cmd/commands.h"
#include "ctrl/ctrl_server.h"
#include "gateway/gateway_server.h"
#include "krane/backend.h"
#include "krane/krane_server.h"
#include "net/http_client.h"
#include "net/http_server.h"
#include "storage/s3_server.h"

namespace slipway::cmd {
namespace {

namespace fs = std::filesystem;

struct DevOptions {
  std::string data_dir;
  std::string s3_listen = "127.0.0.1:9000";
  std::string krane_listen = "127.0.0.1:7070";
  std::string gateway_listen = "127.0.0.1:8080";
  std::string gateway_admin_listen = kDefaultGatewayAdminListen;
  std::string credentials_file;
  std::string workspace = "local";
  krane::KraneBackendConfig krane;
  ctrl::CtrlOptions ctrl;
};

// Writes a file only its owner can read, whole or not at all (temporary file, fsync, rename),
// creating its directory when missing.
Status WritePrivateFile(const fs::path& path, const std::string& content) {
  std::error_code ec;
  if (path.has_parent_path()) fs::create_directories(path.parent_path(), ec);
  std::string tmp = path.string() + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    return Status::FailedPrecondition(
        fmt::format("cannot write {}: {}", path.string(), std::strerror(errno)));
  }
  bool ok = ::write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size()) &&
            ::fsync(fd) == 0;
  ok = (::close(fd) == 0) && ok;
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return Status::FailedPrecondition(
        fmt::format("cannot write {}: {}", path.string(), std::strerror(errno)));
  }
  return Status::Ok();
}

// Secrets the stack's parts share (S3 keys, krane's token) and the key stored secrets are sealed
// with: made once per data directory and kept there, so a restarted `slipway dev` signs,
// authenticates and opens its secrets the same way. A file from before the secret key existed
// gets one added, keeping the rest.
struct LocalSecrets {
  std::string s3_access_key = "slipway-dev";
  std::string s3_secret_key;
  std::string krane_token;
  std::string secret_key;  // SLIPWAY_SECRET_KEY: 64 hex digits
};

Result<LocalSecrets> LoadOrCreateSecrets(const fs::path& data_dir) {
  fs::path path = data_dir / "secrets.json";
  LocalSecrets s;
  bool complete = false;
  if (fs::exists(path)) {
    std::ifstream in(path);
    auto j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (j.is_object() && j.value("s3_secret_key", "") != "" && j.value("krane_token", "") != "") {
      s.s3_access_key = j.value("s3_access_key", s.s3_access_key);
      s.s3_secret_key = j["s3_secret_key"];
      s.krane_token = j["krane_token"];
      s.secret_key = j.value("secret_key", "");
      if (!s.secret_key.empty()) return s;
      complete = true;
    } else {
      spdlog::warn("{} is unreadable; making new local secrets", path.string());
    }
  }
  if (!complete) {
    s.s3_secret_key = RandomHex(24);
    s.krane_token = RandomHex(24);
  }
  s.secret_key = RandomHex(32);
  nlohmann::json j = {{"s3_access_key", s.s3_access_key},
                      {"s3_secret_key", s.s3_secret_key},
                      {"krane_token", s.krane_token},
                      {"secret_key", s.secret_key}};
  SLIPWAY_RETURN_IF_ERROR(WritePrivateFile(path, j.dump(2) + "\n"));
  return s;
}

// dockerd must answer before anything starts: every build and every instance needs it.
Status CheckDockerd(const std::string& docker_host) {
  constexpr std::string_view kUnix = "unix://";
  if (docker_host.rfind(kUnix, 0) != 0) {
    return Status::InvalidArgument(fmt::format(
        "DOCKER_HOST \"{}\" is not a unix:// socket, which `slipway dev` needs", docker_host));
  }
  std::string socket = docker_host.substr(kUnix.size());
  net::HttpClient client;
  net::ClientRequest req;
  req.url = "http://docker/_ping";
  req.unix_socket = socket;
  req.max_attempts = 1;
  req.timeout = std::chrono::seconds(5);
  auto resp = client.Do(req);
  if (!resp.ok() || resp->status != 200) {
    return Status::FailedPrecondition(fmt::format(
        "dockerd does not answer on {}: `slipway dev` builds and runs apps with it; start it "
        "(scripts/services.sh dockerd, or `dockerd --bridge=none --iptables=false`) and retry",
        socket));
  }
  return Status::Ok();
}

// The whole stack; members are started in order and stopped in reverse.
class DevStack {
 public:
  Status Start(DevOptions& o) {
    fs::path data = o.data_dir;
    std::error_code ec;
    fs::create_directories(data / "s3", ec);
    if (ec) {
      return Status::FailedPrecondition(
          fmt::format("cannot create the data directory {}: {} (use --data)", data.string(),
                      ec.message()));
    }
    SLIPWAY_RETURN_IF_ERROR(CheckDockerd(o.krane.docker_host));
    SLIPWAY_ASSIGN_OR_RETURN(LocalSecrets secrets, LoadOrCreateSecrets(data));

    storage::S3ServerOptions so;
    so.listen = o.s3_listen;
    so.data_dir = (data / "s3").string();
    so.access_key = secrets.s3_access_key;
    so.secret_key = secrets.s3_secret_key;
    auto s3 = storage::S3Server::Start(so);
    if (!s3.ok()) return s3.status().WithContext("starting the object store (--s3-listen)");
    s3_ = std::move(*s3);

    krane::KraneServerOptions ko{o.krane_listen, secrets.krane_token, o.krane};
    auto krane = krane::KraneServer::Start(ko);
    if (!krane.ok()) return krane.status().WithContext("starting krane (--krane-listen)");
    krane_ = std::move(*krane);

    ctrl::CtrlOptions& c = o.ctrl;
    if (c.database_url.empty()) c.database_url = (data / "main.db").string();
    if (c.partition_database_url.empty()) c.partition_database_url = (data / "partition.db").string();
    c.s3.endpoint = s3_->endpoint();
    c.s3.credentials.access_key = secrets.s3_access_key;
    c.s3.credentials.secret_key = secrets.s3_secret_key;
    c.krane_url = "http://" + krane_->address();
    c.krane_token = secrets.krane_token;
    // SLIPWAY_SECRET_KEY (or --secret-key) wins over the kept one.
    if (c.secret_key.empty()) c.secret_key = secrets.secret_key;

    gateway::GatewayOptions go;
    go.listen = o.gateway_listen;
    go.partition_database = c.partition_database_url;
    go.admin_listen = o.gateway_admin_listen;
    // ctrl creates (migrates) the partition database; the gateway only reads it, so ctrl first.
    c.gateway_public_port = PortOf(o.gateway_listen);
    auto ctrl = ctrl::CtrlServer::Start(c);
    if (!ctrl.ok()) return ctrl.status().WithContext("starting ctrl");
    ctrl_ = std::move(*ctrl);

    auto gw = gateway::GatewayServer::Start(go);
    if (!gw.ok()) return gw.status().WithContext("starting the gateway (--gateway-listen)");
    gateway_ = std::move(*gw);

    SLIPWAY_ASSIGN_OR_RETURN(std::string token, ctrl_->IssueToken(o.workspace));
    nlohmann::json creds = {{"control_plane", ctrl_->endpoint()},
                            {"token", token},
                            {"gateway", gateway_->endpoint()}};
    SLIPWAY_RETURN_IF_ERROR(WritePrivateFile(o.credentials_file, creds.dump(2) + "\n")
                                .WithContext("writing the CLI's credentials (--credentials)"));
    return Status::Ok();
  }

  void PrintEndpoints(const DevOptions& o) const {
    fmt::print(
        "slipway dev is running (data in {})\n"
        "  ctrl      {}\n"
        "  gateway   {}   apps answer at http://<host>.{}:{}{}\n"
        "  krane     http://{}\n"
        "  s3        {}\n"
        "  cli credentials written to {}\n"
        "deploy with: slipway deploy examples/hello     stop with Ctrl-C\n",
        o.data_dir, ctrl_->endpoint(), gateway_->endpoint(), o.ctrl.apex_domain,
        gateway_->port(),
        gateway_->admin_endpoint().empty() ? "" : "   admin " + gateway_->admin_endpoint(),
        krane_->address(), s3_->endpoint(), o.credentials_file);
    std::fflush(stdout);
  }

  // Stops accepting on every part, newest first, letting in-flight requests finish.
  void Shutdown() {
    if (gateway_) gateway_->Shutdown();
    if (ctrl_) ctrl_->Shutdown();
    if (krane_) krane_->Shutdown();
    if (s3_) s3_->Shutdown();
  }

 private:
  static int PortOf(const std::string& listen) {
    size_t colon = listen.rfind(':');
    return colon == std::string::npos ? 80 : std::atoi(listen.c_str() + colon + 1);
  }

  std::unique_ptr<storage::S3Server> s3_;
  std::unique_ptr<krane::KraneServer> krane_;
  std::unique_ptr<ctrl::CtrlServer> ctrl_;
  std::unique_ptr<gateway::GatewayServer> gateway_;
};

}  // namespace

std::string DefaultDataDir() {
  auto env = cli::ProcessEnvironment();
  if (auto xdg = env("XDG_DATA_HOME"); xdg && !xdg->empty()) return *xdg + "/slipway";
  if (auto home = env("HOME"); home && !home->empty()) return *home + "/.local/share/slipway";
  return ".slipway";
}

void RegisterDev(CLI::App& app) {
  auto opts = std::make_shared<DevOptions>();
  CLI::App* cmd = app.add_subcommand(
      "dev", "the whole stack in one process: object store, ctrl, krane (docker or kubernetes), gateway");
  AddCtrlFlags(*cmd, opts->ctrl);
  opts->data_dir = DefaultDataDir();
  opts->credentials_file = cli::DevCredentialsPath(cli::ProcessEnvironment()).string();
  cmd->add_option("--data", opts->data_dir, "where the stack keeps its databases and objects")
      ->envname("SLIPWAY_DATA_DIR")
      ->capture_default_str();
  cmd->add_option("--credentials", opts->credentials_file,
                  "where to write the CLI's control-plane address and token")
      ->envname("SLIPWAY_CREDENTIALS_FILE")
      ->capture_default_str();
  cmd->add_option("--s3-listen", opts->s3_listen, "the object store's address")
      ->envname("S3_LISTEN")
      ->capture_default_str();
  cmd->add_option("--krane-listen", opts->krane_listen, "krane's address")
      ->envname("KRANE_LISTEN")
      ->capture_default_str();
  cmd->add_option("--gateway-listen", opts->gateway_listen, "the gateway's address")
      ->envname("GATEWAY_LISTEN")
      ->capture_default_str();
  cmd->add_option("--gateway-admin-listen", opts->gateway_admin_listen,
                  "the gateway's admin listener (/healthz, /readyz, /metrics); empty: none")
      ->envname("GATEWAY_ADMIN_LISTEN")
      ->capture_default_str();
  cmd->add_option("--workspace", opts->workspace, "the local workspace the token belongs to")
      ->capture_default_str();
  cmd->add_option("--krane-backend", opts->krane.backend,
                  "where krane runs instances: docker (the local dockerd) or kubernetes")
      ->envname("KRANE_BACKEND")
      ->capture_default_str();
  AddDockerKraneFlags(*cmd, opts->krane, "krane-");
  AddKubernetesKraneFlags(*cmd, opts->krane, "krane-");
  cmd->callback([opts] {
    net::BlockTerminationSignals();
    opts->krane.docker_host = opts->ctrl.build.docker_host;
    DevStack stack;
    Status st = stack.Start(*opts);
    if (!st.ok()) {
      stack.Shutdown();
      spdlog::error("slipway dev cannot start: {}", st.message());
      throw CLI::RuntimeError(1);
    }
    stack.PrintEndpoints(*opts);
    int sig = net::WaitForTerminationSignal();
    spdlog::info("signal {} received, stopping the stack", sig);
    stack.Shutdown();
  });
}

}  // namespace slipway::cmd
