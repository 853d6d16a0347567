#include "cli/follow.h"

#include <fmt/format.h>

#include <map>

#include "base/duration.h"
#include "cli/command_support.h"
#include "cli/deployment_view.h"
#include "cli/interrupt.h"
#include "cli/progress.h"
#include "slipway/ctrl/v1/build.pb.h"
#include "slipway/ctrl/v1/deployment.pb.h"

namespace slipway::cli {
namespace {

namespace pb = slipway::ctrl::v1;
using LogLines = google::protobuf::RepeatedPtrField<pb::LogLine>;

bool IsFinal(int status) {
  return status == pb::DEPLOYMENT_STATUS_READY || status == pb::DEPLOYMENT_STATUS_FAILED ||
         status == pb::DEPLOYMENT_STATUS_DELETED;
}

bool IsFinalBuild(int status) {
  return status == pb::BUILD_STATUS_SUCCEEDED || status == pb::BUILD_STATUS_FAILED;
}

// Prints what changed since the deployment was last shown: a step that started, one that
// finished (with its time and error), new build log lines; and, for the terminal's status
// line, the running step with its elapsed time.
class DeploymentWatcher {
 public:
  DeploymentWatcher(Console& console, std::optional<pb::Deployment>* last)
      : console_(console), last_(last) {}

  void Show(const pb::WatchDeploymentResponse& m) { Show(m.deployment(), m.build_log()); }
  void Show(const pb::GetDeploymentResponse& r) { Show(r.deployment(), r.build_log()); }

  // The terminal's status line: the running step and how long it has run; empty once the
  // deployment is over.
  std::string StatusLine() const {
    if (final_) return "";
    if (!running_) return fmt::format("  {}", status_);
    return fmt::format("  {:<10} running   {}", running_->name(),
                       FormatElapsed(std::chrono::milliseconds(StepElapsedMs(*running_, NowMs()))));
  }

  int64_t log_after() const { return log_after_; }
  bool final() const { return final_; }

 private:
  void Show(const pb::Deployment& d, const LogLines& build_log) {
    int64_t now = NowMs();
    // Log lines belong to the build step: they are printed after its start line.
    bool logs_printed = false;
    auto print_logs = [&] {
      if (logs_printed) return;
      logs_printed = true;
      for (const auto& line : build_log) {
        if (line.seq() <= log_after_) continue;  // shown already (a stream, then a poll)
        PrintLogLine(console_, line.text(), "    ");
        log_after_ = line.seq();
      }
    };
    running_.reset();
    for (const auto& step : d.steps()) {
      int& seen = seen_[step.name()];
      bool started =
          step.status() != pb::STEP_STATUS_PENDING && step.status() != pb::STEP_STATUS_UNSPECIFIED;
      bool finished =
          step.status() == pb::STEP_STATUS_SUCCEEDED || step.status() == pb::STEP_STATUS_FAILED;
      if (started && seen < pb::STEP_STATUS_RUNNING) {
        console_.Line(fmt::format("  {:<10} started", step.name()));
        seen = pb::STEP_STATUS_RUNNING;
      }
      if (step.name() == "build") print_logs();
      if (finished && seen != step.status()) {
        console_.Line(FormatStep(step, now));
        seen = step.status();
      }
      if (step.status() == pb::STEP_STATUS_RUNNING) running_ = step;
    }
    print_logs();
    final_ = IsFinal(d.status());
    status_ = DeploymentStatusName(d.status());
    *last_ = d;
    if (final_) console_.ClearStatusLine();
  }

  Console& console_;
  std::optional<pb::Deployment>* last_;
  std::map<std::string, int> seen_;  // step name -> last status printed
  std::optional<pb::DeploymentStep> running_;
  std::string status_;
  bool final_ = false;
  int64_t log_after_ = 0;
};

// Prints a build's new log lines and keeps its last state.
class BuildWatcher {
 public:
  BuildWatcher(Console& console, pb::GetBuildResponse* last)
      : console_(console), last_(last), started_(std::chrono::steady_clock::now()) {}

  void Show(const pb::GetBuildResponse& b) {
    for (const auto& line : b.log()) {
      if (line.seq() <= log_after_) continue;
      PrintLogLine(console_, line.text(), "");
      log_after_ = line.seq();
    }
    *last_ = b;
    last_->clear_log();
    if (final()) console_.ClearStatusLine();
  }

  std::string StatusLine() const {
    if (final()) return "";
    return fmt::format("Building ({}) {}",
                       last_->status() == pb::BUILD_STATUS_RUNNING ? "running" : "queued",
                       FormatElapsed(std::chrono::steady_clock::now() - started_));
  }

  int64_t log_after() const { return log_after_; }
  bool final() const { return IsFinalBuild(last_->status()); }

