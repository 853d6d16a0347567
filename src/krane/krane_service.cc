#include "krane/krane_service.h"

#include "krane/log_lines.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "base/clock.h"
#include "base/crypto.h"
#include "net/health_service.h"
#include "slipway/krane/v1/deployment.pb.h"

namespace slipway::krane {
namespace {

namespace v1 = slipway::krane::v1;

constexpr const char* kService = "slipway.krane.v1.DeploymentService";
constexpr size_t kMaxIdLength = 63;
constexpr size_t kMaxEnvEntries = 256;

// [A-Za-z0-9_-], starting with a letter or digit: valid in container names and label values;
// the kubernetes backend derives lowercase DNS-1123 object names from it (kubernetes/objects.h).
Status ValidateId(std::string_view field, const std::string& value) {
  if (value.empty()) return Status::InvalidArgument(fmt::format("{} is empty; set it", field));
  if (value.size() > kMaxIdLength) {
    return Status::InvalidArgument(fmt::format("{} \"{}\" is {} characters long; use at most {}",
                                               field, value, value.size(), kMaxIdLength));
  }
  auto allowed = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_';
  };
  for (char c : value) {
    if (!allowed(c)) {
      return Status::InvalidArgument(
          fmt::format("{} \"{}\" contains '{}'; use only letters, digits, '-' and '_'",
                      field, value, c));
    }
  }
  if (value[0] == '-' || value[0] == '_') {
    return Status::InvalidArgument(
        fmt::format("{} \"{}\" must start with a letter or a digit", field, value));
  }
  return Status::Ok();
}

Status CheckRange(std::string_view field, int value, int min, int max, std::string_view unit) {
  if (value >= min && value <= max) return Status::Ok();
  return Status::InvalidArgument(
      fmt::format("{} is {}; it must be between {} and {}{}", field, value, min, max, unit));
}

bool IsEnvName(const std::string& name) {
  if (name.empty() || (name[0] >= '0' && name[0] <= '9')) return false;
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')) {
      return false;
    }
  }
  return true;
}

DeploymentRef RefFrom(const std::string& ns, const std::string& deployment_id) {
  return DeploymentRef{ns.empty() ? kDefaultNamespace : ns, deployment_id};
}

DeploymentSpec SpecFrom(const v1::CreateDeploymentRequest& req) {
  DeploymentSpec spec;
  spec.ref = RefFrom(req.namespace_(), req.deployment_id());
  spec.image = req.image();
  spec.replicas = req.replicas();
  spec.cpu_millicores = req.cpu_millicores() == 0 ? kDefaultCpuMillicores : req.cpu_millicores();
  spec.memory_mib = req.memory_mib() == 0 ? kDefaultMemoryMib : req.memory_mib();
  spec.env.insert(req.env().begin(), req.env().end());
  spec.port = req.port();
  spec.health_check_path = req.health_check_path();
  if (req.has_pull_auth()) {
    spec.pull_auth = {req.pull_auth().server(), req.pull_auth().username(),
                      req.pull_auth().password()};
  }
  return spec;
}

v1::InstanceStatus ToProto(InstanceStatus status) {
  switch (status) {
    case InstanceStatus::kPending:
      return v1::INSTANCE_STATUS_PENDING;
    case InstanceStatus::kRunning:
      return v1::INSTANCE_STATUS_RUNNING;
    case InstanceStatus::kTerminating:
      return v1::INSTANCE_STATUS_TERMINATING;
    case InstanceStatus::kFailed:
      return v1::INSTANCE_STATUS_FAILED;
  }
  return v1::INSTANCE_STATUS_UNSPECIFIED;
}

template <typename Response>
void FillInstances(const std::vector<Instance>& instances, Response* response) {
  for (const Instance& in : instances) {
    v1::Instance* out = response->add_instances();
    out->set_id(in.id);
    out->set_address(in.address);
    out->set_status(ToProto(in.status));
    out->set_reason(in.reason);
  }
}

}  // namespace

