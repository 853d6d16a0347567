// ctrl's API as a client written by others sees it: connect-es (npm @connectrpc/connect-node),
// with code generated at test time from proto/slipway/ctrl/v1, in the JSON format, calls the
// tokenless CtrlService.Liveness and BuildService.GenerateUploadURL with a token, and decodes
// ctrl's refusal of a tokenless GenerateUploadURL into its own Unauthenticated code.
#include <gtest/gtest.h>

#include "integration/ctrl/ctrl_harness.h"

namespace slipway::ctrl::test {
namespace {

std::string Quote(const std::string& s) { return "'" + s + "'"; }

// The JSON after "<call> ok " in the client's output, or null when that line is missing.
Json OkLine(const std::string& output, const std::string& call) {
  const std::string prefix = call + " ok ";
  size_t at = output.find(prefix);
  if (at == std::string::npos) return Json();
  size_t start = at + prefix.size();
  return Json::parse(output.substr(start, output.find('\n', start) - start), nullptr, false);
}

TEST(CtrlConnectEsTest, ConnectEsCallsLivenessAndGenerateUploadUrlWithJson) {
  fs::path peers = testing::SourceDir() / "tests" / "peers";
  fs::path plugin = peers / "node_modules" / ".bin" / "protoc-gen-es";
  ASSERT_TRUE(fs::exists(plugin)) << plugin << " is missing; run scripts/setup.sh (npm ci in "
                                  << peers << ") to install the test peers.";
  testing::TempDir gen;
  fs::create_directory_symlink(peers / "node_modules", gen.path() / "node_modules");
  const fs::path protos = testing::SourceDir() / "proto";
  std::string files;
  for (const char* name : {"build", "ctrl", "deployment"}) {
    files += " " + Quote((protos / "slipway/ctrl/v1" / (std::string(name) + ".proto")).string());
  }
  auto protoc = testing::RunCommand("protoc --plugin=protoc-gen-es=" + Quote(plugin.string()) +
                                    " --es_out=" + Quote(gen.str()) + " --es_opt=target=js -I " +
                                    Quote(protos.string()) + files);
  ASSERT_EQ(protoc.exit_code, 0) << protoc.output;

  CtrlHarness ctrl({});
  const std::string project = RunProject("connect-es");
  const std::string sha(64, 'e');
  auto node = testing::RunCommand("node " + Quote((peers / "connect_ctrl_client.mjs").string()) +
                                  " " + ctrl.endpoint() + " " + Quote(gen.str()) + " " +
                                  ctrl.token_a() + " " + project + " " + sha + " 4096");
  ASSERT_EQ(node.exit_code, 0) << node.output;

  Json live = OkLine(node.output, "liveness");
  ASSERT_TRUE(live.is_object()) << node.output;
  EXPECT_EQ(live["status"], "ok");
  EXPECT_FALSE(live.value("version", "").empty()) << node.output;

  Json upload = OkLine(node.output, "upload");
  ASSERT_TRUE(upload.is_object()) << node.output;
  const std::string key = upload.value("contextKey", "");
  EXPECT_EQ(key.rfind("contexts/prj_", 0), 0u) << node.output;
  EXPECT_NE(key.find(sha + ".tar.gz"), std::string::npos) << node.output;
  EXPECT_EQ(upload.value("uploadUrl", "").rfind(ctrl.options().s3.endpoint, 0), 0u) << node.output;
  // proto JSON sends int64 as a string.
  EXPECT_GT(std::stoll(upload.value("expiresAt", "0")), 0) << node.output;

  EXPECT_NE(node.output.find("upload-anonymous error code=Unauthenticated message=no API token"),
            std::string::npos)
      << node.output;
}

}  // namespace
}  // namespace slipway::ctrl::test
