#include "api/metrics.h"

#include <sstream>

namespace sigil::api {

void Metrics::CountRequest(const std::string& route, const std::string& method, int status) {
  std::lock_guard<std::mutex> lock(mu_);
  ++requests_[{route, method, status}];
}

std::string Metrics::Render(uint64_t upload_sessions_open) const {
  std::ostringstream out;
  out << "# HELP sigil_http_requests_total HTTP requests by route, method and status.\n"
      << "# TYPE sigil_http_requests_total counter\n";
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [key, count] : requests_) {
      const auto& [route, method, status] = key;
      out << "sigil_http_requests_total{route=\"" << route << "\",method=\"" << method
          << "\",status=\"" << status << "\"} " << count << "\n";
    }
  }
  out << "# HELP sigil_http_bytes_received_total Request body bytes received.\n"
      << "# TYPE sigil_http_bytes_received_total counter\n"
      << "sigil_http_bytes_received_total " << bytes_in_.load() << "\n"
      << "# HELP sigil_http_bytes_sent_total Response body bytes sent.\n"
      << "# TYPE sigil_http_bytes_sent_total counter\n"
      << "sigil_http_bytes_sent_total " << bytes_out_.load() << "\n"
      << "# HELP sigil_upload_sessions_open Upload sessions not yet committed or expired.\n"
      << "# TYPE sigil_upload_sessions_open gauge\n"
      << "sigil_upload_sessions_open " << upload_sessions_open << "\n"
      << "# HELP sigil_blobs_stored Blobs in the blob store (refreshed every 30 s).\n"
      << "# TYPE sigil_blobs_stored gauge\n"
      << "sigil_blobs_stored " << blobs_.load() << "\n"
      << "# HELP sigil_blob_bytes_stored Bytes in the blob store (refreshed every 30 s).\n"
      << "# TYPE sigil_blob_bytes_stored gauge\n"
      << "sigil_blob_bytes_stored " << blob_bytes_.load() << "\n";
  return out.str();
}

}  // namespace sigil::api
