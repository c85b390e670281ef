// The routes of docs/api.md, driven without a socket.
#include "api/service.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "tests/api/model_fixture.h"
#include "core/json.h"
#include "registry/manifest.h"
#include "storage/blob_store.h"
#include "storage/meta_store.h"

namespace sigil::api {
namespace {

using core::Json;

struct Fixture {
  std::unique_ptr<storage::BlobStore> blobs = storage::NewMemoryBlobStore();
  std::unique_ptr<storage::MetaStore> meta = storage::NewMemoryMetaStore();
  core::ManualClock clock;
  storage::UploadManager uploads{blobs.get(), meta.get(), &clock, Options()};
  registry::Registry registry{RegistryOptions()};
  Metrics metrics;
  Service service{ServiceOptions{&registry, &uploads, blobs.get(), meta.get(), &metrics}};

  static storage::UploadOptions Options() {
    storage::UploadOptions o;
    o.chunk_max = 1024;
    return o;
  }
  registry::RegistryOptions RegistryOptions() {
    registry::RegistryOptions o;
    o.blobs = blobs.get();
    o.meta = meta.get();
    o.clock = &clock;
    return o;
  }

  HttpResponse Call(const std::string& method, const std::string& target,
                    const std::string& body = "",
                    std::map<std::string, std::string> headers = {}) {
    HttpRequest r;
    r.method = method;
    auto q = target.find('?');
    r.path = target.substr(0, q);
    if (q != std::string::npos) r.query = ParseQuery(target.substr(q + 1));
    r.headers = std::move(headers);
    r.body = body;
    std::string route;
    return service.Handle(r, &route);
  }

  // The bytes a file response would send.
  static std::string FileBytes(HttpResponse& r) {
    REQUIRE(r.file != nullptr);
    std::string out(r.file_length, '\0');
    size_t got = 0;
    while (got < out.size()) {
      auto n = r.file->ReadAt(r.file_offset + got, out.data() + got, out.size() - got);
      REQUIRE(n.ok());
      REQUIRE(*n > 0);
      got += *n;
    }
    return out;
  }

  core::Digest PutBlob(const std::string& data) {
    core::Digest d = core::Sha256::Of(data);
    REQUIRE(blobs->Put(d, data).ok());
    return d;
  }

