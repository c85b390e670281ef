#include "signing/trust_store.h"

#include <functional>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "core/clock.h"
#include "core/fs.h"
#include "core/json.h"
#include "signing/dsse.h"
#include "tests/support/temp_dir.h"

namespace sigil::signing {
namespace {

using core::Code;
using core::Json;
using core::Status;

constexpr char kProvenance[] = "https://slsa.dev/provenance/v1";
constexpr char kScan[] = "https://sigil.dev/attestations/scan/v1";
const int64_t kNow = core::ParseRfc3339("2026-11-23T12:00:00Z").value();

TEST_CASE("repository globs", "[signing][trust]") {
  const std::tuple<const char*, const char*, bool> cases[] = {
      {"health/*", "health/triage-llm", true},
      {"health/*", "health/a/b", false},
      {"health/*", "healthy/x", false},
      {"health/**", "health/a/b", true},
      {"**", "any/thing/at/all", true},
      {"*", "top", true},
      {"*", "a/b", false},
      {"health/triage-?lm", "health/triage-llm", true},
      {"health/triage-llm", "health/triage-llm", true},
      {"health/triage-llm", "health/triage-llm2", false},
      {"*/llm", "health/llm", true},
      {"*-llm", "triage-llm", true},
      {"**/x*/z", "a/x1/q/x2/z", true},
      {"**/x*/z", "a/x1/q/x2/y", false},
      {"h*/*", "health/a", true},
      {"h*/*", "health/a/b", false},
      {"***", "a/b", true},
      {"", "", true},
      {"", "x", false},
  };
  for (const auto& [pattern, text, want] : cases) {
    INFO(pattern << " ~ " << text);
    CHECK(GlobMatch(pattern, text) == want);
  }
}

struct Fixture {
  PrivateKey ci = PrivateKey::Generate().value();
  PrivateKey scanner = PrivateKey::Generate(Algorithm::kEd25519).value();
  PrivateKey old = PrivateKey::Generate(Algorithm::kEcdsaP384Sha384).value();
  TrustStore store;

