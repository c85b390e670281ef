#include "signing/trust_store.h"

#include <set>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/clock.h"
#include "core/fs.h"
#include "core/json.h"

namespace sigil::signing {

using core::Json;
using core::Result;
using core::Status;

namespace {

constexpr uint64_t kMaxTrustStoreBytes = 4 << 20;

Status Invalid(std::string message) {
  return core::InvalidArgument("trust store: " + std::move(message), "TRUST_STORE_INVALID");
}

Result<std::vector<std::string>> StringList(const Json& entry, const char* field,
                                            const std::string& where) {
  std::vector<std::string> out;
  auto it = entry.find(field);
  if (it == entry.end() || it->is_null()) return out;
  if (!it->is_array()) return Invalid(where + ": '" + field + "' must be an array of strings");
  for (const Json& v : *it) {
    if (!v.is_string() || v.get_ref<const std::string&>().empty()) {
      return Invalid(where + ": '" + field + "' must hold non-empty strings");
    }
    out.push_back(v.get<std::string>());
  }
  return out;
}

bool ListAllows(const std::vector<std::string>& list, std::string_view value) {
  for (const std::string& v : list) {
    if (v == "*" || v == value) return true;
  }
  return false;
}

bool RepositoryAllowed(const std::vector<std::string>& globs, std::string_view repo) {
  for (const std::string& g : globs) {
    if (GlobMatch(g, repo)) return true;
  }
  return false;
}

}  // namespace

bool GlobMatch(std::string_view pattern, std::string_view text) {
  // match[j]: pattern[i:] matches text[j:], filled from the end of the
  // pattern backwards; O(|pattern| * |text|) with no backtracking blow-up.
  const size_t n = text.size();
  std::vector<char> next(n + 1, 0), cur(n + 1, 0);
  next[n] = 1;  // empty pattern matches empty text
  for (size_t i = pattern.size(); i-- > 0;) {
    bool double_star = pattern[i] == '*' && i > 0 && pattern[i - 1] == '*';
    if (double_star) {
      // "**" as one token: consumes anything, '/' included.
      --i;
      cur[n] = next[n];
      for (size_t j = n; j-- > 0;) cur[j] = next[j] || cur[j + 1];
    } else if (pattern[i] == '*') {
      cur[n] = next[n];
      for (size_t j = n; j-- > 0;) cur[j] = next[j] || (text[j] != '/' && cur[j + 1]);
    } else {
      cur[n] = 0;
      for (size_t j = 0; j < n; ++j) {
        bool one = pattern[i] == '?' ? text[j] != '/' : pattern[i] == text[j];
        cur[j] = one && next[j + 1];
      }
    }
    std::swap(cur, next);
  }
  return next[0] != 0;
}

Result<TrustStore> TrustStore::Parse(std::string_view json) {
  core::JsonLimits limits;
  limits.max_bytes = kMaxTrustStoreBytes;
  ASSIGN_OR_RETURN(Json doc, core::ParseJson(json, limits));
  if (!doc.is_object()) return Invalid("not a JSON object");
  auto list = doc.find("keys");
  if (list == doc.end() || !list->is_array()) return Invalid("'keys' must be an array");
  TrustStore store;
  std::set<std::string> ids;
  size_t index = 0;
  for (const Json& entry : *list) {
    std::string where = "key #" + std::to_string(index++);
    if (!entry.is_object()) return Invalid(where + " is not an object");
    auto id = core::GetString(entry, "id");
    if (!id.ok()) return Invalid(where + ": " + id.status().message());
    where += " (" + *id + ")";
    auto alg_name = core::GetString(entry, "algorithm");
    if (!alg_name.ok()) return Invalid(where + ": " + alg_name.status().message());
    auto alg = ParseAlgorithm(*alg_name);
    if (!alg.ok()) return Invalid(where + ": " + alg.status().message());
    auto pem = core::GetString(entry, "public_key");
    if (!pem.ok()) return Invalid(where + ": " + pem.status().message());
    auto key = PublicKey::FromPem(*pem);
    if (!key.ok()) return key.status().Annotate("trust store " + where);
    if (key->key_id() != *id) return Invalid(where + ": id does not match the key (" + key->key_id() + ")");
    if (key->algorithm() != *alg) {
      return Invalid(where + ": algorithm is '" + *alg_name + "' but the key is " +
                     std::string(AlgorithmName(key->algorithm())));
    }
    if (!ids.insert(*id).second) return Invalid(where + " listed twice");
    TrustedKey tk{*key, {}, {}, {}, {}, std::nullopt};
    if (entry.contains("name")) {
      auto name = core::GetString(entry, "name");
      if (!name.ok()) return Invalid(where + ": " + name.status().message());
      tk.name = *name;
    }
    ASSIGN_OR_RETURN(tk.predicate_types, StringList(entry, "predicate_types", where));
    ASSIGN_OR_RETURN(tk.repositories, StringList(entry, "repositories", where));
    ASSIGN_OR_RETURN(tk.stages, StringList(entry, "stages", where));
    auto revoked = entry.find("revoked_at");
    if (revoked != entry.end() && !revoked->is_null()) {
      if (!revoked->is_string()) return Invalid(where + ": 'revoked_at' must be an RFC 3339 string");
      auto at = core::ParseRfc3339(revoked->get<std::string>());
      if (!at.ok()) return Invalid(where + ": 'revoked_at': " + at.status().message());
      tk.revoked_at_micros = *at;
    }
    store.keys_.push_back(std::move(tk));
  }
  return store;
}

Result<TrustStore> TrustStore::Load(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, core::ReadFile(path, kMaxTrustStoreBytes));
  auto store = Parse(text);
  if (!store.ok()) return store.status().Annotate(path);
  store->path_ = path;
  return store;
}

