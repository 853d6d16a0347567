// slipway.toml parsing, flags over the file, project names from directories.
#include "cli/project_config.h"

#include <gtest/gtest.h>

#include <fstream>

#include "support/test_support.h"

namespace slipway::cli {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

constexpr char kFull[] = R"(project = "api"

[build]
context = "service"
dockerfile = "docker/Dockerfile.prod"
args = { VERSION = "1.2", DEBUG = false }

[deploy]
environment = "staging"
branch = "release"
replicas = 3
cpu = 250
memory = 512
port = 8080
health_check_path = "/healthz"

[deploy.env]
LOG_LEVEL = "debug"
WORKERS = 4
)";

TEST(ProjectConfigTest, ReadsEveryKey) {
  auto c = ParseProjectConfig(kFull, "slipway.toml");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->project, "api");
  EXPECT_EQ(c->context, "service");
  EXPECT_EQ(c->dockerfile, "docker/Dockerfile.prod");
  EXPECT_EQ(c->build_args,
            (std::map<std::string, std::string>{{"VERSION", "1.2"}, {"DEBUG", "false"}}));
  EXPECT_EQ(c->environment, "staging");
  EXPECT_EQ(c->branch, "release");
  EXPECT_EQ(c->replicas, 3);
  EXPECT_EQ(c->cpu_millicores, 250);
  EXPECT_EQ(c->memory_mib, 512);
  EXPECT_EQ(c->port, 8080);
  EXPECT_EQ(c->health_check_path, "/healthz");
  EXPECT_EQ(c->env, (std::map<std::string, std::string>{{"LOG_LEVEL", "debug"}, {"WORKERS", "4"}}));
}

TEST(ProjectConfigTest, EmptyFileSaysNothing) {
  auto c = ParseProjectConfig("# nothing here\n", "slipway.toml");
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c->project);
  EXPECT_FALSE(c->replicas);
  EXPECT_TRUE(c->env.empty());
}

TEST(ProjectConfigTest, BuildArgsAsTable) {
  auto c = ParseProjectConfig("[build.args]\nA = \"1\"\nB = \"two\"\n", "slipway.toml");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->build_args, (std::map<std::string, std::string>{{"A", "1"}, {"B", "two"}}));
}

// Each malformed file: the error names the file, the line (and column) and what is wrong.
struct BadConfig {
  const char* text;
  const char* where;  // "file:line:"
  const char* says;   // a piece of the message
};

TEST(ProjectConfigTest, ErrorsNameFileLineAndProblem) {
  const BadConfig cases[] = {
      {"project = \"api\"\n[deploy]\nreplicas = \"two\"\n",
       "/src/app/slipway.toml:3:", "deploy.replicas must be an integer, not a string"},
      {"[deploy]\n\nreplicas = 0\n",
       "/src/app/slipway.toml:3:", "deploy.replicas must be between 1 and 100, not 0"},
      {"[deploy]\nport = 70000\n",
       "/src/app/slipway.toml:2:", "deploy.port must be between 1 and 65535"},
      {"[deploy]\nreplica = 2\n",
       "/src/app/slipway.toml:2:1:", "unknown key \"replica\" in [deploy]"},
      {"name = \"x\"\n", "/src/app/slipway.toml:1:1:", "unknown key \"name\" at the top level"},
      {"project = \"My App\"\n",
       "/src/app/slipway.toml:1:", "\"My App\" is not a valid project name"},
      {"project = \"api\"\nreplicas = \n",
       "/src/app/slipway.toml:2:", "slipway.toml must be valid TOML"},
      {"[build]\ndockerfile = 3\n",
       "/src/app/slipway.toml:2:", "build.dockerfile must be a string, not an integer"},
      {"build = \"x\"\n",
       "/src/app/slipway.toml:1:", "build must be a table ([build]), not a string"},
      {"[deploy]\nhealth_check_path = \"healthz\"\n",
       "/src/app/slipway.toml:2:", "must be a path starting with '/'"},
      {"[deploy.env]\nLIST = [1, 2]\n",
       "/src/app/slipway.toml:2:", "deploy.env.LIST must be a string, not an array"},
      {"[deploy]\nreplicas = 2\nreplicas = 3\n", "/src/app/slipway.toml:3:", "cannot redefine"},
      {"[deploy]\nfail_on_breaking = \"yes\"\n",
       "/src/app/slipway.toml:2:", "deploy.fail_on_breaking must be true or false"},
  };
  for (const auto& bad : cases) {
    auto c = ParseProjectConfig(bad.text, "/src/app/slipway.toml");
    ASSERT_FALSE(c.ok()) << bad.text;
    EXPECT_EQ(c.status().code(), Code::kInvalidArgument);
    EXPECT_EQ(c.status().message().rfind(bad.where, 0), 0u) << c.status().message();
    EXPECT_NE(c.status().message().find(bad.says), std::string::npos) << c.status().message();
  }
}

