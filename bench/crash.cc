// sigil-crash: kill -9 consistency harness (docs/crash.md).
//
// Starts sigild on a fresh data directory, runs client workers doing real
// work over HTTP (pushes of versions whose files partly reuse blobs, alias
// moves by admin override, server signatures, chunked uploads of larger
// blobs), and kills sigild with SIGKILL after a random delay, again and
// again. After each kill it runs the offline check (registry/check.h) with
// the newest checkpoint seen, restarts sigild and verifies online that every
// write acknowledged with a 2xx is there with the same content, that the
// log's new checkpoint is consistent with those seen before, and that each
// interrupted upload resumes from an offset no lower than the last
// acknowledged one and completes with the right digest.
//
//   sigil-crash [--kills N] [--seed S] [--workers W] [--min-delay-ms A]
//               [--max-delay-ms B] [--work DIR] [--keep] [--sigild PATH]
//
// Exit status: 0 when every invariant held, 1 on the first violation (the
// message says what and where), 2 when the harness itself cannot run.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "attest/checkpoint.h"
#include "attest/merkle.h"
#include "cli/http_client.h"
#include "core/digest.h"
#include "core/fs.h"
#include "registry/check.h"
#include "registry/manifest.h"
#include "signing/base64.h"

namespace sigil::crash {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr uint64_t kChunkMax = 64 << 10;

struct Options {
  int kills = 300;
  uint64_t seed = 0;
  int workers = 3;
  int min_delay_ms = 100;
  int max_delay_ms = 1200;
  std::string work;
  bool keep = false;
  std::string sigild = SIGILD_BINARY;
};

// Violations stop the harness; the first one is what it reports.
std::mutex g_mu;
std::vector<std::string> g_violations;
void Violation(const std::string& what) {
  std::lock_guard<std::mutex> lock(g_mu);
  g_violations.push_back(what);
  std::fprintf(stderr, "VIOLATION: %s\n", what.c_str());
}
bool Violated() {
  std::lock_guard<std::mutex> lock(g_mu);
  return !g_violations.empty();
}

std::atomic<uint64_t> g_acked{0};
std::atomic<uint64_t> g_checked{0};
std::atomic<uint64_t> g_resumed{0};

// Random bytes behind a plain-text first line: the server's scanner sees no
// known format in them, so a version holding them is never quarantined
// (whose blobs are then refused to pulls with 403 by design).
std::string RandomBytes(std::mt19937_64& rng, size_t n) {
  static constexpr std::string_view kHeader = "sigil-crash data\n";
  std::string s(n, '\0');
  for (size_t i = 0; i < n; i += 8) {
    uint64_t v = rng();
    std::memcpy(s.data() + i, &v, std::min<size_t>(8, n - i));
  }
  s.replace(0, std::min(n, kHeader.size()), kHeader.substr(0, std::min(n, kHeader.size())));
  return s;
}

std::string MakeToken(std::mt19937_64& rng) {
  static const char kHex[] = "0123456789abcdef";
  static const char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string t = "sgl_";
  for (int i = 0; i < 16; ++i) t.push_back(kHex[rng() % 16]);
  t.push_back('_');
  for (int i = 0; i < 42; ++i) t.push_back(kB64[rng() % 64]);
  t.push_back(kB64[(rng() % 16) * 4]);
  return t;
}

class Server {
 public:
  Server(Options options, std::string data, std::string token_file, int port)
      : options_(std::move(options)), data_(std::move(data)), token_file_(std::move(token_file)), port_(port) {}
  ~Server() { Kill(); }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  bool Start() {
    std::vector<std::string> args = {options_.sigild, "--data", data_, "--listen", "127.0.0.1:" + std::to_string(port_),
                                     "--bootstrap-token-file", token_file_, "--rate-limit", "0",
                                     "--chunk-max", std::to_string(kChunkMax), "--log-origin", "sigil/crash"};
    pid_t pid = ::fork();
    if (pid == 0) {
      std::string log = data_ + ".log";
      int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      if (fd < 0 || ::dup2(fd, 1) < 0 || ::dup2(fd, 2) < 0) ::_exit(126);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    if (pid < 0) return false;
    pid_ = pid;
    cli::HttpOptions o;
    o.token = "";
    cli::HttpClient http(url(), o);
    auto deadline = Clock::now() + std::chrono::seconds(30);
    while (Clock::now() < deadline) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        why_ = WIFSIGNALED(status) ? "killed by signal " + std::to_string(WTERMSIG(status))
                                   : "exited with status " + std::to_string(WEXITSTATUS(status)) +
                                         (WEXITSTATUS(status) == 127 ? " (could not run " + options_.sigild + ")" : "");
        return false;
      }
      auto r = http.Perform(cli::HttpRequest{.path = "/healthz"});
      if (r.ok() && r->status == 200) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    why_ = "not healthy within 30 s";
    return false;
  }

