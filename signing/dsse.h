// DSSE envelopes (secure-systems-lab/dsse v1.0.2).
//
// Signing covers PAE(payloadType, payload); the payload is never parsed or
// re-serialized before its signatures are checked. Envelope fields hold raw
// bytes; base64 happens only in the JSON form. keyid is an unauthenticated
// hint: absent, null and "" all read as "".
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/status.h"
#include "signing/keys.h"

namespace sigil::signing {

inline constexpr std::string_view kInTotoPayloadType = "application/vnd.in-toto+json";

struct DsseSignature {
  std::string keyid;  // "" when absent or null
  std::string sig;    // raw signature bytes
};

struct Envelope {
  std::string payload_type;
  std::string payload;  // raw bytes
  std::vector<DsseSignature> signatures;
};

// "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body.
std::string Pae(std::string_view payload_type, std::string_view payload);

// Limits on what an envelope may hold.
inline constexpr size_t kMaxEnvelopeSignatures = 64;
inline constexpr size_t kMaxEnvelopeBytes = 32 << 20;

// Parses the JSON form. Unknown fields are ignored; base64 may be standard or
// URL-safe, padded or not. Errors: kInvalidArgument with reason
// "DSSE_INVALID" (structure) or "JSON_INVALID"/"BASE64_INVALID".
core::Result<Envelope> ParseEnvelope(std::string_view json);
core::Result<Envelope> EnvelopeFromJson(const nlohmann::json& json);
// JSON form with standard padded base64; keyid written only when non-empty.
nlohmann::json EnvelopeToJson(const Envelope& envelope);
std::string SerializeEnvelope(const Envelope& envelope);

// Signs with each key; the signature's keyid is the key's id.
core::Result<Envelope> SignEnvelope(std::string_view payload_type, std::string_view payload,
                                    const std::vector<PrivateKey>& keys);

struct VerifiedEnvelope {
  std::string payload_type;
  std::string payload;
  // Ids of the distinct keys that produced at least one valid signature.
  std::vector<std::string> key_ids;
};

// Verifies the envelope against candidate keys: every signature is tried
// against every key (keyid is only a hint), and the threshold counts
// distinct keys, so one key signing twice counts once. When
// expected_payload_type is non-empty it is checked after the signatures.
// REQUIRES: threshold >= 1.
// Errors: kUnauthenticated "SIGNATURE_INVALID" (no key verified, or no
// signatures), kUnauthenticated "SIGNATURE_THRESHOLD" (fewer than threshold
// distinct keys), kInvalidArgument "DSSE_PAYLOAD_TYPE".
core::Result<VerifiedEnvelope> VerifyEnvelope(const Envelope& envelope,
                                              const std::vector<PublicKey>& keys,
                                              size_t threshold = 1,
                                              std::string_view expected_payload_type = {});

}  // namespace sigil::signing