Status ValidateDeploymentRef(const DeploymentRef& ref) {
  SLIPWAY_RETURN_IF_ERROR(ValidateId("namespace", ref.ns));
  return ValidateId("deployment_id", ref.deployment_id);
}

Status ValidateDeploymentSpec(const DeploymentSpec& spec) {
  SLIPWAY_RETURN_IF_ERROR(ValidateDeploymentRef(spec.ref));
  if (spec.image.empty()) {
    return Status::InvalidArgument("image is empty; set it to the image to run, e.g. \"app:v1\"");
  }
  if (spec.image.size() > 512 || spec.image.find_first_of(" \t\r\n") != std::string::npos) {
    return Status::InvalidArgument(fmt::format(
        "image \"{}\" is not an image reference; use name[:tag] or name@digest", spec.image));
  }
  SLIPWAY_RETURN_IF_ERROR(CheckRange("replicas", spec.replicas, 1, kMaxReplicas, ""));
  SLIPWAY_RETURN_IF_ERROR(CheckRange("memory_mib", spec.memory_mib, kMinMemoryMib, kMaxMemoryMib,
                                     " MiB (0 means the default, 256)"));
  SLIPWAY_RETURN_IF_ERROR(CheckRange("cpu_millicores", spec.cpu_millicores, kMinCpuMillicores,
                                     kMaxCpuMillicores,
                                     " (1000 is one CPU; 0 means the default, 1000)"));
  SLIPWAY_RETURN_IF_ERROR(CheckRange("port", spec.port, 0, 65535, " (0 lets krane pick one)"));
  if (spec.env.size() > kMaxEnvEntries) {
    return Status::InvalidArgument(
        fmt::format("env has {} entries; use at most {}", spec.env.size(), kMaxEnvEntries));
  }
  for (const auto& [name, value] : spec.env) {
    if (!IsEnvName(name)) {
      return Status::InvalidArgument(fmt::format(
          "env name \"{}\" is not a variable name; use letters, digits and '_', not starting "
          "with a digit",
          name));
    }
    if (value.find('\0') != std::string::npos) {
      return Status::InvalidArgument(fmt::format("env {} contains a NUL byte; remove it", name));
    }
  }
  const std::string& path = spec.health_check_path;
  if (!path.empty()) {
    bool printable =
        std::all_of(path.begin(), path.end(), [](char c) { return c > ' ' && c != 0x7f; });
    if (path[0] != '/' || !printable || path.size() > 1024) {
      return Status::InvalidArgument(fmt::format(
          "health_check_path \"{}\" must be a URL path starting with '/' without spaces, e.g. "
          "\"/healthz\"",
          path));
    }
  }
  return Status::Ok();
}

KraneService::KraneService(KraneBackend& backend, std::string token, FollowOptions follow)
    : backend_(backend), token_(std::move(token)), follow_(follow) {}

Status KraneService::Authorize(net::CallContext& ctx) const {
  if (ctx.procedure() == net::HealthCheckProcedure()) return Status::Ok();
  const std::string presented = ctx.bearer_token();
  if (presented.empty()) {
    return Status::Unauthenticated(
        "krane needs its token: send \"Authorization: Bearer <KRANE_TOKEN>\"");
  }
  if (token_.empty() || !ConstantTimeEquals(presented, token_)) {
    return Status::Unauthenticated(
        "the krane token is wrong; use the KRANE_TOKEN krane was started with");
  }
  return Status::Ok();
}

