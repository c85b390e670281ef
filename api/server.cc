#include "api/server.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_set>
#include <vector>

#include "core/fs.h"
#include "core/log.h"

namespace sigil::api {
namespace {

constexpr size_t kMaxHead = 64 << 10;      // request line and headers (431 above)
constexpr size_t kMaxHeaders = 128;        // header fields (431 above)
constexpr size_t kMaxChunkLine = 1 << 10;  // a chunked body's size line
constexpr int kHeadTimeoutMs = 60'000;     // from a request's first byte to its last header
constexpr int kIdleTimeoutMs = 120'000;    // a kept-alive connection between requests
constexpr int kIoTimeoutMs = 60'000;       // no progress reading a body or writing a response
constexpr int kLingerMs = 2'000;           // draining a closed connection's unread input
constexpr size_t kLingerBytes = 64 << 20;
#if defined(__SANITIZE_ADDRESS__)
constexpr size_t kThreadStack = 8 << 20;
#else
constexpr size_t kThreadStack = 1 << 20;
#endif

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

const char* ReasonPhrase(int status) {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 416: return "Range Not Satisfiable";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    case 507: return "Insufficient Storage";
    default: return status < 400 ? "OK" : "Error";
  }
}

std::string Lowercase(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool IsTokenChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

// An error the server answers itself, before or instead of a route.
HttpResponse ProtocolError(int status, const std::string& reason, const std::string& message) {
  HttpResponse r;
  r.status = status;
  r.body = core::ErrorJson(core::InvalidArgument(message, reason));
  return r;
}

// A client connection: a socket, with TLS over it when configured. The
// socket is blocking; reads wait with poll so each has its own deadline.
class Conn {
 public:
  Conn(int fd, SSL* ssl) : fd_(fd), ssl_(ssl) {}
  ~Conn() {
    if (ssl_ != nullptr) SSL_free(ssl_);
  }
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  // Up to n bytes: the count, 0 at the end of the stream, -1 on an error or
  // when nothing came within timeout_ms.
  ssize_t ReadSome(char* buf, size_t n, int timeout_ms) {
    while (true) {
      if (ssl_ == nullptr || SSL_pending(ssl_) == 0) {
        struct pollfd p {};
        p.fd = fd_;
        p.events = POLLIN;
        int r = ::poll(&p, 1, timeout_ms);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
      }
      if (ssl_ == nullptr) {
        ssize_t got = ::recv(fd_, buf, n, 0);
        if (got < 0 && errno == EINTR) continue;
        return got < 0 ? -1 : got;
      }
      int got = SSL_read(ssl_, buf, static_cast<int>(std::min<size_t>(n, 1 << 30)));
      if (got > 0) return got;
      int err = SSL_get_error(ssl_, got);
      ERR_clear_error();
      if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) continue;
      return err == SSL_ERROR_ZERO_RETURN ? 0 : -1;
    }
  }

  bool WriteAll(const char* data, size_t n) {
    while (n > 0) {
      ssize_t w;
      if (ssl_ == nullptr) {
        w = ::send(fd_, data, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
      } else {
        int r = SSL_write(ssl_, data, static_cast<int>(std::min<size_t>(n, 1 << 30)));
        if (r <= 0) ERR_clear_error();
        w = r;
      }
      if (w <= 0) return false;  // gone, or no progress within the send timeout
      data += w;
      n -= static_cast<size_t>(w);
    }
    return true;
  }

  // Sends length bytes of file from offset: sendfile(2) on plain sockets.
  bool SendFile(storage::BlobReader& file, uint64_t offset, uint64_t length, Metrics* metrics) {
    if (ssl_ == nullptr && file.fd() >= 0) {
      while (length > 0) {
        off_t off = static_cast<off_t>(offset);
        size_t want = static_cast<size_t>(std::min<uint64_t>(length, 8u << 20));
        ssize_t n = ::sendfile(fd_, file.fd(), &off, want);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;  // gone, stalled past the timeout, or the file shrank
        offset += static_cast<uint64_t>(n);
        length -= static_cast<uint64_t>(n);
        metrics->AddBytesOut(static_cast<uint64_t>(n));
      }
      return true;
    }
    std::vector<char> buf(static_cast<size_t>(std::min<uint64_t>(length, 1 << 20)));
    while (length > 0) {
      size_t want = static_cast<size_t>(std::min<uint64_t>(length, buf.size()));
      auto n = file.ReadAt(offset, buf.data(), want);
      if (!n.ok() || *n == 0) return false;
      if (!WriteAll(buf.data(), *n)) return false;
      metrics->AddBytesOut(*n);
      offset += *n;
      length -= *n;
    }
    return true;
  }

 private:
  int fd_;
  SSL* ssl_;
};

// The bytes read from a connection and not yet consumed; what a request
// reads past its own end belongs to the next one.
struct InputBuffer {
  std::string data;
  size_t pos = 0;

  size_t available() const { return data.size() - pos; }
  void Compact() {
    if (pos == 0) return;
    data.erase(0, pos);
    pos = 0;
  }
  // Reads more from the connection; false at its end, on an error or timeout.
  bool Fill(Conn& conn, int timeout_ms) {
    Compact();
    char buf[16 << 10];
    ssize_t n = conn.ReadSome(buf, sizeof(buf), timeout_ms);
    if (n <= 0) return false;
    data.append(buf, static_cast<size_t>(n));
    return true;
  }
  // Between requests: an idle connection keeps no buffer.
  void Release() {
    if (available() > 0) return;
    std::string().swap(data);
    pos = 0;
  }
};

struct Head {
  std::string method;
  std::string target;
  bool http10 = false;
  std::vector<std::pair<std::string, std::string>> fields;  // names lowercased
};

// Parses a request line and header fields (the text before the blank line).
// Returns the status to answer with on failure, 0 on success.
int ParseHead(std::string_view text, Head* head, std::string* why) {
  size_t eol = text.find("\r\n");
  std::string_view line = text.substr(0, eol);
  size_t sp1 = line.find(' ');
  size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp1 == std::string_view::npos || sp2 == std::string_view::npos || sp1 == 0 ||
      line.find(' ', sp2 + 1) != std::string_view::npos) {
    *why = "malformed request line";
    return 400;
  }
  head->method = std::string(line.substr(0, sp1));
  head->target = std::string(line.substr(sp1 + 1, sp2 - sp1 - 1));
  std::string_view version = line.substr(sp2 + 1);
  for (char c : head->method) {
    if (!IsTokenChar(c)) {
      *why = "malformed request method";
      return 400;
    }
  }
  if (head->target.empty() || head->target[0] != '/') {
    *why = "the request target must be a path";
    return 400;
  }
  for (unsigned char c : head->target) {
    if (c <= 0x20 || c == 0x7f) {
      *why = "malformed request target";
      return 400;
    }
  }
  if (version == "HTTP/1.0") {
    head->http10 = true;
  } else if (version != "HTTP/1.1") {
    *why = "only HTTP/1.1 and HTTP/1.0 are served";
    return version.substr(0, 5) == "HTTP/" ? 505 : 400;
  }
  std::string_view rest = eol == std::string_view::npos ? std::string_view() : text.substr(eol + 2);
  while (!rest.empty()) {
    size_t end = rest.find("\r\n");
    std::string_view field = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 2);
    if (field.empty()) continue;
    if (head->fields.size() >= kMaxHeaders) {
      *why = "more than " + std::to_string(kMaxHeaders) + " header fields";
      return 431;
    }
    size_t colon = field.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      *why = "malformed header field";
      return 400;
    }
    std::string_view name = field.substr(0, colon);
    for (char c : name) {
      if (!IsTokenChar(c)) {
        *why = "malformed header field name";
        return 400;
      }
    }
    std::string_view value = Trim(field.substr(colon + 1));
    for (unsigned char c : value) {
      if ((c < 0x20 && c != '\t') || c == 0x7f) {
        *why = "control character in a header field";
        return 400;
      }
    }
    head->fields.emplace_back(Lowercase(name), std::string(value));
  }
  return 0;
}

