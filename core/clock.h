// Time, behind an interface so tests can move it (expiry, job timeouts).
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "core/status.h"

namespace sigil::core {

class Clock {
 public:
  virtual ~Clock() = default;
  // Microseconds since the Unix epoch.
  virtual int64_t NowMicros() const = 0;
  // The process-wide real clock.
  static Clock* Real();
};

// A clock that only moves when told to. Thread-safe.
class ManualClock : public Clock {
 public:
  explicit ManualClock(int64_t start_micros = 1'700'000'000'000'000) : now_(start_micros) {}
  int64_t NowMicros() const override { return now_.load(); }
  void Advance(int64_t micros) { now_ += micros; }
  void Set(int64_t micros) { now_ = micros; }

 private:
  std::atomic<int64_t> now_;
};

// RFC 3339 UTC with a Z suffix and second precision: "2026-11-23T18:14:08Z".
std::string FormatRfc3339(int64_t micros);
// Accepts "YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)".
Result<int64_t> ParseRfc3339(const std::string& text);
// "30s", "15m", "24h", "7d" -> microseconds.
Result<int64_t> ParseDuration(const std::string& text);

}  // namespace sigil::core