void KraneService::Register(net::ConnectRouter& router) {
  router.SetAuthorizer([this](net::CallContext& ctx) { return Authorize(ctx); });
  static const auto started = SystemClock().Now();
  net::RegisterHealthService(router, SystemClock(), started);

  router.Unary<v1::CreateDeploymentRequest, v1::CreateDeploymentResponse>(
      net::ConnectProcedure(kService, "CreateDeployment"),
      [this](net::CallContext&, const v1::CreateDeploymentRequest& req,
             v1::CreateDeploymentResponse* resp) -> Status {
        DeploymentSpec spec = SpecFrom(req);
        SLIPWAY_RETURN_IF_ERROR(ValidateDeploymentSpec(spec));
        spdlog::info("CreateDeployment {}/{}: {} x {} ({} MiB, {} millicores)", spec.ref.ns,
                     spec.ref.deployment_id, spec.replicas, spec.image, spec.memory_mib,
                     spec.cpu_millicores);
        SLIPWAY_ASSIGN_OR_RETURN(auto instances, backend_.CreateDeployment(spec));
        FillInstances(instances, resp);
        return Status::Ok();
      });

  router.Unary<v1::GetDeploymentRequest, v1::GetDeploymentResponse>(
      net::ConnectProcedure(kService, "GetDeployment"),
      [this](net::CallContext&, const v1::GetDeploymentRequest& req,
             v1::GetDeploymentResponse* resp) -> Status {
        DeploymentRef ref = RefFrom(req.namespace_(), req.deployment_id());
        SLIPWAY_RETURN_IF_ERROR(ValidateDeploymentRef(ref));
        SLIPWAY_ASSIGN_OR_RETURN(auto instances, backend_.GetDeployment(ref));
        FillInstances(instances, resp);
        return Status::Ok();
      });

  router.ServerStreaming<v1::WatchDeploymentRequest, v1::WatchDeploymentResponse>(
      net::ConnectProcedure(kService, "WatchDeployment"),
      [this](net::CallContext&, const v1::WatchDeploymentRequest& req,
             net::StreamWriter<v1::WatchDeploymentResponse>& out) -> Status {
        DeploymentRef ref = RefFrom(req.namespace_(), req.deployment_id());
        SLIPWAY_RETURN_IF_ERROR(ValidateDeploymentRef(ref));
        FollowOptions follow = follow_;
        follow.until_settled = req.until_settled();
        // A message that cannot be sent means the client is gone: the follow ends there.
        return FollowDeployment(
            backend_, ref, follow,
            [&](const std::vector<Instance>& instances) {
              v1::WatchDeploymentResponse message;
              FillInstances(instances, &message);
              return out.Send(message).ok();
            },
            [&] { return out.Cancelled(); });
      });

  router.Unary<v1::DeleteDeploymentRequest, v1::DeleteDeploymentResponse>(
      net::ConnectProcedure(kService, "DeleteDeployment"),
      [this](net::CallContext&, const v1::DeleteDeploymentRequest& req,
             v1::DeleteDeploymentResponse* resp) -> Status {
        DeploymentRef ref = RefFrom(req.namespace_(), req.deployment_id());
        SLIPWAY_RETURN_IF_ERROR(ValidateDeploymentRef(ref));
        SLIPWAY_ASSIGN_OR_RETURN(int removed, backend_.DeleteDeployment(ref));
        resp->set_removed(removed);
        return Status::Ok();
      });

  router.Unary<v1::GetLogsRequest, v1::GetLogsResponse>(
      net::ConnectProcedure(kService, "GetLogs"),
      [this](net::CallContext&, const v1::GetLogsRequest& req, v1::GetLogsResponse* resp) -> Status {
        DeploymentRef ref = RefFrom(req.namespace_(), req.deployment_id());
        SLIPWAY_RETURN_IF_ERROR(ValidateDeploymentRef(ref));
        if (req.tail() < 0 || (req.has_instance() && req.instance() < 0)) {
          return Status::InvalidArgument("tail and instance must not be negative");
        }
        LogQuery q;
        q.instance = req.has_instance() ? req.instance() : -1;
        q.after_ns = req.after_ns();
        q.tail = req.tail();
        SLIPWAY_ASSIGN_OR_RETURN(auto lines, backend_.Logs(ref, q));
        resp->set_more(BoundLogAnswer(lines));
        for (const auto& l : lines) {
          auto* out = resp->add_lines();
          out->set_instance_id(l.instance_id);
          out->set_time_ns(l.time_ns);
          out->set_stream(l.stream);
          out->set_text(l.text);
        }
        return Status::Ok();
      });
}

}  // namespace slipway::krane
