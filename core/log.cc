#include "core/log.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

#include "core/clock.h"

namespace sigil::core {
namespace {

LogLevel LevelFromEnv() {
  const char* v = std::getenv("SIGIL_LOG_LEVEL");
  if (v == nullptr) return LogLevel::kInfo;
  if (std::strcmp(v, "debug") == 0) return LogLevel::kDebug;
  if (std::strcmp(v, "warn") == 0) return LogLevel::kWarn;
  if (std::strcmp(v, "error") == 0) return LogLevel::kError;
  return LogLevel::kInfo;
}

std::atomic<int>& Threshold() {
  static std::atomic<int> threshold{static_cast<int>(LevelFromEnv())};
  return threshold;
}

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return "DEBUG";
    case LogLevel::kInfo: return "INFO";
    case LogLevel::kWarn: return "WARN";
    case LogLevel::kError: return "ERROR";
  }
  return "INFO";
}

}  // namespace

bool LogEnabled(LogLevel level) { return static_cast<int>(level) >= Threshold().load(); }
void SetLogLevel(LogLevel level) { Threshold() = static_cast<int>(level); }

void LogLine(LogLevel level, std::string_view message) {
  static std::mutex mu;
  std::string line = FormatRfc3339(Clock::Real()->NowMicros()) + " " + LevelName(level) + " " +
                     std::string(message) + "\n";
  std::lock_guard<std::mutex> lock(mu);
  std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace sigil::core
