// S3 conformance of `slipway run s3` (issue 13), through boto3: each case of
// s3_conformance.py runs once with Debian's python3-boto3 (1.26, which presigns with SigV2)
// and once with a current boto3 from PyPI (scripts/s3-test-venv.sh), against a real server on
// loopback. A missing interpreter or boto3 fails the test: nothing is skipped.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "integration/storage/s3_process.h"
#include "support/test_support.h"

namespace slipway::storage {
namespace {

namespace fs = std::filesystem;
using testing::CommandResult;
using testing::RunCommand;

struct Boto3 {
  std::string name;    // for the test's name
  std::string python;  // the interpreter whose boto3 is used
};

std::string VenvPython() {
  if (const char* v = std::getenv("SLIPWAY_BOTO3_VENV")) return std::string(v) + "/bin/python";
  std::string cache =
      std::getenv("XDG_CACHE_HOME") != nullptr
          ? std::getenv("XDG_CACHE_HOME")
          : std::string(std::getenv("HOME") ? std::getenv("HOME") : "/root") + "/.cache";
  return cache + "/slipway/boto3-venv/bin/python";
}

std::vector<Boto3> Boto3s() {
  return {{"DebianBoto3", "/usr/bin/python3"}, {"PyPIBoto3", VenvPython()}};
}

// Every case of the script, in the order of the points; the ListsTheSameCases test
// keeps this list and the script's in step.
const std::vector<std::string>& Cases() {
  static const std::vector<std::string> kCases = {
      "copy_same_and_other_bucket",
      "copy_metadata_replace",
      "copy_onto_itself",
      "copy_zero_and_16_mib",
      "copy_conditions",
      "copy_missing_source",
      "upload_part_copy",
      "get_and_head_conditions",
      "put_if_none_match_and_if_match",
      "put_if_none_match_concurrent",
      "delete_conditions",
      "delete_objects_conditions",
      "list_parts_paginated",
      "list_multipart_uploads_paginated",
      "part_uploaded_again_last_wins",
      "get_and_head_part_number",
      "complete_sent_again",
      "complete_conditions",
      "sigv2_presigned_urls_with_curl",
      "sigv2_header_auth",
      "sigv2_dates",
      "sigv2_turned_off",
      "unimplemented_headers_refused",
      "refused_operations_name_themselves",
      "versions_and_versioning",
      "acl_owner_full_control",
      "object_tagging",
      "flexible_checksums_stored_and_returned",
      "multipart_checksums_composite",
      "multipart_checksums_full_object",
      "multipart_default_checksums",
      "stored_headers_returned",
      "aws_chunked_not_stored_as_encoding",
      "content_md5_errors",
      "auth_errors",
      "listing_owner_tokens_and_encoding",
      "list_buckets_paginated",
      "create_bucket_already_owned",
      "bucket_tagging",
      "object_attributes",
      "non_ascii_metadata_byte_for_byte",
  };
  return kCases;
}

std::string Script() {
  return (testing::SourceDir() / "tests" / "integration" / "storage" / "s3_conformance.py")
      .string();
}

// Runs one case of the script with a python against a server; the output says what differed.
CommandResult RunCase(const std::string& python, const std::string& name, const S3Process& s3,
                      const S3Process* no_sigv2 = nullptr,
                      std::map<std::string, std::string> env = {}) {
  env["S3_ENDPOINT"] = s3.endpoint();
  env["S3_ACCESS_KEY_ID"] = kAccessKey;
  env["S3_SECRET_ACCESS_KEY"] = kSecretKey;
  env["AWS_CONFIG_FILE"] = "/dev/null";
  env["AWS_SHARED_CREDENTIALS_FILE"] = "/dev/null";
  env["AWS_EC2_METADATA_DISABLED"] = "true";
  if (no_sigv2 != nullptr) env["S3_ENDPOINT_NO_SIGV2"] = no_sigv2->endpoint();
  return RunCommand("'" + python + "' '" + Script() + "' " + name + " 2>&1", env);
}

void ExpectBoto3(const std::string& python) {
  ASSERT_TRUE(fs::exists(python)) << python << " is missing: run scripts/setup.sh";
  CommandResult r = RunCommand("'" + python + "' -c 'import boto3; print(boto3.__version__)'");
  ASSERT_EQ(r.exit_code, 0) << python << " has no boto3 (run scripts/setup.sh):\n" << r.output;
}

class S3ConformanceTest : public ::testing::TestWithParam<std::tuple<Boto3, std::string>> {
 protected:
  void SetUp() override {
    server_ = std::make_unique<S3Process>(dir_.path() / "s3");
    no_sigv2_ = std::make_unique<S3Process>(dir_.path() / "s3-no-sigv2", "",
                                            std::vector<std::string>{"--no-sigv2"});
    ASSERT_TRUE(server_->ready()) << server_->log();
    ASSERT_TRUE(no_sigv2_->ready()) << no_sigv2_->log();
  }

