// Upload progress: the line's format, and when lines are drawn on a terminal and in a log.
#include "cli/progress.h"

#include <gtest/gtest.h>

#include <cstdio>

namespace slipway::cli {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(ProgressFormatTest, Bytes) {
  EXPECT_EQ(FormatBytes(0), "0 B");
  EXPECT_EQ(FormatBytes(1023), "1023 B");
  EXPECT_EQ(FormatBytes(1024), "1.0 KiB");
  EXPECT_EQ(FormatBytes(1536), "1.5 KiB");
  EXPECT_EQ(FormatBytes(50ull << 20), "50.0 MiB");
  EXPECT_EQ(FormatBytes((1ull << 20) - 1), "1.0 MiB");  // never "1024.0 KiB"
  EXPECT_EQ(FormatBytes(3ull << 30), "3.0 GiB");
}

TEST(ProgressFormatTest, ProgressLine) {
  EXPECT_EQ(FormatUploadProgress(12ull << 20, 50ull << 20, seconds(2)),
            "Uploading 12.0 MiB / 50.0 MiB  24%  6.0 MiB/s");
  EXPECT_EQ(FormatUploadProgress(0, 1000, seconds(0)), "Uploading 0 B / 1000 B  0%  - /s");
  EXPECT_EQ(FormatUploadProgress(1000, 1000, milliseconds(500)),
            "Uploading 1000 B / 1000 B  100%  2.0 KiB/s");
  EXPECT_EQ(FormatUploadDone(50ull << 20, milliseconds(2500)),
            "Uploaded 50.0 MiB in 2.5s (20.0 MiB/s)");
}

TEST(ProgressFormatTest, Elapsed) {
  EXPECT_EQ(FormatElapsed(milliseconds(0)), "0.0s");
  EXPECT_EQ(FormatElapsed(milliseconds(3250)), "3.2s");
  EXPECT_EQ(FormatElapsed(seconds(65)), "1m05s");
  EXPECT_EQ(FormatElapsed(seconds(3725)), "1h02m");
}

// A console writing into memory.
class CapturedConsole {
 public:
  explicit CapturedConsole(bool tty) {
    file_ = open_memstream(&buf_, &size_);
    console_ = std::make_unique<Console>(file_, file_, tty);
  }
  ~CapturedConsole() {
    std::fclose(file_);
    std::free(buf_);
  }
  Console& console() { return *console_; }
  std::string text() {
    std::fflush(file_);
    return std::string(buf_, size_);
  }

 private:
  char* buf_ = nullptr;
  size_t size_ = 0;
  std::FILE* file_;
  std::unique_ptr<Console> console_;
};

size_t Count(const std::string& text, std::string_view what) {
  size_t n = 0;
  for (size_t pos = text.find(what); pos != std::string::npos; pos = text.find(what, pos + 1)) ++n;
  return n;
}

TEST(UploadProgressTest, PlainLinesAtQuartersAndEveryFewSeconds) {
  CapturedConsole out(false);
  auto t0 = std::chrono::steady_clock::time_point{};
  UploadProgress progress(out.console(), 1000, t0);
  // 100 updates of 10 bytes over four seconds: only the 25/50/75% lines and the summary.
  for (int i = 1; i <= 100; ++i) progress.Update(i * 10, t0 + milliseconds(i * 40));
  progress.Done(t0 + seconds(4));
  std::string text = out.text();
  EXPECT_EQ(Count(text, "\n"), 4u) << text;
  EXPECT_NE(text.find("Uploading 250 B / 1000 B  25%  250 B/s\n"), std::string::npos) << text;
  EXPECT_NE(text.find("50%"), std::string::npos);
  EXPECT_NE(text.find("75%"), std::string::npos);
  EXPECT_NE(text.find("Uploaded 1000 B in 4.0s"), std::string::npos);
  EXPECT_EQ(text.find('\r'), std::string::npos);  // no terminal control in a log

  // An upload over within the first second: the summary alone.
  CapturedConsole quick(false);
  UploadProgress quick_progress(quick.console(), 1000, t0);
  for (int i = 1; i <= 100; ++i) quick_progress.Update(i * 10, t0 + milliseconds(i * 5));
  quick_progress.Done(t0 + milliseconds(500));
  EXPECT_EQ(quick.text(), "Uploaded 1000 B in 0.5s (2.0 KiB/s)\n");

  // A slow upload still shows up every 5 seconds within a quarter.
  CapturedConsole slow(false);
  UploadProgress slow_progress(slow.console(), 1000, t0);
  slow_progress.Update(10, t0 + seconds(1));
  slow_progress.Update(20, t0 + seconds(6));
  slow_progress.Update(30, t0 + seconds(8));
  slow_progress.Update(40, t0 + seconds(12));
  EXPECT_EQ(Count(slow.text(), "\n"), 2u) << slow.text();
}

TEST(UploadProgressTest, TerminalRewritesOneLine) {
  CapturedConsole out(true);
  auto t0 = std::chrono::steady_clock::time_point{};
  UploadProgress progress(out.console(), 1000, t0);
  for (int i = 1; i <= 100; ++i) progress.Update(i * 10, t0 + milliseconds(i * 10));
  progress.Done(t0 + seconds(1));
  std::string text = out.text();
  // One line in the end: redraws with \r (about ten of them in one second), one newline.
  EXPECT_EQ(Count(text, "\n"), 1u) << text;
  EXPECT_GE(Count(text, "\rUploading"), 5u);
  EXPECT_LE(Count(text, "\rUploading"), 12u);
  EXPECT_NE(text.find("\x1b[K"), std::string::npos);
  EXPECT_NE(text.find("Uploaded 1000 B in 1.0s (1000 B/s)\n"), std::string::npos) << text;
}

}  // namespace
}  // namespace slipway::cli
