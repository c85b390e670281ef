// Evidence verification against a log built here (attest::MemoryTree,
// attest::SignCheckpoint) and envelopes signed here: a good bundle passes,
// and each kind of damage fails naming its check.
#include "cli/verify.h"

#include <catch2/catch.hpp>
#include <functional>
#include <nlohmann/json.hpp>

#include "attest/model_signing.h"
#include "attest/statement.h"
#include "cli/push.h"
#include "cli/sign_command.h"
#include "core/digest.h"
#include "core/fs.h"
#include "core/json.h"
#include "registry/manifest.h"
#include "signing/base64.h"
#include "signing/dsse.h"
#include "tests/support/temp_dir.h"

namespace sigil::cli {
namespace {

using nlohmann::json;

constexpr char kRepo[] = "health/triage";
constexpr char kOrigin[] = "sigil/test";
constexpr int64_t kNow = 1'800'000'000'000'000;

signing::PrivateKey Generate(signing::Algorithm a) {
  auto k = signing::PrivateKey::Generate(a);
  REQUIRE(k.ok());
  return *k;
}

std::string B64(const attest::MerkleHash& h) { return signing::Base64Encode(attest::HashBytes(h)); }

struct Fixture {
  testing::TempDir tmp;
  std::string dir = tmp.Sub("model");
  signing::PrivateKey attester = Generate(signing::Algorithm::kEcdsaP256Sha256);
  signing::PrivateKey log_key = Generate(signing::Algorithm::kEd25519);
  std::string manifest_bytes;
  core::Digest version;
  TrustedKeys trusted;
  attest::MemoryTree tree;

  Fixture() {
    REQUIRE(core::MakeDirs(dir + "/weights").ok());
    REQUIRE(core::WriteFileAtomic(dir + "/config.json", "{\"hidden\": 8}\n").ok());
    REQUIRE(core::WriteFileAtomic(dir + "/weights/model.bin", std::string(4096, 'w')).ok());
    std::vector<HashedFile> files;
    for (const char* title : {"config.json", "weights/model.bin"}) {
      auto d = core::HashFile(dir + "/" + title);
      REQUIRE(d.ok());
      files.push_back(HashedFile{LocalFile{dir + "/" + title, title, 0}, *d});
    }
    manifest_bytes = registry::SerializeManifest(BuildManifest(files, BuildConfig("unknown", 2, {})));
    version = core::Sha256::Of(manifest_bytes);
    REQUIRE(trusted.store.Add({attester.public_key(), "ci", {"*"}, {"health/*"}, {}, std::nullopt}).ok());
    auto verifier = attest::NoteVerifierKey(kOrigin, log_key.public_key());
    REQUIRE(verifier.ok());
    REQUIRE(trusted.AddLogKey(*verifier).ok());
    tree.Append("an earlier entry of another repository");
  }

  std::string Provenance(const signing::PrivateKey& key) {
    attest::Statement st;
    st.subjects.push_back({kRepo, {{"sha256", version.Hex()}}});
    st.predicate_type = std::string(attest::kSlsaProvenanceV1);
    st.predicate_json = R"({"buildDefinition":{"buildType":"t","externalParameters":{}},)"
                        R"("runDetails":{"builder":{"id":"ci"}}})";
    auto env = attest::SignStatement(st, {key});
    REQUIRE(env.ok());
    return signing::SerializeEnvelope(*env);
  }

  std::string ModelSignature(const signing::PrivateKey& key) {
    auto manifest = registry::ParseManifest(manifest_bytes);
    REQUIRE(manifest.ok());
    auto model = ModelManifestOf(kRepo, *manifest);
    REQUIRE(model.ok());
    auto bundle = attest::SignModelManifest(*model, key);
    REQUIRE(bundle.ok());
    return *bundle;
  }