// Routes whose bodies stream to storage instead of being buffered.
bool IsUploadBody(const std::string& method, std::string_view path) {
  constexpr std::string_view kUploads = "/api/v1/uploads/";
  constexpr std::string_view kBlobs = "/api/v1/blobs/";
  if ((method == "PATCH" || method == "PUT") && path.substr(0, kUploads.size()) == kUploads) return true;
  return method == "PUT" && path.substr(0, kBlobs.size()) == kBlobs;
}

// A request body with a Content-Length, read as the route asks for it.
class LengthBody : public storage::ChunkSource {
 public:
  LengthBody(Conn* conn, InputBuffer* in, uint64_t length, Metrics* metrics, bool send_continue)
      : conn_(conn), in_(in), remaining_(length), metrics_(metrics), send_continue_(send_continue) {}

  core::Result<size_t> Read(char* buf, size_t n) override {
    if (remaining_ == 0 || n == 0) return size_t{0};
    if (send_continue_) {
      send_continue_ = false;
      static constexpr char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";
      if (!conn_->WriteAll(kContinue, sizeof(kContinue) - 1)) return Gone();
    }
    size_t want = static_cast<size_t>(std::min<uint64_t>(n, remaining_));
    size_t got = 0;
    if (in_->available() > 0) {
      got = std::min(want, in_->available());
      std::memcpy(buf, in_->data.data() + in_->pos, got);
      in_->pos += got;
    } else {
      ssize_t r = conn_->ReadSome(buf, want, kIoTimeoutMs);
      if (r <= 0) return Gone();
      got = static_cast<size_t>(r);
    }
    remaining_ -= got;
    metrics_->AddBytesIn(got);
    return got;
  }

