#include "core/clock.h"

#include <cctype>
#include <chrono>
#include <cstdio>
#include <ctime>

namespace sigil::core {
namespace {

class RealClock : public Clock {
 public:
  int64_t NowMicros() const override {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
};

bool ReadDigits(const std::string& s, size_t pos, size_t n, int* out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = 0; i < n; ++i) {
    char c = s[pos + i];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *out = v;
  return true;
}

}  // namespace

Clock* Clock::Real() {
  static RealClock clock;
  return &clock;
}

std::string FormatRfc3339(int64_t micros) {
  time_t secs = static_cast<time_t>(micros / 1'000'000);
  if (micros < 0 && micros % 1'000'000 != 0) --secs;
  struct tm tm {};
  gmtime_r(&secs, &tm);
  char buf[96];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buf;
}

Result<int64_t> ParseRfc3339(const std::string& s) {
  int year, mon, day, hour, min, sec;
  if (!ReadDigits(s, 0, 4, &year) || s.size() < 20 || s[4] != '-' ||
      !ReadDigits(s, 5, 2, &mon) || s[7] != '-' || !ReadDigits(s, 8, 2, &day) ||
      (s[10] != 'T' && s[10] != 't') || !ReadDigits(s, 11, 2, &hour) || s[13] != ':' ||
      !ReadDigits(s, 14, 2, &min) || s[16] != ':' || !ReadDigits(s, 17, 2, &sec)) {
    return InvalidArgument("not an RFC 3339 time: " + s);
  }
  if (mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 23 || min > 59 || sec > 60) {
    return InvalidArgument("RFC 3339 time out of range: " + s);
  }
  size_t pos = 19;
  int64_t frac_micros = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    int64_t scale = 100000;
    size_t start = pos;
    while (pos < s.size() && std::isdigit(static_cast<unsigned char>(s[pos]))) {
      frac_micros += (s[pos] - '0') * scale;
      scale /= 10;
      ++pos;
    }
    if (pos == start) return InvalidArgument("not an RFC 3339 time: " + s);
  }
  int64_t offset_secs = 0;
  if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z')) {
    ++pos;
  } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
    int oh, om;
    if (!ReadDigits(s, pos + 1, 2, &oh) || pos + 3 >= s.size() || s[pos + 3] != ':' ||
        !ReadDigits(s, pos + 4, 2, &om)) {
      return InvalidArgument("bad RFC 3339 offset: " + s);
    }
    offset_secs = (oh * 3600 + om * 60) * (s[pos] == '+' ? 1 : -1);
    pos += 6;
  } else {
    return InvalidArgument("RFC 3339 time needs a zone: " + s);
  }
  if (pos != s.size()) return InvalidArgument("trailing characters in time: " + s);
  struct tm tm {};
  tm.tm_year = year - 1900;
  tm.tm_mon = mon - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = min;
  tm.tm_sec = sec;
  int64_t secs = static_cast<int64_t>(timegm(&tm)) - offset_secs;
  return secs * 1'000'000 + frac_micros;
}

Result<int64_t> ParseDuration(const std::string& text) {
  if (text.size() < 2) return InvalidArgument("duration must look like 30s, 15m, 24h or 7d");
  int64_t n = 0;
  for (size_t i = 0; i + 1 < text.size(); ++i) {
    char c = text[i];
    if (c < '0' || c > '9' || n > 1'000'000'000) {
      return InvalidArgument("duration must look like 30s, 15m, 24h or 7d: " + text);
    }
    n = n * 10 + (c - '0');
  }
  int64_t unit;
  switch (text.back()) {
    case 's': unit = 1; break;
    case 'm': unit = 60; break;
    case 'h': unit = 3600; break;
    case 'd': unit = 86400; break;
    default: return InvalidArgument("duration unit must be s, m, h or d: " + text);
  }
  return n * unit * 1'000'000;
}

}  // namespace sigil::core
