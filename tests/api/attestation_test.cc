// Attestations, trust store, server keys and transparency log routes,
// driven without a socket, and checked the way an offline client would.
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "api/service.h"
#include "attest/checkpoint.h"
#include "attest/merkle.h"
#include "attest/model_signing.h"
#include "attest/statement.h"
#include "attest/transparency_log.h"
#include "tests/api/model_fixture.h"
#include "core/fs.h"
#include "core/json.h"
#include "registry/attestations.h"
#include "registry/manifest.h"
#include "signing/base64.h"
#include "signing/dsse.h"
#include "signing/keys.h"
#include "storage/blob_store.h"
#include "storage/meta_store.h"
#include "tests/support/temp_dir.h"

namespace sigil::api {
namespace {

using core::Json;

constexpr char kRepo[] = "health/triage";
constexpr char kOrigin[] = "sigil/test.example";

signing::PrivateKey NewKey(signing::Algorithm a = signing::Algorithm::kEcdsaP256Sha256) {
  auto k = signing::PrivateKey::Generate(a);
  REQUIRE(k.ok());
  return *k;
}

struct Fixture {
  testing::TempDir dir;
  std::unique_ptr<storage::BlobStore> blobs = storage::NewMemoryBlobStore();
  std::unique_ptr<storage::MetaStore> meta = storage::NewMemoryMetaStore();
  core::ManualClock clock;
  storage::UploadManager uploads{blobs.get(), meta.get(), &clock, storage::UploadOptions()};
  registry::Registry registry{RegistryOptions()};
  signing::PrivateKey server_key = NewKey();
  signing::PrivateKey log_key = NewKey(signing::Algorithm::kEd25519);
  std::unique_ptr<attest::TransparencyLog> log = OpenLog();
  std::unique_ptr<registry::Attestations> attestations = OpenAttestations();
  Metrics metrics;
  Service service{
      ServiceOptions{&registry, &uploads, blobs.get(), meta.get(), &metrics, attestations.get(), log.get()}};

  std::map<std::string, std::string> files = {{"config.json", "{\"layers\": 2}"},
                                              {"weights/a.safetensors", std::string(300, 'a')},
                                              {"weights/b.safetensors", ""}};

  registry::RegistryOptions RegistryOptions() {
    registry::RegistryOptions o;
    o.blobs = blobs.get();
    o.meta = meta.get();
    o.clock = &clock;
    return o;
  }
  std::unique_ptr<attest::TransparencyLog> OpenLog() {
    attest::TransparencyLogOptions o;
    o.meta = meta.get();
    o.origin = kOrigin;
    o.key = log_key;
    auto l = attest::TransparencyLog::Open(o);
    REQUIRE(l.ok());
    return std::move(l).value();
  }
  std::unique_ptr<registry::Attestations> OpenAttestations() {
    registry::AttestationOptions o;
    o.registry = &registry;
    o.blobs = blobs.get();
    o.meta = meta.get();
    o.clock = &clock;
    o.log = log.get();
    o.server_key = server_key;
    o.trust_path = dir.Sub("trust.json");
    auto a = registry::Attestations::Open(o);
    REQUIRE(a.ok());
    return std::move(a).value();
  }

  HttpResponse Call(const std::string& method, const std::string& target, const std::string& body = "") {
    HttpRequest r;
    r.method = method;
    auto q = target.find('?');
    r.path = target.substr(0, q);
    if (q != std::string::npos) r.query = ParseQuery(target.substr(q + 1));
    r.body = body;
    std::string route;
    return service.Handle(r, &route);
  }

  core::Digest PutBlob(const std::string& data) {
    core::Digest d = core::Sha256::Of(data);
    REQUIRE(blobs->Put(d, data).ok());
    return d;
  }

  // Pushes a model version with the given files; returns its manifest digest.
  core::Digest Push(const std::string& version, const std::map<std::string, std::string>& content) {
    std::string bytes = testing::StoreModelManifest(blobs.get(), content);
    auto r = Call("PUT", std::string("/api/v1/models/") + kRepo + "/versions/" + version, bytes);
    REQUIRE(r.status == 201);
    return core::Sha256::Of(bytes);
  }

