#include "registry/bundles.h"
#include "registry/promotions.h"

#include <catch2/catch.hpp>
#include <cctype>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "attest/slsa.h"
#include "attest/statement.h"
#include "core/clock.h"
#include "core/fs.h"
#include "core/json.h"
#include "signing/dsse.h"
#include "storage/fs_blob_store.h"
#include "tests/registry/model_fixture.h"
#include "tests/support/temp_dir.h"

namespace sigil::registry {
namespace {

using core::Json;

signing::PrivateKey Key(signing::Algorithm a = signing::Algorithm::kEcdsaP256Sha256) {
  auto k = signing::PrivateKey::Generate(a);
  REQUIRE(k.ok());
  return *k;
}

// One site: its own stores, log (origin and key), server key, trust store,
// policies and bundles. Blobs live on disk so a test can damage one.
struct Site {
  testing::TempDir dir;
  core::ManualClock clock;
  std::unique_ptr<storage::BlobStore> blobs;
  std::unique_ptr<storage::MetaStore> meta = storage::NewMemoryMetaStore();
  std::unique_ptr<Registry> reg;
  signing::PrivateKey server_key = Key();
  signing::PrivateKey log_key = Key(signing::Algorithm::kEd25519);
  std::unique_ptr<attest::TransparencyLog> log;
  std::unique_ptr<Attestations> att;
  std::unique_ptr<PolicyStore> policies;
  std::unique_ptr<Bundles> bundles;
  std::string origin;

  Site(const std::string& origin_name, const std::string& site, const std::string& region,
       std::vector<attest::NoteVerifier> peers = {})
      : origin(origin_name) {
    auto b = storage::OpenFsBlobStore(dir.Sub("blobs"));
    REQUIRE(b.ok());
    blobs = std::move(b).value();
    RegistryOptions ro;
    ro.blobs = blobs.get();
    ro.meta = meta.get();
    ro.clock = &clock;
    reg = std::make_unique<Registry>(ro);
    attest::TransparencyLogOptions lo;
    lo.meta = meta.get();
    lo.origin = origin;
    lo.key = log_key;
    auto l = attest::TransparencyLog::Open(lo);
    REQUIRE(l.ok());
    log = std::move(l).value();
    AttestationOptions ao;
    ao.registry = reg.get();
    ao.blobs = blobs.get();
    ao.meta = meta.get();
    ao.clock = &clock;
    ao.log = log.get();
    ao.server_key = server_key;
    auto a = Attestations::Open(ao);
    REQUIRE(a.ok());
    att = std::move(a).value();
    PolicyStoreOptions po;
    po.meta = meta.get();
    po.clock = &clock;
    policies = std::make_unique<PolicyStore>(po);
    BundlesOptions bo;
    bo.registry = reg.get();
    bo.blobs = blobs.get();
    bo.meta = meta.get();
    bo.attestations = att.get();
    bo.log = log.get();
    bo.policies = policies.get();
    bo.clock = &clock;
    bo.origin = origin;
    bo.site = site;
    bo.region = region;
    bo.peer_logs = std::move(peers);
    bundles = std::make_unique<Bundles>(std::move(bo));
  }

