// Runtime log text as container engines give it with timestamps ("2026-12-01T22:30:00.123456789Z
// text\n" per line: dockerd's logs?timestamps=1, the kubelet's pods/log?timestamps=true), split
// into LogLine records. Bytes may arrive in any pieces; a line is emitted once its newline is
// seen (or at Finish). A line whose timestamp cannot be read keeps time 0 and its whole text.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "krane/backend.h"

namespace slipway::krane {

class TimestampedLineSplitter {
 public:
  explicit TimestampedLineSplitter(std::string stream) : stream_(std::move(stream)) {}
  void Feed(std::string_view bytes, std::vector<LogLine>* out);
  void Finish(std::vector<LogLine>* out);

 private:
  void Emit(std::string_view line, std::vector<LogLine>* out) const;
  std::string stream_;
  std::string partial_;
};

// How much one GetLogs answer carries at most: an app that floods its log would otherwise make
// an answer (and the memory of krane, ctrl and the CLI) as large as everything the engine
// kept. A caller asks again from the last line's time for the rest.
inline constexpr size_t kMaxLogAnswerBytes = 1 << 20;  // of text
inline constexpr size_t kMaxLogAnswerLines = 10'000;

// Keeps the oldest lines (lines are oldest first) within max_bytes of text and max_lines, never
// splitting lines of one instant (a caller resumes after the last line's time, which would skip
// the rest of that instant); at least one line stays. True when lines were dropped.
bool BoundLogAnswer(std::vector<LogLine>& lines, size_t max_bytes = kMaxLogAnswerBytes,
                    size_t max_lines = kMaxLogAnswerLines);

// The end of a log tail within max_bytes, cut at a line start, with a first line saying how
// much was left out: what goes into an instance's failure reason, which ctrl stores.
std::string BoundLogTail(std::string tail, size_t max_bytes = 4096);

}  // namespace slipway::krane