  // Trusts key through the API.
  void Trust(const signing::PrivateKey& key, const std::vector<std::string>& predicate_types,
             const std::vector<std::string>& repositories) {
    Json body = {{"name", "ci"},
                 {"public_key", key.public_key().pem()},
                 {"predicate_types", predicate_types},
                 {"repositories", repositories},
                 {"stages", {"*"}}};
    auto r = Call("POST", "/api/v1/trust/keys", core::DumpJson(body));
    REQUIRE(r.status == 201);
  }

  // Everything a rejected attestation could have left behind.
  struct Footprint {
    uint64_t log_size = 0;
    size_t referrers = 0;
    size_t blobs = 0;
    bool operator==(const Footprint&) const = default;
  };
  Footprint Snapshot() {
    Footprint fp;
    fp.log_size = log->Size();
    REQUIRE(meta->Scan("referrers", "",
                       [&](std::string_view, std::string_view) {
                         ++fp.referrers;
                         return true;
                       })
                .ok());
    REQUIRE(blobs
                ->ForEach([&](const storage::BlobInfo&) {
                  ++fp.blobs;
                  return true;
                })
                .ok());
    return fp;
  }

  std::string VersionUrl(const std::string& ref, const std::string& word) {
    return std::string("/api/v1/models/") + kRepo + "/versions/" + ref + "/" + word;
  }

