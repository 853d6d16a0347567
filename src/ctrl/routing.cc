#include "ctrl/routing.h"

#include <fmt/format.h>

#include "base/crypto.h"
#include "base/ids.h"

namespace slipway::ctrl {
namespace {

constexpr size_t kSlugHashLength = 6;

bool IsLabelChar(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

// Lowercase [a-z0-9] runs joined by single '-', trimmed; applied to any text that becomes part
// of a label (branch names, environment names, the apex).
std::string Sanitize(std::string_view text, bool keep_dots) {
  std::string out;
  bool pending_dash = false;
  for (char raw : text) {
    char c = Lower(raw);
    if (IsLabelChar(c) || (keep_dots && c == '.')) {
      if (pending_dash && !out.empty() && out.back() != '.' && c != '.') out += '-';
      pending_dash = false;
      out += c;
    } else {
      pending_dash = true;
    }
  }
  return out;
}

std::string TrimDashes(std::string s) {
  while (!s.empty() && s.back() == '-') s.pop_back();
  size_t start = 0;
  while (start < s.size() && s[start] == '-') ++start;
  return s.substr(start);
}

// Joins project and suffix into one label, cutting the suffix (never the project, which is at
// most 40 characters) to fit.
std::string Label(const std::string& project, std::string_view infix, const std::string& suffix) {
  std::string label = project + std::string(infix) + suffix;
  if (label.size() > kMaxLabelLength) label = TrimDashes(label.substr(0, kMaxLabelLength));
  return label;
}

}  // namespace

std::string_view HostKindName(HostKind kind) {
  switch (kind) {
    case HostKind::kEnvironment:
      return "environment";
    case HostKind::kBranch:
      return "branch";
    case HostKind::kDeployment:
      return "deployment";
  }
  return "deployment";
}

std::string BranchSlug(std::string_view branch, size_t max_length) {
  std::string slug = Sanitize(branch, /*keep_dots=*/false);
  if (slug.size() <= max_length) return slug;
  const std::string hash = Sha256Hex(branch).substr(0, kSlugHashLength);
  if (max_length <= kSlugHashLength + 1) return hash.substr(0, max_length);
  std::string prefix = TrimDashes(slug.substr(0, max_length - kSlugHashLength - 1));
  return prefix.empty() ? hash : prefix + "-" + hash;
}

std::vector<DeploymentHost> DeploymentHostnames(const HostInputs& in) {
  std::string apex = Sanitize(in.apex_domain, /*keep_dots=*/true);
  while (!apex.empty() && apex.front() == '.') apex.erase(apex.begin());
  while (!apex.empty() && apex.back() == '.') apex.pop_back();
  if (apex.empty()) apex = "localhost";
  const std::string project = Sanitize(in.project, false);
  auto host = [&](const std::string& label) { return label + "." + apex; };

  std::vector<DeploymentHost> hosts;
  const std::string env = Sanitize(in.environment, false);
  if (!env.empty()) hosts.push_back({host(Label(project, "-", env)), HostKind::kEnvironment});
  const size_t room = kMaxLabelLength - std::min(kMaxLabelLength, project.size() + 5);
  const std::string slug = BranchSlug(in.branch, room);
  if (!slug.empty()) hosts.push_back({host(Label(project, "-git-", slug)), HostKind::kBranch});
  hosts.push_back({host(Label(project, "-", Sanitize(ShortId(in.deployment_id), false))),
                   HostKind::kDeployment});
  return hosts;
}

std::string GatewayUrl(std::string_view hostname, int gateway_public_port) {
  if (gateway_public_port == 80 || gateway_public_port <= 0)
    return fmt::format("http://{}", hostname);
  return fmt::format("http://{}:{}", hostname, gateway_public_port);
}

}  // namespace slipway::ctrl
