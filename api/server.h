// The HTTP server: Pistache 0.0.5 underneath, the Service on top.
//
// Pistache parses requests (bodies are buffered whole, hence the bounded
// chunk size) and sends JSON answers. Blob and file downloads bypass its
// writer: their headers and bytes go out with sendfile(2) from a pool of
// sender threads on a duplicate of the connection's socket, because
// Pistache's own file serving has no Range/offset support, its streamed
// responses are chunked (no Content-Length), and a slow reader would
// otherwise occupy a reactor thread. Clients must not pipeline requests
// behind a download (curl never does).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "api/metrics.h"
#include "api/service.h"
#include "core/status.h"

namespace sigil::api {

struct ServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 7070;
  int threads = 4;                      // Pistache reactor threads
  int sender_threads = 32;              // concurrent downloads in flight
  size_t max_request_size = 33 << 20;   // headers + body
};

class Server {
 public:
  Server(Service* service, Metrics* metrics, ServerOptions options);
  ~Server();

  // Binds and starts serving in background threads.
  core::Status Start();
  // The bound port (useful when started on port 0).
  uint16_t port() const;
  void Shutdown();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sigil::api
