// docs/api.md "Scanning": scan routes and the pull refusals of versions
// that are not available, driven without a socket.
#include <catch2/catch.hpp>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "api/service.h"
#include "tests/api/model_fixture.h"
#include "core/json.h"
#include "registry/manifest.h"
#include "registry/scanning.h"
#include "storage/blob_store.h"
#include "storage/meta_store.h"

namespace sigil::api {
namespace {

using core::Json;

std::string Le64(uint64_t v) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  return out;
}

std::string CleanSafetensors() {
  std::string header = R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})";
  while (header.size() % 8 != 0) header.push_back(' ');
  return Le64(header.size()) + header + std::string(16, '\x01');
}

std::string EvilPickle() {
  std::string arg = "echo pwned";
  return std::string("\x80\x02", 2) + "cos\nsystem\n" + "X" + std::string(1, static_cast<char>(arg.size())) +
         std::string(3, '\0') + arg + "\x85" + "R.";
}

struct Fixture {
  std::unique_ptr<storage::BlobStore> blobs = storage::NewMemoryBlobStore();
  std::unique_ptr<storage::MetaStore> meta = storage::NewMemoryMetaStore();
  core::ManualClock clock;
  storage::UploadManager uploads{blobs.get(), meta.get(), &clock, storage::UploadOptions()};
  registry::Registry registry{RegistryOptions()};
  std::unique_ptr<registry::Scanning> scanning = StartScanning();
  Metrics metrics;
  Service service{ServiceOptions{&registry, &uploads, blobs.get(), meta.get(), &metrics, nullptr, nullptr,
                                 scanning.get()}};

  registry::RegistryOptions RegistryOptions() {
    registry::RegistryOptions o;
    o.blobs = blobs.get();
    o.meta = meta.get();
    o.clock = &clock;
    o.new_version_state = registry::VersionState::kPending;
    return o;
  }
  std::unique_ptr<registry::Scanning> StartScanning() {
    registry::ScanningOptions o;
    o.registry = &registry;
    o.blobs = blobs.get();
    o.meta = meta.get();
    o.clock = &clock;
    auto s = registry::Scanning::Start(o);
    REQUIRE(s.ok());
    return std::move(s).value();
  }

  HttpResponse Call(const std::string& method, const std::string& path, const std::string& body = "") {
    HttpRequest r;
    r.method = method;
    r.path = path;
    r.body = body;
    std::string route;
    return service.Handle(r, &route);
  }

  core::Digest PutBlob(const std::string& data) {
    core::Digest d = core::Sha256::Of(data);
    REQUIRE(blobs->Put(d, data).ok());
    return d;
  }

  // Pushes a version over HTTP and waits for its scan.
  HttpResponse Push(const std::string& repo, const std::string& version,
                    const std::map<std::string, std::string>& files) {
    std::string bytes = testing::StoreModelManifest(blobs.get(), files);
    HttpResponse r = Call("PUT", "/api/v1/models/" + repo + "/versions/" + version, bytes);
    scanning->WaitIdle();
    return r;
  }
};

Json Body(const HttpResponse& r) { return core::ParseJson(r.body).value(); }
std::string ErrorCode(const HttpResponse& r) { return Body(r)["error"]["code"]; }

TEST_CASE("a pushed version is pending, then scanned; GET scan returns the report", "[api][scan]") {
  Fixture f;
  HttpResponse pushed = f.Push("team/m", "1", {{"model.safetensors", CleanSafetensors()}});
  REQUIRE(pushed.status == 201);
  CHECK(Body(pushed)["state"] == "pending");

  HttpResponse version = f.Call("GET", "/api/v1/models/team/m/versions/1");
  CHECK(Body(version)["state"] == "available");
  HttpResponse scan = f.Call("GET", "/api/v1/models/team/m/versions/1/scan");
  REQUIRE(scan.status == 200);
  Json body = Body(scan);
  CHECK(body["state"] == "available");
  CHECK(body["verdict"] == "clean");
  CHECK(body["artifactType"] == registry::kScanReportArtifactType);
  CHECK(body["report"]["files"][0]["path"] == "model.safetensors");
  CHECK(body["attestation"].is_null());
  CHECK(f.Call("GET", "/api/v1/models/team/m/versions/1/files/model.safetensors").status == 200);
}

