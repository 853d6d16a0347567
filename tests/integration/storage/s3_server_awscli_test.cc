// `slipway run s3` against the real AWS CLI, both the Debian v2 (/usr/bin/aws) and whatever v1
// is first on PATH: their payload signing differs (v2 signs payloads or sends aws-chunked with
// CRC trailers, v1 with a recent botocore sends checksum headers), so each must work.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "base/crypto.h"
#include "integration/storage/s3_process.h"
#include "storage/s3_client.h"
#include "storage/sigv4.h"
#include "support/test_support.h"

namespace slipway::storage {
namespace {

namespace fs = std::filesystem;
using testing::CommandResult;
using testing::FileSha256;
using testing::RunCommand;
using testing::TempDir;

constexpr char kRegion[] = "us-east-1";

// The AWS CLIs on this machine: Debian's v2 and the one on PATH, when that is another program.
std::vector<std::string> AwsClis() {
  std::vector<std::string> out;
  if (fs::exists("/usr/bin/aws")) out.push_back("/usr/bin/aws");
  CommandResult which = RunCommand("command -v aws");
  std::string path = which.output.substr(0, which.output.find('\n'));
  std::error_code ec;
  if (which.exit_code == 0 && !path.empty() &&
      fs::canonical(path, ec) != fs::canonical("/usr/bin/aws", ec)) {
    out.push_back(path);
  }
  return out;
}

class S3ServerAwsCliTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    // The host's AWS configuration must never leak in: both files live in the TempDir.
    std::ofstream(dir_.path() / "config") << "[default]\n"
                                             "region = us-east-1\n"
                                             "s3 =\n"
                                             "  addressing_style = path\n"
                                             "  signature_version = s3v4\n";
    std::ofstream(dir_.path() / "credentials") << "[default]\n";
    env_ = {{"AWS_ACCESS_KEY_ID", kAccessKey},
            {"AWS_SECRET_ACCESS_KEY", kSecretKey},
            {"AWS_DEFAULT_REGION", kRegion},
            {"AWS_CONFIG_FILE", (dir_.path() / "config").string()},
            {"AWS_SHARED_CREDENTIALS_FILE", (dir_.path() / "credentials").string()},
            {"AWS_EC2_METADATA_DISABLED", "true"},
            {"AWS_PAGER", ""}};
    server_ = std::make_unique<S3Process>(dir_.path());
    ASSERT_TRUE(server_->ready()) << server_->log();
  }

  CommandResult Aws(const std::string& args, const S3Process* server = nullptr) {
    const S3Process& s = server != nullptr ? *server : *server_;
    return RunCommand(GetParam() + " --endpoint-url " + s.endpoint() + " " + args, env_);
  }

  // Asserts a command worked, showing its output and the server's log when it did not.
  void Ok(const CommandResult& r, const std::string& what) {
    EXPECT_EQ(r.exit_code, 0) << what << ":\n" << r.output << "\nserver log:\n" << server_->log();
  }

  bool ObjectExists(const std::string& bucket, const std::string& key) {
    CommandResult r = Aws("s3api head-object --bucket " + bucket + " --key " + key);
    return r.exit_code == 0;
  }

  // A presigned URL made by slipway's own signer (the AWS CLI presigns GET only).
  std::string PresignPut(const std::string& path, std::chrono::seconds expires) {
    return Presign("PUT", server_->endpoint() + path, {kAccessKey, kSecretKey}, kRegion,
                   std::chrono::system_clock::now(), expires);
  }

  // Files being written by uploads still in flight, or abandoned ones.
  size_t TempFiles() {
    size_t n = 0;
    for (const auto& e : fs::directory_iterator(server_->data() / "tmp")) {
      (void)e;
      ++n;
    }
    return n;
  }

  TempDir dir_;
  std::map<std::string, std::string> env_;
  std::unique_ptr<S3Process> server_;
};

