// The clock, behind an interface so tests can move time (a 5-minute deadline tested in
// milliseconds). Production code takes a Clock& and defaults to SystemClock().
#pragma once

#include <chrono>
#include <ctime>
#include <string>

namespace slipway {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual std::chrono::system_clock::time_point Now() const = 0;
};

// The real wall clock; a process-wide singleton, thread-safe.
Clock& SystemClock();

// A clock that moves only when told to; thread-safe.
class ManualClock : public Clock {
 public:
  explicit ManualClock(std::chrono::system_clock::time_point start) : now_(start) {}
  std::chrono::system_clock::time_point Now() const override;
  void Advance(std::chrono::system_clock::duration d);
  void Set(std::chrono::system_clock::time_point t);

 private:
  mutable std::chrono::system_clock::time_point now_;
};

// "20130524T000000Z" (ISO 8601 basic, UTC), as SigV4 uses it.
std::string FormatAmzDate(std::chrono::system_clock::time_point t);
// "Fri, 24 May 2013 00:00:00 GMT" (RFC 7231 IMF-fixdate), as HTTP headers use it.
std::string FormatHttpDate(std::chrono::system_clock::time_point t);
// "2013-05-24T00:00:00.000Z" (ISO 8601 extended, UTC), as S3's XML uses it.
std::string FormatIso8601(std::chrono::system_clock::time_point t);
// Parses "20130524T000000Z"; false on malformed input and on years outside 1900..2200.
bool ParseAmzDate(std::string_view s, std::chrono::system_clock::time_point* out);
// Seconds since the epoch as a time point; false outside the years 1900..2200, so that no
// date a client sends can overflow system_clock (nanoseconds in 64 bits end in 1677 and 2262).
bool TimePointFromTimeT(std::time_t t, std::chrono::system_clock::time_point* out);

}  // namespace slipway
