#include "cli/bundle_file.h"

#include <catch2/catch.hpp>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/bundle_command.h"
#include "core/digest.h"
#include "core/fs.h"
#include "core/json.h"
#include "registry/bundles.h"
#include "tests/support/temp_dir.h"

namespace sigil::cli {
namespace {

std::string Write(const testing::TempDir& dir, const std::string& name,
                  const std::vector<std::pair<std::string, std::string>>& entries) {
  std::string path = dir.Sub(name);
  auto w = TarWriter::Create(path);
  REQUIRE(w.ok());
  for (const auto& [n, bytes] : entries) REQUIRE(w->Add(n, bytes).ok());
  REQUIRE(w->Finish().ok());
  return path;
}

std::string Bytes(const std::string& path) {
  auto b = core::ReadFile(path);
  REQUIRE(b.ok());
  return *b;
}

void Put(const std::string& path, const std::string& bytes) { REQUIRE(core::WriteFileAtomic(path, bytes).ok()); }

// Rewrites a header's checksum after a test changed the header.
void Resum(std::string* tar, size_t header) {
  unsigned sum = 0;
  for (size_t i = 0; i < 512; ++i) sum += (i >= 148 && i < 156) ? ' ' : static_cast<unsigned char>((*tar)[header + i]);
  char field[8];
  std::snprintf(field, sizeof(field), "%06o", sum);
  std::memcpy(&(*tar)[header + 148], field, 7);
  (*tar)[header + 155] = ' ';
}

void RequireRefused(const std::string& path, const std::string& words) {
  auto r = TarReader::Open(path);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().reason() == "BUNDLE_FILE_INVALID");
  INFO(r.status().message());
  CHECK(r.status().message().find(words) != std::string::npos);
}

TEST_CASE("Tar: what the writer writes, the reader reads") {
  testing::TempDir dir;
  std::string big(5000, 'x');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7);
  std::string path = Write(dir, "a.tar", {{"oci-layout", "{}"}, {"blobs/sha256/aa", big}, {"empty", ""}});
  CHECK(Bytes(path).size() % 10240 == 0);
  auto r = TarReader::Open(path);
  INFO(r.status().ToString());
  REQUIRE(r.ok());
  REQUIRE(r->entries().size() == 3);
  const TarEntry* e = r->Find("blobs/sha256/aa");
  REQUIRE(e != nullptr);
  auto all = r->ReadAll(*e, 1 << 20);
  REQUIRE(all.ok());
  CHECK(*all == big);
  char buf[100];
  auto n = r->ReadAt(*e, 4950, buf, sizeof(buf));
  REQUIRE(n.ok());
  CHECK(*n == 50);
  CHECK(std::string(buf, 50) == big.substr(4950));
  CHECK(r->ReadAll(*e, 100).status().reason() == "BUNDLE_FILE_INVALID");
  CHECK(r->Find("nope") == nullptr);
  CHECK(r->Find("empty")->size == 0);
}

TEST_CASE("Tar: the writer refuses bad names, duplicates and wrong sizes") {
  testing::TempDir dir;
  auto w = TarWriter::Create(dir.Sub("w.tar"));
  REQUIRE(w.ok());
  for (const char* bad : {"", "/etc/passwd", "../x", "a/../b", "a//b", "a\\b", "./a"}) {
    CHECK(w->Begin(bad, 0).reason() == "BUNDLE_FILE_INVALID");
  }
  CHECK_FALSE(w->Begin(std::string(100, 'n'), 0).ok());
  REQUIRE(w->Add("a", "1").ok());
  CHECK(w->Add("a", "2").reason() == "BUNDLE_FILE_INVALID");
  REQUIRE(w->Begin("b", 3).ok());
  CHECK_FALSE(w->Write("1234").ok());
  REQUIRE(w->Write("12").ok());
  CHECK_FALSE(w->End().ok());
  CHECK_FALSE(w->Finish().ok());
}

