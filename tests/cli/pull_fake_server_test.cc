// cli::Pull against a scripted HTTP server that lies: hostile titles, wrong
// bytes, a manifest that does not match its digest, ranges ignored.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <mutex>
#include <thread>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "cli/pull.h"
#include "core/digest.h"
#include "core/fs.h"
#include "tests/support/temp_dir.h"

namespace sigil::cli {
namespace {

using nlohmann::json;

// Answers GETs from a path -> body table (200, whole body, Connection:
// close); anything else is 404. Ranges are ignored on purpose.
class ScriptedServer {
 public:
  ScriptedServer() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
    REQUIRE(::listen(fd_, 16) == 0);
    socklen_t len = sizeof(addr);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~ScriptedServer() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  void Set(const std::string& path, std::string body) {
    std::lock_guard<std::mutex> lock(mu_);
    routes_[path] = std::move(body);
  }

 private:
  void Serve() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) continue;
      std::string request;
      char buf[4096];
      while (request.find("\r\n\r\n") == std::string::npos) {
        ssize_t n = ::recv(c, buf, sizeof(buf), 0);
        if (n <= 0) break;
        request.append(buf, static_cast<size_t>(n));
      }
      size_t sp1 = request.find(' ');
      size_t sp2 = request.find(' ', sp1 + 1);
      std::string path = sp1 == std::string::npos ? "" : request.substr(sp1 + 1, sp2 - sp1 - 1);
      std::string body, status = "200 OK";
      {
        std::lock_guard<std::mutex> lock(mu_);
        auto it = routes_.find(path);
        if (it == routes_.end()) {
          status = "404 Not Found";
          body = R"({"error":{"code":"NOT_THERE","message":"no route )" + path + "\"}}";
        } else {
          body = it->second;
        }
      }
      std::string answer = "HTTP/1.1 " + status + "\r\nContent-Length: " +
                           std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
      size_t sent = 0;
      while (sent < answer.size()) {
        ssize_t n = ::send(c, answer.data() + sent, answer.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) break;
        sent += static_cast<size_t>(n);
      }
      ::close(c);
    }
  }

  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::map<std::string, std::string> routes_;
  std::thread thread_;
};

struct Layer {
  std::string title;
  std::string bytes;
};

// Serves a version r/m:1 whose manifest lists layers; returns the manifest
// digest. served overrides what a blob's route returns.
std::string Publish(ScriptedServer& server, const std::vector<Layer>& layers,
                    const std::map<std::string, std::string>& served = {}) {
  std::string config = R"({"files":1,"format":"unknown","labels":{}})";
  json m = {{"schemaVersion", 2},
            {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
            {"artifactType", "application/vnd.cncf.model.manifest.v1+json"},
            {"config",
             {{"mediaType", "application/vnd.cncf.model.config.v1+json"},
              {"digest", core::Sha256::Of(config).ToString()},
              {"size", config.size()}}},
            {"layers", json::array()}};
  for (const Layer& l : layers) {
    std::string digest = core::Sha256::Of(l.bytes).ToString();
    m["layers"].push_back({{"mediaType", "application/octet-stream"},
                           {"digest", digest},
                           {"size", l.bytes.size()},
                           {"annotations", {{"org.opencontainers.image.title", l.title}}}});
    auto it = served.find(l.title);
    server.Set("/api/v1/blobs/" + digest, it == served.end() ? l.bytes : it->second);
  }
  std::string manifest = m.dump();
  std::string digest = core::Sha256::Of(manifest).ToString();
  json version = {{"repository", "r/m"}, {"version", "1"}, {"digest", digest}};
  server.Set("/api/v1/models/r/m/versions/1", version.dump());
  server.Set("/api/v1/models/r/m/versions/" + digest + "/manifest", manifest);
  return digest;
}

PullOptions Options(const ScriptedServer& server) {
  PullOptions o;
  o.server = server.url();
  o.retry_budget = std::chrono::milliseconds(0);
  return o;
}

const Reference kRef{"r/m", "1", ""};

TEST_CASE("pull writes verified files and resumes over a server ignoring Range", "[cli]") {
  ScriptedServer server;
  testing::TempDir tmp;
  std::string a(300000, 'a'), b = "bee";
  std::string digest = Publish(server, {{"a.bin", a}, {"sub/b.txt", b}, {"sub/copy.bin", a}});
  std::string dir = tmp.Sub("out");
  // Half of a.bin from an earlier run; the server will send it whole.
  REQUIRE(core::MakeDirs(dir + "/.sigil-partial").ok());
  REQUIRE(core::WriteFileAtomic(dir + "/.sigil-partial/" + core::Sha256::Of(a).Hex(),
                                a.substr(0, 1000))
              .ok());
  auto r = Pull(kRef, dir, Options(server));
  REQUIRE(r.ok());
  CHECK(r->digest == digest);
  CHECK(r->files == 3);
  CHECK(*core::ReadFile(dir + "/a.bin") == a);
  CHECK(*core::ReadFile(dir + "/sub/copy.bin") == a);
  CHECK(*core::ReadFile(dir + "/sub/b.txt") == b);
  CHECK_FALSE(core::PathExists(dir + "/.sigil-partial"));
}

TEST_CASE("pull refuses hostile titles before writing anything", "[cli]") {
  ScriptedServer server;
  testing::TempDir tmp;
  std::vector<std::vector<Layer>> cases = {
      {{"../evil", "x"}},
      {{"/tmp/evil", "x"}},
      {{"ok", "x"}, {"a/../../evil", "y"}},
      {{"a", "x"}, {"a/b", "y"}},
      {{".sigil-partial/x", "x"}},
  };
  for (const auto& layers : cases) {
    INFO(layers.back().title);
    Publish(server, layers);
    std::string dir = tmp.Sub("out");
    auto r = Pull(kRef, dir, Options(server));
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == core::Code::kInvalidArgument);
    CHECK_FALSE(core::PathExists(dir));
    CHECK_FALSE(core::PathExists(tmp.Sub("evil")));
  }
}