  const std::string& why() const { return why_; }

  void Kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

 private:
  Options options_;
  std::string data_;
  std::string token_file_;
  int port_;
  pid_t pid_ = -1;
  std::string why_;
};

int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return 0;
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

struct AckedVersion {
  std::string version;
  std::string manifest;
};
struct AckedAttestation {
  std::string version;
  std::string content_digest;
  uint64_t log_index = 0;
};
struct Upload {
  std::string id;
  std::string content;
  uint64_t acked = 0;        // the offset the server last acknowledged
  uint64_t inflight_end = 0; // end of a chunk sent but not acknowledged
  bool committing = false;   // the commit was sent, no answer yet
};

// One client's work and everything the server acknowledged to it. Each
// worker has its own repository, so its alias moves are ordered.
struct Worker {
  int index = 0;
  std::string repo;
  std::mt19937_64 rng;
  uint64_t counter = 0;
  std::vector<std::pair<std::string, std::string>> blobs;  // digest, content
  std::vector<AckedVersion> versions;
  std::vector<AckedAttestation> attestations;
  std::map<std::string, std::string> aliases;        // alias -> version (acked)
  std::map<std::string, std::string> alias_inflight; // alias -> version (sent, no answer)
  Upload upload;
  // How much of each list was verified after an earlier restart.
  size_t blobs_verified = 0, versions_verified = 0, attestations_verified = 0;
};

std::string Where(const Worker& w) { return "worker " + std::to_string(w.index) + " (" + w.repo + ")"; }

// Perform: nullopt when the server did not answer (it was killed).
std::optional<cli::HttpResponse> Call(cli::HttpClient& http, cli::HttpRequest request) {
  // One connection per request: sigild's keep-alive handling is being
  // rewritten, and this harness checks durability, not connection reuse.
  request.headers.push_back("Connection: close");
  auto r = http.Perform(request);
  if (!r.ok()) return std::nullopt;
  return *r;
}

bool Expect(const Worker& w, const cli::HttpResponse& r, std::initializer_list<long> ok, const std::string& what) {
  for (long s : ok) {
    if (r.status == s) return true;
  }
  Violation(Where(w) + ": " + what + " answered " + std::to_string(r.status) + ": " + r.body.substr(0, 300));
  return false;
}

// Each step returns false when the server stopped answering.
bool PutBlob(Worker& w, cli::HttpClient& http, const std::string& content, std::string* digest_out) {
  std::string digest = core::Sha256::Of(content).ToString();
  auto r = Call(http, {.method = "PUT", .path = "/api/v1/blobs/" + digest, .body = content});
  if (!r) return false;
  if (!Expect(w, *r, {201}, "PUT blob")) return false;
  w.blobs.push_back({digest, content});
  ++g_acked;
  *digest_out = digest;
  return true;
}

bool PushVersion(Worker& w, cli::HttpClient& http) {
  registry::Manifest m;
  m.artifact_type = std::string(registry::kModelArtifactType);
  std::string config = json{{"worker", w.index}, {"n", w.counter}}.dump();
  std::string config_digest;
  if (!PutBlob(w, http, config, &config_digest)) return false;
  m.config.media_type = std::string(registry::kModelConfigMediaType);
  m.config.digest = core::Digest::Parse(config_digest).value();
  m.config.size = config.size();
  int files = 1 + static_cast<int>(w.rng() % 3);
  for (int i = 0; i < files; ++i) {
    std::string digest, content;
    if (!w.blobs.empty() && w.rng() % 10 < 4) {
      // An acknowledged blob again: dedup across versions.
      const auto& b = w.blobs[w.rng() % w.blobs.size()];
      digest = b.first;
      content = b.second;
    } else {
      content = RandomBytes(w.rng, 1 + w.rng() % (16 << 10));
      if (!PutBlob(w, http, content, &digest)) return false;
    }
    registry::Descriptor d;
    d.media_type = std::string(registry::kLayerMediaType);
    d.digest = core::Digest::Parse(digest).value();
    d.size = content.size();
    d.annotations[std::string(registry::kTitleAnnotation)] = "file-" + std::to_string(i) + ".bin";
    m.layers.push_back(d);
  }
  std::string manifest = registry::SerializeManifest(m);
  std::string version = "v" + std::to_string(w.counter++);
  auto r = Call(http, {.method = "PUT", .path = "/api/v1/models/" + w.repo + "/versions/" + version, .body = manifest});
  if (!r) return false;
  if (!Expect(w, *r, {201}, "PUT version " + version)) return false;
  w.versions.push_back({version, manifest});
  ++g_acked;
  return true;
}

bool MoveAlias(Worker& w, cli::HttpClient& http) {
  if (w.versions.empty()) return true;
  std::string alias = w.rng() % 2 ? "staging" : "production";
  std::string version = w.versions[w.rng() % w.versions.size()].version;
  std::string body = json{{"ref", version}}.dump();
  w.alias_inflight[alias] = version;
  auto r = Call(http, {.method = "PUT", .path = "/api/v1/models/" + w.repo + "/aliases/" + alias, .body = body});
  if (!r) return false;
  w.alias_inflight.erase(alias);
  if (!Expect(w, *r, {200}, "PUT alias " + alias)) return false;
  w.aliases[alias] = version;
  ++g_acked;
  return true;
}

bool Sign(Worker& w, cli::HttpClient& http) {
  if (w.versions.empty()) return true;
  std::string version = w.versions[w.rng() % w.versions.size()].version;
  auto r = Call(http, {.method = "POST", .path = "/api/v1/models/" + w.repo + "/versions/" + version + "/sign"});
  if (!r) return false;
  if (!Expect(w, *r, {200, 201}, "POST sign " + version)) return false;
  json a = json::parse(r->body, nullptr, false);
  if (!a.is_object() || !a.contains("content_digest") || !a.contains("log_index")) {
    Violation(Where(w) + ": sign answered without content_digest/log_index: " + r->body.substr(0, 300));
    return false;
  }
  w.attestations.push_back({version, a["content_digest"].get<std::string>(), a["log_index"].get<uint64_t>()});
  ++g_acked;
  return true;
}

bool UploadStep(Worker& w, cli::HttpClient& http) {
  Upload& u = w.upload;
  if (u.id.empty()) {
    auto r = Call(http, {.method = "POST", .path = "/api/v1/uploads"});
    if (!r) return false;
    if (!Expect(w, *r, {201}, "POST upload")) return false;
    u = Upload{};
    u.id = json::parse(r->body)["id"].get<std::string>();
    u.content = RandomBytes(w.rng, (64 << 10) + w.rng() % (192 << 10));
    ++g_acked;
    return true;
  }
  if (u.acked < u.content.size()) {
    uint64_t n = std::min<uint64_t>(u.content.size() - u.acked, (16 << 10) + w.rng() % (kChunkMax - (16 << 10) + 1));
    u.inflight_end = u.acked + n;
    std::string range = "Content-Range: " + std::to_string(u.acked) + "-" + std::to_string(u.inflight_end - 1);
    auto r = Call(http, {.method = "PATCH", .path = "/api/v1/uploads/" + u.id, .headers = {range},
                         .body = std::string_view(u.content).substr(u.acked, n)});
    if (!r) return false;
    if (!Expect(w, *r, {202}, "PATCH upload " + u.id)) return false;
    uint64_t offset = json::parse(r->body)["offset"].get<uint64_t>();
    if (offset != u.inflight_end) {
      Violation(Where(w) + ": PATCH upload " + u.id + " acknowledged offset " + std::to_string(offset) + ", sent up to " +
                std::to_string(u.inflight_end));
      return false;
    }
    u.acked = offset;
    u.inflight_end = 0;
    ++g_acked;
    return true;
  }
  std::string digest = core::Sha256::Of(u.content).ToString();
  u.committing = true;
  auto r = Call(http, {.method = "PUT", .path = "/api/v1/uploads/" + u.id + "?digest=" + digest});
  if (!r) return false;
  if (!Expect(w, *r, {201}, "PUT upload " + u.id)) return false;
  json j = json::parse(r->body, nullptr, false);
  if (!j.is_object() || j.value("digest", "") != digest) {
    Violation(Where(w) + ": commit of upload " + u.id + " answered " + r->body.substr(0, 200) + ", expected " + digest);
    return false;
  }
  w.blobs.push_back({digest, u.content});
  u = Upload{};
  ++g_acked;
  return true;
}

// After a restart: the interrupted upload resumes from the server's offset.
void ResumeUpload(Worker& w, cli::HttpClient& http) {
  Upload& u = w.upload;
  if (u.id.empty()) return;
  auto r = Call(http, {.path = "/api/v1/uploads/" + u.id});
  if (!r) {
    Violation(Where(w) + ": no answer to GET upload after restart");
    return;
  }
  ++g_checked;
  std::string digest = core::Sha256::Of(u.content).ToString();
  if (r->status == 404) {
    // Only a commit that was in flight may have ended the session; then the
    // blob must be there, whole.
    if (!u.committing) {
      Violation(Where(w) + ": upload " + u.id + " acknowledged up to " + std::to_string(u.acked) +
                " is unknown after the restart");
      return;
    }
    auto b = Call(http, {.path = "/api/v1/blobs/" + digest});
    if (!b || b->status != 200 || core::Sha256::Of(b->body).ToString() != digest) {
      Violation(Where(w) + ": upload " + u.id + " vanished during its commit but blob " + digest + " is not there");
      return;
    }
    w.blobs.push_back({digest, u.content});
    u = Upload{};
    return;
  }
  if (r->status != 200) {
    Violation(Where(w) + ": GET upload " + u.id + " after restart answered " + std::to_string(r->status) + ": " + r->body);
    return;
  }
  uint64_t offset = json::parse(r->body)["offset"].get<uint64_t>();
  uint64_t most = std::max(u.acked, u.inflight_end);
  if (offset < u.acked || offset > most) {
    Violation(Where(w) + ": upload " + u.id + " resumes at " + std::to_string(offset) + " after the restart; acknowledged " +
              std::to_string(u.acked) + ", sent up to " + std::to_string(most));
    return;
  }
  ++g_resumed;
  u.acked = offset;
  u.inflight_end = 0;
  u.committing = false;
}

void RunWorker(Worker& w, const std::string& url, const std::string& token, std::atomic<bool>& stop) {
  cli::HttpOptions o;
  o.token = token;
  o.stall_seconds = std::chrono::seconds(10);
  cli::HttpClient http(url, o);
  try {
    ResumeUpload(w, http);
    while (!stop && !Violated()) {
      uint64_t r = w.rng() % 10;
      bool answered = r < 4 ? PushVersion(w, http) : r < 6 ? MoveAlias(w, http) : r < 7 ? Sign(w, http) : UploadStep(w, http);
      if (!answered) return;
    }
  } catch (const std::exception& e) {
    Violation(Where(w) + ": malformed answer: " + e.what());
  }
}

// Verifies the acknowledged state of a worker: everything new since the
// last restart in full, and a few older items at random.
void VerifyWorker(Worker& w, cli::HttpClient& http, std::mt19937_64& rng) {
  auto pick = [&](size_t verified, size_t total) {
    std::vector<size_t> out;
    for (size_t i = verified; i < total; ++i) out.push_back(i);
    for (int k = 0; k < 4 && verified > 0; ++k) out.push_back(rng() % verified);
    return out;
  };
  for (size_t i : pick(w.blobs_verified, w.blobs.size())) {
    const auto& [digest, content] = w.blobs[i];
    auto r = Call(http, {.path = "/api/v1/blobs/" + digest});
    ++g_checked;
    if (!r || r->status != 200 || r->body != content) {
      Violation(Where(w) + ": acknowledged blob " + digest + " is " +
                (r ? "answered " + std::to_string(r->status) + " with " + std::to_string(r->body.size()) + " bytes"
                   : std::string("unanswered")));
      return;
    }
  }
  w.blobs_verified = w.blobs.size();
  for (size_t i : pick(w.versions_verified, w.versions.size())) {
    const AckedVersion& v = w.versions[i];
    auto r = Call(http, {.path = "/api/v1/models/" + w.repo + "/versions/" + v.version + "/manifest"});
    ++g_checked;
    if (!r || r->status != 200 || r->body != v.manifest) {
      Violation(Where(w) + ": acknowledged version " + v.version + " is " +
                (r ? "answered " + std::to_string(r->status) + ": " + r->body.substr(0, 200) : std::string("unanswered")));
      return;
    }
  }
  w.versions_verified = w.versions.size();
  for (const char* alias : {"staging", "production"}) {
    auto acked = w.aliases.find(alias);
    auto inflight = w.alias_inflight.find(alias);
    if (acked == w.aliases.end() && inflight == w.alias_inflight.end()) continue;
    auto r = Call(http, {.path = "/api/v1/models/" + w.repo + "/aliases/" + alias});
    ++g_checked;
    std::string now;
    if (r && r->status == 200) now = json::parse(r->body).value("version", "");
    // An alias never acknowledged may be unset (404) when its first move,
    // in flight at the kill, did not happen.
    bool ok = (acked != w.aliases.end() && now == acked->second) ||
              (inflight != w.alias_inflight.end() && now == inflight->second) ||
              (acked == w.aliases.end() && r && r->status == 404);
    if (!ok) {
      Violation(Where(w) + ": alias " + alias + " is '" + now + "' (" + (r ? std::to_string(r->status) : "no answer") +
                "); acknowledged '" + (acked != w.aliases.end() ? acked->second : "") + "', in flight '" +
                (inflight != w.alias_inflight.end() ? inflight->second : "") + "'");
      return;
    }
    if (!now.empty()) w.aliases[alias] = now;
    w.alias_inflight.erase(alias);
  }
  for (size_t i : pick(w.attestations_verified, w.attestations.size())) {
    const AckedAttestation& a = w.attestations[i];
    auto r = Call(http, {.path = "/api/v1/log/entries/" + std::to_string(a.log_index)});
    ++g_checked;
    std::string leaf_content;
    if (r && r->status == 200) {
      json e = json::parse(r->body, nullptr, false);
      auto leaf = signing::Base64Decode(e.value("leaf", ""));
      if (leaf.ok()) leaf_content = json::parse(*leaf, nullptr, false).value("content_digest", "");
    }
    if (leaf_content != a.content_digest) {
      Violation(Where(w) + ": log entry " + std::to_string(a.log_index) + " of acknowledged attestation " +
                a.content_digest + " on " + a.version + " is " +
                (r ? "answered " + std::to_string(r->status) + ": " + r->body.substr(0, 200) : std::string("unanswered")));
      return;
    }
    auto list = Call(http, {.path = "/api/v1/models/" + w.repo + "/versions/" + a.version + "/attestations"});
    ++g_checked;
    bool listed = false;
    if (list && list->status == 200) {
      json j = json::parse(list->body, nullptr, false);
      if (j.is_object() && j.contains("attestations")) {
        for (const json& att : j["attestations"]) listed = listed || att.value("content_digest", "") == a.content_digest;
      }
    }
    if (!listed) {
      Violation(Where(w) + ": acknowledged attestation " + a.content_digest + " is not listed on " + a.version);
      return;
    }
  }
  w.attestations_verified = w.attestations.size();
}

// Checkpoints seen so far; every new one must be consistent with them.
class CheckpointWatch {
 public:
  bool Init(cli::HttpClient& http) {
    auto r = Call(http, {.path = "/api/v1/keys/server"});
    if (!r || r->status != 200) return false;
    auto key = attest::ParseNoteVerifierKey(json::parse(r->body)["log"]["verifier"].get<std::string>());
    if (!key.ok()) return false;
    verifiers_ = {*key};
    return true;
  }

