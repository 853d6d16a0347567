// Shared helpers for tests and benchmarks: temporary directories, free ports, child processes
// (the slipway binary and real peers such as the AWS CLI), and waiting for a port to answer.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace slipway::testing {

// A fresh directory under $TMPDIR, removed with everything in it on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::string str() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

// A loopback port for a test to listen on (see test_support.cc for why it cannot be taken meanwhile).
int FreePort();

// Blocks until 127.0.0.1:port accepts a connection; false after timeout.
bool WaitForPort(int port, std::chrono::milliseconds timeout = std::chrono::seconds(15));

// A child process; killed (SIGKILL) and reaped on destruction unless already waited for.
class Process {
 public:
  // argv[0] is looked up on PATH when it has no '/'. env entries are added to (or override)
  // the test's environment. stdout and stderr go to log_file when given, else are inherited.
  Process(std::vector<std::string> argv, std::map<std::string, std::string> env = {},
          std::string log_file = "");
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  bool running();
  void Signal(int sig);
  // Waits for exit; returns the exit code, or 128+signal when killed; -1 on timeout.
  int Wait(std::chrono::milliseconds timeout = std::chrono::seconds(30));

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
  int status_ = 0;
};

// Whether the process runs: exists and is no zombie (a daemon that double-forked is reparented
// to PID 1, which may not reap it here, so kill(pid, 0) alone would say it still runs).
bool ProcessRunning(pid_t pid);

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr interleaved
};

// Runs a shell command (/bin/sh -c) with extra environment, capturing its output.
CommandResult RunCommand(const std::string& command, const std::map<std::string, std::string>& env = {});

// Writes size bytes of deterministic pseudo-random data to path.
void WriteRandomFile(const std::filesystem::path& path, uint64_t size, uint32_t seed = 1);
std::string ReadFile(const std::filesystem::path& path);
std::string FileSha256(const std::filesystem::path& path);

// The slipway binary under test and the source tree.
std::string SlipwayBinary();
std::filesystem::path SourceDir();

}  // namespace slipway::testing