  bool finished() const { return remaining_ == 0; }

 private:
  core::Status Gone() {
    return core::Unavailable("the client stopped sending the request body with " + std::to_string(remaining_) +
                                 " bytes to go",
                             "BODY_INCOMPLETE");
  }

  Conn* conn_;
  InputBuffer* in_;
  uint64_t remaining_;
  Metrics* metrics_;
  bool send_continue_;
};

// Reads a chunked body whole into out; 0 on success, else the status to
// answer with (the connection is then closed).
int ReadChunked(Conn& conn, InputBuffer& in, size_t limit, std::string* out, std::string* why) {
  auto line = [&](std::string* text) {
    while (true) {
      size_t eol = in.data.find("\r\n", in.pos);
      if (eol != std::string::npos) {
        *text = in.data.substr(in.pos, eol - in.pos);
        in.pos = eol + 2;
        return text->size() <= kMaxChunkLine;
      }
      if (in.available() > kMaxChunkLine || !in.Fill(conn, kIoTimeoutMs)) return false;
    }
  };
  while (true) {
    std::string size_line;
    if (!line(&size_line)) {
      *why = "malformed or incomplete chunked body";
      return 400;
    }
    std::string_view hex = Trim(std::string_view(size_line).substr(0, size_line.find(';')));
    if (hex.empty() || hex.size() > 15) {
      *why = "malformed chunk size";
      return 400;
    }
    uint64_t size = 0;
    for (char c : hex) {
      if (!std::isxdigit(static_cast<unsigned char>(c))) {
        *why = "malformed chunk size";
        return 400;
      }
      size = size * 16 + static_cast<uint64_t>(std::isdigit(static_cast<unsigned char>(c))
                                                   ? c - '0'
                                                   : std::tolower(static_cast<unsigned char>(c)) - 'a' + 10);
    }
    if (size == 0) break;
    if (size > limit - out->size()) {
      *why = "request body larger than " + std::to_string(limit) + " bytes";
      return 413;
    }
    while (in.available() < size + 2) {
      if (!in.Fill(conn, kIoTimeoutMs)) {
        *why = "incomplete chunked body";
        return 400;
      }
    }
    out->append(in.data, in.pos, static_cast<size_t>(size));
    in.pos += static_cast<size_t>(size);
    if (in.data.compare(in.pos, 2, "\r\n") != 0) {
      *why = "malformed chunked body";
      return 400;
    }
    in.pos += 2;
  }
  // Trailer fields, ignored, up to the blank line.
  for (int i = 0; i <= static_cast<int>(kMaxHeaders); ++i) {
    std::string trailer;
    if (!line(&trailer)) {
      *why = "malformed chunked body trailer";
      return 400;
    }
    if (trailer.empty()) return 0;
  }
  *why = "too many trailer fields";
  return 431;
}

}  // namespace