TEST_P(S3ServerAwsCliTest, CopiesSmallAndMultipartFilesUpAndDownByteForByte) {
  fs::path small = dir_.path() / "small.txt", big = dir_.path() / "big.bin";
  std::ofstream(small) << "hello from slipway\n";
  testing::WriteRandomFile(big, 64ull << 20, 7);

  Ok(Aws("s3 mb s3://bkt"), "mb");
  Ok(Aws("s3 cp " + small.string() + " s3://bkt/docs/small.txt"), "cp small up");
  Ok(Aws("s3 cp " + big.string() + " s3://bkt/blobs/big.bin"), "cp big up");

  CommandResult ls = Aws("s3 ls s3://bkt");
  Ok(ls, "ls bucket");
  EXPECT_NE(ls.output.find("PRE docs/"), std::string::npos) << ls.output;
  EXPECT_NE(ls.output.find("PRE blobs/"), std::string::npos) << ls.output;
  ls = Aws("s3 ls s3://bkt/blobs/");
  Ok(ls, "ls prefix");
  EXPECT_NE(ls.output.find("67108864 big.bin"), std::string::npos) << ls.output;
  EXPECT_EQ(ls.output.find("small.txt"), std::string::npos) << ls.output;
  CommandResult buckets = Aws("s3 ls");
  EXPECT_NE(buckets.output.find(" bkt"), std::string::npos) << buckets.output;

  // Above 8 MiB the CLI uploads in parts: the ETag says how many.
  CommandResult head = Aws("s3api head-object --bucket bkt --key blobs/big.bin");
  Ok(head, "head big");
  EXPECT_NE(head.output.find("-8\\\""), std::string::npos) << head.output;

  fs::path small_back = dir_.path() / "small.back", big_back = dir_.path() / "big.back";
  Ok(Aws("s3 cp s3://bkt/docs/small.txt " + small_back.string()), "cp small down");
  Ok(Aws("s3 cp s3://bkt/blobs/big.bin " + big_back.string()), "cp big down");
  EXPECT_EQ(FileSha256(small_back), FileSha256(small));
  EXPECT_EQ(FileSha256(big_back), FileSha256(big));

  Ok(Aws("s3 rm s3://bkt/docs/small.txt"), "rm");
  EXPECT_FALSE(ObjectExists("bkt", "docs/small.txt"));
  EXPECT_TRUE(ObjectExists("bkt", "blobs/big.bin"));
  CommandResult rb = Aws("s3 rb s3://bkt");
  EXPECT_NE(rb.exit_code, 0);
  EXPECT_NE(rb.output.find("BucketNotEmpty"), std::string::npos) << rb.output;
  Ok(Aws("s3 rm --recursive s3://bkt/"), "rm --recursive");
  Ok(Aws("s3 rb s3://bkt"), "rb");
  EXPECT_EQ(TempFiles(), 0u);
}

