// A docker-registry of its own on a free loopback port that wants a username and password
// (htpasswd, bcrypt): for pushes and pulls that must carry credentials.
#pragma once

#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>

#include "support/test_support.h"

namespace slipway::testing {

class AuthRegistry {
 public:
  AuthRegistry(const std::string& user = "builder", const std::string& password = "s3cret-pw") {
    port_ = FreePort();
    auto pw = RunCommand("htpasswd -Bbn '" + user + "' '" + password + "' > " +
                         (dir_.path() / "htpasswd").string());
    if (pw.exit_code != 0) throw std::runtime_error("htpasswd: " + pw.output);
    std::ofstream(dir_.path() / "config.yml")
        << "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: "
        << (dir_.path() / "data").string()
        << "\n  delete:\n    enabled: true\nauth:\n  htpasswd:\n    realm: slipway-test\n"
        << "    path: " << (dir_.path() / "htpasswd").string()
        << "\nhttp:\n  addr: 127.0.0.1:" << port_ << "\n";
    process_ = std::make_unique<Process>(
        std::vector<std::string>{"/usr/bin/docker-registry", "serve",
                                 (dir_.path() / "config.yml").string()},
        std::map<std::string, std::string>{}, (dir_.path() / "registry.log").string());
    if (!WaitForPort(port_)) throw std::runtime_error("the htpasswd registry did not start");
  }
  std::string host() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  TempDir dir_;
  int port_ = 0;
  std::unique_ptr<Process> process_;
};

}  // namespace slipway::testing