struct Server::Impl {
  Service* service = nullptr;
  Metrics* metrics = nullptr;
  ServerOptions options;
  SSL_CTX* tls = nullptr;
  int listen_fd = -1;
  uint16_t bound_port = 0;
  std::atomic<bool> stopping{false};
  std::thread acceptor;

  std::mutex mu;
  std::condition_variable idle;
  std::unordered_set<int> live;  // connections' sockets, while their threads run

  struct ConnectionStart {
    Impl* impl;
    int fd;
    std::string remote;
  };

  ~Impl() {
    if (tls != nullptr) SSL_CTX_free(tls);
  }

  void AcceptLoop();
  void Serve(int fd, const std::string& remote);
  void LingeringClose(int fd);
  // False when the connection must close after this exchange.
  bool ServeOne(Conn& conn, InputBuffer& in, const std::string& remote);
  bool Respond(Conn& conn, const HttpResponse& response, const std::string& method, bool keep_alive);
};

void Server::Impl::AcceptLoop() {
  bool warned_fds = false;
  while (!stopping.load()) {
    sockaddr_storage addr {};
    socklen_t len = sizeof(addr);
    int fd = ::accept4(listen_fd, reinterpret_cast<sockaddr*>(&addr), &len, SOCK_CLOEXEC);
    if (fd < 0) {
      if (stopping.load()) return;
      if (errno == EMFILE || errno == ENFILE) {
        if (!warned_fds) SIGIL_LOG(kWarn) << "out of file descriptors: new connections wait";
        warned_fds = true;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      } else if (errno != EINTR && errno != ECONNABORTED) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
      continue;
    }
    char host[INET6_ADDRSTRLEN] = "unknown";
    if (addr.ss_family == AF_INET) {
      ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&addr)->sin_addr, host, sizeof(host));
    } else if (addr.ss_family == AF_INET6) {
      ::inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(&addr)->sin6_addr, host, sizeof(host));
    }
    {
      std::lock_guard<std::mutex> lock(mu);
      if (live.size() >= options.max_connections) {
        static constexpr char kBusy[] =
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\n"
            "Content-Length: 80\r\n\r\n"
            "{\"error\":{\"code\":\"TOO_MANY_CONNECTIONS\",\"message\":\"too many open connections\"}}";
        ::send(fd, kBusy, sizeof(kBusy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        ::close(fd);
        continue;
      }
      live.insert(fd);
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    // Blocking calls that poll does not guard (sends, the TLS handshake)
    // give up after this long without progress.
    timeval tv {};
    tv.tv_sec = kIoTimeoutMs / 1000;
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));

    auto* start = new ConnectionStart{this, fd, host};
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, kThreadStack);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t thread;
    int rc = pthread_create(
        &thread, &attr,
        [](void* arg) -> void* {
          std::unique_ptr<ConnectionStart> s(static_cast<ConnectionStart*>(arg));
          s->impl->Serve(s->fd, s->remote);
          return nullptr;
        },
        start);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
      delete start;
      SIGIL_LOG(kWarn) << "cannot start a connection thread: " << std::strerror(rc);
      std::lock_guard<std::mutex> lock(mu);
      live.erase(fd);
      ::close(fd);
      idle.notify_all();
    }
  }
}