// Multipart checksums through s3api, as a user scripts them: an upload created with SHA-256,
// parts whose checksums the CLI computes, a completion listing them, and the composite
// checksum (SHA-256 of the parts' binary SHA-256s, "-2") on HEAD, per part, and in
// GetObjectAttributes. Then `s3 cp` of a large file up and down, whatever checksum the CLI
// asks for by default.
TEST_P(S3ServerAwsCliTest, MultipartChecksumsThroughS3apiAndCp) {
  Ok(Aws("s3 mb s3://sums"), "mb");
  fs::path p1 = dir_.path() / "p1", p2 = dir_.path() / "p2";
  testing::WriteRandomFile(p1, 5ull << 20, 11);
  testing::WriteRandomFile(p2, 1000, 12);
  auto json_of = [&](const std::string& args) {
    CommandResult r = Aws(args);
    EXPECT_EQ(r.exit_code, 0) << args << ":\n" << r.output << "\nserver log:\n" << server_->log();
    auto parsed = nlohmann::json::parse(r.output, nullptr, /*allow_exceptions=*/false);
    return parsed.is_discarded() ? nlohmann::json::object() : parsed;
  };
  nlohmann::json created =
      json_of("s3api create-multipart-upload --bucket sums --key k --checksum-algorithm SHA256");
  std::string id = created.value("UploadId", "");
  ASSERT_FALSE(id.empty()) << created.dump();
  nlohmann::json parts = nlohmann::json::array();
  std::string raw_sums;
  std::vector<std::string> sums;
  for (int n = 1; n <= 2; ++n) {
    fs::path part = n == 1 ? p1 : p2;
    nlohmann::json up = json_of("s3api upload-part --bucket sums --key k --upload-id " + id +
                                " --part-number " + std::to_string(n) + " --body " +
                                part.string() + " --checksum-algorithm SHA256");
    std::ifstream in(part, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), {});
    Sha256Digest digest = Sha256(bytes);
    std::string raw(reinterpret_cast<const char*>(digest.data()), digest.size());
    raw_sums += raw;
    sums.push_back(Base64Encode(raw));
    EXPECT_EQ(up.value("ChecksumSHA256", ""), sums.back()) << "part " << n << ": " << up.dump();
    parts.push_back({{"PartNumber", n},
                     {"ETag", up.value("ETag", "")},
                     {"ChecksumSHA256", up.value("ChecksumSHA256", "")}});
  }
  nlohmann::json listed = json_of("s3api list-parts --bucket sums --key k --upload-id " + id);
  EXPECT_EQ(listed.value("ChecksumAlgorithm", ""), "SHA256") << listed.dump();
  ASSERT_EQ(listed["Parts"].size(), 2u) << listed.dump();
  for (int n = 0; n < 2; ++n) EXPECT_EQ(listed["Parts"][n].value("ChecksumSHA256", ""), sums[n]);

  Sha256Digest whole = Sha256(raw_sums);
  std::string composite =
      Base64Encode(std::string_view(reinterpret_cast<const char*>(whole.data()), whole.size()));
  std::ofstream(dir_.path() / "parts.json") << nlohmann::json{{"Parts", parts}}.dump();
  nlohmann::json done =
      json_of("s3api complete-multipart-upload --bucket sums --key k --upload-id " + id +
              " --multipart-upload file://" + (dir_.path() / "parts.json").string());
  EXPECT_EQ(done.value("ChecksumSHA256", ""), composite + "-2") << done.dump();

  nlohmann::json head = json_of("s3api head-object --bucket sums --key k --checksum-mode ENABLED");
  EXPECT_EQ(head.value("ChecksumSHA256", ""), composite + "-2") << head.dump();
  head = json_of("s3api head-object --bucket sums --key k --part-number 2 --checksum-mode ENABLED");
  EXPECT_EQ(head.value("ChecksumSHA256", ""), sums[1]) << head.dump();
  nlohmann::json attrs = json_of(
      "s3api get-object-attributes --bucket sums --key k --object-attributes Checksum "
      "ObjectParts");
  EXPECT_EQ(attrs["Checksum"].value("ChecksumSHA256", ""), composite) << attrs.dump();
  ASSERT_EQ(attrs["ObjectParts"]["Parts"].size(), 2u) << attrs.dump();
  EXPECT_EQ(attrs["ObjectParts"]["Parts"][1].value("ChecksumSHA256", ""), sums[1]);

  // A completion that leaves out the part checksums of a SHA256 upload is refused.
  nlohmann::json other =
      json_of("s3api create-multipart-upload --bucket sums --key j --checksum-algorithm SHA256");
  std::string other_id = other.value("UploadId", "");
  nlohmann::json up = json_of("s3api upload-part --bucket sums --key j --upload-id " + other_id +
                              " --part-number 1 --body " + p2.string() +
                              " --checksum-algorithm SHA256");
  std::ofstream(dir_.path() / "bare.json")
      << nlohmann::json{{"Parts", {{{"PartNumber", 1}, {"ETag", up.value("ETag", "")}}}}}.dump();
  CommandResult bare = Aws("s3api complete-multipart-upload --bucket sums --key j --upload-id " +
                           other_id + " --multipart-upload file://" +
                           (dir_.path() / "bare.json").string());
  EXPECT_NE(bare.exit_code, 0);
  EXPECT_NE(bare.output.find("InvalidRequest"), std::string::npos) << bare.output;
  EXPECT_FALSE(ObjectExists("sums", "j"));

  // A large file through `s3 cp`, with the CLI's default checksums, and back.
  fs::path big = dir_.path() / "big.bin", back = dir_.path() / "big.back";
  testing::WriteRandomFile(big, 40ull << 20, 13);
  Ok(Aws("s3 cp " + big.string() + " s3://sums/big.bin"), "cp big up");
  Ok(Aws("s3 cp s3://sums/big.bin " + back.string()), "cp big down");
  EXPECT_EQ(FileSha256(back), FileSha256(big));
  head = json_of("s3api head-object --bucket sums --key big.bin --checksum-mode ENABLED");
  EXPECT_NE(head.value("ETag", "").find("-5"), std::string::npos) << head.dump();
  Ok(Aws("s3api get-object --bucket sums --key big.bin --checksum-mode ENABLED " + back.string()),
     "get-object with checksum mode");
  EXPECT_EQ(FileSha256(back), FileSha256(big));
  EXPECT_EQ(TempFiles(), 0u);
}

