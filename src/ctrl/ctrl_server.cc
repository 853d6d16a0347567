#include "ctrl/ctrl_server.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "ctrl/deploy_workflow.h"
#include "ctrl/partition_store.h"
#include "ctrl/services.h"
#include "ctrl/store.h"
#include "db/migrations.h"
#include "net/connect.h"
#include "net/health_service.h"
#include "net/http_server.h"
#include "workflow/engine.h"

namespace slipway::ctrl {
namespace {

class CtrlServerImpl : public CtrlServer {
 public:
  explicit CtrlServerImpl(CtrlOptions options) : options_(std::move(options)) {}
  ~CtrlServerImpl() override { Shutdown(); }

  Status Init() {
    if (options_.database_url.empty()) {
      return Status::InvalidArgument("no main database: set DATABASE_URL (a SQLite path or a "
                                     "postgresql:// URL) or --database");
    }
    SLIPWAY_ASSIGN_OR_RETURN(db_, db::OpenMain(options_.database_url));
    store_ = std::make_unique<Store>(*db_);

    s3_ = std::make_unique<storage::S3Client>(options_.s3);
    Status bucket = s3_->CreateBucket(options_.bucket);
    if (!bucket.ok() && bucket.code() != Code::kAlreadyExists) {
      return bucket.WithContext(fmt::format("the object store at {} is not usable",
                                            options_.s3.endpoint));
    }

    SLIPWAY_ASSIGN_OR_RETURN(builder_, build::MakeBuildBackend(options_.build));

    if (!options_.krane_url.empty()) {
      if (options_.partition_database_url.empty()) {
        return Status::InvalidArgument(
            "a control plane that deploys on krane needs the partition database the gateway "
            "reads (instances, routes): set PARTITION_DATABASE_URL or --partition-database");
      }
      SLIPWAY_ASSIGN_OR_RETURN(partition_db_, db::OpenPartition(options_.partition_database_url));
      partition_ = std::make_unique<PartitionStore>(*partition_db_);
      net::ConnectClient::Options k;
      k.base_url = options_.krane_url;
      k.bearer_token = options_.krane_token;
      k.binary = true;
      krane_ = std::make_unique<net::ConnectClient>(k);
    }

    workflow::EngineOptions eo;
    eo.workers = options_.workers;
    eo.lease_duration = options_.lease_duration;
    eo.heartbeat_interval = options_.lease_duration / 3;
    eo.poll_interval = std::chrono::milliseconds(250);
    engine_ = std::make_unique<workflow::WorkflowEngine>(*db_, eo);
    workflow_deps_.store = store_.get();
    workflow_deps_.s3 = s3_.get();
    workflow_deps_.bucket = options_.bucket;
    workflow_deps_.builder = builder_.get();
    workflow_deps_.krane = krane_.get();
    workflow_deps_.partition = partition_.get();
    workflow_deps_.wait_interval = options_.wait_interval;
    workflow_deps_.wait_deadline = options_.wait_deadline;
    workflow_deps_.apex_domain = options_.apex_domain;
    RegisterWorkflows(*engine_, workflow_deps_);

    service_deps_ = ServiceDeps{store_.get(),
                                s3_.get(),
                                engine_.get(),
                                options_.bucket,
                                options_.upload_url_ttl,
                                options_.max_context_bytes,
                                options_.build.platform,
                                options_.gateway_public_port};
    RegisterCtrlServices(router_, service_deps_);
    net::RegisterHealthService(router_, SystemClock(), SystemClock().Now());

    SLIPWAY_RETURN_IF_ERROR(engine_->StartWorkers());
    net::HttpServer::Options ho;
    ho.listen = options_.listen;
    ho.max_body_bytes = 8 * 1024 * 1024;
    SLIPWAY_ASSIGN_OR_RETURN(http_, net::HttpServer::Start(ho, router_.AsHandler()));
    return Status::Ok();
  }

  std::string endpoint() const override { return "http://" + http_->address(); }

  Result<std::string> IssueToken(const std::string& workspace) override {
    SLIPWAY_ASSIGN_OR_RETURN(std::string ws, store_->EnsureWorkspace(workspace));
    return store_->IssueToken(ws, "issued at start");
  }

  void Shutdown() override {
    if (http_) http_->Shutdown();
    if (engine_) engine_->Stop();
  }

 private:
  CtrlOptions options_;
  std::unique_ptr<db::Database> db_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<storage::S3Client> s3_;
  std::unique_ptr<build::BuildBackend> builder_;
  std::unique_ptr<db::Database> partition_db_;
  std::unique_ptr<PartitionStore> partition_;
  std::unique_ptr<net::ConnectClient> krane_;
  std::unique_ptr<workflow::WorkflowEngine> engine_;
  WorkflowDeps workflow_deps_;
  ServiceDeps service_deps_;
  net::ConnectRouter router_;
  std::unique_ptr<net::HttpServer> http_;
};

}  // namespace

Result<std::unique_ptr<CtrlServer>> CtrlServer::Start(const CtrlOptions& options) {
  auto server = std::make_unique<CtrlServerImpl>(options);
  SLIPWAY_RETURN_IF_ERROR(server->Init());
  return std::unique_ptr<CtrlServer>(std::move(server));
}

}  // namespace slipway::ctrl
