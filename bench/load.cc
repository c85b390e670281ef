// load: many, slow, broken and hostile HTTP clients against a real sigild.
//
//   load --sigild PATH [--sigild-arg ARG]... [scenario options]
//       starts sigild on a fresh temporary data directory and a free port
//   load --target HOST:PORT --token TOKEN [--pid PID] [scenario options]
//       drives a running sigild (PID: read its fds, threads, RSS and CPU)
//
// Clients are raw sockets with one thread each (no HTTP library: slow,
// half-sent and oversized requests must be written byte by byte). Every
// scenario prints the load it held, requests by kind with p50/p99/max
// latency, errors by kind, and sigild's descriptors, threads, RSS and CPU.
// The exit status is 1 when sigild died or a scenario saw an error it should
// not have (listed under "FAILED" at the end), else 0.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/digest.h"

namespace sigil::bench {
namespace {

using nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

int64_t NowMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(SteadyClock::now().time_since_epoch()).count();
}

void SleepMs(int64_t ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

struct Target {
  std::string host = "127.0.0.1";
  int port = 0;
  std::string token;
  pid_t pid = -1;
};

// ---------------------------------------------------------------- sockets

// Bytes in flight on one connection: one request at a time, no pipelining.
class Conn {
 public:
  Conn() = default;
  ~Conn() { Close(); }
  Conn(Conn&& o) noexcept : fd_(o.fd_), buf_(std::move(o.buf_)) { o.fd_ = -1; }
  Conn& operator=(Conn&& o) noexcept {
    if (this != &o) {
      Close();
      fd_ = o.fd_;
      buf_ = std::move(o.buf_);
      o.fd_ = -1;
    }
    return *this;
  }

  // "" or why not ("connect: ...").
  std::string Open(const Target& t, int timeout_ms = 5000, int rcvbuf = 0) {
    Close();
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return std::string("socket: ") + std::strerror(errno);
    if (rcvbuf > 0) ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(t.port));
    ::inet_pton(AF_INET, t.host.c_str(), &addr.sin_addr);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      if (errno != EINPROGRESS) {
        std::string why = std::string("connect: ") + std::strerror(errno);
        ::close(fd);
        return why;
      }
      pollfd p{fd, POLLOUT, 0};
      int r = ::poll(&p, 1, timeout_ms);
      int err = 0;
      socklen_t len = sizeof(err);
      ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      if (r <= 0 || err != 0) {
        ::close(fd);
        return r <= 0 ? "connect: timeout" : std::string("connect: ") + std::strerror(err);
      }
    }
    fd_ = fd;
    buf_.clear();
    return "";
  }
  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    buf_.clear();
  }
  // Closes with a reset (SO_LINGER 0) instead of a FIN.
  void Abort() {
    if (fd_ < 0) return;
    linger l{1, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
    Close();
  }
  bool valid() const { return fd_ >= 0; }
  int fd() const { return fd_; }

  // "" or "timeout" / "closed" / "reset".
  std::string Send(std::string_view data, int timeout_ms) {
    int64_t deadline = NowMicros() + int64_t{timeout_ms} * 1000;
    while (!data.empty()) {
      ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n > 0) {
        data.remove_prefix(static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        int left = static_cast<int>((deadline - NowMicros()) / 1000);
        if (left <= 0) return "send timeout";
        pollfd p{fd_, POLLOUT, 0};
        ::poll(&p, 1, left);
        continue;
      }
      return errno == ECONNRESET ? "reset" : "send closed";
    }
    return "";
  }

  // Up to max bytes into out within timeout_ms: n > 0, 0 at EOF, -1 error
  // (reset), -2 timeout.
  ssize_t RecvSome(char* out, size_t max, int timeout_ms) {
    if (!buf_.empty()) {
      size_t n = std::min(max, buf_.size());
      std::memcpy(out, buf_.data(), n);
      buf_.erase(0, n);
      return static_cast<ssize_t>(n);
    }
    int64_t deadline = NowMicros() + int64_t{timeout_ms} * 1000;
    while (true) {
      ssize_t n = ::recv(fd_, out, max, 0);
      if (n >= 0) return n;
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) return -1;
      int left = static_cast<int>((deadline - NowMicros()) / 1000);
      if (left <= 0) return -2;
      pollfd p{fd_, POLLIN, 0};
      ::poll(&p, 1, left);
    }
  }

  struct Response {
    int status = 0;
    std::map<std::string, std::string> headers;  // lowercase names
    std::string body;
    uint64_t body_bytes = 0;
    std::string Header(const std::string& name) const {
      auto it = headers.find(name);
      return it == headers.end() ? "" : it->second;
    }
  };

  // Reads one response. keep_body false: counts the body without keeping it.
  // "" or "timeout" / "closed" (EOF before a whole response) / "reset" /
  // "malformed".
  std::string Read(Response* r, int timeout_ms, bool head_request = false, bool keep_body = true,
                   core::Sha256* hash = nullptr) {
    *r = Response();
    int64_t deadline = NowMicros() + int64_t{timeout_ms} * 1000;
    auto left_ms = [&] { return static_cast<int>(std::max<int64_t>(0, (deadline - NowMicros()) / 1000)); };
    char tmp[64 << 10];
    size_t end = std::string::npos;
    while ((end = buf_.find("\r\n\r\n")) == std::string::npos) {
      if (buf_.size() > (1 << 20)) return "malformed";
      ssize_t n = RawRecv(tmp, sizeof(tmp), left_ms());
      if (n == -2) return "timeout";
      if (n == -1) return "reset";
      if (n == 0) return "closed";
      buf_.append(tmp, static_cast<size_t>(n));
    }
    std::string head = buf_.substr(0, end);
    buf_.erase(0, end + 4);
    std::istringstream lines(head);
    std::string line;
    std::getline(lines, line);
    if (line.rfind("HTTP/1.", 0) != 0 || line.size() < 12) return "malformed";
    r->status = std::atoi(line.c_str() + 9);
    while (std::getline(lines, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      size_t colon = line.find(':');
      if (colon == std::string::npos) continue;
      std::string name = line.substr(0, colon);
      std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
      size_t v = line.find_first_not_of(' ', colon + 1);
      r->headers[name] = v == std::string::npos ? "" : line.substr(v);
    }
    if (head_request || r->status == 204 || r->status == 304) return "";
    if (!r->Header("transfer-encoding").empty()) return "malformed";  // sigild never streams chunked
    std::string cl = r->Header("content-length");
    bool until_eof = cl.empty();
    uint64_t want = until_eof ? UINT64_MAX : std::strtoull(cl.c_str(), nullptr, 10);
    auto take = [&](const char* p, size_t n) {
      if (keep_body) r->body.append(p, n);
      if (hash != nullptr) hash->Update(p, n);
      r->body_bytes += n;
    };
    size_t from_buf = static_cast<size_t>(std::min<uint64_t>(want, buf_.size()));
    take(buf_.data(), from_buf);
    buf_.erase(0, from_buf);
    while (r->body_bytes < want) {
      size_t ask = static_cast<size_t>(std::min<uint64_t>(sizeof(tmp), want - r->body_bytes));
      ssize_t n = RawRecv(tmp, ask, left_ms());
      if (n == -2) return "timeout";
      if (n == -1) return "reset";
      if (n == 0) return until_eof ? "" : "closed";
      take(tmp, static_cast<size_t>(n));
    }
    return "";
  }

 private:
  ssize_t RawRecv(char* out, size_t max, int timeout_ms) {
    while (true) {
      ssize_t n = ::recv(fd_, out, max, 0);
      if (n >= 0) return n;
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) return -1;
      if (timeout_ms <= 0) return -2;
      pollfd p{fd_, POLLIN, 0};
      int64_t start = NowMicros();
      if (::poll(&p, 1, timeout_ms) == 0) return -2;
      timeout_ms -= static_cast<int>((NowMicros() - start) / 1000);
      if (timeout_ms <= 0) timeout_ms = 1;
    }
  }

  int fd_ = -1;
  std::string buf_;
};

using Response = Conn::Response;

std::string BuildRequest(const std::string& method, const std::string& path, const std::string& token,
                         std::string_view body = {}, const std::vector<std::string>& headers = {}) {
  std::string r = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  if (!token.empty()) r += "Authorization: Bearer " + token + "\r\n";
  for (const auto& h : headers) r += h + "\r\n";
  if (!body.empty() || method == "POST" || method == "PUT" || method == "PATCH") {
    r += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  }
  r += "\r\n";
  r.append(body);
  return r;
}

