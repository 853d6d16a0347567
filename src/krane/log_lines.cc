#include "krane/log_lines.h"

#include <fmt/format.h>

#include <cstdio>
#include <ctime>
#include <optional>

namespace slipway::krane {
namespace {

// "2026-12-01T22:30:00.123456789Z" (RFC 3339 in UTC, up to nanoseconds) → Unix nanoseconds.
std::optional<int64_t> ParseTimestamp(std::string_view t) {
  int y, mo, d, h, mi, s;
  if (t.size() < 20 || std::sscanf(std::string(t.substr(0, 19)).c_str(), "%4d-%2d-%2dT%2d:%2d:%2d",
                                   &y, &mo, &d, &h, &mi, &s) != 6) {
    return std::nullopt;
  }
  int64_t nanos = 0;
  size_t i = 19;
  if (i < t.size() && t[i] == '.') {
    int digits = 0;
    for (++i; i < t.size() && t[i] >= '0' && t[i] <= '9'; ++i, ++digits) {
      if (digits < 9) nanos = nanos * 10 + (t[i] - '0');
    }
    for (; digits < 9; ++digits) nanos *= 10;
  }
  if (i >= t.size() || t[i] != 'Z') return std::nullopt;
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  const int64_t seconds = timegm(&tm);  // UTC, whatever the process's time zone
  return seconds * 1'000'000'000 + nanos;
}

}  // namespace

void TimestampedLineSplitter::Emit(std::string_view line, std::vector<LogLine>* out) const {
  LogLine l;
  l.stream = stream_;
  size_t sp = line.find(' ');
  auto t = sp == std::string_view::npos ? std::nullopt : ParseTimestamp(line.substr(0, sp));
  if (t) {
    l.time_ns = *t;
    line.remove_prefix(sp + 1);
  }
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  l.text = std::string(line);
  out->push_back(std::move(l));
}

void TimestampedLineSplitter::Feed(std::string_view bytes, std::vector<LogLine>* out) {
  partial_ += bytes;
  size_t start = 0;
  for (size_t nl; (nl = partial_.find('\n', start)) != std::string::npos; start = nl + 1) {
    Emit(std::string_view(partial_).substr(start, nl - start), out);
  }
  partial_.erase(0, start);
}

void TimestampedLineSplitter::Finish(std::vector<LogLine>* out) {
  if (!partial_.empty()) Emit(partial_, out);
  partial_.clear();
}

bool BoundLogAnswer(std::vector<LogLine>& lines, size_t max_bytes, size_t max_lines) {
  size_t bytes = 0;
  size_t keep = 0;
  while (keep < lines.size()) {
    const size_t more = lines[keep].text.size();
    if (keep > 0 && (keep >= max_lines || bytes + more > max_bytes)) break;
    bytes += more;
    ++keep;
  }
  // Lines of the instant the answer ends in go with it: the next ask starts after that instant.
  while (keep < lines.size() && lines[keep].time_ns == lines[keep - 1].time_ns) ++keep;
  if (keep == lines.size()) return false;
  lines.resize(keep);
  return true;
}

std::string BoundLogTail(std::string tail, size_t max_bytes) {
  if (tail.size() <= max_bytes) return tail;
  size_t from = tail.size() - max_bytes;
  const size_t nl = tail.find('\n', from);
  // A last line longer than the bound keeps its end.
  from = nl == std::string::npos || nl + 1 >= tail.size() ? from : nl + 1;
  return fmt::format("[{} earlier bytes left out]\n{}", from, tail.substr(from));
}

}  // namespace slipway::krane