  // Fetches the current checkpoint and checks it against those before.
  // False when the server did not answer.
  bool Poll(cli::HttpClient& http, std::mt19937_64& rng) {
    auto r = Call(http, {.path = "/api/v1/log/checkpoint"});
    if (!r) return false;
    if (r->status != 200) {
      Violation("GET /log/checkpoint answered " + std::to_string(r->status));
      return true;
    }
    auto cp = attest::VerifyCheckpoint(r->body, "sigil/crash", verifiers_);
    ++g_checked;
    if (!cp.ok()) {
      Violation("checkpoint does not verify: " + cp.status().ToString());
      return true;
    }
    if (!seen_.empty()) {
      std::vector<size_t> against = {seen_.size() - 1};
      for (int k = 0; k < 2; ++k) against.push_back(rng() % seen_.size());
      for (size_t i : against) {
        if (!Consistent(http, seen_[i], *cp)) return true;
      }
      if (cp->size == seen_.back().size) return true;
    }
    seen_.push_back(*cp);
    latest_note_ = r->body;
    return true;
  }

  const std::string& latest_note() const { return latest_note_; }
  size_t count() const { return seen_.size(); }
  uint64_t size() const { return seen_.empty() ? 0 : seen_.back().size; }

 private:
  bool Consistent(cli::HttpClient& http, const attest::Checkpoint& old, const attest::Checkpoint& now) {
    ++g_checked;
    if (now.size < old.size) {
      Violation("the log shrank: checkpoint of size " + std::to_string(now.size) + " after one of size " +
                std::to_string(old.size));
      return false;
    }
    if (old.size == 0) return true;
    if (now.size == old.size) {
      if (now.root != old.root) Violation("two checkpoints of size " + std::to_string(now.size) + " differ in root");
      return now.root == old.root;
    }
    auto r = Call(http, {.path = "/api/v1/log/proof/consistency?from=" + std::to_string(old.size) +
                                 "&to=" + std::to_string(now.size)});
    if (!r || r->status != 200) {
      Violation("consistency proof " + std::to_string(old.size) + " -> " + std::to_string(now.size) + " refused");
      return false;
    }
    std::vector<std::string> proof;
    json answer = json::parse(r->body, nullptr, false);
    if (!answer.is_object() || !answer.contains("hashes") || !answer["hashes"].is_array()) {
      Violation("consistency proof answer without hashes: " + r->body.substr(0, 300));
      return false;
    }
    for (const json& h : answer["hashes"]) {
      auto raw = signing::Base64Decode(h.get<std::string>());
      proof.push_back(raw.ok() ? *raw : std::string());
    }
    core::Status s = attest::VerifyConsistency(old.size, now.size, proof, attest::HashBytes(old.root),
                                               attest::HashBytes(now.root));
    if (!s.ok()) {
      Violation("checkpoint of size " + std::to_string(now.size) + " is not consistent with the one of size " +
                std::to_string(old.size) + ": " + s.ToString() + " (proof answer: " + r->body.substr(0, 300) + ")");
      return false;
    }
    return true;
  }

