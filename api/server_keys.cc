#include "api/server_keys.h"

#include "core/fs.h"
#include "core/log.h"

namespace sigil::api {
namespace {

core::Result<signing::PrivateKey> LoadOrCreate(const std::string& dir, const std::string& name,
                                               signing::Algorithm algorithm, const std::string& passphrase) {
  std::string key_path = core::JoinPath(dir, name + ".key");
  std::string pub_path = core::JoinPath(dir, name + ".pub");
  if (core::PathExists(key_path)) {
    ASSIGN_OR_RETURN(signing::PrivateKey key, signing::LoadPrivateKey(key_path, passphrase));
    if (key.algorithm() != algorithm) {
      return core::InvalidArgument(
          key_path + " holds an " + std::string(signing::AlgorithmName(key.algorithm())) +
          " key; the server needs " + std::string(signing::AlgorithmName(algorithm)));
    }
    if (!core::PathExists(pub_path)) RETURN_IF_ERROR(signing::SavePublicKey(key.public_key(), pub_path));
    return key;
  }
  ASSIGN_OR_RETURN(signing::PrivateKey key, signing::PrivateKey::Generate(algorithm));
  RETURN_IF_ERROR(signing::SavePrivateKey(key, key_path, passphrase));
  RETURN_IF_ERROR(signing::SavePublicKey(key.public_key(), pub_path));
  SIGIL_LOG(kInfo) << "created server " << name << " key " << key.key_id() << " in " << key_path
                   << (passphrase.empty() ? " (mode 0600)" : " (encrypted)");
  return key;
}

}  // namespace

core::Result<ServerKeys> LoadOrCreateServerKeys(const std::string& keys_dir, const std::string& passphrase) {
  RETURN_IF_ERROR(core::MakeDirs(keys_dir, 0700));
  ASSIGN_OR_RETURN(signing::PrivateKey attestation,
                   LoadOrCreate(keys_dir, "attestation", signing::Algorithm::kEcdsaP256Sha256, passphrase));
  ASSIGN_OR_RETURN(signing::PrivateKey log,
                   LoadOrCreate(keys_dir, "log", signing::Algorithm::kEd25519, passphrase));
  return ServerKeys{std::move(attestation), std::move(log)};
}

}  // namespace sigil::api
