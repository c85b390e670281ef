// Git provenance: checks, in a local mirror of the training code (libgit2,
// read-only), that a commit a provenance statement names exists, which
// branches reach it, and whether it carries a valid SSH signature.
//
// Mirrors: a source repository URI maps to a directory under the mirror root
// by dropping the scheme, any user@ and a trailing ".git":
//   https://git.example.org/health/train.git -> <root>/git.example.org/health/train(.git)
//   git@git.example.org:health/train.git     -> <root>/git.example.org/health/train(.git)
// A bare or non-bare repository at either path is used; ".." components or
// an empty host are refused (kInvalidArgument SOURCE_URI_INVALID).
//
// Signatures: a commit's "gpgsig" header holding an SSH signature (SSHSIG,
// namespace "git", sha256 or sha512, ssh-ed25519 or ecdsa-sha2-nistp256 keys)
// is verified over the commit without that header, as git does. OpenPGP and
// X.509 signatures are reported as signed but not verifiable.
//
// Thread-safety: functions may be called concurrently (each opens its own
// repository handle).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace sigil::attest {

struct CommitCheck {
  std::string commit;           // 40 hex, as asked
  bool exists = false;          // the object exists and is a commit
  std::vector<std::string> reachable_from;  // local branch names ("main"), sorted
  bool signed_commit = false;   // has a signature header
  bool signature_valid = false; // an SSH signature that verifies over the commit
  std::string signer_key;       // "ssh-ed25519 AAAA..." when valid
  std::string detail;           // why not valid, for the decision's reason
};

// The mirror directory for a source URI (it may not exist).
core::Result<std::string> MirrorPathFor(std::string_view root, std::string_view source_uri);

// Errors: kNotFound MIRROR_UNKNOWN (no repository at the mapped path);
// kInvalidArgument COMMIT_INVALID (not 40 hex), SOURCE_URI_INVALID. A commit
// missing from the mirror is not an error: exists = false.
core::Result<CommitCheck> CheckCommit(std::string_view mirror_root, std::string_view source_uri,
                                      std::string_view commit);

}  // namespace sigil::attest