TEST_CASE("GET scan is 404 SCAN_UNKNOWN with the state before any report", "[api][scan]") {
  Fixture f;
  // Written straight to the registry: no scan was queued.
  registry::Manifest m;
  m.artifact_type = std::string(registry::kModelArtifactType);
  m.config.media_type = std::string(registry::kModelConfigMediaType);
  m.config.digest = f.PutBlob("{}");
  m.config.size = 2;
  REQUIRE(f.registry.PutVersion("team/m", "1", registry::SerializeManifest(m)).ok());
  HttpResponse scan = f.Call("GET", "/api/v1/models/team/m/versions/1/scan");
  CHECK(scan.status == 404);
  CHECK(ErrorCode(scan) == "SCAN_UNKNOWN");
  CHECK(Body(scan)["error"]["detail"]["state"] == "pending");
  CHECK(f.Call("DELETE", "/api/v1/models/team/m/versions/1/scan").status == 405);
  CHECK(ErrorCode(f.Call("GET", "/api/v1/models/team/m/versions/9/scan")) == "VERSION_UNKNOWN");

  // Its manifest is served while it waits.
  CHECK(f.Call("GET", "/api/v1/models/team/m/versions/1/manifest").status == 200);

  HttpResponse posted = f.Call("POST", "/api/v1/models/team/m/versions/1/scan");
  CHECK(posted.status == 202);
  CHECK(Body(posted)["queued"] == true);
  f.scanning->WaitIdle();
  HttpResponse after = f.Call("GET", "/api/v1/models/team/m/versions/1/scan");
  CHECK(after.status == 200);
  CHECK(Body(after)["state"] == "available");
}

TEST_CASE("a pending version's files are 409 PENDING_SCAN", "[api][scan]") {
  Fixture f;
  std::string data = CleanSafetensors();
  registry::Manifest m;
  m.artifact_type = std::string(registry::kModelArtifactType);
  m.config.media_type = std::string(registry::kModelConfigMediaType);
  m.config.digest = f.PutBlob("{}");
  m.config.size = 2;
  registry::Descriptor d;
  d.media_type = std::string(registry::kLayerMediaType);
  d.digest = f.PutBlob(data);
  d.size = data.size();
  d.annotations[std::string(registry::kTitleAnnotation)] = "w.safetensors";
  m.layers.push_back(d);
  REQUIRE(f.registry.PutVersion("team/m", "1", registry::SerializeManifest(m)).ok());
  HttpResponse file = f.Call("GET", "/api/v1/models/team/m/versions/1/files/w.safetensors");
  CHECK(file.status == 409);
  CHECK(ErrorCode(file) == "PENDING_SCAN");
}

