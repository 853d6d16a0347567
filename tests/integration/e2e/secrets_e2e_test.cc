// Secrets end to end, on SQLite and PostgreSQL: `slipway env set --secret` on a `slipway dev`
// stack, `slipway deploy` of an app that serves a digest of what it got, and then every place
// the value could leak is searched for it: the stack's log (every part logs there), the CLI's
// output, every API answer about the project (deployment, build and its log, lists, variables),
// every file under the stack's data directory (SQLite databases and their WAL, objects, the
// secrets file), and on PostgreSQL every row of every table as text. Only the ciphertext may be
// stored. A stack restarted with another SLIPWAY_SECRET_KEY fails the next deploy at schedule
// with a message that names the variable and the key, never the value.
#include <gtest/gtest.h>

#include "base/crypto.h"
#include "db/database.h"
#include "dev_stack.h"
#include "support/postgres.h"

namespace slipway::testing {
namespace {

using Json = nlohmann::json;

// ctrl's Connect JSON API with the dev token.
std::string CallCtrl(const DevStack& stack, const std::string& procedure, const Json& body) {
  auto creds = stack.credentials();
  CommandResult r = RunCommand(
      "curl -s -X POST -H 'Content-Type: application/json' -H "
      "'Authorization: Bearer " +
      creds["token"].get<std::string>() + "' -d '" + body.dump() + "' " +
      creds["control_plane"].get<std::string>() + "/" + procedure);
  return r.output;
}

// Every file under dir that holds `needle`, by path.
std::vector<std::string> FilesHolding(const fs::path& dir, const std::string& needle) {
  std::vector<std::string> found;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    if (ReadFile(entry.path()).find(needle) != std::string::npos) found.push_back(entry.path());
  }
  return found;
}

// Every row of every table of a PostgreSQL database, as text.
std::string AllRowsAsText(const std::string& url, size_t min_tables) {
  auto db = db::Open(url);
  EXPECT_TRUE(db.ok()) << db.status().ToString();
  if (!db.ok()) return "";
  auto tables = (*db)->Query(
      "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()");
  EXPECT_TRUE(tables.ok()) << tables.status().ToString();
  std::string all;
  if (!tables.ok()) return all;
  EXPECT_GE(tables->size(), min_tables) << url;
  for (const auto& t : *tables) {
    const std::string name = t["table_name"].AsText();
    auto rows = (*db)->Query("SELECT CAST(x AS TEXT) AS row FROM \"" + name + "\" x");
    EXPECT_TRUE(rows.ok()) << name << ": " << rows.status().ToString();
    if (!rows.ok()) continue;
    for (const auto& r : *rows) all += name + ": " + r["row"].AsText() + "\n";
  }
  return all;
}

class SecretsE2ETest : public ::testing::TestWithParam<TestDriver> {};

TEST_P(SecretsE2ETest, AppGetsTheSecretAndNoLogAnswerOrFileHoldsIt) {
  TempDir dbs;
  const std::string main_url = FreshDatabaseUrl(GetParam(), dbs.path());
  const std::string partition_url = FreshDatabaseUrl(GetParam(), dbs.path());
  const std::vector<std::string> flags = {"--database",  main_url,          "--partition-database",
                                          partition_url, "--wait-interval", "250ms"};
  DevStack stack(flags);
  ASSERT_TRUE(stack.ready()) << stack.log();
  const std::string secret = "sv-" + RandomHex(16);
  const std::string project = std::string("secret-") + TestDriverName(GetParam());

  // The app writes what it got to files it serves: the secret only as its SHA-256.
  TempDir src;
  fs::path app = src.path() / "app";
  fs::create_directories(app);
  std::ofstream(app / "Dockerfile")
      << "FROM slipway/busybox:1\nCMD [\"/bin/sh\", \"-c\", \"mkdir -p /www && printf %s "
         "\\\"$APP_SECRET\\\" | sha256sum > /www/secret && echo \\\"plain=$APP_PLAIN "
         "mode=$APP_MODE\\\" > /www/plain && exec /bin/busybox httpd -f -p 127.0.0.1:$PORT -h /www\"]\n";

  const std::string cli = SlipwayBinary();
  auto run = [&](const std::string& args) {
    return RunCommand(cli + " " + args + " --project " + project + " 2>&1", stack.env());
  };
  std::string cli_output;
  for (const std::string& args :
       {"env set APP_SECRET=" + secret + " --secret", std::string("env set APP_PLAIN=visible"),
        std::string("env set APP_MODE=wrong"),
        std::string("env set APP_MODE=right --environment production")}) {
    CommandResult r = run(args);
    ASSERT_EQ(r.exit_code, 0) << args << ": " << r.output;
    cli_output += r.output;
  }
  CommandResult listed = run("env list");
  ASSERT_EQ(listed.exit_code, 0) << listed.output;
  EXPECT_NE(listed.output.find("APP_SECRET"), std::string::npos) << listed.output;
  EXPECT_NE(listed.output.find("(secret)"), std::string::npos) << listed.output;
  EXPECT_NE(listed.output.find("visible"), std::string::npos) << listed.output;
  CommandResult listed_json = run("env list --json");
  ASSERT_EQ(listed_json.exit_code, 0) << listed_json.output;
  cli_output += listed.output + listed_json.output;

  DevStack::Deployed d = stack.Deploy(app, "--project " + project);
  ASSERT_EQ(d.exit_code, 0) << d.output;
  cli_output += d.output + d.result.dump();
  const std::string id = d.result.value("deployment_id", "");
  const std::string url = d.result["urls"][0].get<std::string>();
  Http got = Get(url + "/secret");
  ASSERT_EQ(got.status, 200) << got.body;
  EXPECT_EQ(got.body.substr(0, 64), Sha256Hex(secret)) << "the app did not get the secret";
  Http plain = Get(url + "/plain");
  EXPECT_EQ(plain.body, "plain=visible mode=right\n") << "the environment's value wins";

  // Every answer the API gives about the project.
  const Json dep = GetDeployment(stack, id);
  ASSERT_TRUE(dep.is_object());
  std::string answers = dep.dump();
  answers +=
      CallCtrl(stack, "slipway.ctrl.v1.DeploymentService/ListDeployments", {{"project", project}});
  answers += CallCtrl(stack, "slipway.ctrl.v1.BuildService/GetBuild",
                      {{"buildId", dep["deployment"].value("buildId", "")}});
  answers += CallCtrl(stack, "slipway.ctrl.v1.EnvService/ListEnv", {{"project", project}});
  answers += CallCtrl(stack, "slipway.ctrl.v1.DeploymentService/GetLogs", {{"deploymentId", id}});
  answers +=
      CallCtrl(stack, "slipway.ctrl.v1.DeploymentService/GetOpenApiSpec", {{"deploymentId", id}});
  EXPECT_NE(answers.find("APP_SECRET"), std::string::npos) << "ListEnv did not answer: " << answers;
  EXPECT_EQ(answers.find(secret), std::string::npos) << answers;
  EXPECT_EQ(cli_output.find(secret), std::string::npos) << cli_output;
  EXPECT_EQ(stack.log().find(secret), std::string::npos) << "the stack's log holds the secret";
  CommandResult app_log =
      RunCommand("/usr/bin/docker ps -aq --filter label=slipway.deployment=" + id +
                 " | xargs -r -n1 /usr/bin/docker logs 2>&1");
  EXPECT_EQ(app_log.output.find(secret), std::string::npos);
  EXPECT_EQ(FilesHolding(stack.dir(), secret), std::vector<std::string>())
      << "files hold the secret";

  // Stored: only the sealed form.
  auto main_db = db::Open(main_url);
  ASSERT_TRUE(main_db.ok()) << main_db.status().ToString();
  auto rows =
      (*main_db)->Query("SELECT name, secret, value FROM env_vars WHERE name = 'APP_SECRET'");
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ((*rows)[0]["secret"].AsInt(), 1);
  EXPECT_EQ((*rows)[0]["value"].AsText().rfind("aesgcm1:", 0), 0u);
  if (GetParam() == TestDriver::kPostgres) {
    for (const std::string& db_url : {main_url, partition_url}) {
      const std::string all = AllRowsAsText(db_url, db_url == main_url ? 10 : 3);
      if (db_url == main_url) {
        EXPECT_NE(all.find("aesgcm1:"), std::string::npos);
      }
      EXPECT_EQ(all.find(secret), std::string::npos)
          << "a row of " << db_url << " holds the secret";
    }
  } else {
    EXPECT_EQ(FilesHolding(dbs.path(), secret), std::vector<std::string>());
  }

  // Another key: the next deploy fails at schedule saying why; nothing runs of it.
  std::vector<std::string> other = flags;
  other.insert(other.end(), {"--secret-key", std::string(64, '7')});
  stack.Restart(other);
  ASSERT_TRUE(stack.ready()) << stack.log();
  DevStack::Deployed again = stack.Deploy(app, "--project " + project);
  EXPECT_NE(again.exit_code, 0) << again.output;
  EXPECT_EQ(again.result.value("failed_step", ""), "schedule") << again.result.dump();
  const std::string error = again.result.value("error", "");
  EXPECT_NE(error.find("APP_SECRET"), std::string::npos) << error;
  EXPECT_NE(error.find("SLIPWAY_SECRET_KEY"), std::string::npos) << error;
  EXPECT_EQ(error.find(secret), std::string::npos);
  EXPECT_EQ(ContainersOf(again.result.value("deployment_id", "")), 0);
  EXPECT_EQ(stack.log().find(secret), std::string::npos);

  // A malformed key: ctrl refuses to start and says what a key looks like.
  TempDir bad_dir;
  CommandResult bad = RunCommand(cli + " run ctrl --database " +
                                 (bad_dir.path() / "m.db").string() + " --secret-key not-hex 2>&1");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.output.find("64 hex digits"), std::string::npos) << bad.output;
}

