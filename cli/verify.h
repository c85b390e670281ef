// Verification of signed evidence on the client: trusted keys, the
// transparency log checkpoints a client has seen, and the checks behind
// `sigil pull --verify` and `sigil verify`.
//
// Trusted-keys file (JSON): the trust store format of signing/trust_store.h
// plus the transparency logs the client trusts, as C2SP note verifier keys:
//   {"keys": [{"id", "name", "algorithm", "public_key", "predicate_types",
//              "repositories", "stages", "revoked_at"?}, ...],
//    "log_keys": ["<origin>+<8 hex key id>+<base64(0x01 || Ed25519 key)>", ...]}
// A checkpoint is accepted when its origin is the name of a log key and that
// key signed it (GET /api/v1/keys/server answers both the attestation key
// and `log.verifier`).
//
// Evidence (GET .../evidence, docs/api.md) is checked, in this order, and
// every check is reported by name:
//   manifest      sha256 of the manifest bytes is the evidence's version_digest
//   files         (with a local copy) every file hashes to its layer digest,
//                 and no other file lies beside them (.sigil/ aside)
//   checkpoint    the note verifies with a trusted log key for its origin
//   consistency   against checkpoints seen before (CheckpointHistory): online,
//                 a consistency proof from the server; offline, a checkpoint
//                 smaller than the largest seen must be one seen before
//   attestations  at least one
//   and per attestation N:
//   log entry N   the leaf names sha256(content), the version and repository;
//                 the listed fields agree with the leaf and the content
//   inclusion N   the leaf's inclusion proof against the checkpoint's root
//   signature N   a trusted key, not revoked and allowed for the statement's
//                 predicate type and the repository, verifies the envelope;
//                 a bundle's public-key hint, when present, names that key;
//                 payload type in-toto; the statement's predicate type is
//                 the leaf's
//   subject N     a subject's sha256 is the manifest digest, or for a model
//                 signature the files ROOT computed from the manifest
// Fields of an attestation that nothing authenticates (status, created,
// server_issued, format) are shown, never relied on.
//
// Thread-safety: everything here is a function of its arguments, except
// CheckpointHistory, which reads and writes one file per log origin (one
// process at a time).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "attest/checkpoint.h"
#include "attest/merkle.h"
#include "core/status.h"
#include "signing/trust_store.h"

namespace sigil::cli {

// Where `sigil pull --verify` keeps the evidence beside the model.
inline constexpr std::string_view kEvidenceDir = ".sigil";
inline constexpr std::string_view kEvidenceFile = "evidence.json";
inline constexpr std::string_view kManifestFile = "manifest.json";

struct TrustedKeys {
  signing::TrustStore store;
  std::vector<std::string> log_keys;  // note verifier text form
  std::vector<attest::NoteVerifier> log_verifiers;

  // Errors: those of TrustStore::Parse; kInvalidArgument
  // "TRUST_STORE_INVALID" for a bad log_keys entry.
  static core::Result<TrustedKeys> Parse(std::string_view json);
  static core::Result<TrustedKeys> Load(const std::string& path);
  std::string Serialize() const;
  core::Status Save(const std::string& path) const;
  // Adds a note verifier key (text form); false when already present.
  core::Result<bool> AddLogKey(const std::string& text);
};

// The checkpoints of one log this client verified online, by size. All of
// them are consistent with the largest (each was proven consistent with the
// largest known at the time). File: <dir>/<hex sha256(origin)>.json.
class CheckpointHistory {
 public:
  // An empty dir keeps the history in memory only.
  static core::Result<CheckpointHistory> Load(const std::string& dir, const std::string& origin);

  bool empty() const { return roots_.empty(); }
  // The largest size seen and its root. REQUIRES: !empty().
  uint64_t largest_size() const;
  const attest::MerkleHash& largest_root() const;
  // The root seen at size, if any.
  std::optional<attest::MerkleHash> RootAt(uint64_t size) const;
  void Add(uint64_t size, const attest::MerkleHash& root);
  core::Status Save() const;

 private:
  std::string path_;
  std::string origin_;
  std::vector<std::pair<uint64_t, attest::MerkleHash>> roots_;  // sorted by size
};

struct Check {
  std::string name;
  bool ok = false;
  std::string detail;
};

struct VerifyReport {
  std::vector<Check> checks;

  bool ok() const;
  void Add(std::string name, const core::Status& status, std::string ok_detail);
  // The first failed check, or nullptr.
  const Check* FirstFailure() const;
  // One line per check ("ok    name: detail" / "FAIL  name: detail") and a
  // verdict line.
  std::string Format() const;
  // kUnauthenticated "VERIFY_FAILED" naming the first failed check, or OK.
  core::Status ToStatus() const;
};

// The consistency proof between two sizes, from the server (online).
using ConsistencyFetcher = std::function<core::Result<std::vector<std::string>>(uint64_t from, uint64_t to)>;

struct EvidenceCheck {
  std::string repository;      // the repository asked for
  std::string evidence_json;   // GET .../evidence
  std::string manifest_bytes;  // the manifest's exact bytes
  // When non-empty, every file of the manifest is rehashed under this dir.
  std::string files_dir;
  const TrustedKeys* trusted = nullptr;
  // Checkpoints seen before (may be null: no history check). An online
  // check (consistency set) that passes adds the evidence's checkpoint.
  CheckpointHistory* history = nullptr;
  ConsistencyFetcher consistency;  // empty: offline
  int64_t now_micros = 0;
};

// Runs every check above. REQUIRES: check.trusted != nullptr.
VerifyReport VerifyEvidence(const EvidenceCheck& check);

// The origin named on a checkpoint note's first line.
core::Result<std::string> NoteOrigin(std::string_view note);

}  // namespace sigil::cli
