// Attestations: signed in-toto statements attached to a version as
// referrers, each accepted only after its signature verified against the
// trust store and its subject matched the version, and each logged in the
// transparency log in the same WriteBatch as its referrer record.
//
// Keys (MetaStore column family "referrers"):
//   <repo>\0<manifest digest>\0<content digest> -> {"format", "predicate_type",
//       "key_ids", "server_issued", "log_index", "created"}
// The submitted document (a DSSE envelope or a Sigstore bundle, its exact
// bytes) is a blob named by its content digest. Attestations belong to the
// manifest digest, so every version name of one manifest shares them.
//
// Log leaves are compact JSON (keys sorted):
//   {"content_digest": "sha256:...", "key_ids": [...], "predicate_type": "...",
//    "repository": "...", "time": "<RFC 3339>", "type": "sigil.attestation/v1",
//    "version_digest": "sha256:..."}
//
// Trust: the trust store file (signing::TrustStore) plus the server's own
// attestation key, trusted implicitly for kServerPredicateTypes in every
// repository. The store is a snapshot swapped under a mutex on every change.
//
// Errors of Add (reasons): kInvalidArgument ATTESTATION_INVALID (not JSON,
// not an envelope or v0.1-0.3 bundle, bad base64, a bundle with other than
// one signature, a statement that does not parse), SIGNATURE_INVALID (a
// signature names a known key that does not verify it),
// PAYLOAD_TYPE_UNSUPPORTED (not application/vnd.in-toto+json),
// SUBJECT_MISMATCH (no subject digest is the version's); kPermissionDenied
// KEY_UNTRUSTED (no known key verifies), KEY_REVOKED, KEY_NOT_ALLOWED (for
// the predicate type or repository); the errors of Registry::Resolve.
//
// Thread-safety: all methods may be called concurrently.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "attest/merkle.h"
#include "attest/transparency_log.h"
#include "core/clock.h"
#include "core/digest.h"
#include "core/status.h"
#include "registry/registry.h"
#include "signing/keys.h"
#include "signing/trust_store.h"
#include "storage/blob_store.h"
#include "storage/meta_store.h"

namespace sigil::registry {

// The predicate types the server's own key may attest without a trust entry.
// Scan and evaluation reports are issued by the server (registry/scanning.h,
// registry/evaluations.h), and so are promotion VSAs (registry/promotions.h).
inline constexpr std::string_view kServerPredicateTypes[] = {"https://model_signing/signature/v1.0",
                                                             "https://sigil.dev/attestations/scan/v1",
                                                             "https://sigil.dev/attestations/evaluation/v1",
                                                             "https://slsa.dev/verification_summary/v1"};
inline constexpr size_t kMaxAttestationBytes = 4 << 20;

struct AttestationOptions {
  Registry* registry = nullptr;
  storage::BlobStore* blobs = nullptr;
  storage::MetaStore* meta = nullptr;
  core::Clock* clock = core::Clock::Real();
  attest::TransparencyLog* log = nullptr;
  // The server's attestation key (ECDSA P-256).
  std::optional<signing::PrivateKey> server_key;
  // Where the trust store lives; empty keeps it in memory only.
  std::string trust_path;
};

struct AttestationRecord {
  std::string repository;
  core::Digest version_digest;
  core::Digest content_digest;
  std::string format;  // "dsse" or "sigstore-bundle"
  std::string predicate_type;
  std::vector<std::string> key_ids;
  bool server_issued = false;
  uint64_t log_index = 0;
  int64_t created_micros = 0;
  std::string content;  // the stored document's bytes
  // "verified" when a key that signed may still attest it now, otherwise
  // the reason it no longer may (KEY_REVOKED, KEY_UNTRUSTED, KEY_NOT_ALLOWED).
  std::string status;
};

struct EvidenceEntry {
  AttestationRecord record;
  std::string leaf;                           // the log leaf's bytes
  std::vector<attest::MerkleHash> inclusion;  // against the checkpoint's size
};

struct Evidence {
  ResolvedVersion version;
  std::vector<EvidenceEntry> entries;
  attest::SignedCheckpoint checkpoint;
};

class Attestations {
 public:
  // Loads the trust store from options.trust_path (an absent file is an
  // empty store). Errors: kInvalidArgument for missing options or a key
  // that is not ECDSA; those of TrustStore::Load.
  static core::Result<std::unique_ptr<Attestations>> Open(AttestationOptions options);

  struct Added {
    AttestationRecord record;
    bool created = false;  // false: the same document was already attached
  };
  // Verifies and stores an attestation for the version ref names.
  core::Result<Added> Add(std::string_view repo, std::string_view ref, std::string_view document);
  // The server signs the version's files with its own key (an OpenSSF
  // model-signing bundle computed from the manifest) and stores it as Add
  // does; when the server's key already signed this manifest, that
  // attestation is returned (created = false).
  core::Result<Added> Sign(std::string_view repo, std::string_view ref);
  // Verifies document for version exactly as Add does and writes nothing;
  // the version need not be stored yet (bundle imports check everything
  // before they write). Returns the statement's predicate type.
  // Errors: the verification errors of Add.
  core::Result<std::string> Check(std::string_view repo, const ResolvedVersion& version,
                                  std::string_view document) const;
  // Attestations of the version, oldest log entry first; all when
  // predicate_type is empty.
  core::Result<std::vector<AttestationRecord>> List(std::string_view repo, std::string_view ref,
                                                    std::string_view predicate_type);
  // Every attestation of the version with its log leaf and inclusion proof
  // against one signed checkpoint that covers them all.
  core::Result<Evidence> GetEvidence(std::string_view repo, std::string_view ref);

  const signing::PublicKey& server_public_key() const { return options_.server_key->public_key(); }

  // Trust store administration. Changes are saved (atomically) before they
  // take effect. Errors: those of TrustStore::Add/Revoke/Save/Load.
  std::shared_ptr<const signing::TrustStore> trust() const;
  core::Status AddTrustedKey(signing::TrustedKey key);
  core::Status RevokeTrustedKey(std::string_view key_id);
  // Re-reads the trust file. kFailedPrecondition when kept in memory only.
  core::Status ReloadTrust();

 private:
  explicit Attestations(AttestationOptions options) : options_(std::move(options)) {}

  struct Verified;
  core::Result<Verified> Verify(const std::string& repo, const ResolvedVersion& version,
                                std::string_view document) const;
  core::Result<Added> Store(const std::string& repo, const ResolvedVersion& version,
                            std::string_view document, const Verified& verified);
  core::Result<AttestationRecord> ReadRecord(const std::string& repo, const core::Digest& version,
                                             std::string_view key, std::string_view value) const;
  std::string StatusNow(const AttestationRecord& record) const;

  AttestationOptions options_;
  mutable std::mutex trust_mu_;
  std::shared_ptr<const signing::TrustStore> trust_;
  std::mutex add_mu_;  // duplicate check, then the batch; before the log's own mutex
};

// The OpenSSF model-signing ROOT of a version's files ("files" method):
// layer titles and digests, skipping the default ignored paths and
// ignore_paths (path-component prefixes).
core::Result<core::Digest> ManifestModelRoot(const Manifest& manifest,
                                             const std::vector<std::string>& ignore_paths = {});

}  // namespace sigil::registry
