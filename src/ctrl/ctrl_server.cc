#include "ctrl/ctrl_server.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "ctrl/app_env.h"
#include "base/metrics.h"
#include "base/ops_endpoints.h"
#include "ctrl/build/depot/depot_records.h"
#include "ctrl/ctrl_metrics.h"
#include "ctrl/deploy_workflow.h"
#include "ctrl/lifecycle_workflow.h"
#include "ctrl/instance_monitor.h"
#include "ctrl/partition_store.h"
#include "ctrl/services.h"
#include "ctrl/store.h"
#include "db/migrations.h"
#include "net/connect.h"
#include "net/health_service.h"
#include "net/http_server.h"
#include "net/ops_http.h"
#include "workflow/engine.h"

namespace slipway::ctrl {
namespace {

// The depot build backend's records, in the main database.
class StoreDepotRecords : public build::depot::DepotRecords {
 public:
  explicit StoreDepotRecords(Store& store) : store_(store) {}
  Result<std::string> DepotProjectOf(const std::string& project_id) override {
    return store_.GetDepotProjectId(project_id);
  }
  Result<std::string> RecordDepotProject(const std::string& project_id,
                                         const std::string& depot_project_id) override {
    return store_.SetDepotProjectIdOnce(project_id, depot_project_id);
  }
  Result<build::depot::OpenDepotBuild> OpenDepotBuildOf(const std::string& build_id) override {
    SLIPWAY_ASSIGN_OR_RETURN(auto open, store_.GetOpenDepotBuild(build_id));
    return build::depot::OpenDepotBuild{open.first, open.second};
  }
  Status SetOpenDepotBuild(const std::string& build_id,
                           const build::depot::OpenDepotBuild& open) override {
    return store_.SetOpenDepotBuild(build_id, open.build_id, open.build_token);
  }

 private:
  Store& store_;
};

class CtrlServerImpl : public CtrlServer {
 public:
  explicit CtrlServerImpl(CtrlOptions options) : options_(std::move(options)) {}
  ~CtrlServerImpl() override { Shutdown(); }

  Status Init() {
    if (options_.database_url.empty()) {
      return Status::InvalidArgument("no main database: set DATABASE_URL (a SQLite path or a "
                                     "postgresql:// URL) or --database");
    }
    SLIPWAY_ASSIGN_OR_RETURN(secrets_, SecretBox::FromKeyText(options_.secret_key));
    SLIPWAY_ASSIGN_OR_RETURN(db_, db::OpenMain(options_.database_url));
    store_ = std::make_unique<Store>(*db_);
    depot_records_ = std::make_unique<StoreDepotRecords>(*store_);
    SLIPWAY_ASSIGN_OR_RETURN(builder_,
                             build::MakeBuildBackend(options_.build, depot_records_.get()));

    s3_ = std::make_unique<storage::S3Client>(options_.s3);
    Status bucket = s3_->CreateBucket(options_.bucket);
    if (!bucket.ok() && bucket.code() != Code::kAlreadyExists) {
      return bucket.WithContext(fmt::format("the object store at {} is not usable",
                                            options_.s3.endpoint));
    }


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
    workflow_deps_.stopping = &engine_->stop_requested();
    workflow_deps_.secrets = &secrets_;
    workflow_deps_.build_timeout = options_.build_timeout;
    workflow_deps_.max_build_log_bytes = options_.max_build_log_bytes;
    workflow_deps_.metrics = &ctrl_metrics_;
    RegisterWorkflows(*engine_, workflow_deps_);
    RegisterLifecycleWorkflows(*engine_, workflow_deps_);
    RegisterRetentionWorkflow(*engine_, workflow_deps_, options_.retention);

    service_deps_ = ServiceDeps{store_.get(),
                                s3_.get(),
                                engine_.get(),
                                options_.bucket,
                                options_.upload_url_ttl,
                                options_.max_context_bytes,
                                options_.build.platform,
                                options_.gateway_public_port};
    service_deps_.krane = krane_.get();
    service_deps_.partition = partition_.get();
    service_deps_.secrets = &secrets_;
    service_deps_.max_concurrent_builds = options_.max_concurrent_builds;
    RegisterCtrlServices(router_, service_deps_);
    net::RegisterHealthService(router_, SystemClock(), SystemClock().Now());
    metrics::AddProcessMetrics(metrics_, "ctrl");
    router_.SetMetrics(metrics_);
    ops_.registry = &metrics_;
    ops_.ready = [this] { return Ready(); };

    SLIPWAY_RETURN_IF_ERROR(engine_->StartWorkers());
    if (options_.retention.interval.count() > 0 && krane_) {
      retention_ = std::make_unique<RetentionScheduler>(*store_, *engine_, options_.retention.interval);
    }
    if (krane_) instances_ = std::make_unique<InstanceMonitor>(*store_, *partition_, *krane_);
    net::HttpServer::Options ho;
    ho.listen = options_.listen;
    ho.max_body_bytes = 8 * 1024 * 1024;
    ho.max_connections = options_.max_connections;
    ho.max_connections_setting = "--max-connections (CTRL_MAX_CONNECTIONS)";
    SLIPWAY_ASSIGN_OR_RETURN(
        http_, net::HttpServer::Start(ho, net::WithOpsEndpoints(router_.AsHandler(), ops_)));
    return Status::Ok();
  }

  std::string endpoint() const override { return "http://" + http_->address(); }

  Result<std::string> IssueToken(const std::string& workspace) override {
    SLIPWAY_ASSIGN_OR_RETURN(std::string ws, store_->EnsureWorkspace(workspace));
    return store_->IssueToken(ws, "issued at start");
  }

  // Ready when both databases answer: every RPC and every workflow step needs them.
  Status Ready() const {
    if (auto st = db_->Query("SELECT 1"); !st.ok()) {
      return st.status().WithContext("the main database (" + db_->Describe() + ") does not answer");
    }
    if (partition_db_) {
      if (auto st = partition_db_->Query("SELECT 1"); !st.ok()) {
        return st.status().WithContext("the partition database (" + partition_db_->Describe() +
                                       ") does not answer");
      }
    }
    return Status::Ok();
  }

  void Shutdown() override {
    if (retention_) retention_->Stop();
    if (instances_) instances_->Stop();
    if (http_) http_->Shutdown();
    if (engine_) engine_->Stop();
  }

 private:
  CtrlOptions options_;
  SecretBox secrets_;
  metrics::Registry metrics_;
  CtrlMetrics ctrl_metrics_{metrics_};
  OpsEndpoints ops_;
  std::unique_ptr<db::Database> db_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<storage::S3Client> s3_;
  std::unique_ptr<build::depot::DepotRecords> depot_records_;
  std::unique_ptr<build::BuildBackend> builder_;
  std::unique_ptr<db::Database> partition_db_;
  std::unique_ptr<PartitionStore> partition_;
  std::unique_ptr<net::ConnectClient> krane_;
  std::unique_ptr<workflow::WorkflowEngine> engine_;
  std::unique_ptr<RetentionScheduler> retention_;
  std::unique_ptr<InstanceMonitor> instances_;
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