  attest::NoteVerifier LogVerifier() const {
    auto v = attest::ParseNoteVerifierKey(log->verifier_key());
    REQUIRE(v.ok());
    return *v;
  }
  void Trust(const signing::PublicKey& key, const std::string& name) {
    signing::TrustedKey t{key, name, {"*"}, {"**"}, {}, std::nullopt};
    REQUIRE(att->AddTrustedKey(t).ok());
  }
  void Policy(const std::string& doc) {
    auto r = policies->Put(doc);
    INFO(r.status().ToString());
    REQUIRE(r.ok());
  }
  size_t ReferrerCount() {
    size_t n = 0;
    REQUIRE(meta->Scan("referrers", "", [&](std::string_view, std::string_view) {
                   ++n;
                   return true;
                 }).ok());
    return n;
  }
  size_t VersionCount() {
    auto repos = reg->ListRepos("", 1000);
    REQUIRE(repos.ok());
    size_t n = 0;
    for (const RepoInfo& r : repos->items) n += r.version_count;
    return n;
  }
  size_t AliasCount(const std::string& repo) {
    auto a = reg->ListAliases(repo);
    return a.ok() ? a->size() : 0;
  }
};

// A DSSE in-toto statement about digest, signed by key.
std::string Statement(const core::Digest& digest, const std::string& predicate_type, const std::string& predicate,
                      const signing::PrivateKey& key) {
  attest::Statement s;
  attest::Subject subject;
  subject.name = "model";
  subject.digest["sha256"] = digest.Hex();
  s.subjects.push_back(subject);
  s.predicate_type = predicate_type;
  s.predicate_json = predicate;
  auto env = attest::SignStatement(s, {key});
  REQUIRE(env.ok());
  return signing::SerializeEnvelope(*env);
}

std::string VsaDocument(const core::Digest& digest, const std::string& stage, const std::string& result,
                        const signing::PrivateKey& key) {
  attest::Vsa vsa;
  vsa.verifier_id = "https://sigil.dev/verifier";
  vsa.time_verified = 1'700'000'000'000'000;
  vsa.resource_uri = "sigil://site-a/health/x@" + digest.ToString();
  vsa.policy.uri = "sigil://site-a/policies/gate?version=1";
  vsa.verification_result = result;
  std::string level = stage;
  for (char& c : level) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  vsa.verified_levels = {"SIGIL_STAGE_" + level};
  auto predicate = attest::BuildVsa(vsa);
  INFO(predicate.status().ToString());
  REQUIRE(predicate.ok());
  return Statement(digest, std::string(attest::kSlsaVsaV1), *predicate, key);
}

// Copies every blob the plan carries from one site to the other, as the
// client does with a bundle file.
void Carry(Site& from, Site& to, const Json& plan) {
  for (const Json& b : plan["blobs"]) {
    auto d = core::Digest::Parse(b["digest"].get<std::string>());
    REQUIRE(d.ok());
    auto reader = from.blobs->Open(*d);
    REQUIRE(reader.ok());
    std::string bytes((*reader)->size(), '\0');
    auto n = (*reader)->ReadAt(0, bytes.data(), bytes.size());
    REQUIRE(n.ok());
    REQUIRE(to.blobs->Put(*d, bytes).ok());
  }
}

// Two sites: A (eu-health-1 in eu-west) exports health/x, whose "prod"
// alias a release key's PASSED VSA moved; B (eu-health-2) trusts A's
// server key and the release key and accepts A's log.
struct TwoSites {
  Site a{"sigil/site-a", "eu-health-1", "eu-west"};
  Site b{"sigil/site-b", "eu-health-2", "eu-west", {a.LogVerifier()}};
  signing::PrivateKey release = Key();
  VersionInfo v1;
  core::Digest vsa;

  TwoSites() {
    a.Trust(release.public_key(), "release");
    b.Trust(release.public_key(), "release");
    b.Trust(a.server_key.public_key(), "site-a");
    v1 = fixtures::PushModel(*a.reg, *a.blobs, "health/x", "v1",
                             {{"model.safetensors", std::string(500, 'w')}, {"config.json", "{\"a\":1}"}});
    REQUIRE(a.att->Sign("health/x", "v1").ok());
    std::string doc = VsaDocument(v1.digest, "prod", "PASSED", release);
    auto added = a.att->Add("health/x", "v1", doc);
    INFO(added.status().ToString());
    REQUIRE(added.ok());
    vsa = added->record.content_digest;
    AliasMove move;
    move.by = "test";
    move.via = "promotion";
    move.vsa = vsa;
    REQUIRE(a.reg->MoveAlias("health/x", "prod", "v1", move).ok());
  }

  Json Export(std::vector<std::string> refs = {"health/x:prod"}, std::vector<core::Digest> since = {}) {
    ExportRequest r;
    r.refs = std::move(refs);
    r.to_region = "eu-west";
    r.since = std::move(since);
    auto plan = a.bundles->Export(r);
    INFO(plan.status().ToString());
    REQUIRE(plan.ok());
    return *plan;
  }

