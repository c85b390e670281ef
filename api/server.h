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
//
// HTTPS (tls_cert and tls_key set): Pistache runs TLS, so downloads cannot
// bypass it; the sender threads then hand Pistache 1 MiB at a time and wait
// for each piece to be written (memory stays bounded; the encryption runs
// on the connection's reactor thread). Pistache performs TLS handshakes on
// its accept thread: a client that stalls its handshake delays every new
// connection, so a server reachable by untrusted clients belongs behind a
// TLS-terminating proxy (docs/deploy.md).
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
  // PEM files; both empty: plain HTTP.
  std::string tls_cert;
  std::string tls_key;
};

class Server {
 public:
  Server(Service* service, Metrics* metrics, ServerOptions options);
  ~Server();

  // Binds and starts serving in background threads. An unreadable
  // certificate or key, or a key that does not match the certificate, is
  // kInvalidArgument naming the file.
  core::Status Start();
  // The bound port (useful when started on port 0).
  uint16_t port() const;
  void Shutdown();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sigil::api