  std::vector<attest::NoteVerifier> verifiers_;
  std::vector<attest::Checkpoint> seen_;
  std::string latest_note_;
};

int Run(const Options& options) {
  std::printf("sigil-crash: seed %llu, %d kills, %d workers, delays %d-%d ms\n",
              static_cast<unsigned long long>(options.seed), options.kills, options.workers, options.min_delay_ms,
              options.max_delay_ms);
  std::fflush(stdout);
  std::mt19937_64 rng(options.seed);
  std::string work = options.work;
  if (work.empty()) {
    char tmpl[] = "/tmp/sigil-crash-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) {
      std::perror("mkdtemp");
      return 2;
    }
    work = tmpl;
  }
  std::string data = work + "/data";
  std::string token = MakeToken(rng);
  if (!core::MakeDirs(work).ok() || !core::WriteFileAtomic(work + "/token", token + "\n", 0600).ok()) {
    std::fprintf(stderr, "sigil-crash: cannot write to %s\n", work.c_str());
    return 2;
  }
  int port = FreePort();
  Server server(options, data, work + "/token", port);
  cli::HttpOptions http_options;
  http_options.token = token;
  http_options.stall_seconds = std::chrono::seconds(10);

  std::vector<Worker> workers(options.workers);
  for (int i = 0; i < options.workers; ++i) {
    workers[i].index = i;
    workers[i].repo = "crash/w" + std::to_string(i);
    workers[i].rng.seed(options.seed * 1000003 + static_cast<uint64_t>(i) + 1);
  }
  CheckpointWatch watch;
  auto started = Clock::now();
  double check_seconds = 0;
  int kills = 0;
  for (; kills < options.kills && !Violated(); ++kills) {
    if (!server.Start()) {
      Violation("sigild did not come back after kill " + std::to_string(kills) + ": " + server.why() + " (see " + data +
                ".log)");
      break;
    }
    cli::HttpClient http(server.url(), http_options);
    if (kills == 0 && !watch.Init(http)) {
      std::fprintf(stderr, "sigil-crash: cannot read the server's log key\n");
      return 2;
    }
    // The restarted server against everything acknowledged before the kill.
    if (!watch.Poll(http, rng)) Violation("no checkpoint after the restart");
    for (Worker& w : workers) {
      if (!Violated()) VerifyWorker(w, http, rng);
    }
    if (Violated()) break;

    std::atomic<bool> stop{false};
    std::vector<std::thread> threads;
    for (Worker& w : workers) {
      threads.emplace_back([&w, &server, &token, &stop] { RunWorker(w, server.url(), token, stop); });
    }
    int delay = options.min_delay_ms + static_cast<int>(rng() % (options.max_delay_ms - options.min_delay_ms + 1));
    auto kill_at = Clock::now() + std::chrono::milliseconds(delay);
    while (Clock::now() < kill_at && !Violated()) {
      watch.Poll(http, rng);
      std::this_thread::sleep_until(std::min(kill_at, Clock::now() + std::chrono::milliseconds(50)));
    }
    server.Kill();
    stop = true;
    for (auto& t : threads) t.join();
    if (Violated()) break;

    auto check_started = Clock::now();
    registry::CheckOptions check;
    check.data_dir = data;
    if (!watch.latest_note().empty()) check.checkpoints.push_back(watch.latest_note());
    auto report = registry::CheckDataDir(check);
    check_seconds += std::chrono::duration<double>(Clock::now() - check_started).count();
    ++g_checked;
    if (!report.ok()) {
      Violation("offline check after kill " + std::to_string(kills + 1) + " could not run: " + report.status().ToString());
    } else {
      for (const auto& p : report->problems) {
        Violation("offline check after kill " + std::to_string(kills + 1) + ": " + p.kind + ": " + p.message);
      }
    }
    if ((kills + 1) % 25 == 0) {
      std::printf("  %d kills, %llu acknowledged, %llu checked, log size %llu\n", kills + 1,
                  static_cast<unsigned long long>(g_acked.load()), static_cast<unsigned long long>(g_checked.load()),
                  static_cast<unsigned long long>(watch.size()));
      std::fflush(stdout);
    }
  }
  // A last restart verifies what the last kill left.
  if (!Violated() && server.Start()) {
    cli::HttpClient http(server.url(), http_options);
    watch.Poll(http, rng);
    for (Worker& w : workers) {
      if (!Violated()) VerifyWorker(w, http, rng);
    }
    for (Worker& w : workers) {
      if (Violated()) break;
      // Interrupted uploads resume and complete with the right digest.
      ResumeUpload(w, http);
      while (!w.upload.id.empty() && !Violated()) {
        if (!UploadStep(w, http)) break;
      }
    }
    for (Worker& w : workers) {
      if (!Violated()) VerifyWorker(w, http, rng);
    }
    server.Kill();
  }
  double seconds = std::chrono::duration<double>(Clock::now() - started).count();
  uint64_t versions = 0, attestations = 0, blobs = 0;
  for (const Worker& w : workers) {
    versions += w.versions.size();
    attestations += w.attestations.size();
    blobs += w.blobs.size();
  }
  std::printf(
      "sigil-crash: seed %llu: %d kills in %.1f s (offline checks %.1f s); %llu operations acknowledged (%llu blobs, "
      "%llu versions, %llu signatures); %llu invariants checked; %zu checkpoints (log size %llu); %llu uploads resumed; "
      "%zu failures\n",
      static_cast<unsigned long long>(options.seed), kills, seconds, check_seconds,
      static_cast<unsigned long long>(g_acked.load()), static_cast<unsigned long long>(blobs),
      static_cast<unsigned long long>(versions), static_cast<unsigned long long>(attestations),
      static_cast<unsigned long long>(g_checked.load()), watch.count(), static_cast<unsigned long long>(watch.size()),
      static_cast<unsigned long long>(g_resumed.load()), g_violations.size());
  if (Violated()) {
    std::printf("sigil-crash: FAILED: %s\n  data kept in %s\n", g_violations.front().c_str(), work.c_str());
    return 1;
  }
  if (!options.keep && options.work.empty()) core::RemoveTree(work).IgnoreError();
  return 0;
}

}  // namespace
}  // namespace sigil::crash