std::string TrustStore::Serialize() const {
  Json list = Json::array();
  for (const TrustedKey& k : keys_) {
    Json e = {{"id", k.id()},
              {"algorithm", std::string(AlgorithmName(k.key.algorithm()))},
              {"public_key", k.key.pem()},
              {"predicate_types", k.predicate_types},
              {"repositories", k.repositories},
              {"stages", k.stages}};
    if (!k.name.empty()) e["name"] = k.name;
    if (k.revoked_at_micros) e["revoked_at"] = core::FormatRfc3339(*k.revoked_at_micros);
    list.push_back(std::move(e));
  }
  return Json{{"keys", std::move(list)}}.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

Status TrustStore::Save(const std::string& path) {
  RETURN_IF_ERROR(core::WriteFileAtomic(path, Serialize(), 0644));
  path_ = path;
  return core::OkStatus();
}

Status TrustStore::Reload() {
  if (path_.empty()) return core::FailedPrecondition("trust store was not loaded from a file");
  ASSIGN_OR_RETURN(TrustStore fresh, Load(path_));
  keys_ = std::move(fresh.keys_);
  return core::OkStatus();
}

Status TrustStore::Add(TrustedKey key) {
  if (Find(key.id()) != nullptr) {
    return core::AlreadyExists("key " + key.id() + " is already in the trust store");
  }
  keys_.push_back(std::move(key));
  return core::OkStatus();
}

Status TrustStore::Revoke(std::string_view key_id, int64_t at_micros) {
  for (TrustedKey& k : keys_) {
    if (k.id() == key_id) {
      k.revoked_at_micros = at_micros;
      return core::OkStatus();
    }
  }
  return core::NotFound("key " + std::string(key_id) + " is not in the trust store");
}

const TrustedKey* TrustStore::Find(std::string_view key_id) const {
  for (const TrustedKey& k : keys_) {
    if (k.id() == key_id) return &k;
  }
  return nullptr;
}

Status TrustStore::CheckAllowed(std::string_view key_id, const TrustQuery& query,
                                int64_t now_micros) const {
  const TrustedKey* k = Find(key_id);
  if (k == nullptr) return core::NotFound("key " + std::string(key_id) + " is not trusted", "KEY_UNTRUSTED");
  if (k->RevokedAt(now_micros)) {
    return core::PermissionDenied("key " + k->id() + " was revoked at " +
                                      core::FormatRfc3339(*k->revoked_at_micros),
                                  "KEY_REVOKED");
  }
  if (!ListAllows(k->predicate_types, query.predicate_type)) {
    return core::PermissionDenied("key " + k->id() + " may not attest predicate type " +
                                      query.predicate_type,
                                  "KEY_NOT_ALLOWED");
  }
  if (!RepositoryAllowed(k->repositories, query.repository)) {
    return core::PermissionDenied("key " + k->id() + " may not attest for repository " +
                                      query.repository,
                                  "KEY_NOT_ALLOWED");
  }
  if (!query.stage.empty() && !ListAllows(k->stages, query.stage)) {
    return core::PermissionDenied("key " + k->id() + " may not attest stage " + query.stage,
                                  "KEY_NOT_ALLOWED");
  }
  return core::OkStatus();
}

std::vector<PublicKey> TrustStore::KeysFor(const TrustQuery& query, int64_t now_micros) const {
  std::vector<PublicKey> out;
  for (const TrustedKey& k : keys_) {
    if (CheckAllowed(k.id(), query, now_micros).ok()) out.push_back(k.key);
  }
  return out;
}

}  // namespace sigil::signing