  // A model manifest with the given files (path -> content), blobs stored.
  std::string ModelManifest(const std::map<std::string, std::string>& files) {
    return testing::StoreModelManifest(blobs.get(), files);
  }
};

Json Body(const HttpResponse& r) { return core::ParseJson(r.body).value(); }
std::string ErrorCode(const HttpResponse& r) { return Body(r)["error"]["code"]; }

TEST_CASE("health, readiness and metrics", "[api]") {
  Fixture f;
  CHECK(f.Call("GET", "/healthz").status == 200);
  auto ready = f.Call("GET", "/readyz");
  CHECK(ready.status == 200);
  CHECK(Body(ready)["status"] == "ready");
  f.metrics.CountRequest("/healthz", "GET", 200);
  auto metrics = f.Call("GET", "/metrics");
  CHECK(metrics.status == 200);
  CHECK(metrics.body.find("sigil_http_requests_total{route=\"/healthz\",method=\"GET\",status=\"200\"} 1") !=
        std::string::npos);
  CHECK(metrics.body.find("sigil_upload_sessions_open 0") != std::string::npos);
  CHECK(f.Call("GET", "/nope").status == 404);
  CHECK(ErrorCode(f.Call("GET", "/api/v1/nothing")) == "ROUTE_UNKNOWN");
  CHECK(f.Call("DELETE", "/healthz").status == 405);
}

TEST_CASE("chunked upload session end to end", "[api]") {
  Fixture f;
  std::string data(2500, 'q');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>('a' + i % 26);
  core::Digest digest = core::Sha256::Of(data);

  auto created = f.Call("POST", "/api/v1/uploads");
  REQUIRE(created.status == 201);
  std::string id = Body(created)["id"];
  CHECK(Body(created)["chunk_max"] == 1024);
  std::string url = "/api/v1/uploads/" + id;

  auto p1 = f.Call("PATCH", url, data.substr(0, 1000), {{"content-range", "0-999"}});
  REQUIRE(p1.status == 202);
  CHECK(Body(p1)["offset"] == 1000);

  // A resend of the first chunk (client did not see the answer) is refused
  // with the committed offset, so the client can continue from there.
  auto again = f.Call("PATCH", url, data.substr(0, 1000), {{"content-range", "0-999"}});
  CHECK(again.status == 416);
  CHECK(ErrorCode(again) == "UPLOAD_OFFSET_MISMATCH");
  CHECK(Body(again)["error"]["detail"]["offset"] == 1000);

  CHECK(Body(f.Call("GET", url))["offset"] == 1000);

  // Content-Range that disagrees with the body length.
  CHECK(ErrorCode(f.Call("PATCH", url, "abc", {{"content-range", "1000-1009"}})) == "RANGE_INVALID");
  // Bigger than chunk_max.
  auto big = f.Call("PATCH", url, std::string(1025, 'x'));
  CHECK(big.status == 413);
  CHECK(ErrorCode(big) == "CHUNK_TOO_LARGE");

  // Without Content-Range the chunk goes at the committed offset.
  REQUIRE(f.Call("PATCH", url, data.substr(1000, 1000)).status == 202);
  auto done = f.Call("PUT", url + "?digest=" + digest.ToString(), data.substr(2000),
                     {{"content-range", "2000-2499"}});
  REQUIRE(done.status == 201);
  CHECK(Body(done)["digest"] == digest.ToString());
  CHECK(Body(done)["size"] == 2500);

  auto get = f.Call("GET", "/api/v1/blobs/" + digest.ToString());
  REQUIRE(get.status == 200);
  CHECK(Fixture::FileBytes(get) == data);
  CHECK(f.Call("GET", url).status == 404);
}

TEST_CASE("upload errors leave nothing behind", "[api]") {
  Fixture f;
  std::string id = Body(f.Call("POST", "/api/v1/uploads"))["id"];
  std::string url = "/api/v1/uploads/" + id;
  REQUIRE(f.Call("PATCH", url, "hello").status == 202);
  core::Digest wrong = core::Sha256::Of("other");
  auto mismatch = f.Call("PUT", url + "?digest=" + wrong.ToString());
  CHECK(mismatch.status == 400);
  CHECK(ErrorCode(mismatch) == "DIGEST_MISMATCH");
  CHECK(f.Call("HEAD", "/api/v1/blobs/" + wrong.ToString()).status == 404);
  CHECK(f.Call("HEAD", "/api/v1/blobs/" + core::Sha256::Of("hello").ToString()).status == 404);
  CHECK(f.Call("GET", url).status == 404);

  CHECK(ErrorCode(f.Call("PATCH", "/api/v1/uploads/doesnotexist", "x")) == "UPLOAD_UNKNOWN");
  CHECK(f.Call("DELETE", "/api/v1/uploads/doesnotexist").status == 404);
  std::string id2 = Body(f.Call("POST", "/api/v1/uploads"))["id"];
  CHECK(ErrorCode(f.Call("PUT", "/api/v1/uploads/" + id2 + "?digest=sha256:xyz")) == "DIGEST_INVALID");
  CHECK(ErrorCode(f.Call("PUT", "/api/v1/uploads/" + id2)) == "DIGEST_INVALID");
  CHECK(f.Call("DELETE", "/api/v1/uploads/" + id2).status == 204);
  CHECK(f.Call("GET", "/api/v1/uploads/" + id2).status == 404);
}

TEST_CASE("single-request blob upload and ranged reads", "[api]") {
  Fixture f;
  std::string data = "0123456789abcdefghij";
  core::Digest d = core::Sha256::Of(data);
  auto put = f.Call("PUT", "/api/v1/blobs/" + d.ToString(), data);
  REQUIRE(put.status == 201);
  CHECK(f.Call("PUT", "/api/v1/blobs/" + d.ToString(), data).status == 201);  // again: fine
  auto bad = f.Call("PUT", "/api/v1/blobs/" + d.ToString(), "tampered");
  CHECK(ErrorCode(bad) == "DIGEST_MISMATCH");
  CHECK(f.Call("PUT", "/api/v1/blobs/" + core::Sha256::Of(std::string(1025, 'x')).ToString(),
               std::string(1025, 'x'))
            .status == 413);

  auto head = f.Call("HEAD", "/api/v1/blobs/" + d.ToString());
  CHECK(head.status == 200);
  CHECK(head.head_only);
  CHECK(head.file_length == data.size());

  auto ranged = f.Call("GET", "/api/v1/blobs/" + d.ToString(), "", {{"range", "bytes=5-9"}});
  CHECK(ranged.status == 206);
  CHECK(Fixture::FileBytes(ranged) == "56789");
  bool has_content_range = false;
  for (const auto& [k, v] : ranged.headers) {
    if (k == "Content-Range") {
      has_content_range = true;
      CHECK(v == "bytes 5-9/20");
    }
  }
  CHECK(has_content_range);
  auto suffix = f.Call("GET", "/api/v1/blobs/" + d.ToString(), "", {{"range", "bytes=-3"}});
  CHECK(Fixture::FileBytes(suffix) == "hij");
  auto outside = f.Call("GET", "/api/v1/blobs/" + d.ToString(), "", {{"range", "bytes=20-"}});
  CHECK(outside.status == 416);
  auto malformed = f.Call("GET", "/api/v1/blobs/" + d.ToString(), "", {{"range", "bytes=x"}});
  CHECK(malformed.status == 400);
  CHECK(ErrorCode(malformed) == "RANGE_INVALID");

  for (const char* digest : {"sha256:abc", "md5:aaaa", "sha256:" "../../etc/passwd", "x"}) {
    INFO(digest);
    auto r = f.Call("GET", std::string("/api/v1/blobs/") + digest);
    CHECK(r.status == 400);
    CHECK(ErrorCode(r) == "DIGEST_INVALID");
  }
  CHECK(ErrorCode(f.Call("GET", "/api/v1/blobs/" + core::Sha256::Of("none").ToString())) == "BLOB_UNKNOWN");
}

TEST_CASE("versions: push, resolve, files, aliases, labels, delete", "[api]") {
  Fixture f;
  std::string manifest = f.ModelManifest({{"model.safetensors", "weights-bytes"}, {"cfg/config.json", "{}"}});
  auto put = f.Call("PUT", "/api/v1/models/health/triage-llm/versions/1.0.0?labels=team%3Dnlp,stage=dev",
                    manifest);
  REQUIRE(put.status == 201);
  std::string digest = Body(put)["digest"];
  CHECK(digest == core::Sha256::Of(manifest).ToString());
  CHECK(Body(put)["labels"]["team"] == "nlp");

  // Same manifest again is fine; a different one under the same name is not.
  CHECK(f.Call("PUT", "/api/v1/models/health/triage-llm/versions/1.0.0", manifest).status == 201);
  std::string other = f.ModelManifest({{"model.safetensors", "different"}});
  auto conflict = f.Call("PUT", "/api/v1/models/health/triage-llm/versions/1.0.0", other);
  CHECK(conflict.status == 409);
  CHECK(ErrorCode(conflict) == "TAG_IMMUTABLE");

  auto by_version = f.Call("GET", "/api/v1/models/health/triage-llm/versions/1.0.0");
  REQUIRE(by_version.status == 200);
  CHECK(Body(by_version)["manifest"]["layers"].size() == 2);
  CHECK(Body(by_version)["state"] == "available");
  CHECK(f.Call("GET", "/api/v1/models/health/triage-llm/versions/" + digest).status == 200);
  auto raw = f.Call("GET", "/api/v1/models/health/triage-llm/versions/1.0.0/manifest");
  CHECK(raw.body == manifest);

  auto file = f.Call("GET", "/api/v1/models/health/triage-llm/versions/1.0.0/files/model.safetensors");
  REQUIRE(file.status == 200);
  CHECK(Fixture::FileBytes(file) == "weights-bytes");
  auto nested = f.Call("GET", "/api/v1/models/health/triage-llm/versions/1.0.0/files/cfg/config.json",
                       "", {{"range", "bytes=1-"}});
  CHECK(nested.status == 206);
  CHECK(Fixture::FileBytes(nested) == "}");
  CHECK(ErrorCode(f.Call("GET", "/api/v1/models/health/triage-llm/versions/1.0.0/files/nope")) ==
        "FILE_UNKNOWN");

  auto alias = f.Call("PUT", "/api/v1/models/health/triage-llm/aliases/production", R"({"ref":"1.0.0"})");
  REQUIRE(alias.status == 200);
  CHECK(Body(alias)["version"] == "1.0.0");
  auto via_alias = f.Call("GET", "/api/v1/models/health/triage-llm/versions/production");
  CHECK(Body(via_alias)["digest"] == digest);
  CHECK(Body(f.Call("GET", "/api/v1/models/health/triage-llm"))["aliases"]["production"] == "1.0.0");
  CHECK(f.Call("PUT", "/api/v1/models/health/triage-llm/aliases/production", "{").status == 400);

  auto labels = f.Call("PUT", "/api/v1/models/health/triage-llm/labels",
                       R"({"labels":{"owner":"ministry"},"residency":{"region":"eu-de","classification":"restricted"}})");
  REQUIRE(labels.status == 200);
  CHECK(Body(labels)["residency"]["region"] == "eu-de");
  CHECK(Body(f.Call("GET", "/api/v1/models"))["repositories"][0]["name"] == "health/triage-llm");
  auto versions = f.Call("GET", "/api/v1/models/health/triage-llm/versions");
  CHECK(Body(versions)["versions"].size() == 1);

  CHECK(f.Call("DELETE", "/api/v1/models/health/triage-llm/aliases/production").status == 204);
  CHECK(f.Call("GET", "/api/v1/models/health/triage-llm/aliases/production").status == 404);
  CHECK(f.Call("DELETE", "/api/v1/models/health/triage-llm/versions/1.0.0").status == 204);
  CHECK(f.Call("GET", "/api/v1/models/health/triage-llm/versions/1.0.0").status == 404);
}

TEST_CASE("bad manifests and names are refused with nothing stored", "[api]") {
  Fixture f;
  std::string manifest = f.ModelManifest({{"w.bin", "abc"}});
  Json m = core::ParseJson(manifest).value();
  std::string missing_digest = core::Sha256::Of("never uploaded").ToString();
  m["layers"][0]["digest"] = missing_digest;
  auto missing = f.Call("PUT", "/api/v1/models/m/versions/1", core::DumpJson(m));
  CHECK(missing.status == 400);
  CHECK(ErrorCode(missing) == "BLOB_UNKNOWN");
  CHECK(Body(missing)["error"]["detail"]["missing"][0] == missing_digest);

  CHECK(ErrorCode(f.Call("PUT", "/api/v1/models/m/versions/1", "{not json")) == "MANIFEST_INVALID");
  CHECK(ErrorCode(f.Call("PUT", "/api/v1/models/m/versions/1", R"({"schemaVersion":1})")) ==
        "MANIFEST_INVALID");
  CHECK(f.Call("GET", "/api/v1/models/m").status == 404);

  const char* bad_repos[] = {"/api/v1/models/../etc/versions/1", "/api/v1/models/UPPER/versions/1",
                             "/api/v1/models/a%00b/versions/1", "/api/v1/models//versions/1",
                             "/api/v1/models/a%2F..%2Fb/versions/1"};
  for (const char* target : bad_repos) {
    INFO(target);
    auto r = f.Call("PUT", target, manifest);
    CHECK(r.status == 400);
  }
  auto bad_tag = f.Call("PUT", "/api/v1/models/m/versions/-bad", manifest);
  CHECK(bad_tag.status == 400);
  CHECK(ErrorCode(bad_tag) == "TAG_INVALID");

  Json traversal = core::ParseJson(manifest).value();
  traversal["layers"][0]["annotations"]["org.opencontainers.image.title"] = "../escape";
  CHECK(f.Call("PUT", "/api/v1/models/m/versions/2", core::DumpJson(traversal)).status == 400);
  traversal["layers"][0]["annotations"]["org.opencontainers.image.title"] = "/abs";
  CHECK(f.Call("PUT", "/api/v1/models/m/versions/2", core::DumpJson(traversal)).status == 400);
  traversal["layers"][0]["annotations"]["org.opencontainers.image.title"] = "ctl\x01name";
  CHECK(f.Call("PUT", "/api/v1/models/m/versions/2", core::DumpJson(traversal)).status == 400);
  CHECK(Body(f.Call("GET", "/api/v1/models"))["repositories"].empty());
  CHECK(ErrorCode(f.Call("GET", "/api/v1/models?limit=0")) == "LIMIT_INVALID");
}

}  // namespace
}  // namespace sigil::api
