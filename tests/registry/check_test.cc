// The offline check of a data directory: a store built by the real
// components is clean, and each kind of damage is reported as its kind.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>

#include "attest/transparency_log.h"
#include "core/fs.h"
#include "core/json.h"
#include "registry/attestations.h"
#include "registry/check.h"
#include "registry/registry.h"
#include "signing/keys.h"
#include "storage/fs_blob_store.h"
#include "storage/rocks_meta_store.h"
#include "storage/uploads.h"
#include "tests/registry/model_fixture.h"
#include "tests/support/temp_dir.h"

namespace sigil::registry {
namespace {

constexpr char kRepo[] = "check/model";

struct Built {
  std::string checkpoint;  // signed note of the log as built
  core::Digest layer_a;    // shared by v1 and v2
  std::string upload_id;
};

// A data directory as sigild leaves it: two versions sharing a blob, an
// alias moved twice, a server signature in the log, an open upload.
Built BuildDataDir(const std::string& dir) {
  Built out;
  auto blobs = std::move(storage::OpenFsBlobStore(dir)).value();
  auto meta = std::move(storage::OpenRocksMetaStore(dir + "/meta")).value();
  RegistryOptions ro;
  ro.blobs = blobs.get();
  ro.meta = meta.get();
  Registry reg(ro);
  fixtures::PushModel(reg, *blobs, kRepo, "v1", {{"a.bin", "shared bytes"}, {"b.bin", "only in v1"}});
  fixtures::PushModel(reg, *blobs, kRepo, "v2", {{"a.bin", "shared bytes"}, {"c.bin", "only in v2"}});
  out.layer_a = core::Sha256::Of("shared bytes");
  REQUIRE(reg.SetAlias(kRepo, "production", "v1").ok());
  REQUIRE(reg.SetAlias(kRepo, "production", "v2").ok());

  attest::TransparencyLogOptions lo;
  lo.meta = meta.get();
  lo.origin = "sigil/check-test";
  lo.key = signing::PrivateKey::Generate(signing::Algorithm::kEd25519).value();
  auto log = std::move(attest::TransparencyLog::Open(lo)).value();
  AttestationOptions ao;
  ao.registry = &reg;
  ao.blobs = blobs.get();
  ao.meta = meta.get();
  ao.log = log.get();
  ao.server_key = signing::PrivateKey::Generate().value();
  auto attestations = std::move(Attestations::Open(ao)).value();
  auto signed1 = attestations->Sign(kRepo, "v1");
  INFO(signed1.status().ToString());
  REQUIRE(signed1.ok());
  REQUIRE(attestations->Sign(kRepo, "v2").ok());
  out.checkpoint = log->Checkpoint().value().note;

  storage::UploadManager uploads(blobs.get(), meta.get(), core::Clock::Real(), storage::UploadOptions{});
  out.upload_id = uploads.Create().value().id;
  REQUIRE(uploads.Append(out.upload_id, 0, std::string(1000, 'x')).ok());
  return out;
}

CheckReport Check(const std::string& dir, std::vector<std::string> checkpoints = {}) {
  auto report = CheckDataDir(CheckOptions{dir, std::move(checkpoints)});
  INFO(report.status().ToString());
  REQUIRE(report.ok());
  for (const auto& p : report->problems) UNSCOPED_INFO(p.kind << ": " << p.message);
  return *report;
}

// The kinds of the problems found, each once.
std::set<std::string> Kinds(const CheckReport& report) {
  std::set<std::string> kinds;
  for (const auto& p : report.problems) kinds.insert(p.kind);
  return kinds;
}

std::string BlobPath(const std::string& dir, const core::Digest& d) {
  return dir + "/blobs/sha256/" + d.Hex().substr(0, 2) + "/" + d.Hex();
}

void EditMeta(const std::string& dir, const std::function<void(storage::MetaStore&)>& edit) {
  auto meta = std::move(storage::OpenRocksMetaStore(dir + "/meta")).value();
  edit(*meta);
}

std::string Key(std::initializer_list<std::string_view> parts) {
  std::string out;
  bool first = true;
  for (std::string_view p : parts) {
    if (!first) out.push_back('\0');
    out.append(p);
    first = false;
  }
  return out;
}

TEST_CASE("offline check: a store built by the real components is clean", "[registry][check]") {
  testing::TempDir tmp;
  Built built = BuildDataDir(tmp.path());
  CheckReport r = Check(tmp.path(), {built.checkpoint});
  CHECK(r.ok());
  CHECK(r.versions == 2);
  CHECK(r.aliases == 1);
  CHECK(r.alias_events == 2);
  CHECK(r.attestations == 2);
  CHECK(r.log_size == 2);
  CHECK(r.uploads == 1);
  // config (shared "{}"), a, b, c, two manifests, two signature bundles
  CHECK(r.blobs == 8);
}

TEST_CASE("offline check: each kind of damage is reported", "[registry][check]") {
  testing::TempDir tmp;
  const std::string dir = tmp.path();
  Built built = BuildDataDir(dir);

  SECTION("a blob whose bytes changed") {
    core::WriteFileAtomic(BlobPath(dir, built.layer_a), "other bytes").IgnoreError();
    CheckReport r = Check(dir);
    // The versions still find a blob under the name, of another size.
    CHECK(Kinds(r).count("blob") == 1);
    CHECK(Kinds(r).count("version") == 1);
  }
  SECTION("a temp file in the blob namespace") {
    std::string hex = built.layer_a.Hex();
    REQUIRE(core::WriteFileAtomic(dir + "/blobs/sha256/" + hex.substr(0, 2) + "/" + hex + ".tmp", "x").ok());
    CHECK(Kinds(Check(dir)) == std::set<std::string>{"blob"});
  }
  SECTION("a blob a version names is missing") {
    REQUIRE(::unlink(BlobPath(dir, built.layer_a).c_str()) == 0);
    CheckReport r = Check(dir);
    CHECK(Kinds(r) == std::set<std::string>{"version"});
    CHECK(r.problems.size() == 2);  // v1 and v2 both name it
  }
  SECTION("a manifest blob is missing") {
    EditMeta(dir, [&](storage::MetaStore& meta) {
      auto rec = core::ParseJson(meta.Get("tags", Key({kRepo, "v", "v1"})).value()).value();
      auto digest = core::Digest::Parse(rec["digest"].get<std::string>()).value();
      REQUIRE(::unlink(BlobPath(dir, digest).c_str()) == 0);
    });
    CHECK(Kinds(Check(dir)) == std::set<std::string>{"version"});
  }
  SECTION("an alias names a version that does not exist") {
    EditMeta(dir, [&](storage::MetaStore& meta) {
      auto rec = core::ParseJson(meta.Get("tags", Key({kRepo, "a", "production"})).value()).value();
      rec["version"] = "v9";
      REQUIRE(meta.Put("tags", Key({kRepo, "a", "production"}), core::DumpJson(rec)).ok());
    });
    CHECK(Kinds(Check(dir)) == std::set<std::string>{"alias"});
  }
  SECTION("an alias's newest history event is lost") {
    EditMeta(dir, [&](storage::MetaStore& meta) {
      std::string newest;
      REQUIRE(meta.Scan("tags", Key({kRepo, "h", "production", ""}), [&](std::string_view k, std::string_view) {
        newest = std::string(k);
        return false;
      }).ok());
      REQUIRE(meta.Delete("tags", newest).ok());
    });
    CHECK(Kinds(Check(dir)) == std::set<std::string>{"alias"});
  }
  SECTION("an alias's oldest history event is lost") {
    EditMeta(dir, [&](storage::MetaStore& meta) {
      std::string oldest;
      REQUIRE(meta.Scan("tags", Key({kRepo, "h", "production", ""}), [&](std::string_view k, std::string_view) {
        oldest = std::string(k);
        return true;
      }).ok());
      REQUIRE(meta.Delete("tags", oldest).ok());
    });
    CHECK(Kinds(Check(dir)) == std::set<std::string>{"alias"});
  }
  SECTION("an attestation whose log entry is past the log") {
    EditMeta(dir, [&](storage::MetaStore& meta) {
      std::string key, value;
      REQUIRE(meta.Scan("referrers", "", [&](std::string_view k, std::string_view v) {
        key = std::string(k);
        value = std::string(v);
        return false;
      }).ok());
      auto rec = core::ParseJson(value).value();
      rec["log_index"] = 7;
      REQUIRE(meta.Put("referrers", key, core::DumpJson(rec)).ok());
    });
    CHECK(Kinds(Check(dir)) == std::set<std::string>{"attestation"});
  }
  SECTION("an attestation that names another document's log entry") {
    EditMeta(dir, [&](storage::MetaStore& meta) {
      std::vector<std::pair<std::string, std::string>> recs;
      REQUIRE(meta.Scan("referrers", "", [&](std::string_view k, std::string_view v) {
        recs.emplace_back(k, v);
        return true;
      }).ok());
      REQUIRE(recs.size() == 2);
      auto a = core::ParseJson(recs[0].second).value();
      auto b = core::ParseJson(recs[1].second).value();
      std::swap(a["log_index"], b["log_index"]);
      REQUIRE(meta.Put("referrers", recs[0].first, core::DumpJson(a)).ok());
      REQUIRE(meta.Put("referrers", recs[1].first, core::DumpJson(b)).ok());
    });
    CheckReport r = Check(dir);
    CHECK(Kinds(r) == std::set<std::string>{"attestation"});
    CHECK(r.problems.size() == 2);
  }
  SECTION("a log leaf rewritten") {
    EditMeta(dir, [&](storage::MetaStore& meta) {
      REQUIRE(meta.Put("log", "d/0000000000000000", "{\"rewritten\": true}").ok());
    });
    CheckReport r = Check(dir, {built.checkpoint});
    CHECK(Kinds(r).count("log") == 1);
  }
  SECTION("a subtree hash rewritten, and the root no longer the checkpoint's") {
    EditMeta(dir, [&](storage::MetaStore& meta) {
      REQUIRE(meta.Put("log", "n/01/0000000000000000", std::string(32, '\x01')).ok());
    });
    CHECK(Kinds(Check(dir, {built.checkpoint})) == std::set<std::string>{"log"});
  }
  SECTION("the log lost entries a checkpoint was issued for") {
    EditMeta(dir, [&](storage::MetaStore& meta) {
      REQUIRE(meta.Put("log", "s", "1").ok());
    });
    CheckReport r = Check(dir, {built.checkpoint});
    CHECK(Kinds(r).count("log") == 1);
    bool past_size = false;
    for (const auto& p : r.problems) {
      past_size = past_size || p.message.find("checkpoint of size 2") != std::string::npos;
    }
    CHECK(past_size);
  }
  SECTION("a checkpoint of another tree") {
    std::string forged = built.checkpoint;
    size_t root = forged.find('\n', forged.find('\n') + 1) + 1;
    forged[root] = forged[root] == 'A' ? 'B' : 'A';
    CHECK(Kinds(Check(dir, {forged})) == std::set<std::string>{"log"});
  }
  SECTION("an upload's recorded offset past its data file") {
    REQUIRE(::truncate((dir + "/uploads/" + built.upload_id).c_str(), 10) == 0);
    CHECK(Kinds(Check(dir)) == std::set<std::string>{"upload"});
  }
}

TEST_CASE("offline check: no data directory is an error, not a clean report", "[registry][check]") {
  testing::TempDir tmp;
  auto r = CheckDataDir(CheckOptions{tmp.Sub("absent"), {}});
  CHECK(r.status().code() == core::Code::kNotFound);
}

}  // namespace
}  // namespace sigil::registry
