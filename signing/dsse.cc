#include "signing/dsse.h"

#include <set>

#include <nlohmann/json.hpp>

#include "core/json.h"
#include "signing/base64.h"

namespace sigil::signing {

using core::Json;
using core::Result;
using core::Status;

namespace {

Status Invalid(std::string message) {
  return core::InvalidArgument("DSSE envelope: " + std::move(message), "DSSE_INVALID");
}

Result<std::string> DecodeField(const Json& object, const char* field) {
  auto it = object.find(field);
  if (it == object.end()) return Invalid(std::string("missing '") + field + "'");
  if (!it->is_string()) return Invalid(std::string("'") + field + "' must be a string");
  auto bytes = Base64Decode(it->get_ref<const std::string&>());
  if (!bytes.ok()) return bytes.status().Annotate(std::string("DSSE envelope '") + field + "'");
  return bytes;
}

}  // namespace

std::string Pae(std::string_view payload_type, std::string_view payload) {
  std::string out = "DSSEv1 ";
  out += std::to_string(payload_type.size());
  out += ' ';
  out += payload_type;
  out += ' ';
  out += std::to_string(payload.size());
  out += ' ';
  out += payload;
  return out;
}

Result<Envelope> ParseEnvelope(std::string_view json) {
  core::JsonLimits limits;
  limits.max_bytes = kMaxEnvelopeBytes;
  ASSIGN_OR_RETURN(Json doc, core::ParseJson(json, limits));
  return EnvelopeFromJson(doc);
}

Result<Envelope> EnvelopeFromJson(const Json& json) {
  if (!json.is_object()) return Invalid("not a JSON object");
  Envelope env;
  auto type = json.find("payloadType");
  if (type == json.end() || !type->is_string()) return Invalid("'payloadType' must be a string");
  env.payload_type = type->get<std::string>();
  ASSIGN_OR_RETURN(env.payload, DecodeField(json, "payload"));
  auto sigs = json.find("signatures");
  if (sigs == json.end() || !sigs->is_array()) return Invalid("'signatures' must be an array");
  if (sigs->size() > kMaxEnvelopeSignatures) {
    return Invalid("more than " + std::to_string(kMaxEnvelopeSignatures) + " signatures");
  }
  for (const Json& s : *sigs) {
    if (!s.is_object()) return Invalid("each signature must be an object");
    DsseSignature sig;
    auto keyid = s.find("keyid");
    if (keyid != s.end() && !keyid->is_null()) {
      if (!keyid->is_string()) return Invalid("'keyid' must be a string");
      sig.keyid = keyid->get<std::string>();
    }
    ASSIGN_OR_RETURN(sig.sig, DecodeField(s, "sig"));
    env.signatures.push_back(std::move(sig));
  }
  return env;
}

Json EnvelopeToJson(const Envelope& envelope) {
  Json sigs = Json::array();
  for (const DsseSignature& s : envelope.signatures) {
    Json j = Json::object();
    if (!s.keyid.empty()) j["keyid"] = s.keyid;
    j["sig"] = Base64Encode(s.sig);
    sigs.push_back(std::move(j));
  }
  return Json{{"payload", Base64Encode(envelope.payload)},
              {"payloadType", envelope.payload_type},
              {"signatures", std::move(sigs)}};
}

std::string SerializeEnvelope(const Envelope& envelope) {
  return core::DumpJson(EnvelopeToJson(envelope));
}

Result<Envelope> SignEnvelope(std::string_view payload_type, std::string_view payload,
                              const std::vector<PrivateKey>& keys) {
  if (keys.empty()) return core::InvalidArgument("signing needs at least one key");
  Envelope env;
  env.payload_type = std::string(payload_type);
  env.payload = std::string(payload);
  std::string pae = Pae(payload_type, payload);
  for (const PrivateKey& key : keys) {
    ASSIGN_OR_RETURN(std::string sig, key.Sign(pae));
    env.signatures.push_back({key.key_id(), std::move(sig)});
  }
  return env;
}

Result<VerifiedEnvelope> VerifyEnvelope(const Envelope& envelope,
                                        const std::vector<PublicKey>& keys, size_t threshold,
                                        std::string_view expected_payload_type) {
  if (threshold == 0) threshold = 1;
  if (envelope.signatures.empty()) {
    return core::Unauthenticated("envelope has no signatures", "SIGNATURE_INVALID");
  }
  std::string pae = Pae(envelope.payload_type, envelope.payload);
  std::set<std::string> tried;
  VerifiedEnvelope out;
  for (const PublicKey& key : keys) {
    if (!tried.insert(key.key_id()).second) continue;  // the same key listed twice counts once
    for (const DsseSignature& sig : envelope.signatures) {
      if (key.Verify(pae, sig.sig).ok()) {
        out.key_ids.push_back(key.key_id());
        break;
      }
    }
  }
  if (out.key_ids.empty()) {
    return core::Unauthenticated("no signature verifies with any of " + std::to_string(tried.size()) +
                                     " trusted key(s)",
                                 "SIGNATURE_INVALID");
  }
  if (out.key_ids.size() < threshold) {
    return core::Unauthenticated(std::to_string(out.key_ids.size()) +
                                     " distinct trusted key(s) signed; " + std::to_string(threshold) +
                                     " required",
                                 "SIGNATURE_THRESHOLD");
  }
  if (!expected_payload_type.empty() && envelope.payload_type != expected_payload_type) {
    return core::InvalidArgument("payloadType '" + envelope.payload_type + "' is not '" +
                                     std::string(expected_payload_type) + "'",
                                 "DSSE_PAYLOAD_TYPE");
  }
  out.payload_type = envelope.payload_type;
  out.payload = envelope.payload;
  return out;
}

}  // namespace sigil::signing