// Bucket-to-bucket cp, mv and sync are server-side copies: CopyObject, and above the CLI's
// 8 MiB threshold a multipart upload of UploadPartCopy ranges.
TEST_P(S3ServerAwsCliTest, ServerSideCopiesMovesAndSyncsKeepEveryByte) {
  fs::path small = dir_.path() / "small.txt", big = dir_.path() / "big.bin";
  std::ofstream(small) << "copied on the server\n";
  testing::WriteRandomFile(big, 20ull << 20, 11);
  Ok(Aws("s3 mb s3://src"), "mb src");
  Ok(Aws("s3 mb s3://dst"), "mb dst");
  Ok(Aws("s3 cp " + small.string() + " s3://src/a/small.txt --content-type text/x-small"),
     "cp small up");
  Ok(Aws("s3 cp " + big.string() + " s3://src/a/big.bin"), "cp big up");

  Ok(Aws("s3 cp s3://src/a/big.bin s3://dst/big-copy.bin"), "cp big server-side");
  CommandResult head = Aws("s3api head-object --bucket dst --key big-copy.bin");
  Ok(head, "head big copy");
  EXPECT_NE(head.output.find("\"ContentLength\": 20971520"), std::string::npos) << head.output;
  EXPECT_NE(head.output.find("-3\\\""), std::string::npos)
      << "a 20 MiB copy is made of three UploadPartCopy parts: " << head.output;
  // The parts were copied on the server: their PUTs carried no body.
  std::string log = server_->log();
  size_t part = log.find("PUT /dst/big-copy.bin?partNumber=1");
  if (part == std::string::npos) part = log.find("PUT /dst/big-copy.bin?uploadId=");
  ASSERT_NE(part, std::string::npos) << log;
  std::string line = log.substr(part, log.find('\n', part) - part);
  EXPECT_NE(line.find("(0 body bytes in"), std::string::npos) << line;

  Ok(Aws("s3 sync s3://src s3://dst/synced"), "sync bucket to bucket");
  Ok(Aws("s3 mv s3://dst/synced/a/small.txt s3://dst/moved.txt"), "mv");
  EXPECT_FALSE(ObjectExists("dst", "synced/a/small.txt"));
  head = Aws("s3api head-object --bucket dst --key moved.txt");
  EXPECT_NE(head.output.find("text/x-small"), std::string::npos) << head.output;

  fs::path back = dir_.path() / "back";
  Ok(Aws("s3 cp s3://dst/big-copy.bin " + back.string()), "cp big copy down");
  EXPECT_EQ(FileSha256(back), FileSha256(big));
  Ok(Aws("s3 cp s3://dst/synced/a/big.bin " + back.string()), "cp synced down");
  EXPECT_EQ(FileSha256(back), FileSha256(big));
  Ok(Aws("s3 cp s3://dst/moved.txt " + back.string()), "cp moved down");
  EXPECT_EQ(FileSha256(back), FileSha256(small));

  // A conditional GET of what the CLI has is not modified.
  CommandResult etag =
      Aws("s3api head-object --bucket dst --key moved.txt --query ETag --output text");
  std::string tag = etag.output.substr(0, etag.output.find('\n'));
  CommandResult cond = Aws("s3api get-object --bucket dst --key moved.txt --if-none-match '" + tag +
                           "' " + back.string());
  EXPECT_NE(cond.exit_code, 0);
  EXPECT_NE(cond.output.find("304"), std::string::npos) << cond.output;
  // rb --force empties the bucket first.
  Ok(Aws("s3 rb --force s3://dst"), "rb --force");
  EXPECT_EQ(TempFiles(), 0u);
}

