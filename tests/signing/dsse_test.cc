#include "signing/dsse.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "core/digest.h"
#include "core/fs.h"
#include "core/json.h"
#include "signing/base64.h"

namespace sigil::signing {
namespace {

using core::Code;
using core::Json;

Json Vector() {
  auto text = core::ReadFile(SIGIL_VECTORS_DIR "/dsse-p256.json");
  REQUIRE(text.ok());
  auto doc = core::ParseJson(*text);
  REQUIRE(doc.ok());
  return *doc;
}

PublicKey VectorPublicKey(const Json& v) {
  auto key = PublicKey::FromPem(v["public_key_pem"].get<std::string>());
  REQUIRE(key.ok());
  return *key;
}

TEST_CASE("PAE matches the DSSE spec example", "[signing][dsse]") {
  Json v = Vector();
  CHECK(Pae(v["payloadType"].get<std::string>(), v["payload_utf8"].get<std::string>()) ==
        v["pae_utf8"].get<std::string>());
  CHECK(Pae("", "") == "DSSEv1 0  0 ");
}

TEST_CASE("DSSE spec vector verifies (raw r||s and no keyid)", "[signing][dsse]") {
  Json v = Vector();
  PublicKey key = VectorPublicKey(v);
  CHECK(key.algorithm() == Algorithm::kEcdsaP256Sha256);
  // Key id is the hint convention: sha256 of the PEM text exactly as given.
  CHECK(key.key_id() == core::Sha256::Of(v["public_key_pem"].get<std::string>()).Hex());

  auto env = EnvelopeFromJson(v["envelope"]);
  REQUIRE(env.ok());
  CHECK(env->payload == v["payload_utf8"].get<std::string>());
  CHECK(env->payload_type == v["payloadType"].get<std::string>());
  REQUIRE(env->signatures.size() == 1);
  CHECK(env->signatures[0].keyid.empty());
  CHECK(env->signatures[0].sig.size() == 64);

  auto verified = VerifyEnvelope(*env, {key}, 1, v["payloadType"].get<std::string>());
  REQUIRE(verified.ok());
  CHECK(verified->payload == "hello world");
  REQUIRE(verified->key_ids.size() == 1);
  CHECK(verified->key_ids[0] == key.key_id());
}

TEST_CASE("DSSE vector private key signs DER that verifies", "[signing][dsse]") {
  Json v = Vector();
  auto priv = PrivateKey::FromPem(v["private_key_pem"].get<std::string>());
  REQUIRE(priv.ok());
  PublicKey pub = VectorPublicKey(v);
  CHECK(priv->key_id() == pub.key_id());
  auto env = SignEnvelope("http://example.com/HelloWorld", "hello world", {*priv});
  REQUIRE(env.ok());
  REQUIRE(env->signatures.size() == 1);
  CHECK(static_cast<unsigned char>(env->signatures[0].sig[0]) == 0x30);
  CHECK(env->signatures[0].keyid == pub.key_id());
  auto reparsed = ParseEnvelope(SerializeEnvelope(*env));
  REQUIRE(reparsed.ok());
  CHECK(VerifyEnvelope(*reparsed, {pub}).ok());
}

TEST_CASE("DSSE base64 may be URL-safe or unpadded and keyid absent or null or empty alike",
          "[signing][dsse]") {
  Json v = Vector();
  PublicKey key = VectorPublicKey(v);
  std::string sig = v["envelope"]["signatures"][0]["sig"].get<std::string>();
  std::string url = sig;
  for (char& c : url) c = c == '+' ? '-' : c == '/' ? '_' : c;
  std::string unpadded = url.substr(0, url.find('='));
  std::string payload_unpadded = "aGVsbG8gd29ybGQ";

  for (const std::string& s : {sig, url, unpadded}) {
    for (int keyid_form = 0; keyid_form < 4; ++keyid_form) {
      Json env = v["envelope"];
      env["signatures"][0]["sig"] = s;
      env["payload"] = payload_unpadded;
      if (keyid_form == 1) env["signatures"][0]["keyid"] = nullptr;
      if (keyid_form == 2) env["signatures"][0]["keyid"] = "";
      if (keyid_form == 3) env["signatures"][0]["keyid"] = "some-other-hint";
      env["unknownField"] = 7;
      INFO(core::DumpJson(env));
      auto parsed = ParseEnvelope(core::DumpJson(env));
      REQUIRE(parsed.ok());
      if (keyid_form < 3) CHECK(parsed->signatures[0].keyid.empty());
      CHECK(VerifyEnvelope(*parsed, {key}).ok());
    }
  }
}

TEST_CASE("DSSE rejects a tampered payload or payload type", "[signing][dsse]") {
  Json v = Vector();
  PublicKey key = VectorPublicKey(v);
  auto env = EnvelopeFromJson(v["envelope"]);
  REQUIRE(env.ok());

  Envelope tampered = *env;
  tampered.payload = "hello World";
  auto r = VerifyEnvelope(tampered, {key});
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == Code::kUnauthenticated);
  CHECK(r.status().reason() == "SIGNATURE_INVALID");

