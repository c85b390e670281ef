// The server's own keys, under <data>/keys/: an ECDSA P-256 key for the
// attestations sigild issues (attestation.key, attestation.pub) and an
// Ed25519 key for transparency log checkpoints (log.key, log.pub). Created
// on first start; private key files are written mode 0600, encrypted when
// a passphrase is given ($SIGIL_KEY_PASSPHRASE). No route ever returns them.
#pragma once

#include <string>

#include "core/status.h"
#include "signing/keys.h"

namespace sigil::api {

struct ServerKeys {
  signing::PrivateKey attestation;
  signing::PrivateKey log;
};

// Loads both keys from keys_dir, creating any that is missing.
// Errors: those of reading, parsing (PASSPHRASE_REQUIRED, PASSPHRASE_WRONG,
// KEY_FILE_MODE) and writing key files; kInvalidArgument when a file holds
// a key of the wrong algorithm.
core::Result<ServerKeys> LoadOrCreateServerKeys(const std::string& keys_dir, const std::string& passphrase);

}  // namespace sigil::api