TEST_P(S3ServerAwsCliTest, PresignedGetWorksWithCurlAndExpires) {
  fs::path file = dir_.path() / "f.txt";
  std::ofstream(file) << "presigned body";
  Ok(Aws("s3 mb s3://bkt"), "mb");
  Ok(Aws("s3 cp " + file.string() + " s3://bkt/a%20b/f.txt"), "cp");

  CommandResult url = Aws("s3 presign s3://bkt/a%20b/f.txt");
  Ok(url, "presign");
  std::string u = url.output.substr(0, url.output.find('\n'));
  EXPECT_NE(u.find("X-Amz-Signature="), std::string::npos) << u;
  CommandResult got = RunCommand("curl -sS '" + u + "'");
  EXPECT_EQ(got.output, "presigned body");

  CommandResult short_url = Aws("s3 presign --expires-in 1 s3://bkt/a%20b/f.txt");
  Ok(short_url, "presign 1s");
  std::this_thread::sleep_for(std::chrono::seconds(2));
  std::string su = short_url.output.substr(0, short_url.output.find('\n'));
  CommandResult expired = RunCommand("curl -sS -w '\\n%{http_code}' '" + su + "'");
  EXPECT_NE(expired.output.find("\n403"), std::string::npos) << expired.output;
  EXPECT_NE(expired.output.find("<Code>AccessDenied</Code>"), std::string::npos);
  EXPECT_NE(expired.output.find("Request has expired"), std::string::npos) << expired.output;
}

