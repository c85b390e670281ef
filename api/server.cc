#include "api/server.h"

#include <poll.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include <pistache/endpoint.h>
#include <pistache/http.h>
#include <pistache/peer.h>

#include "core/fs.h"
#include "core/log.h"

namespace sigil::api {
namespace {

using namespace Pistache;

constexpr int kSendIdleTimeoutMs = 60'000;

const char* ReasonPhrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 206: return "Partial Content";
    case 404: return "Not Found";
    case 416: return "Range Not Satisfiable";
    default: return "OK";
  }
}

// One download: the response head and the byte range, written to a
// duplicate of the client's socket.
struct SendJob {
  core::UniqueFd socket;
  std::string head;
  std::unique_ptr<storage::BlobReader> file;
  uint64_t offset = 0;
  uint64_t length = 0;
  bool close_after = false;
  // HTTPS: the bytes go through Pistache, which encrypts them.
  std::shared_ptr<Tcp::Peer> tls_peer;
};

// Waits until the non-blocking socket is writable; false on timeout/hangup.
bool WaitWritable(int fd) {
  struct pollfd p {};
  p.fd = fd;
  p.events = POLLOUT;
  while (true) {
    int r = ::poll(&p, 1, kSendIdleTimeoutMs);
    if (r < 0 && errno == EINTR) continue;
    return r > 0 && (p.revents & POLLOUT) != 0 && (p.revents & (POLLERR | POLLHUP)) == 0;
  }
}

bool WriteFully(int fd, const char* data, size_t n, Metrics* metrics, bool count) {
  while (n > 0) {
    ssize_t w = ::send(fd, data, n, MSG_NOSIGNAL);
    if (w > 0) {
      data += w;
      n -= static_cast<size_t>(w);
      if (count) metrics->AddBytesOut(static_cast<uint64_t>(w));
      continue;
    }
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && WaitWritable(fd)) continue;
    return false;
  }
  return true;
}

bool SendBody(SendJob& job, Metrics* metrics) {
  int sock = job.socket.get();
  uint64_t remaining = job.length;
  uint64_t offset = job.offset;
  int file_fd = job.file->fd();
  if (file_fd >= 0) {
    while (remaining > 0) {
      off_t off = static_cast<off_t>(offset);
      size_t want = static_cast<size_t>(std::min<uint64_t>(remaining, 8u << 20));
      ssize_t n = ::sendfile(sock, file_fd, &off, want);
      if (n > 0) {
        offset += static_cast<uint64_t>(n);
        remaining -= static_cast<uint64_t>(n);
        metrics->AddBytesOut(static_cast<uint64_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && WaitWritable(sock)) continue;
      return false;  // the client went away, or the file shrank (n == 0)
    }
    return true;
  }
  std::vector<char> buf(1 << 20);
  while (remaining > 0) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(remaining, buf.size()));
    auto n = job.file->ReadAt(offset, buf.data(), want);
    if (!n.ok() || *n == 0) return false;
    if (!WriteFully(sock, buf.data(), *n, metrics, true)) return false;
    offset += *n;
    remaining -= *n;
  }
  return true;
}

// Hands bytes to Pistache, which encrypts and writes them on the
// connection's reactor thread, and waits until they are written: one piece
// in flight per download keeps a slow reader from filling memory.
bool PeerSend(Tcp::Peer& peer, std::string bytes) {
  auto written = std::make_shared<std::promise<bool>>();
  std::future<bool> done = written->get_future();
  const size_t n = bytes.size();
  try {
    peer.send(RawBuffer(std::move(bytes), n))
        .then([written](ssize_t) { written->set_value(true); },
              [written](std::exception_ptr) { written->set_value(false); });
  } catch (const std::exception&) {
    return false;
  }
  if (done.wait_for(std::chrono::milliseconds(kSendIdleTimeoutMs)) != std::future_status::ready) {
    return false;
  }
  return done.get();
}

bool SendTls(SendJob& job, Metrics* metrics) {
  if (!PeerSend(*job.tls_peer, job.head)) return false;
  if (job.file == nullptr) return true;
  uint64_t remaining = job.length;
  uint64_t offset = job.offset;
  while (remaining > 0) {
    std::string buf(static_cast<size_t>(std::min<uint64_t>(remaining, 1 << 20)), '\0');
    auto n = job.file->ReadAt(offset, buf.data(), buf.size());
    if (!n.ok() || *n == 0) return false;
    buf.resize(*n);
    if (!PeerSend(*job.tls_peer, std::move(buf))) return false;
    metrics->AddBytesOut(*n);
    offset += *n;
    remaining -= *n;
  }
  return true;
}

