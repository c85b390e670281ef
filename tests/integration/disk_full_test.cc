// sigild with its whole data directory (blobs and RocksDB) on a small tmpfs:
// pushing until the space runs out gets clean 507 answers, the server stays
// up, nothing is damaged (offline check), and once space is back pushes
// succeed again without a restart. Mounting needs root (CAP_SYS_ADMIN):
// where it fails the test says so loudly and checks nothing.
#include <sys/mount.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <chrono>
#include <random>
#include <thread>

#include "cli/http_client.h"
#include "core/digest.h"
#include "core/fs.h"
#include "registry/check.h"
#include "registry/manifest.h"
#include "tests/integration/process.h"
#include "tests/support/temp_dir.h"

namespace sigil::testing {
namespace {

using nlohmann::json;

// One connection per request: a refusal may close the connection before the
// body is read, and this test is about the disk, not connection reuse.
const std::string kClose = "Connection: close";

std::string RandomBytes(std::mt19937_64& rng, size_t n) {
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

// Every refusal must be a 507 with a JSON error naming INSUFFICIENT_STORAGE.
void RequireCleanRefusal(const cli::HttpResponse& r, const std::string& what) {
  INFO(what << " answered " << r.status << ": " << r.body);
  REQUIRE(r.status == 507);
  json body = json::parse(r.body, nullptr, false);
  REQUIRE(body.is_object());
  REQUIRE(body.contains("error"));
  CHECK(body["error"]["code"] == "INSUFFICIENT_STORAGE");
  CHECK_FALSE(body["error"]["message"].get<std::string>().empty());
}

class Pusher {
 public:
  Pusher(cli::HttpClient& http, const Sigild& server) : http(http), server(server) {}

  cli::HttpClient& http;
  const Sigild& server;
  std::mt19937_64 rng{7};
  std::vector<registry::Descriptor> stored;
  int versions = 0;

  // PUT of one new blob: its answer.
  cli::HttpResponse PutBlob(size_t size) {
    std::string content = RandomBytes(rng, size);
    core::Digest d = core::Sha256::Of(content);
    auto r = http.Perform({.method = "PUT", .path = "/api/v1/blobs/" + d.ToString(), .headers = {kClose}, .body = content});
    INFO("PUT blob of " << size << " bytes: " << r.status().ToString() << "\nsigild log:\n" << server.log());
    REQUIRE(r.ok());
    if (r->status == 201) {
      registry::Descriptor desc;
      desc.media_type = std::string(registry::kLayerMediaType);
      desc.digest = d;
      desc.size = size;
      desc.annotations[std::string(registry::kTitleAnnotation)] = "f" + std::to_string(stored.size());
      stored.push_back(desc);
    }
    return *r;
  }

  // PUT of a new version over the config and the last stored blob.
  cli::HttpResponse PutVersion() {
    registry::Manifest m;
    m.artifact_type = std::string(registry::kModelArtifactType);
    m.config = stored.front();
    m.config.media_type = std::string(registry::kModelConfigMediaType);
    m.config.annotations.clear();
    m.layers = {stored.back()};
    std::string manifest = registry::SerializeManifest(m);
    auto r = http.Perform({.method = "PUT",
                           .path = "/api/v1/models/full/model/versions/v" + std::to_string(versions++),
                           .headers = {kClose},
                           .body = manifest});
    INFO("PUT version: " << r.status().ToString() << "\nsigild log:\n" << server.log());
    REQUIRE(r.ok());
    return *r;
  }
};

// Fills a 24 MiB disk. With min_free_space 0 the metadata store meets the
// full disk too; with a reserve, blob writes stop short of it and metadata
// writes go on.
void FillAndRecover(uint64_t min_free_space) {
  TempDir tmp;
  const std::string mnt = tmp.Sub("small");
  REQUIRE(core::MakeDirs(mnt).ok());
  if (::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=24m") != 0) {
    WARN("SKIPPED: cannot mount a tmpfs at " << mnt << " (" << std::strerror(errno)
                                              << "); the disk-full test needs root");
    return;
  }
  struct Unmount {
    std::string path;
    ~Unmount() { ::umount2(path.c_str(), MNT_DETACH); }
  } unmount{mnt};

  const std::string data = mnt + "/data";
  {
    Sigild server(data, {"--chunk-max", std::to_string(2 << 20), "--min-free-space", std::to_string(min_free_space)});
    REQUIRE(server.Start());
    cli::HttpClient http(server.url(), TokenOptions());
    Pusher p(http, server);
    REQUIRE(p.PutBlob(16).status == 201);  // the config of every version

    // Blobs of 1 MiB, then smaller ones, until even 4 KiB is refused.
    int refused = 0;
    for (size_t size : {size_t{1} << 20, size_t{64} << 10, size_t{4} << 10}) {
      for (int i = 0; i < 200; ++i) {
        cli::HttpResponse r = p.PutBlob(size);
        if (r.status == 201) {
          if (i % 4 == 0) {
            cli::HttpResponse v = p.PutVersion();
            if (min_free_space > 0) REQUIRE(v.status == 201);
            if (v.status != 201) RequireCleanRefusal(v, "PUT version");
          }
          continue;
        }
        RequireCleanRefusal(r, "PUT blob of " + std::to_string(size) + " bytes");
        ++refused;
        break;
      }
    }
    REQUIRE(refused == 3);
    // Metadata writes on the full disk: done while the reserve holds, else
    // refused cleanly or done.
    for (int i = 0; i < 5; ++i) {
      cli::HttpResponse v = p.PutVersion();
      INFO(v.body);
      if (min_free_space > 0) REQUIRE(v.status == 201);
      if (v.status != 201) RequireCleanRefusal(v, "PUT version on a full disk");
    }
    auto upload = http.Perform({.method = "POST", .path = "/api/v1/uploads", .headers = {kClose}});
    REQUIRE(upload.ok());
    if (upload->status == 201) {
      std::string id = json::parse(upload->body)["id"];
      std::string chunk = RandomBytes(p.rng, 1 << 20);
      auto patch = http.Perform({.method = "PATCH", .path = "/api/v1/uploads/" + id, .headers = {kClose}, .body = chunk});
      REQUIRE(patch.ok());
      RequireCleanRefusal(*patch, "PATCH upload on a full disk");
    } else {
      RequireCleanRefusal(*upload, "POST upload on a full disk");
    }
    auto health = http.Perform({.path = "/healthz", .headers = {kClose}});
    REQUIRE(health.ok());
    CHECK(health->status == 200);

    // Space comes back: the same server takes blobs and versions again.
    REQUIRE(::mount("tmpfs", mnt.c_str(), "tmpfs", MS_REMOUNT, "size=256m") == 0);
    // RocksDB stopped writing at the failed WAL append; its recovery (or the
    // store's own resume on the next write) takes it up again once it sees
    // the space, within seconds and without a restart.
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (true) {
      cli::HttpResponse v = p.PutVersion();
      if (v.status == 201) break;
      RequireCleanRefusal(v, "PUT version just after space came back");
      REQUIRE(std::chrono::steady_clock::now() < until);
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    for (int i = 0; i < 3; ++i) {
      cli::HttpResponse b = p.PutBlob(1 << 20);
      INFO(b.body);
      REQUIRE(b.status == 201);
      cli::HttpResponse v = p.PutVersion();
      INFO(v.body);
      REQUIRE(v.status == 201);
    }
    server.Stop();
  }
  auto report = registry::CheckDataDir(registry::CheckOptions{data, {}});
  INFO(report.status().ToString());
  REQUIRE(report.ok());
  for (const auto& problem : report->problems) UNSCOPED_INFO(problem.kind << ": " << problem.message);
  CHECK(report->ok());
  CHECK(report->versions >= 3);
}

TEST_CASE("a full disk gets 507 answers, damages nothing, and pushes work again once space is back",
          "[integration][diskfull]") {
  FillAndRecover(0);
}

TEST_CASE("the free-space reserve refuses blobs before the disk is full, and metadata writes go on",
          "[integration][diskfull]") {
  FillAndRecover(8 << 20);
}

}  // namespace
}  // namespace sigil::testing
