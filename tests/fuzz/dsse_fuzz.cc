// Fuzzes what signed documents are made of (signing/, attest/): DSSE
// envelopes, in-toto statements, SLSA provenance and VSA predicates, OpenSSF
// model-signing (Sigstore) bundles, timestamps, base64, public keys and
// trust stores. The first byte picks the parser; the rest is its input.
//
// A fuzzer cannot forge signatures, so one mode signs the input itself with
// a key made at start-up and hands the result to VerifyModel: that reaches
// the statement and predicate checks behind the signature, against a
// one-file model written at start-up (the seed corpus holds the statement
// that matches it).
//
// Invariants: parse -> serialize -> parse gives the same serialization;
// base64 decodes what it encodes; VerifyModel never accepts a bundle that
// was not signed by the key, and what it accepts describes the model.
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "attest/model_signing.h"
#include "attest/slsa.h"
#include "attest/statement.h"
#include "core/fs.h"
#include "signing/base64.h"
#include "signing/dsse.h"
#include "signing/keys.h"
#include "signing/trust_store.h"
#include "tests/fuzz/check.h"

namespace sigil::fuzz {
namespace {

struct Fixture {
  signing::PrivateKey key;
  std::string model_dir;
};

// The key and the model, made once per process.
const Fixture& GetFixture() {
  static const Fixture* fixture = [] {
    auto key = signing::PrivateKey::Generate(signing::Algorithm::kEcdsaP256Sha256);
    Check(key.ok());
    std::string base = (std::filesystem::temp_directory_path() / "sigil-dsse-fuzz-XXXXXX").string();
    Check(mkdtemp(base.data()) != nullptr);
    Check(core::WriteFileAtomic(base + "/w.bin", "fuzz").ok());
    auto* f = new Fixture{std::move(*key), base};
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(GetFixture().model_dir, ec);
    });
    return f;
  }();
  return *fixture;
}

void FuzzEnvelope(std::string_view in) {
  auto env = signing::ParseEnvelope(in);
  if (!env.ok()) return;
  Check(env->signatures.size() <= signing::kMaxEnvelopeSignatures);
  std::string text = signing::SerializeEnvelope(*env);
  auto again = signing::ParseEnvelope(text);
  Check(again.ok());
  Check(again->payload_type == env->payload_type && again->payload == env->payload);
  Check(again->signatures.size() == env->signatures.size());
  for (size_t i = 0; i < env->signatures.size(); ++i) {
    Check(again->signatures[i].keyid == env->signatures[i].keyid);
    Check(again->signatures[i].sig == env->signatures[i].sig);
  }
  // Not signed by the fixture's key (a fuzzer cannot sign).
  auto verified = signing::VerifyEnvelope(*env, {GetFixture().key.public_key()});
  Check(!verified.ok());
}

void FuzzStatement(std::string_view in) {
  auto st = attest::ParseStatement(in);
  if (!st.ok()) return;
  auto text = attest::SerializeStatement(*st);
  Check(text.ok());
  auto again = attest::ParseStatement(*text);
  Check(again.ok());
  auto text2 = attest::SerializeStatement(*again);
  Check(text2.ok() && *text2 == *text);
}

void FuzzProvenance(std::string_view in) {
  auto p = attest::ParseProvenance(in);
  if (!p.ok()) return;
  auto text = attest::BuildProvenance(*p);
  if (!text.ok()) return;  // Build is stricter than Parse (required fields)
  auto again = attest::ParseProvenance(*text);
  Check(again.ok());
  auto text2 = attest::BuildProvenance(*again);
  Check(text2.ok() && *text2 == *text);
}

void FuzzVsa(std::string_view in) {
  auto v = attest::ParseVsa(in);
  if (!v.ok()) return;
  auto text = attest::BuildVsa(*v);
  if (!text.ok()) return;
  auto again = attest::ParseVsa(*text);
  Check(again.ok());
  auto text2 = attest::BuildVsa(*again);
  Check(text2.ok() && *text2 == *text);
}

attest::ModelVerifyOptions VerifyOptions() {
  attest::ModelVerifyOptions options;
  options.threads = 1;
  return options;
}

// The bundle as it arrives: unsigned by the fixture's key, so it must fail.
void FuzzBundle(std::string_view in) {
  const Fixture& f = GetFixture();
  auto m = attest::VerifyModel(f.model_dir, in, f.key.public_key(), VerifyOptions());
  Check(!m.ok());
}

// The input as the signed statement of a bundle.
void FuzzSignedStatement(std::string_view in) {
  const Fixture& f = GetFixture();
  auto env = signing::SignEnvelope(signing::kInTotoPayloadType, in, {f.key});
  Check(env.ok());
  nlohmann::json bundle = {
      {"mediaType", attest::kBundleMediaTypeV03},
      {"verificationMaterial", {{"publicKey", {{"hint", f.key.key_id()}}}}},
      {"dsseEnvelope", signing::EnvelopeToJson(*env)}};
  auto m = attest::VerifyModel(f.model_dir, bundle.dump(), f.key.public_key(), VerifyOptions());
  if (!m.ok()) return;
  // The model is one file, "w.bin": its resources are that file, whole or
  // in shards ("w.bin:<start>:<end>").
  Check(!m->resources.empty());
  for (const attest::ModelResource& r : m->resources) {
    Check(r.name == "w.bin" || r.name.rfind("w.bin:", 0) == 0);
    if (m->method == attest::SerializationMethod::kFiles) {
      Check(r.digest_hex == core::Sha256::Of("fuzz").Hex());
    }
  }
}

void FuzzTimestamp(std::string_view in) {
  auto t = attest::ParseTimestamp(in);
  if (!t.ok()) return;
  std::string text = attest::FormatTimestamp(*t);
  auto again = attest::ParseTimestamp(text);
  Check(again.ok() && *again == *t);
}

void FuzzBase64(std::string_view in) {
  auto raw = signing::Base64Decode(in);
  if (!raw.ok()) return;
  auto again = signing::Base64Decode(signing::Base64Encode(*raw));
  Check(again.ok() && *again == *raw);
}

void FuzzKeys(std::string_view in) {
  auto pem = signing::PublicKey::FromPem(in);
  if (pem.ok()) {
    auto again = signing::PublicKey::FromPem(pem->pem());
    Check(again.ok() && again->key_id() == pem->key_id());
  }
  (void)signing::PublicKey::FromRawEd25519(in);
  (void)signing::PublicKey::FromEcPoint(signing::Algorithm::kEcdsaP256Sha256, in);
  (void)signing::PublicKey::FromEcPoint(signing::Algorithm::kEcdsaP384Sha384, in);
  (void)attest::IgnorePathsOfPredicate(std::string(in));
}

void FuzzTrustStore(std::string_view in) { (void)signing::TrustStore::Parse(in); }

}  // namespace
}  // namespace sigil::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sigil::fuzz;
  if (size == 0) return 0;
  std::string_view in = AsText(data + 1, size - 1);
  switch (data[0] % 10) {
    case 0: FuzzEnvelope(in); break;
    case 1: FuzzStatement(in); break;
    case 2: FuzzProvenance(in); break;
    case 3: FuzzVsa(in); break;
    case 4: FuzzBundle(in); break;
    case 5: FuzzSignedStatement(in); break;
    case 6: FuzzTimestamp(in); break;
    case 7: FuzzBase64(in); break;
    case 8: FuzzKeys(in); break;
    case 9: FuzzTrustStore(in); break;
  }
  return 0;
}