  void RequireNothingImported() {
    CHECK(b.VersionCount() == 0);
    CHECK(b.ReferrerCount() == 0);
    CHECK(b.AliasCount("health/x") == 0);
    CHECK(b.log->Size() == 0);
  }
};

TEST_CASE("Bundles: export then import round trip, and again changes nothing") {
  TwoSites s;
  Json plan = s.Export();
  REQUIRE(plan["versions"].size() == 1);
  CHECK(plan["versions"][0]["version"] == "v1");
  CHECK(plan["attestations"].size() == 2);
  REQUIRE(plan["aliases"].size() == 1);
  CHECK(plan["aliases"][0]["vsa"] == s.vsa.ToString());
  CHECK(plan["origin"] == "sigil/site-a");
  CHECK(plan["blobs"].size() == 6);  // manifest, config, 2 layers, 2 attestations

  Carry(s.a, s.b, plan);
  auto summary = s.b.bundles->Import(core::DumpJson(plan));
  INFO(summary.status().ToString());
  REQUIRE(summary.ok());
  CHECK(summary->versions_added == 1);
  CHECK(summary->attestations_added == 2);
  CHECK(summary->aliases_moved == 1);
  CHECK(summary->changed);
  REQUIRE(summary->added.size() == 1);

  auto prod = s.b.reg->Resolve("health/x", "prod");
  REQUIRE(prod.ok());
  CHECK(prod->info.digest == s.v1.digest);
  CHECK(prod->info.version == "v1");
  auto listed = s.b.att->List("health/x", "v1", "");
  REQUIRE(listed.ok());
  CHECK(listed->size() == 2);
  for (const AttestationRecord& r : *listed) CHECK(r.status == "verified");
  CHECK(s.b.log->Size() == 2);
  auto history = s.b.reg->AliasHistory("health/x", "prod", 10);
  REQUIRE(history.ok());
  REQUIRE(history->size() == 1);
  CHECK((*history)[0].via == "import");
  REQUIRE((*history)[0].vsa.has_value());
  CHECK(*(*history)[0].vsa == s.vsa);
  // Served with proofs against the importing site's own checkpoint.
  auto evidence = s.b.att->GetEvidence("health/x", "prod");
  REQUIRE(evidence.ok());
  CHECK(evidence->checkpoint.checkpoint.origin == "sigil/site-b");

  auto again = s.b.bundles->Import(core::DumpJson(plan));
  REQUIRE(again.ok());
  CHECK_FALSE(again->changed);
  CHECK(again->versions_added == 0);
  CHECK(again->attestations_added == 0);
  CHECK(again->aliases_moved == 0);
  CHECK(s.b.log->Size() == 2);
  auto history2 = s.b.reg->AliasHistory("health/x", "prod", 10);
  REQUIRE(history2.ok());
  CHECK(history2->size() == 1);
}

// What a crash between the write steps leaves (the version stored, its
// attestations and alias not yet) is completed by importing again.
TEST_CASE("Bundles: importing again completes a partly written import") {
  TwoSites s;
  Json plan = s.Export();
  Carry(s.a, s.b, plan);
  auto manifest = s.a.reg->Resolve("health/x", "v1");
  REQUIRE(manifest.ok());
  REQUIRE(s.b.reg->PutVersion("health/x", "v1", manifest->manifest_bytes).ok());
  auto summary = s.b.bundles->Import(core::DumpJson(plan));
  INFO(summary.status().ToString());
  REQUIRE(summary.ok());
  CHECK(summary->versions_added == 0);
  CHECK(summary->attestations_added == 2);
  CHECK(summary->aliases_moved == 1);
  CHECK(summary->changed);
  CHECK(s.b.reg->Resolve("health/x", "prod").ok());
}

// A kill -9 after the version was written: the import's record is still
// there, and Recover (sigild's start) completes it and clears the record.
TEST_CASE("Bundles: Recover completes an import a crash cut short") {
  TwoSites s;
  Json plan = s.Export();
  Carry(s.a, s.b, plan);
  const std::string text = core::DumpJson(plan);
  const std::string record = std::string("import\0", 7) + core::Sha256::Of(text).ToString();
  REQUIRE(s.b.meta->Put("meta", record, text).ok());
  auto manifest = s.a.reg->Resolve("health/x", "v1");
  REQUIRE(manifest.ok());
  REQUIRE(s.b.reg->PutVersion("health/x", "v1", manifest->manifest_bytes).ok());
  CHECK(s.b.ReferrerCount() == 0);

  auto recovered = s.b.bundles->Recover();
  INFO(recovered.status().ToString());
  REQUIRE(recovered.ok());
  CHECK(recovered->attestations_added == 2);
  CHECK(recovered->aliases_moved == 1);
  CHECK(s.b.reg->Resolve("health/x", "prod").ok());
  CHECK(s.b.meta->Get("meta", record).status().code() == core::Code::kNotFound);
  // Nothing left to do at the next start; a finished import leaves no record.
  auto again = s.b.bundles->Recover();
  REQUIRE(again.ok());
  CHECK_FALSE(again->changed);
  auto imported = s.b.bundles->Import(text);
  REQUIRE(imported.ok());
  size_t records = 0;
  REQUIRE(s.b.meta->Scan("meta", std::string("import\0", 7), [&](std::string_view, std::string_view) {
    ++records;
    return true;
  }).ok());
  CHECK(records == 0);
}

TEST_CASE("Bundles: a version name that holds another manifest here refuses the bundle") {
  TwoSites s;
  Json plan = s.Export();
  Carry(s.a, s.b, plan);
  fixtures::PushModel(*s.b.reg, *s.b.blobs, "health/x", "v1", {{"other.bin", "other"}});
  auto r = s.b.bundles->Import(core::DumpJson(plan));
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().reason() == "TAG_IMMUTABLE");
  CHECK(s.b.ReferrerCount() == 0);
  CHECK(s.b.AliasCount("health/x") == 0);
  CHECK(s.b.log->Size() == 0);
}

// An alias a real promotion moved: the server's own VSA travels with it.
TEST_CASE("Bundles: a promoted alias travels with the exporting server's VSA") {
  TwoSites s;
  s.a.Policy(R"({"name": "gate", "repositories": ["health/*"], "stages": ["staging"]})");
  PromotionsOptions po;
  po.sources.registry = s.a.reg.get();
  po.sources.blobs = s.a.blobs.get();
  po.sources.attestations = s.a.att.get();
  po.sources.clock = &s.a.clock;
  po.meta = s.a.meta.get();
  po.policies = s.a.policies.get();
  po.origin = s.a.origin;
  po.server_key = s.a.server_key;
  auto promotions = Promotions::Start(std::move(po));
  INFO(promotions.status().ToString());
  REQUIRE(promotions.ok());
  auto job = (*promotions)->Submit("health/x", "v1", "staging");
  INFO(job.status().ToString());
  REQUIRE(job.ok());
  (*promotions)->WaitIdle();
  auto history = s.a.reg->AliasHistory("health/x", "staging", 1);
  REQUIRE(history.ok());
  REQUIRE(history->size() == 1);
  REQUIRE((*history)[0].vsa.has_value());

  Json plan = s.Export({"health/x:staging"});
  REQUIRE(plan["aliases"].size() == 1);
  CHECK(plan["aliases"][0]["vsa"] == (*history)[0].vsa->ToString());
  Carry(s.a, s.b, plan);
  auto summary = s.b.bundles->Import(core::DumpJson(plan));
  INFO(summary.status().ToString());
  REQUIRE(summary.ok());
  CHECK(summary->aliases_moved == 1);
  auto imported = s.b.reg->AliasHistory("health/x", "staging", 1);
  REQUIRE(imported.ok());
  REQUIRE(imported->size() == 1);
  CHECK((*imported)[0].via == "import");
  CHECK((*imported)[0].vsa == (*history)[0].vsa);
}

TEST_CASE("Bundles: an alias not moved by a VSA is exported as its version only") {
  TwoSites s;
  REQUIRE(s.a.reg->SetAlias("health/x", "latest", "v1").ok());
  Json plan = s.Export({"health/x:latest"});
  CHECK(plan["aliases"].empty());
  CHECK(plan["versions"].size() == 1);
  REQUIRE(plan.contains("notes"));
  CHECK(plan["notes"][0].get<std::string>().find("latest") != std::string::npos);
}

TEST_CASE("Bundles: an incremental export omits the blobs the other side has") {
  TwoSites s;
  Json first = s.Export();
  Carry(s.a, s.b, first);
  REQUIRE(s.b.bundles->Import(core::DumpJson(first)).ok());

  fixtures::PushModel(*s.a.reg, *s.a.blobs, "health/x", "v2",
                      {{"model.safetensors", std::string(500, 'w')}, {"config.json", "{\"a\":2}"}});
  std::vector<core::Digest> since;
  for (const Json& b : first["blobs"]) since.push_back(*core::Digest::Parse(b["digest"].get<std::string>()));
  Json second = s.Export({"health/x:v2"}, since);
  // The weights and the empty config are shared; the new config.json and
  // manifest are carried.
  CHECK(second["omitted"].size() == 2);
  CHECK(second["blobs"].size() == 2);
  Carry(s.a, s.b, second);
  auto summary = s.b.bundles->Import(core::DumpJson(second));
  INFO(summary.status().ToString());
  REQUIRE(summary.ok());
  CHECK(summary->versions_added == 1);
  CHECK(s.b.reg->Resolve("health/x", "v2").ok());
}

TEST_CASE("Bundles: export is refused where residency forbids the destination") {
  TwoSites s;
  s.a.Policy(R"({"name": "eu-only", "repositories": ["health/*"], "residency": {"export": ["eu-*"]}})");
  ExportRequest r;
  r.refs = {"health/x:v1"};
  r.to_region = "us-east";
  auto plan = s.a.bundles->Export(r);
  REQUIRE_FALSE(plan.ok());
  CHECK(plan.status().code() == core::Code::kPermissionDenied);
  CHECK(plan.status().reason() == "RESIDENCY_DENIED");
  r.to_region = "eu-west";
  CHECK(s.a.bundles->Export(r).ok());
}

TEST_CASE("Bundles: import is refused where the receiving site may not store the repository") {
  TwoSites s;
  s.b.Policy(R"({"name": "us-only", "repositories": ["health/*"], "residency": {"store": ["us-*"]}})");
  Json plan = s.Export();
  Carry(s.a, s.b, plan);
  auto r = s.b.bundles->Import(core::DumpJson(plan));
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().reason() == "RESIDENCY_DENIED");
  s.RequireNothingImported();
}

TEST_CASE("Bundles: malformed requests and plans") {
  TwoSites s;
  ExportRequest r;
  CHECK(s.a.bundles->Export(r).status().reason() == "BUNDLE_INVALID");
  r.refs = {"health/x"};
  r.to_region = "eu-west";
  CHECK(s.a.bundles->Export(r).status().reason() == "BUNDLE_INVALID");
  r.refs = {"health/x:nope"};
  CHECK(s.a.bundles->Export(r).status().code() == core::Code::kNotFound);
  for (const char* text : {"", "[]", "{\"schema\":2}", "{\"schema\":1}", "not json",
                           "{\"schema\":1,\"origin\":\"o\",\"checkpoint\":\"c\",\"blobs\":{}}"}) {
    auto i = s.b.bundles->Import(text);
    REQUIRE_FALSE(i.ok());
    CHECK(i.status().reason() == "BUNDLE_INVALID");
  }
  s.RequireNothingImported();
}

// Each tampering is refused with its reason, and nothing is imported.
TEST_CASE("Bundles: a tampered bundle imports nothing") {
  TwoSites s;
  Json plan = s.Export();
  Carry(s.a, s.b, plan);
  auto refused = [&](const Json& p, const std::string& reason) {
    auto r = s.b.bundles->Import(core::DumpJson(p));
    INFO(r.status().ToString());
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().reason() == reason);
    s.RequireNothingImported();
  };
  auto index_of_type = [&](const std::string& type) {
    for (size_t i = 0; i < plan["attestations"].size(); ++i) {
      if (plan["attestations"][i]["predicate_type"] == type) return i;
    }
    FAIL("no attestation of type " << type);
    return size_t{0};
  };

  SECTION("a blob the receiving side lacks") {
    Json p = plan;
    p["blobs"].push_back({{"digest", core::Sha256::Of("absent").ToString()}, {"size", 6}});
    refused(p, "BLOB_UNKNOWN");
  }
  SECTION("a blob's bytes") {
    // The manifest's file on disk is damaged after upload.
    std::string hex = s.v1.digest.Hex();
    std::string path = s.b.dir.Sub("blobs") + "/blobs/sha256/" + hex.substr(0, 2) + "/" + hex;
    auto bytes = core::ReadFile(path);
    REQUIRE(bytes.ok());
    std::string damaged = *bytes;
    damaged[damaged.size() / 2] ^= 1;
    REQUIRE(core::WriteFileAtomic(path, damaged).ok());
    refused(plan, "DIGEST_MISMATCH");
  }
  SECTION("a manifest") {
    // Another manifest under the version's name: it references a blob the
    // bundle does not carry for it.
    auto m = ParseManifest(s.a.reg->Resolve("health/x", "v1")->manifest_bytes);
    REQUIRE(m.ok());
    m->layers.push_back(fixtures::UploadLayer(*s.b.blobs, "extra", "extra.bin"));
    std::string bytes = SerializeManifest(*m);
    core::Digest d = core::Sha256::Of(bytes);
    REQUIRE(s.b.blobs->Put(d, bytes).ok());
    Json p = plan;
    p["versions"][0]["digest"] = d.ToString();
    p["versions"][0]["blobs"][0] = d.ToString();
    p["blobs"].push_back({{"digest", d.ToString()}, {"size", bytes.size()}});
    refused(p, "BUNDLE_INVALID");
  }
  SECTION("an attestation document's signature") {
    size_t i = index_of_type(std::string(attest::kSlsaVsaV1));
    auto doc = core::ParseJson(std::string(s.a.att->List("health/x", "v1", attest::kSlsaVsaV1)->at(0).content));
    REQUIRE(doc.ok());
    std::string sig = (*doc)["signatures"][0]["sig"];
    sig[10] = sig[10] == 'A' ? 'B' : 'A';
    (*doc)["signatures"][0]["sig"] = sig;
    std::string bytes = core::DumpJson(*doc);
    core::Digest d = core::Sha256::Of(bytes);
    REQUIRE(s.b.blobs->Put(d, bytes).ok());
    Json p = plan;
    p["attestations"][i]["content_digest"] = d.ToString();
    p["blobs"].push_back({{"digest", d.ToString()}, {"size", bytes.size()}});
    // The log leaf names the original document.
    refused(p, "PROOF_INVALID");
  }
  SECTION("an attestation by a key the receiving side does not trust") {
    signing::PrivateKey ci = Key();
    s.a.Trust(ci.public_key(), "ci");
    REQUIRE(s.a.att->Add("health/x", "v1",
                         Statement(s.v1.digest, "https://slsa.dev/provenance/v1", "{}", ci))
                .ok());
    Json p = s.Export();
    Carry(s.a, s.b, p);
    refused(p, "KEY_UNTRUSTED");
  }
  SECTION("a log leaf") {
    Json p = plan;
    std::string leaf = p["attestations"][0]["leaf"];
    leaf.replace(leaf.find("\"time\":\"") + 8, 4, "1999");
    p["attestations"][0]["leaf"] = leaf;
    refused(p, "PROOF_INVALID");
  }
  SECTION("a log index") {
    Json p = plan;
    p["attestations"][0]["log_index"] = 1 - p["attestations"][0]["log_index"].get<uint64_t>();
    refused(p, "PROOF_INVALID");
  }
  SECTION("an inclusion proof") {
    Json p = plan;
    REQUIRE_FALSE(p["attestations"][0]["inclusion"].empty());
    std::string node = p["attestations"][0]["inclusion"][0];
    node[0] = node[0] == '0' ? '1' : '0';
    p["attestations"][0]["inclusion"][0] = node;
    refused(p, "PROOF_INVALID");
  }
  SECTION("the checkpoint's signature") {
    Json p = plan;
    std::string note = p["checkpoint"];
    size_t sig = note.rfind(' ') + 10;
    note[sig] = note[sig] == 'A' ? 'B' : 'A';
    p["checkpoint"] = note;
    refused(p, "CHECKPOINT_UNTRUSTED");
  }
  SECTION("a checkpoint of an unknown log") {
    Site c{"sigil/site-c", "eu-health-3", "eu-west"};
    attest::Checkpoint cp;
    auto parsed = attest::VerifyCheckpoint(plan["checkpoint"].get<std::string>(), "sigil/site-a",
                                           {s.a.LogVerifier()});
    REQUIRE(parsed.ok());
    cp = *parsed;
    cp.origin = "sigil/site-c";
    auto note = attest::SignCheckpoint(cp, "sigil/site-c", c.log_key);
    REQUIRE(note.ok());
    Json p = plan;
    p["checkpoint"] = *note;
    p["origin"] = "sigil/site-c";
    refused(p, "CHECKPOINT_UNTRUSTED");
  }
  SECTION("an alias whose VSA is another attestation") {
    Json p = plan;
    size_t i = index_of_type("https://model_signing/signature/v1.0");
    p["aliases"][0]["vsa"] = p["attestations"][i]["content_digest"];
    refused(p, "VSA_MISSING");
  }
  SECTION("an alias whose VSA did not pass") {
    std::string failed = VsaDocument(s.v1.digest, "prod", "FAILED", s.release);
    auto added = s.a.att->Add("health/x", "v1", failed);
    REQUIRE(added.ok());
    Json p = s.Export();
    Carry(s.a, s.b, p);
    p["aliases"][0]["vsa"] = added->record.content_digest.ToString();
    refused(p, "VSA_MISSING");
  }
  SECTION("an alias whose VSA is for another stage") {
    Json p = plan;
    p["aliases"][0]["alias"] = "staging";
    refused(p, "VSA_MISSING");
  }
}

}  // namespace
}  // namespace sigil::registry
