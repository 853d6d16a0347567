#include "krane/krane_server.h"

#include "base/metrics.h"
#include "base/ops_endpoints.h"
#include "krane/krane_service.h"
#include "net/connect.h"
#include "net/http_server.h"
#include "net/ops_http.h"

namespace slipway::krane {
namespace {

class KraneServerImpl final : public KraneServer {
 public:
  ~KraneServerImpl() override { Shutdown(); }

  Status Init(const KraneServerOptions& options) {
    if (options.token.empty()) {
      return Status::InvalidArgument(
          "the krane token is empty; set --token or KRANE_TOKEN to a secret string");
    }
    SLIPWAY_ASSIGN_OR_RETURN(backend_, MakeKraneBackend(options.backend));
    service_ = std::make_unique<KraneService>(*backend_, options.token);
    service_->Register(router_);
    metrics::AddProcessMetrics(metrics_, "krane");
    router_.SetMetrics(metrics_);
    ops_.registry = &metrics_;
    ops_.ready = [this] { return backend_->Ping(); };
    net::HttpServer::Options server_options;
    server_options.listen = options.listen;
    auto http = net::HttpServer::Start(server_options,
                                       net::WithOpsEndpoints(router_.AsHandler(), ops_));
    if (!http.ok()) return http.status().WithContext("serving krane on " + options.listen);
    http_ = std::move(http).value();
    return Status::Ok();
  }

  std::string address() const override { return http_->address(); }
  std::string_view backend_name() const override { return backend_->name(); }
  void Shutdown() override {
    if (http_) http_->Shutdown();
  }

 private:
  metrics::Registry metrics_;
  OpsEndpoints ops_;
  std::unique_ptr<KraneBackend> backend_;
  std::unique_ptr<KraneService> service_;
  net::ConnectRouter router_;
  std::unique_ptr<net::HttpServer> http_;
};

}  // namespace

Result<std::unique_ptr<KraneServer>> KraneServer::Start(const KraneServerOptions& options) {
  auto server = std::make_unique<KraneServerImpl>();
  SLIPWAY_RETURN_IF_ERROR(server->Init(options));
  return std::unique_ptr<KraneServer>(std::move(server));
}

}  // namespace slipway::krane
