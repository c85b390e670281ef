// The routes of docs/api.md sections "Server keys", "Trust store",
// "Attestations" and "Transparency log".
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/service.h"
#include "attest/checkpoint.h"
#include "attest/merkle.h"
#include "core/clock.h"
#include "core/digest.h"
#include "core/json.h"
#include "signing/base64.h"
#include "signing/keys.h"
#include "signing/trust_store.h"

namespace sigil::api {
namespace {

using core::Json;

HttpResponse NotConfigured() {
  return ErrorResponse(
      core::Unavailable("signing and the transparency log are not configured", "ATTESTATIONS_UNAVAILABLE"));
}

core::Status BadParameter(const std::string& message) {
  return core::InvalidArgument(message, "PARAMETER_INVALID");
}

std::string Query(const HttpRequest& request, const std::string& key, bool* present = nullptr) {
  auto it = request.query.find(key);
  if (present != nullptr) *present = it != request.query.end();
  return it == request.query.end() ? std::string() : it->second;
}

// A decimal uint64 query parameter; *present false when absent.
core::Result<uint64_t> UintParam(const HttpRequest& request, const std::string& key, bool* present) {
  std::string text = Query(request, key, present);
  if (!*present) return uint64_t{0};
  if (text.empty() || text.size() > 20) {
    return BadParameter("'" + key + "' must be a non-negative decimal integer");
  }
  uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return BadParameter("'" + key + "' must be a non-negative decimal integer");
    uint64_t next = v * 10 + static_cast<uint64_t>(c - '0');
    if (next / 10 != v) return BadParameter("'" + key + "' is too large");
    v = next;
  }
  return v;
}

std::string HexOf(const attest::MerkleHash& h) { return core::HexEncode(h.data(), h.size()); }

Json HashList(const std::vector<attest::MerkleHash>& hashes) {
  Json out = Json::array();
  for (const auto& h : hashes) out.push_back(signing::Base64Encode(attest::HashBytes(h)));
  return out;
}

Json TrustedKeyJson(const signing::TrustedKey& k) {
  Json j = {{"id", k.id()},
            {"name", k.name},
            {"algorithm", std::string(signing::AlgorithmName(k.key.algorithm()))},
            {"public_key", k.key.pem()},
            {"predicate_types", k.predicate_types},
            {"repositories", k.repositories},
            {"stages", k.stages}};
  if (k.revoked_at_micros) j["revoked_at"] = core::FormatRfc3339(*k.revoked_at_micros);
  return j;
}

Json AttestationJson(const registry::AttestationRecord& r) {
  Json envelope = Json::object();
  auto doc = core::ParseJson(r.content, core::JsonLimits{registry::kMaxAttestationBytes, 64});
  if (doc.ok()) {
    if (r.format == "sigstore-bundle" && doc->contains("dsseEnvelope")) {
      envelope = (*doc)["dsseEnvelope"];
    } else {
      envelope = *doc;
    }
  }
  return Json{{"repository", r.repository},
              {"version_digest", r.version_digest.ToString()},
              {"content_digest", r.content_digest.ToString()},
              {"format", r.format},
              {"predicate_type", r.predicate_type},
              {"key_ids", r.key_ids},
              {"server_issued", r.server_issued},
              {"log_index", r.log_index},
              {"created", core::FormatRfc3339(r.created_micros)},
              {"status", r.status},
              {"content", signing::Base64Encode(r.content)},
              {"envelope", envelope}};
}

}  // namespace

HttpResponse Service::ServerKeysRoute(const HttpRequest& request) {
  if (request.method != "GET") return MethodNotAllowed(request, "GET");
  if (options_.attestations == nullptr || options_.log == nullptr) return NotConfigured();
  const signing::PublicKey& att = options_.attestations->server_public_key();
  const signing::PublicKey& log = options_.log->public_key();
  auto note_id = attest::NoteKeyId(options_.log->origin(), log);
  return JsonResponse(
      200, Json{{"attestation",
                 {{"key_id", att.key_id()},
                  {"algorithm", std::string(signing::AlgorithmName(att.algorithm()))},
                  {"public_key", att.pem()},
                  {"predicate_types", std::vector<std::string>(std::begin(registry::kServerPredicateTypes),
                                                               std::end(registry::kServerPredicateTypes))}}},
                {"log",
                 {{"origin", options_.log->origin()},
                  {"key_id", log.key_id()},
                  {"note_key_id", core::HexEncode(note_id.data(), note_id.size())},
                  {"algorithm", std::string(signing::AlgorithmName(log.algorithm()))},
                  {"public_key", log.pem()},
                  {"verifier", options_.log->verifier_key()}}}});
}

