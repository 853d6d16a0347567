#include "krane/docker/container_state.h"

#include "krane/log_lines.h"


#include <fmt/format.h>

#include <nlohmann/json.hpp>

namespace slipway::krane::docker {
namespace {

using Json = nlohmann::json;

template <typename T>
T Field(const Json& object, const char* name, T fallback) {
  if (!object.is_object()) return fallback;
  auto it = object.find(name);
  if (it == object.end() || it->is_null()) return fallback;
  try {
    return it->get<T>();
  } catch (const Json::exception&) {
    return fallback;
  }
}

std::string ExitReason(const Json& state) {
  const int exit_code = Field<int>(state, "ExitCode", 0);
  if (Field<bool>(state, "OOMKilled", false)) {
    return fmt::format("out of memory (OOM-killed), exit code {}", exit_code);
  }
  std::string reason = fmt::format("exited with exit code {}", exit_code);
  // dockerd's own error, e.g. the entrypoint does not exist in the image.
  const std::string error = Field<std::string>(state, "Error", "");
  if (!error.empty()) reason += ": " + error;
  return reason;
}

// Exited by SIGTERM or SIGKILL (exit code 143 or 137, not OOM-killed), with a restart policy
// that brings it back when dockerd starts again.
bool StoppedByDockerd(const Json& inspect) {
  const Json state = inspect.value("State", Json());
  const int exit_code = Field<int>(state, "ExitCode", 0);
  if ((exit_code != 128 + 15 && exit_code != 128 + 9) || Field<bool>(state, "OOMKilled", false)) {
    return false;
  }
  const Json host = inspect.value("HostConfig", Json());
  const Json policy = host.is_object() ? host.value("RestartPolicy", Json()) : Json();
  const std::string name = Field<std::string>(policy, "Name", "");
  return name == "unless-stopped" || name == "always";
}

}  // namespace

std::string CrashLoopPhrase(int restart_count) {
  if (restart_count == 1) return "restarted once (crash loop)";
  return fmt::format("restarted {} times (crash loop)", restart_count);
}

ContainerVerdict JudgeContainer(const Json& inspect) {
  ContainerVerdict verdict;
  const Json state = inspect.is_object() ? inspect.value("State", Json()) : Json();
  if (!state.is_object()) {
    verdict.reason = "dockerd reported no state for this container yet";
    return verdict;
  }
  const std::string status = Field<std::string>(state, "Status", "");
  verdict.restart_count = Field<int>(inspect, "RestartCount", 0);

  if (status == "exited" && StoppedByDockerd(inspect)) {
    // dockerd stops every container when it shuts down (SIGTERM, SIGKILL after the stop
    // timeout), and its restart policy starts them again when it comes back: the app did not
    // fail. If nothing starts it again (an operator's `docker stop`), the wait deadline fails
    // the deployment with this reason.
    verdict.reason = ExitReason(state) +
                     ", stopped by a signal from outside (as dockerd stops containers when it "
                     "shuts down); waiting for its restart policy to start it again";
    return verdict;
  }
  if (status == "exited" || status == "dead") {
    verdict.phase = ContainerVerdict::Phase::kFailed;
    verdict.reason = ExitReason(state);
    if (status == "dead") verdict.reason += " (dockerd marked the container dead)";
    return verdict;
  }
  if (status == "restarting") {
    // The restart policy is between two runs: the last run ended. With unless-stopped even a
    // clean exit is restarted, and an app that exits at all is not serving.
    verdict.phase = ContainerVerdict::Phase::kFailed;
    verdict.reason = ExitReason(state);
    if (verdict.restart_count > 0) {
      verdict.reason += ", " + CrashLoopPhrase(verdict.restart_count);
    }
    return verdict;
  }
  if (status == "running") {
    verdict.phase = ContainerVerdict::Phase::kProbe;
    // dockerd keeps OOMKilled set after restarting a container, and resets ExitCode to 0.
    const bool oom = Field<bool>(state, "OOMKilled", false);
    verdict.oom_killed = oom;
    verdict.crashed_before = oom || verdict.restart_count > 0;
    if (oom) {
      verdict.reason = "out of memory (OOM-killed)";
    } else if (verdict.restart_count > 0) {
      verdict.reason = "exited";
    }
    if (verdict.restart_count > 0) verdict.reason += ", " + CrashLoopPhrase(verdict.restart_count);
    return verdict;
  }
  if (status == "removing") {
    verdict.phase = ContainerVerdict::Phase::kTerminating;
    verdict.reason = "being removed";
    return verdict;
  }
  if (status == "created") {
    // A start that failed (the entrypoint is missing, say) leaves the container "created" with
    // dockerd's error: it will never run, so waiting for it would be waiting forever.
    const std::string error = Field<std::string>(state, "Error", "");
    if (!error.empty()) {
      verdict.phase = ContainerVerdict::Phase::kFailed;
      verdict.reason = "could not be started: " + error;
      return verdict;
    }
  }
  if (status == "paused") {
    verdict.reason = "paused (docker unpause it to resume)";
    return verdict;
  }
  verdict.reason =
      status.empty() ? "not started yet" : "container is " + status + ", not started yet";
  return verdict;
}

std::optional<LastExit> LastExitFromEvents(std::string_view events) {
  std::optional<LastExit> last;
  bool oom_since_last_die = false;
  size_t start = 0;
  while (start < events.size()) {
    size_t end = events.find('\n', start);
    if (end == std::string_view::npos) end = events.size();
    auto event = Json::parse(events.substr(start, end - start), nullptr, false);
    start = end + 1;
    if (!event.is_object()) continue;
    const std::string action = Field<std::string>(event, "Action", "");
    if (action == "oom") {
      oom_since_last_die = true;
    } else if (action == "die") {
      const Json actor = event.value("Actor", Json::object());
      const Json attributes =
          actor.is_object() ? actor.value("Attributes", Json::object()) : Json();
      const std::string code = Field<std::string>(attributes, "exitCode", "");
      LastExit exit;
      try {
        exit.exit_code = std::stoi(code);
      } catch (const std::exception&) {
        continue;
      }
      exit.oom_killed = oom_since_last_die;
      last = exit;
      oom_since_last_die = false;
    }
  }
  return last;
}

std::vector<LogFrame> DemultiplexLogFrames(std::string_view raw) {
  constexpr size_t kHeader = 8;
  auto is_header = [&](size_t at) {
    if (raw.size() - at < kHeader) return false;
    const auto stream = static_cast<unsigned char>(raw[at]);
    return stream <= 2 && raw[at + 1] == 0 && raw[at + 2] == 0 && raw[at + 3] == 0;
  };
  std::vector<LogFrame> frames;
  if (raw.empty()) return frames;
  if (!is_header(0)) {
    frames.push_back({1, std::string(raw)});
    return frames;
  }
  size_t at = 0;
  while (at < raw.size()) {
    if (!is_header(at)) {
      // A broken frame boundary: keep the bytes rather than lose the end of the log.
      frames.push_back({1, std::string(raw.substr(at))});
      break;
    }
    const int stream = static_cast<unsigned char>(raw[at]);
    uint32_t size = 0;
    for (size_t i = 4; i < kHeader; ++i) {
      size = (size << 8) | static_cast<unsigned char>(raw[at + i]);
    }
    at += kHeader;
    frames.push_back({stream, std::string(raw.substr(at, size))});
    at += std::min<size_t>(size, raw.size() - at);
  }
  return frames;
}

std::vector<LogLine> TimestampedLogLines(const std::vector<LogFrame>& frames) {
  // A line may span frames of one stream; frames of the two streams never share a line.
  TimestampedLineSplitter out_lines("stdout"), err_lines("stderr");
  std::vector<LogLine> out;
  for (const auto& f : frames) (f.stream == 2 ? err_lines : out_lines).Feed(f.bytes, &out);
  out_lines.Finish(&out);
  err_lines.Finish(&out);
  return out;
}

std::string DemultiplexLogs(std::string_view raw) {
  std::string out;
  for (const auto& f : DemultiplexLogFrames(raw)) out += f.bytes;
  return out;
}

std::string LastLines(std::string_view text, size_t n) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);
  if (n == 0) return "";
  size_t start = text.size();
  size_t lines = 0;
  while (start > 0) {
    size_t nl = text.rfind('\n', start - 1);
    if (nl == std::string_view::npos) {
      start = 0;
      break;
    }
    if (++lines == n) {
      start = nl + 1;
      break;
    }
    start = nl;
  }
  return std::string(text.substr(start));
}

}  // namespace slipway::krane::docker
