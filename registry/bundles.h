// Bundles: moving verified models across an air gap.
//
// A bundle is a tar file in OCI image layout (oci-layout, index.json,
// blobs/sha256/<hex>) that the client writes (cli/) from an export plan the
// server makes, and reads back on the other side to upload its blobs and
// submit its plan. The plan is itself a blob in the bundle, named in
// index.json with artifactType kBundleArtifactType:
//
//   {"schema": 1, "origin", "site", "region", "to_region", "created",
//    "checkpoint": "<signed note of the exporting log>",
//    "versions": [{"repository", "version", "digest", "labels", "blobs": [...]}],
//    "attestations": [{"repository", "version_digest", "content_digest",
//                      "predicate_type", "log_index", "leaf", "inclusion": [hex]}],
//    "aliases": [{"repository", "alias", "version", "digest", "vsa"}],
//    "blobs": [{"digest", "size"}],      // every blob the bundle carries
//    "omitted": ["sha256:..."],          // blobs left out by --since
//    "notes": ["..."]}                   // optional: e.g. an alias exported
//                                        // as its version only
//
// Each attestation's inclusion proof is against the one "checkpoint",
// signed after every attestation was listed. An alias ref carries the alias
// when its latest history event (Registry::AliasHistory) moved it to its
// current digest with a VSA; otherwise only its version, with a note.
//
// Export (the exporting server): needs pull access to every ref; refs are
// "repo:ref" (a version or an alias). Each repository's residency export
// rule must allow to_region (PolicyStore::CheckResidency, action kExport:
// kPermissionDenied RESIDENCY_DENIED otherwise). `since` lists blobs the
// other side already has; they are named in "omitted" and not carried.
//
// Import (the receiving server), all-or-nothing: every blob the plan names
// must be in the local blob store already (uploaded by the client; content
// addressed, so invisible until referenced) or named in "omitted" and
// present; every manifest must parse and reference only those blobs; the
// checkpoint must verify against a peer log key (ImportOptions::peer_logs)
// and every attestation's leaf must be included in it (RFC 6962 proof) and
// describe that attestation; every attestation must verify against the local
// trust store exactly as Attestations::Add does; every alias needs a VSA
// among them that PASSED for that digest and stage (verified level
// SIGIL_STAGE_<ALIAS>, named as Promotions names it); the local residency
// store rule must allow each repository here; no version name of the plan
// may name another manifest (TAG_IMMUTABLE) or an alias (NAME_TAKEN) here.
// Only then is anything written.
//
// Writes, in this order, each step idempotent: the versions
// (Registry::PutVersion; a version already here is skipped), the
// attestations (Attestations::Add: verified again, each one WriteBatch with
// its leaf in THIS server's log; one already attached is skipped), then the
// aliases (Registry::MoveAlias via "import" with the VSA digest; an alias
// already at its digest is skipped). Not one batch: a crash (kill -9)
// between steps can leave versions without some of their attestations or
// aliases, never an attestation without its version nor an alias without
// its VSA; Recover (at the next start) or importing the same plan again
// completes it. Imports are
// serialized with one another; a concurrent push of a clashing name between
// the checks and the writes fails the write step with its own error.
// Importing the same plan twice changes nothing the second time.
// Needs push access on every repository of the plan, and admin for aliases
// (the route needs admin).
//
// Errors of Import: kInvalidArgument BUNDLE_INVALID (malformed plan),
// BLOB_UNKNOWN (detail {"missing": [...]}), DIGEST_MISMATCH;
// kPermissionDenied CHECKPOINT_UNTRUSTED, PROOF_INVALID, KEY_UNTRUSTED (and
// the other Attestations::Add reasons), VSA_MISSING, RESIDENCY_DENIED.
// The message names the part at fault ("attestation 3 of health/x@sha256:..").
//
// Thread-safety: all methods may be called concurrently.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "attest/checkpoint.h"
#include "attest/transparency_log.h"
#include "core/clock.h"
#include "core/digest.h"
#include "core/json.h"
#include "core/status.h"
#include "registry/attestations.h"
#include "registry/policy_store.h"
#include "registry/registry.h"
#include "storage/blob_store.h"
#include "storage/meta_store.h"

namespace sigil::registry {

inline constexpr std::string_view kBundleArtifactType = "application/vnd.sigil.bundle.v1+json";
inline constexpr size_t kMaxBundlePlanBytes = 16 << 20;

struct BundlesOptions {
  Registry* registry = nullptr;
  storage::BlobStore* blobs = nullptr;
  storage::MetaStore* meta = nullptr;
  Attestations* attestations = nullptr;
  attest::TransparencyLog* log = nullptr;
  PolicyStore* policies = nullptr;
  core::Clock* clock = core::Clock::Real();
  std::string origin;  // this server's log origin
  std::string site;    // this server's site and region (config)
  std::string region;
  // Checkpoint keys of the sites whose bundles this server accepts.
  std::vector<attest::NoteVerifier> peer_logs;
};

struct ExportRequest {
  std::vector<std::string> refs;   // "repo:ref"
  std::string to_region;
  std::vector<core::Digest> since;  // blobs the other side has
};

struct ImportSummary {
  size_t versions_added = 0;
  size_t attestations_added = 0;
  size_t aliases_moved = 0;
  bool changed = false;  // false: everything was already here
  // The versions this import stored (for the caller to scan, as pushes are).
  std::vector<VersionInfo> added;
};

class Bundles {
 public:
  explicit Bundles(BundlesOptions options) : options_(std::move(options)) {}

  // The plan (JSON above). Needs pull access on each ref's repository
  // (RequireAccess). Errors: those of Resolve, RESIDENCY_DENIED,
  // kInvalidArgument BUNDLE_INVALID (no refs, bad ref, no to_region).
  core::Result<core::Json> Export(const ExportRequest& request);
  core::Result<ImportSummary> Import(std::string_view plan_json);
  // Completes the imports a crash interrupted. Once a plan has verified,
  // Import records it (meta column family, key import\0<plan digest>)
  // before its first write and deletes the record after its last, so what a
  // kill -9 cut short is imported again here, verified again, at the next
  // start. Returns what was added (the caller queues their scans). A plan
  // that no longer verifies (its keys were revoked meanwhile) is logged and
  // stays recorded; importing it again by hand completes and clears it.
  core::Result<ImportSummary> Recover();

 private:
  BundlesOptions options_;
  std::mutex import_mu_;  // one import writes at a time
};

}  // namespace sigil::registry
