// Where the CLI's control plane and token come from: flag > environment > dev credentials file.
#include "cli/credentials.h"

#include <gtest/gtest.h>

#include <fstream>
#include <map>

#include "support/test_support.h"

namespace slipway::cli {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

EnvLookup Env(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](std::string_view name) -> std::optional<std::string> {
    auto it = vars.find(std::string(name));
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

fs::path WriteDevFile(const fs::path& dir, const std::string& text) {
  fs::path file = dir / "slipway" / "dev.json";
  fs::create_directories(file.parent_path());
  std::ofstream(file) << text;
  return file;
}

constexpr char kDevFile[] =
    R"({"control_plane": "http://127.0.0.1:7000", "token": "file-token", "gateway": "http://127.0.0.1:8080"})";

TEST(CredentialsTest, FlagBeatsEnvironmentBeatsFile) {
  TempDir dir;
  fs::path file = WriteDevFile(dir.path(), kDevFile);
  auto env = Env({{"SLIPWAY_CONTROL_PLANE", "http://env:7001"}, {"SLIPWAY_TOKEN", "env-token"}});

  auto c = ResolveConnection({"http://flag:7002", "flag-token"}, env, file);
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->control_plane, "http://flag:7002");
  EXPECT_EQ(c->token, "flag-token");
  EXPECT_EQ(c->control_plane_source, "--control-plane");
  EXPECT_EQ(c->token_source, "--token");

  c = ResolveConnection({}, env, file);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->control_plane, "http://env:7001");
  EXPECT_EQ(c->token, "env-token");
  EXPECT_EQ(c->token_source, "SLIPWAY_TOKEN");

  c = ResolveConnection({}, Env({}), file);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->control_plane, "http://127.0.0.1:7000");
  EXPECT_EQ(c->token, "file-token");
  EXPECT_EQ(c->token_source, file.string());
}

TEST(CredentialsTest, EachSettingResolvesOnItsOwn) {
  TempDir dir;
  fs::path file = WriteDevFile(dir.path(), kDevFile);
  // The token from the environment, the address from the file.
  auto c = ResolveConnection({}, Env({{"SLIPWAY_TOKEN", "env-token"}}), file);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->control_plane, "http://127.0.0.1:7000");
  EXPECT_EQ(c->control_plane_source, file.string());
  EXPECT_EQ(c->token, "env-token");
  // The address from a flag, the token from the file; an empty variable counts as unset.
  c = ResolveConnection({"127.0.0.1:9999/", ""}, Env({{"SLIPWAY_TOKEN", ""}}), file);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->control_plane, "http://127.0.0.1:9999");
  EXPECT_EQ(c->token, "file-token");
}

TEST(CredentialsTest, FileIsReadOnlyWhenNeeded) {
  TempDir dir;
  fs::path file = WriteDevFile(dir.path(), "this is not json");
  auto c = ResolveConnection({"http://a:1", "t"}, Env({}), file);
  ASSERT_TRUE(c.ok()) << c.status().message();
  auto bad = ResolveConnection({"http://a:1", ""}, Env({}), file);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find(file.string()), std::string::npos);
  EXPECT_NE(bad.status().message().find("slipway dev"), std::string::npos);
}

TEST(CredentialsTest, NothingConfiguredSaysWhatToDo) {
  TempDir dir;
  auto c = ResolveConnection({}, Env({}), dir.path() / "slipway" / "dev.json");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("no control plane configured"), std::string::npos);
  EXPECT_NE(c.status().message().find("slipway dev"), std::string::npos);
  EXPECT_NE(c.status().message().find("--control-plane"), std::string::npos);
  EXPECT_NE(c.status().message().find("--token"), std::string::npos);

  auto no_token = ResolveConnection({"http://a:1", ""}, Env({}), {});
  ASSERT_FALSE(no_token.ok());
  EXPECT_NE(no_token.status().message().find("no API token for the control plane at http://a:1"),
            std::string::npos)
      << no_token.status().message();
}

TEST(CredentialsTest, DevFilePathFollowsXdg) {
  EXPECT_EQ(DevCredentialsPath(Env({{"XDG_CONFIG_HOME", "/x"}, {"HOME", "/home/u"}})),
            fs::path("/x/slipway/dev.json"));
  EXPECT_EQ(DevCredentialsPath(Env({{"HOME", "/home/u"}})),
            fs::path("/home/u/.config/slipway/dev.json"));
  EXPECT_EQ(DevCredentialsPath(Env({{"XDG_CONFIG_HOME", ""}, {"HOME", "/h"}})),
            fs::path("/h/.config/slipway/dev.json"));
  EXPECT_TRUE(DevCredentialsPath(Env({})).empty());
}

TEST(CredentialsTest, ControlPlaneUrls) {
  EXPECT_EQ(*NormalizeControlPlaneUrl("https://ctrl.example.com/", "x"),
            "https://ctrl.example.com");
  EXPECT_EQ(*NormalizeControlPlaneUrl("localhost:7000", "x"), "http://localhost:7000");
  auto bad = NormalizeControlPlaneUrl("ftp://x", "--control-plane");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("(from --control-plane)"), std::string::npos);
}

}  // namespace
}  // namespace slipway::cli