TEST_CASE("a quarantined version's files and blobs are 403 QUARANTINED with the findings", "[api][scan]") {
  Fixture f;
  std::string evil = EvilPickle();
  std::string shared = CleanSafetensors();
  REQUIRE(f.Push("team/good", "1", {{"model.safetensors", shared}}).status == 201);
  REQUIRE(f.Push("team/bad", "1", {{"model.safetensors", shared}, {"extra/model.pkl", evil}}).status == 201);

  HttpResponse scan = f.Call("GET", "/api/v1/models/team/bad/versions/1/scan");
  REQUIRE(scan.status == 200);
  CHECK(Body(scan)["state"] == "quarantined");
  CHECK(Body(scan)["verdict"] == "blocked");

  for (const char* method : {"GET", "HEAD"}) {
    HttpResponse file = f.Call(method, "/api/v1/models/team/bad/versions/1/files/extra/model.pkl");
    CHECK(file.status == 403);
    CHECK(file.file == nullptr);
  }
  HttpResponse file = f.Call("GET", "/api/v1/models/team/bad/versions/1/files/extra/model.pkl");
  Json error = Body(file)["error"];
  CHECK(error["code"] == "QUARANTINED");
  CHECK(error["detail"]["verdict"] == "blocked");
  CHECK(error["detail"]["findings"][0]["path"] == "extra/model.pkl");
  CHECK(error["detail"]["findings"][0]["global"] == "os.system");
  // Every file of a quarantined version, the clean one too.
  CHECK(f.Call("GET", "/api/v1/models/team/bad/versions/1/files/model.safetensors").status == 403);

  HttpResponse blob = f.Call("GET", "/api/v1/blobs/" + core::Sha256::Of(evil).ToString());
  CHECK(blob.status == 403);
  CHECK(ErrorCode(blob) == "QUARANTINED");
  CHECK(Body(blob)["error"]["detail"]["versions"][0] == "team/bad:1");
  // HEAD still answers (pushes use it), without the bytes.
  CHECK(f.Call("HEAD", "/api/v1/blobs/" + core::Sha256::Of(evil).ToString()).status == 200);
  // A blob an available version holds is still served.
  HttpResponse good = f.Call("GET", "/api/v1/blobs/" + core::Sha256::Of(shared).ToString());
  CHECK(good.status == 200);
  CHECK(f.Call("GET", "/api/v1/models/team/good/versions/1/files/model.safetensors").status == 200);

  // Once the available holder is deleted, only the quarantined one is left.
  CHECK(f.Call("DELETE", "/api/v1/models/team/good/versions/1").status == 204);
  CHECK(ErrorCode(f.Call("GET", "/api/v1/blobs/" + core::Sha256::Of(shared).ToString())) == "QUARANTINED");
  CHECK(f.Call("DELETE", "/api/v1/models/team/bad/versions/1").status == 204);
  CHECK(f.Call("GET", "/api/v1/blobs/" + core::Sha256::Of(evil).ToString()).status == 200);
}

TEST_CASE("POST scan re-runs the checks and answers 202", "[api][scan]") {
  Fixture f;
  REQUIRE(f.Push("team/m", "1", {{"model.pkl", EvilPickle()}}).status == 201);
  CHECK(Body(f.Call("GET", "/api/v1/models/team/m/versions/1"))["state"] == "quarantined");
  f.clock.Advance(1'000'000);
  HttpResponse posted = f.Call("POST", "/api/v1/models/team/m/versions/1/scan");
  REQUIRE(posted.status == 202);
  Json body = Body(posted);
  CHECK(body["queued"] == true);
  CHECK(body["state"] == "quarantined");  // until the new report decides
  f.scanning->WaitIdle();
  HttpResponse scan = f.Call("GET", "/api/v1/models/team/m/versions/1/scan");
  REQUIRE(scan.status == 200);
  CHECK(Body(scan)["queued"] == false);
  CHECK(Body(scan)["created"] != body["created"]);
  CHECK(f.Call("POST", "/api/v1/models/team/m/versions/nope/scan").status == 404);
}

TEST_CASE("without scanning the scan routes are 503", "[api][scan]") {
  std::unique_ptr<storage::BlobStore> blobs = storage::NewMemoryBlobStore();
  std::unique_ptr<storage::MetaStore> meta = storage::NewMemoryMetaStore();
  core::ManualClock clock;
  storage::UploadManager uploads{blobs.get(), meta.get(), &clock, storage::UploadOptions()};
  registry::RegistryOptions ro;
  ro.blobs = blobs.get();
  ro.meta = meta.get();
  ro.clock = &clock;
  registry::Registry registry(ro);
  Metrics metrics;
  Service service{ServiceOptions{&registry, &uploads, blobs.get(), meta.get(), &metrics}};
  HttpRequest r;
  r.method = "GET";
  r.path = "/api/v1/models/team/m/versions/1/scan";
  HttpResponse resp = service.Handle(r, nullptr);
  CHECK(resp.status == 503);
  CHECK(ErrorCode(resp) == "SCANNING_UNAVAILABLE");
}

}  // namespace
}  // namespace sigil::api