void Server::Impl::Serve(int fd, const std::string& remote) {
  // A write to a closed TLS connection would raise SIGPIPE (plain sockets
  // use MSG_NOSIGNAL): blocked here, the write fails with EPIPE instead.
  sigset_t pipe;
  sigemptyset(&pipe);
  sigaddset(&pipe, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
  {
    SSL* ssl = nullptr;
    bool ready = true;
    if (tls != nullptr) {
      ssl = SSL_new(tls);
      ready = ssl != nullptr && SSL_set_fd(ssl, fd) == 1 && SSL_accept(ssl) == 1;
      ERR_clear_error();
    }
    Conn conn(fd, ssl);
    InputBuffer in;
    while (ready && !stopping.load() && ServeOne(conn, in, remote)) {
    }
  }
  LingeringClose(fd);
  std::lock_guard<std::mutex> lock(mu);
  live.erase(fd);
  ::close(fd);
  idle.notify_all();
}

// Closing a socket with unread bytes in it makes the kernel reset the
// connection, and a reset can destroy the answer still on its way (a 507
// or 413 sent before the client finished its body). So the write side is
// shut first and what the client still sends is read and dropped, briefly.
void Server::Impl::LingeringClose(int fd) {
  if (::shutdown(fd, SHUT_WR) != 0) return;
  const int64_t deadline = NowMs() + kLingerMs;
  char sink[16 << 10];
  size_t drained = 0;
  while (drained < kLingerBytes) {
    int64_t left = deadline - NowMs();
    if (left <= 0) return;
    struct pollfd p {};
    p.fd = fd;
    p.events = POLLIN;
    int r = ::poll(&p, 1, static_cast<int>(left));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return;
    ssize_t n = ::recv(fd, sink, sizeof(sink), 0);
    if (n <= 0) return;
    drained += static_cast<size_t>(n);
  }
}

bool Server::Impl::ServeOne(Conn& conn, InputBuffer& in, const std::string& remote) {
  // The head: everything up to the blank line.
  in.Release();
  int64_t deadline = -1;
  size_t head_end = std::string::npos;
  size_t searched = 0;  // bytes after in.pos already searched (Fill moves in.pos)
  while (true) {
    // Blank lines before a request line are skipped (RFC 9112, 2.2).
    while (in.available() >= 2 && in.data.compare(in.pos, 2, "\r\n") == 0) {
      in.pos += 2;
      searched = 0;
    }
    head_end = in.data.find("\r\n\r\n", in.pos + (searched > 3 ? searched - 3 : 0));
    if (head_end != std::string::npos) break;
    searched = in.available();
    if (in.available() >= kMaxHead) {
      Respond(conn, ProtocolError(431, "HEADERS_TOO_LARGE",
                                  "request line and headers larger than " + std::to_string(kMaxHead) + " bytes"),
              "", false);
      return false;
    }
    int timeout = kIdleTimeoutMs;
    if (in.available() > 0) {
      if (deadline < 0) deadline = NowMs() + kHeadTimeoutMs;
      timeout = static_cast<int>(std::max<int64_t>(deadline - NowMs(), 0));
    }
    size_t before = in.available();
    if (!in.Fill(conn, timeout)) {
      if (before > 0 && timeout == 0) {
        Respond(conn, ProtocolError(408, "REQUEST_TIMEOUT", "request headers not received in time"), "", false);
      }
      return false;
    }
    if (deadline < 0) deadline = NowMs() + kHeadTimeoutMs;
  }
  if (head_end - in.pos > kMaxHead) {
    Respond(conn, ProtocolError(431, "HEADERS_TOO_LARGE",
                                "request line and headers larger than " + std::to_string(kMaxHead) + " bytes"),
            "", false);
    return false;
  }
  Head head;
  std::string why;
  int bad = ParseHead(std::string_view(in.data).substr(in.pos, head_end - in.pos), &head, &why);
  in.pos = head_end + 4;
  if (bad != 0) {
    Respond(conn, ProtocolError(bad, bad == 431 ? "HEADERS_TOO_LARGE" : "REQUEST_INVALID", why), "", false);
    return false;
  }

  HttpRequest request;
  request.method = head.method;
  size_t q = head.target.find('?');
  request.path = head.target.substr(0, q);
  if (q != std::string::npos) request.query = ParseQuery(std::string_view(head.target).substr(q + 1));
  request.remote_address = remote;
  std::optional<uint64_t> content_length;
  bool chunked = false;
  for (auto& [name, value] : head.fields) {
    if (name == "content-length") {
      uint64_t n = 0;
      bool valid = !value.empty() && value.size() <= 19;
      for (char c : value) {
        if (!std::isdigit(static_cast<unsigned char>(c))) valid = false;
        else n = n * 10 + static_cast<uint64_t>(c - '0');
      }
      if (!valid || (content_length && *content_length != n)) {
        Respond(conn, ProtocolError(400, "REQUEST_INVALID", "malformed Content-Length"), "", false);
        return false;
      }
      content_length = n;
    } else if (name == "transfer-encoding") {
      if (Lowercase(value) != "chunked" || chunked) {
        Respond(conn, ProtocolError(501, "TRANSFER_ENCODING_UNSUPPORTED",
                                    "only the chunked transfer coding is supported"),
                "", false);
        return false;
      }
      chunked = true;
    }
    auto [it, inserted] = request.headers.emplace(name, value);
    if (!inserted) it->second += ", " + value;
  }
  if (chunked && content_length) {
    Respond(conn, ProtocolError(400, "REQUEST_INVALID", "both Content-Length and Transfer-Encoding"), "", false);
    return false;
  }
  std::string connection = Lowercase(request.Header("connection"));
  bool keep_alive = head.http10 ? connection == "keep-alive" : connection.find("close") == std::string::npos;
  bool expect_continue = Lowercase(request.Header("expect")) == "100-continue";

  std::string body;
  std::optional<LengthBody> stream;
  if (content_length && *content_length > 0 && IsUploadBody(request.method, request.path)) {
    stream.emplace(&conn, &in, *content_length, metrics, expect_continue);
    request.body_stream = &*stream;
    request.body_stream_length = *content_length;
  } else if ((content_length && *content_length > 0) || chunked) {
    if (content_length && *content_length > options.max_body) {
      Respond(conn, ProtocolError(413, "BODY_TOO_LARGE",
                                  "request body larger than " + std::to_string(options.max_body) + " bytes"),
              request.method, false);
      return false;
    }
    if (expect_continue) {
      static constexpr char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";
      if (!conn.WriteAll(kContinue, sizeof(kContinue) - 1)) return false;
    }
    if (chunked) {
      int status = ReadChunked(conn, in, options.max_body, &body, &why);
      if (status != 0) {
        Respond(conn, ProtocolError(status, status == 413 ? "BODY_TOO_LARGE" : "REQUEST_INVALID", why),
                request.method, false);
        return false;
      }
    } else {
      while (in.available() < *content_length) {
        if (!in.Fill(conn, kIoTimeoutMs)) return false;  // the client went away or stalled
      }
      body.assign(in.data, in.pos, static_cast<size_t>(*content_length));
      in.pos += static_cast<size_t>(*content_length);
    }
    metrics->AddBytesIn(body.size());
  }
  request.body = body;

  std::string route;
  HttpResponse response;
  try {
    response = service->Handle(request, &route);
  } catch (const std::exception& e) {
    response = ErrorResponse(core::Internal(std::string("unexpected error: ") + e.what()));
  }
  metrics->CountRequest(route, request.method, response.status);
  // A body the route did not read to its end leaves the connection with no
  // known place where the next request starts.
  if (stream && !stream->finished()) keep_alive = false;
  return Respond(conn, response, request.method, keep_alive) && keep_alive;
}

bool Server::Impl::Respond(Conn& conn, const HttpResponse& response, const std::string& method,
                           bool keep_alive) {
  const bool file = response.file != nullptr;
  std::string head = "HTTP/1.1 " + std::to_string(response.status) + " " + ReasonPhrase(response.status) + "\r\n";
  auto add = [&head](std::string_view name, std::string_view value) {
    head.append(name).append(": ");
    for (char c : value) head.push_back(c == '\r' || c == '\n' ? ' ' : c);
    head.append("\r\n");
  };
  for (const auto& [name, value] : response.headers) add(name, value);
  if (!response.content_type.empty() && (file || !response.body.empty())) add("Content-Type", response.content_type);
  if (response.status != 204 && response.status != 304) {
    add("Content-Length", std::to_string(file ? response.file_length : response.body.size()));
  }
  if (!keep_alive) add("Connection", "close");
  head.append("\r\n");
  const bool send_body = method != "HEAD" && !response.head_only;
  if (!file && send_body) {
    // One write for small answers: head and body in the same packet.
    head.append(response.body);
    metrics->AddBytesOut(response.body.size());
  }
  if (!conn.WriteAll(head.data(), head.size())) return false;
  if (file && send_body && response.file_length > 0) {
    return conn.SendFile(*response.file, response.file_offset, response.file_length, metrics);
  }
  return true;
}

Server::Server(Service* service, Metrics* metrics, ServerOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->service = service;
  impl_->metrics = metrics;
  impl_->options = std::move(options);
}

Server::~Server() { Shutdown(); }

namespace {

std::string OpenSslError() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "unknown error" : out;
}

}  // namespace

