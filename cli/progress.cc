#include "cli/progress.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>

namespace sigil::cli {

std::string FormatBytes(uint64_t bytes) {
  static const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
  if (bytes < 1024) return std::to_string(bytes) + " B";
  double v = static_cast<double>(bytes) / 1024.0;
  int unit = 0;
  while (v >= 1024.0 && unit < 4) {
    v /= 1024.0;
    ++unit;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), unit >= 2 && v < 10.0 ? "%.2f %s" : "%.1f %s", v, kUnits[unit]);
  return buf;
}

std::string FormatDuration(double seconds) {
  if (seconds < 0 || !std::isfinite(seconds)) return "--";
  auto s = static_cast<uint64_t>(std::llround(seconds));
  char buf[32];
  if (s < 60) {
    std::snprintf(buf, sizeof(buf), "%llus", static_cast<unsigned long long>(s));
  } else if (s < 3600) {
    std::snprintf(buf, sizeof(buf), "%llum%02llus", static_cast<unsigned long long>(s / 60),
                  static_cast<unsigned long long>(s % 60));
  } else {
    std::snprintf(buf, sizeof(buf), "%lluh%02llum", static_cast<unsigned long long>(s / 3600),
                  static_cast<unsigned long long>((s % 3600) / 60));
  }
  return buf;
}

std::string FormatProgress(uint64_t done, uint64_t total, double rate, int width) {
  if (done > total) done = total;
  double fraction = total == 0 ? 1.0 : static_cast<double>(done) / static_cast<double>(total);
  int filled = static_cast<int>(fraction * width);
  std::string line = "[" + std::string(filled, '#') + std::string(width - filled, ' ') + "]";
  char pct[16];
  std::snprintf(pct, sizeof(pct), " %3d%%", static_cast<int>(fraction * 100.0));
  line += pct;
  line += "  " + FormatBytes(done) + " / " + FormatBytes(total);
  if (rate > 0) {
    line += "  " + FormatBytes(static_cast<uint64_t>(rate)) + "/s";
    line += "  ETA " + FormatDuration(static_cast<double>(total - done) / rate);
  }
  return line;
}

Progress::Progress(std::string label, uint64_t total, bool enabled)
    : label_(std::move(label)), total_(total), enabled_(enabled) {}

Progress::~Progress() { Finish(); }

void Progress::Undo(uint64_t bytes) {
  uint64_t cur = done_.load(std::memory_order_relaxed);
  while (!done_.compare_exchange_weak(cur, cur > bytes ? cur - bytes : 0,
                                      std::memory_order_relaxed)) {
  }
}

bool Progress::StderrIsTerminal() { return ::isatty(STDERR_FILENO) == 1; }

void Progress::Start() {
  start_ = std::chrono::steady_clock::now();
  if (!enabled_ || thread_.joinable()) return;
  thread_ = std::thread([this] {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stop_) {
      cv_.wait_for(lock, std::chrono::milliseconds(200));
      if (!stop_) Draw(false);
    }
  });
}

void Progress::Finish() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) return;
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
    Draw(true);
  }
}

void Progress::Draw(bool final_line) {
  double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  uint64_t done = done_.load(std::memory_order_relaxed);
  uint64_t skipped = skipped_.load(std::memory_order_relaxed);
  double rate = elapsed > 0.5 ? static_cast<double>(done) / elapsed : 0.0;
  // Skipped bytes count towards the bar but not the rate.
  std::string line = label_ + " " + FormatProgress(done + skipped, total_, rate);
  std::fprintf(stderr, "\r%s\x1b[K%s", line.c_str(), final_line ? "\n" : "");
  std::fflush(stderr);
}

}  // namespace sigil::cli