  testing::TempDir dir_;
  std::unique_ptr<S3Process> server_;
  std::unique_ptr<S3Process> no_sigv2_;
};

TEST_P(S3ConformanceTest, Holds) {
  const auto& [boto3, name] = GetParam();
  ExpectBoto3(boto3.python);
  CommandResult r = RunCase(boto3.python, name, *server_, no_sigv2_.get());
  EXPECT_EQ(r.exit_code, 0) << r.output << "\nserver log (tail):\n"
                            << server_->log().substr(
                                   server_->log().size() > 6000 ? server_->log().size() - 6000 : 0);
  EXPECT_NE(r.output.find("\nok"), std::string::npos) << r.output;
  // No refused or completed write leaves a temp file behind.
  size_t temp_files = 0;
  for (const auto& e : fs::directory_iterator(server_->data() / "tmp")) {
    (void)e;
    ++temp_files;
  }
  EXPECT_EQ(temp_files, 0u);
}

INSTANTIATE_TEST_SUITE_P(S3, S3ConformanceTest,
                         ::testing::Combine(::testing::ValuesIn(Boto3s()),
                                            ::testing::ValuesIn(Cases())),
                         [](const ::testing::TestParamInfo<S3ConformanceTest::ParamType>& info) {
                           return std::get<0>(info.param).name + "_" + std::get<1>(info.param);
                         });

TEST(S3ConformanceCases, TheScriptListsExactlyTheCasesRunHere) {
  CommandResult r = RunCommand("/usr/bin/python3 '" + Script() + "' --list");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::vector<std::string> listed;
  std::istringstream in(r.output);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) listed.push_back(line);
  }
  EXPECT_EQ(listed, Cases());
}

// Peak resident memory of a process (VmHWM), in bytes.
uint64_t PeakRss(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("VmHWM:")) return std::stoull(line.substr(6)) * 1024;
  }
  return 0;
}

// A 1 GiB multipart upload (16 parts of 64 MiB, four at a time), a 1 GiB CopyObject of it and
// a 1 GiB UploadPartCopy: the server streams all of them, so its peak memory stays far below
// the object's size.
TEST(S3MemoryTest, OneGibMultipartCopyAndPartCopyKeepServerMemoryFlat) {
  std::string python = VenvPython();
  ExpectBoto3(python);
  testing::TempDir dir;
  S3Process s3(dir.path() / "s3");
  ASSERT_TRUE(s3.ready()) << s3.log();
  uint64_t before = PeakRss(s3.pid());
  ASSERT_GT(before, 0u);
  CommandResult r = RunCase(python, "big_copy_and_multipart", s3);
  ASSERT_EQ(r.exit_code, 0) << r.output << "\n" << s3.log().substr(0, 6000);
  uint64_t after = PeakRss(s3.pid());
  std::cout << "object store peak RSS: " << before / (1 << 20) << " MiB at start, "
            << after / (1 << 20) << " MiB after 1 GiB multipart, copy and part copy\n";
  EXPECT_LT(after, before + (96ull << 20)) << "the server's peak memory grew with the object";
}

}  // namespace
}  // namespace slipway::storage