HttpResponse Service::Trust(const HttpRequest& request, const std::vector<std::string>& parts,
                            std::string* route) {
  if (options_.attestations == nullptr) return NotConfigured();
  registry::Attestations* a = options_.attestations;
  if (parts.size() == 2 && parts[1] == "reload") {
    *route = "/api/v1/trust/reload";
    if (request.method != "POST") return MethodNotAllowed(request, "POST");
    core::Status s = a->ReloadTrust();
    if (!s.ok()) return ErrorResponse(s);
    return JsonResponse(200, Json{{"keys", a->trust()->keys().size()}});
  }
  if (parts.size() == 2 && parts[1] == "keys") {
    *route = "/api/v1/trust/keys";
    if (request.method == "GET") {
      Json keys = Json::array();
      for (const auto& k : a->trust()->keys()) keys.push_back(TrustedKeyJson(k));
      const signing::PublicKey& server = a->server_public_key();
      Json implicit = Json::array();
      implicit.push_back(
          {{"id", server.key_id()},
           {"name", "sigild"},
           {"algorithm", std::string(signing::AlgorithmName(server.algorithm()))},
           {"public_key", server.pem()},
           {"predicate_types", std::vector<std::string>(std::begin(registry::kServerPredicateTypes),
                                                        std::end(registry::kServerPredicateTypes))},
           {"repositories", {"**"}},
           {"stages", Json::array()}});
      return JsonResponse(200, Json{{"keys", keys}, {"implicit", implicit}});
    }
    if (request.method != "POST") return MethodNotAllowed(request, "GET, POST");
    core::JsonLimits limits;
    limits.max_bytes = 1 << 20;
    auto body = core::ParseJson(request.body, limits);
    if (!body.ok()) return ErrorResponse(body.status());
    if (!body->is_object()) {
      return ErrorResponse(core::InvalidArgument("body must be a JSON object", "JSON_INVALID"));
    }
    auto pem = core::GetString(*body, "public_key");
    if (!pem.ok()) return ErrorResponse(core::InvalidArgument(pem.status().message(), "KEY_INVALID"));
    auto key = signing::PublicKey::FromPem(*pem);
    if (!key.ok()) return ErrorResponse(key.status());
    // The entry goes through the trust store's own parser, so the API and
    // the file accept exactly the same entries.
    Json entry = *body;
    entry["id"] = key->key_id();
    entry["algorithm"] = std::string(signing::AlgorithmName(key->algorithm()));
    entry["public_key"] = key->pem();
    entry.erase("revoked_at");
    auto parsed = signing::TrustStore::Parse(core::DumpJson(Json{{"keys", Json::array({entry})}}));
    if (!parsed.ok()) return ErrorResponse(parsed.status());
    if (parsed->keys().size() != 1) {
      return ErrorResponse(core::InvalidArgument("one key expected", "TRUST_STORE_INVALID"));
    }
    signing::TrustedKey added = parsed->keys()[0];
    core::Status s = a->AddTrustedKey(added);
    if (s.code() == core::Code::kAlreadyExists) {
      return ErrorResponse(core::AlreadyExists(s.message(), "KEY_EXISTS"));
    }
    if (!s.ok()) return ErrorResponse(s);
    HttpResponse r = JsonResponse(201, TrustedKeyJson(added));
    r.AddHeader("Location", "/api/v1/trust/keys/" + added.id());
    return r;
  }
  if (parts.size() == 4 && parts[1] == "keys" && parts[3] == "revoke") {
    *route = "/api/v1/trust/keys/{id}/revoke";
    if (request.method != "POST") return MethodNotAllowed(request, "POST");
    core::Status s = a->RevokeTrustedKey(parts[2]);
    if (s.code() == core::Code::kNotFound) {
      return ErrorResponse(core::NotFound(s.message(), "KEY_UNKNOWN"));
    }
    if (!s.ok()) return ErrorResponse(s);
    const signing::TrustedKey* k = a->trust()->Find(parts[2]);
    if (k == nullptr) return ErrorResponse(core::NotFound("key " + parts[2] + " vanished", "KEY_UNKNOWN"));
    return JsonResponse(200, TrustedKeyJson(*k));
  }
  return ErrorResponse(core::NotFound("no route for " + request.path.substr(0, 200), "ROUTE_UNKNOWN"));
}