TEST_P(S3ServerAwsCliTest, TamperedPresignedPutIsRefusedAndStoresNothing) {
  Ok(Aws("s3 mb s3://bkt"), "mb");
  fs::path file = dir_.path() / "body";
  testing::WriteRandomFile(file, 100000);

  std::string url = PresignPut("/bkt/tampered", std::chrono::seconds(300));
  size_t sig = url.find("X-Amz-Signature=");
  ASSERT_NE(sig, std::string::npos);
  std::string bad = url;
  char& c = bad[sig + 16];
  c = c == '0' ? '1' : '0';
  CommandResult r =
      RunCommand("curl -sS -w '\\n%{http_code}' -T " + file.string() + " '" + bad + "'");
  EXPECT_NE(r.output.find("\n403"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("<Code>SignatureDoesNotMatch</Code>"), std::string::npos) << r.output;
  EXPECT_FALSE(ObjectExists("bkt", "tampered"));

  // The same URL untouched works: the refusal was the signature's doing.
  std::string good = PresignPut("/bkt/tampered", std::chrono::seconds(300));
  r = RunCommand("curl -sS -f -T " + file.string() + " '" + good + "'");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(ObjectExists("bkt", "tampered"));
}

// slipway's own presigned URLs, used by plain curl with no credentials: the PUT stores the
// bytes, the GET returns them whole, and an expired PUT is refused and stores nothing.
TEST_P(S3ServerAwsCliTest, OwnPresignedPutAndGetWorkWithCurlAndAnExpiredPutStoresNothing) {
  Ok(Aws("s3 mb s3://bkt"), "mb");
  fs::path file = dir_.path() / "context.tar.gz";
  testing::WriteRandomFile(file, 3 << 20, 11);
  std::string put = PresignPut("/bkt/contexts/p/ctx.tar.gz", std::chrono::seconds(900));
  CommandResult r = RunCommand("curl -sS -f -T " + file.string() + " '" + put + "'");
  ASSERT_EQ(r.exit_code, 0) << r.output;

  std::string get =
      Presign("GET", server_->endpoint() + "/bkt/contexts/p/ctx.tar.gz", {kAccessKey, kSecretKey},
              kRegion, std::chrono::system_clock::now(), std::chrono::seconds(900));
  fs::path fetched = dir_.path() / "fetched";
  r = RunCommand("curl -sS -f -o " + fetched.string() + " '" + get + "'");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(testing::FileSha256(fetched), testing::FileSha256(file));

  // Signed an hour ago for fifteen minutes: expired.
  std::string stale = Presign(
      "PUT", server_->endpoint() + "/bkt/contexts/p/late.tar.gz", {kAccessKey, kSecretKey}, kRegion,
      std::chrono::system_clock::now() - std::chrono::hours(1), std::chrono::seconds(900));
  r = RunCommand("curl -sS -w '\\n%{http_code}' -T " + file.string() + " '" + stale + "'");
  EXPECT_NE(r.output.find("\n403"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("Request has expired"), std::string::npos) << r.output;
  EXPECT_FALSE(ObjectExists("bkt", "contexts/p/late.tar.gz"));
}

// The presigned PUT ctrl hands out for a context names the context's SHA-256 (S3Client::
// PresignContentPut): other bytes of the same size sent to it are refused whatever the uploader
// does with the header, nothing is left behind, and the right bytes are stored.
TEST_P(S3ServerAwsCliTest, ContentBoundPresignedPutStoresOnlyTheBytesItNames) {
  Ok(Aws("s3 mb s3://bkt"), "mb");
  fs::path right = dir_.path() / "context.tar.gz", other = dir_.path() / "other.tar.gz";
  testing::WriteRandomFile(right, 3 << 20, 21);
  testing::WriteRandomFile(other, 3 << 20, 22);  // same size: only the hash tells them apart
  S3ClientOptions opts;
  opts.endpoint = server_->endpoint();
  opts.credentials = {kAccessKey, kSecretKey};
  S3Client client(opts);
  const std::string key = "contexts/p/" + FileSha256(right) + ".tar.gz";
  auto put = client.PresignContentPut("bkt", key, std::chrono::seconds(900), FileSha256(right),
                                      fs::file_size(right));
  ASSERT_EQ(put.headers.size(), 1u);
  const std::string header = "x-amz-checksum-sha256: " + put.headers.begin()->second;
  auto curl_put = [&](const fs::path& file, const std::string& extra) {
    return RunCommand("curl -sS -w '\n%{http_code}' " + extra + " -T " + file.string() + " '" +
                      put.url + "'");
  };

  // Other bytes with the signed header: the body's SHA-256 is not the one signed.
  CommandResult r = curl_put(other, "-H '" + header + "'");
  EXPECT_TRUE(r.output.ends_with("\n400")) << r.output;
  EXPECT_NE(r.output.find("<Code>BadDigest</Code>"), std::string::npos) << r.output;
  EXPECT_FALSE(ObjectExists("bkt", key));
  EXPECT_EQ(TempFiles(), 0u);
  // Dropping the header, or naming the other bytes' own hash, breaks the signature instead.
  r = curl_put(other, "");
  EXPECT_TRUE(r.output.ends_with("\n403")) << r.output;
  EXPECT_NE(r.output.find("<Code>SignatureDoesNotMatch</Code>"), std::string::npos) << r.output;
  std::string other_sha256;
  {
    std::ifstream in(other, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), {});
    Sha256Digest d = Sha256(bytes);
    other_sha256 = Base64Encode(std::string_view(reinterpret_cast<const char*>(d.data()), d.size()));
  }
  r = curl_put(other, "-H 'x-amz-checksum-sha256: " + other_sha256 + "'");
  EXPECT_TRUE(r.output.ends_with("\n403")) << r.output;
  EXPECT_FALSE(ObjectExists("bkt", key));
  EXPECT_EQ(TempFiles(), 0u);

  // The bytes it names are stored, and read back whole with their checksum.
  r = curl_put(right, "-H '" + header + "'");
  EXPECT_TRUE(r.output.ends_with("\n200")) << r.output;
  fs::path fetched = dir_.path() / "fetched";
  Ok(Aws("s3 cp s3://bkt/" + key + " " + fetched.string()), "cp down");
  EXPECT_EQ(FileSha256(fetched), FileSha256(right));
  CommandResult head =
      Aws("s3api head-object --checksum-mode ENABLED --bucket bkt --key " + key);
  Ok(head, "head-object");
  EXPECT_NE(head.output.find(put.headers.begin()->second), std::string::npos) << head.output;
}

TEST_P(S3ServerAwsCliTest, ObjectsOverTheLimitAreRefusedWithoutBeingStored) {
  S3Process limited(dir_.path() / "limited", "1MiB");
  ASSERT_TRUE(limited.ready()) << limited.log();
  Ok(Aws("s3 mb s3://bkt", &limited), "mb");
  fs::path big = dir_.path() / "two-mib.bin";
  testing::WriteRandomFile(big, 2 << 20);

  CommandResult r = Aws("s3 cp " + big.string() + " s3://bkt/big", &limited);
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("EntityTooLarge"), std::string::npos) << r.output;
  r = Aws("s3api put-object --bucket bkt --key big --body " + big.string(), &limited);
  EXPECT_NE(r.output.find("EntityTooLarge"), std::string::npos) << r.output;
  EXPECT_NE(Aws("s3api head-object --bucket bkt --key big", &limited).exit_code, 0);

  // Refused from Content-Length alone: curl waits for 100-continue, which never comes.
  std::string url = Presign("PUT", limited.endpoint() + "/bkt/big", {kAccessKey, kSecretKey},
                            kRegion, std::chrono::system_clock::now(), std::chrono::seconds(60));
  r = RunCommand("curl -sS -w '\\n%{http_code} %{size_upload}' -T " + big.string() + " '" + url +
                 "'");
  EXPECT_NE(r.output.find("<Code>EntityTooLarge</Code>"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("\n400 0"), std::string::npos) << r.output;

  fs::path small = dir_.path() / "small.bin";
  testing::WriteRandomFile(small, 1 << 20);
  Ok(Aws("s3 cp " + small.string() + " s3://bkt/fits", &limited), "cp at the limit");
}

// Sends a request head and part of its body on a raw socket, then hangs up.
void SendAndHangUp(int port, const std::string& head, size_t body_bytes) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  std::string data = head + std::string(body_bytes, 'x');
  ASSERT_EQ(send(fd, data.data(), data.size(), MSG_NOSIGNAL), static_cast<ssize_t>(data.size()));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the server is mid-body now
  close(fd);
}

