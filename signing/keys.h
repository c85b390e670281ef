// Signing keys: ECDSA P-256 (default) and P-384 through OpenSSL, Ed25519
// through libsodium. Keys live in PEM files: SPKI for public keys, PKCS#8 for
// private keys (encrypted with a passphrase, or plain and then only readable
// when the file grants nothing to group or others).
//
// Key id: hex(sha256(PEM text of the SPKI)), the PEM as OpenSSL writes it
// (64-column lines, trailing newline). This is the public-key hint that
// Sigstore bundles and OpenSSF model signing use.
//
// Signatures: ECDSA is emitted DER-encoded over SHA-256 (P-256) or SHA-384
// (P-384); Verify accepts DER and raw r||s. Ed25519 signatures are 64 bytes.
//
// Thread-safety: PublicKey and PrivateKey are immutable after creation and
// cheap to copy (shared state); any number of threads may sign or verify
// with the same object.
//
// Private key material is never logged and never serialized except by
// SavePrivateKey into its own file: PrivateKey has no printing or PEM export.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/status.h"

namespace sigil::signing {
namespace internal {
struct KeyAccess;  // keys.cc: builds keys from OpenSSL and libsodium objects
}  // namespace internal

enum class Algorithm {
  kEcdsaP256Sha256,
  kEcdsaP384Sha384,
  kEd25519,
};

// "ecdsa-p256-sha256", "ecdsa-p384-sha384", "ed25519".
std::string_view AlgorithmName(Algorithm algorithm);
// Inverse of AlgorithmName. Errors: kInvalidArgument, reason "KEY_ALGORITHM".
core::Result<Algorithm> ParseAlgorithm(std::string_view name);

class PublicKey {
 public:
  // Parses one SPKI PEM block ("BEGIN PUBLIC KEY").
  // Errors: kInvalidArgument with reason "KEY_INVALID" (not PEM, not a key)
  // or "KEY_UNSUPPORTED" (another algorithm or curve).
  static core::Result<PublicKey> FromPem(std::string_view pem);
  // An Ed25519 key from its 32 raw bytes. Errors: kInvalidArgument "KEY_INVALID".
  static core::Result<PublicKey> FromRawEd25519(std::string_view raw);
  // An ECDSA key from its uncompressed point (0x04 || X || Y) on the curve of
  // `algorithm` (as SSH and raw() carry it). Errors: kInvalidArgument
  // "KEY_INVALID" (wrong length, not on the curve) or "KEY_UNSUPPORTED"
  // (algorithm is not ECDSA).
  static core::Result<PublicKey> FromEcPoint(Algorithm algorithm, std::string_view point);

  Algorithm algorithm() const;
  // Canonical SPKI PEM as OpenSSL writes it.
  const std::string& pem() const;
  // hex(sha256(pem())).
  const std::string& key_id() const;
  // Ed25519: the 32-byte key. ECDSA: the uncompressed point (0x04 || X || Y).
  const std::string& raw() const;

  // Checks signature over message. OK when valid; kUnauthenticated with
  // reason "SIGNATURE_INVALID" otherwise (including malformed signatures).
  core::Status Verify(std::string_view message, std::string_view signature) const;

  bool operator==(const PublicKey& other) const { return key_id() == other.key_id(); }

  struct Impl;

 private:
  friend struct internal::KeyAccess;
  explicit PublicKey(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
};

class PrivateKey {
 public:
  // A fresh key from the system's secure random source.
  static core::Result<PrivateKey> Generate(Algorithm algorithm = Algorithm::kEcdsaP256Sha256);
  // Parses a PKCS#8 PEM block, encrypted ("BEGIN ENCRYPTED PRIVATE KEY", needs
  // passphrase) or not ("BEGIN PRIVATE KEY"; passphrase ignored).
  // Errors: kInvalidArgument "KEY_INVALID" / "KEY_UNSUPPORTED";
  // kFailedPrecondition "PASSPHRASE_REQUIRED" for an encrypted key and an
  // empty passphrase; kUnauthenticated "PASSPHRASE_WRONG" when decryption fails.
  static core::Result<PrivateKey> FromPem(std::string_view pem, std::string_view passphrase = {});

  Algorithm algorithm() const;
  const PublicKey& public_key() const;
  const std::string& key_id() const { return public_key().key_id(); }

  // Signs message: DER ECDSA over the curve's hash, or a 64-byte Ed25519
  // signature. Errors: kInternal from the crypto library.
  core::Result<std::string> Sign(std::string_view message) const;

  struct Impl;

 private:
  friend core::Status SavePrivateKey(const PrivateKey& key, const std::string& path,
                                     std::string_view passphrase);
  friend struct internal::KeyAccess;
  explicit PrivateKey(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
};

// Writes the key as PKCS#8 PEM, mode 0600, atomically (temp file, fsync,
// rename). A non-empty passphrase encrypts it (PBES2, AES-256-CBC).
core::Status SavePrivateKey(const PrivateKey& key, const std::string& path,
                            std::string_view passphrase);
// Reads a private key file. An unencrypted key file whose mode grants any
// permission to group or others is refused with kPermissionDenied, reason
// "KEY_FILE_MODE". Other errors as PrivateKey::FromPem, or from reading.
core::Result<PrivateKey> LoadPrivateKey(const std::string& path, std::string_view passphrase);

// Writes the SPKI PEM (mode 0644, atomically).
core::Status SavePublicKey(const PublicKey& key, const std::string& path);
core::Result<PublicKey> LoadPublicKey(const std::string& path);

// Where callers find the passphrase for a key file.
inline constexpr char kPassphraseEnv[] = "SIGIL_KEY_PASSPHRASE";
// $SIGIL_KEY_PASSPHRASE when set; otherwise the contents of passphrase_file
// (one trailing newline removed) when a path is given; otherwise "".
core::Result<std::string> ReadPassphrase(const std::string& passphrase_file = {});

}  // namespace sigil::signing