HttpResponse Service::Log(const HttpRequest& request, const std::vector<std::string>& parts,
                          std::string* route) {
  if (options_.log == nullptr) return NotConfigured();
  attest::TransparencyLog* log = options_.log;
  if (parts.size() == 2 && parts[1] == "checkpoint") {
    *route = "/api/v1/log/checkpoint";
    if (request.method != "GET") return MethodNotAllowed(request, "GET");
    auto cp = log->Checkpoint();
    if (!cp.ok()) return ErrorResponse(cp.status());
    HttpResponse r;
    r.content_type = "text/plain; charset=utf-8";
    r.body = cp->note;
    return r;
  }
  if (parts.size() == 3 && parts[1] == "entries") {
    *route = "/api/v1/log/entries/{index}";
    if (request.method != "GET") return MethodNotAllowed(request, "GET");
    HttpRequest fake;
    fake.query["index"] = parts[2];
    bool present = false;
    auto index = UintParam(fake, "index", &present);
    if (!index.ok()) return ErrorResponse(index.status());
    auto leaf = log->Leaf(*index);
    if (!leaf.ok()) return ErrorResponse(leaf.status());
    return JsonResponse(200, Json{{"index", *index},
                               {"leaf", signing::Base64Encode(*leaf)},
                               {"leaf_hash", HexOf(attest::MerkleLeafHash(*leaf))}});
  }
  if (parts.size() == 3 && parts[1] == "proof" && parts[2] == "inclusion") {
    *route = "/api/v1/log/proof/inclusion";
    if (request.method != "GET") return MethodNotAllowed(request, "GET");
    bool has_index = false, has_size = false, has_hash = false;
    auto index = UintParam(request, "index", &has_index);
    if (!index.ok()) return ErrorResponse(index.status());
    auto size = UintParam(request, "size", &has_size);
    if (!size.ok()) return ErrorResponse(size.status());
    std::string hash_hex = Query(request, "leaf_hash", &has_hash);
    if (has_index == has_hash) {
      return ErrorResponse(BadParameter("give exactly one of 'index' and 'leaf_hash'"));
    }
    uint64_t n = has_size ? *size : log->Size();
    if (n > log->Size()) {
      return ErrorResponse(BadParameter("size " + std::to_string(n) + " is beyond the log's size " +
                                        std::to_string(log->Size())));
    }
    uint64_t i = *index;
    if (has_hash) {
      auto raw = core::HexDecode(hash_hex);
      if (!raw.ok() || raw->size() != 32) {
        return ErrorResponse(BadParameter("'leaf_hash' must be 64 lowercase hex digits"));
      }
      attest::MerkleHash h;
      for (size_t k = 0; k < 32; ++k) h[k] = static_cast<uint8_t>((*raw)[k]);
      auto found = log->IndexOf(h);
      if (!found.ok()) return ErrorResponse(found.status());
      i = *found;
    }
    if (i >= n) {
      return ErrorResponse(
          BadParameter("index " + std::to_string(i) + " is not below size " + std::to_string(n)));
    }
    auto proof = attest::InclusionProof(*log, i, n);
    if (!proof.ok()) return ErrorResponse(proof.status());
    auto leaf_hash = log->LeafHash(i);
    if (!leaf_hash.ok()) return ErrorResponse(leaf_hash.status());
    return JsonResponse(
        200, Json{{"index", i}, {"size", n}, {"leaf_hash", HexOf(*leaf_hash)}, {"hashes", HashList(*proof)}});
  }
  if (parts.size() == 3 && parts[1] == "proof" && parts[2] == "consistency") {
    *route = "/api/v1/log/proof/consistency";
    if (request.method != "GET") return MethodNotAllowed(request, "GET");
    bool has_from = false, has_to = false;
    auto from = UintParam(request, "from", &has_from);
    if (!from.ok()) return ErrorResponse(from.status());
    auto to = UintParam(request, "to", &has_to);
    if (!to.ok()) return ErrorResponse(to.status());
    if (!has_from) return ErrorResponse(BadParameter("'from' is required"));
    uint64_t n2 = has_to ? *to : log->Size();
    if (*from == 0 || *from > n2 || n2 > log->Size()) {
      return ErrorResponse(BadParameter("need 0 < from <= to <= " + std::to_string(log->Size()) + " (from " +
                                        std::to_string(*from) + ", to " + std::to_string(n2) + ")"));
    }
    auto proof = attest::ConsistencyProof(*log, *from, n2);
    if (!proof.ok()) return ErrorResponse(proof.status());
    return JsonResponse(200, Json{{"from", *from}, {"to", n2}, {"hashes", HashList(*proof)}});
  }
  return ErrorResponse(core::NotFound("no route for " + request.path.substr(0, 200), "ROUTE_UNKNOWN"));
}