class SenderPool {
 public:
  SenderPool(Metrics* metrics, int threads) : metrics_(metrics) {
    for (int i = 0; i < threads; ++i) workers_.emplace_back([this] { Run(); });
  }
  ~SenderPool() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
  }

  void Submit(SendJob job) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.push_back(std::move(job));
    }
    cv_.notify_one();
  }

 private:
  void Run() {
    while (true) {
      SendJob job;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;
        job = std::move(queue_.front());
        queue_.pop_front();
      }
      bool ok = false;
      if (job.tls_peer != nullptr) {
        ok = SendTls(job, metrics_);
      } else {
        ok = WriteFully(job.socket.get(), job.head.data(), job.head.size(), metrics_, false);
        if (ok && job.file != nullptr) ok = SendBody(job, metrics_);
      }
      // On failure the connection is unusable (a partial response): close it
      // for Pistache too, which then frees the peer.
      if (!ok || job.close_after) ::shutdown(job.socket.get(), SHUT_RDWR);
    }
  }

  Metrics* metrics_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<SendJob> queue_;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

// A response header of any name: Pistache writes only typed headers, so raw
// ones added to a response would be dropped silently.
class AnyHeader : public Http::Header::Header {
 public:
  AnyHeader(std::string name, std::string value)
      : name_(std::move(name)), value_(std::move(value)) {}
  const char* name() const override { return name_.c_str(); }
  uint64_t hash() const override { return Http::Header::detail::hash(name_.c_str()); }
  void parse(const std::string& data) override { value_ = data; }
  void write(std::ostream& os) const override { os << value_; }

 private:
  std::string name_;
  std::string value_;
};

std::string Lowercase(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

class Handler : public Http::Handler {
 public:
  HTTP_PROTOTYPE(Handler)

  Handler(Service* service, Metrics* metrics, SenderPool* sender, bool tls)
      : service_(service), metrics_(metrics), sender_(sender), tls_(tls) {}

  void onRequest(const Http::Request& req, Http::ResponseWriter writer) override {
    HttpRequest request;
    request.method = Http::methodString(req.method());
    request.path = req.resource();
    std::string query = req.query().as_str();
    if (!query.empty() && query[0] == '?') query.erase(0, 1);
    request.query = ParseQuery(query);
    for (const auto& [name, raw] : req.headers().rawList()) {
      request.headers[Lowercase(name)] = raw.value();
    }
    // Pistache parses some headers into typed ones and drops them from the
    // raw list; Range is needed as sent.
    if (auto range = req.headers().tryGetRaw("Range")) request.headers["range"] = range->value();
    request.body = req.body();
    try {
      request.remote_address = req.address().host();
    } catch (const std::exception&) {
      request.remote_address = "unknown";
    }
    metrics_->AddBytesIn(request.body.size());

    std::string route;
    HttpResponse response;
    try {
      response = service_->Handle(request, &route);
    } catch (const std::exception& e) {
      response = ErrorResponse(core::Internal(std::string("unexpected error: ") + e.what()));
    }
    metrics_->CountRequest(route, request.method, response.status);

    if (response.file != nullptr) {
      SendFile(req, writer, request, std::move(response));
      return;
    }
    try {
      for (const auto& [name, value] : response.headers) {
        writer.headers().add(std::make_shared<AnyHeader>(name, value));
      }
      if (!response.content_type.empty()) {
        writer.headers().add(std::make_shared<AnyHeader>("Content-Type", response.content_type));
      }
      // HTTP/1.1 connections stay open unless the client says otherwise;
      // Pistache closes them when the request carries no Connection header.
      std::string connection = Lowercase(request.Header("connection"));
      if (req.version() == Http::Version::Http11 && connection != "close") {
        writer.headers().remove<Http::Header::Connection>();
        writer.headers().add<Http::Header::Connection>(Http::ConnectionControl::KeepAlive);
      }
      metrics_->AddBytesOut(response.body.size());
      if (request.method == "HEAD") {
        writer.send(static_cast<Http::Code>(response.status));
      } else {
        writer.send(static_cast<Http::Code>(response.status), response.body);
      }
    } catch (const std::exception& e) {
      SIGIL_LOG(kDebug) << "sending a response failed: " << e.what();
    }
  }

 private:
  void SendFile(const Http::Request& req, Http::ResponseWriter& writer, const HttpRequest& request,
                HttpResponse response) {
    std::shared_ptr<Tcp::Peer> peer;
    try {
      peer = writer.peer();
    } catch (const std::exception&) {
      return;  // the client is gone
    }
    if (peer == nullptr) return;
    SendJob job;
    job.socket.Reset(::dup(peer->fd()));
    if (!job.socket.valid()) return;
    if (tls_) job.tls_peer = peer;
    std::string head = "HTTP/1.1 " + std::to_string(response.status) + " " +
                       ReasonPhrase(response.status) + "\r\n";
    head += "Content-Type: " + response.content_type + "\r\n";
    head += "Content-Length: " + std::to_string(response.file_length) + "\r\n";
    for (const auto& [name, value] : response.headers) head += name + ": " + value + "\r\n";
    std::string connection = Lowercase(request.Header("connection"));
    job.close_after = connection == "close" || req.version() == Http::Version::Http10;
    if (job.close_after) head += "Connection: close\r\n";
    head += "\r\n";
    job.head = std::move(head);
    if (!response.head_only && response.file_length > 0) {
      job.file = std::move(response.file);
      job.offset = response.file_offset;
      job.length = response.file_length;
    }
    sender_->Submit(std::move(job));
  }

  Service* service_;
  Metrics* metrics_;
  SenderPool* sender_;
  bool tls_;
};

}  // namespace