  Fixture() {
    REQUIRE(store.Add({ci.public_key(), "ci", {kProvenance}, {"health/*"}, {"staging"}, std::nullopt}).ok());
    REQUIRE(store.Add({scanner.public_key(), "scanner", {kScan}, {"**"}, {"*"}, std::nullopt}).ok());
    REQUIRE(store.Add({old.public_key(), "old", {"*"}, {"**"}, {"*"},
                       core::ParseRfc3339("2026-11-01T00:00:00Z").value()})
                .ok());
  }
};

std::vector<std::string> Ids(const std::vector<PublicKey>& keys) {
  std::vector<std::string> ids;
  for (const PublicKey& k : keys) ids.push_back(k.key_id());
  return ids;
}

TEST_CASE("trust store answers which keys may sign a predicate type for a repository",
          "[signing][trust]") {
  Fixture f;
  CHECK(Ids(f.store.KeysFor({kProvenance, "health/triage-llm", ""}, kNow)) ==
        std::vector<std::string>{f.ci.key_id()});
  CHECK(Ids(f.store.KeysFor({kProvenance, "finance/model", ""}, kNow)).empty());
  CHECK(Ids(f.store.KeysFor({kScan, "finance/model", ""}, kNow)) ==
        std::vector<std::string>{f.scanner.key_id()});
  CHECK(Ids(f.store.KeysFor({kProvenance, "health/triage-llm", "staging"}, kNow)) ==
        std::vector<std::string>{f.ci.key_id()});
  CHECK(Ids(f.store.KeysFor({kProvenance, "health/triage-llm", "production"}, kNow)).empty());
}

TEST_CASE("trust store explains refusals", "[signing][trust]") {
  Fixture f;
  CHECK(f.store.CheckAllowed(f.ci.key_id(), {kProvenance, "health/x", ""}, kNow).ok());

  Status wrong_type = f.store.CheckAllowed(f.ci.key_id(), {kScan, "health/x", ""}, kNow);
  CHECK(wrong_type.code() == Code::kPermissionDenied);
  CHECK(wrong_type.reason() == "KEY_NOT_ALLOWED");
  CHECK(wrong_type.message().find(kScan) != std::string::npos);

  Status wrong_repo = f.store.CheckAllowed(f.ci.key_id(), {kProvenance, "finance/x", ""}, kNow);
  CHECK(wrong_repo.code() == Code::kPermissionDenied);
  CHECK(wrong_repo.reason() == "KEY_NOT_ALLOWED");
  CHECK(wrong_repo.message().find("finance/x") != std::string::npos);

  Status wrong_stage =
      f.store.CheckAllowed(f.ci.key_id(), {kProvenance, "health/x", "production"}, kNow);
  CHECK(wrong_stage.reason() == "KEY_NOT_ALLOWED");

  Status revoked = f.store.CheckAllowed(f.old.key_id(), {kScan, "health/x", ""}, kNow);
  CHECK(revoked.code() == Code::kPermissionDenied);
  CHECK(revoked.reason() == "KEY_REVOKED");

  Status unknown = f.store.CheckAllowed(std::string(64, 'a'), {kScan, "health/x", ""}, kNow);
  CHECK(unknown.code() == Code::kNotFound);
  CHECK(unknown.reason() == "KEY_UNTRUSTED");
}

TEST_CASE("a revoked key's signatures no longer count", "[signing][trust]") {
  Fixture f;
  auto env = SignEnvelope(kInTotoPayloadType, "{}", {f.old});
  REQUIRE(env.ok());
  int64_t before = core::ParseRfc3339("2026-10-01T00:00:00Z").value();
  // Before its revocation time the key was trusted for everything.
  CHECK(VerifyEnvelope(*env, f.store.KeysFor({kScan, "health/x", ""}, before)).ok());
  auto after = VerifyEnvelope(*env, f.store.KeysFor({kScan, "health/x", ""}, kNow));
  REQUIRE_FALSE(after.ok());
  CHECK(after.status().reason() == "SIGNATURE_INVALID");

  // Revoking a key that was fine until now.
  auto ci_env = SignEnvelope(kInTotoPayloadType, "{}", {f.ci});
  REQUIRE(ci_env.ok());
  CHECK(VerifyEnvelope(*ci_env, f.store.KeysFor({kProvenance, "health/x", ""}, kNow)).ok());
  REQUIRE(f.store.Revoke(f.ci.key_id(), kNow).ok());
  CHECK(VerifyEnvelope(*ci_env, f.store.KeysFor({kProvenance, "health/x", ""}, kNow)).status().reason() ==
        "SIGNATURE_INVALID");
  CHECK(f.store.Revoke(std::string(64, 'b'), kNow).code() == Code::kNotFound);
}

TEST_CASE("trust store saves and loads and reloads", "[signing][trust]") {
  testing::TempDir dir;
  Fixture f;
  std::string path = dir.Sub("trust.json");
  REQUIRE(f.store.Save(path).ok());

  auto loaded = TrustStore::Load(path);
  REQUIRE(loaded.ok());
  REQUIRE(loaded->keys().size() == 3);
  const TrustedKey* ci = loaded->Find(f.ci.key_id());
  REQUIRE(ci != nullptr);
  CHECK(ci->name == "ci");
  CHECK(ci->repositories == std::vector<std::string>{"health/*"});
  CHECK(ci->key.algorithm() == Algorithm::kEcdsaP256Sha256);
  const TrustedKey* old = loaded->Find(f.old.key_id());
  REQUIRE(old != nullptr);
  REQUIRE(old->revoked_at_micros.has_value());
  CHECK(core::FormatRfc3339(*old->revoked_at_micros) == "2026-11-01T00:00:00Z");
  CHECK(loaded->Serialize() == f.store.Serialize());

  // Another writer adds a key; Reload picks it up.
  auto extra = PrivateKey::Generate();
  REQUIRE(extra.ok());
  TrustStore writer = *loaded;
  REQUIRE(writer.Add({extra->public_key(), "", {kScan}, {"**"}, {}, std::nullopt}).ok());
  REQUIRE(writer.Save(path).ok());
  CHECK(loaded->Find(extra->key_id()) == nullptr);
  REQUIRE(loaded->Reload().ok());
  CHECK(loaded->Find(extra->key_id()) != nullptr);

  // A broken file leaves the loaded store as it was.
  REQUIRE(core::WriteFileAtomic(path, "{not json").ok());
  Status broken = loaded->Reload();
  CHECK(broken.code() == Code::kInvalidArgument);
  CHECK(loaded->keys().size() == 4);

  TrustStore fresh;
  CHECK(fresh.Reload().code() == Code::kFailedPrecondition);
  CHECK(writer.Add({extra->public_key(), "", {}, {}, {}, std::nullopt}).code() == Code::kAlreadyExists);
}

TEST_CASE("trust store rejects malformed documents", "[signing][trust]") {
  auto key = PrivateKey::Generate();
  REQUIRE(key.ok());
  Json good = {{"keys",
                {{{"id", key->key_id()},
                  {"algorithm", "ecdsa-p256-sha256"},
                  {"public_key", key->public_key().pem()},
                  {"predicate_types", {kScan}},
                  {"repositories", {"**"}},
                  {"stages", Json::array()}}}}};
  REQUIRE(TrustStore::Parse(core::DumpJson(good)).ok());

  auto mutate = [&](auto change) {
    Json doc = good;
    change(doc["keys"][0]);
    return TrustStore::Parse(core::DumpJson(doc));
  };
  const std::pair<std::function<void(Json&)>, const char*> cases[] = {
      {[](Json& k) { k["id"] = std::string(64, 'c'); }, "TRUST_STORE_INVALID"},
      {[](Json& k) { k.erase("id"); }, "TRUST_STORE_INVALID"},
      {[](Json& k) { k["algorithm"] = "ed25519"; }, "TRUST_STORE_INVALID"},
      {[](Json& k) { k["algorithm"] = "rsa"; }, "TRUST_STORE_INVALID"},
      {[](Json& k) { k["public_key"] = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"; },
       "KEY_INVALID"},
      {[](Json& k) { k["repositories"] = "health/*"; }, "TRUST_STORE_INVALID"},
      {[](Json& k) { k["stages"] = {1}; }, "TRUST_STORE_INVALID"},
      {[](Json& k) { k["revoked_at"] = "yesterday"; }, "TRUST_STORE_INVALID"},
  };
  for (const auto& [change, reason] : cases) {
    auto r = mutate(change);
    REQUIRE_FALSE(r.ok());
    INFO(r.status().ToString());
    CHECK(r.status().code() == Code::kInvalidArgument);
    CHECK(r.status().reason() == reason);
  }
  Json dup = good;
  dup["keys"].push_back(good["keys"][0]);
  CHECK(TrustStore::Parse(core::DumpJson(dup)).status().reason() == "TRUST_STORE_INVALID");
  CHECK(TrustStore::Parse("[]").status().reason() == "TRUST_STORE_INVALID");
  CHECK(TrustStore::Parse("{\"keys\": 3}").status().reason() == "TRUST_STORE_INVALID");
  CHECK(TrustStore::Parse("{").status().reason() == "JSON_INVALID");
}

}  // namespace
}  // namespace sigil::signing