// A client with one kept-alive connection, reopened when the server closes it.
class Client {
 public:
  Client(const Target& t, std::string token) : target_(t), token_(std::move(token)) {}

  // "" or an error kind; *r holds the answer.
  std::string Do(const std::string& method, const std::string& path, std::string_view body, Response* r,
                 const std::vector<std::string>& headers = {}, int timeout_ms = 30000, bool keep_body = true,
                 core::Sha256* hash = nullptr) {
    std::string req = BuildRequest(method, path, token_, body, headers);
    for (int attempt = 0; attempt < 2; ++attempt) {
      bool reused = conn_.valid();
      if (!reused) {
        std::string why = conn_.Open(target_);
        if (!why.empty()) return why;
      }
      std::string why = conn_.Send(req, timeout_ms);
      if (why.empty()) why = conn_.Read(r, timeout_ms, method == "HEAD", keep_body, hash);
      if (why.empty()) {
        if (r->Header("connection") == "close") conn_.Close();
        return "";
      }
      conn_.Close();
      // A kept-alive connection the server closed meanwhile: once more on a new one.
      if (!(reused && (why == "closed" || why == "reset" || why == "send closed")) || r->status != 0) return why;
      if (hash != nullptr) hash->Reset();
    }
    return "closed";
  }
  const std::string& token() const { return token_; }

 private:
  Target target_;
  std::string token_;
  Conn conn_;
};

// ---------------------------------------------------------------- figures

struct Stats {
  std::mutex mu;
  std::map<std::string, std::vector<int64_t>> latency;  // kind -> micros
  std::map<std::string, uint64_t> errors;               // "kind: why" -> count
  uint64_t bytes = 0;

  void Ok(const std::string& kind, int64_t micros, uint64_t n = 0) {
    std::lock_guard<std::mutex> lock(mu);
    latency[kind].push_back(micros);
    bytes += n;
  }
  void Error(const std::string& kind, const std::string& why) {
    std::lock_guard<std::mutex> lock(mu);
    ++errors[kind + ": " + why];
  }
  uint64_t ErrorCount() {
    std::lock_guard<std::mutex> lock(mu);
    uint64_t n = 0;
    for (const auto& [k, c] : errors) n += c;
    return n;
  }
  uint64_t Count() {
    std::lock_guard<std::mutex> lock(mu);
    uint64_t n = 0;
    for (const auto& [k, v] : latency) n += v.size();
    return n;
  }
};

double Percentile(std::vector<int64_t> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return static_cast<double>(v[std::min(i, v.size() - 1)]) / 1000.0;
}

std::vector<int64_t> AllLatencies(Stats& s) {
  std::lock_guard<std::mutex> lock(s.mu);
  std::vector<int64_t> all;
  for (const auto& [k, v] : s.latency) all.insert(all.end(), v.begin(), v.end());
  return all;
}

void PrintStats(Stats& s, double seconds) {
  std::lock_guard<std::mutex> lock(s.mu);
  uint64_t total = 0;
  std::printf("    %-22s %8s %9s %9s %9s %9s\n", "request", "ok", "per s", "p50 ms", "p99 ms", "max ms");
  for (const auto& [kind, v] : s.latency) {
    total += v.size();
    std::vector<int64_t> sorted = v;
    std::sort(sorted.begin(), sorted.end());
    std::printf("    %-22s %8zu %9.1f %9.2f %9.2f %9.2f\n", kind.c_str(), v.size(),
                static_cast<double>(v.size()) / seconds, Percentile(v, 0.5), Percentile(v, 0.99),
                sorted.empty() ? 0.0 : static_cast<double>(sorted.back()) / 1000.0);
  }
  std::printf("    total %llu requests, %.1f per s, %.1f MB/s of bodies\n", static_cast<unsigned long long>(total),
              static_cast<double>(total) / seconds, static_cast<double>(s.bytes) / seconds / 1e6);
  if (s.errors.empty()) {
    std::printf("    errors: none\n");
  } else {
    std::printf("    errors:\n");
    for (const auto& [k, c] : s.errors) std::printf("      %6llu  %s\n", static_cast<unsigned long long>(c), k.c_str());
  }
}

// For events without a meaningful latency (cut connections).
void PrintCounts(Stats& s) {
  std::lock_guard<std::mutex> lock(s.mu);
  for (const auto& [kind, v] : s.latency) std::printf("    %8zu  %s\n", v.size(), kind.c_str());
  if (s.errors.empty()) std::printf("    errors: none\n");
  for (const auto& [k, c] : s.errors) std::printf("    %8llu  error %s\n", static_cast<unsigned long long>(c), k.c_str());
}

struct ProcStats {
  bool alive = false;
  int fds = 0;
  int threads = 0;
  long rss_kb = 0;
  uint64_t cpu_ticks = 0;
};

ProcStats ReadProc(pid_t pid) {
  ProcStats p;
  if (pid <= 0) return p;
  std::string dir = "/proc/" + std::to_string(pid);
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator(dir + "/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++p.fds;
  }
  std::ifstream status(dir + "/status");
  std::string line;
  while (std::getline(status, line)) {
    p.alive = true;
    if (line.rfind("Threads:", 0) == 0) p.threads = std::atoi(line.c_str() + 8);
    if (line.rfind("VmRSS:", 0) == 0) p.rss_kb = std::atol(line.c_str() + 6);
    if (line.rfind("State:", 0) == 0 && line.find("Z") != std::string::npos) p.alive = false;
  }
  std::ifstream stat(dir + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  size_t paren = text.rfind(')');
  if (paren != std::string::npos) {
    std::istringstream fields(text.substr(paren + 2));
    std::string f;
    uint64_t utime = 0, stime = 0;
    for (int i = 3; fields >> f; ++i) {
      if (i == 14) utime = std::strtoull(f.c_str(), nullptr, 10);
      if (i == 15) {
        stime = std::strtoull(f.c_str(), nullptr, 10);
        break;
      }
    }
    p.cpu_ticks = utime + stime;
  }
  return p;
}

std::string Describe(const ProcStats& p) {
  if (!p.alive) return "sigild: not running";
  char buf[160];
  std::snprintf(buf, sizeof(buf), "sigild: %d fds, %d threads, RSS %.1f MiB", p.fds, p.threads,
                static_cast<double>(p.rss_kb) / 1024.0);
  return buf;
}

// sigild's CPU use between two samples, in percent of one core.
double CpuPercent(const ProcStats& a, const ProcStats& b, double seconds) {
  return seconds <= 0 ? 0 : 100.0 * static_cast<double>(b.cpu_ticks - a.cpu_ticks) /
                                static_cast<double>(::sysconf(_SC_CLK_TCK)) / seconds;
}

std::vector<std::string> g_failures;
void Fail(const std::string& what) {
  std::printf("  !! %s\n", what.c_str());
  g_failures.push_back(what);
}

// ---------------------------------------------------------------- registry data

std::string RandomBytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (size_t i = 0; i + 8 <= n; i += 8) {
    uint64_t w = rng();
    std::memcpy(&s[i], &w, 8);
  }
  for (size_t i = n & ~size_t{7}; i < n; ++i) s[i] = static_cast<char>(rng());
  return s;
}

std::string DigestOf(std::string_view bytes) { return core::Sha256::Of(bytes).ToString(); }

struct Blob {
  std::string digest;
  std::string bytes;
};

// Pushes bytes through an upload session in chunks of at most chunk bytes.
std::string PushBlob(Client& c, const std::string& bytes, size_t chunk, std::string* digest_out) {
  Response r;
  std::string why = c.Do("POST", "/api/v1/uploads", "", &r);
  if (!why.empty()) return "open: " + why;
  if (r.status != 201) return "open: status " + std::to_string(r.status) + " " + r.body;
  std::string id = json::parse(r.body)["id"];
  size_t off = 0;
  while (bytes.size() - off > chunk) {
    std::string_view piece(bytes.data() + off, chunk);
    why = c.Do("PATCH", "/api/v1/uploads/" + id, piece, &r,
               {"Content-Range: " + std::to_string(off) + "-" + std::to_string(off + chunk - 1)}, 120000);
    if (!why.empty()) return "patch: " + why;
    if (r.status != 202) return "patch: status " + std::to_string(r.status) + " " + r.body;
    off += chunk;
  }
  std::string digest = DigestOf(bytes);
  why = c.Do("PUT", "/api/v1/uploads/" + id + "?digest=" + digest,
             std::string_view(bytes.data() + off, bytes.size() - off), &r, {}, 120000);
  if (!why.empty()) return "commit: " + why;
  if (r.status != 201) return "commit: status " + std::to_string(r.status) + " " + r.body;
  if (digest_out != nullptr) *digest_out = digest;
  return "";
}

