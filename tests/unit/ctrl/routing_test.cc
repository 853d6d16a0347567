// Hostname derivation for deployments: branch slugs, label bounds, order and URLs.
#include "ctrl/routing.h"

#include <gtest/gtest.h>

#include <string>

namespace slipway::ctrl {
namespace {

bool IsValidLabel(const std::string& label) {
  if (label.empty() || label.size() > kMaxLabelLength) return false;
  if (label.front() == '-' || label.back() == '-') return false;
  for (char c : label) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return label.find("--") == std::string::npos;
}

std::string FirstLabel(const std::string& host) { return host.substr(0, host.find('.')); }

TEST(BranchSlugTest, LowercasesAndCollapsesEverythingElseToSingleDashes) {
  EXPECT_EQ(BranchSlug("main", 40), "main");
  EXPECT_EQ(BranchSlug("Feature/Login-Page", 40), "feature-login-page");
  EXPECT_EQ(BranchSlug("fix//double__under..dots", 40), "fix-double-under-dots");
  EXPECT_EQ(BranchSlug("--/leading and trailing/--", 40), "leading-and-trailing");
  EXPECT_EQ(BranchSlug("dependabot/npm_and_yarn/@types/node-20.1", 60),
            "dependabot-npm-and-yarn-types-node-20-1");
  EXPECT_EQ(BranchSlug("ÄÖ-ümlaut", 40), "mlaut");
}

TEST(BranchSlugTest, EmptyWhenNothingUsableRemains) {
  EXPECT_EQ(BranchSlug("", 40), "");
  EXPECT_EQ(BranchSlug("///", 40), "");
  EXPECT_EQ(BranchSlug("ü", 40), "");
}

TEST(BranchSlugTest, LongBranchesAreCutAndKeptApartByAHash) {
  const std::string a = "feature/" + std::string(80, 'x') + "-one";
  const std::string b = "feature/" + std::string(80, 'x') + "-two";
  const std::string sa = BranchSlug(a, 30);
  const std::string sb = BranchSlug(b, 30);
  EXPECT_LE(sa.size(), 30u);
  EXPECT_LE(sb.size(), 30u);
  EXPECT_NE(sa, sb);
  EXPECT_EQ(sa.rfind("feature-xxx", 0), 0u) << sa;
  EXPECT_TRUE(IsValidLabel(sa)) << sa;
  // Deterministic: the same branch always gives the same slug.
  EXPECT_EQ(BranchSlug(a, 30), sa);
  // A cut that would end on '-' does not.
  const std::string dashy = BranchSlug("abcdefghi-jklmnopqrstuvwxyz-0123456789", 17);
  EXPECT_TRUE(IsValidLabel(dashy)) << dashy;
  EXPECT_LE(dashy.size(), 17u);
}

TEST(DeploymentHostnamesTest, EnvironmentBranchAndDeploymentHostsInUrlOrder) {
  auto hosts = DeploymentHostnames(
      {"hello", "production", "Feature/Login", "dep_3f9a0c1e5b7d2a4f", "localhost"});
  ASSERT_EQ(hosts.size(), 3u);
  EXPECT_EQ(hosts[0].hostname, "hello-production.localhost");
  EXPECT_EQ(hosts[0].kind, HostKind::kEnvironment);
  EXPECT_EQ(hosts[1].hostname, "hello-git-feature-login.localhost");
  EXPECT_EQ(hosts[1].kind, HostKind::kBranch);
  EXPECT_EQ(hosts[2].hostname, "hello-3f9a0c1e.localhost");
  EXPECT_EQ(hosts[2].kind, HostKind::kDeployment);
}

TEST(DeploymentHostnamesTest, NoBranchHostWithoutABranch) {
  auto hosts = DeploymentHostnames({"api", "preview", "", "dep_0123456789abcdef", "Example.COM"});
  ASSERT_EQ(hosts.size(), 2u);
  EXPECT_EQ(hosts[0].hostname, "api-preview.example.com");
  EXPECT_EQ(hosts[1].hostname, "api-01234567.example.com");
}

TEST(DeploymentHostnamesTest, TheSameInputsGiveTheSameHosts) {
  HostInputs in{"shop", "production", "release/2024.1", "dep_aaaaaaaabbbbbbbb", "localhost"};
  auto first = DeploymentHostnames(in);
  auto second = DeploymentHostnames(in);
  ASSERT_EQ(first.size(), second.size());
  for (size_t i = 0; i < first.size(); ++i) EXPECT_EQ(first[i].hostname, second[i].hostname);
}

TEST(DeploymentHostnamesTest, LabelsStayWithin63CharactersForTheLongestProject) {
  const std::string project(40, 'p');
  auto hosts = DeploymentHostnames({project, "production", "feature/" + std::string(100, 'b'),
                                    "dep_0123456789abcdef", "localhost"});
  ASSERT_EQ(hosts.size(), 3u);
  for (const auto& h : hosts) {
    const std::string label = FirstLabel(h.hostname);
    EXPECT_TRUE(IsValidLabel(label)) << label << " (" << label.size() << ")";
    EXPECT_EQ(label.rfind(project, 0), 0u) << label;
  }
  EXPECT_EQ(FirstLabel(hosts[1].hostname).rfind(project + "-git-feature-b", 0), 0u);
}

TEST(GatewayUrlTest, PortOmittedOnlyFor80) {
  EXPECT_EQ(GatewayUrl("hello-production.localhost", 8080),
            "http://hello-production.localhost:8080");
  EXPECT_EQ(GatewayUrl("hello-production.localhost", 80), "http://hello-production.localhost");
  EXPECT_EQ(GatewayUrl("a.localhost", 443), "http://a.localhost:443");
}

}  // namespace
}  // namespace slipway::ctrl
