#include "cli/progress.h"

#include <fmt/format.h>

#include <cmath>

namespace slipway::cli {

namespace {
constexpr auto kTerminalRedraw = std::chrono::milliseconds(100);
constexpr auto kPlainLineEvery = std::chrono::seconds(5);
constexpr auto kPlainQuiet = std::chrono::seconds(1);
}  // namespace

std::string FormatBytes(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB"};
  if (bytes < 1024) return fmt::format("{} B", bytes);
  double v = static_cast<double>(bytes) / 1024;
  int unit = 0;
  // Switch units before the one-decimal rounding would print "1024.0".
  while (v >= 1023.95 && unit < 3) {
    v /= 1024;
    ++unit;
  }
  return fmt::format("{:.1f} {}", v, kUnits[unit]);
}

std::string FormatRate(uint64_t bytes, std::chrono::duration<double> elapsed) {
  if (elapsed.count() <= 0) return "- /s";
  return FormatBytes(static_cast<uint64_t>(std::llround(bytes / elapsed.count()))) + "/s";
}

std::string FormatElapsed(std::chrono::duration<double> elapsed) {
  double s = std::max(0.0, elapsed.count());
  if (s < 60) return fmt::format("{:.1f}s", s);
  auto whole = static_cast<int64_t>(s);
  if (whole < 3600) return fmt::format("{}m{:02}s", whole / 60, whole % 60);
  return fmt::format("{}h{:02}m", whole / 3600, whole / 60 % 60);
}

std::string FormatUploadProgress(uint64_t sent, uint64_t total,
                                 std::chrono::duration<double> elapsed) {
  int percent = total == 0 ? 100 : static_cast<int>(std::min<uint64_t>(sent, total) * 100 / total);
  return fmt::format("Uploading {} / {}  {}%  {}", FormatBytes(sent), FormatBytes(total), percent,
                     FormatRate(sent, elapsed));
}

std::string FormatUploadDone(uint64_t total, std::chrono::duration<double> elapsed) {
  return fmt::format("Uploaded {} in {} ({})", FormatBytes(total), FormatElapsed(elapsed),
                     FormatRate(total, elapsed));
}

UploadProgress::UploadProgress(Console& console, uint64_t total, TimePoint start)
    : console_(console), total_(total), start_(start), last_drawn_(start) {
  if (console_.tty()) console_.StatusLine(FormatUploadProgress(0, total_, {}));
}

void UploadProgress::Update(uint64_t sent, TimePoint now) {
  std::chrono::duration<double> elapsed = now - start_;
  if (console_.tty()) {
    if (now - last_drawn_ < kTerminalRedraw) return;
    last_drawn_ = now;
    console_.StatusLine(FormatUploadProgress(sent, total_, elapsed));
    return;
  }
  // An upload over within a second gets only its summary line: progress lines would be noise.
  if (now - start_ < kPlainQuiet) return;
  int quarters = total_ == 0 ? 4 : static_cast<int>(std::min<uint64_t>(sent, total_) * 4 / total_);
  bool new_quarter = quarters > quarters_reported_ && quarters < 4;  // Done() reports the end
  if (new_quarter || (now - last_drawn_ >= kPlainLineEvery && sent < total_)) {
    quarters_reported_ = std::max(quarters_reported_, quarters);
    last_drawn_ = now;
    console_.Line(FormatUploadProgress(sent, total_, elapsed));
  }
}

void UploadProgress::Done(TimePoint now) {
  console_.ClearStatusLine();
  console_.Line(FormatUploadDone(total_, now - start_));
}

void UploadProgress::Restart(TimePoint now) {
  start_ = now;
  last_drawn_ = now;
  quarters_reported_ = 0;
}

}  // namespace slipway::cli
