// `sigil key ...` and the key files the signing commands read.
//
//   sigil key generate --type ecdsa-p256|ecdsa-p384|ed25519 --out NAME
//     writes NAME.key (PKCS#8 PEM, mode 0600, encrypted when a passphrase is
//     given) and NAME.pub (SPKI PEM); returns the key id.
//   sigil key server --trusted-keys FILE
//     fetches GET /api/v1/keys/server and adds the server's attestation key
//     (for the predicate types the server issues, every repository) and its
//     log verifier key to the trusted-keys file, creating it when absent.
//   sigil key trust PUB.pem --trusted-keys FILE --predicate-type T... --repository G...
//     adds a public key to the trusted-keys file.
//
// Passphrases come from $SIGIL_KEY_PASSPHRASE, else --passphrase-file
// (signing::ReadPassphrase), for writing and for reading private keys.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "cli/http_client.h"
#include "core/status.h"
#include "signing/keys.h"

namespace sigil::cli {

// "ecdsa-p256" (or the algorithm's full name "ecdsa-p256-sha256"),
// "ecdsa-p384", "ed25519". kInvalidArgument "KEY_ALGORITHM" otherwise.
core::Result<signing::Algorithm> ParseKeyType(std::string_view type);

// Generates a key and writes out + ".key" and out + ".pub". Refuses to
// overwrite either file (kAlreadyExists). Returns the key id.
core::Result<std::string> GenerateKeyFiles(signing::Algorithm algorithm, const std::string& out,
                                           const std::string& passphrase_file);

// Loads a private key file with the passphrase from the usual sources.
core::Result<signing::PrivateKey> LoadSigningKey(const std::string& path, const std::string& passphrase_file);

// Adds the server's keys to the trusted-keys file (see verify.h for the
// format); keys already present are kept. Returns a line per key added.
core::Result<std::string> TrustServerKeys(HttpClient& http, std::chrono::milliseconds retry_budget,
                                          const std::string& trusted_keys_path);

// Adds a public key to the trusted-keys file.
core::Result<std::string> TrustPublicKey(const std::string& public_key_path, const std::string& name,
                                         const std::vector<std::string>& predicate_types,
                                         const std::vector<std::string>& repositories,
                                         const std::string& trusted_keys_path);

}  // namespace sigil::cli
