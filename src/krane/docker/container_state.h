// Reading what dockerd says about a container: the verdict on its State (from
// GET /containers/{id}/json) and its log output (GET /containers/{id}/logs). Pure functions, no
// I/O, so the mapping from Docker's states to instance statuses is tested on recorded JSON.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include "krane/backend.h"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace slipway::krane::docker {

// How a container's last run ended, from its die/oom events.
struct LastExit {
  int exit_code = 0;
  bool oom_killed = false;
};

// What a container's State says before anyone has probed the app.
struct ContainerVerdict {
  enum class Phase {
    kStarting,     // created, or not started yet: PENDING
    kProbe,        // its process runs: RUNNING once it answers, else PENDING (or kFailed below)
    kFailed,       // exited, dead, OOM-killed, or crash-looping
    kTerminating,  // being removed
  };
  Phase phase = Phase::kStarting;
  // For kFailed: "exited with exit code 3", "out of memory (OOM-killed), exit code 137", ...
  // For kProbe with crashed_before: why it is FAILED if the probe fails too.
  std::string reason;
  int restart_count = 0;
  bool oom_killed = false;
  // For kProbe: the container exited or was OOM-killed before (dockerd restarted it), so if it
  // does not answer now it is a crash loop caught between two crashes: FAILED, not PENDING.
  bool crashed_before = false;
};

// Judges the State of an inspect document. Never throws: a document without the expected
// fields is kStarting with a reason saying so.
ContainerVerdict JudgeContainer(const nlohmann::json& inspect);

// "restarted once (crash loop)", "restarted 4 times (crash loop)".
std::string CrashLoopPhrase(int restart_count);

// The last run's end from GET /events?filters={"container":[id],"event":["die","oom"]}
// (one JSON object per line, oldest first): dockerd's State forgets the exit code once the
// restart policy starts the container again; its events keep it. nullopt without a die event.
std::optional<LastExit> LastExitFromEvents(std::string_view events);

// The text of a logs response. Without a TTY dockerd frames each chunk with an 8-byte header
// ({stream, 0, 0, 0, big-endian uint32 size}); frames are joined in order, stdout and stderr
// alike. Input that does not start with a valid frame header (a TTY container) is returned as
// is; a truncated last frame contributes what it has.
std::string DemultiplexLogs(std::string_view raw);

// The same frames one by one: stream 1 is stdout, 2 stderr (0 stdin, never sent).
struct LogFrame {
  int stream = 1;
  std::string bytes;
};
std::vector<LogFrame> DemultiplexLogFrames(std::string_view raw);

// The lines of a logs response asked for with timestamps=1 ("2026-12-01T22:30:00.123456789Z
// text"), each with its time and stream; instance_id left empty. A line whose timestamp cannot
// be read keeps time 0 and its whole text.
std::vector<LogLine> TimestampedLogLines(const std::vector<LogFrame>& frames);

// The last n lines of text, without a trailing newline.
std::string LastLines(std::string_view text, size_t n);

}  // namespace slipway::krane::docker
