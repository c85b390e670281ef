// Access control: API tokens, roles, repository scopes, sites, and the
// tamper-evident audit log.
//
// Tokens are created by an admin, shown once, and stored only as a SHA-256
// hash. A token is "sgl_<id>_<secret>": <id> is 16 hex digits naming the
// record, <secret> 43 base64url characters (32 random bytes, unpadded; the
// stored hash is SHA-256 of these 43 characters). Verification looks the
// record up by id and compares hashes in constant time; an unknown id still
// hashes the secret and compares, so a guess costs one lookup and learns
// nothing from timing.
//
// Roles are ordered; each includes the ones below it:
//   reader    pull: read versions, files, blobs, reports, attestations, jobs
//   pusher    push versions, attach attestations, run scans and evaluations
//   promoter  request promotions (move aliases)
//   admin     tokens, trust store, policies, deletion, GC, quarantine
//             override, the audit log
// A token is scoped to repository globs (signing::GlobMatch: "health/*",
// "**"); actions on a repository outside them are refused as if the role
// were missing. A token may carry a site and region (residency rules read
// them).
//
// Enforcement happens twice. api/ checks every route's action in one place
// before dispatch; the registry checks again inside each state-changing
// operation against the principal of the calling thread (PrincipalScope),
// so an operation a route forgot to check is still refused. Threads with no
// PrincipalScope are the server's own (scans, jobs) and are not limited.
// Reads are checked in api/ only: Registry::Resolve and the other read
// methods never check, because server threads and the writes themselves use
// them.
//
// Keys (MetaStore):
//   meta   token\0<id>  -> TokenRecord as JSON
//   audit  <16 hex micros>\0<16 hex log index> -> AuditEntry as JSON
// Every audit entry is also a transparency-log leaf ({"type":
// "sigil.audit/v1", ...}), written in the same batch, so history cannot be
// rewritten without the checkpoint showing it.
//
// Thread-safety: all methods may be called concurrently.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "attest/transparency_log.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/status.h"
#include "storage/meta_store.h"

namespace sigil::registry {

enum class Role { kReader = 0, kPusher = 1, kPromoter = 2, kAdmin = 3 };
std::string_view RoleName(Role role);  // "reader", "pusher", "promoter", "admin"
// Errors: kInvalidArgument ROLE_INVALID.
core::Result<Role> ParseRole(std::string_view name);

// What a request does; each needs a minimum role.
enum class Action {
  kPull,         // reader: any read of a repository's content or metadata
  kPush,         // pusher: uploads, versions, labels, attestations, scans, evaluations
  kPromote,      // promoter: move an alias
  kDelete,       // admin: delete a version or an alias
  kAdmin,        // admin: tokens, trust store, GC, quarantine override
  kAuditRead,    // admin: read the audit log
};
std::string_view ActionName(Action action);  // "pull", "push", "promote", "delete", "admin", "audit-read"
Role RequiredRole(Action action);

struct TokenRecord {
  std::string id;  // 16 hex
  std::string name;
  Role role = Role::kReader;
  std::vector<std::string> repos;  // globs; at least one
  std::string site;                // empty: none
  std::string region;
  int64_t created_micros = 0;
  int64_t expires_micros = 0;  // 0: never
  int64_t revoked_micros = 0;  // 0: not revoked
  int64_t last_used_micros = 0;
  std::string created_by;  // the admin token's name, or "bootstrap"
  std::string hash_hex;    // SHA-256 of the secret part
};

// Who is calling: a verified token, or anonymous.
struct Principal {
  bool anonymous = true;
  std::string token_id;
  std::string name;  // the token's name; "anonymous" otherwise
  Role role = Role::kReader;
  std::vector<std::string> repos;
  std::string site;
  std::string region;
};

// Whether principal may do action on repo (empty repo: an action on no
// repository, such as tokens or GC; only the role counts). The role is
// checked before the scope. Errors: kPermissionDenied with reason
// ROLE_INSUFFICIENT ("a reader token cannot push") or REPOSITORY_OUT_OF_SCOPE
// ("token ci-gate is scoped to health/*"); kUnauthenticated
// AUTHENTICATION_REQUIRED for an anonymous principal where anonymous access
// is not allowed (anonymous_read: the repository allows anonymous pulls).
core::Status Authorize(const Principal& principal, Action action, std::string_view repo,
                       bool anonymous_read = false);

// The calling thread's principal while alive (api/ installs one per request).
class PrincipalScope {
 public:
  explicit PrincipalScope(Principal principal);
  ~PrincipalScope();
  PrincipalScope(const PrincipalScope&) = delete;
  PrincipalScope& operator=(const PrincipalScope&) = delete;
  // The innermost scope's principal, or nullptr on a server thread.
  static const Principal* Current();