TEST_P(S3ServerAwsCliTest, ConnectionDroppedMidUploadLeavesNoObject) {
  Ok(Aws("s3 mb s3://bkt"), "mb");
  fs::path kept = dir_.path() / "kept";
  testing::WriteRandomFile(kept, 1000, 3);
  Ok(Aws("s3 cp " + kept.string() + " s3://bkt/kept"), "cp");
  for (const std::string key : {"dropped", "kept"}) {
    std::string url = PresignPut("/bkt/" + key, std::chrono::seconds(300));
    std::string target = url.substr(url.find("/bkt/"));
    SendAndHangUp(server_->port(),
                  "PUT " + target + " HTTP/1.1\r\nHost: 127.0.0.1:" +
                      std::to_string(server_->port()) + "\r\nContent-Length: 10000000\r\n\r\n",
                  3 << 20);
  }
  // The server notices the hang-up, drops its temp files, and stores nothing.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (TempFiles() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(TempFiles(), 0u) << server_->log();
  EXPECT_FALSE(ObjectExists("bkt", "dropped"));
  fs::path back = dir_.path() / "kept.back";
  Ok(Aws("s3 cp s3://bkt/kept " + back.string()), "the old object is intact");
  EXPECT_EQ(FileSha256(back), FileSha256(kept));
}

