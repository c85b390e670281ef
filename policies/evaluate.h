// Evaluate: a policy applied to one version's evidence, for one action.
//
// Pure and deterministic: no clock, no I/O, no globals. The caller gathers
// the evidence (verifies signatures and attestations, runs the git checks in
// attest, reads the scan and evaluation reports) and passes the outcome; the
// same inputs always give the same Decision and the same DecisionToJson
// bytes. Thread-safe.
//
// Which rules are checked depends on the action:
//   promote: scope (repository and stage), signatures, attestations,
//            freshness, provenance.*, scan, evaluation.*
//   store / pull / export: scope (repository), residency.<action>
// Every rule the policy states for that action appears in the decision, with
// pass/fail and a human reason; the verdict is PASS only if all pass.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/digest.h"
#include "policies/policy.h"
#include "scanner/scanner.h"

namespace sigil::policies {

struct FileEvidence {
  std::string path;
  core::Digest digest;
};

// A signature over the version (manifest), as the caller found it.
struct SignatureEvidence {
  std::string key_id;
  std::vector<std::string> key_roles;  // roles the trust store gives the key
  bool verified = false;
};

// An attestation attached to the version. Only verified ones count.
struct AttestationEvidence {
  std::string predicate_type;
  std::vector<std::string> key_ids;  // keys whose signatures verified
  int64_t signed_time_micros = 0;
  bool verified = false;
};

struct ScanEvidence {
  std::string verdict;  // e.g. "clean", "suspicious", "malicious"
  scanner::Severity max_severity = scanner::Severity::kInfo;
};

struct EvaluationEvidence {
  bool passed = false;
  std::optional<core::Digest> spec_digest;
  std::map<std::string, double> metrics;
  // Metrics of the version the target alias points at now; nullopt when the
  // alias is unset (no regression check possible, so it passes).
  std::optional<std::map<std::string, double>> current_metrics;
};

// Outcome of the git checks the caller ran against the local mirror.
struct CommitEvidence {
  std::string commit;
  bool exists_in_mirror = false;
  std::vector<std::string> reachable_from;  // branches that contain it
  bool signature_valid = false;
  std::string signer_key;  // "<type> <base64>" of the valid signature (attest::CommitCheck)
  std::string detail;      // attest::CommitCheck::detail, or why the check could not run;
                           // follows a colon in the commit rules' failure reasons
};

struct DatasetEvidence {
  core::Digest digest;
  bool registered = false;
};

struct ProvenanceEvidence {
  std::string builder_id;
  std::string source_repository;
  std::optional<CommitEvidence> commit;
  std::vector<DatasetEvidence> datasets;
  std::vector<FileEvidence> subjects;
};

struct Evidence {
  std::string repository;
  core::Digest manifest_digest;
  std::vector<FileEvidence> files;
  std::vector<SignatureEvidence> signatures;
  std::vector<AttestationEvidence> attestations;
  std::optional<ScanEvidence> scan;
  std::optional<EvaluationEvidence> evaluation;
  std::optional<ProvenanceEvidence> provenance;
  int64_t now_micros = 0;
};

enum class Action { kPromote, kStore, kPull, kExport };

struct Context {
  std::string token_name;
  std::string role;
  std::string site;    // the caller's site (store: this server's)
  std::string region;  // the caller's region (store: this server's)
  Action action = Action::kPromote;
  std::string stage;          // kPromote: the target alias
  std::string export_region;  // kExport: the destination region
};

struct RuleResult {
  std::string rule;  // "signatures", "provenance.builder", "residency.pull", ...
  bool passed = false;
  std::string reason;
};

struct Decision {
  bool passed = false;
  std::string policy_name;
  core::Digest policy_digest;
  std::vector<RuleResult> rules;
};

Decision Evaluate(const Policy& policy, const Evidence& evidence, const Context& context);

// "promote", "store", "pull", "export".
std::string_view ActionName(Action action);

// {"verdict":"PASS"|"FAIL","policy":{"name","digest"},"rules":[{"rule","passed","reason"}]}
nlohmann::json DecisionToJson(const Decision& decision);

}  // namespace sigil::policies
