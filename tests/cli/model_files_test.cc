#include "cli/model_files.h"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "cli/push.h"
#include "core/fs.h"
#include "core/json.h"
#include "registry/manifest.h"
#include "tests/support/temp_dir.h"

namespace sigil::cli {
namespace {

void Write(const std::string& path, const std::string& data) {
  REQUIRE(core::MakeDirs(core::DirName(path)).ok());
  REQUIRE(core::WriteFileAtomic(path, data).ok());
}

std::vector<std::string> Titles(const std::vector<LocalFile>& files) {
  std::vector<std::string> out;
  for (const auto& f : files) out.push_back(f.title);
  return out;
}

TEST_CASE("a directory lists every regular file, titled and sorted", "[cli]") {
  testing::TempDir dir;
  std::string m = dir.Sub("model");
  Write(m + "/weights/b.safetensors", "bb");
  Write(m + "/weights/a.safetensors", "a");
  Write(m + "/config.json", "{}");
  Write(m + "/empty", "");
  Write(m + "/z/y/x/deep.bin", "deep!");
  auto files = ListModelFiles(m);
  REQUIRE(files.ok());
  CHECK(Titles(*files) == std::vector<std::string>{"config.json", "empty",
                                                   "weights/a.safetensors",
                                                   "weights/b.safetensors", "z/y/x/deep.bin"});
  CHECK((*files)[1].size == 0);
  CHECK((*files)[4].size == 5);
  CHECK((*files)[4].path == m + "/z/y/x/deep.bin");
  // A trailing slash changes nothing.
  auto again = ListModelFiles(m + "/");
  REQUIRE(again.ok());
  CHECK(Titles(*again) == Titles(*files));
}

TEST_CASE("a single file is titled with its base name", "[cli]") {
  testing::TempDir dir;
  Write(dir.Sub("sub/model.gguf"), "GGUF....");
  auto files = ListModelFiles(dir.Sub("sub/model.gguf"));
  REQUIRE(files.ok());
  REQUIRE(files->size() == 1);
  CHECK((*files)[0].title == "model.gguf");
  CHECK((*files)[0].size == 8);
}

TEST_CASE("symlinks inside the directory are followed, escaping ones refused", "[cli]") {
  testing::TempDir dir;
  std::string m = dir.Sub("model");
  Write(m + "/real.bin", "data");
  Write(dir.Sub("outside.bin"), "secret");
  REQUIRE(::symlink("real.bin", (m + "/alias.bin").c_str()) == 0);
  auto files = ListModelFiles(m);
  REQUIRE(files.ok());
  CHECK(Titles(*files) == std::vector<std::string>{"alias.bin", "real.bin"});
  CHECK((*files)[0].size == 4);

  SECTION("relative escape") {
    REQUIRE(::symlink("../outside.bin", (m + "/escape.bin").c_str()) == 0);
  }
  SECTION("absolute escape") {
    REQUIRE(::symlink(dir.Sub("outside.bin").c_str(), (m + "/escape.bin").c_str()) == 0);
  }
  SECTION("dangling") {
    REQUIRE(::symlink("missing.bin", (m + "/escape.bin").c_str()) == 0);
  }
  SECTION("directory") {
    REQUIRE(core::MakeDirs(m + "/sub").ok());
    REQUIRE(::symlink("sub", (m + "/escape.bin").c_str()) == 0);
  }
  SECTION("directory outside") {
    REQUIRE(::symlink(dir.path().c_str(), (m + "/escape.bin").c_str()) == 0);
  }
  auto refused = ListModelFiles(m);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().code() == core::Code::kInvalidArgument);
  CHECK(refused.status().message().find("escape.bin") != std::string::npos);
}

TEST_CASE("special files are refused", "[cli]") {
  testing::TempDir dir;
  std::string m = dir.Sub("model");
  Write(m + "/a.bin", "a");
  REQUIRE(::mkfifo((m + "/pipe").c_str(), 0600) == 0);
  auto r = ListModelFiles(m);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == core::Code::kInvalidArgument);
}

