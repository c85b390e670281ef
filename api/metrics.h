// Prometheus counters and gauges for /metrics. Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <tuple>

namespace sigil::api {

class Metrics {
 public:
  void CountRequest(const std::string& route, const std::string& method, int status);
  void AddBytesIn(uint64_t n) { bytes_in_ += n; }
  void AddBytesOut(uint64_t n) { bytes_out_ += n; }
  void SetBlobTotals(uint64_t blobs, uint64_t bytes) {
    blobs_ = blobs;
    blob_bytes_ = bytes;
  }

  // The exposition text; gauges sampled by the caller are passed in.
  std::string Render(uint64_t upload_sessions_open) const;

 private:
  mutable std::mutex mu_;
  std::map<std::tuple<std::string, std::string, int>, uint64_t> requests_;
  std::atomic<uint64_t> bytes_in_{0};
  std::atomic<uint64_t> bytes_out_{0};
  std::atomic<uint64_t> blobs_{0};
  std::atomic<uint64_t> blob_bytes_{0};
};

}  // namespace sigil::api