std::string Manifest(const std::string& config_digest, size_t config_size, const std::string& layer_digest,
                     size_t layer_size) {
  json m = {{"schemaVersion", 2},
            {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
            {"artifactType", "application/vnd.cncf.model.manifest.v1+json"},
            {"config",
             {{"mediaType", "application/vnd.cncf.model.config.v1+json"},
              {"digest", config_digest},
              {"size", config_size}}},
            {"layers",
             {{{"mediaType", "application/octet-stream"},
               {"digest", layer_digest},
               {"size", layer_size},
               {"annotations", {{"org.opencontainers.image.title", "weights.bin"}}}}}}};
  return m.dump();
}

struct Fixture {
  Target target;
  std::string admin;
  std::vector<std::string> tokens;  // pushers, one per client
  size_t chunk_max = 0;
  std::vector<Blob> small;   // 4 KiB
  std::vector<Blob> medium;  // 1 MiB
  Blob large;                // slow-reader downloads
  std::string repo = "load/model";
  std::string version = "base";
};

std::string NewToken(Client& admin, const std::string& name, std::string* token) {
  Response r;
  json body = {{"name", name}, {"role", "pusher"}, {"repos", {"**"}}};
  std::string why = admin.Do("POST", "/api/v1/tokens", body.dump(), &r);
  if (!why.empty()) return why;
  if (r.status != 201) return "status " + std::to_string(r.status) + " " + r.body;
  *token = json::parse(r.body)["token"];
  return "";
}

// One push as a training job does it: the layer through an upload session
// (two chunks and a last one in the commit), the config by PUT, then the
// version's manifest. Each request's latency is recorded under its kind.
bool PushVersion(Client& c, Stats& stats, const std::string& repo, const std::string& version, uint64_t seed,
                 size_t chunk) {
  std::string layer = RandomBytes(2 * chunk + chunk / 4, seed);
  std::string layer_digest = DigestOf(layer);
  Response r;
  auto step = [&](const std::string& kind, const std::string& method, const std::string& path,
                  std::string_view body, int want, std::vector<std::string> headers = {}) {
    int64_t t0 = NowMicros();
    std::string why = c.Do(method, path, body, &r, headers);
    if (why.empty() && r.status != want) why = "status " + std::to_string(r.status);
    if (!why.empty()) {
      stats.Error(kind, why);
      return false;
    }
    stats.Ok(kind, NowMicros() - t0, body.size());
    return true;
  };
  if (!step("upload open", "POST", "/api/v1/uploads", "", 201)) return false;
  std::string id = json::parse(r.body)["id"];
  for (size_t off = 0; off < 2 * chunk; off += chunk) {
    if (!step("upload chunk", "PATCH", "/api/v1/uploads/" + id, std::string_view(layer).substr(off, chunk), 202,
              {"Content-Range: " + std::to_string(off) + "-" + std::to_string(off + chunk - 1)})) {
      return false;
    }
  }
  if (!step("upload commit", "PUT", "/api/v1/uploads/" + id + "?digest=" + layer_digest,
            std::string_view(layer).substr(2 * chunk), 201)) {
    return false;
  }
  json config = {{"format", "raw"}, {"seed", seed}};
  std::string config_bytes = config.dump();
  std::string config_digest = DigestOf(config_bytes);
  if (!step("blob put", "PUT", "/api/v1/blobs/" + config_digest, config_bytes, 201)) return false;
  std::string manifest = Manifest(config_digest, config_bytes.size(), layer_digest, layer.size());
  return step("version put", "PUT", "/api/v1/models/" + repo + "/versions/" + version, manifest, 201,
              {"Content-Type: application/vnd.oci.image.manifest.v1+json"});
}

// GET of a whole blob, its bytes checked against the digest.
bool GetBlob(Client& c, Stats& stats, const Blob& blob, const std::string& kind, int timeout_ms = 30000) {
  Response r;
  core::Sha256 hash;
  int64_t t0 = NowMicros();
  std::string why = c.Do("GET", "/api/v1/blobs/" + blob.digest, "", &r, {}, timeout_ms, false, &hash);
  if (why.empty() && r.status != 200) why = "status " + std::to_string(r.status);
  if (why.empty() && hash.Finish().ToString() != blob.digest) why = "wrong bytes";
  if (!why.empty()) {
    stats.Error(kind, why);
    return false;
  }
  stats.Ok(kind, NowMicros() - t0, r.body_bytes);
  return true;
}

bool GetRange(Client& c, Stats& stats, const Blob& blob, uint64_t seed) {
  std::mt19937_64 rng(seed);
  size_t a = rng() % blob.bytes.size();
  size_t len = 1 + rng() % std::min<size_t>(blob.bytes.size() - a, 256 << 10);
  Response r;
  int64_t t0 = NowMicros();
  std::string why = c.Do("GET", "/api/v1/blobs/" + blob.digest, "", &r,
                         {"Range: bytes=" + std::to_string(a) + "-" + std::to_string(a + len - 1)});
  if (why.empty() && r.status != 206) why = "status " + std::to_string(r.status);
  if (why.empty() && r.body != blob.bytes.substr(a, len)) why = "wrong bytes";
  if (!why.empty()) {
    stats.Error("blob get range", why);
    return false;
  }
  stats.Ok("blob get range", NowMicros() - t0, r.body_bytes);
  return true;
}

bool GetVersion(Client& c, Stats& stats, const Fixture& f, const std::string& kind = "version get") {
  Response r;
  int64_t t0 = NowMicros();
  std::string why = c.Do("GET", "/api/v1/models/" + f.repo + "/versions/" + f.version, "", &r);
  if (why.empty() && r.status != 200) why = "status " + std::to_string(r.status);
  if (why.empty()) {
    json j = json::parse(r.body, nullptr, false);
    if (!j.is_object() || j.value("version", "") != f.version) why = "bad body";
  }
  if (!why.empty()) {
    stats.Error(kind, why);
    return false;
  }
  stats.Ok(kind, NowMicros() - t0, r.body_bytes);
  return true;
}

// Runs n client threads until stop; body(i, stop) is each client's loop.
void RunClients(int n, const std::function<void(int, const std::atomic<bool>&)>& body, double seconds,
                std::atomic<bool>* external_stop = nullptr) {
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i) threads.emplace_back([&, i] { body(i, stop); });
  int64_t end = NowMicros() + static_cast<int64_t>(seconds * 1e6);
  while (NowMicros() < end && (external_stop == nullptr || !*external_stop)) SleepMs(20);
  stop = true;
  for (auto& t : threads) t.join();
}

// Fast clients asking for version JSON and small blobs: the probe every
// hostile scenario runs beside its bad clients.
void FastProbe(const Fixture& f, Stats& stats, int clients, double seconds, int timeout_ms = 10000,
               std::atomic<bool>* stop_early = nullptr) {
  RunClients(
      clients,
      [&](int i, const std::atomic<bool>& stop) {
        Client c(f.target, f.tokens[static_cast<size_t>(i) % f.tokens.size()]);
        for (uint64_t k = 0; !stop; ++k) {
          if (k % 2 == 0) {
            GetVersion(c, stats, f, "fast version get");
          } else {
            GetBlob(c, stats, f.small[k % f.small.size()], "fast blob get 4K", timeout_ms);
          }
        }
      },
      seconds, stop_early);
}

// ---------------------------------------------------------------- scenarios

struct Options {
  int clients = 64;
  double seconds = 10;
  int trickle_clients = 64;
  int slow_readers = 48;
  int disconnects = 300;
  int idle_connections = 10000;
  size_t large_mib = 64;
  std::set<int> scenarios = {1, 2, 3, 4, 5, 6};
  bool wait_expiry = true;
};

