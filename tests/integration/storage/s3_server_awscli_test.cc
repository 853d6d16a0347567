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

#include "storage/sigv4.h"
#include "support/test_support.h"

namespace slipway::storage {
namespace {

namespace fs = std::filesystem;
using testing::CommandResult;
using testing::FileSha256;
using testing::RunCommand;
using testing::TempDir;

constexpr char kAccessKey[] = "SLIPWAYTESTKEY";
constexpr char kSecretKey[] = "slipway-test-secret-0123456789";
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

// One object store process on a free port with its own data directory.
class S3Process {
 public:
  explicit S3Process(const fs::path& root, std::string max_object_size = "") {
    fs::create_directories(root);
    data_ = root / "data";
    port_ = testing::FreePort();
    std::vector<std::string> argv = {testing::SlipwayBinary(),
                                     "--log-level",
                                     "debug",
                                     "run",
                                     "s3",
                                     "--listen",
                                     "127.0.0.1:" + std::to_string(port_),
                                     "--data",
                                     data_.string()};
    if (!max_object_size.empty()) {
      argv.push_back("--max-object-size");
      argv.push_back(max_object_size);
    }
    log_ = (root / "s3.log").string();
    process_ = std::make_unique<testing::Process>(
        argv,
        std::map<std::string, std::string>{{"S3_ACCESS_KEY_ID", kAccessKey},
                                           {"S3_SECRET_ACCESS_KEY", kSecretKey}},
        log_);
    ready_ = testing::WaitForPort(port_);
  }
  bool ready() const { return ready_; }
  int port() const { return port_; }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  const fs::path& data() const { return data_; }
  std::string log() const { return testing::ReadFile(log_); }

 private:
  fs::path data_;
  std::string log_;
  int port_ = 0;
  bool ready_ = false;
  std::unique_ptr<testing::Process> process_;
};

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

  std::string get = Presign("GET", server_->endpoint() + "/bkt/contexts/p/ctx.tar.gz",
                            {kAccessKey, kSecretKey}, kRegion, std::chrono::system_clock::now(),
                            std::chrono::seconds(900));
  fs::path fetched = dir_.path() / "fetched";
  r = RunCommand("curl -sS -f -o " + fetched.string() + " '" + get + "'");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(testing::FileSha256(fetched), testing::FileSha256(file));

  // Signed an hour ago for fifteen minutes: expired.
  std::string stale = Presign("PUT", server_->endpoint() + "/bkt/contexts/p/late.tar.gz",
                              {kAccessKey, kSecretKey}, kRegion,
                              std::chrono::system_clock::now() - std::chrono::hours(1),
                              std::chrono::seconds(900));
  r = RunCommand("curl -sS -w '\\n%{http_code}' -T " + file.string() + " '" + stale + "'");
  EXPECT_NE(r.output.find("\n403"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("Request has expired"), std::string::npos) << r.output;
  EXPECT_FALSE(ObjectExists("bkt", "contexts/p/late.tar.gz"));
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
