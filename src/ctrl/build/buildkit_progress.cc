#include "ctrl/build/buildkit_progress.h"

#include <fmt/format.h>

#include "moby/buildkit/v1/control.pb.h"

namespace slipway::ctrl::build {
namespace {

double Seconds(const google::protobuf::Timestamp& from, const google::protobuf::Timestamp& to) {
  return static_cast<double>(to.seconds() - from.seconds()) +
         static_cast<double>(to.nanos() - from.nanos()) / 1e9;
}

}  // namespace

std::string StripAnsi(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\x1b' && i + 1 < s.size() && s[i + 1] == '[') {
      i += 2;
      while (i < s.size() && !(s[i] >= '@' && s[i] <= '~')) ++i;
      continue;
    }
    out += s[i];
  }
  return out;
}

std::string CleanLogLine(std::string_view s) {
  std::string clean = StripAnsi(s);
  while (!clean.empty() && (clean.back() == '\r' || clean.back() == '\n')) clean.pop_back();
  return clean;
}

BuildkitProgress::Step& BuildkitProgress::StepFor(const std::string& digest) {
  Step& step = steps_[digest];
  if (step.number == 0) step.number = next_number_++;
  return step;
}

void BuildkitProgress::Emit(std::string_view text) {
  if (sink_) sink_(CleanLogLine(text));
}

void BuildkitProgress::Output(Step& step, std::string_view line) {
  std::string clean = CleanLogLine(line);
  step.tail.push_back(clean);
  if (step.tail.size() > kTailLines) step.tail.pop_front();
  Emit(fmt::format("#{} {}", step.number, clean));
}

void BuildkitProgress::Apply(const moby::buildkit::v1::StatusResponse& status) {
  for (const auto& v : status.vertexes()) {
    Step& step = StepFor(v.digest());
    if (!v.name().empty()) step.name = v.name();
    if (!step.announced && (v.has_started() || v.cached())) {
      step.announced = true;
      Emit(fmt::format("#{} {}", step.number, step.name));
    }
    if (step.done) continue;
    if (!v.error().empty() && step.name.rfind("importing cache manifest", 0) == 0) {
      // A project's first build has no registry cache yet; the build goes on without it.
      step.done = true;
      Emit(fmt::format("#{} no cache imported: {}", step.number, StripAnsi(v.error())));
    } else if (!v.error().empty()) {
      step.done = true;
      Emit(fmt::format("#{} ERROR: {}", step.number, v.error()));
      // The first failure is the cause; later ones are usually "canceled" siblings.
      if (failed_step_.empty() && v.error().find("context canceled") == std::string::npos) {
        failed_digest_ = v.digest();
        failed_step_ = step.name;
        failed_error_ = StripAnsi(v.error());
      }
    } else if (v.cached()) {
      step.done = true;
      Emit(fmt::format("#{} CACHED", step.number));
    } else if (v.has_completed()) {
      step.done = true;
      Emit(fmt::format("#{} DONE {:.1f}s", step.number, Seconds(v.started(), v.completed())));
    }
  }
  for (const auto& log : status.logs()) {
    Step& step = StepFor(log.vertex());
    step.partial += log.msg();
    size_t start = 0;
    for (size_t nl; (nl = step.partial.find('\n', start)) != std::string::npos; start = nl + 1) {
      Output(step, std::string_view(step.partial).substr(start, nl - start));
    }
    step.partial.erase(0, start);
  }
}

void BuildkitProgress::Finish() {
  for (auto& [digest, step] : steps_) {
    if (step.partial.empty()) continue;
    std::string rest = std::move(step.partial);
    step.partial.clear();
    Output(step, rest);
  }
}

std::string BuildkitProgress::FailedStepTail() const {
  if (failed_digest_.empty()) return "";
  auto it = steps_.find(failed_digest_);
  if (it == steps_.end()) return "";
  std::string out;
  for (const auto& line : it->second.tail) {
    if (!out.empty()) out += '\n';
    out += line;
  }
  return out;
}

}  // namespace slipway::ctrl::build
