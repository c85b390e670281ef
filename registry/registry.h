// Registry: the domain service. Repositories, versions (manifests), aliases,
// labels, deletion and garbage collection, over a BlobStore and a MetaStore.
//
// Keys (MetaStore column families):
//   repos      <repo>                      -> {"created", "labels", "residency",
//                                              "anonymous_read" (absent: false)}
//   tags       <repo>\0v\0<version>       -> {"digest", "created", "state", "labels",
//                                              "size", "total_size"}
//   tags       <repo>\0a\0<alias>         -> {"digest", "updated", "version"}
//   tags       <repo>\0h\0<alias>\0<16 hex ~seq>
//                                         -> {"version", "digest", "previous_version",
//                                              "previous_digest"?, "micros", "by", "via",
//                                              "job_id", "vsa"?}: the alias's history,
//                                             seq counting from 1 per alias (inverted,
//                                             so a scan yields the newest first); a
//                                             deletion has an empty "version"
//   manifests  <repo>\0<digest>           -> {"version", "created", "versions"}
//                                             (which versions a digest is: "versions" in push
//                                             order, "version" the oldest, what a digest resolves to)
//
// A version name is immutable: the same manifest again is fine, a different
// one is kAlreadyExists (reason TAG_IMMUTABLE). Versions and aliases share
// one namespace per repository (a clash is kAlreadyExists, reason NAME_TAKEN).
// The manifest is itself a blob.
//
// Errors besides those named below: kInvalidArgument with NAME_INVALID,
// TAG_INVALID, LABEL_INVALID, RESIDENCY_INVALID, DIGEST_INVALID (a malformed "sha256:" ref),
// PAGE_TOKEN_INVALID, LIMIT_INVALID; kNotFound with REPO_UNKNOWN,
// VERSION_UNKNOWN, ALIAS_UNKNOWN; kDataLoss for damaged records.
//
// Access: every state-changing operation calls RequireAccess
// (registry/access.h) first, so one a route forgot to check is still refused
// (kPermissionDenied / kUnauthenticated) for the calling thread's principal.
// Reads (Resolve, List*, Get*) do not check: server threads and writes use
// them, and api/ checks reads before calling.
//
// Thread-safety: all methods may be called concurrently.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/digest.h"
#include "core/status.h"
#include "registry/manifest.h"
#include "storage/blob_store.h"
#include "storage/meta_store.h"

namespace sigil::registry {

enum class VersionState { kPending, kQuarantined, kAvailable };
std::string_view VersionStateName(VersionState state);  // "pending", ...

struct Residency {
  std::string region;
  std::string classification;
};

struct RepoInfo {
  std::string name;
  int64_t created_micros = 0;
  std::map<std::string, std::string> labels;
  Residency residency;
  uint64_t version_count = 0;
  // Whether anonymous callers may pull from the repository (registry/access.h).
  bool anonymous_read = false;
};

struct VersionInfo {
  std::string repo;
  std::string version;
  core::Digest digest;          // the manifest's
  uint64_t manifest_size = 0;
  int64_t created_micros = 0;
  VersionState state = VersionState::kAvailable;
  std::map<std::string, std::string> labels;
  std::vector<std::string> aliases;  // aliases pointing at this version
  uint64_t total_size = 0;           // sum of layer sizes
};

struct ResolvedVersion {
  VersionInfo info;
  std::string manifest_bytes;
  Manifest manifest;
};

struct AliasInfo {
  std::string name;
  core::Digest digest;
  std::string version;
  int64_t updated_micros = 0;
};

// Why an alias moved. Every move and deletion is recorded in the alias's
// history (MoveAlias, DeleteAlias), in the same WriteBatch as the move.
struct AliasMove {
  std::string by;      // the principal's name
  std::string via;     // "promotion", "override" (an admin), "import", "delete"
  std::string job_id;  // the promotion job, when via "promotion"
  std::optional<core::Digest> vsa;  // the VSA attestation's content digest
  // Compare-and-set: when set, the move happens only if the alias points at
  // this manifest digest now (nullopt inside: only if the alias is unset);
  // otherwise kAborted, reason ALIAS_MOVED, naming where it points now.
  std::optional<std::optional<core::Digest>> expect_current;
};

struct AliasEvent {
  std::string alias;
  std::string version;  // empty for a deletion
  core::Digest digest;  // zero for a deletion
  std::string previous_version;  // empty when the alias was unset
  std::optional<core::Digest> previous_digest;
  int64_t micros = 0;
  std::string by;
  std::string via;
  std::string job_id;
  std::optional<core::Digest> vsa;
};

template <typename T>
struct Page {
  std::vector<T> items;
  std::string next;  // opaque token for the following page; empty at the end
};

struct GcReport {
  uint64_t blobs_scanned = 0;
  uint64_t blobs_deleted = 0;
  uint64_t bytes_freed = 0;
  uint64_t blobs_kept_young = 0;  // unreferenced but within the grace period
};

struct RegistryOptions {
  storage::BlobStore* blobs = nullptr;
  storage::MetaStore* meta = nullptr;
  core::Clock* clock = core::Clock::Real();
  // Unreferenced blobs younger than this are kept by GC: a push uploads its
  // blobs before its manifest.
  int64_t gc_grace_micros = 3600ll * 1'000'000;
  // The state a new version starts in: kPending where a scanner decides it
  // (registry/scanning.h).
  VersionState new_version_state = VersionState::kAvailable;
};

class Registry {
 public:
  explicit Registry(RegistryOptions options);

