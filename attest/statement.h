// in-toto Statement v1 and the predicate types sigil signs.
//
// Arbitrary JSON (a predicate, parameters, annotations) is carried as
// compact JSON text so these headers stay free of the JSON library; parse
// it with core::ParseJson where needed.
//
// Verification order (REFERENCE.md): signatures -> payloadType -> _type ->
// subjects matching the artifact -> predicate handed to policy.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/digest.h"
#include "core/status.h"
#include "signing/dsse.h"
#include "signing/keys.h"

namespace sigil::attest {

inline constexpr std::string_view kStatementTypeV1 = "https://in-toto.io/Statement/v1";
inline constexpr std::string_view kInTotoPayloadType = signing::kInTotoPayloadType;

inline constexpr std::string_view kSlsaProvenanceV1 = "https://slsa.dev/provenance/v1";
inline constexpr std::string_view kSlsaVsaV1 = "https://slsa.dev/verification_summary/v1";
inline constexpr std::string_view kSigilScanV1 = "https://sigil.dev/attestations/scan/v1";
inline constexpr std::string_view kSigilEvaluationV1 = "https://sigil.dev/attestations/evaluation/v1";
inline constexpr std::string_view kModelSigningV1 = "https://model_signing/signature/v1.0";

// algorithm -> lowercase hex ("sha256", "sha512", "gitCommit", ...).
using DigestSet = std::map<std::string, std::string>;

// in-toto ResourceDescriptor. At least one of uri, digest, content.
struct ResourceDescriptor {
  std::string name;
  std::string uri;
  DigestSet digest;
  std::string content;  // raw bytes (base64 in JSON)
  std::string download_location;
  std::string media_type;
  std::string annotations_json;  // a JSON object as text, or empty
};

struct Subject {
  std::string name;
  DigestSet digest;
};

struct Statement {
  std::vector<Subject> subjects;
  std::string predicate_type;
  std::string predicate_json = "{}";  // a JSON object as text
};

// Checks a digest set: non-empty; values lowercase hex, with the exact
// length for sha256 (64), sha384 (96), sha512 (128), sha1 (40) and gitCommit
// (40 or 64). Errors: kInvalidArgument "STATEMENT_INVALID".
core::Status ValidateDigestSet(const DigestSet& digest, std::string_view where);

// _type, at least one subject, each with a name and a valid digest set;
// a predicate type; the predicate a JSON object.
// Errors: kInvalidArgument "STATEMENT_INVALID".
core::Status ValidateStatement(const Statement& statement);

// Statement JSON (validated first).
core::Result<std::string> SerializeStatement(const Statement& statement);
// Parses and validates a DSSE payload. Unknown fields are ignored.
// Errors: kInvalidArgument "STATEMENT_INVALID" / "JSON_INVALID".
core::Result<Statement> ParseStatement(std::string_view payload);

// Subjects whose sha256 equals artifact. Errors: kFailedPrecondition
// "SUBJECT_MISMATCH" when none does.
core::Result<std::vector<Subject>> MatchingSubjects(const Statement& statement,
                                                    const core::Digest& artifact);

// RFC 3339 UTC with 'Z' (second precision) and its strict reader, which
// also refuses offsets other than 'Z'.
std::string FormatTimestamp(int64_t micros);
core::Result<int64_t> ParseTimestamp(std::string_view text);

// Signs a statement as a DSSE envelope (payloadType in-toto).
core::Result<signing::Envelope> SignStatement(const Statement& statement,
                                              const std::vector<signing::PrivateKey>& keys);

struct VerifiedStatement {
  Statement statement;
  std::vector<Subject> matched_subjects;
  std::vector<std::string> key_ids;  // distinct keys that signed
};

// The whole chain: signatures (threshold over distinct keys from `keys`),
// payloadType, _type, predicate type (when expected_predicate_type is
// non-empty; kFailedPrecondition "PREDICATE_TYPE_MISMATCH"), subjects
// matching artifact. Errors: those of VerifyEnvelope, ParseStatement and
// MatchingSubjects.
core::Result<VerifiedStatement> VerifyStatement(const signing::Envelope& envelope,
                                                const std::vector<signing::PublicKey>& keys,
                                                size_t threshold, const core::Digest& artifact,
                                                std::string_view expected_predicate_type);

}  // namespace sigil::attest
