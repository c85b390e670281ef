// docs/api.md's promises about bad input, checked over real HTTP.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>
#include <tuple>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "cli/http_client.h"
#include "core/digest.h"
#include "tests/integration/process.h"
#include "tests/support/temp_dir.h"

namespace sigil::testing {
namespace {

using cli::HttpClient;
using cli::HttpRequest;
using cli::HttpResponse;
using nlohmann::json;

constexpr uint64_t kChunkMax = 65536;

struct Api {
  TempDir tmp;
  Sigild server{tmp.Sub("data"), {"--chunk-max", std::to_string(kChunkMax)}};
  HttpClient http{"", TokenOptions()};

  Api() : http(Url(), TokenOptions()) {}
  std::string Url() {
    REQUIRE(server.Start());
    return server.url();
  }

  HttpResponse Do(HttpRequest request) {
    auto r = http.Perform(request);
    REQUIRE(r.ok());
    return *r;
  }
  HttpResponse Do(const std::string& method, const std::string& path, std::string_view body = {},
                  std::vector<std::string> headers = {}) {
    return Do(HttpRequest{.method = method, .path = path, .headers = headers, .body = body});
  }
  // An error answer: status and error.code as documented.
  json Error(const HttpResponse& r, long status, const std::string& code) {
    INFO(r.status << " " << r.body);
    CHECK(r.status == status);
    json body = json::parse(r.body, nullptr, false);
    REQUIRE(body.is_object());
    REQUIRE(body.contains("error"));
    CHECK(body["error"]["code"] == code);
    CHECK(body["error"]["message"].is_string());
    return body["error"];
  }
  std::string PutBlob(const std::string& bytes) {
    std::string digest = core::Sha256::Of(bytes).ToString();
    HttpResponse r = Do("PUT", "/api/v1/blobs/" + digest, bytes);
    INFO(r.body);
    REQUIRE(r.status == 201);
    return digest;
  }
  std::string OpenUpload() {
    HttpResponse r = Do("POST", "/api/v1/uploads");
    REQUIRE(r.status == 201);
    json j = json::parse(r.body);
    CHECK(j["offset"] == 0);
    CHECK(j["chunk_max"] == kChunkMax);
    return j["id"];
  }
};

std::string Bytes(size_t n, char seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>(seed + i * 31 + (i >> 8));
  return s;
}

std::string Manifest(const std::string& config_digest, size_t config_size,
                     const std::vector<std::tuple<std::string, size_t, std::string>>& layers) {
  json m = {{"schemaVersion", 2},
            {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
            {"artifactType", "application/vnd.cncf.model.manifest.v1+json"},
            {"config",
             {{"mediaType", "application/vnd.cncf.model.config.v1+json"},
              {"digest", config_digest},
              {"size", config_size}}},
            {"layers", json::array()}};
  for (const auto& [digest, size, title] : layers) {
    m["layers"].push_back({{"mediaType", "application/octet-stream"},
                           {"digest", digest},
                           {"size", size},
                           {"annotations", {{"org.opencontainers.image.title", title}}}});
  }
  return m.dump();
}

TEST_CASE("Range requests return the asked bytes", "[integration]") {
  Api api;
  std::string bytes = Bytes(10000, 1);
  std::string digest = api.PutBlob(bytes);
  std::string path = "/api/v1/blobs/" + digest;

  HttpResponse head = api.Do("HEAD", path);
  CHECK(head.status == 200);
  CHECK(head.Header("content-length") == "10000");
  CHECK(head.Header("docker-content-digest") == digest);

  HttpResponse whole = api.Do("GET", path);
  CHECK(whole.status == 200);
  CHECK(whole.body == bytes);

  struct Case {
    std::string range;
    size_t start, len;
  };
  const Case cases[] = {{"bytes=0-0", 0, 1},          {"bytes=100-199", 100, 100},
                        {"bytes=9990-", 9990, 10},    {"bytes=-25", 9975, 25},
                        {"bytes=9000-20000", 9000, 1000}, {"bytes=0-", 0, 10000}};
  for (const Case& c : cases) {
    INFO(c.range);
    HttpResponse r = api.Do("GET", path, {}, {"Range: " + c.range});
    CHECK(r.status == 206);
    CHECK(r.body == bytes.substr(c.start, c.len));
    CHECK(r.Header("content-range") == "bytes " + std::to_string(c.start) + "-" +
                                           std::to_string(c.start + c.len - 1) + "/10000");
  }

  HttpResponse unsatisfiable = api.Do("GET", path, {}, {"Range: bytes=10000-"});
  CHECK(unsatisfiable.status == 416);
  CHECK(unsatisfiable.Header("content-range") == "bytes */10000");

  for (const char* bad : {"bytes=abc", "bytes=5-2", "items=0-1", "bytes=--1", "bytes=1-2-3"}) {
    INFO(bad);
    api.Error(api.Do("GET", path, {}, {std::string("Range: ") + bad}), 400, "RANGE_INVALID");
  }
}

TEST_CASE("malformed digests, unknown blobs and digest mismatches", "[integration]") {
  Api api;
  for (const char* bad : {"sha256:xyz", "sha256:" "ABCDEF", "md5:0123", "nothing"}) {
    INFO(bad);
    api.Error(api.Do("GET", std::string("/api/v1/blobs/") + bad), 400, "DIGEST_INVALID");
    api.Error(api.Do("PUT", std::string("/api/v1/blobs/") + bad, "x"), 400, "DIGEST_INVALID");
  }
  std::string absent = core::Sha256::Of("never stored").ToString();
  CHECK(api.Do("HEAD", "/api/v1/blobs/" + absent).status == 404);
  api.Error(api.Do("GET", "/api/v1/blobs/" + absent), 404, "BLOB_UNKNOWN");

  // A single PUT whose bytes do not match: refused, nothing kept.
  api.Error(api.Do("PUT", "/api/v1/blobs/" + absent, "other bytes"), 400, "DIGEST_MISMATCH");
  CHECK(api.Do("HEAD", "/api/v1/blobs/" + absent).status == 404);
  CHECK(api.Do("HEAD", "/api/v1/blobs/" + core::Sha256::Of("other bytes").ToString()).status ==
        404);

  // The same through an upload session: the session is gone afterwards.
  std::string id = api.OpenUpload();
  CHECK(api.Do("PATCH", "/api/v1/uploads/" + id, "other bytes").status == 202);
  api.Error(api.Do("PUT", "/api/v1/uploads/" + id + "?digest=" + absent), 400, "DIGEST_MISMATCH");
  api.Error(api.Do("GET", "/api/v1/uploads/" + id), 404, "UPLOAD_UNKNOWN");
  CHECK(api.Do("HEAD", "/api/v1/blobs/" + absent).status == 404);

  std::string id2 = api.OpenUpload();
  api.Error(api.Do("PUT", "/api/v1/uploads/" + id2 + "?digest=sha256:nothex"), 400,
            "DIGEST_INVALID");
}

TEST_CASE("upload sessions: offsets, limits and unknown ids", "[integration]") {
  Api api;
  std::string bytes = Bytes(3 * kChunkMax + 100, 7);
  std::string digest = core::Sha256::Of(bytes).ToString();
  std::string id = api.OpenUpload();
  std::string path = "/api/v1/uploads/" + id;

  HttpResponse first = api.Do("PATCH", path, std::string_view(bytes).substr(0, kChunkMax),
                              {"Content-Range: 0-" + std::to_string(kChunkMax - 1)});
  REQUIRE(first.status == 202);
  CHECK(json::parse(first.body)["offset"] == kChunkMax);
  CHECK(first.Header("range") == "0-" + std::to_string(kChunkMax - 1));

  // Resending the first chunk: wrong offset, told where we stand.
  json mismatch = api.Error(api.Do("PATCH", path, std::string_view(bytes).substr(0, 10),
                                   {"Content-Range: bytes 0-9"}),
                            416, "UPLOAD_OFFSET_MISMATCH");
  CHECK(mismatch["detail"]["offset"] == kChunkMax);
  // End not matching the body's length.
  api.Error(api.Do("PATCH", path, std::string_view(bytes).substr(kChunkMax, 10),
                   {"Content-Range: " + std::to_string(kChunkMax) + "-" +
                    std::to_string(kChunkMax + 20)}),
            400, "RANGE_INVALID");
  // Bodies with a Content-Length stream to disk, so chunk_max does not
  // bound them: a single-request blob four chunks long goes in whole, and
  // one whose bytes do not match its digest leaves nothing behind.
  std::string big(4 * kChunkMax + 1, 'b');
  HttpResponse put_big = api.Do("PUT", "/api/v1/blobs/" + core::Sha256::Of(big).ToString(), big);
  CHECK(put_big.status == 201);
  CHECK(api.Do("GET", "/api/v1/blobs/" + core::Sha256::Of(big).ToString()).body == big);
  std::string other(2 * kChunkMax, 'o');
  api.Error(api.Do("PUT", "/api/v1/blobs/" + core::Sha256::Of("not these bytes").ToString(), other), 400,
            "DIGEST_MISMATCH");
  api.Error(api.Do("GET", "/api/v1/blobs/" + core::Sha256::Of("not these bytes").ToString()), 404,
            "BLOB_UNKNOWN");

  HttpResponse state = api.Do("GET", path);
  REQUIRE(state.status == 200);
  CHECK(json::parse(state.body)["offset"] == kChunkMax);

  // The rest, without Content-Range (default start = committed offset), and
  // the last bytes in the committing PUT.
  CHECK(api.Do("PATCH", path, std::string_view(bytes).substr(kChunkMax, kChunkMax)).status == 202);
  CHECK(api.Do("PATCH", path, std::string_view(bytes).substr(2 * kChunkMax, kChunkMax)).status ==
        202);
  HttpResponse done = api.Do("PUT", path + "?digest=" + digest,
                             std::string_view(bytes).substr(3 * kChunkMax));
  REQUIRE(done.status == 201);
  CHECK(json::parse(done.body)["size"] == bytes.size());
  CHECK(api.Do("GET", "/api/v1/blobs/" + digest).body == bytes);

  api.Error(api.Do("GET", "/api/v1/uploads/no-such-upload"), 404, "UPLOAD_UNKNOWN");
  api.Error(api.Do("PATCH", "/api/v1/uploads/no-such-upload", "x"), 404, "UPLOAD_UNKNOWN");
  api.Error(api.Do("PUT", "/api/v1/uploads/no-such-upload?digest=" + digest), 404,
            "UPLOAD_UNKNOWN");
  api.Error(api.Do("DELETE", "/api/v1/uploads/no-such-upload"), 404, "UPLOAD_UNKNOWN");
}

TEST_CASE("two concurrent uploads of the same blob both succeed", "[integration]") {
  Api api;
  std::string bytes = Bytes(5 * kChunkMax + 3, 3);
  std::string digest = core::Sha256::Of(bytes).ToString();
  std::string url = api.server.url();
  std::atomic<int> created{0};
  auto upload = [&] {
    HttpClient http(url, TokenOptions());
    auto post = http.Perform(HttpRequest{.method = "POST", .path = "/api/v1/uploads"});
    if (!post.ok() || post->status != 201) return;
    std::string id = json::parse(post->body)["id"];
    for (size_t off = 0; off < bytes.size(); off += kChunkMax) {
      auto r = http.Perform(HttpRequest{
          .method = "PATCH",
          .path = "/api/v1/uploads/" + id,
          .body = std::string_view(bytes).substr(off, kChunkMax)});
      if (!r.ok() || r->status != 202) return;
    }
    auto put = http.Perform(
        HttpRequest{.method = "PUT", .path = "/api/v1/uploads/" + id + "?digest=" + digest});
    if (put.ok() && put->status == 201) ++created;
  };
  std::thread a(upload), b(upload);
  a.join();
  b.join();
  CHECK(created == 2);
  CHECK(api.Do("GET", "/api/v1/blobs/" + digest).body == bytes);
}

TEST_CASE("manifests: bad JSON, missing blobs, bad names and paths", "[integration]") {
  Api api;
  std::string config = R"({"files":1,"format":"unknown","labels":{}})";
  std::string config_digest = api.PutBlob(config);
  std::string layer = "layer bytes";
  std::string layer_digest = api.PutBlob(layer);
  const std::string put = "/api/v1/models/ok/model/versions/";

  api.Error(api.Do("PUT", put + "1", "{not json"), 400, "MANIFEST_INVALID");
  api.Error(api.Do("PUT", put + "1", R"({"schemaVersion": 1})"), 400, "MANIFEST_INVALID");

  std::string missing1 = core::Sha256::Of("missing one").ToString();
  std::string missing2 = core::Sha256::Of("missing two").ToString();
  json err = api.Error(
      api.Do("PUT", put + "1",
             Manifest(config_digest, config.size(),
                      {{layer_digest, layer.size(), "a.bin"}, {missing1, 11, "b.bin"},
                       {missing2, 11, "c.bin"}})),
      400, "BLOB_UNKNOWN");
  std::vector<std::string> missing = err["detail"]["missing"];
  std::sort(missing.begin(), missing.end());
  std::vector<std::string> expected = {missing1, missing2};
  std::sort(expected.begin(), expected.end());
  CHECK(missing == expected);

  const std::vector<std::string> bad_titles = {"../escape", "/abs/path", "a/../b", "ctl\x01",
                                               "new\nline", ""};
  for (const std::string& title : bad_titles) {
    INFO(title);
    api.Error(api.Do("PUT", put + "2",
                     Manifest(config_digest, config.size(), {{layer_digest, layer.size(), title}})),
              400, "MANIFEST_INVALID");
  }
  // Nothing of the refused pushes was recorded, not even the repository.
  api.Error(api.Do("GET", put + "1"), 404, "REPO_UNKNOWN");
  api.Error(api.Do("GET", put + "2"), 404, "REPO_UNKNOWN");

  std::string good =
      Manifest(config_digest, config.size(), {{layer_digest, layer.size(), "dir/a.bin"}});
  for (const std::string& repo : std::vector<std::string>{"Upper/case", "a/../b", "a//b",
                                                          "sp%20ace", "ctl%01x", "-lead"}) {
    INFO(repo);
    HttpResponse r = api.Do("PUT", "/api/v1/models/" + repo + "/versions/1", good);
    CHECK(r.status == 400);
  }
  // A route word inside a repository name cannot even be routed.
  HttpResponse route_word = api.Do("PUT", "/api/v1/models/a/versions/b/versions/1", good);
  CHECK(route_word.status >= 400);
  CHECK(route_word.status < 500);
  for (const std::string& tag : std::vector<std::string>{"-x", "a%2Fb", "..", "x%01"}) {
    INFO(tag);
    CHECK(api.Do("PUT", put + tag, good).status == 400);
  }

  HttpResponse created = api.Do("PUT", put + "1", good);
  INFO(created.body);
  CHECK(created.status == 201);
  CHECK(created.Header("docker-content-digest") == core::Sha256::Of(good).ToString());
  // docs/api.md: 200 when identical; sigild answers 201 today. Either way
  // the same version, not a conflict.
  HttpResponse identical = api.Do("PUT", put + "1", good);
  CHECK((identical.status == 200 || identical.status == 201));
  CHECK(identical.Header("docker-content-digest") == core::Sha256::Of(good).ToString());
  std::string other =
      Manifest(config_digest, config.size(), {{layer_digest, layer.size(), "other.bin"}});
  api.Error(api.Do("PUT", put + "1", other), 409, "TAG_IMMUTABLE");
  // Files are served once the version's scan has made it available.
  for (int i = 0;
       i < 200 && api.Do("GET", put + "1").body.find("\"state\":\"pending\"") != std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  HttpResponse file = api.Do("GET", put + "1/files/dir/a.bin", {}, {"Range: bytes=6-"});
  CHECK(file.status == 206);
  CHECK(file.body == "bytes");
}

}  // namespace
}  // namespace sigil::testing