  // The log verifier as the server publishes it.
  attest::NoteVerifier PublishedLogVerifier() {
    auto keys = Call("GET", "/api/v1/keys/server");
    REQUIRE(keys.status == 200);
    Json body = core::ParseJson(keys.body).value();
    auto v = attest::ParseNoteVerifierKey(body["log"]["verifier"].get<std::string>());
    REQUIRE(v.ok());
    return *v;
  }
};

Json Body(const HttpResponse& r) { return core::ParseJson(r.body).value(); }
std::string ErrorCode(const HttpResponse& r) { return Body(r)["error"]["code"]; }

std::string Provenance(const core::Digest& subject,
                       std::string predicate_type = "https://slsa.dev/provenance/v1") {
  attest::Statement st;
  st.subjects.push_back({"model", {{"sha256", subject.Hex()}}});
  st.predicate_type = std::move(predicate_type);
  st.predicate_json = R"({"buildDefinition":{"buildType":"https://example.com/train"}})";
  return attest::SerializeStatement(st).value();
}

std::string SignedEnvelope(const std::string& payload, const std::vector<signing::PrivateKey>& keys,
                           std::string_view payload_type = signing::kInTotoPayloadType) {
  auto env = signing::SignEnvelope(payload_type, payload, keys);
  REQUIRE(env.ok());
  return signing::SerializeEnvelope(*env);
}

std::vector<std::string> DecodeHashes(const Json& list) {
  std::vector<std::string> out;
  for (const Json& h : list) out.push_back(signing::Base64Decode(h.get<std::string>()).value());
  return out;
}

// The files ROOT as sigil's own serializer computes it from a directory.
attest::ModelManifest SerializeFiles(const testing::TempDir& dir, const std::string& name,
                                     const std::map<std::string, std::string>& files) {
  std::string root = dir.Sub(name);
  for (const auto& [path, data] : files) {
    std::string full = core::JoinPath(root, path);
    REQUIRE(core::MakeDirs(core::DirName(full)).ok());
    REQUIRE(core::WriteFileAtomic(full, data).ok());
  }
  auto m = attest::SerializeModel(root, {});
  REQUIRE(m.ok());
  return *m;
}

TEST_CASE("an accepted attestation is listed, logged and provable against the checkpoint", "[api][attest]") {
  Fixture f;
  core::Digest version = f.Push("1.0", f.files);
  signing::PrivateKey ci = NewKey();
  f.Trust(ci, {"https://slsa.dev/provenance/v1"}, {"health/*"});

  std::string doc = SignedEnvelope(Provenance(version), {ci});
  auto added = f.Call("POST", f.VersionUrl("1.0", "attestations"), doc);
  REQUIRE(added.status == 201);
  Json a = Body(added);
  CHECK(a["status"] == "verified");
  CHECK(a["log_index"] == 0);
  CHECK(a["format"] == "dsse");
  CHECK(a["key_ids"] == Json::array({ci.key_id()}));
  CHECK(a["content_digest"] == core::Sha256::Of(doc).ToString());
  CHECK(a["version_digest"] == version.ToString());
  CHECK(signing::Base64Decode(a["content"].get<std::string>()).value() == doc);

  // The same document again is the same attestation, not a new log entry.
  auto again = f.Call("POST", f.VersionUrl("sha256:" + version.Hex(), "attestations"), doc);
  REQUIRE(again.status == 200);
  CHECK(Body(again)["log_index"] == 0);
  CHECK(f.log->Size() == 1);

  auto list = f.Call("GET", f.VersionUrl("1.0", "attestations"));
  REQUIRE(list.status == 200);
  REQUIRE(Body(list)["attestations"].size() == 1);
  CHECK(Body(list)["attestations"][0]["envelope"]["payloadType"] == "application/vnd.in-toto+json");
  auto filtered = f.Call("GET", f.VersionUrl("1.0", "attestations?predicateType=https%3A%2F%2Fother"));
  CHECK(Body(filtered)["attestations"].empty());

  // The log entry names the document's digest.
  auto entry = f.Call("GET", "/api/v1/log/entries/0");
  REQUIRE(entry.status == 200);
  std::string leaf = signing::Base64Decode(Body(entry)["leaf"].get<std::string>()).value();
  Json leaf_json = core::ParseJson(leaf).value();
  CHECK(leaf_json["content_digest"] == core::Sha256::Of(doc).ToString());
  CHECK(leaf_json["version_digest"] == version.ToString());
  CHECK(leaf_json["repository"] == kRepo);
  std::string leaf_hash_hex = Body(entry)["leaf_hash"];
  auto leaf_hash = attest::MerkleLeafHash(leaf);
  CHECK(leaf_hash_hex == core::HexEncode(leaf_hash.data(), leaf_hash.size()));

  // A second attestation, so that proofs are not trivially empty.
  f.Push("1.1", {{"x", "y"}});
  std::string doc2 = SignedEnvelope(Provenance(version) + " ", {ci});
  REQUIRE(f.Call("POST", f.VersionUrl("1.0", "attestations"), doc2).status == 201);

  auto cp = f.Call("GET", "/api/v1/log/checkpoint");
  REQUIRE(cp.status == 200);
  CHECK(cp.content_type.rfind("text/plain", 0) == 0);
  auto checkpoint = attest::VerifyCheckpoint(cp.body, kOrigin, {f.PublishedLogVerifier()});
  REQUIRE(checkpoint.ok());
  REQUIRE(checkpoint->size == 2);

  for (const std::string& query :
       std::vector<std::string>{"index=0&size=2", "leaf_hash=" + leaf_hash_hex + "&size=2"}) {
    auto proof = f.Call("GET", "/api/v1/log/proof/inclusion?" + query);
    REQUIRE(proof.status == 200);
    CHECK(Body(proof)["index"] == 0);
    CHECK(Body(proof)["size"] == 2);
    CHECK(attest::VerifyInclusion(0, 2, attest::HashBytes(leaf_hash), DecodeHashes(Body(proof)["hashes"]),
                                  attest::HashBytes(checkpoint->root))
              .ok());
  }
}

TEST_CASE("evidence verifies offline with the published log key", "[api][attest]") {
  Fixture f;
  core::Digest version = f.Push("1.0", f.files);
  signing::PrivateKey ci = NewKey();
  f.Trust(ci, {"*"}, {"**"});
  REQUIRE(
      f.Call("POST", f.VersionUrl("1.0", "attestations"), SignedEnvelope(Provenance(version), {ci})).status ==
      201);
  REQUIRE(f.Call("POST", f.VersionUrl("1.0", "sign")).status == 201);
  // An attestation of another version is not part of this version's evidence.
  core::Digest other = f.Push("2.0", {{"only", "file"}});
  REQUIRE(
      f.Call("POST", f.VersionUrl("2.0", "attestations"), SignedEnvelope(Provenance(other), {ci})).status ==
      201);

  auto r = f.Call("GET", f.VersionUrl("1.0", "evidence"));
  REQUIRE(r.status == 200);
  Json ev = Body(r);
  CHECK(ev["version_digest"] == version.ToString());
  CHECK(ev["version"] == "1.0");
  auto cp = attest::VerifyCheckpoint(ev["checkpoint"]["note"].get<std::string>(), kOrigin,
                                     {f.PublishedLogVerifier()});
  REQUIRE(cp.ok());
  CHECK(cp->size == 3);
  CHECK(ev["checkpoint"]["size"] == 3);
  REQUIRE(ev["attestations"].size() == 2);
  for (const Json& a : ev["attestations"]) {
    std::string content = signing::Base64Decode(a["content"].get<std::string>()).value();
    std::string leaf = signing::Base64Decode(a["log_entry"]["leaf"].get<std::string>()).value();
    Json leaf_json = core::ParseJson(leaf).value();
    CHECK(leaf_json["content_digest"] == core::Sha256::Of(content).ToString());
    CHECK(leaf_json["version_digest"] == version.ToString());
    uint64_t index = a["log_entry"]["index"];
    CHECK(attest::VerifyInclusion(index, cp->size, attest::HashBytes(attest::MerkleLeafHash(leaf)),
                                  DecodeHashes(a["log_entry"]["inclusion_proof"]),
                                  attest::HashBytes(cp->root))
              .ok());
    // A flipped proof bit fails.
    auto bad = DecodeHashes(a["log_entry"]["inclusion_proof"]);
    REQUIRE_FALSE(bad.empty());
    bad[0][0] ^= 1;
    CHECK(attest::VerifyInclusion(index, cp->size, attest::HashBytes(attest::MerkleLeafHash(leaf)), bad,
                                  attest::HashBytes(cp->root))
              .reason() == "MERKLE_PROOF_INVALID");
  }
}

TEST_CASE("the server signs a version with its own key and the bundle verifies against the files",
          "[api][attest]") {
  Fixture f;
  f.Push("1.0", f.files);
  auto signed_r = f.Call("POST", f.VersionUrl("1.0", "sign"));
  REQUIRE(signed_r.status == 201);
  Json a = Body(signed_r);
  CHECK(a["server_issued"] == true);
  CHECK(a["status"] == "verified");
  CHECK(a["format"] == "sigstore-bundle");
  CHECK(a["predicate_type"] == "https://model_signing/signature/v1.0");
  auto again = f.Call("POST", f.VersionUrl("1.0", "sign"));
  REQUIRE(again.status == 200);
  CHECK(Body(again)["content_digest"] == a["content_digest"]);
  CHECK(f.log->Size() == 1);
  // Trusted implicitly: the trust store itself stays empty.
  auto trust = f.Call("GET", "/api/v1/trust/keys");
  CHECK(Body(trust)["keys"].empty());
  CHECK(Body(trust)["implicit"][0]["id"] == f.server_key.key_id());

  // The published key verifies the bundle against the files on disk, with
  // the OpenSSF model-signing verifier.
  auto keys = Body(f.Call("GET", "/api/v1/keys/server"));
  auto pub = signing::PublicKey::FromPem(keys["attestation"]["public_key"].get<std::string>());
  REQUIRE(pub.ok());
  CHECK(keys["attestation"]["key_id"] == f.server_key.key_id());
  CHECK(keys.dump().find("PRIVATE") == std::string::npos);
  std::string bundle = signing::Base64Decode(a["content"].get<std::string>()).value();
  SerializeFiles(f.dir, "triage", f.files);
  auto verified = attest::VerifyModel(f.dir.Sub("triage"), bundle, *pub);
  REQUIRE(verified.ok());
  CHECK(verified->resources.size() == 3);
}

TEST_CASE("a model-signing bundle is matched by the ROOT of the version's files", "[api][attest]") {
  Fixture f;
  std::map<std::string, std::string> files = f.files;
  files[".gitattributes"] = "* binary";  // ignored by model signing, pushed anyway
  files["a-b"] = "1";
  files["a/b"] = "2";
  f.Push("1.0", files);
  signing::PrivateKey signer = NewKey();
  f.Trust(signer, {"https://model_signing/signature/v1.0"}, {"health/**"});

  attest::ModelManifest model = SerializeFiles(f.dir, "triage", files);
  auto bundle = attest::SignModelManifest(model, signer);
  REQUIRE(bundle.ok());
  auto r = f.Call("POST", f.VersionUrl("1.0", "attestations"), *bundle);
  REQUIRE(r.status == 201);
  CHECK(Body(r)["format"] == "sigstore-bundle");

  // The same model with one file changed is another ROOT.
  files["a/b"] = "3";
  attest::ModelManifest changed = SerializeFiles(f.dir, "other", files);
  auto wrong = attest::SignModelManifest(changed, signer);
  REQUIRE(wrong.ok());
  auto refused = f.Call("POST", f.VersionUrl("1.0", "attestations"), *wrong);
  CHECK(refused.status == 400);
  CHECK(ErrorCode(refused) == "SUBJECT_MISMATCH");
}

TEST_CASE("bad attestations are refused with their reason and leave nothing behind", "[api][attest]") {
  Fixture f;
  core::Digest version = f.Push("1.0", f.files);
  core::Digest other_version = f.Push("2.0", {{"other", "model"}});
  signing::PrivateKey ci = NewKey();
  signing::PrivateKey stranger = NewKey();
  signing::PrivateKey revoked = NewKey();
  signing::PrivateKey scan_only = NewKey();
  signing::PrivateKey other_repo = NewKey();
  f.Trust(ci, {"https://slsa.dev/provenance/v1"}, {"health/*"});
  f.Trust(revoked, {"*"}, {"**"});
  f.Trust(scan_only, {"https://sigil.dev/attestations/scan/v1"}, {"**"});
  f.Trust(other_repo, {"*"}, {"finance/*"});
  REQUIRE(f.Call("POST", "/api/v1/trust/keys/" + revoked.key_id() + "/revoke").status == 200);

  std::string good = Provenance(version);
  Json tampered = core::ParseJson(SignedEnvelope(good, {ci})).value();
  tampered["payload"] = signing::Base64Encode(Provenance(other_version));
  Json bad_base64 = core::ParseJson(SignedEnvelope(good, {ci})).value();
  bad_base64["payload"] = "not base64!";
  Json bad_sig_base64 = core::ParseJson(SignedEnvelope(good, {ci})).value();
  bad_sig_base64["signatures"][0]["sig"] = "%%%";
  auto two_sig_env = signing::SignEnvelope(signing::kInTotoPayloadType, good, {ci, ci});
  REQUIRE(two_sig_env.ok());
  Json two_sig_bundle = {{"mediaType", "application/vnd.dev.sigstore.bundle.v0.3+json"},
                         {"verificationMaterial", {{"publicKey", {{"hint", ci.key_id()}}}}},
                         {"dsseEnvelope", signing::EnvelopeToJson(*two_sig_env)}};
  Json one_sig_bundle = two_sig_bundle;
  one_sig_bundle["dsseEnvelope"]["signatures"].erase(1);
  Json wrong_hint_bundle = one_sig_bundle;
  wrong_hint_bundle["verificationMaterial"]["publicKey"]["hint"] = stranger.key_id();
  Json no_envelope_bundle = {{"mediaType", "application/vnd.dev.sigstore.bundle.v0.3+json"},
                             {"messageSignature", Json::object()}};
  Json wrong_media_bundle = one_sig_bundle;
  wrong_media_bundle["mediaType"] = "application/vnd.dev.sigstore.bundle.v9+json";
  Json no_sigs = core::ParseJson(SignedEnvelope(good, {ci})).value();
  no_sigs["signatures"] = Json::array();

  struct Case {
    std::string name;
    std::string body;
    int status;
    std::string code;
  };
  std::vector<Case> cases = {
      {"tampered payload", core::DumpJson(tampered), 400, "SIGNATURE_INVALID"},
      {"untrusted key", SignedEnvelope(good, {stranger}), 403, "KEY_UNTRUSTED"},
      {"revoked key", SignedEnvelope(good, {revoked}), 403, "KEY_REVOKED"},
      {"key not allowed for the predicate type", SignedEnvelope(good, {scan_only}), 403, "KEY_NOT_ALLOWED"},
      {"key not allowed for the repository", SignedEnvelope(good, {other_repo}), 403, "KEY_NOT_ALLOWED"},
      {"server key for a foreign predicate type", SignedEnvelope(good, {f.server_key}), 403,
       "KEY_NOT_ALLOWED"},
      {"subject of another version", SignedEnvelope(Provenance(other_version), {ci}), 400,
       "SUBJECT_MISMATCH"},
      {"malformed payload base64", core::DumpJson(bad_base64), 400, "ATTESTATION_INVALID"},
      {"malformed signature base64", core::DumpJson(bad_sig_base64), 400, "ATTESTATION_INVALID"},
      {"malformed JSON", "{\"payload\": ", 400, "ATTESTATION_INVALID"},
      {"JSON that is not an object", "[1,2]", 400, "ATTESTATION_INVALID"},
      {"no signatures", core::DumpJson(no_sigs), 400, "ATTESTATION_INVALID"},
      {"unknown payload type", SignedEnvelope(good, {ci}, "application/x-unknown"), 400,
       "PAYLOAD_TYPE_UNSUPPORTED"},
      {"payload that is no statement", SignedEnvelope("{\"hello\": 1}", {ci}), 400, "ATTESTATION_INVALID"},
      {"bundle with two signatures", core::DumpJson(two_sig_bundle), 400, "ATTESTATION_INVALID"},
      {"bundle whose key hint names another key", core::DumpJson(wrong_hint_bundle), 400,
       "ATTESTATION_INVALID"},
      {"bundle without an envelope", core::DumpJson(no_envelope_bundle), 400, "ATTESTATION_INVALID"},
      {"bundle of an unknown media type", core::DumpJson(wrong_media_bundle), 400, "ATTESTATION_INVALID"},
  };
  auto before = f.Snapshot();
  for (const Case& c : cases) {
    SECTION(c.name) {
      auto r = f.Call("POST", f.VersionUrl("1.0", "attestations"), c.body);
      CHECK(r.status == c.status);
      CHECK(ErrorCode(r) == c.code);
      CHECK(f.Snapshot() == before);
      CHECK(Body(f.Call("GET", f.VersionUrl("1.0", "attestations")))["attestations"].empty());
    }
  }
  SECTION("the control: the one-signature bundle is accepted") {
    auto r = f.Call("POST", f.VersionUrl("1.0", "attestations"), core::DumpJson(one_sig_bundle));
    CHECK(r.status == 201);
    CHECK(f.log->Size() == before.log_size + 1);
  }
  SECTION("an unknown version is not found") {
    auto r = f.Call("POST", f.VersionUrl("9.9", "attestations"), SignedEnvelope(good, {ci}));
    CHECK(r.status == 404);
    CHECK(f.Snapshot() == before);
  }
}

TEST_CASE("revoking a key changes the status of what it signed, not the log", "[api][attest]") {
  Fixture f;
  core::Digest version = f.Push("1.0", f.files);
  signing::PrivateKey ci = NewKey();
  f.Trust(ci, {"*"}, {"**"});
  REQUIRE(
      f.Call("POST", f.VersionUrl("1.0", "attestations"), SignedEnvelope(Provenance(version), {ci})).status ==
      201);
  f.clock.Advance(1'000'000);
  auto revoked = f.Call("POST", "/api/v1/trust/keys/" + ci.key_id() + "/revoke");
  REQUIRE(revoked.status == 200);
  CHECK(Body(revoked)["revoked_at"] == core::FormatRfc3339(f.clock.NowMicros()));
  auto list = Body(f.Call("GET", f.VersionUrl("1.0", "attestations")));
  REQUIRE(list["attestations"].size() == 1);
  CHECK(list["attestations"][0]["status"] == "KEY_REVOKED");
  CHECK(f.log->Size() == 1);
}

TEST_CASE("trust store routes add, list, revoke and reload keys", "[api][attest]") {
  Fixture f;
  signing::PrivateKey k = NewKey();
  f.Trust(k, {"https://slsa.dev/provenance/v1"}, {"health/*"});
  auto list = Body(f.Call("GET", "/api/v1/trust/keys"));
  REQUIRE(list["keys"].size() == 1);
  CHECK(list["keys"][0]["id"] == k.key_id());
  CHECK(list["keys"][0]["repositories"] == Json::array({"health/*"}));
  CHECK_FALSE(list["keys"][0].contains("revoked_at"));

  Json dup = {{"public_key", k.public_key().pem()}, {"predicate_types", {"*"}}, {"repositories", {"**"}}};
  auto again = f.Call("POST", "/api/v1/trust/keys", core::DumpJson(dup));
  CHECK(again.status == 409);
  CHECK(ErrorCode(again) == "KEY_EXISTS");
  Json bad = {{"public_key", "not a key"}, {"predicate_types", {"*"}}, {"repositories", {"**"}}};
  CHECK(ErrorCode(f.Call("POST", "/api/v1/trust/keys", core::DumpJson(bad))) == "KEY_INVALID");
  Json bad_list = {{"public_key", NewKey().public_key().pem()}, {"predicate_types", "*"}};
  CHECK(f.Call("POST", "/api/v1/trust/keys", core::DumpJson(bad_list)).status == 400);
  CHECK(f.Call("POST", "/api/v1/trust/keys", "{").status == 400);
  auto unknown = f.Call("POST", "/api/v1/trust/keys/abc/revoke");
  CHECK(unknown.status == 404);
  CHECK(ErrorCode(unknown) == "KEY_UNKNOWN");
  CHECK(f.Call("DELETE", "/api/v1/trust/keys").status == 405);

  // The file was written; an edit of it takes effect on reload.
  auto store = signing::TrustStore::Load(f.dir.Sub("trust.json"));
  REQUIRE(store.ok());
  REQUIRE(store->keys().size() == 1);
  signing::TrustedKey extra{NewKey().public_key(), "extra", {"*"}, {"**"}, {}, std::nullopt};
  REQUIRE(store->Add(extra).ok());
  REQUIRE(store->Save(f.dir.Sub("trust.json")).ok());
  CHECK(Body(f.Call("GET", "/api/v1/trust/keys"))["keys"].size() == 1);
  auto reloaded = f.Call("POST", "/api/v1/trust/reload");
  REQUIRE(reloaded.status == 200);
  CHECK(Body(reloaded)["keys"] == 2);
  CHECK(Body(f.Call("GET", "/api/v1/trust/keys"))["keys"].size() == 2);

  // A broken file is refused and the store in use stays.
  REQUIRE(core::WriteFileAtomic(f.dir.Sub("trust.json"), "{\"keys\": 3}").ok());
  CHECK(f.Call("POST", "/api/v1/trust/reload").status == 400);
  CHECK(Body(f.Call("GET", "/api/v1/trust/keys"))["keys"].size() == 2);
}

TEST_CASE("log routes refuse bad parameters and prove consistency", "[api][attest]") {
  Fixture f;
  core::Digest version = f.Push("1.0", f.files);
  signing::PrivateKey ci = NewKey();
  f.Trust(ci, {"*"}, {"**"});
  auto attest_once = [&](int i) {
    std::string doc = SignedEnvelope(Provenance(version) + std::string(static_cast<size_t>(i), ' '), {ci});
    REQUIRE(f.Call("POST", f.VersionUrl("1.0", "attestations"), doc).status == 201);
  };
  attest_once(0);
  auto verifier = f.PublishedLogVerifier();
  auto cp1 = attest::VerifyCheckpoint(f.Call("GET", "/api/v1/log/checkpoint").body, kOrigin, {verifier});
  REQUIRE(cp1.ok());
  for (int i = 1; i < 6; ++i) attest_once(i);
  auto cp6 = attest::VerifyCheckpoint(f.Call("GET", "/api/v1/log/checkpoint").body, kOrigin, {verifier});
  REQUIRE(cp6.ok());
  REQUIRE(cp6->size == 6);

  for (uint64_t from : {uint64_t{1}, uint64_t{3}, uint64_t{6}}) {
    auto r = f.Call("GET", "/api/v1/log/proof/consistency?from=" + std::to_string(from) + "&to=6");
    REQUIRE(r.status == 200);
    auto root_from = attest::RootHash(*f.log, from);
    REQUIRE(root_from.ok());
    CHECK(attest::VerifyConsistency(from, 6, DecodeHashes(Body(r)["hashes"]), attest::HashBytes(*root_from),
                                    attest::HashBytes(cp6->root))
              .ok());
  }
  // From the first checkpoint a client kept, to the current one.
  auto r = f.Call("GET", "/api/v1/log/proof/consistency?from=1");
  REQUIRE(r.status == 200);
  CHECK(Body(r)["to"] == 6);
  CHECK(attest::VerifyConsistency(1, 6, DecodeHashes(Body(r)["hashes"]), attest::HashBytes(cp1->root),
                                  attest::HashBytes(cp6->root))
            .ok());

  struct Bad {
    std::string target;
    int status;
    std::string code;
  };
  std::vector<Bad> bad = {
      {"/api/v1/log/proof/inclusion", 400, "PARAMETER_INVALID"},
      {"/api/v1/log/proof/inclusion?index=abc&size=2", 400, "PARAMETER_INVALID"},
      {"/api/v1/log/proof/inclusion?index=-1", 400, "PARAMETER_INVALID"},
      {"/api/v1/log/proof/inclusion?index=0&size=7", 400, "PARAMETER_INVALID"},
      {"/api/v1/log/proof/inclusion?index=3&size=3", 400, "PARAMETER_INVALID"},
      {"/api/v1/log/proof/inclusion?index=0&size=0", 400, "PARAMETER_INVALID"},
      {"/api/v1/log/proof/inclusion?index=0&size=", 400, "PARAMETER_INVALID"},
      {"/api/v1/log/proof/inclusion?index=99999999999999999999999", 400, "PARAMETER_INVALID"},
      {"/api/v1/log/proof/inclusion?index=0&leaf_hash=" + std::string(64, 'a'), 400, "PARAMETER_INVALID"},
      {"/api/v1/log/proof/inclusion?leaf_hash=xyz", 400, "PARAMETER_INVALID"},
      {"/api/v1/log/proof/inclusion?leaf_hash=" + std::string(64, 'A'), 400, "PARAMETER_INVALID"},
      {"/api/v1/log/proof/inclusion?leaf_hash=" + std::string(64, 'a'), 404, "LOG_ENTRY_UNKNOWN"},
      {"/api/v1/log/proof/consistency", 400, "PARAMETER_INVALID"},
      {"/api/v1/log/proof/consistency?from=0&to=6", 400, "PARAMETER_INVALID"},
      {"/api/v1/log/proof/consistency?from=4&to=3", 400, "PARAMETER_INVALID"},
      {"/api/v1/log/proof/consistency?from=1&to=7", 400, "PARAMETER_INVALID"},
      {"/api/v1/log/proof/consistency?from=x&to=3", 400, "PARAMETER_INVALID"},
      {"/api/v1/log/entries/abc", 400, "PARAMETER_INVALID"},
      {"/api/v1/log/entries/6", 404, "LOG_INDEX_UNKNOWN"},
      {"/api/v1/log/nothing", 404, "ROUTE_UNKNOWN"},
  };
  for (const Bad& b : bad) {
    INFO(b.target);
    auto resp = f.Call("GET", b.target);
    CHECK(resp.status == b.status);
    CHECK(ErrorCode(resp) == b.code);
  }
  CHECK(f.Call("POST", "/api/v1/log/checkpoint").status == 405);
}

TEST_CASE("garbage collection keeps attestation documents", "[api][attest]") {
  Fixture f;
  core::Digest version = f.Push("1.0", f.files);
  REQUIRE(f.Call("POST", f.VersionUrl("1.0", "sign")).status == 201);
  (void)version;
  f.clock.Advance(48ll * 3600 * 1'000'000);
  auto gc = f.Call("POST", "/api/v1/gc");
  REQUIRE(gc.status == 200);
  auto list = f.Call("GET", f.VersionUrl("1.0", "attestations"));
  REQUIRE(list.status == 200);
  CHECK(Body(list)["attestations"].size() == 1);
  REQUIRE(f.Call("GET", f.VersionUrl("1.0", "evidence")).status == 200);
}

TEST_CASE("routes without attestations configured answer 503", "[api][attest]") {
  auto blobs = storage::NewMemoryBlobStore();
  auto meta = storage::NewMemoryMetaStore();
  storage::UploadManager uploads(blobs.get(), meta.get(), core::Clock::Real(), storage::UploadOptions());
  registry::RegistryOptions ro;
  ro.blobs = blobs.get();
  ro.meta = meta.get();
  registry::Registry reg(ro);
  Metrics metrics;
  Service service(ServiceOptions{&reg, &uploads, blobs.get(), meta.get(), &metrics});
  for (const char* path : {"/api/v1/log/checkpoint", "/api/v1/keys/server", "/api/v1/trust/keys"}) {
    HttpRequest r;
    r.method = "GET";
    r.path = path;
    std::string route;
    auto resp = service.Handle(r, &route);
    CHECK(resp.status == 503);
  }
}

}  // namespace
}  // namespace sigil::api