  // Logs each document, then returns the evidence as the server writes it.
  json Evidence(const std::vector<std::pair<std::string, std::string>>& docs,
                const std::string& origin = kOrigin) {
    std::vector<std::pair<uint64_t, std::string>> leaves;
    for (const auto& [type, doc] : docs) {
      json leaf = {{"content_digest", core::Sha256::Of(doc).ToString()},
                   {"key_ids", {attester.key_id()}},
                   {"predicate_type", type},
                   {"repository", kRepo},
                   {"time", "2026-11-23T18:00:00Z"},
                   {"type", "sigil.attestation/v1"},
                   {"version_digest", version.ToString()}};
      std::string bytes = core::DumpJson(leaf);
      leaves.push_back({tree.Append(bytes), bytes});
    }
    tree.Append("a later entry");
    attest::Checkpoint cp{origin, tree.Size(), *attest::RootHash(tree, tree.Size()), {}};
    auto note = attest::SignCheckpoint(cp, origin, log_key);
    REQUIRE(note.ok());
    json atts = json::array();
    for (size_t i = 0; i < docs.size(); ++i) {
      auto proof = attest::InclusionProof(tree, leaves[i].first, tree.Size());
      REQUIRE(proof.ok());
      json hashes = json::array();
      for (const auto& h : *proof) hashes.push_back(B64(h));
      const std::string& doc = docs[i].second;
      json parsed = json::parse(doc);
      atts.push_back({{"repository", kRepo},
                      {"version_digest", version.ToString()},
                      {"content_digest", core::Sha256::Of(doc).ToString()},
                      {"predicate_type", docs[i].first},
                      {"key_ids", {attester.key_id()}},
                      {"log_index", leaves[i].first},
                      {"status", "verified"},
                      {"content", signing::Base64Encode(doc)},
                      {"envelope", parsed.contains("dsseEnvelope") ? parsed["dsseEnvelope"] : parsed},
                      {"log_entry",
                       {{"index", leaves[i].first},
                        {"leaf", signing::Base64Encode(leaves[i].second)},
                        {"leaf_hash", core::HexEncode(attest::MerkleLeafHash(leaves[i].second).data(), 32)},
                        {"inclusion_proof", hashes}}}});
    }
    return {{"repository", kRepo},
            {"version", "1"},
            {"version_digest", version.ToString()},
            {"attestations", atts},
            {"checkpoint", {{"note", *note}, {"origin", origin}, {"size", cp.size}, {"root", B64(cp.root)}}}};
  }

  json GoodEvidence() {
    return Evidence({{std::string(attest::kSlsaProvenanceV1), Provenance(attester)},
                     {std::string(attest::kModelSigningV1), ModelSignature(attester)}});
  }

