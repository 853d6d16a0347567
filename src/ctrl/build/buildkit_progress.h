// BuildkitProgress: turns BuildKit's progress records (moby.buildkit.v1.StatusResponse) into the
// build log lines ctrl stores and the CLI shows, in the words `docker build` uses:
//   #3 [2/3] RUN make        a step starts (numbered in the order BuildKit first mentions it)
//   #3 compiling...          its output, one line at a time
//   #3 CACHED / #3 DONE 0.4s / #3 ERROR: <why>
// Both the docker backend (dockerd forwards these records base64-encoded) and the buildkit
// backend (the daemon's Status stream) feed it. It also remembers which step failed and that
// step's last output lines, so a failed build can say what happened in one message.
// Not thread-safe; one per build.
#pragma once

#include <deque>
#include <map>
#include <string>
#include <string_view>

#include "ctrl/build/backend.h"

namespace moby::buildkit::v1 {
class StatusResponse;
}

namespace slipway::ctrl::build {

class BuildkitProgress {
 public:
  explicit BuildkitProgress(BuildLogSink sink) : sink_(std::move(sink)) {}

  void Apply(const moby::buildkit::v1::StatusResponse& status);
  // Emits output still waiting for its newline.
  void Finish();

  // The step that failed ("[2/3] RUN make") and its error, empty when none failed.
  const std::string& failed_step() const { return failed_step_; }
  const std::string& failed_error() const { return failed_error_; }
  // The failed step's last output lines (at most kTailLines), oldest first.
  std::string FailedStepTail() const;

  static constexpr size_t kTailLines = 10;

 private:
  struct Step {
    int number = 0;
    std::string name;
    bool announced = false;
    bool done = false;
    std::string partial;            // output not yet ending in '\n'
    std::deque<std::string> tail;   // its last output lines
  };

  Step& StepFor(const std::string& digest);
  void Output(Step& step, std::string_view line);
  void Emit(std::string_view text);

  BuildLogSink sink_;
  std::map<std::string, Step> steps_;
  int next_number_ = 1;
  std::string failed_digest_;
  std::string failed_step_;
  std::string failed_error_;
};

// Removes ANSI escape sequences (RUN output and the classic builder's red stderr carry them).
std::string StripAnsi(std::string_view s);
// One line as the build log stores it: no ANSI escapes, no trailing CR or LF.
std::string CleanLogLine(std::string_view s);

}  // namespace slipway::ctrl::build