TEST_CASE("Tar: malformed archives are refused") {
  testing::TempDir dir;
  std::string good = Bytes(Write(dir, "good.tar", {{"a", "hello"}, {"b", std::string(600, 'b')}}));
  std::string path = dir.Sub("bad.tar");
  // The second header: after a's header and one data block.
  const size_t second = 1024;

  SECTION("truncated in the data") {
    Put(path, good.substr(0, second + 512 + 100));
    RequireRefused(path, "truncated");
  }
  SECTION("truncated before the end-of-archive") {
    Put(path, good.substr(0, second + 512 + 1024));
    RequireRefused(path, "end-of-archive");
  }
  SECTION("empty file") {
    Put(path, "");
    RequireRefused(path, "truncated");
  }
  SECTION("a bad checksum") {
    std::string t = good;
    t[second + 1] = 'X';
    Put(path, t);
    RequireRefused(path, "checksum");
  }
  SECTION("an oversized size field") {
    std::string t = good;
    std::memcpy(&t[second + 124], "77777777777", 11);
    Resum(&t, second);
    Put(path, t);
    RequireRefused(path, "truncated");
  }
  SECTION("a size over the limit") {
    std::string t = good;
    TarLimits limits;
    limits.max_entry_bytes = 100;
    Put(path, t);
    auto r = TarReader::Open(path, limits);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().message().find("larger than") != std::string::npos);
  }
  SECTION("a size field that is not octal") {
    std::string t = good;
    std::memcpy(&t[second + 124], "0000000009x", 11);
    Resum(&t, second);
    Put(path, t);
    RequireRefused(path, "octal");
  }
  SECTION("a name with ..") {
    std::string t = good;
    std::memcpy(&t[second], "../x\0", 5);
    Resum(&t, second);
    Put(path, t);
    RequireRefused(path, "'..'");
  }
  SECTION("an absolute name") {
    std::string t = good;
    std::memcpy(&t[second], "/b\0", 3);
    Resum(&t, second);
    Put(path, t);
    RequireRefused(path, "absolute");
  }
  SECTION("duplicate names") {
    std::string t = good;
    t[second] = 'a';
    Resum(&t, second);
    Put(path, t);
    RequireRefused(path, "duplicate");
  }
  SECTION("a symlink entry") {
    std::string t = good;
    t[second + 156] = '2';
    std::memcpy(&t[second + 157], "/etc/passwd", 11);
    Resum(&t, second);
    Put(path, t);
    RequireRefused(path, "not a regular file");
  }
  SECTION("a hard link entry") {
    std::string t = good;
    t[second + 156] = '1';
    Resum(&t, second);
    Put(path, t);
    RequireRefused(path, "not a regular file");
  }
  SECTION("not ustar") {
    std::string t = good;
    std::memcpy(&t[second + 257], "xxxxx", 5);
    Resum(&t, second);
    Put(path, t);
    RequireRefused(path, "ustar");
  }
  SECTION("a prefix field") {
    std::string t = good;
    t[second + 345] = 'p';
    Resum(&t, second);
    Put(path, t);
    RequireRefused(path, "prefix");
  }
  SECTION("non-zero padding") {
    std::string t = good;
    t[512 + 5] = 'z';  // after a's five bytes
    Put(path, t);
    RequireRefused(path, "padding");
  }
  SECTION("data after the end-of-archive") {
    std::string t = good;
    t[t.size() - 1] = 'z';
    Put(path, t);
    RequireRefused(path, "after the end-of-archive");
  }
  SECTION("too many entries") {
    Put(path, good);
    TarLimits limits;
    limits.max_entries = 1;
    auto r = TarReader::Open(path, limits);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().message().find("entries") != std::string::npos);
  }
}

// A bundle file made by hand: ReadBundle checks the layout, the plan's
// digest and every blob before anything is sent.
TEST_CASE("Bundle files: ReadBundle checks layout, plan and blobs") {
  testing::TempDir dir;
  std::string blob = "layer bytes";
  core::Digest bd = core::Sha256::Of(blob);
  std::string plan = core::DumpJson(core::Json{
      {"schema", 1}, {"blobs", {{{"digest", bd.ToString()}, {"size", blob.size()}}}}, {"omitted", core::Json::array()}});
  core::Digest pd = core::Sha256::Of(plan);
  core::Json index = {{"schemaVersion", 2},
                      {"manifests",
                       {{{"artifactType", registry::kBundleArtifactType},
                         {"digest", pd.ToString()},
                         {"size", plan.size()}}}}};
  auto make = [&](const std::string& name, const std::string& blob_bytes, const std::string& extra = "") {
    std::vector<std::pair<std::string, std::string>> e = {
        {"oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}"},
        {"index.json", core::DumpJson(index)},
        {"blobs/sha256/" + pd.Hex(), plan},
        {"blobs/sha256/" + bd.Hex(), blob_bytes}};
    if (!extra.empty()) e.emplace_back(extra, "x");
    return Write(dir, name, e);
  };
  auto ok = ReadBundle(make("ok.tar", blob));
  INFO(ok.status().ToString());
  REQUIRE(ok.ok());
  CHECK(ok->plan_digest == pd);
  REQUIRE(ok->blobs.size() == 1);
  CHECK(ok->blobs[0].first == bd);

  std::string tampered = blob;
  tampered[0] = 'L';
  auto bad = ReadBundle(make("tampered.tar", tampered));
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().reason() == "DIGEST_MISMATCH");

  auto extra = ReadBundle(make("extra.tar", blob, "blobs/sha256/extra"));
  REQUIRE_FALSE(extra.ok());
  CHECK(extra.status().reason() == "BUNDLE_FILE_INVALID");

  auto shorter = ReadBundle(make("short.tar", "short"));
  REQUIRE_FALSE(shorter.ok());
  CHECK(shorter.status().reason() == "BUNDLE_FILE_INVALID");

  auto no_layout = ReadBundle(Write(dir, "nolayout.tar", {{"index.json", core::DumpJson(index)}}));
  REQUIRE_FALSE(no_layout.ok());
  CHECK(no_layout.status().message().find("oci-layout") != std::string::npos);
}

}  // namespace
}  // namespace sigil::cli
