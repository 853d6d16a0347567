// Upload progress as a person watches it: on a terminal one status line rewritten in place
// ("Uploading 12.3 MiB / 50.0 MiB  24%  8.1 MiB/s"), at most ten times a second; in a log (CI,
// a pipe) plain lines at every quarter and at least every 5 seconds, none in the first second
// (a quick upload shows only its summary), so the log stays short and still shows a stalled
// upload. The formatting functions are pure, for tests.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "cli/console.h"

namespace slipway::cli {

// "512 B", "12.3 KiB", "50.0 MiB", "1.2 GiB" (binary units, one decimal above bytes).
std::string FormatBytes(uint64_t bytes);
// "8.1 MiB/s"; "-" per second when no time has passed.
std::string FormatRate(uint64_t bytes, std::chrono::duration<double> elapsed);
// "2.1s", "1m05s".
std::string FormatElapsed(std::chrono::duration<double> elapsed);
// "Uploading 12.3 MiB / 50.0 MiB  24%  8.1 MiB/s"
std::string FormatUploadProgress(uint64_t sent, uint64_t total,
                                 std::chrono::duration<double> elapsed);
// "Uploaded 50.0 MiB in 2.1s (23.8 MiB/s)"
std::string FormatUploadDone(uint64_t total, std::chrono::duration<double> elapsed);

class UploadProgress {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  // Draws as a status line when console.tty(), as plain lines otherwise.
  UploadProgress(Console& console, uint64_t total, TimePoint start);
  // `sent` bytes have gone out by `now`.
  void Update(uint64_t sent, TimePoint now);
  // The upload finished: replaces the status line by the summary line.
  void Done(TimePoint now);
  // The upload is being restarted from byte 0 (a retry).
  void Restart(TimePoint now);

 private:
  Console& console_;
  uint64_t total_;
  TimePoint start_;
  TimePoint last_drawn_;
  int quarters_reported_ = 0;
};

}  // namespace slipway::cli