 private:
  Principal principal_;
  const PrincipalScope* outer_;  // the scope this one hides, restored on destruction
};

// For the registry's own operations: OK on a server thread (no scope),
// else Authorize(*Current(), action, repo).
core::Status RequireAccess(Action action, std::string_view repo);

struct NewToken {
  std::string name;  // [A-Za-z0-9._-]{1,64}, unique among live tokens
  Role role = Role::kReader;
  std::vector<std::string> repos = {"**"};
  std::string site;
  std::string region;
  int64_t expires_micros = 0;
};

struct CreatedToken {
  TokenRecord record;
  std::string token;  // "sgl_<id>_<secret>": shown once, never stored
};

struct AuditEntry {
  int64_t time_micros = 0;
  std::string token;  // the token's name, "anonymous", or "invalid-token"
  std::string role;   // empty when unauthenticated
  std::string site;
  std::string action;   // "push", "delete", "token.create", ... or the route
  std::string method;   // HTTP method
  std::string target;   // "repo:version", "repo", a path
  std::string repository;
  int status = 0;       // the HTTP status answered
  std::string result;   // "allowed" or "refused"
  std::string reason;   // the error reason when refused or failed
  uint64_t log_index = 0;
};

struct AuditQuery {
  std::string repository;  // exact; empty: all
  int64_t since_micros = 0;
  std::string action;  // exact; empty: all
  size_t limit = 1000;
};

struct AccessOptions {
  storage::MetaStore* meta = nullptr;
  attest::TransparencyLog* log = nullptr;
  core::Clock* clock = core::Clock::Real();
};

class AccessControl {
 public:
  // Errors: kInvalidArgument for missing options.
  static core::Result<std::unique_ptr<AccessControl>> Open(AccessOptions options);

  // Errors: kInvalidArgument TOKEN_INVALID (bad name, no repos, bad glob --
  // globs use repository-name characters and '*', '?' --, site or region
  // not [A-Za-z0-9._-]{0,64}, expiry not in the future); kAlreadyExists
  // TOKEN_NAME_TAKEN.
  core::Result<CreatedToken> CreateToken(const NewToken& spec, std::string_view created_by);
  // Registers a token whose full text is given (the bootstrap token read
  // from a file): role admin, repos "**", created_by "bootstrap". The same
  // text and name again (a restart) returns the stored record. Errors as
  // CreateToken, TOKEN_INVALID for text not of the "sgl_<id>_<secret>" form,
  // and kAlreadyExists TOKEN_ID_TAKEN when the id is stored otherwise
  // (another secret or name, or revoked).
  core::Result<TokenRecord> ImportToken(std::string_view name, std::string_view token_text);
  // Live, expired and revoked tokens, by name (then creation); never the
  // secrets.
  core::Result<std::vector<TokenRecord>> ListTokens();
  // Takes effect at once. An id is matched before a name; of tokens sharing
  // a name, the live one (else the newest). Revoking a revoked token returns
  // it unchanged. Errors: kNotFound TOKEN_UNKNOWN (by name or id).
  core::Result<TokenRecord> RevokeToken(std::string_view name_or_id);
  // Whether any live admin token exists (bootstrap on first start).
  core::Result<bool> HasAdmin();

  // The principal of an "Authorization: Bearer" token text. Updates
  // last-used (at most once a minute per token; a failed update does not
  // fail the call). Revocation is checked before expiry, both only once the
  // secret matched. Errors: kUnauthenticated
  // TOKEN_INVALID (malformed or unknown: the same answer), TOKEN_EXPIRED,
  // TOKEN_REVOKED.
  core::Result<Principal> Authenticate(std::string_view token_text);

  // Sets the time from the clock and appends to the transparency log and the
  // audit family in one batch (both or neither); returns the entry with its
  // log index. String fields are clipped to 1024 bytes so an entry always
  // fits a leaf.
  core::Result<AuditEntry> Record(AuditEntry entry);
  // Oldest first, at most query.limit (the latest ones; 0: none).
  core::Result<std::vector<AuditEntry>> Query(const AuditQuery& query);

 private:
  explicit AccessControl(AccessOptions options) : options_(std::move(options)) {}

  core::Result<std::vector<TokenRecord>> LoadAll();
  // REQUIRES: mu_ held.
  core::Status CheckNameFree(std::string_view name, int64_t now);
  core::Result<TokenRecord> Store(TokenRecord record);
  void NoteUse(const TokenRecord& record, int64_t now);

  AccessOptions options_;
  // Serializes token read-modify-writes (create, revoke, last-used), so a
  // last-used update never writes back a token revoked meanwhile.
  std::mutex mu_;
  std::unordered_map<std::string, int64_t> last_used_written_;  // id -> micros; under mu_
};

core::Json TokenToJson(const TokenRecord& record);  // without hash_hex
core::Json AuditEntryToJson(const AuditEntry& entry);

}  // namespace sigil::registry
