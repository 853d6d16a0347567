// krane's API, slipway.krane.v1.DeploymentService, served over Connect: checks the shared
// token, validates each request, and hands it to a KraneBackend.
//
// Promises: every DeploymentService method needs "Authorization: Bearer <token>" (compared in
// constant time; missing or wrong → unauthenticated) and never reaches the backend otherwise;
// an invalid request is invalid_argument with a message naming the field and the accepted
// range, and never reaches the backend either. The health check stays open.
#pragma once

#include <string>

#include "base/status.h"
#include "krane/backend.h"
#include "krane/instance_follow.h"
#include "net/connect.h"

namespace slipway::krane {

// What an unset (zero) field of CreateDeploymentRequest means.
inline constexpr const char* kDefaultNamespace = "default";
inline constexpr int kDefaultMemoryMib = 256;
inline constexpr int kDefaultCpuMillicores = 1000;

// Bounds CreateDeployment accepts.
inline constexpr int kMaxReplicas = 100;
inline constexpr int kMinMemoryMib = 16;  // dockerd refuses less than 6 MiB; apps need more
inline constexpr int kMaxMemoryMib = 64 * 1024;
inline constexpr int kMinCpuMillicores = 10;
inline constexpr int kMaxCpuMillicores = 64 * 1000;

Status ValidateDeploymentRef(const DeploymentRef& ref);
// Checks a spec after defaults were applied (see the constants above).
Status ValidateDeploymentSpec(const DeploymentSpec& spec);

class KraneService {
 public:
  // backend must outlive the service and every router it is registered on. An empty token
  // refuses every call.
  KraneService(KraneBackend& backend, std::string token, FollowOptions follow = {});

  // Registers the DeploymentService methods and the health check on router, and sets
  // the router's authorizer (so krane needs a router of its own).
  void Register(net::ConnectRouter& router);

 private:
  Status Authorize(net::CallContext& ctx) const;

  KraneBackend& backend_;
  std::string token_;
  FollowOptions follow_;
};

}  // namespace slipway::krane
