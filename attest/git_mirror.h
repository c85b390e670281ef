// Git provenance: checks, in a local mirror of the training code (libgit2,
// read-only), that a commit a provenance statement names exists, which
// branches reach it, and whether it carries a valid SSH signature.
//
// Mirrors: a source repository URI maps to a directory under the mirror root
// by dropping the scheme, any user@ (and password), the port and a trailing
// ".git"; the host is lower-cased:
//   https://git.example.org/health/train.git      -> <root>/git.example.org/health/train
//   git@git.example.org:health/train.git          -> <root>/git.example.org/health/train
//   ssh://git@git.example.org:22/health/train     -> <root>/git.example.org/health/train
// Schemes: https, http, ssh, git (each also as git+<scheme>, as SLSA writes
// them), and scp-like [user@]host:path (an absolute
// path there is taken relative to the host's directory). Refused with
// kInvalidArgument SOURCE_URI_INVALID: file:// and other schemes, an empty or
// malformed host (IPv6 literals included), no path, empty, "." or ".."
// components (also after ".git" is dropped), '%', a backslash, '?', '#', control
// characters and NUL, and URIs over 2048 bytes.
// CheckCommit opens a bare or non-bare repository at <path>, else at
// <path>.git (`git clone --mirror` makes the latter). Only that directory is
// opened: an enclosing repository is never used instead.
//
// Branches: local branches (refs/heads/*) whose tip is the commit or a
// descendant of it. In a `git clone --mirror` every upstream branch is local;
// in an ordinary clone only the checked-out one is.
//
// Signatures: a commit's "gpgsig" header holding an SSH signature (SSHSIG,
// namespace "git", sha256 or sha512, ssh-ed25519 or ecdsa-sha2-nistp256 keys)
// is verified over the commit without that header, as git does. OpenPGP and
// X.509 signatures are reported as signed but not verifiable. Any signature,
// valid or not, leaves a reason in `detail` when it does not verify; a
// malformed one never fails the call. Limits: signatures over 64 KiB and
// commit objects over 4 MiB are not verified (detail says so).
// Which keys are allowed is not decided here: policies compare signer_key
// with a policy's "signers".
//
// libgit2 reads no global or system git configuration, and checks no
// directory ownership (mirrors are often refreshed by another account; only
// objects and refs are read, nothing is run).
//
// Thread-safety: functions may be called concurrently (each opens its own
// repository handle; libgit2 is initialized once).
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
  std::string signer_key;       // "<type> <base64 key blob>" when valid, as in a
                                // .pub file without its comment
  std::string detail;           // what is missing, phrased to follow a colon in a
                                // decision's reason: "the object is a blob, not a
                                // commit", "the commit is not signed", why the
                                // signature is invalid; empty when valid or when
                                // the object is simply not in the mirror
};

// The mirror directory for a source URI, without any ".git" suffix (it may
// not exist; no I/O). Errors: kInvalidArgument SOURCE_URI_INVALID; kNotFound
// MIRROR_UNKNOWN when root is empty (no mirrors configured).
core::Result<std::string> MirrorPathFor(std::string_view root, std::string_view source_uri);

// Errors: kNotFound MIRROR_UNKNOWN (no repository at the mapped path, or an
// empty mirror_root); kInvalidArgument COMMIT_INVALID (not 40 hex digits,
// either case), SOURCE_URI_INVALID; kFailedPrecondition MIRROR_UNREADABLE
// when libgit2 fails on a damaged repository. A commit missing from the
// mirror, or an object that is not a commit, is not an error: exists = false
// (detail says when it is another kind of object). The MIRROR_UNKNOWN message
// names the expected path below the root, never the root itself.
core::Result<CommitCheck> CheckCommit(std::string_view mirror_root, std::string_view source_uri,
                                      std::string_view commit);

}  // namespace sigil::attest