void Scenario1(const Fixture& f, const Options& o) {
  std::printf("\n== 1. mixed pushes and pulls: %d clients for %.0f s\n", o.clients, o.seconds);
  std::printf("   each client loops: 1 in 5 a push (upload session: POST, 2 PATCH of 256 KiB, PUT commit with\n"
              "   64 KiB; config blob PUT; version PUT), else GET 1 MiB blob (digest checked), GET Range\n"
              "   (<= 256 KiB, bytes checked) or GET version JSON\n");
  Stats stats;
  ProcStats before = ReadProc(f.target.pid);
  int64_t t0 = NowMicros();
  std::atomic<int> versions{0};
  long peak_rss = 0;
  std::atomic<bool> done{false};
  std::thread sampler([&] {
    while (!done) {
      peak_rss = std::max(peak_rss, ReadProc(f.target.pid).rss_kb);
      SleepMs(200);
    }
  });
  RunClients(
      o.clients,
      [&](int i, const std::atomic<bool>& stop) {
        Client c(f.target, f.tokens[static_cast<size_t>(i) % f.tokens.size()]);
        std::mt19937_64 rng(static_cast<uint64_t>(i) * 7919 + 1);
        for (uint64_t k = 0; !stop; ++k) {
          uint64_t pick = rng() % 10;
          if (pick < 2) {
            std::string version = "c" + std::to_string(i) + "-" + std::to_string(k);
            if (PushVersion(c, stats, f.repo, version, rng(), 256 << 10)) ++versions;
          } else if (pick < 5) {
            GetBlob(c, stats, f.medium[rng() % f.medium.size()], "blob get 1M");
          } else if (pick < 7) {
            GetRange(c, stats, f.medium[rng() % f.medium.size()], rng());
          } else {
            GetVersion(c, stats, f);
          }
        }
      },
      o.seconds);
  double secs = static_cast<double>(NowMicros() - t0) / 1e6;
  done = true;
  sampler.join();
  ProcStats after = ReadProc(f.target.pid);
  PrintStats(stats, secs);
  std::printf("    versions pushed: %d; sigild CPU %.0f%% of a core, peak RSS %.1f MiB\n", versions.load(),
              CpuPercent(before, after, secs), static_cast<double>(peak_rss) / 1024.0);
  std::printf("    %s\n", Describe(after).c_str());
  if (stats.ErrorCount() > 0) Fail("1: " + std::to_string(stats.ErrorCount()) + " errors under mixed load");
}

// A request whose bytes go out a few at a time, every 100 ms, until stop.
void Trickle(const Fixture& f, const std::string& request, Stats& stats, const std::string& kind,
             const std::atomic<bool>& stop) {
  Conn conn;
  while (!stop) {
    std::string why = conn.Open(f.target);
    if (!why.empty()) {
      stats.Error(kind, why);
      SleepMs(100);
      continue;
    }
    size_t sent = 0;
    while (!stop && sent < request.size()) {
      size_t n = std::min<size_t>(4, request.size() - sent);
      why = conn.Send(std::string_view(request).substr(sent, n), 5000);
      if (!why.empty()) break;
      sent += n;
      SleepMs(100);
    }
    if (stop) break;
    // The server gave up on it (408) or it finished: either is an answer.
    Response r;
    why = why.empty() ? conn.Read(&r, 10000) : why;
    stats.Ok(kind + (why.empty() ? " answered " + std::to_string(r.status) : " closed: " + why), 0);
    conn.Close();
  }
}

void Scenario2(const Fixture& f, const Options& o) {
  const int fast = 8;
  const double phase = std::max(3.0, o.seconds / 2);
  std::printf("\n== 2. slow writers: %d fast clients, alone then beside %d trickling clients (4 bytes per 100 ms;\n"
              "   half trickle the request headers, half a 64 KiB PATCH body), %.0f s each\n",
              fast, o.trickle_clients, phase);
  Stats alone;
  FastProbe(f, alone, fast, phase);
  std::printf("  fast clients alone:\n");
  PrintStats(alone, phase);

  // Sessions for the body tricklers.
  Client admin(f.target, f.admin);
  std::vector<std::string> ids;
  for (int i = 0; i < o.trickle_clients / 2; ++i) {
    Client c(f.target, f.tokens[static_cast<size_t>(i) % f.tokens.size()]);
    Response r;
    if (c.Do("POST", "/api/v1/uploads", "", &r).empty() && r.status == 201) ids.push_back(json::parse(r.body)["id"]);
  }
  Stats trickle_stats, beside;
  std::atomic<bool> stop{false};
  std::vector<std::thread> tricklers;
  ProcStats before = ReadProc(f.target.pid);
  for (int i = 0; i < o.trickle_clients; ++i) {
    const std::string& token = f.tokens[static_cast<size_t>(i) % f.tokens.size()];
    std::string request;
    std::string kind;
    if (i % 2 == 0 || ids.empty()) {
      request = BuildRequest("GET", "/api/v1/models/" + f.repo + "/versions/" + f.version, token,
                             {}, {"X-Padding: " + std::string(200, 'p')});
      kind = "trickled headers";
    } else {
      std::string body = RandomBytes(64 << 10, static_cast<uint64_t>(i));
      request = BuildRequest("PATCH", "/api/v1/uploads/" + ids[static_cast<size_t>(i / 2) % ids.size()], token, body);
      kind = "trickled body";
    }
    tricklers.emplace_back([&, request, kind] { Trickle(f, request, trickle_stats, kind, stop); });
  }
  SleepMs(1000);
  int64_t t0 = NowMicros();
  FastProbe(f, beside, fast, phase);
  double secs = static_cast<double>(NowMicros() - t0) / 1e6;
  ProcStats after = ReadProc(f.target.pid);
  stop = true;
  for (auto& t : tricklers) t.join();
  std::printf("  fast clients beside %d trickling ones (sigild CPU %.0f%% of a core):\n", o.trickle_clients,
              CpuPercent(before, after, secs + 1));
  PrintStats(beside, phase);
  std::printf("  trickling connections' outcomes:\n");
  {
    std::lock_guard<std::mutex> lock(trickle_stats.mu);
    if (trickle_stats.latency.empty()) std::printf("    (none finished within the phase)\n");
    for (const auto& [k, v] : trickle_stats.latency) std::printf("    %6zu  %s\n", v.size(), k.c_str());
    for (const auto& [k, c] : trickle_stats.errors) std::printf("    %6llu  error %s\n", static_cast<unsigned long long>(c), k.c_str());
  }
  for (const auto& id : ids) {
    Response r;
    admin.Do("DELETE", "/api/v1/uploads/" + id, "", &r);
  }
  std::printf("    %s\n", Describe(after).c_str());
  double p99_alone = Percentile(AllLatencies(alone), 0.99);
  double p99_beside = Percentile(AllLatencies(beside), 0.99);
  std::printf("  fast p99: %.2f ms alone, %.2f ms beside tricklers\n", p99_alone, p99_beside);
  if (alone.ErrorCount() + beside.ErrorCount() > 0) Fail("2: fast clients saw errors beside trickling clients");
  if (p99_beside > 10 * p99_alone + 50) Fail("2: trickling clients slow fast ones (p99 x10 + 50 ms)");
}

void Scenario3(const Fixture& f, const Options& o) {
  const int fast = 8;
  const double phase = std::max(3.0, o.seconds / 2);
  std::printf("\n== 3. slow readers: %d clients GET a %zu MiB blob with a 4 KiB receive buffer (half read 1 KiB\n"
              "   per 500 ms, half nothing) while %d fast clients GET a 1 MiB blob (timeout 10 s) and version\n"
              "   JSON; %.0f s alone, then %.0f s beside them\n",
              o.slow_readers, o.large_mib, fast, phase, phase);
  auto fast_loop = [&](Stats& stats) {
    RunClients(
        fast,
        [&](int i, const std::atomic<bool>& stop) {
          Client c(f.target, f.tokens[static_cast<size_t>(i) % f.tokens.size()]);
          for (uint64_t k = static_cast<uint64_t>(i); !stop; ++k) {
            if (k % 2 == 0) {
              GetBlob(c, stats, f.medium[k % f.medium.size()], "fast blob get 1M", 10000);
            } else {
              GetVersion(c, stats, f, "fast version get");
            }
          }
        },
        phase);
  };
  Stats alone;
  fast_loop(alone);
  std::printf("  fast clients alone:\n");
  PrintStats(alone, phase);

  std::atomic<bool> stop{false};
  std::atomic<int> started{0};
  std::atomic<uint64_t> slow_bytes{0};
  std::vector<std::thread> readers;
  ProcStats before = ReadProc(f.target.pid);
  for (int i = 0; i < o.slow_readers; ++i) {
    readers.emplace_back([&, i] {
      Conn conn;
      if (!conn.Open(f.target, 5000, 4096).empty()) return;
      std::string req = BuildRequest("GET", "/api/v1/blobs/" + f.large.digest,
                                     f.tokens[static_cast<size_t>(i) % f.tokens.size()]);
      if (!conn.Send(req, 5000).empty()) return;
      ++started;
      char buf[1024];
      while (!stop) {
        SleepMs(i % 2 == 0 ? 500 : 100);
        if (i % 2 == 0) {
          ssize_t n = conn.RecvSome(buf, sizeof(buf), 1);
          if (n > 0) slow_bytes += static_cast<uint64_t>(n);
          if (n == 0 || n == -1) return;
        }
      }
    });
  }
  SleepMs(1000);
  int64_t t0 = NowMicros();
  Stats beside;
  fast_loop(beside);
  double secs = static_cast<double>(NowMicros() - t0) / 1e6;
  ProcStats during = ReadProc(f.target.pid);
  stop = true;
  for (auto& t : readers) t.join();
  std::printf("  fast clients beside %d slow readers (sigild CPU %.0f%% of a core; the slow readers got %.1f KiB):\n",
              started.load(), CpuPercent(before, during, secs + 1), static_cast<double>(slow_bytes) / 1024.0);
  PrintStats(beside, phase);
  std::printf("    %s (while they were open)\n", Describe(during).c_str());
  uint64_t got_blob = 0;
  {
    std::lock_guard<std::mutex> lock(beside.mu);
    got_blob = beside.latency["fast blob get 1M"].size();
  }
  if (alone.ErrorCount() > 0) Fail("3: fast clients saw errors without slow readers");
  if (beside.ErrorCount() > 0 || got_blob == 0) {
    Fail("3: " + std::to_string(o.slow_readers) + " slow readers stall other clients' downloads (" +
         std::to_string(got_blob) + " fast 1 MiB downloads finished, " + std::to_string(beside.ErrorCount()) +
         " errors)");
  }
}