// Runs curl with a request signed by slipway's signer (header auth), the body from body_file,
// declaring payload_hash; returns the body and, on the last line, the status.
CommandResult SignedCurl(const S3Process& s, const std::string& method, const std::string& path,
                         const fs::path& body_file, const std::string& payload_hash,
                         net::Headers extra = {}) {
  std::string url = s.endpoint() + path;
  SignRequest(method, url, extra, payload_hash, {kAccessKey, kSecretKey}, kRegion,
              std::chrono::system_clock::now());
  std::string cmd = "curl -sS -w '\\n%{http_code}' -X " + method;
  for (const auto& [name, value] : extra) cmd += " -H '" + name + ": " + value + "'";
  cmd += " -H 'Content-Type:' --data-binary @" + body_file.string() + " '" + url + "'";
  return RunCommand(cmd);
}

TEST(S3ServerPayloadTest, BodiesThatDoNotMatchTheirDigestsAreNotStored) {
  TempDir dir;
  S3Process s(dir.path());
  ASSERT_TRUE(s.ready()) << s.log();
  fs::path body = dir.path() / "body", other = dir.path() / "other";
  testing::WriteRandomFile(body, 200000, 1);
  testing::WriteRandomFile(other, 200000, 2);
  fs::path empty = dir.path() / "empty";
  std::ofstream{empty};
  CommandResult r = SignedCurl(s, "PUT", "/bkt", empty, std::string(kEmptySha256));
  ASSERT_NE(r.output.find("\n200"), std::string::npos) << r.output;

  auto exists = [&](const std::string& key) {
    CommandResult head = SignedCurl(s, "GET", "/bkt/" + key, empty, std::string(kEmptySha256));
    return head.output.ends_with("\n200");
  };

  // Signed for one body, sent another.
  r = SignedCurl(s, "PUT", "/bkt/sha", other, FileSha256(body));
  EXPECT_NE(r.output.find("<Code>XAmzContentSHA256Mismatch</Code>"), std::string::npos) << r.output;
  EXPECT_TRUE(r.output.ends_with("\n400")) << r.output;
  EXPECT_FALSE(exists("sha"));
  r = SignedCurl(s, "PUT", "/bkt/sha", body, FileSha256(body));
  EXPECT_TRUE(r.output.ends_with("\n200")) << r.output;
  EXPECT_TRUE(exists("sha"));

  // A Content-MD5 of other bytes.
  r = SignedCurl(s, "PUT", "/bkt/md5", body, std::string(kUnsignedPayload),
                 {{"Content-MD5", "1B2M2Y8AsgTpgAmY7PhCfg=="}});
  EXPECT_NE(r.output.find("<Code>BadDigest</Code>"), std::string::npos) << r.output;
  EXPECT_FALSE(exists("md5"));

  // A whole-body checksum header of other bytes.
  r = SignedCurl(s, "PUT", "/bkt/crc", body, std::string(kUnsignedPayload),
                 {{"x-amz-checksum-crc32", "AAAAAA=="}});
  EXPECT_NE(r.output.find("<Code>BadDigest</Code>"), std::string::npos) << r.output;
  EXPECT_FALSE(exists("crc"));

  // Keys that could climb out of a directory are refused.
  r = SignedCurl(s, "PUT", "/bkt/a/%2E%2E/%2E%2E/escape", body, std::string(kUnsignedPayload));
  EXPECT_NE(r.output.find("<Code>InvalidArgument</Code>"), std::string::npos) << r.output;

  EXPECT_TRUE(fs::is_empty(s.data() / "tmp"));
}

INSTANTIATE_TEST_SUITE_P(S3Server, S3ServerAwsCliTest, ::testing::ValuesIn(AwsClis()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param == "/usr/bin/aws" ? std::string("DebianV2")
                                                               : std::string("PathAws");
                         });

// A machine without any AWS CLI must not pass these tests by running none of them.
TEST(S3ServerAwsCliPresence, AnAwsCliIsInstalled) {
  EXPECT_FALSE(AwsClis().empty()) << "install the AWS CLI (apt-get install awscli)";
}

}  // namespace
}  // namespace slipway::storage