// The CLI learns of the context limit before it uploads a byte: `slipway deploy` of a context
// over ctrl's --max-context-bytes ends with ctrl's refusal, and the store holds no object of it.
TEST(ContextLimitE2ETest, DeployOfAContextOverTheLimitIsRefusedBeforeTheUpload) {
  DevStack stack({"--max-context-bytes", "1000"});
  ASSERT_TRUE(stack.ready()) << stack.log();
  TempDir src;
  fs::path app = src.path() / "big";
  fs::create_directories(app);
  std::ofstream(app / "Dockerfile") << "FROM slipway/busybox:1\nCOPY noise /noise\n";
  WriteRandomFile(app / "noise", 64 * 1024);
  DevStack::Deployed d = stack.Deploy(app, "--project ctx-limit");
  EXPECT_EQ(d.exit_code, 1) << d.output;
  EXPECT_NE(d.output.find("over this control plane's limit of 1000 bytes"), std::string::npos)
      << d.output;
  EXPECT_NE(d.output.find("--max-context-bytes"), std::string::npos) << d.output;
  EXPECT_NE(d.output.find(".dockerignore"), std::string::npos) << d.output;
  for (const auto& entry : fs::recursive_directory_iterator(stack.dir() / "data")) {
    EXPECT_EQ(entry.path().string().find(".tar.gz"), std::string::npos)
        << "an object was stored: " << entry.path();
  }
}

INSTANTIATE_TEST_SUITE_P(Drivers, SecretsE2ETest,
                         ::testing::Values(TestDriver::kSqlite, TestDriver::kPostgres),
                         [](const auto& info) { return TestDriverName(info.param); });

}  // namespace
}  // namespace slipway::testing