int main(int argc, char** argv) {
  sigil::crash::Options o;
  o.seed = static_cast<uint64_t>(std::chrono::system_clock::now().time_since_epoch().count()) % 1000000007;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "sigil-crash: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    try {
      if (a == "--kills") o.kills = std::stoi(value());
      else if (a == "--seed") o.seed = std::stoull(value());
      else if (a == "--workers") o.workers = std::stoi(value());
      else if (a == "--min-delay-ms") o.min_delay_ms = std::stoi(value());
      else if (a == "--max-delay-ms") o.max_delay_ms = std::stoi(value());
      else if (a == "--work") o.work = value();
      else if (a == "--sigild") o.sigild = value();
      else if (a == "--keep") o.keep = true;
      else {
        std::fprintf(stderr,
                     "usage: sigil-crash [--kills N] [--seed S] [--workers W] [--min-delay-ms A] [--max-delay-ms B] "
                     "[--work DIR] [--keep] [--sigild PATH]\n");
        return 2;
      }
    } catch (const std::exception&) {
      std::fprintf(stderr, "sigil-crash: %s needs a number\n", a.c_str());
      return 2;
    }
  }
  if (o.kills < 1 || o.workers < 1 || o.min_delay_ms < 0 || o.max_delay_ms < o.min_delay_ms) {
    std::fprintf(stderr, "sigil-crash: need kills >= 1, workers >= 1, 0 <= min delay <= max delay\n");
    return 2;
  }
  try {
    return sigil::crash::Run(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sigil-crash: FAILED: malformed answer: %s\n", e.what());
    return 1;
  }
}