struct Server::Impl {
  Service* service;
  Metrics* metrics;
  ServerOptions options;
  std::unique_ptr<SenderPool> sender;
  std::unique_ptr<Http::Endpoint> endpoint;
};

Server::Server(Service* service, Metrics* metrics, ServerOptions options)
    : impl_(std::make_unique<Impl>()) {
  impl_->service = service;
  impl_->metrics = metrics;
  impl_->options = std::move(options);
}

Server::~Server() { Shutdown(); }

core::Status Server::Start() {
  const ServerOptions& o = impl_->options;
  const bool tls = !o.tls_cert.empty() || !o.tls_key.empty();
  if (tls) {
    if (o.tls_cert.empty() || o.tls_key.empty()) {
      return core::InvalidArgument("TLS needs both a certificate and a key");
    }
    // Pistache's own messages for these are OpenSSL error strings.
    for (const auto& [what, path] : {std::pair{"certificate", o.tls_cert}, std::pair{"key", o.tls_key}}) {
      auto text = core::ReadFile(path, 1 << 20);
      if (!text.ok()) {
        return core::InvalidArgument(std::string("TLS ") + what + " " + path + ": " + text.status().message());
      }
    }
  }
  try {
    Address address(impl_->options.host, Port(impl_->options.port));
    impl_->sender = std::make_unique<SenderPool>(impl_->metrics, impl_->options.sender_threads);
    impl_->endpoint = std::make_unique<Http::Endpoint>(address);
    auto opts = Http::Endpoint::options()
                    .threads(impl_->options.threads)
                    .flags(Tcp::Options::ReuseAddr)
                    .maxRequestSize(impl_->options.max_request_size)
                    .maxResponseSize(64 << 20)
                    .headerTimeout(std::chrono::seconds(60))
                    .bodyTimeout(std::chrono::seconds(300))
                    .keepaliveTimeout(std::chrono::seconds(120));
    impl_->endpoint->init(opts);
    impl_->endpoint->setHandler(
        std::make_shared<Handler>(impl_->service, impl_->metrics, impl_->sender.get(), tls));
    if (tls) {
      try {
        // No passphrase callback: OpenSSL's default would prompt on a
        // terminal; an encrypted key fails to load instead.
        impl_->endpoint->useSSL(o.tls_cert, o.tls_key, false,
                                [](char*, int, int, void*) { return 0; });
      } catch (const std::exception& e) {
        impl_->endpoint.reset();
        impl_->sender.reset();
        std::string why = e.what();
        while (!why.empty() && std::isspace(static_cast<unsigned char>(why.back()))) why.pop_back();
        return core::InvalidArgument("TLS certificate " + o.tls_cert + " and key " + o.tls_key +
                                     " cannot be used (PEM files, the key unencrypted and matching the "
                                     "certificate): " + why);
      }
    }
    impl_->endpoint->serveThreaded();
  } catch (const std::exception& e) {
    impl_->endpoint.reset();
    return core::Unavailable("cannot listen on " + impl_->options.host + ":" +
                             std::to_string(impl_->options.port) + ": " + e.what());
  }
  return core::OkStatus();
}

uint16_t Server::port() const {
  if (impl_->endpoint == nullptr) return 0;
  return static_cast<uint16_t>(impl_->endpoint->getPort());
}

void Server::Shutdown() {
  if (impl_->endpoint != nullptr) {
    impl_->endpoint->shutdown();
    impl_->endpoint.reset();
  }
  impl_->sender.reset();
}

}  // namespace sigil::api
