#include "base/clock.h"

#include <ctime>
#include <mutex>

namespace slipway {
namespace {

class RealClock : public Clock {
 public:
  std::chrono::system_clock::time_point Now() const override {
    return std::chrono::system_clock::now();
  }
};

std::mutex manual_clock_mu;

std::string Format(std::chrono::system_clock::time_point t, const char* fmt) {
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[64];
  size_t n = std::strftime(buf, sizeof buf, fmt, &tm);
  return std::string(buf, n);
}

}  // namespace

Clock& SystemClock() {
  static RealClock clock;
  return clock;
}

std::chrono::system_clock::time_point ManualClock::Now() const {
  std::lock_guard lock(manual_clock_mu);
  return now_;
}

void ManualClock::Advance(std::chrono::system_clock::duration d) {
  std::lock_guard lock(manual_clock_mu);
  now_ += d;
}

void ManualClock::Set(std::chrono::system_clock::time_point t) {
  std::lock_guard lock(manual_clock_mu);
  now_ = t;
}

std::string FormatAmzDate(std::chrono::system_clock::time_point t) {
  return Format(t, "%Y%m%dT%H%M%SZ");
}

std::string FormatHttpDate(std::chrono::system_clock::time_point t) {
  return Format(t, "%a, %d %b %Y %H:%M:%S GMT");
}

std::string FormatIso8601(std::chrono::system_clock::time_point t) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count() % 1000;
  char frac[8];
  std::snprintf(frac, sizeof frac, ".%03dZ", static_cast<int>(ms));
  return Format(t, "%Y-%m-%dT%H:%M:%S") + frac;
}

bool ParseAmzDate(std::string_view s, std::chrono::system_clock::time_point* out) {
  if (s.size() != 16 || s[8] != 'T' || s[15] != 'Z') return false;
  for (size_t i = 0; i < 15; ++i) {
    if (i != 8 && (s[i] < '0' || s[i] > '9')) return false;
  }
  auto num = [&](size_t pos, size_t len) {
    int v = 0;
    for (size_t i = pos; i < pos + len; ++i) v = v * 10 + (s[i] - '0');
    return v;
  };
  std::tm tm{};
  tm.tm_year = num(0, 4) - 1900;
  tm.tm_mon = num(4, 2) - 1;
  tm.tm_mday = num(6, 2);
  tm.tm_hour = num(9, 2);
  tm.tm_min = num(11, 2);
  tm.tm_sec = num(13, 2);
  if (tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 ||
      tm.tm_sec > 60) {
    return false;
  }
  return TimePointFromTimeT(timegm(&tm), out);
}

bool TimePointFromTimeT(std::time_t t, std::chrono::system_clock::time_point* out) {
  constexpr std::time_t kYear1900 = -2208988800;  // 1900-01-01T00:00:00Z
  constexpr std::time_t kYear2201 = 7289654400;   // 2201-01-01T00:00:00Z
  if (t < kYear1900 || t >= kYear2201) return false;
  *out = std::chrono::system_clock::from_time_t(t);
  return true;
}

}  // namespace slipway
