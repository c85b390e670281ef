// Minimal leveled logging to stderr, one line per message, thread-safe.
// Level from SIGIL_LOG_LEVEL (debug|info|warn|error), default info.
//   SIGIL_LOG(kInfo) << "listening on " << addr;
#pragma once

#include <sstream>
#include <string_view>

namespace sigil::core {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

bool LogEnabled(LogLevel level);
void SetLogLevel(LogLevel level);
void LogLine(LogLevel level, std::string_view message);

class LogMessage {
 public:
  explicit LogMessage(LogLevel level) : level_(level) {}
  ~LogMessage() { LogLine(level_, stream_.str()); }
  std::ostringstream& stream() { return stream_; }

 private:
  LogLevel level_;
  std::ostringstream stream_;
};

// Swallows the stream expression so SIGIL_LOG is one expression, safe in
// an unbraced if/else.
struct LogVoidify {
  void operator&(std::ostream&) {}
};

}  // namespace sigil::core

#define SIGIL_LOG(level)                                               \
  !::sigil::core::LogEnabled(::sigil::core::LogLevel::level)           \
      ? (void)0                                                        \
      : ::sigil::core::LogVoidify() &                                  \
            ::sigil::core::LogMessage(::sigil::core::LogLevel::level).stream()