  VerifyReport Verify(const json& evidence, CheckpointHistory* history = nullptr,
                      ConsistencyFetcher fetch = nullptr) {
    EvidenceCheck check;
    check.repository = kRepo;
    check.evidence_json = evidence.dump();
    check.manifest_bytes = manifest_bytes;
    check.files_dir = dir;
    check.trusted = &trusted;
    check.history = history;
    check.consistency = std::move(fetch);
    check.now_micros = kNow;
    return VerifyEvidence(check);
  }
};

// The name of the first failed check, "" when all passed.
std::string Failed(const VerifyReport& r) {
  INFO(r.Format());
  return r.FirstFailure() == nullptr ? "" : r.FirstFailure()->name;
}

std::string FlipBase64(const std::string& b64) {
  auto raw = signing::Base64Decode(b64);
  REQUIRE(raw.ok());
  std::string bytes = *raw;
  bytes[bytes.size() / 2] ^= 0x01;
  return signing::Base64Encode(bytes);
}

TEST_CASE("good evidence passes every check", "[cli][verify]") {
  Fixture f;
  VerifyReport r = f.Verify(f.GoodEvidence());
  INFO(r.Format());
  CHECK(r.ok());
  CHECK(r.ToStatus().ok());
  std::vector<std::string> names;
  for (const Check& c : r.checks) names.push_back(c.name);
  CHECK(names == std::vector<std::string>{"manifest", "files", "checkpoint", "attestations", "log entry 0",
                                          "inclusion 0", "signature 0", "subject 0", "log entry 1",
                                          "inclusion 1", "signature 1", "subject 1"});
  CHECK(r.checks[11].detail.find("ROOT") != std::string::npos);
  CHECK(r.Format().find("verified: every check passed") != std::string::npos);
}

TEST_CASE("a flipped byte in a file fails the files check", "[cli][verify]") {
  Fixture f;
  json ev = f.GoodEvidence();
  std::string body = std::string(4096, 'w');
  body[100] = 'x';
  REQUIRE(core::WriteFileAtomic(f.dir + "/weights/model.bin", body).ok());
  VerifyReport r = f.Verify(ev);
  CHECK(Failed(r) == "files");
  CHECK(r.FirstFailure()->detail.find("weights/model.bin") != std::string::npos);
  CHECK(r.ToStatus().reason() == "VERIFY_FAILED");
}

TEST_CASE("a file added beside the model fails the files check", "[cli][verify]") {
  Fixture f;
  json ev = f.GoodEvidence();
  REQUIRE(core::MakeDirs(f.dir + "/.sigil").ok());
  REQUIRE(core::WriteFileAtomic(f.dir + "/.sigil/evidence.json", "{}").ok());
  CHECK(Failed(f.Verify(ev)) == "");
  REQUIRE(core::WriteFileAtomic(f.dir + "/weights/run.py", "import os\n").ok());
  VerifyReport r = f.Verify(ev);
  CHECK(Failed(r) == "files");
  CHECK(r.FirstFailure()->detail.find("weights/run.py") != std::string::npos);
}

TEST_CASE("a manifest that is not the evidence's version fails the manifest check", "[cli][verify]") {
  Fixture f;
  json ev = f.GoodEvidence();
  f.manifest_bytes += " ";
  CHECK(Failed(f.Verify(ev)) == "manifest");
}

TEST_CASE("a tampered envelope payload fails", "[cli][verify]") {
  Fixture f;
  SECTION("in the listed envelope: the signature check") {
    json ev = f.GoodEvidence();
    auto& env = ev["attestations"][0]["envelope"];
    env["payload"] = FlipBase64(env["payload"]);
    CHECK(Failed(f.Verify(ev)) == "signature 0");
  }
  SECTION("in the logged content: the log entry check") {
    json ev = f.GoodEvidence();
    json doc = json::parse(*signing::Base64Decode(ev["attestations"][0]["content"].get<std::string>()));
    doc["payload"] = FlipBase64(doc["payload"]);
    ev["attestations"][0]["content"] = signing::Base64Encode(doc.dump());
    CHECK(Failed(f.Verify(ev)) == "log entry 0");
  }
  SECTION("logged as tampered: the signature check") {
    json env = json::parse(f.Provenance(f.attester));
    env["payload"] = FlipBase64(env["payload"]);
    json ev = f.Evidence({{std::string(attest::kSlsaProvenanceV1), env.dump()}});
    VerifyReport r = f.Verify(ev);
    CHECK(Failed(r) == "signature 0");
    CHECK(r.FirstFailure()->detail.find("SIGNATURE_INVALID") != std::string::npos);
  }
}

TEST_CASE("a flipped byte in a log entry fails the log entry check", "[cli][verify]") {
  Fixture f;
  json ev = f.GoodEvidence();
  auto& entry = ev["attestations"][1]["log_entry"];
  entry["leaf"] = FlipBase64(entry["leaf"]);
  CHECK(Failed(f.Verify(ev)) == "log entry 1");
}

TEST_CASE("a bundle whose hint names another key fails the signature check", "[cli][verify]") {
  Fixture f;
  json bundle = json::parse(f.ModelSignature(f.attester));
  bundle["verificationMaterial"]["publicKey"]["hint"] = std::string(64, 'a');
  json ev = f.Evidence({{std::string(attest::kModelSigningV1), bundle.dump()}});
  VerifyReport r = f.Verify(ev);
  CHECK(Failed(r) == "signature 0");
  CHECK(r.FirstFailure()->detail.find("BUNDLE_KEY_MISMATCH") != std::string::npos);
}

TEST_CASE("a signature by an untrusted key fails the signature check", "[cli][verify]") {
  Fixture f;
  signing::PrivateKey other = Generate(signing::Algorithm::kEcdsaP256Sha256);
  json ev = f.Evidence({{std::string(attest::kSlsaProvenanceV1), f.Provenance(other)}});
  CHECK(Failed(f.Verify(ev)) == "signature 0");
}

TEST_CASE("a key not allowed for the repository fails the signature check", "[cli][verify]") {
  Fixture f;
  f.trusted.store = signing::TrustStore();
  REQUIRE(f.trusted.store.Add({f.attester.public_key(), "ci", {"*"}, {"other/*"}, {}, std::nullopt}).ok());
  VerifyReport r = f.Verify(f.GoodEvidence());
  CHECK(Failed(r) == "signature 0");
  CHECK(r.FirstFailure()->detail.find("KEY_NOT_ALLOWED") != std::string::npos);
}

TEST_CASE("a revoked key fails the signature check", "[cli][verify]") {
  Fixture f;
  REQUIRE(f.trusted.store.Revoke(f.attester.key_id(), kNow - 1).ok());
  VerifyReport r = f.Verify(f.GoodEvidence());
  CHECK(Failed(r) == "signature 0");
  CHECK(r.FirstFailure()->detail.find("KEY_REVOKED") != std::string::npos);
}

TEST_CASE("a subject that is not the version fails the subject check", "[cli][verify]") {
  Fixture f;
  attest::Statement st;
  st.subjects.push_back({kRepo, {{"sha256", core::Sha256::Of("something else").Hex()}}});
  st.predicate_type = "https://example.com/review/v1";
  auto env = attest::SignStatement(st, {f.attester});
  REQUIRE(env.ok());
  json ev = f.Evidence({{st.predicate_type, signing::SerializeEnvelope(*env)}});
  VerifyReport r = f.Verify(ev);
  CHECK(Failed(r) == "subject 0");
  CHECK(r.FirstFailure()->detail.find("SUBJECT_MISMATCH") != std::string::npos);
}

TEST_CASE("a checkpoint of another origin fails the checkpoint check", "[cli][verify]") {
  Fixture f;
  json ev = f.Evidence({{std::string(attest::kSlsaProvenanceV1), f.Provenance(f.attester)}}, "other/log");
  VerifyReport r = f.Verify(ev);
  CHECK(Failed(r) == "checkpoint");
  CHECK(r.FirstFailure()->detail.find("CHECKPOINT_ORIGIN") != std::string::npos);
}

TEST_CASE("a checkpoint signed by another key fails the checkpoint check", "[cli][verify]") {
  Fixture f;
  f.log_key = Generate(signing::Algorithm::kEd25519);
  CHECK(Failed(f.Verify(f.GoodEvidence())) == "checkpoint");
}

TEST_CASE("listed checkpoint fields that differ from the note fail the checkpoint check", "[cli][verify]") {
  Fixture f;
  json ev = f.GoodEvidence();
  ev["checkpoint"]["size"] = ev["checkpoint"]["size"].get<uint64_t>() + 1;
  CHECK(Failed(f.Verify(ev)) == "checkpoint");
}

TEST_CASE("a truncated or altered inclusion proof fails the inclusion check", "[cli][verify]") {
  Fixture f;
  json ev = f.GoodEvidence();
  SECTION("truncated") {
    auto& proof = ev["attestations"][0]["log_entry"]["inclusion_proof"];
    REQUIRE(proof.size() >= 2);
    proof.erase(proof.size() - 1);
  }
  SECTION("a flipped hash") {
    auto& proof = ev["attestations"][0]["log_entry"]["inclusion_proof"];
    proof[0] = FlipBase64(proof[0]);
  }
  SECTION("another index") {
    ev["attestations"][0]["log_entry"]["index"] = 0;
    ev["attestations"][0]["log_index"] = 0;
  }
  CHECK(Failed(f.Verify(ev)) == "inclusion 0");
}

TEST_CASE("malformed evidence fails its check without crashing", "[cli][verify]") {
  Fixture f;
  const json good = f.GoodEvidence();
  struct Case {
    const char* what;
    std::function<void(json&)> damage;
    std::string check;
  };
  const std::vector<Case> cases = {
      {"no log entry index", [](json& e) { e["attestations"][0]["log_entry"].erase("index"); },
       "log entry 0"},
      {"negative index", [](json& e) { e["attestations"][0]["log_entry"]["index"] = -1; }, "log entry 0"},
      {"no log entry", [](json& e) { e["attestations"][0].erase("log_entry"); }, "log entry 0"},
      {"an attestation that is a string", [](json& e) { e["attestations"][0] = "x"; }, "log entry 0"},
      {"proof hashes that are numbers",
       [](json& e) {
         e["attestations"][0]["log_entry"]["inclusion_proof"] = {1, 2};
       },
       "inclusion 0"},
      {"content that is not JSON",
       [](json& e) { e["attestations"][0]["content"] = signing::Base64Encode("not json"); }, "log entry 0"},
      {"a checkpoint that is a string", [](json& e) { e["checkpoint"] = "x"; }, "checkpoint"},
      {"a note without lines", [](json& e) { e["checkpoint"]["note"] = "x"; }, "checkpoint"},
      {"attestations that are an object", [](json& e) { e["attestations"] = json::object(); },
       "attestations"},
      {"no version digest", [](json& e) { e.erase("version_digest"); }, "manifest"},
  };
  for (const Case& c : cases) {
    INFO(c.what);
    json ev = good;
    c.damage(ev);
    CHECK(Failed(f.Verify(ev)) == c.check);
  }
  EvidenceCheck not_json;
  not_json.evidence_json = "[";
  not_json.trusted = &f.trusted;
  CHECK(Failed(VerifyEvidence(not_json)) == "evidence");
}

TEST_CASE("evidence without attestations fails", "[cli][verify]") {
  Fixture f;
  json ev = f.Evidence({});
  CHECK(Failed(f.Verify(ev)) == "attestations");
}

TEST_CASE("offline, a log older than a previously seen checkpoint fails", "[cli][verify]") {
  Fixture f;
  json ev = f.GoodEvidence();
  uint64_t size = ev["checkpoint"]["size"];
  auto history = CheckpointHistory::Load(f.tmp.Sub("checkpoints"), kOrigin);
  REQUIRE(history.ok());
  SECTION("a larger checkpoint seen before") {
    f.tree.Append("grown");
    history->Add(f.tree.Size(), *attest::RootHash(f.tree, f.tree.Size()));
    VerifyReport r = f.Verify(ev, &*history);
    CHECK(Failed(r) == "consistency");
    CHECK(r.FirstFailure()->detail.find("log older than a previously seen checkpoint") != std::string::npos);
  }
  SECTION("another root at the same size") {
    history->Add(size, attest::MerkleLeafHash("forked"));
    VerifyReport r = f.Verify(ev, &*history);
    CHECK(Failed(r) == "consistency");
    CHECK(r.FirstFailure()->detail.find("LOG_INCONSISTENT") != std::string::npos);
  }
  SECTION("this checkpoint seen before, a larger one since") {
    history->Add(size, *attest::RootHash(f.tree, size));
    f.tree.Append("grown");
    history->Add(f.tree.Size(), *attest::RootHash(f.tree, f.tree.Size()));
    CHECK(Failed(f.Verify(ev, &*history)) == "");
  }
}

TEST_CASE("online, the checkpoint must be consistent with the ones seen before", "[cli][verify]") {
  Fixture f;
  f.tree.Append("one");
  f.tree.Append("two");
  uint64_t old_size = f.tree.Size();
  auto history = CheckpointHistory::Load(f.tmp.Sub("checkpoints"), kOrigin);
  REQUIRE(history.ok());
  history->Add(old_size, *attest::RootHash(f.tree, old_size));
  json ev = f.GoodEvidence();
  uint64_t new_size = ev["checkpoint"]["size"];
  auto proof_from = [&](const attest::TreeSource& tree) {
    return [&tree](uint64_t from, uint64_t to) -> core::Result<std::vector<std::string>> {
      ASSIGN_OR_RETURN(auto proof, attest::ConsistencyProof(tree, from, to));
      std::vector<std::string> out;
      for (const auto& h : proof) out.push_back(attest::HashBytes(h));
      return out;
    };
  };
  SECTION("a consistent log passes and is remembered") {
    VerifyReport r = f.Verify(ev, &*history, proof_from(f.tree));
    CHECK(Failed(r) == "");
    auto reloaded = CheckpointHistory::Load(f.tmp.Sub("checkpoints"), kOrigin);
    REQUIRE(reloaded.ok());
    CHECK(reloaded->largest_size() == new_size);
    CHECK(reloaded->RootAt(old_size).has_value());
  }
  SECTION("a checkpoint older than the largest seen passes with a proof up to it") {
    json older = ev;
    f.tree.Append("after the evidence");
    history->Add(f.tree.Size(), *attest::RootHash(f.tree, f.tree.Size()));
    std::vector<std::pair<uint64_t, uint64_t>> asked;
    auto fetch = proof_from(f.tree);
    VerifyReport r = f.Verify(older, &*history, [&](uint64_t from, uint64_t to) {
      asked.push_back({from, to});
      return fetch(from, to);
    });
    CHECK(Failed(r) == "");
    CHECK(asked == std::vector<std::pair<uint64_t, uint64_t>>{{new_size, f.tree.Size()}});
  }
  SECTION("a rewritten history fails") {
    attest::MemoryTree forked;
    for (int i = 0; i < 5; ++i) forked.Append("forked " + std::to_string(i));
    VerifyReport r = f.Verify(ev, &*history, proof_from(forked));
    CHECK(Failed(r) == "consistency");
    auto reloaded = CheckpointHistory::Load(f.tmp.Sub("checkpoints"), kOrigin);
    REQUIRE(reloaded.ok());
    CHECK(reloaded->empty());
  }
}

TEST_CASE("trusted keys files keep their log keys and refuse bad ones", "[cli][verify]") {
  Fixture f;
  testing::TempDir tmp;
  REQUIRE(f.trusted.Save(tmp.Sub("keys.json")).ok());
  auto loaded = TrustedKeys::Load(tmp.Sub("keys.json"));
  REQUIRE(loaded.ok());
  CHECK(loaded->log_keys == f.trusted.log_keys);
  CHECK(loaded->store.keys().size() == 1);
  auto bad = TrustedKeys::Parse(R"({"keys": [], "log_keys": ["not a verifier"]})");
  CHECK(bad.status().reason() == "TRUST_STORE_INVALID");
}

}  // namespace
}  // namespace sigil::cli