  Envelope retyped = *env;
  retyped.payload_type = "http://example.com/HelloWorlD";
  CHECK(VerifyEnvelope(retyped, {key}).status().reason() == "SIGNATURE_INVALID");
}

TEST_CASE("DSSE rejects a signature from the wrong key", "[signing][dsse]") {
  Json v = Vector();
  auto env = EnvelopeFromJson(v["envelope"]);
  REQUIRE(env.ok());
  auto other = PrivateKey::Generate();
  REQUIRE(other.ok());
  auto r = VerifyEnvelope(*env, {other->public_key()});
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == Code::kUnauthenticated);
  CHECK(r.status().reason() == "SIGNATURE_INVALID");
  CHECK(VerifyEnvelope(*env, {}).status().reason() == "SIGNATURE_INVALID");
}

TEST_CASE("DSSE rejects an unexpected payload type after verifying", "[signing][dsse]") {
  Json v = Vector();
  PublicKey key = VectorPublicKey(v);
  auto env = EnvelopeFromJson(v["envelope"]);
  REQUIRE(env.ok());
  auto r = VerifyEnvelope(*env, {key}, 1, kInTotoPayloadType);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == Code::kInvalidArgument);
  CHECK(r.status().reason() == "DSSE_PAYLOAD_TYPE");
}

TEST_CASE("DSSE thresholds count distinct keys", "[signing][dsse]") {
  auto a = PrivateKey::Generate();
  auto b = PrivateKey::Generate(Algorithm::kEd25519);
  auto c = PrivateKey::Generate(Algorithm::kEcdsaP384Sha384);
  REQUIRE((a.ok() && b.ok() && c.ok()));
  std::vector<PublicKey> trusted = {a->public_key(), b->public_key(), c->public_key()};

  // The same key twice is one signer.
  auto twice = SignEnvelope(kInTotoPayloadType, "{}", {*a, *a});
  REQUIRE(twice.ok());
  REQUIRE(twice->signatures.size() == 2);
  auto r = VerifyEnvelope(*twice, trusted, 2);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == Code::kUnauthenticated);
  CHECK(r.status().reason() == "SIGNATURE_THRESHOLD");
  // Listing a trusted key twice does not make it two.
  CHECK(VerifyEnvelope(*twice, {a->public_key(), a->public_key()}, 2).status().reason() ==
        "SIGNATURE_THRESHOLD");

  auto two = SignEnvelope(kInTotoPayloadType, "{}", {*a, *b});
  REQUIRE(two.ok());
  auto ok = VerifyEnvelope(*two, trusted, 2, kInTotoPayloadType);
  REQUIRE(ok.ok());
  CHECK(ok->key_ids.size() == 2);
  CHECK(VerifyEnvelope(*two, trusted, 3).status().reason() == "SIGNATURE_THRESHOLD");

  // A signature by an untrusted key does not count towards the threshold.
  auto with_untrusted = SignEnvelope(kInTotoPayloadType, "{}", {*a, *c});
  REQUIRE(with_untrusted.ok());
  CHECK(VerifyEnvelope(*with_untrusted, {a->public_key(), b->public_key()}, 2).status().reason() ==
        "SIGNATURE_THRESHOLD");
}

TEST_CASE("DSSE parsing rejects malformed envelopes", "[signing][dsse]") {
  const std::pair<const char*, const char*> cases[] = {
      {"not json", "JSON_INVALID"},
      {"[]", "DSSE_INVALID"},
      {R"({"payloadType":"t","signatures":[]})", "DSSE_INVALID"},
      {R"({"payload":"aGk=","signatures":[]})", "DSSE_INVALID"},
      {R"({"payload":"aGk=","payloadType":"t"})", "DSSE_INVALID"},
      {R"({"payload":"aGk=","payloadType":7,"signatures":[]})", "DSSE_INVALID"},
      {R"({"payload":"a*k=","payloadType":"t","signatures":[]})", "BASE64_INVALID"},
      {R"({"payload":"aGk=","payloadType":"t","signatures":[{"sig":"%%"}]})", "BASE64_INVALID"},
      {R"({"payload":"aGk=","payloadType":"t","signatures":[{"keyid":"k"}]})", "DSSE_INVALID"},
      {R"({"payload":"aGk=","payloadType":"t","signatures":[{"keyid":5,"sig":"aGk="}]})", "DSSE_INVALID"},
      {R"({"payload":"aGk=","payloadType":"t","signatures":["aGk="]})", "DSSE_INVALID"},
  };
  for (const auto& [text, reason] : cases) {
    INFO(text);
    auto r = ParseEnvelope(text);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == Code::kInvalidArgument);
    CHECK(r.status().reason() == reason);
  }
  Json many = {{"payload", "aGk="}, {"payloadType", "t"}, {"signatures", Json::array()}};
  for (size_t i = 0; i <= kMaxEnvelopeSignatures; ++i) many["signatures"].push_back({{"sig", "aGk="}});
  CHECK(EnvelopeFromJson(many).status().reason() == "DSSE_INVALID");
}

TEST_CASE("DSSE envelope with no signatures does not verify", "[signing][dsse]") {
  auto key = PrivateKey::Generate();
  REQUIRE(key.ok());
  Envelope env{"t", "x", {}};
  CHECK(VerifyEnvelope(env, {key->public_key()}).status().reason() == "SIGNATURE_INVALID");
}

}  // namespace
}  // namespace sigil::signing
