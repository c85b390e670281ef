#include "registry/registry.h"

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "core/json.h"
#include "storage/fs_blob_store.h"
#include "storage/rocks_meta_store.h"
#include "tests/support/temp_dir.h"

namespace sigil::registry {
namespace {

constexpr int64_t kSecond = 1'000'000;
constexpr int64_t kHour = 3600 * kSecond;

// The in-memory store stamps blobs with the real clock; this one stamps them
// with the test's clock so GC grace periods can be stepped over exactly.
class ClockedBlobStore : public storage::BlobStore {
 public:
  explicit ClockedBlobStore(core::Clock* clock) : clock_(clock), inner_(storage::NewMemoryBlobStore()) {}

  core::Result<storage::BlobInfo> Stat(const core::Digest& d) override {
    auto r = inner_->Stat(d);
    if (r.ok()) r->mtime_micros = MtimeOf(d);
    return r;
  }
  core::Result<std::unique_ptr<storage::BlobReader>> Open(const core::Digest& d) override {
    return inner_->Open(d);
  }
  core::Status Put(const core::Digest& d, std::string_view bytes) override {
    bool existed = inner_->Stat(d).ok();
    RETURN_IF_ERROR(inner_->Put(d, bytes));
    if (!existed) Stamp(d);
    return core::OkStatus();
  }
  core::Status Delete(const core::Digest& d) override {
    RETURN_IF_ERROR(inner_->Delete(d));
    std::lock_guard lock(mu_);
    mtimes_.erase(d);
    return core::OkStatus();
  }
  core::Status ForEach(const std::function<bool(const storage::BlobInfo&)>& fn) override {
    return inner_->ForEach([&](const storage::BlobInfo& info) {
      storage::BlobInfo stamped = info;
      stamped.mtime_micros = MtimeOf(info.digest);
      return fn(stamped);
    });
  }
  core::Status CreateStaging(const std::string& id) override { return inner_->CreateStaging(id); }
  core::Result<uint64_t> StagingSize(const std::string& id) override { return inner_->StagingSize(id); }
  core::Status WriteStaging(const std::string& id, uint64_t offset, std::string_view data) override {
    return inner_->WriteStaging(id, offset, data);
  }
  core::Status TruncateStaging(const std::string& id, uint64_t size) override {
    return inner_->TruncateStaging(id, size);
  }
  core::Status SyncStaging(const std::string& id) override { return inner_->SyncStaging(id); }
  core::Result<std::unique_ptr<storage::BlobReader>> OpenStaging(const std::string& id) override {
    return inner_->OpenStaging(id);
  }
  core::Status CommitStaging(const std::string& id, const core::Digest& d) override {
    bool existed = inner_->Stat(d).ok();
    RETURN_IF_ERROR(inner_->CommitStaging(id, d));
    if (!existed) Stamp(d);
    return core::OkStatus();
  }
  core::Status RemoveStaging(const std::string& id) override { return inner_->RemoveStaging(id); }
  core::Status ForEachStaging(const std::function<bool(const std::string&)>& fn) override {
    return inner_->ForEachStaging(fn);
  }
  core::Status CheckHealth() override { return inner_->CheckHealth(); }

  size_t count() {
    size_t n = 0;
    inner_->ForEach([&](const storage::BlobInfo&) { return ++n, true; }).IgnoreError();
    return n;
  }
  bool Has(const core::Digest& d) { return inner_->Stat(d).ok(); }

 private:
  void Stamp(const core::Digest& d) {
    std::lock_guard lock(mu_);
    mtimes_[d] = clock_->NowMicros();
  }
  int64_t MtimeOf(const core::Digest& d) {
    std::lock_guard lock(mu_);
    auto it = mtimes_.find(d);
    return it == mtimes_.end() ? clock_->NowMicros() : it->second;
  }

  core::Clock* clock_;
  std::unique_ptr<storage::BlobStore> inner_;
  std::mutex mu_;
  std::map<core::Digest, int64_t> mtimes_;
};

struct Env {
  explicit Env(int64_t grace = kHour) : reg(Options(grace)) {}

  RegistryOptions Options(int64_t grace) {
    RegistryOptions o;
    o.blobs = &blobs;
    o.meta = meta.get();
    o.clock = &clock;
    o.gc_grace_micros = grace;
    return o;
  }

  Descriptor Upload(const std::string& content, const std::string& title) {
    Descriptor d = Describe(content, title);
    REQUIRE(blobs.Put(d.digest, content).ok());
    return d;
  }
  static Descriptor Describe(const std::string& content, const std::string& title) {
    Descriptor d;
    d.media_type = std::string(kLayerMediaType);
    d.digest = core::Sha256::Of(content);
    d.size = content.size();
    d.annotations[std::string(kTitleAnnotation)] = title;
    return d;
  }

  // A model manifest over files {title: content}; uploads them and the config.
  std::string Model(const std::map<std::string, std::string>& files, const std::string& config = "{}") {
    Manifest m;
    m.artifact_type = std::string(kModelArtifactType);
    m.config = Upload(config, "");
    m.config.media_type = std::string(kModelConfigMediaType);
    m.config.annotations.clear();
    for (const auto& [title, content] : files) m.layers.push_back(Upload(content, title));
    return SerializeManifest(m);
  }

  VersionInfo Push(const std::string& repo, const std::string& version, const std::string& manifest) {
    auto r = reg.PutVersion(repo, version, manifest);
    INFO(r.status().ToString());
    REQUIRE(r.ok());
    return *r;
  }

