// Policy documents: what a repository's versions must show before they move
// to a stage, and where their bytes may be stored, pulled and exported.
//
// A policy is a JSON document parsed strictly: unknown keys, wrong types,
// out-of-range values and oversized documents are refused with
// kInvalidArgument, reason "POLICY_INVALID", and a message naming the field
// ("policy field 'signatures.threshold' ..."). Absent sections mean "no rule".
// The policy's digest is the SHA-256 of the exact bytes it was parsed from,
// so a decision names precisely the document that produced it.
//
// Policy is a plain value; it is safe to share between threads once built.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/digest.h"
#include "core/status.h"
#include "scanner/scanner.h"

namespace sigil::policies {

// Limits on a policy document.
inline constexpr size_t kMaxPolicyBytes = 64 << 10;
inline constexpr int kMaxPolicyDepth = 8;
inline constexpr size_t kMaxListEntries = 256;
inline constexpr size_t kMaxStringBytes = 1024;

// "signatures": {"keys": [...], "roles": [...], "threshold": "2 of 3" | 2}
// A signature counts when it verified and its key id is listed in `keys` or
// the key holds one of `roles`. Each key counts once.
struct SignatureRule {
  std::vector<std::string> keys;
  std::vector<std::string> roles;
  int threshold = 1;
  int of = 0;  // the M of "N of M"; 0 when the threshold was a bare number
};

// "attestations": [{"predicate_type": "...", "keys": [...]}]; empty keys
// accept any key that verified.
struct AttestationRule {
  std::string predicate_type;
  std::vector<std::string> keys;
};

// "commit": {"branches": [...], "signed": true, "signers": [...]}
// signers are SSH public keys as a .pub file writes them, "<type> <base64>
// [comment]", of the types attest verifies (ssh-ed25519,
// ecdsa-sha2-nistp256); the comment is ignored when matching. signers
// require "signed": true; absent, any valid signature passes.
struct CommitRule {
  std::vector<std::string> branches;  // globs; the commit must be reachable from one
  bool signed_commit = false;         // "signed"
  std::vector<std::string> signers;   // as written, comments included
};

struct ProvenanceRule {
  std::vector<std::string> builders;             // exact builder ids
  std::vector<std::string> source_repositories;  // globs over source URIs
  bool dataset_digests_registered = false;
  bool subjects_match_files = false;
  std::optional<CommitRule> commit;
};

struct ScanRule {
  scanner::Severity max_severity = scanner::Severity::kInfo;
};

struct MetricBounds {
  std::optional<double> min;
  std::optional<double> max;
};

// Metrics are "higher is better" for regressions: a regression is
// current - candidate.
struct EvaluationRule {
  std::optional<core::Digest> spec_digest;
  std::map<std::string, MetricBounds> thresholds;
  std::map<std::string, double> max_regression_vs_current;
};

// Entries are site or region names (globs), matched against either. An
// absent list leaves that action unrestricted; an empty one allows nowhere.
struct ResidencyRule {
  std::optional<std::vector<std::string>> store;
  std::optional<std::vector<std::string>> pull;
  std::optional<std::vector<std::string>> export_to;  // "export"
  std::string classification;
};

struct FreshnessRule {
  int64_t max_age_days = 0;
};

struct Policy {
  std::string name;
  std::vector<std::string> repositories;  // globs (signing::GlobMatch)
  std::vector<std::string> stages;        // empty: every stage
  std::optional<SignatureRule> signatures;
  std::vector<AttestationRule> attestations;
  std::optional<ProvenanceRule> provenance;
  std::optional<ScanRule> scan;
  std::optional<EvaluationRule> evaluation;
  std::optional<ResidencyRule> residency;
  std::optional<FreshnessRule> freshness;

  core::Digest digest;  // SHA-256 of the bytes it was parsed from
};

// Parses a policy document. Errors: kInvalidArgument "POLICY_INVALID".
core::Result<Policy> ParsePolicy(std::string_view text);

// The canonical JSON form (sorted keys, absent sections omitted). Parsing
// its dump yields an equal policy, with the digest of those bytes.
nlohmann::json PolicyToJson(const Policy& policy);

// The type and base64 fields of an SSH public key line ("<type> <base64>
// [comment]"); empty strings for missing fields. Matching a commit's signer
// compares "<type> <base64>".
struct SshPublicKeyText {
  std::string type;
  std::string base64;
};
SshPublicKeyText SplitSshPublicKey(std::string_view text);

// Whether the policy covers a repository (any glob matches).
bool CoversRepository(const Policy& policy, std::string_view repository);
// Whether the policy covers a stage (no stages listed, or listed).
bool CoversStage(const Policy& policy, std::string_view stage);

// "info" ... "critical"; nullopt for anything else.
std::optional<scanner::Severity> ParseSeverity(std::string_view name);

}  // namespace sigil::policies
