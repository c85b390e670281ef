#include "registry/manifest.h"

#include <functional>
#include <string>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "core/json.h"

namespace sigil::registry {
namespace {

using core::Json;

Descriptor Layer(const std::string& content, const std::string& title) {
  Descriptor d;
  d.media_type = std::string(kLayerMediaType);
  d.digest = core::Sha256::Of(content);
  d.size = content.size();
  d.annotations[std::string(kTitleAnnotation)] = title;
  return d;
}

Manifest GoodManifest() {
  Manifest m;
  m.artifact_type = std::string(kModelArtifactType);
  m.config.media_type = std::string(kModelConfigMediaType);
  m.config.digest = core::Sha256::Of("{}");
  m.config.size = 2;
  m.layers = {Layer("weights", "model.safetensors"), Layer("tok", "tokenizer/vocab.json")};
  m.annotations["org.opencontainers.image.created"] = "2026-11-23T18:00:00Z";
  return m;
}

Json GoodJson() { return core::ParseJson(SerializeManifest(GoodManifest())).value(); }

std::string Dump(const Json& j) { return j.dump(); }

TEST_CASE("manifests round-trip through the canonical form", "[registry]") {
  Manifest m = GoodManifest();
  Descriptor subject;
  subject.media_type = std::string(kOciManifestMediaType);
  subject.digest = core::Sha256::Of("subject");
  subject.size = 321;
  m.subject = subject;
  std::string bytes = SerializeManifest(m);
  CHECK(bytes == SerializeManifest(m));

  auto parsed = ParseManifest(bytes);
  REQUIRE(parsed.ok());
  CHECK(parsed->artifact_type == kModelArtifactType);
  CHECK(parsed->config.digest == m.config.digest);
  CHECK(parsed->config.size == 2);
  CHECK(parsed->config.media_type == kModelConfigMediaType);
  REQUIRE(parsed->layers.size() == 2);
  CHECK(parsed->layers[1].digest == core::Sha256::Of("tok"));
  CHECK(parsed->layers[1].size == 3);
  REQUIRE(parsed->subject.has_value());
  CHECK(parsed->subject->digest == subject.digest);
  CHECK(parsed->subject->size == 321);
  CHECK(parsed->annotations == m.annotations);
  CHECK(SerializeManifest(*parsed) == bytes);

  Json j = core::ParseJson(bytes).value();
  CHECK(j["schemaVersion"] == 2);
  CHECK(j["mediaType"] == kOciManifestMediaType);
  CHECK(j["layers"][0]["annotations"][std::string(kTitleAnnotation)] == "model.safetensors");
  CHECK_FALSE(j["config"].contains("annotations"));

  REQUIRE(parsed->FindFile("tokenizer/vocab.json") != nullptr);
  CHECK(parsed->FindFile("tokenizer/vocab.json")->digest == core::Sha256::Of("tok"));
  CHECK(parsed->FindFile("tokenizer") == nullptr);
}

TEST_CASE("optional manifest parts may be absent", "[registry]") {
  Manifest m;
  m.config.media_type = "application/vnd.oci.empty.v1+json";
  m.config.digest = core::Sha256::Of("{}");
  m.config.size = 2;
  std::string bytes = SerializeManifest(m);
  Json j = core::ParseJson(bytes).value();
  CHECK_FALSE(j.contains("artifactType"));
  CHECK_FALSE(j.contains("subject"));
  CHECK_FALSE(j.contains("annotations"));
  auto parsed = ParseManifest(bytes);
  REQUIRE(parsed.ok());
  CHECK(parsed->layers.empty());
  CHECK(parsed->artifact_type.empty());

  // Artifacts other than models and tools need no titles.
  Json other = GoodJson();
  other["artifactType"] = "application/vnd.dev.sigstore.bundle.v0.3+json";
  other["layers"][0].erase("annotations");
  CHECK(ParseManifest(Dump(other)).ok());
}

TEST_CASE("malformed manifests are refused naming the problem", "[registry]") {
  const std::string title(kTitleAnnotation);
  struct Case {
    std::string what;
    std::function<void(Json&)> mutate;
    std::string message;  // a part of the expected message
  };
  std::vector<Case> cases = {
      {"not an object", [](Json& j) { j = Json::array(); }, "must be a JSON object"},
      {"no schemaVersion", [](Json& j) { j.erase("schemaVersion"); }, "schemaVersion must be 2"},
      {"schemaVersion 1", [](Json& j) { j["schemaVersion"] = 1; }, "schemaVersion must be 2"},
      {"schemaVersion string", [](Json& j) { j["schemaVersion"] = "2"; }, "schemaVersion must be 2"},
      {"no mediaType", [](Json& j) { j.erase("mediaType"); }, "mediaType must be"},
      {"docker mediaType",
       [](Json& j) { j["mediaType"] = "application/vnd.docker.distribution.manifest.v2+json"; },
       "mediaType must be"},
      {"index mediaType", [](Json& j) { j["mediaType"] = "application/vnd.oci.image.index.v1+json"; },
       "mediaType must be"},
      {"artifactType number", [](Json& j) { j["artifactType"] = 7; }, "artifactType must be a string"},
      {"no config", [](Json& j) { j.erase("config"); }, "config is missing"},
      {"config array", [](Json& j) { j["config"] = Json::array(); }, "config must be an object"},
      {"config without mediaType", [](Json& j) { j["config"].erase("mediaType"); },
       "config.mediaType must be a non-empty string"},
      {"config bad digest", [](Json& j) { j["config"]["digest"] = "sha256:abc"; }, "config.digest"},
      {"no layers", [](Json& j) { j.erase("layers"); }, "layers must be an array"},
      {"layers object", [](Json& j) { j["layers"] = Json::object(); }, "layers must be an array"},
      {"layer not an object", [](Json& j) { j["layers"][1] = "x"; }, "layers[1] must be an object"},
      {"uppercase digest",
       [](Json& j) {
         std::string d = j["layers"][0]["digest"];
         for (auto& c : d) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
         j["layers"][0]["digest"] = d;
       },
       "layers[0].digest"},
      {"sha512 digest", [](Json& j) { j["layers"][0]["digest"] = "sha512:" + std::string(128, 'a'); },
       "layers[0].digest"},
      {"digest number", [](Json& j) { j["layers"][0]["digest"] = 5; }, "layers[0].digest must be a string"},
      {"negative size", [](Json& j) { j["layers"][0]["size"] = -1; },
       "layers[0].size must be a non-negative integer"},
      {"fractional size", [](Json& j) { j["layers"][0]["size"] = 1.5; },
       "layers[0].size must be a non-negative integer"},
      {"string size", [](Json& j) { j["config"]["size"] = "2"; },
       "config.size must be a non-negative integer"},
      {"missing size", [](Json& j) { j["layers"][1].erase("size"); },
       "layers[1].size must be a non-negative integer"},
      {"huge size", [](Json& j) { j["layers"][0]["size"] = UINT64_MAX; }, "layers[0].size is too large"},
      {"annotation number", [&](Json& j) { j["layers"][0]["annotations"][title] = 3; }, "must be a string"},
      {"annotations array", [](Json& j) { j["annotations"] = Json::array(); },
       "annotations must be an object"},
      {"missing title", [](Json& j) { j["layers"][1].erase("annotations"); },
       "layers[1] has no org.opencontainers.image.title"},
      {"missing title (tool)",
       [](Json& j) {
         j["artifactType"] = kToolArtifactType;
         j["layers"][0]["annotations"] = Json::object();
       },
       "layers[0] has no org.opencontainers.image.title"},
      {"duplicate titles", [&](Json& j) { j["layers"][1]["annotations"][title] = "model.safetensors"; },
       "repeats the title 'model.safetensors'"},
      {"escaping title", [&](Json& j) { j["layers"][1]["annotations"][title] = "../x"; }, "layers[1] title"},
      {"absolute title", [&](Json& j) { j["layers"][0]["annotations"][title] = "/etc/passwd"; },
       "layers[0] title"},
      {"empty title", [&](Json& j) { j["layers"][0]["annotations"][title] = ""; }, "layers[0] title"},
      {"bad title without artifactType",
       [&](Json& j) {
         j.erase("artifactType");
         j["layers"][0]["annotations"][title] = "a/../../b";
       },
       "layers[0] title"},
      {"title is a directory of another",
       [&](Json& j) {
         j["layers"][0]["annotations"][title] = "tokenizer";
         j["layers"][1]["annotations"][title] = "tokenizer/vocab.json";
       },
       "title 'tokenizer' is a directory of 'tokenizer/vocab.json'"},
      {"deep title is a directory of another",
       [&](Json& j) {
         j["layers"][0]["annotations"][title] = "a/b/c";
         j["layers"][1]["annotations"][title] = "a/b";
       },
       "title 'a/b' is a directory of 'a/b/c'"},
      {"bad subject",
       [](Json& j) {
         j["subject"] = {{"mediaType", "x"}, {"digest", "sha256:00"}, {"size", 1}};
       },
       "subject.digest"},
      {"too many layers",
       [](Json& j) {
         Json layers = Json::array();
         for (size_t i = 0; i <= kMaxLayers; ++i) {
           layers.push_back({{"mediaType", "a"},
                             {"digest", core::Sha256::Of("x").ToString()},
                             {"size", 1},
                             {"annotations", {{std::string(kTitleAnnotation), "f" + std::to_string(i)}}}});
         }
         j["layers"] = layers;
       },
       "more than 10000 layers"},
  };
  for (const auto& c : cases) {
    INFO(c.what);
    Json j = GoodJson();
    c.mutate(j);
    auto r = ParseManifest(Dump(j));
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == core::Code::kInvalidArgument);
    CHECK(r.status().reason() == "MANIFEST_INVALID");
    CHECK_THAT(r.status().message(), Catch::Contains(c.message));
  }
}

TEST_CASE("manifest text that is not one JSON object is refused", "[registry]") {
  std::string good = SerializeManifest(GoodManifest());
  std::string duplicate_key = good;
  duplicate_key.insert(1, "\"schemaVersion\":1,");
  std::vector<std::pair<std::string, std::string>> cases = {
      {"", "invalid JSON"},
      {"{", "invalid JSON"},
      {"null", "must be a JSON object"},
      {good + "x", "invalid JSON"},
      {good.substr(0, good.size() - 1), "invalid JSON"},
      {std::string(100, '[') + std::string(100, ']'), "nested deeper"},
      {"{\"a\":\"\xff\"}", "invalid JSON"},
      {duplicate_key, "key 'schemaVersion' appears twice"},
      {std::string(kMaxManifestBytes + 1, ' '), "larger than"},
  };
  for (const auto& [text, message] : cases) {
    INFO(text.substr(0, 60));
    auto r = ParseManifest(text);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().reason() == "MANIFEST_INVALID");
    CHECK_THAT(r.status().message(), Catch::Contains(message));
  }
  // Whitespace and key order are the pusher's business: any valid spelling parses.
  std::string pretty = core::ParseJson(good).value().dump(2);
  CHECK(ParseManifest(pretty).ok());
}

}  // namespace
}  // namespace sigil::registry