int CountSessions(Client& admin) {
  Response r;
  if (!admin.Do("GET", "/metrics", "", &r).empty() || r.status != 200) return -1;
  std::istringstream lines(r.body);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind("sigil_upload_sessions_open", 0) == 0) return std::atoi(line.c_str() + line.find(' ') + 1);
  }
  return -1;
}

// Waits (up to seconds) until sigild's fds and threads are back to the
// baseline (fds: within slack; threads: within 2, as RocksDB and the
// scanner start and end pool threads of their own); returns the last sample.
ProcStats WaitForBaseline(pid_t pid, const ProcStats& base, int slack, double seconds) {
  ProcStats now = ReadProc(pid);
  int64_t end = NowMicros() + static_cast<int64_t>(seconds * 1e6);
  while (NowMicros() < end && now.alive && (now.fds > base.fds + slack || now.threads > base.threads + 2)) {
    SleepMs(200);
    now = ReadProc(pid);
  }
  return now;
}

void Scenario4(const Fixture& f, const Options& o, int64_t expiry_s) {
  const int workers = 16;
  std::printf("\n== 4. disconnects: %d times each, %d at once: a PATCH cut off halfway through its 256 KiB body\n"
              "   (FIN or RST), a 1 MiB / %zu MiB GET dropped after 64 KiB, a GET dropped before any answer\n",
              o.disconnects, workers, o.large_mib);
  Client admin(f.target, f.admin);
  ProcStats base = ReadProc(f.target.pid);
  int sessions_before = CountSessions(admin);
  std::printf("  before: %s, %d upload sessions open\n", Describe(base).c_str(), sessions_before);

  // Each worker has its own token and session, which it resumes after every cut.
  Stats stats;
  std::atomic<int> iterations{0};
  std::vector<std::string> ids(workers);
  std::vector<std::string> data(workers);
  std::vector<uint64_t> offsets(workers, 0);
  const size_t chunk = 256 << 10;
  int64_t cuts_start = NowMicros();
  std::vector<std::thread> threads;
  for (int w = 0; w < workers; ++w) {
    threads.emplace_back([&, w] {
      Client c(f.target, f.tokens[static_cast<size_t>(w) % f.tokens.size()]);
      Response r;
      std::string why = c.Do("POST", "/api/v1/uploads", "", &r);
      if (!why.empty() || r.status != 201) {
        stats.Error("upload open", why.empty() ? "status " + std::to_string(r.status) : why);
        return;
      }
      ids[w] = json::parse(r.body)["id"];
      std::mt19937_64 rng(static_cast<uint64_t>(w) + 99);
      while (true) {
        int k = iterations++;
        if (k >= o.disconnects * 3) break;
        Conn conn;
        std::string opened = conn.Open(f.target);
        if (!opened.empty()) {
          stats.Error("connect", opened);
          continue;
        }
        if (k % 3 == 0) {
          // Half a chunk, then gone: the session must still be at its last offset.
          std::string piece = RandomBytes(chunk, rng());
          std::string req = BuildRequest("PATCH", "/api/v1/uploads/" + ids[w], c.token(), piece,
                                         {"Content-Range: " + std::to_string(offsets[w]) + "-" +
                                          std::to_string(offsets[w] + chunk - 1)});
          conn.Send(std::string_view(req).substr(0, req.size() - chunk / 2), 5000);
          SleepMs(5);
          if (k % 2 == 0) conn.Abort(); else conn.Close();
          why = c.Do("GET", "/api/v1/uploads/" + ids[w], "", &r);
          uint64_t offset = why.empty() && r.status == 200 ? json::parse(r.body).value("offset", uint64_t{0}) : ~0ull;
          if (offset != offsets[w]) {
            stats.Error("upload cut", why.empty() ? "offset " + std::to_string(offset) + " after a cut chunk, want " +
                                                        std::to_string(offsets[w])
                                                  : why);
          } else {
            stats.Ok("upload cut, offset kept", 0);
          }
          // Every few cuts, a whole chunk goes in: the session keeps growing.
          if (k % 12 == 0) {
            std::string whole = RandomBytes(chunk, rng());
            why = c.Do("PATCH", "/api/v1/uploads/" + ids[w], whole, &r,
                       {"Content-Range: " + std::to_string(offsets[w]) + "-" + std::to_string(offsets[w] + chunk - 1)});
            if (why.empty() && r.status == 202) {
              offsets[w] += chunk;
              data[w] += whole;
              stats.Ok("upload resumed chunk", 0);
            } else {
              stats.Error("upload resumed chunk", why.empty() ? "status " + std::to_string(r.status) : why);
            }
          }
        } else if (k % 3 == 1) {
          const Blob& blob = (k % 2 == 0) ? f.large : f.medium[static_cast<size_t>(k) % f.medium.size()];
          conn.Send(BuildRequest("GET", "/api/v1/blobs/" + blob.digest, c.token()), 5000);
          char buf[16 << 10];
          size_t got = 0;
          while (got < (64u << 10)) {
            ssize_t n = conn.RecvSome(buf, sizeof(buf), 5000);
            if (n <= 0) break;
            got += static_cast<size_t>(n);
          }
          if (got < (64u << 10)) stats.Error("download cut", "got only " + std::to_string(got) + " bytes");
          else stats.Ok("download cut after 64 KiB", 0);
          if (k % 4 == 1) conn.Abort(); else conn.Close();
        } else {
          conn.Send(BuildRequest("GET", "/api/v1/blobs/" + f.large.digest, c.token()), 5000);
          conn.Abort();
          stats.Ok("request then reset", 0);
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  ProcStats right_after = ReadProc(f.target.pid);
  ProcStats settled = WaitForBaseline(f.target.pid, base, 4, 20);
  std::printf("  %d cut connections in %.1f s:\n", std::min(iterations.load(), o.disconnects * 3),
              static_cast<double>(NowMicros() - cuts_start) / 1e6);
  PrintCounts(stats);
  std::printf("  right after: %s\n  settled:     %s\n", Describe(right_after).c_str(), Describe(settled).c_str());
  if (!settled.alive) Fail("4: sigild died");
  if (stats.ErrorCount() > 0) Fail("4: errors around cut connections");
  if (settled.fds > base.fds + 4) {
    Fail("4: sigild holds " + std::to_string(settled.fds - base.fds) + " more descriptors 20 s after the cuts");
  }
  if (settled.threads > base.threads + 2) Fail("4: sigild has more threads after the cuts");

  // Half the sessions are finished (resumed, committed, digest checked), the
  // rest abandoned: they must expire.
  Stats finish;
  for (int w = 0; w < workers; w += 2) {
    if (ids[w].empty()) continue;
    Client c(f.target, f.tokens[static_cast<size_t>(w) % f.tokens.size()]);
    Response r;
    std::string last = RandomBytes(1000, static_cast<uint64_t>(w));
    std::string digest = DigestOf(data[w] + last);
    std::string why = c.Do("PUT", "/api/v1/uploads/" + ids[w] + "?digest=" + digest, last, &r);
    if (why.empty() && r.status == 201) finish.Ok("resumed upload committed", 0);
    else finish.Error("resumed upload commit", why.empty() ? "status " + std::to_string(r.status) + " " + r.body : why);
  }
  std::printf("  sessions resumed after the cuts and committed (%d KiB each on average):\n",
              static_cast<int>(data[0].size() / 1024));
  PrintCounts(finish);
  if (finish.ErrorCount() > 0) Fail("4: a session cut many times could not be committed");
  int sessions_after = CountSessions(admin);
  std::printf("  upload sessions open: %d before, %d after (the %d abandoned on purpose)\n", sessions_before,
              sessions_after, workers / 2);
  if (!o.wait_expiry || expiry_s <= 0) return;
  // sigild's housekeeper expires idle sessions once a minute.
  int64_t deadline = NowMicros() + (expiry_s + 75) * 1'000'000;
  int open = sessions_after;
  while (NowMicros() < deadline && open > sessions_before) {
    SleepMs(1000);
    open = CountSessions(admin);
  }
  std::printf("  after waiting for expiry (%lld s + the housekeeper's minute): %d sessions open\n",
              static_cast<long long>(expiry_s), open);
  if (open > sessions_before) Fail("4: abandoned upload sessions did not expire");
  // The tokens that abandoned them may open new ones again.
  for (int w = 1; w < workers; w += 2) {
    Client c(f.target, f.tokens[static_cast<size_t>(w) % f.tokens.size()]);
    Response r;
    std::string why = c.Do("GET", "/api/v1/uploads/" + ids[w], "", &r);
    if (!why.empty() || r.status != 404) Fail("4: expired session " + ids[w] + " still answers " + std::to_string(r.status));
  }
}

struct Hostile {
  std::string name;
  std::function<std::string(const std::string& token)> request;
  bool send_all = true;  // false: stop sending when the server answers or closes
  // The request itself is valid (what follows it is not): a 2xx is right.
  bool valid_head = false;
};

void Scenario5(const Fixture& f, const Options& o) {
  (void)o;
  std::printf("\n== 5. oversized and malformed requests, each on its own connection, with 4 fast clients running\n");
  std::string version_path = "/api/v1/models/" + f.repo + "/versions/" + f.version;
  // Each case that names an upload session gets a fresh one (sessions idle
  // past --upload-expiry go away while the cases run).
  std::string upload_id;
  Client owner(f.target, f.tokens[0]);
  auto fresh_session = [&] {
    Response r;
    if (!upload_id.empty()) owner.Do("DELETE", "/api/v1/uploads/" + upload_id, "", &r);
    upload_id.clear();
    if (owner.Do("POST", "/api/v1/uploads", "", &r).empty() && r.status == 201) upload_id = json::parse(r.body)["id"];
  };
  const size_t over = f.chunk_max + (1 << 20);
  std::vector<Hostile> cases = {
      {"request line 64 KiB", [&](const std::string& t) { return BuildRequest("GET", "/" + std::string(64 << 10, 'a'), t); }},
      {"request line 1 MiB", [&](const std::string& t) { return BuildRequest("GET", "/" + std::string(1 << 20, 'a'), t); }},
      {"one header of 64 KiB",
       [&](const std::string& t) { return BuildRequest("GET", version_path, t, {}, {"X-Big: " + std::string(64 << 10, 'h')}); }},
      {"headers of 1 MiB (one 1 MiB value)",
       [&](const std::string& t) { return BuildRequest("GET", version_path, t, {}, {"X-Big: " + std::string(1 << 20, 'h')}); }},
      {"headers of 1 MiB (16384 of 64 bytes)",
       [&](const std::string& t) {
         std::vector<std::string> h;
         for (int i = 0; i < 16384; ++i) h.push_back("X-H" + std::to_string(i) + ": " + std::string(50, 'v'));
         return BuildRequest("GET", version_path, t, {}, h);
       }},
      {"10000 tiny headers",
       [&](const std::string& t) {
         std::vector<std::string> h;
         for (int i = 0; i < 10000; ++i) h.push_back("A: b");
         return BuildRequest("GET", version_path, t, {}, h);
       }},
      {"PATCH body chunk_max + 1 MiB, Content-Length",
       [&](const std::string& t) { return BuildRequest("PATCH", "/api/v1/uploads/" + upload_id, t, std::string(over, 'x')); }},
      {"PUT blob body chunk_max + 1 MiB, Content-Length",
       [&](const std::string& t) {
         return BuildRequest("PUT", "/api/v1/blobs/sha256:" + std::string(64, '0'), t, std::string(over, 'x'));
       }},
      {"PATCH Content-Length 2^62 (then 1 MiB sent)",
       [&](const std::string& t) {
         std::string r = "PATCH /api/v1/uploads/" + upload_id + " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + t +
                         "\r\nContent-Length: 4611686018427387904\r\n\r\n";
         return r + std::string(1 << 20, 'x');
       },
       false},
      {"PATCH chunked body chunk_max + 1 MiB, no Content-Length",
       [&](const std::string& t) {
         std::string r = "PATCH /api/v1/uploads/" + upload_id + " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + t +
                         "\r\nTransfer-Encoding: chunked\r\n\r\n";
         std::string piece(1 << 20, 'x');
         char size[32];
         std::snprintf(size, sizeof(size), "%zx\r\n", piece.size());
         for (size_t sent = 0; sent < over; sent += piece.size()) r += size + piece + "\r\n";
         return r + "0\r\n\r\n";
       },
       false},
      {"PATCH without Content-Length, then 1 MiB of junk",
       [&](const std::string& t) {
         std::string r = "PATCH /api/v1/uploads/" + upload_id + " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + t + "\r\n\r\n";
         return r + std::string(1 << 20, 'x');
       },
       false, true},
      {"Content-Length: -1",
       [&](const std::string& t) {
         return "PUT /api/v1/blobs/sha256:" + std::string(64, '0') + " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + t +
                "\r\nContent-Length: -1\r\n\r\nabc";
       }},
      {"Content-Length: 2^64 + 3 (overflows)",
       [&](const std::string& t) {
         return "PUT /api/v1/blobs/sha256:" + std::string(64, '0') + " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + t +
                "\r\nContent-Length: 18446744073709551619\r\n\r\nabc";
       }},
      {"binary garbage 64 KiB", [&](const std::string&) { return RandomBytes(64 << 10, 5); }},
      {"header line without colon", [&](const std::string& t) {
         return "GET " + version_path + " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + t + "\r\nno colon here\r\n\r\n";
       }},
  };
  Stats probe;
  std::atomic<bool> stop{false};
  int64_t probe_start = NowMicros();
  std::thread prober([&] { FastProbe(f, probe, 4, 3600, 10000, &stop); });
  std::printf("    %-52s %-22s %9s %s\n", "request", "answer", "ms", "then");
  for (const Hostile& h : cases) {
    fresh_session();
    std::string req = h.request(f.tokens[0]);
    ProcStats before = ReadProc(f.target.pid);
    Conn conn;
    if (!conn.Open(f.target).empty()) {
      Fail("5: cannot connect for " + h.name);
      continue;
    }
    int64_t t0 = NowMicros();
    // Send while reading, as a client that does not read cannot see an early answer.
    std::string answer;
    Response r;
    std::atomic<bool> sending_done{false};
    std::string send_error;
    std::thread sender([&] {
      send_error = conn.Send(req, 30000);
      sending_done = true;
    });
    std::string why = conn.Read(&r, 30000);
    int64_t ms = (NowMicros() - t0) / 1000;
    if (why.empty()) {
      answer = std::to_string(r.status);
      std::string code;
      json j = json::parse(r.body, nullptr, false);
      if (j.is_object() && j.contains("error")) code = j["error"].value("code", "");
      if (!code.empty()) answer += " " + code;
    } else {
      answer = "no answer: " + why;
    }
    // Whether the connection stays usable: a clean server answers a normal
    // request next on it, or closes it.
    std::string then;
    if (why.empty()) {
      if (!h.send_all) ::shutdown(conn.fd(), SHUT_WR);
      sender.join();
      Response next;
      std::string follow = h.send_all ? conn.Send(BuildRequest("GET", version_path, f.tokens[0]), 2000) : "skipped";
      if (follow.empty()) {
        follow = conn.Read(&next, 5000);
        then = follow.empty() ? "next request " + std::to_string(next.status) : "then " + follow;
        // Pistache reads the rest of a refused body as new requests.
        if (follow.empty() && next.status != 200) then += " (body read as a request?)";
      } else {
        then = follow == "skipped" ? "" : "then " + follow;
      }
    } else {
      ::shutdown(conn.fd(), SHUT_RDWR);
      sender.join();
    }
    conn.Close();
    ProcStats after = ReadProc(f.target.pid);
    std::printf("    %-52s %-22s %9lld %s (RSS %+.1f MiB)\n", h.name.c_str(), answer.c_str(),
                static_cast<long long>(ms), then.c_str(), static_cast<double>(after.rss_kb - before.rss_kb) / 1024.0);
    if (!after.alive) {
      Fail("5: sigild died on " + h.name);
      break;
    }
    bool clean = (why.empty() && r.status >= 400 && r.status < 500) || why == "closed" || why == "reset" ||
                 (h.valid_head && why.empty() && r.status / 100 == 2);
    if (!clean) Fail("5: " + h.name + ": " + answer);
    if (ms > 5000) Fail("5: " + h.name + " took " + std::to_string(ms) + " ms to be refused");
  }
  ProcStats end = ReadProc(f.target.pid);
  std::printf("    %s\n", Describe(end).c_str());
  stop = true;
  prober.join();
  std::printf("  fast clients during the hostile requests:\n");
  Stats& snapshot = probe;
  PrintStats(snapshot, static_cast<double>(NowMicros() - probe_start) / 1e6);
  if (snapshot.ErrorCount() > 0) Fail("5: fast clients saw errors during the hostile requests");
  Response r;
  if (!upload_id.empty()) owner.Do("DELETE", "/api/v1/uploads/" + upload_id, "", &r);
}

void Scenario6(const Fixture& f, const Options& o) {
  std::printf("\n== 6. %d idle connections held open at once, then normal requests beside them\n",
              o.idle_connections);
  ProcStats base = ReadProc(f.target.pid);
  std::vector<Conn> conns(static_cast<size_t>(o.idle_connections));
  std::map<std::string, int> failures;
  std::mutex mu;
  const int openers = 8;
  int64_t t0 = NowMicros();
  std::vector<std::thread> threads;
  for (int w = 0; w < openers; ++w) {
    threads.emplace_back([&, w] {
      for (size_t i = static_cast<size_t>(w); i < conns.size(); i += openers) {
        std::string why = conns[i].Open(f.target, 10000);
        if (!why.empty()) {
          std::lock_guard<std::mutex> lock(mu);
          ++failures[why];
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  double open_s = static_cast<double>(NowMicros() - t0) / 1e6;
  int opened = 0;
  for (const auto& c : conns) opened += c.valid() ? 1 : 0;
  std::printf("  opened %d of %d in %.2f s", opened, o.idle_connections, open_s);
  for (const auto& [why, n] : failures) std::printf("; %d failed: %s", n, why.c_str());
  std::printf("\n");
  SleepMs(2000);
  ProcStats held = ReadProc(f.target.pid);
  std::printf("  held: %s (baseline %d fds, RSS %.1f MiB: %+.1f KiB per connection)\n", Describe(held).c_str(),
              base.fds, static_cast<double>(base.rss_kb) / 1024.0,
              opened > 0 ? static_cast<double>(held.rss_kb - base.rss_kb) / opened : 0.0);
  if (held.fds < base.fds + opened - 16) {
    Fail("6: sigild accepted only " + std::to_string(held.fds - base.fds) + " of " + std::to_string(opened) +
         " connections (the rest wait in the listen backlog or were refused)");
  }
  // New clients while they are open.
  Stats fresh;
  FastProbe(f, fresh, 4, 3);
  std::printf("  4 new fast clients for 3 s beside them:\n");
  PrintStats(fresh, 3);
  // Some of the held connections now ask something: they were really served.
  Stats old;
  int asked = std::min(opened, 200);
  int64_t ask_start = NowMicros();
  for (size_t i = 0, n = 0; i < conns.size() && static_cast<int>(n) < asked; i += conns.size() / static_cast<size_t>(asked)) {
    if (!conns[i].valid()) continue;
    ++n;
    int64_t s = NowMicros();
    std::string why = conns[i].Send(BuildRequest("GET", "/api/v1/models/" + f.repo + "/versions/" + f.version,
                                                 f.tokens[0]), 5000);
    Response r;
    if (why.empty()) why = conns[i].Read(&r, 10000);
    if (why.empty() && r.status != 200) why = "status " + std::to_string(r.status);
    if (why.empty()) old.Ok("held connection asks", NowMicros() - s, r.body_bytes);
    else old.Error("held connection asks", why);
  }
  std::printf("  %d of the held connections send a request, one after another:\n", asked);
  PrintStats(old, static_cast<double>(NowMicros() - ask_start) / 1e6);
  for (auto& c : conns) c.Close();
  ProcStats settled = WaitForBaseline(f.target.pid, base, 4, 20);
  std::printf("  closed them all: %s\n", Describe(settled).c_str());
  if (fresh.ErrorCount() > 0) Fail("6: new clients saw errors beside the idle connections");
  if (old.ErrorCount() > 0) Fail("6: held connections were not served");
  if (opened < o.idle_connections) Fail("6: only " + std::to_string(opened) + " connections could be opened");
  if (settled.fds > base.fds + 4) Fail("6: descriptors stay open after the idle connections closed");
}

// ---------------------------------------------------------------- setup

std::string NewTokenText() {
  static const char kHex[] = "0123456789abcdef";
  static const char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::random_device rd;
  std::mt19937_64 rng((static_cast<uint64_t>(rd()) << 32) ^ rd());
  std::string t = "sgl_";
  for (int i = 0; i < 16; ++i) t.push_back(kHex[rng() % 16]);
  t.push_back('_');
  for (int i = 0; i < 42; ++i) t.push_back(kB64[rng() % 64]);
  t.push_back(kB64[(rng() % 16) * 4]);
  return t;
}

int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return 0;
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

pid_t StartSigild(const std::string& binary, const std::string& dir, int port, const std::string& token,
                  const std::vector<std::string>& extra) {
  std::ofstream(dir + "/token") << token << "\n";
  ::chmod((dir + "/token").c_str(), 0600);
  std::vector<std::string> args = {binary, "--data", dir + "/data", "--listen", "127.0.0.1:" + std::to_string(port),
                                   "--bootstrap-token-file", dir + "/token", "--rate-limit", "0"};
  args.insert(args.end(), extra.begin(), extra.end());
  pid_t pid = ::fork();
  if (pid == 0) {
    int fd = ::open((dir + "/sigild.log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd < 0 || ::dup2(fd, 1) < 0 || ::dup2(fd, 2) < 0) ::_exit(126);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(binary.c_str(), argv.data());
    ::_exit(127);
  }
  return pid;
}

bool WaitHealthy(const Target& t, pid_t child, double seconds) {
  int64_t end = NowMicros() + static_cast<int64_t>(seconds * 1e6);
  while (NowMicros() < end) {
    int status = 0;
    if (child > 0 && ::waitpid(child, &status, WNOHANG) == child) return false;
    Client c(t, "");
    Response r;
    if (c.Do("GET", "/healthz", "", &r, {}, 1000).empty() && r.status == 200) return true;
    SleepMs(100);
  }
  return false;
}

int Usage() {
  std::fprintf(stderr,
               "usage: load (--sigild PATH [--sigild-arg ARG]... | --target HOST:PORT --token TOKEN [--pid PID])\n"
               "            [--scenarios 1,2,3,4,5,6] [--clients 64] [--seconds 10] [--trickle 64]\n"
               "            [--slow-readers 48] [--disconnects 300] [--idle 10000] [--large-mib 64]\n"
               "            [--upload-expiry-s 30] [--no-expiry-wait]\n");
  return 2;
}

int Main(int argc, char** argv) {
  Options o;
  std::string sigild;
  std::vector<std::string> sigild_args;
  std::string target_text;
  std::string token;
  pid_t pid = -1;
  int64_t expiry_s = 30;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
      return argv[++i];
    };
    try {
      if (a == "--sigild") sigild = value();
      else if (a == "--sigild-arg") sigild_args.push_back(value());
      else if (a == "--target") target_text = value();
      else if (a == "--token") token = value();
      else if (a == "--pid") pid = std::stoi(value());
      else if (a == "--clients") o.clients = std::stoi(value());
      else if (a == "--seconds") o.seconds = std::stod(value());
      else if (a == "--trickle") o.trickle_clients = std::stoi(value());
      else if (a == "--slow-readers") o.slow_readers = std::stoi(value());
      else if (a == "--disconnects") o.disconnects = std::stoi(value());
      else if (a == "--idle") o.idle_connections = std::stoi(value());
      else if (a == "--large-mib") o.large_mib = std::stoul(value());
      else if (a == "--upload-expiry-s") expiry_s = std::stoll(value());
      else if (a == "--no-expiry-wait") o.wait_expiry = false;
      else if (a == "--scenarios") {
        o.scenarios.clear();
        std::stringstream list(value());
        std::string item;
        while (std::getline(list, item, ',')) o.scenarios.insert(std::stoi(item));
      } else {
        std::fprintf(stderr, "load: unknown argument %s\n", a.c_str());
        return Usage();
      }
    } catch (const std::exception& e) {
      std::fprintf(stderr, "load: %s: %s\n", a.c_str(), e.what());
      return Usage();
    }
  }
  if (sigild.empty() == target_text.empty()) return Usage();
  if (o.clients < 1 || o.trickle_clients < 0 || o.slow_readers < 0 || o.disconnects < 0 ||
      o.idle_connections < 0 || o.large_mib < 1 || o.seconds <= 0) {
    return Usage();
  }

  // Room for the idle connections and every client.
  rlimit files{};
  ::getrlimit(RLIMIT_NOFILE, &files);
  files.rlim_cur = files.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &files);
  ::signal(SIGPIPE, SIG_IGN);
  if (static_cast<rlim_t>(o.idle_connections) + 1000 > files.rlim_cur) {
    std::fprintf(stderr, "load: RLIMIT_NOFILE hard limit %llu is too low for --idle %d\n",
                 static_cast<unsigned long long>(files.rlim_max), o.idle_connections);
    return 2;
  }

  Fixture f;
  std::string dir;
  pid_t child = -1;
  // A setup that fails after sigild started must not leave it running.
  struct Reaper {
    pid_t* pid = nullptr;
    ~Reaper() {
      if (pid == nullptr || *pid <= 0) return;
      ::kill(*pid, SIGKILL);
      ::waitpid(*pid, nullptr, 0);
    }
  } reaper;
  if (!sigild.empty()) {
    char tmpl[] = "/tmp/sigil-load-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) {
      std::perror("mkdtemp");
      return 1;
    }
    dir = tmpl;
    f.target.port = FreePort();
    f.admin = NewTokenText();
    std::vector<std::string> extra = {"--upload-expiry", std::to_string(expiry_s) + "s"};
    extra.insert(extra.end(), sigild_args.begin(), sigild_args.end());
    child = StartSigild(sigild, dir, f.target.port, f.admin, extra);
    f.target.pid = child;
    reaper.pid = &child;
    if (!WaitHealthy(f.target, child, 30)) {
      std::fprintf(stderr, "load: sigild did not become healthy; its log: %s/sigild.log\n", dir.c_str());
      return 1;
    }
  } else {
    size_t colon = target_text.rfind(':');
    if (colon == std::string::npos || token.empty()) return Usage();
    f.target.host = target_text.substr(0, colon);
    f.target.port = std::atoi(target_text.c_str() + colon + 1);
    if (f.target.port <= 0 || f.target.port > 65535) return Usage();
    f.target.pid = pid;
    f.admin = token;
    expiry_s = 0;  // unknown for a running server
  }
  f.target.token = f.admin;

  std::printf("sigil load: sigild at %s:%d (pid %d%s)\n", f.target.host.c_str(), f.target.port, f.target.pid,
              dir.empty() ? "" : (", data in " + dir).c_str());
  unsigned cores = std::thread::hardware_concurrency();
  std::printf("host: %u cores; %s\n", cores, Describe(ReadProc(f.target.pid)).c_str());

  // Fixture: pusher tokens, blobs to download, one version.
  Client admin(f.target, f.admin);
  int token_count = std::max({o.clients, 16, std::min(o.slow_readers, 64)});
  for (int i = 0; i < token_count; ++i) {
    std::string t;
    std::string why = NewToken(admin, "load-" + std::to_string(::getpid()) + "-" + std::to_string(i), &t);
    if (!why.empty()) {
      std::fprintf(stderr, "load: creating a token: %s\n", why.c_str());
      return 1;
    }
    f.tokens.push_back(t);
  }
  Response r;
  if (!admin.Do("POST", "/api/v1/uploads", "", &r).empty() || r.status != 201) {
    std::fprintf(stderr, "load: cannot open an upload session: %d %s\n", r.status, r.body.c_str());
    return 1;
  }
  json opened = json::parse(r.body);
  f.chunk_max = opened["chunk_max"];
  admin.Do("DELETE", "/api/v1/uploads/" + opened["id"].get<std::string>(), "", &r);
  size_t chunk = std::min<size_t>(f.chunk_max, 16 << 20);
  auto add = [&](std::vector<Blob>* to, size_t size, uint64_t seed) {
    Blob b;
    b.bytes = RandomBytes(size, seed);
    std::string why = PushBlob(admin, b.bytes, chunk, &b.digest);
    if (!why.empty()) throw std::runtime_error("pushing a fixture blob: " + why);
    if (to != nullptr) to->push_back(std::move(b));
    else f.large = std::move(b);
  };
  try {
    for (int i = 0; i < 4; ++i) add(&f.small, 4096, 100 + static_cast<uint64_t>(i));
    for (int i = 0; i < 4; ++i) add(&f.medium, 1 << 20, 200 + static_cast<uint64_t>(i));
    add(nullptr, o.large_mib << 20, 300);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "load: %s\n", e.what());
    return 1;
  }
  f.large.bytes.clear();
  {
    Stats setup;
    Client c(f.target, f.admin);
    if (!PushVersion(c, setup, f.repo, f.version, 1, 64 << 10)) {
      std::fprintf(stderr, "load: pushing the fixture version failed\n");
      PrintStats(setup, 1);
      return 1;
    }
  }
  std::printf("fixture: %zu tokens, 4 x 4 KiB, 4 x 1 MiB and 1 x %zu MiB blobs, version %s:%s; chunk_max %zu\n",
              f.tokens.size(), o.large_mib, f.repo.c_str(), f.version.c_str(), f.chunk_max);
  std::printf("after setup: %s\n", Describe(ReadProc(f.target.pid)).c_str());
  std::fflush(stdout);

  auto check_alive = [&](int n) {
    if (f.target.pid <= 0) return true;
    ProcStats p = ReadProc(f.target.pid);
    if (p.alive) return true;
    int status = 0;
    if (child > 0 && ::waitpid(child, &status, WNOHANG) == child) {
      Fail("sigild exited during scenario " + std::to_string(n) + ": " +
           (WIFSIGNALED(status) ? std::string("signal ") + strsignal(WTERMSIG(status))
                                : "status " + std::to_string(WEXITSTATUS(status))));
      child = -1;
    } else {
      Fail("sigild is gone after scenario " + std::to_string(n));
    }
    return false;
  };
  std::map<int, std::function<void()>> runs = {
      {1, [&] { Scenario1(f, o); }}, {2, [&] { Scenario2(f, o); }},
      {3, [&] { Scenario3(f, o); }}, {4, [&] { Scenario4(f, o, expiry_s); }},
      {5, [&] { Scenario5(f, o); }}, {6, [&] { Scenario6(f, o); }},
  };
  for (int n : o.scenarios) {
    auto it = runs.find(n);
    if (it == runs.end()) continue;
    it->second();
    std::fflush(stdout);
    if (!check_alive(n)) break;
  }

  if (child > 0) {
    ::kill(child, SIGTERM);
    int status = 0;
    int64_t end = NowMicros() + 20'000'000;
    pid_t done = 0;
    while ((done = ::waitpid(child, &status, WNOHANG)) == 0 && NowMicros() < end) SleepMs(100);
    if (done == 0) {
      Fail("sigild did not stop within 20 s of SIGTERM");
      ::kill(child, SIGKILL);
      ::waitpid(child, &status, 0);
    } else if (WIFSIGNALED(status) || WEXITSTATUS(status) != 0) {
      Fail("sigild's exit after SIGTERM: " + (WIFSIGNALED(status) ? std::string("signal ") + strsignal(WTERMSIG(status))
                                                                 : "status " + std::to_string(WEXITSTATUS(status))));
    }
    child = -1;
  }
  std::printf("\n%s\n", g_failures.empty() ? "all scenarios held" : "FAILED:");
  for (const auto& why : g_failures) std::printf("  - %s\n", why.c_str());
  if (!dir.empty()) {
    if (g_failures.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    } else {
      std::printf("sigild's data and log kept in %s\n", dir.c_str());
    }
  }
  return g_failures.empty() ? 0 : 1;
}

}  // namespace
}  // namespace sigil::bench

int main(int argc, char** argv) { return sigil::bench::Main(argc, argv); }
