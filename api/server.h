// The HTTP/1.1 server: sockets and request framing underneath, the Service
// on top.
//
// One thread per client connection, with blocking sockets and poll(2) for
// timeouts. A slow or stalled client therefore holds only its own thread:
// it never delays another connection, and a download's bytes go out with
// sendfile(2) from the thread that answered the request.
//
// Request bodies are buffered whole (up to max_body) except upload bodies
// with a Content-Length (PATCH and PUT on /api/v1/uploads/{id}, PUT
// /api/v1/blobs/{digest}): those are streamed to the route, which hashes and
// writes them as they arrive, so a blob of any size costs a fixed buffer.
//
// HTTPS (tls_cert and tls_key set): OpenSSL on the same threads; the
// handshake runs on the connection's own thread too.
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
  size_t max_body = 33 << 20;       // a buffered request body (413 above)
  size_t max_connections = 16384;   // open client connections (503 above)
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
  // Stops accepting, ends every connection and waits for their threads.
  void Shutdown();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sigil::api