 private:
  Console& console_;
  pb::GetBuildResponse* last_;
  std::chrono::steady_clock::time_point started_;
  int64_t log_after_ = 0;
};

// What a follow needs from the thing followed.
struct Followed {
  // Runs the stream to its end; `cancelled` goes to CtrlApi::Watch; *received is set once a
  // message arrived.
  std::function<Status(const std::function<bool()>& cancelled, bool* received)> watch;
  // One Get of the current state, shown.
  std::function<Status()> poll;
  std::function<bool()> done;
  std::function<std::string()> status_line;
};

// Failures that polling would meet just the same: reported, not worked around.
bool PollingFailsToo(const Status& st) {
  switch (st.code()) {
    case Code::kUnauthenticated:
    case Code::kPermissionDenied:
    case Code::kNotFound:
    case Code::kInvalidArgument:
      return true;
    default:
      return false;
  }
}

// Streams; when the stream is not there or breaks, polls every poll_interval from where it
// stopped (see follow.h).
Status Follow(const CtrlApi& ctrl, Console& console, std::chrono::milliseconds poll_interval,
              const Followed& f) {
  using Clock = std::chrono::steady_clock;
  bool received = false;
  bool held_back = false;
  const auto first_by = Clock::now() + kFirstStreamMessagePatience;
  auto next_draw = Clock::now();
  auto cancelled = [&] {
    if (Interrupted()) return true;
    const auto now = Clock::now();
    if (console.tty() && now >= next_draw) {
      std::string text = f.status_line();
      if (!text.empty()) console.StatusLine(text);
      next_draw = now + std::chrono::milliseconds(250);
    }
    if (!received && now >= first_by) {
      held_back = true;
      return true;
    }
    return false;
  };
  Status streamed = f.watch(cancelled, &received);
  if (f.done()) return Status::Ok();
  if (Interrupted()) return Status::Canceled("interrupted");
  if (!held_back && PollingFailsToo(streamed)) return ExplainCtrlError(streamed, ctrl.connection());

  std::string why;
  if (held_back) {
    why = fmt::format("nothing arrived in {} s; something in between may hold it back",
                      kFirstStreamMessagePatience.count());
  } else if (streamed.ok()) {
    why = "it ended early";
  } else {
    why = streamed.message();
  }
  console.ClearStatusLine();
  console.Line(
      fmt::format("No progress stream from the control plane ({}); asking every {} instead", why,
                  FormatDuration(poll_interval)));
  for (;;) {
    SLIPWAY_RETURN_IF_ERROR(f.poll());
    if (f.done()) return Status::Ok();
    SLIPWAY_RETURN_IF_ERROR(WaitForNextPoll(console, poll_interval, f.status_line));
  }
}

// The follow of one thing: its stream `watch_method` (messages StreamMessage) with watch_request,
// else `get_method` polls (get_request with the watcher's log_after; answers GetResponse), each
// message or answer shown by the watcher, until the watcher says it is over.
template <typename StreamMessage, typename GetResponse, typename Watcher, typename GetRequest>
Status StreamOrPoll(const CtrlApi& ctrl, Console& console, std::chrono::milliseconds poll_interval,
                    Watcher& watcher, std::string_view service, std::string_view watch_method,
                    const google::protobuf::Message& watch_request, std::string_view get_method,
                    GetRequest get_request) {
  Followed f;
  f.watch = [&](const std::function<bool()>& cancelled, bool* received) {
    StreamMessage prototype;
    return ctrl.Watch(
        service, watch_method, watch_request, prototype,
        [&](const google::protobuf::Message& m) {
          *received = true;
          watcher.Show(static_cast<const StreamMessage&>(m));
          return true;
        },
        cancelled);
  };
  f.poll = [&] {
    get_request.set_log_after(watcher.log_after());
    GetResponse resp;
    SLIPWAY_RETURN_IF_ERROR(ctrl.CallPatiently(service, get_method, get_request, &resp,
                                               kControlPlanePatience, ReportOutage(console)));
    watcher.Show(resp);
    return Status::Ok();
  };
  f.done = [&] { return watcher.final(); };
  f.status_line = [&] { return watcher.StatusLine(); };
  SLIPWAY_RETURN_IF_ERROR(Follow(ctrl, console, poll_interval, f));
  console.ClearStatusLine();
  return Status::Ok();
}

}  // namespace

Status FollowDeployment(const CtrlApi& ctrl, const std::string& id,
                        std::chrono::milliseconds poll_interval, Console& console,
                        std::optional<pb::Deployment>* last) {
  DeploymentWatcher watcher(console, last);
  pb::WatchDeploymentRequest watch;
  watch.set_deployment_id(id);
  pb::GetDeploymentRequest get;
  get.set_deployment_id(id);
  return StreamOrPoll<pb::WatchDeploymentResponse, pb::GetDeploymentResponse>(
      ctrl, console, poll_interval, watcher, "DeploymentService", "WatchDeployment", watch,
      "GetDeployment", get);
}

Status FollowBuild(const CtrlApi& ctrl, const std::string& id,
                   std::chrono::milliseconds poll_interval, Console& console,
                   pb::GetBuildResponse* last) {
  BuildWatcher watcher(console, last);
  // WatchBuild takes the same request as GetBuild and sends GetBuild's answers.
  pb::GetBuildRequest get;
  get.set_build_id(id);
  return StreamOrPoll<pb::GetBuildResponse, pb::GetBuildResponse>(
      ctrl, console, poll_interval, watcher, "BuildService", "WatchBuild", get, "GetBuild", get);
}

}  // namespace slipway::cli
