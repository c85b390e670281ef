// Transfer progress: counters shared by the worker threads, and a bar on
// stderr (bytes, rate, ETA) redrawn a few times a second while stderr is a
// terminal. Nothing is drawn otherwise.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

namespace sigil::cli {

// "0 B", "999 B", "1.0 KiB", "12.5 MiB", "3.20 GiB".
std::string FormatBytes(uint64_t bytes);
// "42s", "3m07s", "2h05m", "--" when unknown (negative).
std::string FormatDuration(double seconds);
// One line: "[#####     ]  45%  12.5 MiB / 27.8 MiB  5.1 MiB/s  ETA 3s".
// The bar is width characters wide; rate in bytes per second (<= 0: no
// rate and no ETA).
std::string FormatProgress(uint64_t done, uint64_t total, double rate, int width = 24);

// Thread-safe. The drawing thread runs from Start() until Finish() or
// destruction; when enabled is false nothing is drawn.
class Progress {
 public:
  Progress(std::string label, uint64_t total, bool enabled);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void Start();
  void Add(uint64_t bytes) { done_.fetch_add(bytes, std::memory_order_relaxed); }
  // Takes back bytes counted for a request that failed.
  void Undo(uint64_t bytes);
  // Counts bytes that needed no transfer (already on the server / on disk).
  void Skip(uint64_t bytes) { skipped_.fetch_add(bytes, std::memory_order_relaxed); }
  uint64_t done() const { return done_.load(); }
  // Stops drawing and leaves the last line on screen.
  void Finish();

  // Whether stderr is a terminal.
  static bool StderrIsTerminal();

 private:
  void Draw(bool final_line);

  std::string label_;
  uint64_t total_;
  bool enabled_;
  std::atomic<uint64_t> done_{0};
  std::atomic<uint64_t> skipped_{0};
  std::chrono::steady_clock::time_point start_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace sigil::cli
