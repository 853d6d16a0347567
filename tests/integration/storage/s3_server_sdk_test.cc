// `slipway run s3` against the AWS SDK for JavaScript v3 (tests/peers/s3_sdk_put_get.mjs): the
// client most apps use, which uploads streams aws-chunked with a CRC32 trailer.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "support/test_support.h"

namespace slipway::storage {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

TEST(S3ServerSdkTest, PutGetHeadListDeleteWithTheJavaScriptSdk) {
  fs::path peers = testing::SourceDir() / "tests" / "peers";
  ASSERT_TRUE(fs::exists(peers / "node_modules" / "@aws-sdk" / "client-s3"))
      << "the SDK is not installed: run `npm ci` in " << peers.string();

  testing::TempDir dir;
  int port = testing::FreePort();
  std::string log = (dir.path() / "s3.log").string();
  testing::Process server(
      {testing::SlipwayBinary(), "--log-level", "debug", "run", "s3", "--listen",
       "127.0.0.1:" + std::to_string(port), "--data", (dir.path() / "data").string()},
      {{"S3_ACCESS_KEY_ID", "SDKKEY"}, {"S3_SECRET_ACCESS_KEY", "sdk-secret"}}, log);
  ASSERT_TRUE(testing::WaitForPort(port)) << testing::ReadFile(log);

  testing::CommandResult r =
      testing::RunCommand("cd '" + peers.string() + "' && node s3_sdk_put_get.mjs",
                          {{"S3_ENDPOINT", "http://127.0.0.1:" + std::to_string(port)},
                           {"S3_REGION", "us-east-1"},
                           {"S3_ACCESS_KEY_ID", "SDKKEY"},
                           {"S3_SECRET_ACCESS_KEY", "sdk-secret"},
                           {"S3_BUCKET", "sdk-bucket"},
                           {"NODE_NO_WARNINGS", "1"}});
  ASSERT_EQ(r.exit_code, 0) << r.output << "\nserver log:\n" << testing::ReadFile(log);
  json out = json::parse(
      r.output.substr(r.output.rfind("\n{") == std::string::npos ? r.output.find('{')
                                                                 : r.output.rfind("\n{") + 1),
      nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(out.is_discarded()) << r.output;

  // Single-part ETags are the quoted MD5 of the content.
  EXPECT_EQ(out["putText"]["etag"], out["putText"]["expectedEtag"]);
  EXPECT_EQ(out["putBig"]["etag"], out["putBig"]["expectedEtag"]);

  // The streamed upload really went aws-chunked with a CRC32 trailer, and was stored intact.
  EXPECT_EQ(out["putStream"]["sent"]["content-encoding"], "aws-chunked") << out.dump(2);
  EXPECT_EQ(out["putStream"]["sent"]["x-amz-content-sha256"], "STREAMING-UNSIGNED-PAYLOAD-TRAILER");
  EXPECT_EQ(out["putStream"]["sent"]["x-amz-trailer"], "x-amz-checksum-crc32");
  EXPECT_EQ(out["putStream"]["etag"], out["putStream"]["expectedEtag"]);
  EXPECT_EQ(out["putStream"]["checksumCRC32"], out["putBig"]["checksumCRC32"]);
  EXPECT_EQ(out["getStream"]["sha256"], out["getStream"]["expectedSha256"]);

  EXPECT_EQ(out["getText"]["body"], "hello from the AWS SDK v3 \u00fc");
  EXPECT_EQ(out["getText"]["contentType"], "text/plain");
  EXPECT_EQ(out["getText"]["metadata"]["origin"], "sdk");
  EXPECT_EQ(out["getBig"]["length"], 3 * 1024 * 1024 + 17);
  EXPECT_EQ(out["getBig"]["sha256"], out["getBig"]["expectedSha256"]);
  EXPECT_EQ(out["range"]["contentRange"], "bytes 10-19/3145745");
  EXPECT_EQ(out["range"]["equal"], true);

  EXPECT_EQ(out["head"]["contentLength"], 3145745);
  EXPECT_EQ(out["head"]["etag"], out["putBig"]["expectedEtag"]);
  EXPECT_TRUE(out["head"]["lastModified"].is_string());

  EXPECT_EQ(out["list"]["keys"], json({"sdk/big.bin", "sdk/stream.bin", "sdk/text.txt"}));
  EXPECT_EQ(out["list"]["keyCount"], 3);
  EXPECT_EQ(out["list"]["isTruncated"], false);

  EXPECT_EQ(out["presigned"]["putStatus"], 200);
  EXPECT_EQ(out["presigned"]["getStatus"], 200);
  EXPECT_EQ(out["presigned"]["body"], "via presigned url");

  EXPECT_EQ(out["afterDelete"]["headError"]["status"], 404);
  EXPECT_EQ(out["afterDelete"]["getError"]["name"], "NoSuchKey");
}

// Copies, conditions, multipart listing and completion, refused headers: the same points
// the boto3 conformance cases cover, through the JavaScript SDK
// (tests/peers/s3_sdk_conformance.mjs).
TEST(S3ServerSdkTest, CopiesConditionsMultipartAndRefusalsWithTheJavaScriptSdk) {
  fs::path peers = testing::SourceDir() / "tests" / "peers";
  ASSERT_TRUE(fs::exists(peers / "node_modules" / "@aws-sdk" / "client-s3"))
      << "the SDK is not installed: run `npm ci` in " << peers.string();
  testing::TempDir dir;
  int port = testing::FreePort();
  std::string log = (dir.path() / "s3.log").string();
  testing::Process server(
      {testing::SlipwayBinary(), "--log-level", "debug", "run", "s3", "--listen",
       "127.0.0.1:" + std::to_string(port), "--data", (dir.path() / "data").string()},
      {{"S3_ACCESS_KEY_ID", "SDKKEY"}, {"S3_SECRET_ACCESS_KEY", "sdk-secret"}}, log);
  ASSERT_TRUE(testing::WaitForPort(port)) << testing::ReadFile(log);
  testing::CommandResult r =
      testing::RunCommand("cd '" + peers.string() + "' && node s3_sdk_conformance.mjs",
                          {{"S3_ENDPOINT", "http://127.0.0.1:" + std::to_string(port)},
                           {"S3_REGION", "us-east-1"},
                           {"S3_ACCESS_KEY_ID", "SDKKEY"},
                           {"S3_SECRET_ACCESS_KEY", "sdk-secret"},
                           {"S3_BUCKET", "sdk-conformance"},
                           {"NODE_NO_WARNINGS", "1"}});
  ASSERT_EQ(r.exit_code, 0) << r.output << "\nserver log:\n" << testing::ReadFile(log);
  json out = json::parse(
      r.output.substr(r.output.rfind('{', r.output.find("\"copy\"")), std::string::npos), nullptr,
      /*allow_exceptions=*/false);
  ASSERT_FALSE(out.is_discarded()) << r.output;

  EXPECT_EQ(out["copy"]["etag"], out["copy"]["expectedEtag"]);
  EXPECT_EQ(out["copy"]["body"], "copied by the JavaScript SDK");
  EXPECT_EQ(out["copy"]["contentType"], "text/x-js");
  EXPECT_EQ(out["copy"]["metadata"], json({{"who", "sdk"}}));
  EXPECT_EQ(out["replace"]["contentType"], "application/x-new");
  EXPECT_EQ(out["replace"]["metadata"], json({{"who", "replaced"}}));
  EXPECT_EQ(out["copyIfMatchWrong"], json({{"name", "PreconditionFailed"}, {"status", 412}}));
  EXPECT_EQ(out["copyOntoItself"], json({{"name", "InvalidRequest"}, {"status", 400}}));

  EXPECT_EQ(out["getIfNoneMatch"]["status"], 304) << out.dump(2);
  EXPECT_EQ(out["getIfMatchWrong"], json({{"name", "PreconditionFailed"}, {"status", 412}}));
  EXPECT_EQ(out["headIfModifiedSinceFuture"]["status"], 304);
  EXPECT_EQ(out["putIfNoneMatchExisting"], json({{"name", "PreconditionFailed"}, {"status", 412}}));
  EXPECT_TRUE(out["putIfNoneMatchNew"].is_null()) << out.dump(2);
  EXPECT_EQ(out["afterConditionalPut"], "copied by the JavaScript SDK");

  ASSERT_EQ(out["listParts"].size(), 2u) << out.dump(2);
  EXPECT_EQ(out["listParts"][0]["size"], 5 * 1024 * 1024);
  EXPECT_EQ(out["listParts"][1]["size"], 7);
  EXPECT_EQ(out["listUploads"], json::array({{{"key", "mp.bin"}, {"id", true}}}));
  EXPECT_EQ(out["complete"]["etag"], out["complete"]["againEtag"]);
  EXPECT_EQ(out["partNumber"], json({{"body", "the end"}, {"partsCount", 2}}));

  const json& mp = out["sha256Multipart"];
  EXPECT_EQ(mp["partSums"], mp["expectedPartSums"]) << out.dump(2);
  EXPECT_EQ(mp["complete"], mp["expected"]) << out.dump(2);
  EXPECT_EQ(mp["head"], mp["expected"]) << out.dump(2);
  EXPECT_EQ(mp["part2"], mp["expectedPartSums"][1]) << out.dump(2);

  EXPECT_EQ(out["sse"], json({{"name", "NotImplemented"}, {"status", 501}}));
  EXPECT_FALSE(out["sseStored"]);
  for (const auto& v : out["versions"]) EXPECT_EQ(v, "null");
  EXPECT_GE(out["versions"].size(), 5u);
}

}  // namespace
}  // namespace slipway::storage