HttpResponse Service::VersionAttestationRoute(const HttpRequest& request, const std::string& repo,
                                              const std::string& ref, const std::string& word,
                                              std::string* route) {
  *route = "/api/v1/models/{repo}/versions/{ref}/" + word;
  if (options_.attestations == nullptr || options_.log == nullptr) return NotConfigured();
  registry::Attestations* a = options_.attestations;
  if (word == "attestations") {
    if (request.method == "GET") {
      auto list = a->List(repo, ref, Query(request, "predicateType"));
      if (!list.ok()) return ErrorResponse(list.status());
      auto version = options_.registry->Resolve(repo, ref);
      if (!version.ok()) return ErrorResponse(version.status());
      Json items = Json::array();
      for (const auto& r : *list) items.push_back(AttestationJson(r));
      return JsonResponse(200, Json{{"repository", repo},
                                 {"version_digest", version->info.digest.ToString()},
                                 {"attestations", items}});
    }
    if (request.method != "POST") return MethodNotAllowed(request, "GET, POST");
    auto added = a->Add(repo, ref, request.body);
    if (!added.ok()) return ErrorResponse(added.status());
    return JsonResponse(added->created ? 201 : 200, AttestationJson(added->record));
  }
  if (word == "sign") {
    if (request.method != "POST") return MethodNotAllowed(request, "POST");
    auto added = a->Sign(repo, ref);
    if (!added.ok()) return ErrorResponse(added.status());
    return JsonResponse(added->created ? 201 : 200, AttestationJson(added->record));
  }
  if (request.method != "GET") return MethodNotAllowed(request, "GET");
  auto ev = a->GetEvidence(repo, ref);
  if (!ev.ok()) return ErrorResponse(ev.status());
  Json items = Json::array();
  for (const auto& e : ev->entries) {
    Json item = AttestationJson(e.record);
    item["log_entry"] = {{"index", e.record.log_index},
                         {"leaf", signing::Base64Encode(e.leaf)},
                         {"leaf_hash", HexOf(attest::MerkleLeafHash(e.leaf))},
                         {"inclusion_proof", HashList(e.inclusion)}};
    items.push_back(std::move(item));
  }
  const attest::Checkpoint& cp = ev->checkpoint.checkpoint;
  return JsonResponse(200, Json{{"repository", repo},
                             {"version", ev->version.info.version},
                             {"version_digest", ev->version.info.digest.ToString()},
                             {"attestations", items},
                             {"checkpoint",
                              {{"note", ev->checkpoint.note},
                               {"origin", cp.origin},
                               {"size", cp.size},
                               {"root", signing::Base64Encode(attest::HashBytes(cp.root))}}},
                             {"log_verifier", options_.log->verifier_key()}});
}

}  // namespace sigil::api