TEST(ProjectConfigTest, FailOnBreakingComesFromTheDeployTable) {
  TempDir dir;
  auto on = ParseProjectConfig("[deploy]\nfail_on_breaking = true\n", "slipway.toml");
  ASSERT_TRUE(on.ok()) << on.status().message();
  EXPECT_EQ(on->fail_on_breaking, true);
  auto settings = ResolveProjectSettings(dir.path(), *on, {});
  ASSERT_TRUE(settings.ok()) << settings.status().message();
  EXPECT_TRUE(settings->fail_on_breaking);
  auto unset = ResolveProjectSettings(dir.path(), ProjectConfig{}, {});
  ASSERT_TRUE(unset.ok());
  EXPECT_FALSE(unset->fail_on_breaking);
}

TEST(ProjectConfigTest, LoadReadsTheDirectorysFileOrNothing) {
  TempDir dir;
  auto none = LoadProjectConfig(dir.path());
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->project);
  std::ofstream(dir.path() / "slipway.toml") << "[deploy]\nreplicas = true\n";
  auto bad = LoadProjectConfig(dir.path());
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message().rfind((dir.path() / "slipway.toml").string() + ":2:", 0), 0u)
      << bad.status().message();
}

TEST(ProjectConfigTest, FlagsOverrideTheFileWhichOverridesDefaults) {
  TempDir dir;
  fs::create_directories(dir.path() / "service");
  fs::create_directories(dir.path() / "other");
  auto config = ParseProjectConfig(kFull, "slipway.toml");
  ASSERT_TRUE(config.ok());

  auto from_file = ResolveProjectSettings(dir.path(), *config, {});
  ASSERT_TRUE(from_file.ok()) << from_file.status().message();
  EXPECT_EQ(from_file->project, "api");
  EXPECT_EQ(from_file->context_dir, fs::canonical(dir.path() / "service"));
  EXPECT_EQ(from_file->dockerfile, "docker/Dockerfile.prod");
  EXPECT_EQ(from_file->replicas, 3);
  EXPECT_EQ(from_file->port, 8080);
  EXPECT_EQ(from_file->environment, "staging");

  ProjectFlags flags;
  flags.project = "web";
  flags.context = "other";
  flags.dockerfile = "Dockerfile";
  flags.replicas = 1;
  flags.memory_mib = 128;
  flags.environment = "preview";
  flags.build_args = {"VERSION=2.0", "EXTRA=a=b"};
  flags.env = {"LOG_LEVEL=info", "EMPTY="};
  auto s = ResolveProjectSettings(dir.path(), *config, flags);
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(s->project, "web");
  EXPECT_EQ(s->context_dir, fs::canonical(dir.path() / "other"));
  EXPECT_EQ(s->dockerfile, "Dockerfile");
  EXPECT_EQ(s->replicas, 1);
  EXPECT_EQ(s->memory_mib, 128);
  EXPECT_EQ(s->cpu_millicores, 250);  // not overridden: the file's
  EXPECT_EQ(s->environment, "preview");
  EXPECT_EQ(s->branch, "release");
  // Maps merge key by key, flags winning.
  EXPECT_EQ(s->build_args, (std::map<std::string, std::string>{
                               {"VERSION", "2.0"}, {"DEBUG", "false"}, {"EXTRA", "a=b"}}));
  EXPECT_EQ(s->env, (std::map<std::string, std::string>{
                        {"LOG_LEVEL", "info"}, {"WORKERS", "4"}, {"EMPTY", ""}}));

  auto defaults = ResolveProjectSettings(dir.path(), ProjectConfig{}, {});
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults->context_dir, fs::canonical(dir.path()));
  EXPECT_EQ(defaults->dockerfile, "Dockerfile");
  EXPECT_EQ(defaults->replicas, 0);  // the control plane's default
  EXPECT_TRUE(defaults->environment.empty());
}