  core::ManualClock clock;
  ClockedBlobStore blobs{&clock};
  std::unique_ptr<storage::MetaStore> meta = storage::NewMemoryMetaStore();
  Registry reg;
};

void CheckError(const core::Status& s, core::Code code, const std::string& reason) {
  INFO(s.ToString());
  CHECK(s.code() == code);
  CHECK(s.reason() == reason);
}

std::vector<std::string> Names(const std::vector<VersionInfo>& items) {
  std::vector<std::string> out;
  for (const auto& v : items) out.push_back(v.version);
  return out;
}

TEST_CASE("a pushed version resolves by version, alias and digest", "[registry]") {
  Env env;
  std::string manifest = env.Model({{"model.safetensors", "weights!"}, {"tok/vocab.json", "vocab"}});
  core::Digest digest = core::Sha256::Of(manifest);

  VersionInfo info = env.Push("health/triage-llm", "1.4.0", manifest);
  CHECK(info.repo == "health/triage-llm");
  CHECK(info.version == "1.4.0");
  CHECK(info.digest == digest);
  CHECK(info.manifest_size == manifest.size());
  CHECK(info.total_size == 13);
  CHECK(info.created_micros == env.clock.NowMicros());
  CHECK(info.state == VersionState::kAvailable);
  CHECK(info.aliases.empty());
  CHECK(env.blobs.Has(digest));  // the manifest is a blob too

  auto by_version = env.reg.Resolve("health/triage-llm", "1.4.0");
  REQUIRE(by_version.ok());
  CHECK(by_version->manifest_bytes == manifest);
  CHECK(by_version->manifest.layers.size() == 2);
  CHECK(by_version->manifest.FindFile("tok/vocab.json")->size == 5);
  CHECK(by_version->info.digest == digest);
  CHECK(by_version->info.total_size == 13);

  env.clock.Advance(kSecond);
  auto alias = env.reg.SetAlias("health/triage-llm", "production", "1.4.0");
  REQUIRE(alias.ok());
  CHECK(alias->name == "production");
  CHECK(alias->version == "1.4.0");
  CHECK(alias->digest == digest);
  CHECK(alias->updated_micros == env.clock.NowMicros());

  auto by_alias = env.reg.Resolve("health/triage-llm", "production");
  REQUIRE(by_alias.ok());
  CHECK(by_alias->info.version == "1.4.0");
  CHECK(by_alias->info.aliases == std::vector<std::string>{"production"});
  CHECK(by_alias->manifest_bytes == manifest);

  auto by_digest = env.reg.Resolve("health/triage-llm", digest.ToString());
  REQUIRE(by_digest.ok());
  CHECK(by_digest->info.version == "1.4.0");

  auto repo = env.reg.GetRepo("health/triage-llm");
  REQUIRE(repo.ok());
  CHECK(repo->version_count == 1);
  CHECK(repo->created_micros == info.created_micros);

  CheckError(env.reg.Resolve("health/triage-llm", "9.9").status(), core::Code::kNotFound, "VERSION_UNKNOWN");
  CheckError(env.reg.Resolve("health/triage-llm", core::Sha256::Of("x").ToString()).status(),
             core::Code::kNotFound, "VERSION_UNKNOWN");
  CheckError(env.reg.Resolve("health/triage-llm", "sha256:zz").status(), core::Code::kInvalidArgument,
             "DIGEST_INVALID");
  CheckError(env.reg.Resolve("health/other", "1.4.0").status(), core::Code::kNotFound, "REPO_UNKNOWN");
  CheckError(env.reg.Resolve("health", "1.4.0").status(), core::Code::kNotFound, "REPO_UNKNOWN");
  CheckError(env.reg.Resolve("Health", "1.4.0").status(), core::Code::kInvalidArgument, "NAME_INVALID");
  CheckError(env.reg.Resolve("health/triage-llm", "a/b").status(), core::Code::kInvalidArgument,
             "TAG_INVALID");
  CheckError(env.reg.GetRepo("nope").status(), core::Code::kNotFound, "REPO_UNKNOWN");
}

TEST_CASE("a push naming absent blobs lists them and records nothing", "[registry]") {
  Env env;
  Manifest m;
  m.artifact_type = std::string(kModelArtifactType);
  m.config = Env::Describe("{\"format\":\"safetensors\"}", "");
  m.config.annotations.clear();
  m.config.media_type = std::string(kModelConfigMediaType);
  m.layers = {env.Upload("present", "a.bin"), Env::Describe("absent-1", "b.bin"),
              Env::Describe("absent-2", "c.bin"), Env::Describe("absent-1", "d.bin")};
  std::string manifest = SerializeManifest(m);

  auto r = env.reg.PutVersion("team/model", "1.0", manifest);
  REQUIRE_FALSE(r.ok());
  CheckError(r.status(), core::Code::kInvalidArgument, "BLOB_UNKNOWN");
  auto detail = core::ParseJson(r.status().detail());
  REQUIRE(detail.ok());
  CHECK((*detail)["missing"] ==
        core::Json::array({m.config.digest.ToString(), core::Sha256::Of("absent-1").ToString(),
                           core::Sha256::Of("absent-2").ToString()}));
  CheckError(env.reg.GetRepo("team/model").status(), core::Code::kNotFound, "REPO_UNKNOWN");
  CHECK_FALSE(env.blobs.Has(core::Sha256::Of(manifest)));

  // Once uploaded, the same manifest goes through.
  for (const char* content : {"{\"format\":\"safetensors\"}", "absent-1", "absent-2"}) {
    REQUIRE(env.blobs.Put(core::Sha256::Of(content), content).ok());
  }
  env.Push("team/model", "1.0", manifest);
}

TEST_CASE("a blob whose size differs from the manifest is refused", "[registry]") {
  Env env;
  Manifest m;
  m.artifact_type = std::string(kModelArtifactType);
  m.config = env.Upload("{}", "");
  m.config.annotations.clear();
  m.layers = {env.Upload("twelve bytes", "w.bin")};
  m.layers[0].size = 13;
  auto r = env.reg.PutVersion("team/model", "1.0", SerializeManifest(m));
  CheckError(r.status(), core::Code::kInvalidArgument, "MANIFEST_INVALID");
  CHECK_THAT(r.status().message(), Catch::Contains("has 12 bytes, the manifest says 13"));

  // The same blob listed twice, once with the wrong size.
  m.layers[0].size = 12;
  m.layers.push_back(Env::Describe("twelve bytes", "copy.bin"));
  m.layers[1].size = 11;
  CheckError(env.reg.PutVersion("team/model", "1.0", SerializeManifest(m)).status(),
             core::Code::kInvalidArgument, "MANIFEST_INVALID");
  CheckError(env.reg.GetRepo("team/model").status(), core::Code::kNotFound, "REPO_UNKNOWN");
}

TEST_CASE("bad names, labels and manifests are refused before anything is stored", "[registry]") {
  Env env;
  std::string manifest = env.Model({{"w", "w"}});
  CheckError(env.reg.PutVersion("Team/model", "1", manifest).status(), core::Code::kInvalidArgument,
             "NAME_INVALID");
  CheckError(env.reg.PutVersion("team/versions", "1", manifest).status(), core::Code::kInvalidArgument,
             "NAME_INVALID");
  CheckError(env.reg.PutVersion("team/model", "-1", manifest).status(), core::Code::kInvalidArgument,
             "TAG_INVALID");
  CheckError(env.reg.PutVersion("team/model", "1", manifest, {{"Bad", "x"}}).status(),
             core::Code::kInvalidArgument, "LABEL_INVALID");
  CheckError(env.reg.PutVersion("team/model", "1", "{}").status(), core::Code::kInvalidArgument,
             "MANIFEST_INVALID");
  CheckError(env.reg.PutVersion("team/model", "1", std::string(kMaxManifestBytes + 1, ' ')).status(),
             core::Code::kResourceExhausted, "MANIFEST_TOO_LARGE");
  CheckError(env.reg.GetRepo("team/model").status(), core::Code::kNotFound, "REPO_UNKNOWN");
  auto repos = env.reg.ListRepos("", 10);
  REQUIRE(repos.ok());
  CHECK(repos->items.empty());
}

TEST_CASE("version names are immutable", "[registry]") {
  Env env;
  std::string first = env.Model({{"w.bin", "one"}});
  std::string second = env.Model({{"w.bin", "two"}});
  VersionInfo original = env.Push("team/model", "1.0", first);

  env.clock.Advance(kHour);
  auto again = env.reg.PutVersion("team/model", "1.0", first, {{"ignored", "x"}});
  REQUIRE(again.ok());
  CHECK(again->digest == original.digest);
  CHECK(again->created_micros == original.created_micros);
  CHECK(again->labels.empty());

  auto other = env.reg.PutVersion("team/model", "1.0", second);
  CheckError(other.status(), core::Code::kAlreadyExists, "TAG_IMMUTABLE");
  // A conflict is reported as such even when the new manifest's blobs are absent.
  Manifest absent = ParseManifest(second).value();
  absent.layers[0] = Env::Describe("never uploaded", "w.bin");
  CheckError(env.reg.PutVersion("team/model", "1.0", SerializeManifest(absent)).status(),
             core::Code::kAlreadyExists, "TAG_IMMUTABLE");
  CHECK(env.reg.Resolve("team/model", "1.0")->manifest_bytes == first);
  CHECK(env.reg.GetRepo("team/model")->version_count == 1);

  // The same manifest under a second name is a second version.
  env.Push("team/model", "1.0-copy", first);
  CHECK(env.reg.GetRepo("team/model")->version_count == 2);
}

TEST_CASE("versions and aliases share one namespace", "[registry]") {
  Env env;
  std::string manifest = env.Model({{"w.bin", "one"}});
  env.Push("team/model", "1.0", manifest);
  REQUIRE(env.reg.SetAlias("team/model", "production", "1.0").ok());

  CheckError(env.reg.PutVersion("team/model", "production", manifest).status(), core::Code::kAlreadyExists,
             "NAME_TAKEN");
  CheckError(env.reg.SetAlias("team/model", "1.0", "1.0").status(), core::Code::kAlreadyExists, "NAME_TAKEN");
  CheckError(env.reg.SetAlias("team/model", "staging", "2.0").status(), core::Code::kNotFound,
             "VERSION_UNKNOWN");
  CheckError(env.reg.SetAlias("team/model", "bad/alias", "1.0").status(), core::Code::kInvalidArgument,
             "TAG_INVALID");
  CheckError(env.reg.SetAlias("team/other", "staging", "1.0").status(), core::Code::kNotFound,
             "REPO_UNKNOWN");
  // The name is free again once the alias is gone.
  REQUIRE(env.reg.DeleteAlias("team/model", "production").ok());
  env.Push("team/model", "production", manifest);
}

TEST_CASE("aliases move, list, and follow other aliases to a version", "[registry]") {
  Env env;
  VersionInfo v1 = env.Push("team/model", "1", env.Model({{"w", "1"}}));
  VersionInfo v2 = env.Push("team/model", "2", env.Model({{"w", "2"}}));

  REQUIRE(env.reg.SetAlias("team/model", "staging", "1").ok());
  env.clock.Advance(kSecond);
  auto moved = env.reg.SetAlias("team/model", "staging", v2.digest.ToString());
  REQUIRE(moved.ok());
  CHECK(moved->version == "2");
  auto chained = env.reg.SetAlias("team/model", "production", "staging");
  REQUIRE(chained.ok());
  CHECK(chained->version == "2");
  CHECK(chained->digest == v2.digest);
  // Moving staging later does not move production.
  REQUIRE(env.reg.SetAlias("team/model", "staging", "1").ok());

  auto got = env.reg.GetAlias("team/model", "production");
  REQUIRE(got.ok());
  CHECK(got->version == "2");
  auto list = env.reg.ListAliases("team/model");
  REQUIRE(list.ok());
  REQUIRE(list->size() == 2);
  CHECK((*list)[0].name == "production");
  CHECK((*list)[0].version == "2");
  CHECK((*list)[1].name == "staging");
  CHECK((*list)[1].version == "1");
  CHECK((*list)[1].digest == v1.digest);

  CHECK(env.reg.Resolve("team/model", "1")->info.aliases == std::vector<std::string>{"staging"});
  CHECK(env.reg.Resolve("team/model", "2")->info.aliases == std::vector<std::string>{"production"});

  CheckError(env.reg.GetAlias("team/model", "nightly").status(), core::Code::kNotFound, "ALIAS_UNKNOWN");
  CheckError(env.reg.DeleteAlias("team/model", "nightly"), core::Code::kNotFound, "ALIAS_UNKNOWN");
  REQUIRE(env.reg.DeleteAlias("team/model", "staging").ok());
  CHECK(env.reg.ListAliases("team/model")->size() == 1);
  CheckError(env.reg.Resolve("team/model", "staging").status(), core::Code::kNotFound, "VERSION_UNKNOWN");
}

TEST_CASE("versions list newest first across pages", "[registry]") {
  Env env;
  // Pushed in this order; "b" and "c" share a timestamp and so list by name.
  std::vector<std::pair<std::string, int64_t>> pushes = {{"a", 1}, {"c", 2}, {"b", 0}, {"d", 1},
                                                         {"e", 0}, {"f", 3}, {"g", 1}};
  for (const auto& [name, advance] : pushes) {
    env.clock.Advance(advance * kSecond);
    env.Push("team/model", name, env.Model({{"w", name}}));
  }
  std::vector<std::string> expected = {"g", "f", "e", "d", "c", "b", "a"};

  for (size_t limit : {1, 2, 3, 7, 8, 1000}) {
    INFO("limit " << limit);
    std::vector<std::string> seen;
    std::string token;
    int pages = 0;
    do {
      auto page = env.reg.ListVersions("team/model", token, limit);
      REQUIRE(page.ok());
      REQUIRE(page->items.size() <= limit);
      REQUIRE(!page->items.empty());
      for (const auto& n : Names(page->items)) seen.push_back(n);
      token = page->next;
      REQUIRE(++pages <= 8);
    } while (!token.empty());
    CHECK(seen == expected);
    CHECK(pages == static_cast<int>((expected.size() + limit - 1) / limit));
  }

  // A version pushed between pages shows up on no page it would reorder.
  auto first = env.reg.ListVersions("team/model", "", 3);
  REQUIRE(first.ok());
  env.clock.Advance(kSecond);
  env.Push("team/model", "h", env.Model({{"w", "h"}}));
  auto rest = env.reg.ListVersions("team/model", first->next, 10);
  REQUIRE(rest.ok());
  CHECK(Names(rest->items) == std::vector<std::string>{"d", "c", "b", "a"});
  CHECK(rest->next.empty());

  auto page = env.reg.ListVersions("team/model", "", 2);
  REQUIRE(page.ok());
  CHECK(page->items[0].version == "h");
  CHECK(page->items[0].total_size == 1);

  CheckError(env.reg.ListVersions("team/model", "zz", 2).status(), core::Code::kInvalidArgument,
             "PAGE_TOKEN_INVALID");
  CheckError(env.reg.ListVersions("team/model", core::HexEncode("nonsense", 8), 2).status(),
             core::Code::kInvalidArgument, "PAGE_TOKEN_INVALID");
  CheckError(env.reg.ListVersions("team/model", "", 0).status(), core::Code::kInvalidArgument,
             "LIMIT_INVALID");
  CheckError(env.reg.ListVersions("team/model", "", 1001).status(), core::Code::kInvalidArgument,
             "LIMIT_INVALID");
  CheckError(env.reg.ListVersions("team/none", "", 10).status(), core::Code::kNotFound, "REPO_UNKNOWN");
}

TEST_CASE("repositories list by name across pages", "[registry]") {
  Env env;
  std::string manifest = env.Model({{"w", "w"}});
  std::map<std::string, int> versions = {{"b", 1}, {"a", 2}, {"a/b", 1}, {"a-b", 3}, {"c/d/e", 1}};
  for (const auto& [repo, n] : versions) {
    for (int i = 0; i < n; ++i) env.Push(repo, "v" + std::to_string(i), manifest);
  }
  std::vector<std::string> expected = {"a", "a-b", "a/b", "b", "c/d/e"};
  for (size_t limit : {1, 2, 5, 6}) {
    INFO("limit " << limit);
    std::vector<std::string> seen;
    std::string token;
    int pages = 0;
    do {
      auto page = env.reg.ListRepos(token, limit);
      REQUIRE(page.ok());
      REQUIRE(page->items.size() <= limit);
      for (const auto& r : page->items) {
        seen.push_back(r.name);
        CHECK(r.version_count == static_cast<uint64_t>(versions[r.name]));
      }
      token = page->next;
      REQUIRE(++pages <= 6);
    } while (!token.empty());
    CHECK(seen == expected);
  }
  CheckError(env.reg.ListRepos("not hex", 2).status(), core::Code::kInvalidArgument, "PAGE_TOKEN_INVALID");
  CheckError(env.reg.ListRepos("", 0).status(), core::Code::kInvalidArgument, "LIMIT_INVALID");
}

TEST_CASE("labels, residency and state are kept per repository and version", "[registry]") {
  Env env;
  std::string manifest = env.Model({{"w", "w"}});
  auto pushed = env.reg.PutVersion("team/model", "1.0", manifest, {{"git.commit", "abc123"}});
  REQUIRE(pushed.ok());
  CHECK(pushed->labels == std::map<std::string, std::string>{{"git.commit", "abc123"}});

  REQUIRE(env.reg.SetRepoMetadata("team/model", {{"owner", "radiology"}}, {"eu-west", "restricted"}).ok());
  auto repo = env.reg.GetRepo("team/model");
  REQUIRE(repo.ok());
  CHECK(repo->labels == std::map<std::string, std::string>{{"owner", "radiology"}});
  CHECK(repo->residency.region == "eu-west");
  CHECK(repo->residency.classification == "restricted");
  // Replaced, not merged.
  REQUIRE(env.reg.SetRepoMetadata("team/model", {{"tier", "gold"}}, {}).ok());
  repo = env.reg.GetRepo("team/model");
  CHECK(repo->labels == std::map<std::string, std::string>{{"tier", "gold"}});
  CHECK(repo->residency.region.empty());
  auto listed = env.reg.ListRepos("", 10);
  REQUIRE(listed.ok());
  CHECK(listed->items.at(0).labels.at("tier") == "gold");

  CheckError(env.reg.SetRepoMetadata("team/model", {{"Bad", "x"}}, {}), core::Code::kInvalidArgument,
             "LABEL_INVALID");
  CheckError(env.reg.SetRepoMetadata("team/model", {}, {"eu\nwest", ""}), core::Code::kInvalidArgument,
             "RESIDENCY_INVALID");
  CheckError(env.reg.SetRepoMetadata("team/model", {}, {"eu", std::string(1025, 'x')}),
             core::Code::kInvalidArgument, "RESIDENCY_INVALID");
  CheckError(env.reg.SetRepoMetadata("Team/none", {}, {}), core::Code::kInvalidArgument, "NAME_INVALID");

  // Residency may be set before the first push; the push keeps it.
  env.clock.Advance(kSecond);
  REQUIRE(env.reg.SetRepoMetadata("team/new", {}, {"eu-central", "secret"}).ok());
  auto fresh = env.reg.GetRepo("team/new");
  REQUIRE(fresh.ok());
  CHECK(fresh->version_count == 0);
  CHECK(fresh->created_micros == env.clock.NowMicros());
  env.clock.Advance(kSecond);
  env.Push("team/new", "1", manifest);
  fresh = env.reg.GetRepo("team/new");
  CHECK(fresh->residency.region == "eu-central");
  CHECK(fresh->created_micros == env.clock.NowMicros() - kSecond);
  CHECK(fresh->version_count == 1);

  REQUIRE(env.reg.SetVersionLabels("team/model", "1.0", {{"eval.auc", "0.93"}}).ok());
  REQUIRE(env.reg.SetVersionState("team/model", "1.0", VersionState::kQuarantined).ok());
  auto v = env.reg.Resolve("team/model", "1.0");
  REQUIRE(v.ok());
  CHECK(v->info.labels == std::map<std::string, std::string>{{"eval.auc", "0.93"}});
  CHECK(v->info.state == VersionState::kQuarantined);
  CHECK(env.reg.ListVersions("team/model", "", 10)->items.at(0).state == VersionState::kQuarantined);
  REQUIRE(env.reg.SetVersionState("team/model", "1.0", VersionState::kPending).ok());
  CHECK(env.reg.Resolve("team/model", "1.0")->info.state == VersionState::kPending);

  CheckError(env.reg.SetVersionLabels("team/model", "2.0", {}), core::Code::kNotFound, "VERSION_UNKNOWN");
  CheckError(env.reg.SetVersionState("team/model", "2.0", VersionState::kAvailable), core::Code::kNotFound,
             "VERSION_UNKNOWN");
  CheckError(env.reg.SetVersionLabels("team/model", "1.0", {{"k", "\x01"}}), core::Code::kInvalidArgument,
             "LABEL_INVALID");

  CHECK(VersionStateName(VersionState::kPending) == "pending");
  CHECK(VersionStateName(VersionState::kQuarantined) == "quarantined");
  CHECK(VersionStateName(VersionState::kAvailable) == "available");
}

TEST_CASE("every alias move and deletion is in the alias's history, newest first", "[registry]") {
  Env env;
  VersionInfo v1 = env.Push("team/model", "1", env.Model({{"w", "1"}}));
  VersionInfo v2 = env.Push("team/model", "2", env.Model({{"w", "2"}}));
  // A repository with no such alias has an empty history; an unknown one is an error.
  auto none = env.reg.AliasHistory("team/model", "production", 10);
  REQUIRE(none.ok());
  CHECK(none->empty());
  CheckError(env.reg.AliasHistory("team/other", "production", 10).status(), core::Code::kNotFound,
             "REPO_UNKNOWN");
  CheckError(env.reg.AliasHistory("team/model", "production", 0).status(), core::Code::kInvalidArgument,
             "LIMIT_INVALID");
  CheckError(env.reg.AliasHistory("team/model", "production", 1001).status(), core::Code::kInvalidArgument,
             "LIMIT_INVALID");

  core::Digest vsa = core::Sha256::Of("a vsa");
  AliasMove first;
  first.by = "gate";
  first.via = "promotion";
  first.job_id = "job-1";
  first.vsa = vsa;
  first.expect_current = std::optional<core::Digest>();
  REQUIRE(env.reg.MoveAlias("team/model", "production", "1", first).ok());
  env.clock.Advance(kSecond);
  // Compare-and-set: the alias is no longer unset.
  core::Status moved = env.reg.MoveAlias("team/model", "production", "2", first).status();
  CheckError(moved, core::Code::kAborted, "ALIAS_MOVED");
  CHECK(moved.message().find("'1'") != std::string::npos);
  CHECK(nlohmann::json::parse(moved.detail())["current_version"] == "1");
  // ... but a move that expects version 1 there goes through.
  AliasMove second = first;
  second.job_id = "job-2";
  second.expect_current = std::optional<core::Digest>(v1.digest);
  REQUIRE(env.reg.MoveAlias("team/model", "production", "2", second).ok());
  env.clock.Advance(kSecond);
  REQUIRE(env.reg.SetAlias("team/model", "production", "1").ok());  // an override, by the server itself
  env.clock.Advance(kSecond);
  AliasMove teleport;
  teleport.via = "teleport";
  CheckError(env.reg.MoveAlias("team/model", "production", "1", teleport).status(),
             core::Code::kInvalidArgument, "ALIAS_VIA_INVALID");
  REQUIRE(env.reg.DeleteAlias("team/model", "production").ok());
  // Another alias, and an alias whose name extends this one, keep their own histories.
  REQUIRE(env.reg.SetAlias("team/model", "production2", "2").ok());

  auto history = env.reg.AliasHistory("team/model", "production", 10);
  REQUIRE(history.ok());
  REQUIRE(history->size() == 4);
  const AliasEvent& del = (*history)[0];
  CHECK(del.via == "delete");
  CHECK(del.version.empty());
  CHECK(del.previous_version == "1");
  CHECK(del.previous_digest == v1.digest);
  CHECK(del.by == "sigild");
  const AliasEvent& over = (*history)[1];
  CHECK(over.via == "override");
  CHECK(over.version == "1");
  CHECK(over.previous_version == "2");
  CHECK_FALSE(over.vsa.has_value());
  const AliasEvent& promo = (*history)[2];
  CHECK(promo.via == "promotion");
  CHECK(promo.by == "gate");
  CHECK(promo.job_id == "job-2");
  CHECK(promo.vsa == vsa);
  CHECK(promo.version == "2");
  CHECK(promo.digest == v2.digest);
  CHECK(promo.previous_digest == v1.digest);
  const AliasEvent& oldest = (*history)[3];
  CHECK(oldest.job_id == "job-1");
  CHECK(oldest.previous_version.empty());
  CHECK_FALSE(oldest.previous_digest.has_value());
  CHECK(oldest.micros < promo.micros);
  CHECK(promo.micros < over.micros);
  auto limited = env.reg.AliasHistory("team/model", "production", 2);
  REQUIRE(limited.ok());
  REQUIRE(limited->size() == 2);
  CHECK((*limited)[1].via == "override");
  REQUIRE(env.reg.AliasHistory("team/model", "production2", 10)->size() == 1);

  // Deleting a version records the deletion of its aliases.
  REQUIRE(env.reg.DeleteVersion("team/model", "2").ok());
  auto after = env.reg.AliasHistory("team/model", "production2", 10);
  REQUIRE(after.ok());
  REQUIRE(after->size() == 2);
  CHECK((*after)[0].via == "delete");
  CHECK((*after)[0].previous_version == "2");
  // History keys are invisible to version listing.
  CHECK(env.reg.ListVersions("team/model", "", 10)->items.size() == 1);
  CHECK(env.reg.GetRepo("team/model")->version_count == 1);
}

TEST_CASE("deleting a version removes its aliases and digest lookup", "[registry]") {
  Env env;
  std::string shared = env.Model({{"w", "shared"}});
  std::string other = env.Model({{"w", "other"}});
  env.Push("team/model", "1.0", shared);
  env.Push("team/model", "1.0-again", shared);
  env.Push("team/model", "2.0", other);
  REQUIRE(env.reg.SetAlias("team/model", "production", "1.0").ok());
  REQUIRE(env.reg.SetAlias("team/model", "canary", "1.0").ok());
  REQUIRE(env.reg.SetAlias("team/model", "staging", "2.0").ok());
  std::string digest = core::Sha256::Of(shared).ToString();
  CHECK(env.reg.Resolve("team/model", digest)->info.version == "1.0");

  REQUIRE(env.reg.DeleteVersion("team/model", "1.0").ok());
  CheckError(env.reg.Resolve("team/model", "1.0").status(), core::Code::kNotFound, "VERSION_UNKNOWN");
  CheckError(env.reg.Resolve("team/model", "production").status(), core::Code::kNotFound, "VERSION_UNKNOWN");
  auto aliases = env.reg.ListAliases("team/model");
  REQUIRE(aliases.ok());
  REQUIRE(aliases->size() == 1);
  CHECK((*aliases)[0].name == "staging");
  // The digest still names the other version holding the same manifest.
  CHECK(env.reg.Resolve("team/model", digest)->info.version == "1.0-again");
  CHECK(env.reg.GetRepo("team/model")->version_count == 2);

  REQUIRE(env.reg.DeleteVersion("team/model", "1.0-again").ok());
  CheckError(env.reg.Resolve("team/model", digest).status(), core::Code::kNotFound, "VERSION_UNKNOWN");
  CheckError(env.reg.DeleteVersion("team/model", "1.0"), core::Code::kNotFound, "VERSION_UNKNOWN");
  CheckError(env.reg.DeleteVersion("team/model", "staging"), core::Code::kNotFound, "VERSION_UNKNOWN");
  CheckError(env.reg.DeleteVersion("team/none", "1.0"), core::Code::kNotFound, "REPO_UNKNOWN");
  CHECK(Names(env.reg.ListVersions("team/model", "", 10)->items) == std::vector<std::string>{"2.0"});

  // The name can be pushed again, with different content.
  env.Push("team/model", "1.0", other);
}

TEST_CASE("GC deletes old unreferenced blobs and keeps the rest", "[registry]") {
  Env env;
  std::string manifest = env.Model({{"a.bin", "layer-a"}, {"b.bin", "layer-b"}}, "{\"cfg\":1}");
  env.Push("team/model", "1.0", manifest);
  env.Upload("orphan-old", "");
  env.clock.Advance(2 * kHour);
  env.Upload("orphan-young", "");
  env.clock.Advance(kHour - 1);

  auto report = env.reg.CollectGarbage();
  REQUIRE(report.ok());
  CHECK(report->blobs_scanned == 6);  // config, two layers, manifest, two orphans
  CHECK(report->blobs_deleted == 1);
  CHECK(report->bytes_freed == std::string("orphan-old").size());
  CHECK(report->blobs_kept_young == 1);
  CHECK_FALSE(env.blobs.Has(core::Sha256::Of("orphan-old")));
  CHECK(env.blobs.Has(core::Sha256::Of("orphan-young")));
  for (const char* live : {"layer-a", "layer-b", "{\"cfg\":1}"}) CHECK(env.blobs.Has(core::Sha256::Of(live)));
  CHECK(env.blobs.Has(core::Sha256::Of(manifest)));
  CHECK(env.reg.Resolve("team/model", "1.0").ok());

  env.clock.Advance(1);
  report = env.reg.CollectGarbage();
  REQUIRE(report.ok());
  CHECK(report->blobs_deleted == 1);
  CHECK(report->blobs_kept_young == 0);
  CHECK(env.blobs.count() == 4);

  // Deleted version: everything it alone used goes after the grace period.
  REQUIRE(env.reg.DeleteVersion("team/model", "1.0").ok());
  report = env.reg.CollectGarbage();
  REQUIRE(report.ok());
  CHECK(report->blobs_deleted == 4);
  CHECK(report->bytes_freed == manifest.size() + 7 + 7 + 9);
  CHECK(env.blobs.count() == 0);
}

TEST_CASE("GC keeps blobs shared by two repositories until both let go", "[registry]") {
  Env env;
  std::string shared = env.Model({{"w.bin", "common weights"}});
  env.Push("team/a", "1", shared);
  env.Push("team/b", "7", shared);
  std::string own = env.Model({{"w.bin", "common weights"}, {"extra.bin", "only a"}});
  env.Push("team/a", "2", own);
  env.clock.Advance(2 * kHour);

  REQUIRE(env.reg.DeleteVersion("team/a", "1").ok());
  auto report = env.reg.CollectGarbage();
  REQUIRE(report.ok());
  CHECK(report->blobs_deleted == 0);
  CHECK(env.reg.Resolve("team/b", "7").ok());

  REQUIRE(env.reg.DeleteVersion("team/a", "2").ok());
  report = env.reg.CollectGarbage();
  REQUIRE(report.ok());
  CHECK(report->blobs_deleted == 2);  // a:2's manifest and "only a"
  CHECK(env.blobs.Has(core::Sha256::Of("common weights")));
  CHECK(env.blobs.Has(core::Sha256::Of(shared)));

  REQUIRE(env.reg.DeleteVersion("team/b", "7").ok());
  report = env.reg.CollectGarbage();
  REQUIRE(report.ok());
  CHECK(report->blobs_deleted == 3);  // manifest, config, weights
  CHECK(env.blobs.count() == 0);
}

TEST_CASE("GC keeps the subject of a referrer", "[registry]") {
  Env env;
  std::string model = env.Model({{"w.bin", "weights"}});
  VersionInfo v = env.Push("team/model", "1.0", model);

  Manifest sig;
  sig.artifact_type = "application/vnd.dev.sigstore.bundle.v0.3+json";
  sig.config = env.Upload("{}", "");
  sig.config.annotations.clear();
  sig.layers = {env.Upload("signature bundle", "bundle.json")};
  sig.subject = Descriptor{std::string(kOciManifestMediaType), v.digest, v.manifest_size, {}};
  env.Push("team/model-sigs", "sha256-" + v.digest.Hex(), SerializeManifest(sig));

  REQUIRE(env.reg.DeleteVersion("team/model", "1.0").ok());
  env.clock.Advance(2 * kHour);
  auto report = env.reg.CollectGarbage();
  REQUIRE(report.ok());
  CHECK(report->blobs_deleted == 1);  // only the weights
  CHECK(env.blobs.Has(v.digest));
  CHECK_FALSE(env.blobs.Has(core::Sha256::Of("weights")));
}

TEST_CASE("GC stops rather than sweep when a manifest cannot be read", "[registry]") {
  Env env;
  VersionInfo v = env.Push("team/model", "1.0", env.Model({{"w.bin", "weights"}}));
  env.Upload("orphan", "");
  env.clock.Advance(2 * kHour);
  REQUIRE(env.blobs.Delete(v.digest).ok());
  CheckError(env.reg.CollectGarbage().status(), core::Code::kDataLoss, "DATA_LOSS");
  CHECK(env.blobs.Has(core::Sha256::Of("weights")));
  CHECK(env.blobs.Has(core::Sha256::Of("orphan")));
  CheckError(env.reg.Resolve("team/model", "1.0").status(), core::Code::kDataLoss, "DATA_LOSS");
}

TEST_CASE("GC running alongside pushes never strands a version", "[registry]") {
  // No grace period: every blob not yet referenced is fair game at once, so
  // only the registry's locking keeps a checked push's blobs alive.
  Env env(/*grace=*/0);
  std::atomic<bool> stop{false};
  std::atomic<int> gc_runs{0};
  std::thread gc([&] {
    while (!stop) {
      auto r = env.reg.CollectGarbage();
      if (!r.ok()) FAIL_CHECK(r.status().ToString());
      ++gc_runs;
      // A short pause between sweeps: with no grace period a sweep that
      // never stops could starve a push between its upload and its manifest
      // on a loaded machine, which tests scheduling, not the locking.
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  });

  constexpr int kPushers = 2;
  constexpr int kVersions = 150;
  std::atomic<int> retries{0};
  std::vector<std::thread> pushers;
  std::vector<std::vector<std::string>> pushed(kPushers);
  for (int t = 0; t < kPushers; ++t) {
    pushers.emplace_back([&, t] {
      for (int i = 0; i < kVersions; ++i) {
        std::string tag = std::to_string(t) + "." + std::to_string(i);
        Manifest m;
        m.artifact_type = std::string(kModelArtifactType);
        std::string config = "{\"n\":\"" + tag + "\"}";
        m.config = Env::Describe(config, "");
        m.config.annotations.clear();
        std::map<core::Digest, std::string> contents = {{m.config.digest, config}};
        for (const std::string& file :
             {"own-" + tag, std::string("shared-by-all"), "every-tenth-" + std::to_string(i % 10)}) {
          m.layers.push_back(Env::Describe(file, "f/" + std::to_string(m.layers.size())));
          contents[m.layers.back().digest] = file;
        }
        std::string bytes = SerializeManifest(m);
        bool done = false;
        for (int attempt = 0; attempt < 1000 && !done; ++attempt) {
          // Upload, then push; a GC in between may take the blobs, and the
          // push then names them as missing: upload again, as a client would.
          for (const auto& [digest, content] : contents) {
            if (!env.blobs.Put(digest, content).ok()) FAIL_CHECK("put failed");
          }
          auto r = env.reg.PutVersion("team/model-" + std::to_string(t), tag, bytes);
          if (r.ok()) {
            done = true;
          } else if (r.status().reason() == "BLOB_UNKNOWN") {
            ++retries;
          } else {
            FAIL_CHECK(r.status().ToString());
            return;
          }
        }
        if (!done) FAIL_CHECK("push " << tag << " never got through");
        pushed[t].push_back(tag);
        if (i % 7 == 3) {
          // Some deletions so the sweeper also has referenced-then-freed blobs.
          if (!env.reg.DeleteVersion("team/model-" + std::to_string(t), pushed[t].front()).ok()) {
            FAIL_CHECK("delete failed");
          }
          pushed[t].erase(pushed[t].begin());
        }
      }
    });
  }
  for (auto& p : pushers) p.join();
  stop = true;
  gc.join();
  INFO("gc runs " << gc_runs << ", push retries " << retries);
  CHECK(gc_runs > 0);

  for (int t = 0; t < kPushers; ++t) {
    std::string repo = "team/model-" + std::to_string(t);
    CHECK(env.reg.GetRepo(repo)->version_count == pushed[t].size());
    for (const std::string& tag : pushed[t]) {
      auto v = env.reg.Resolve(repo, tag);
      REQUIRE(v.ok());
      CHECK(env.blobs.Has(v->info.digest));
      CHECK(env.blobs.Has(v->manifest.config.digest));
      for (const auto& layer : v->manifest.layers) CHECK(env.blobs.Has(layer.digest));
    }
  }
  // Once everything is settled, a final GC keeps every live blob.
  REQUIRE(env.reg.CollectGarbage().ok());
  for (int t = 0; t < kPushers; ++t) {
    for (const std::string& tag : pushed[t]) {
      auto v = env.reg.Resolve("team/model-" + std::to_string(t), tag);
      REQUIRE(v.ok());
      for (const auto& layer : v->manifest.layers) CHECK(env.blobs.Has(layer.digest));
    }
  }
}

TEST_CASE("the registry works over the filesystem and RocksDB stores and survives a reopen", "[registry]") {
  testing::TempDir dir;
  auto blobs = storage::OpenFsBlobStore(dir.Sub("blobs"));
  REQUIRE(blobs.ok());
  std::string manifest;
  core::Digest orphan = core::Sha256::Of("orphan");
  {
    auto meta = storage::OpenRocksMetaStore(dir.Sub("meta"));
    REQUIRE(meta.ok());
    // Real clock: the filesystem stamps blobs with real time. No grace, so
    // the orphan is collectable at once.
    Registry reg({blobs->get(), meta->get(), core::Clock::Real(), 0});
    Manifest m;
    m.artifact_type = std::string(kModelArtifactType);
    for (const std::string content : {"{}", "weights", "vocab"}) {
      REQUIRE((*blobs)->Put(core::Sha256::Of(content), content).ok());
    }
    m.config = Env::Describe("{}", "");
    m.config.annotations.clear();
    m.layers = {Env::Describe("weights", "model.bin"), Env::Describe("vocab", "tok/vocab.json")};
    manifest = SerializeManifest(m);
    REQUIRE(reg.PutVersion("health/triage-llm", "1.0", manifest, {{"team", "icu"}}).ok());
    REQUIRE(reg.SetAlias("health/triage-llm", "production", "1.0").ok());
    REQUIRE((*blobs)->Put(orphan, "orphan").ok());
    auto report = reg.CollectGarbage();
    REQUIRE(report.ok());
    CHECK(report->blobs_scanned == 5);
    CHECK(report->blobs_deleted == 1);
    CHECK((*blobs)->Stat(orphan).status().code() == core::Code::kNotFound);
  }
  auto meta = storage::OpenRocksMetaStore(dir.Sub("meta"));
  REQUIRE(meta.ok());
  Registry reg({blobs->get(), meta->get(), core::Clock::Real(), 0});
  auto v = reg.Resolve("health/triage-llm", "production");
  REQUIRE(v.ok());
  CHECK(v->manifest_bytes == manifest);
  CHECK(v->info.version == "1.0");
  CHECK(v->info.labels.at("team") == "icu");
  CHECK(v->info.aliases == std::vector<std::string>{"production"});
  CHECK(reg.ListRepos("", 10)->items.at(0).version_count == 1);

  REQUIRE(reg.DeleteVersion("health/triage-llm", "1.0").ok());
  auto report = reg.CollectGarbage();
  REQUIRE(report.ok());
  CHECK(report->blobs_deleted == 4);
  size_t left = 0;
  REQUIRE((*blobs)->ForEach([&](const storage::BlobInfo&) { return ++left, true; }).ok());
  CHECK(left == 0);
}

}  // namespace
}  // namespace sigil::registry
