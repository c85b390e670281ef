// The trust store: which public keys sigil trusts, and for what.
//
// File format (JSON):
//   {"keys": [{"id": "<hex sha256 of the SPKI PEM>",
//              "name": "ci-release",                       (optional label)
//              "algorithm": "ecdsa-p256-sha256",
//              "public_key": "-----BEGIN PUBLIC KEY-----\n...",
//              "predicate_types": ["https://slsa.dev/provenance/v1", "*"],
//              "repositories": ["health/*", "**"],
//              "stages": ["staging", "production"],
//              "revoked_at": "2026-11-01T00:00:00Z"}]}   (optional)
// The id and algorithm must agree with the key. An empty list allows
// nothing; "*" in predicate_types or stages allows anything.
// Repository globs: '*' matches within one path segment, '**' across
// segments, '?' one character other than '/'.
//
// Revocation: a key whose revoked_at is at or before the time of the query
// is not returned by any query, so its signatures no longer count. Without
// a trusted timestamp there is no "signed before revocation".
//
// Thread-safety: const methods may be called concurrently; mutation
// (Add/Revoke/Reload) needs external synchronisation. Callers that share a
// store across threads keep an immutable snapshot (shared_ptr<const
// TrustStore>) and swap it after Reload on a copy.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "signing/keys.h"

namespace sigil::signing {

struct TrustedKey {
  PublicKey key;
  std::string name;
  std::vector<std::string> predicate_types;
  std::vector<std::string> repositories;
  std::vector<std::string> stages;
  std::optional<int64_t> revoked_at_micros;

  const std::string& id() const { return key.key_id(); }
  bool RevokedAt(int64_t now_micros) const {
    return revoked_at_micros.has_value() && *revoked_at_micros <= now_micros;
  }
};

// What a signature is being accepted for. Empty stage: stages not checked.
struct TrustQuery {
  std::string predicate_type;
  std::string repository;
  std::string stage;
};

class TrustStore {
 public:
  TrustStore() = default;

  // Errors: kInvalidArgument, reason "TRUST_STORE_INVALID" (or the key's
  // own reason), naming the offending entry.
  static core::Result<TrustStore> Parse(std::string_view json);
  // Parse of a file; remembers the path for Reload.
  static core::Result<TrustStore> Load(const std::string& path);

  std::string Serialize() const;
  // Writes atomically and remembers the path for Reload.
  core::Status Save(const std::string& path);
  // Re-reads the remembered file. On error the store is unchanged.
  // Errors: kFailedPrecondition when no path is known; those of Load.
  core::Status Reload();

  // Errors: kAlreadyExists for a key id already present.
  core::Status Add(TrustedKey key);
  // Errors: kNotFound.
  core::Status Revoke(std::string_view key_id, int64_t at_micros);

  const TrustedKey* Find(std::string_view key_id) const;
  const std::vector<TrustedKey>& keys() const { return keys_; }

  // Keys that may sign for query at now_micros: not revoked, predicate type
  // allowed, repository matched by a glob, stage allowed when asked.
  std::vector<PublicKey> KeysFor(const TrustQuery& query, int64_t now_micros) const;

  // Why one key may or may not sign for query. Errors: kNotFound
  // "KEY_UNTRUSTED", kPermissionDenied "KEY_REVOKED", kPermissionDenied
  // "KEY_NOT_ALLOWED" (naming the predicate type, repository or stage).
  core::Status CheckAllowed(std::string_view key_id, const TrustQuery& query,
                            int64_t now_micros) const;

 private:
  std::vector<TrustedKey> keys_;
  std::string path_;
};

// Glob match for repository names (see above).
bool GlobMatch(std::string_view pattern, std::string_view text);

}  // namespace sigil::signing
