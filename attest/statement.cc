#include "attest/statement.h"

#include <nlohmann/json.hpp>

#include "attest/internal/json_fields.h"
#include "core/clock.h"
#include "core/json.h"

namespace sigil::attest {

using core::Json;
using core::Result;
using core::Status;

namespace {

constexpr std::string_view kReason = "STATEMENT_INVALID";
constexpr size_t kMaxSubjects = 100000;

Status Invalid(std::string_view where, std::string_view message) {
  return internal::Invalid(kReason, where, message);
}

bool LowerHex(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace

Status ValidateDigestSet(const DigestSet& digest, std::string_view where) {
  if (digest.empty()) return Invalid(where, "digest set is empty");
  for (const auto& [alg, value] : digest) {
    if (alg.empty()) return Invalid(where, "empty digest algorithm");
    if (!LowerHex(value)) return Invalid(where, "digest '" + alg + "' is not lowercase hex");
    size_t want = alg == "sha256" ? 64 : alg == "sha384" ? 96 : alg == "sha512" ? 128
                : alg == "sha1" ? 40 : 0;
    if (want != 0 && value.size() != want) {
      return Invalid(where, "digest '" + alg + "' must be " + std::to_string(want) + " hex digits");
    }
    if (alg == "gitCommit" && value.size() != 40 && value.size() != 64) {
      return Invalid(where, "digest 'gitCommit' must be 40 or 64 hex digits");
    }
  }
  return core::OkStatus();
}

Status ValidateStatement(const Statement& st) {
  if (st.subjects.empty()) return Invalid("statement", "no subjects");
  if (st.subjects.size() > kMaxSubjects) return Invalid("statement", "too many subjects");
  for (size_t i = 0; i < st.subjects.size(); ++i) {
    std::string where = "statement subject[" + std::to_string(i) + "]";
    if (st.subjects[i].name.empty()) return Invalid(where, "subject needs a name");
    RETURN_IF_ERROR(ValidateDigestSet(st.subjects[i].digest, where));
  }
  if (st.predicate_type.empty()) return Invalid("statement", "predicateType is required");
  auto predicate = internal::ObjectFromText(st.predicate_json, "statement predicate", kReason);
  if (!predicate.ok()) return predicate.status();
  return core::OkStatus();
}

Result<std::string> SerializeStatement(const Statement& st) {
  RETURN_IF_ERROR(ValidateStatement(st));
  Json subjects = Json::array();
  for (const Subject& s : st.subjects) subjects.push_back({{"name", s.name}, {"digest", s.digest}});
  ASSIGN_OR_RETURN(Json predicate, internal::ObjectFromText(st.predicate_json, "predicate", kReason));
  Json doc = {{"_type", kStatementTypeV1},
              {"subject", std::move(subjects)},
              {"predicateType", st.predicate_type}};
  if (!predicate.is_null()) doc["predicate"] = std::move(predicate);
  return core::DumpJson(doc);
}

Result<Statement> ParseStatement(std::string_view payload) {
  core::JsonLimits limits;
  limits.max_bytes = signing::kMaxEnvelopeBytes;
  ASSIGN_OR_RETURN(Json doc, core::ParseJson(payload, limits));
  if (!doc.is_object()) return Invalid("statement", "not a JSON object");
  ASSIGN_OR_RETURN(std::string type, internal::OptString(doc, "_type", "statement", kReason));
  if (type != kStatementTypeV1) {
    return Invalid("statement", "_type is '" + type + "', not " + std::string(kStatementTypeV1));
  }
  Statement st;
  auto subjects = doc.find("subject");
  if (subjects == doc.end() || !subjects->is_array()) return Invalid("statement", "'subject' must be an array");
  size_t i = 0;
  for (const Json& s : *subjects) {
    std::string where = "statement subject[" + std::to_string(i++) + "]";
    if (!s.is_object()) return Invalid(where, "must be an object");
    Subject subject;
    ASSIGN_OR_RETURN(subject.name, internal::OptString(s, "name", where, kReason));
    ASSIGN_OR_RETURN(subject.digest, internal::OptStringMap(s, "digest", where, kReason));
    st.subjects.push_back(std::move(subject));
  }
  ASSIGN_OR_RETURN(st.predicate_type, internal::OptString(doc, "predicateType", "statement", kReason));
  auto predicate = doc.find("predicate");
  if (predicate != doc.end() && !predicate->is_null()) {
    if (!predicate->is_object()) return Invalid("statement", "'predicate' must be an object");
    st.predicate_json = core::DumpJson(*predicate);
  }
  RETURN_IF_ERROR(ValidateStatement(st));
  return st;
}

Result<std::vector<Subject>> MatchingSubjects(const Statement& st, const core::Digest& artifact) {
  std::vector<Subject> out;
  std::string hex = artifact.Hex();
  for (const Subject& s : st.subjects) {
    auto it = s.digest.find("sha256");
    if (it != s.digest.end() && it->second == hex) out.push_back(s);
  }
  if (out.empty()) {
    return core::FailedPrecondition("no subject of the statement has digest " + artifact.ToString(),
                                    "SUBJECT_MISMATCH");
  }
  return out;
}

std::string FormatTimestamp(int64_t micros) { return core::FormatRfc3339(micros); }

Result<int64_t> ParseTimestamp(std::string_view text) {
  if (text.empty() || (text.back() != 'Z')) {
    return core::InvalidArgument("timestamp '" + std::string(text) + "' must be RFC 3339 UTC ending in Z",
                                 "TIMESTAMP_INVALID");
  }
  auto t = core::ParseRfc3339(std::string(text));
  if (!t.ok()) {
    return core::InvalidArgument("timestamp '" + std::string(text) + "': " + t.status().message(),
                                 "TIMESTAMP_INVALID");
  }
  return t;
}

Result<signing::Envelope> SignStatement(const Statement& st,
                                        const std::vector<signing::PrivateKey>& keys) {
  ASSIGN_OR_RETURN(std::string payload, SerializeStatement(st));
  return signing::SignEnvelope(kInTotoPayloadType, payload, keys);
}

Result<VerifiedStatement> VerifyStatement(const signing::Envelope& envelope,
                                          const std::vector<signing::PublicKey>& keys,
                                          size_t threshold, const core::Digest& artifact,
                                          std::string_view expected_predicate_type) {
  ASSIGN_OR_RETURN(signing::VerifiedEnvelope verified,
                   signing::VerifyEnvelope(envelope, keys, threshold, kInTotoPayloadType));
  VerifiedStatement out;
  ASSIGN_OR_RETURN(out.statement, ParseStatement(verified.payload));
  if (!expected_predicate_type.empty() && out.statement.predicate_type != expected_predicate_type) {
    return core::FailedPrecondition("predicateType is '" + out.statement.predicate_type +
                                        "', expected '" + std::string(expected_predicate_type) + "'",
                                    "PREDICATE_TYPE_MISMATCH");
  }
  ASSIGN_OR_RETURN(out.matched_subjects, MatchingSubjects(out.statement, artifact));
  out.key_ids = std::move(verified.key_ids);
  return out;
}

}  // namespace sigil::attest