TEST(ProjectConfigTest, BadFlagsAreNamed) {
  TempDir dir;
  ProjectFlags flags;
  flags.build_args = {"NOVALUE"};
  auto s = ResolveProjectSettings(dir.path(), {}, flags);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("--build-arg \"NOVALUE\" must be KEY=VALUE"),
            std::string::npos)
      << s.status().message();

  flags = {};
  flags.project = "Bad_Name";
  s = ResolveProjectSettings(dir.path(), {}, flags);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("--project \"Bad_Name\""), std::string::npos);

  flags = {};
  flags.replicas = 0;
  s = ResolveProjectSettings(dir.path(), {}, flags);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("--replicas must be between 1 and 100"), std::string::npos);

  flags = {};
  flags.context = "missing";
  s = ResolveProjectSettings(dir.path(), {}, flags);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(
      s.status().message().find("the build context \"missing\" (--context) is not a directory"),
      std::string::npos)
      << s.status().message();
}

TEST(ProjectConfigTest, ProjectNameDefaultsToTheSanitizedDirectoryName) {
  TempDir root;
  fs::path dir = root.path() / "My_App v2";
  fs::create_directories(dir);
  auto s = ResolveProjectSettings(dir, {}, {});
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(s->project, "my-app-v2");
}

TEST(ProjectNameTest, Sanitizes) {
  EXPECT_EQ(*ProjectNameFromDirectory("hello"), "hello");
  EXPECT_EQ(*ProjectNameFromDirectory("Hello World"), "hello-world");
  EXPECT_EQ(*ProjectNameFromDirectory("--my__app--"), "my-app");
  EXPECT_EQ(*ProjectNameFromDirectory("api.v2.example"), "api-v2-example");
  EXPECT_EQ(*ProjectNameFromDirectory("café"), "caf");
  std::string long_name(39, 'a');
  long_name += "-bcdef";
  EXPECT_EQ(*ProjectNameFromDirectory(long_name), std::string(39, 'a'));  // no trailing '-'
  EXPECT_EQ(ProjectNameFromDirectory(std::string(50, 'x'))->size(), 40u);
}

TEST(ProjectNameTest, ImpossibleNameSaysWhatToDo) {
  auto r = ProjectNameFromDirectory("___");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  EXPECT_NE(r.status().message().find("\"___\""), std::string::npos);
  EXPECT_NE(r.status().message().find("--project"), std::string::npos);
  EXPECT_NE(r.status().message().find("slipway.toml"), std::string::npos);
}

TEST(ProjectNameTest, ValidatesChosenNames) {
  EXPECT_TRUE(ValidateProjectName("a", "--project").ok());
  EXPECT_TRUE(ValidateProjectName("my-app-2", "--project").ok());
  EXPECT_FALSE(ValidateProjectName("", "--project").ok());
  EXPECT_FALSE(ValidateProjectName("-a", "--project").ok());
  EXPECT_FALSE(ValidateProjectName("a-", "--project").ok());
  EXPECT_FALSE(ValidateProjectName("A", "--project").ok());
  EXPECT_FALSE(ValidateProjectName(std::string(41, 'a'), "--project").ok());
}

}  // namespace
}  // namespace slipway::cli

namespace slipway::cli {
namespace {

TEST(ProjectConfigPlatformsTest, PlatformsAndTargetFromTheFileAndFlags) {
  auto c = ParseProjectConfig("[build]\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\ntarget = \"release\"\n",
                              "slipway.toml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->platforms.value_or(""), "linux/amd64,linux/arm64");
  EXPECT_EQ(c->target.value_or(""), "release");

  auto bad = ParseProjectConfig("[build]\nplatforms = [\"linux\"]\n", "slipway.toml");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("slipway.toml:2:"), std::string::npos) << bad.status().message();
  EXPECT_NE(bad.status().message().find("os/arch"), std::string::npos) << bad.status().message();
  EXPECT_FALSE(ParseProjectConfig("[build]\nplatforms = \"linux/amd64\"\n", "f").ok());
  EXPECT_FALSE(ParseProjectConfig("[build]\nplatforms = []\n", "f").ok());

  EXPECT_TRUE(ValidatePlatform("linux/arm/v7", "--platform").ok());
  EXPECT_FALSE(ValidatePlatform("linux/", "--platform").ok());
  EXPECT_FALSE(ValidatePlatform("Linux/AMD64", "--platform").ok());
  EXPECT_FALSE(ValidatePlatform("a/b/c/d", "--platform").ok());
}

}  // namespace
}  // namespace slipway::cli