core::Status Server::Start() {
  const ServerOptions& o = impl_->options;
  if (!o.tls_cert.empty() || !o.tls_key.empty()) {
    if (o.tls_cert.empty() || o.tls_key.empty()) {
      return core::InvalidArgument("TLS needs both a certificate and a key");
    }
    for (const auto& [what, path] : {std::pair{"certificate", o.tls_cert}, std::pair{"key", o.tls_key}}) {
      auto text = core::ReadFile(path, 1 << 20);
      if (!text.ok()) {
        return core::InvalidArgument(std::string("TLS ") + what + " " + path + ": " + text.status().message());
      }
    }
    SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == nullptr) return core::Internal("TLS: " + OpenSslError());
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    // No passphrase callback: OpenSSL's default would prompt on a terminal;
    // an encrypted key fails to load instead.
    SSL_CTX_set_default_passwd_cb(ctx, [](char*, int, int, void*) { return 0; });
    if (SSL_CTX_use_certificate_chain_file(ctx, o.tls_cert.c_str()) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, o.tls_key.c_str(), SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
      std::string why = OpenSslError();
      SSL_CTX_free(ctx);
      return core::InvalidArgument("TLS certificate " + o.tls_cert + " and key " + o.tls_key +
                                   " cannot be used (PEM files, the key unencrypted and matching the "
                                   "certificate): " + why);
    }
    impl_->tls = ctx;
  }

  addrinfo hints {};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  std::string port = std::to_string(o.port);
  int rc = ::getaddrinfo(o.host.empty() ? nullptr : o.host.c_str(), port.c_str(), &hints, &found);
  if (rc != 0) {
    return core::Unavailable("cannot listen on " + o.host + ":" + port + ": " + ::gai_strerror(rc));
  }
  std::string why = "no address";
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) {
      why = std::strerror(errno);
      continue;
    }
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (::bind(fd, a->ai_addr, a->ai_addrlen) != 0 || ::listen(fd, 4096) != 0) {
      why = std::strerror(errno);
      ::close(fd);
      continue;
    }
    impl_->listen_fd = fd;
    break;
  }
  ::freeaddrinfo(found);
  if (impl_->listen_fd < 0) return core::Unavailable("cannot listen on " + o.host + ":" + port + ": " + why);
  sockaddr_storage bound {};
  socklen_t len = sizeof(bound);
  if (::getsockname(impl_->listen_fd, reinterpret_cast<sockaddr*>(&bound), &len) == 0) {
    impl_->bound_port = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                                          : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  }
  impl_->acceptor = std::thread([impl = impl_.get()] { impl->AcceptLoop(); });
  return core::OkStatus();
}

uint16_t Server::port() const { return impl_->bound_port; }

void Server::Shutdown() {
  if (impl_->listen_fd < 0) return;
  impl_->stopping.store(true);
  ::shutdown(impl_->listen_fd, SHUT_RDWR);
  if (impl_->acceptor.joinable()) impl_->acceptor.join();
  ::close(impl_->listen_fd);
  impl_->listen_fd = -1;
  std::unique_lock<std::mutex> lock(impl_->mu);
  for (int fd : impl_->live) ::shutdown(fd, SHUT_RDWR);
  impl_->idle.wait(lock, [this] { return impl_->live.empty(); });
}

}  // namespace sigil::api
