// C2SP tlog-checkpoint in the C2SP signed-note format, signed with Ed25519.
//
//   <origin>\n<size>\n<base64 root>\n[extension lines\n]
//   \n
//   — <name> <base64(key id (4 bytes) || signature (64 bytes))>\n   (one or more)
//
// The signature covers the body including its final newline. Ed25519 key id
// = first 4 bytes of SHA-256(name || 0x0A || 0x01 || public key (32 bytes)).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "attest/merkle.h"
#include "core/status.h"
#include "signing/keys.h"

namespace sigil::attest {

struct Checkpoint {
  std::string origin;
  uint64_t size = 0;
  MerkleHash root{};
  // Optional extension lines (without their newline), after the root.
  std::vector<std::string> extensions;
};

// The note body: "origin\nsize\nbase64(root)\n" plus extension lines.
// Errors: kInvalidArgument when the origin or an extension is empty or holds
// a newline.
core::Result<std::string> CheckpointBody(const Checkpoint& checkpoint);

// The 4-byte key id of an Ed25519 note key.
std::array<uint8_t, 4> NoteKeyId(std::string_view name, const signing::PublicKey& key);

// A verifier's key in the note ecosystem's text form:
// "<name>+<hex key id>+<base64(0x01 || public key)>".
core::Result<std::string> NoteVerifierKey(std::string_view name, const signing::PublicKey& key);

struct NoteVerifier {
  std::string name;
  signing::PublicKey key;
};
// Parses the text form above, checking that the key id matches.
// Errors: kInvalidArgument, reason "NOTE_KEY_INVALID".
core::Result<NoteVerifier> ParseNoteVerifierKey(std::string_view text);

// Signs a checkpoint: body, blank line, one signature line.
// REQUIRES: key.algorithm() == kEd25519 (else kInvalidArgument), name
// non-empty without spaces, '+' or newlines.
core::Result<std::string> SignCheckpoint(const Checkpoint& checkpoint, std::string_view name,
                                         const signing::PrivateKey& key);

// Verifies a C2SP signed note of any content and returns its text (the
// body, with its final newline). Signature lines by keys not in verifiers
// are ignored; at least one must verify with a known verifier (matched by
// name and key id).
// Errors: kInvalidArgument "NOTE_INVALID" (malformed), kUnauthenticated
// "CHECKPOINT_UNKNOWN_KEY", kUnauthenticated "SIGNATURE_INVALID".
core::Result<std::string> VerifyNote(std::string_view note, const std::vector<NoteVerifier>& verifiers);

// Parses a signed checkpoint and verifies it. Signature lines by keys not
// in verifiers are ignored; at least one line must verify with a known
// verifier (matched by name and key id). The origin must be
// expected_origin.
// Errors: kInvalidArgument "NOTE_INVALID" (malformed note),
// kInvalidArgument "CHECKPOINT_INVALID" (malformed body),
// kUnauthenticated "CHECKPOINT_ORIGIN" (another log's checkpoint),
// kUnauthenticated "CHECKPOINT_UNKNOWN_KEY" (no signature by a known key),
// kUnauthenticated "SIGNATURE_INVALID" (a known key's signature is wrong).
core::Result<Checkpoint> VerifyCheckpoint(std::string_view note, std::string_view expected_origin,
                                          const std::vector<NoteVerifier>& verifiers);

// Parses the body only (no signature check).
core::Result<Checkpoint> ParseCheckpointBody(std::string_view body);

}  // namespace sigil::attest
