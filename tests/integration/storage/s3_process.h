// One `slipway run s3` process on a free loopback port with its own data directory, for the
// tests that drive real S3 clients against it.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "support/test_support.h"

namespace slipway::storage {

inline constexpr char kAccessKey[] = "SLIPWAYTESTKEY";
inline constexpr char kSecretKey[] = "slipway-test-secret-0123456789";

class S3Process {
 public:
  // extra_args go after `run s3` (e.g. --no-sigv2); an empty max_object_size keeps the default.
  explicit S3Process(const std::filesystem::path& root, std::string max_object_size = "",
                     std::vector<std::string> extra_args = {}) {
    std::filesystem::create_directories(root);
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
    argv.insert(argv.end(), extra_args.begin(), extra_args.end());
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
  const std::filesystem::path& data() const { return data_; }
  std::string log() const { return testing::ReadFile(log_); }
  int pid() const { return process_->pid(); }

 private:
  std::filesystem::path data_;
  std::string log_;
  int port_ = 0;
  bool ready_ = false;
  std::unique_ptr<testing::Process> process_;
};

}  // namespace slipway::storage
