#include "cli/keys_command.h"

#include <nlohmann/json.hpp>

#include "cli/verify.h"
#include "core/fs.h"
#include "core/json.h"

namespace sigil::cli {

core::Result<signing::Algorithm> ParseKeyType(std::string_view type) {
  if (type == "ecdsa-p256") return signing::Algorithm::kEcdsaP256Sha256;
  if (type == "ecdsa-p384") return signing::Algorithm::kEcdsaP384Sha384;
  auto algorithm = signing::ParseAlgorithm(type);
  if (!algorithm.ok()) {
    return core::InvalidArgument(
        "key type '" + std::string(type.substr(0, 100)) + "' is not ecdsa-p256, ecdsa-p384 or ed25519",
        "KEY_ALGORITHM");
  }
  return algorithm;
}

core::Result<std::string> GenerateKeyFiles(signing::Algorithm algorithm, const std::string& out,
                                           const std::string& passphrase_file) {
  const std::string key_path = out + ".key", pub_path = out + ".pub";
  for (const std::string& p : {key_path, pub_path}) {
    if (core::PathExists(p)) return core::AlreadyExists(p + " exists; not overwriting a key");
  }
  ASSIGN_OR_RETURN(std::string passphrase, signing::ReadPassphrase(passphrase_file));
  ASSIGN_OR_RETURN(signing::PrivateKey key, signing::PrivateKey::Generate(algorithm));
  RETURN_IF_ERROR(signing::SavePrivateKey(key, key_path, passphrase));
  RETURN_IF_ERROR(signing::SavePublicKey(key.public_key(), pub_path));
  return key.key_id();
}

core::Result<signing::PrivateKey> LoadSigningKey(const std::string& path,
                                                 const std::string& passphrase_file) {
  ASSIGN_OR_RETURN(std::string passphrase, signing::ReadPassphrase(passphrase_file));
  auto key = signing::LoadPrivateKey(path, passphrase);
  if (!key.ok()) return key.status().Annotate(path);
  return key;
}

namespace {

core::Result<TrustedKeys> LoadOrEmpty(const std::string& path) {
  if (!core::PathExists(path)) return TrustedKeys{};
  return TrustedKeys::Load(path);
}

}  // namespace

core::Result<std::string> TrustServerKeys(HttpClient& http, std::chrono::milliseconds retry_budget,
                                          const std::string& trusted_keys_path) {
  ASSIGN_OR_RETURN(HttpResponse r,
                   PerformWithRetry(http, HttpRequest{.path = "/api/v1/keys/server"}, retry_budget));
  if (!r.ok()) return ErrorFromResponse(r);
  ASSIGN_OR_RETURN(core::Json doc, core::ParseJson(r.body));
  if (!doc.is_object() || !doc["attestation"].is_object() || !doc["log"].is_object()) {
    return core::Internal("the server's keys answer has no 'attestation' and 'log' objects");
  }
  const core::Json& att = doc["attestation"];
  ASSIGN_OR_RETURN(std::string pem, core::GetString(att, "public_key"));
  ASSIGN_OR_RETURN(signing::PublicKey key, signing::PublicKey::FromPem(pem));
  ASSIGN_OR_RETURN(std::string verifier, core::GetString(doc["log"], "verifier"));

  ASSIGN_OR_RETURN(TrustedKeys trusted, LoadOrEmpty(trusted_keys_path));
  std::string out;
  if (trusted.store.Find(key.key_id()) == nullptr) {
    signing::TrustedKey tk{key, "sigild", {}, {"**"}, {"*"}, std::nullopt};
    if (att.contains("predicate_types") && att["predicate_types"].is_array()) {
      for (const core::Json& t : att["predicate_types"]) {
        if (t.is_string()) tk.predicate_types.push_back(t.get<std::string>());
      }
    }
    RETURN_IF_ERROR(trusted.store.Add(std::move(tk)));
    out += "trusted server attestation key " + key.key_id() + "\n";
  }
  ASSIGN_OR_RETURN(bool added, trusted.AddLogKey(verifier));
  if (added) out += "trusted log key " + verifier + "\n";
  if (out.empty()) out = "the server's keys were already trusted\n";
  RETURN_IF_ERROR(trusted.Save(trusted_keys_path));
  return out;
}

core::Result<std::string> TrustPublicKey(const std::string& public_key_path, const std::string& name,
                                         const std::vector<std::string>& predicate_types,
                                         const std::vector<std::string>& repositories,
                                         const std::string& trusted_keys_path) {
  ASSIGN_OR_RETURN(signing::PublicKey key, signing::LoadPublicKey(public_key_path));
  ASSIGN_OR_RETURN(TrustedKeys trusted, LoadOrEmpty(trusted_keys_path));
  RETURN_IF_ERROR(
      trusted.store.Add(signing::TrustedKey{key, name, predicate_types, repositories, {"*"}, std::nullopt}));
  RETURN_IF_ERROR(trusted.Save(trusted_keys_path));
  return "trusted " + key.key_id() + "\n";
}

}  // namespace sigil::cli