  // Stores a version. Validates names and the manifest; every referenced blob
  // (config and layers) must exist with the stated size (kInvalidArgument,
  // reason BLOB_UNKNOWN, detail {"missing": [digests]}; size mismatch:
  // MANIFEST_INVALID). Creates the repository on first push. A manifest over
  // kMaxManifestBytes is kResourceExhausted, reason MANIFEST_TOO_LARGE.
  // The same manifest again returns the stored version (labels unchanged).
  core::Result<VersionInfo> PutVersion(std::string_view repo, std::string_view version,
                                       std::string_view manifest_bytes,
                                       const std::map<std::string, std::string>& labels = {});

  // ref: a version, an alias, or "sha256:..." (a manifest digest of this
  // repository). kNotFound (reason VERSION_UNKNOWN / REPO_UNKNOWN).
  core::Result<ResolvedVersion> Resolve(std::string_view repo, std::string_view ref);

  // Newest first. limit in [1, 1000].
  core::Result<Page<VersionInfo>> ListVersions(std::string_view repo, std::string_view page_token,
                                               size_t limit);
  // Ascending by name.
  core::Result<Page<RepoInfo>> ListRepos(std::string_view page_token, size_t limit);
  core::Result<RepoInfo> GetRepo(std::string_view repo);

  // Replaces the repository's labels and residency, creating the repository
  // if it has no version yet (so residency can be set before the first push).
  core::Status SetRepoMetadata(std::string_view repo, const std::map<std::string, std::string>& labels,
                               const Residency& residency);
  // Allows or refuses anonymous pulls, creating the repository if it has no
  // version yet. Needs the admin role.
  core::Status SetAnonymousRead(std::string_view repo, bool allowed);
  core::Status SetVersionLabels(std::string_view repo, std::string_view version,
                                const std::map<std::string, std::string>& labels);
  core::Status SetVersionState(std::string_view repo, std::string_view version, VersionState state);

  // ref as in Resolve, but never another alias name... an alias to an alias
  // is resolved to the version at the time it is set. An admin override:
  // MoveAlias via "override" by the calling principal.
  core::Result<AliasInfo> SetAlias(std::string_view repo, std::string_view alias, std::string_view ref);
  // SetAlias with a reason recorded in the alias's history, in the same
  // WriteBatch as the move. Access: via "promotion" needs kPromote, via
  // "override" or "import" kAdmin; any other via is kInvalidArgument
  // ALIAS_VIA_INVALID. An empty move.by records the calling principal's name
  // ("sigild" on a server thread). expect_current: kAborted ALIAS_MOVED,
  // detail {"alias", "current_version", "current_digest"?}.
  core::Result<AliasInfo> MoveAlias(std::string_view repo, std::string_view alias, std::string_view ref,
                                    const AliasMove& move);
  // The alias's moves, newest first, at most limit (1..1000). An alias never
  // set has an empty history (not an error, if the repository exists).
  core::Result<std::vector<AliasEvent>> AliasHistory(std::string_view repo, std::string_view alias,
                                                     size_t limit);
  core::Result<AliasInfo> GetAlias(std::string_view repo, std::string_view alias);
  // Records a "delete" event by the calling principal (as does DeleteVersion
  // for each alias it removes).
  core::Status DeleteAlias(std::string_view repo, std::string_view alias);
  core::Result<std::vector<AliasInfo>> ListAliases(std::string_view repo);

  // Deletes a version (and the aliases pointing at it); its blobs become
  // garbage unless another version references them.
  core::Status DeleteVersion(std::string_view repo, std::string_view version);

  // Deletes blobs that no version references and that are older than the
  // grace period. Safe while uploads and pushes run.
  core::Result<GcReport> CollectGarbage();

 private:
  RegistryOptions options_;
  // PutVersion holds it shared while it checks blobs and records the version;
  // the GC sweep holds it exclusive. Also serializes read-modify-writes.
  std::shared_mutex gc_mu_;
  std::mutex write_mu_;
};

}  // namespace sigil::registry