TEST_CASE("an empty directory and a missing path are refused", "[cli]") {
  testing::TempDir dir;
  REQUIRE(core::MakeDirs(dir.Sub("empty/only/dirs")).ok());
  auto empty = ListModelFiles(dir.Sub("empty"));
  REQUIRE_FALSE(empty.ok());
  CHECK(empty.status().code() == core::Code::kInvalidArgument);
  auto missing = ListModelFiles(dir.Sub("nope"));
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.status().code() == core::Code::kNotFound);
}

TEST_CASE("file names that are not valid titles are refused", "[cli]") {
  testing::TempDir dir;
  std::string m = dir.Sub("model");
  Write(m + "/ok.bin", "a");
  Write(m + "/bad\\name", "b");
  auto r = ListModelFiles(m);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == core::Code::kInvalidArgument);
}

TEST_CASE("hashing matches SHA-256 of the contents, in order", "[cli]") {
  testing::TempDir dir;
  std::string big(3 * (1 << 20) + 17, 'x');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7);
  Write(dir.Sub("m/big"), big);
  Write(dir.Sub("m/small"), "small");
  Write(dir.Sub("m/zero"), "");
  auto files = ListModelFiles(dir.Sub("m"));
  REQUIRE(files.ok());
  std::atomic<uint64_t> seen{0};
  auto hashed = HashFiles(*files, 3, [&](uint64_t n) { seen += n; });
  REQUIRE(hashed.ok());
  REQUIRE(hashed->size() == 3);
  CHECK((*hashed)[0].digest == core::Sha256::Of(big));
  CHECK((*hashed)[1].digest == core::Sha256::Of("small"));
  CHECK((*hashed)[2].digest == core::Sha256::Of(""));
  CHECK(seen == big.size() + 5);
}

TEST_CASE("config and manifest describe the files", "[cli]") {
  std::string config = BuildConfig("safetensors", 2, {{"team", "health"}, {"arch", "llama"}});
  CHECK(config ==
        R"({"files":2,"format":"safetensors","labels":{"arch":"llama","team":"health"}})");
  CHECK(BuildConfig("unknown", 1, {}) == R"({"files":1,"format":"unknown","labels":{}})");

  std::vector<HashedFile> files = {
      {LocalFile{"/x/a", "a.bin", 3}, core::Sha256::Of("abc")},
      {LocalFile{"/x/d/b", "d/b.bin", 0}, core::Sha256::Of("")},
  };
  registry::Manifest m = BuildManifest(files, config);
  CHECK(m.artifact_type == registry::kModelArtifactType);
  CHECK(m.config.media_type == registry::kModelConfigMediaType);
  CHECK(m.config.digest == core::Sha256::Of(config));
  CHECK(m.config.size == config.size());
  REQUIRE(m.layers.size() == 2);
  CHECK(m.layers[1].annotations.at(std::string(registry::kTitleAnnotation)) == "d/b.bin");

  // What the client pushes is a manifest the registry accepts, unchanged.
  std::string bytes = registry::SerializeManifest(m);
  auto parsed = registry::ParseManifest(bytes);
  REQUIRE(parsed.ok());
  REQUIRE(parsed->layers.size() == 2);
  CHECK(parsed->layers[0].digest == core::Sha256::Of("abc"));
  CHECK(parsed->layers[0].size == 3);
  CHECK(parsed->layers[0].annotations.at(std::string(registry::kTitleAnnotation)) == "a.bin");
  CHECK(registry::SerializeManifest(*parsed) == bytes);
  auto json = core::ParseJson(bytes);
  REQUIRE(json.ok());
  CHECK((*json)["artifactType"] == "application/vnd.cncf.model.manifest.v1+json");
  CHECK((*json)["mediaType"] == "application/vnd.oci.image.manifest.v1+json");
}

TEST_CASE("labels parse as KEY=VALUE", "[cli]") {
  std::map<std::string, std::string> labels;
  REQUIRE(ParseLabel("team=health", &labels).ok());
  REQUIRE(ParseLabel("note=a=b c", &labels).ok());
  CHECK(labels.at("team") == "health");
  CHECK(labels.at("note") == "a=b c");
  CHECK(ParseLabel("novalue", &labels).reason() == "LABEL_INVALID");
  CHECK(ParseLabel("=x", &labels).reason() == "LABEL_INVALID");
  CHECK(ParseLabel("Upper=x", &labels).reason() == "LABEL_INVALID");
}

}  // namespace
}  // namespace sigil::cli