TEST_CASE("pull moves nothing into place when one file fails verification", "[cli]") {
  ScriptedServer server;
  testing::TempDir tmp;
  std::string good(200000, 'g'), bad(5000, 'b');
  std::string wrong = bad;
  wrong[4999] = 'X';
  Publish(server, {{"good.bin", good}, {"bad.bin", bad}}, {{"bad.bin", wrong}});
  std::string dir = tmp.Sub("out");
  auto r = Pull(kRef, dir, Options(server));
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == core::Code::kDataLoss);
  CHECK(r.status().reason() == "DIGEST_MISMATCH");
  CHECK_FALSE(core::PathExists(dir + "/good.bin"));
  CHECK_FALSE(core::PathExists(dir + "/bad.bin"));
  // The wrong bytes are not kept for a resume.
  CHECK_FALSE(core::PathExists(dir + "/.sigil-partial/" + core::Sha256::Of(bad).Hex()));

  SECTION("and more bytes than the manifest says are refused") {
    Publish(server, {{"good.bin", good}, {"bad.bin", bad}}, {{"bad.bin", bad + "extra"}});
    auto again = Pull(kRef, dir, Options(server));
    REQUIRE_FALSE(again.ok());
    CHECK(again.status().code() == core::Code::kDataLoss);
    CHECK_FALSE(core::PathExists(dir + "/good.bin"));
  }
}

TEST_CASE("pull refuses a manifest that does not match the version's digest", "[cli]") {
  ScriptedServer server;
  testing::TempDir tmp;
  std::string digest = Publish(server, {{"a.bin", "aaa"}});
  server.Set("/api/v1/models/r/m/versions/" + digest + "/manifest", "{\"tampered\": true}");
  auto r = Pull(kRef, tmp.Sub("out"), Options(server));
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == core::Code::kDataLoss);
  CHECK(r.status().reason() == "DIGEST_MISMATCH");
  CHECK_FALSE(core::PathExists(tmp.Sub("out")));

  // Asking by digest and being answered with another version.
  Reference by_digest{"r/m", "", core::Sha256::Of("something else").ToString()};
  server.Set("/api/v1/models/r/m/versions/" + by_digest.digest,
             json({{"digest", digest}, {"version", "1"}}).dump());
  auto other = Pull(by_digest, tmp.Sub("out"), Options(server));
  REQUIRE_FALSE(other.ok());
  CHECK(other.status().code() == core::Code::kDataLoss);
}

TEST_CASE("server errors come back with the server's reason", "[cli]") {
  ScriptedServer server;
  testing::TempDir tmp;
  auto r = Pull(Reference{"r/m", "missing", ""}, tmp.Sub("out"), Options(server));
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == core::Code::kNotFound);
  CHECK(r.status().reason() == "NOT_THERE");
}

}  // namespace
}  // namespace sigil::cli
