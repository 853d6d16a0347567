// Where a deployment answers: the hostnames ctrl derives for it and the URLs they make.
//
// A deployment gets up to three hosts under the apex domain (CONTRACTS.md):
//   <project>-<env>          moves to every new deployment of that environment;
//   <project>-git-<slug>     moves to every new deployment of that branch (when a branch is set);
//   <project>-<short id>     this deployment's own, never moves.
// Derivation is a pure function of the deployment record, so a replayed route step computes the
// same hosts. Every label is at most 63 characters of [a-z0-9-], neither starting nor ending
// with '-', and the whole host is lowercase (as the gateway compares it).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace slipway::ctrl {

// The DNS label limit (RFC 1035).
inline constexpr size_t kMaxLabelLength = 63;

enum class HostKind { kEnvironment, kBranch, kDeployment };
std::string_view HostKindName(HostKind kind);  // "environment", "branch", "deployment"

struct DeploymentHost {
  std::string hostname;  // "hello-production.localhost"
  HostKind kind;
};

// A branch name as a DNS label part of at most max_length characters: lowercase, every run of
// characters outside [a-z0-9] collapsed to one '-', no '-' at either end. A branch whose slug
// would be longer keeps a prefix and ends in '-' plus 6 hex digits of the branch's SHA-256, so
// two long branches with a common prefix still get different hosts. Empty when the branch has
// no letter or digit at all.
std::string BranchSlug(std::string_view branch, size_t max_length);

struct HostInputs {
  std::string project;      // a valid project name (ValidateProjectName)
  std::string environment;  // "production", "preview"
  std::string branch;       // may be empty
  std::string deployment_id;
  std::string apex_domain = "localhost";
};

// The deployment's hosts, in the order of Deployment.urls: environment, branch (when there is
// one), deployment.
std::vector<DeploymentHost> DeploymentHostnames(const HostInputs& in);

// "http://<host>:<port>", or "http://<host>" when the port is 80.
std::string GatewayUrl(std::string_view hostname, int gateway_public_port);

}  // namespace slipway::ctrl
