#include "registry/attestations.h"

#include <algorithm>
#include <utility>

#include <nlohmann/json.hpp>

#include "attest/model_signing.h"
#include "attest/statement.h"
#include "core/fs.h"
#include "core/json.h"
#include "registry/access.h"
#include "signing/dsse.h"

namespace sigil::registry {
namespace {

using core::Json;

constexpr std::string_view kReferrersCf = "referrers";
constexpr std::string_view kLeafType = "sigil.attestation/v1";
constexpr std::string_view kFormatDsse = "dsse";
constexpr std::string_view kFormatBundle = "sigstore-bundle";
constexpr std::string_view kBundleMediaTypes[] = {
    "application/vnd.dev.sigstore.bundle.v0.3+json",
    "application/vnd.dev.sigstore.bundle+json;version=0.1",
    "application/vnd.dev.sigstore.bundle+json;version=0.2",
    "application/vnd.dev.sigstore.bundle+json;version=0.3",
};

core::Status Invalid(std::string message) {
  return core::InvalidArgument("attestation: " + std::move(message), "ATTESTATION_INVALID");
}

std::string VersionPrefix(const std::string& repo, const core::Digest& version) {
  std::string key = repo;
  key.push_back('\0');
  key += version.ToString();
  key.push_back('\0');
  return key;
}

bool IsServerPredicateType(std::string_view type) {
  for (std::string_view t : kServerPredicateTypes) {
    if (t == type) return true;
  }
  return false;
}

// True when path equals prefix or lies below it (path components).
bool UnderPath(std::string_view path, std::string_view prefix) {
  if (prefix.empty()) return false;
  if (path.substr(0, prefix.size()) != prefix) return false;
  return path.size() == prefix.size() || path[prefix.size()] == '/';
}

core::Result<std::string> ReadBlob(storage::BlobStore* blobs, const core::Digest& digest) {
  ASSIGN_OR_RETURN(auto reader, blobs->Open(digest));
  std::string out(reader->size(), '\0');
  size_t got = 0;
  while (got < out.size()) {
    ASSIGN_OR_RETURN(size_t n, reader->ReadAt(got, out.data() + got, out.size() - got));
    if (n == 0) return core::DataLoss("blob " + digest.ToString() + " is shorter than its size");
    got += n;
  }
  return out;
}

std::vector<attest::ModelResource> ManifestResources(const Manifest& manifest,
                                                     const std::vector<std::string>& ignore_paths) {
  std::vector<attest::ModelResource> resources;
  for (const Descriptor& layer : manifest.layers) {
    auto title = layer.annotations.find(std::string(kTitleAnnotation));
    if (title == layer.annotations.end()) continue;
    bool ignored = false;
    for (std::string_view d : attest::kDefaultIgnoredPaths) ignored = ignored || UnderPath(title->second, d);
    for (const std::string& p : ignore_paths) ignored = ignored || UnderPath(title->second, p);
    if (ignored) continue;
    resources.push_back({title->second, "sha256", layer.digest.Hex()});
  }
  attest::SortResources(&resources);
  return resources;
}

}  // namespace

core::Result<core::Digest> ManifestModelRoot(const Manifest& manifest,
                                             const std::vector<std::string>& ignore_paths) {
  return attest::ResourcesRoot(ManifestResources(manifest, ignore_paths));
}

struct Attestations::Verified {
  std::string format;
  std::string predicate_type;
  std::vector<std::string> key_ids;  // keys that verified and may attest this
  bool server_issued = false;
};

core::Result<std::unique_ptr<Attestations>> Attestations::Open(AttestationOptions options) {
  if (options.registry == nullptr || options.blobs == nullptr || options.meta == nullptr ||
      options.clock == nullptr || options.log == nullptr) {
    return core::InvalidArgument("attestations need a registry, stores, a clock and a log");
  }
  if (!options.server_key.has_value() || options.server_key->algorithm() == signing::Algorithm::kEd25519) {
    return core::InvalidArgument("the server attestation key must be an ECDSA key");
  }
  std::unique_ptr<Attestations> a(new Attestations(std::move(options)));
  auto store = std::make_shared<signing::TrustStore>();
  if (!a->options_.trust_path.empty() && core::PathExists(a->options_.trust_path)) {
    ASSIGN_OR_RETURN(*store, signing::TrustStore::Load(a->options_.trust_path));
  }
  a->trust_ = std::move(store);
  return a;
}

std::shared_ptr<const signing::TrustStore> Attestations::trust() const {
  std::lock_guard<std::mutex> lock(trust_mu_);
  return trust_;
}

core::Status Attestations::AddTrustedKey(signing::TrustedKey key) {
  RETURN_IF_ERROR(RequireAccess(Action::kAdmin, ""));
  std::lock_guard<std::mutex> lock(trust_mu_);
  auto copy = std::make_shared<signing::TrustStore>(*trust_);
  RETURN_IF_ERROR(copy->Add(std::move(key)));
  if (!options_.trust_path.empty()) RETURN_IF_ERROR(copy->Save(options_.trust_path));
  trust_ = std::move(copy);
  return core::OkStatus();
}

core::Status Attestations::RevokeTrustedKey(std::string_view key_id) {
  RETURN_IF_ERROR(RequireAccess(Action::kAdmin, ""));
  std::lock_guard<std::mutex> lock(trust_mu_);
  auto copy = std::make_shared<signing::TrustStore>(*trust_);
  RETURN_IF_ERROR(copy->Revoke(key_id, options_.clock->NowMicros()));
  if (!options_.trust_path.empty()) RETURN_IF_ERROR(copy->Save(options_.trust_path));
  trust_ = std::move(copy);
  return core::OkStatus();
}

core::Status Attestations::ReloadTrust() {
  if (options_.trust_path.empty()) {
    return core::FailedPrecondition("the trust store has no file to reload", "TRUST_STORE_IN_MEMORY");
  }
  auto store = std::make_shared<signing::TrustStore>();
  if (core::PathExists(options_.trust_path)) {
    ASSIGN_OR_RETURN(*store, signing::TrustStore::Load(options_.trust_path));
  }
  std::lock_guard<std::mutex> lock(trust_mu_);
  trust_ = std::move(store);
  return core::OkStatus();
}

core::Result<Attestations::Verified> Attestations::Verify(const std::string& repo,
                                                          const ResolvedVersion& version,
                                                          std::string_view document) const {
  if (document.size() > kMaxAttestationBytes) {
    return Invalid("larger than " + std::to_string(kMaxAttestationBytes) + " bytes");
  }
  core::JsonLimits limits;
  limits.max_bytes = kMaxAttestationBytes;
  auto doc = core::ParseJson(document, limits);
  if (!doc.ok()) return Invalid(doc.status().message());
  if (!doc->is_object()) return Invalid("not a JSON object");

  Verified out;
  std::vector<std::string> hints;
  std::string bundle_hint;
  core::Result<signing::Envelope> envelope = Invalid("no envelope");
  if (doc->contains("mediaType")) {
    out.format = kFormatBundle;
    const Json& media = (*doc)["mediaType"];
    if (!media.is_string() || std::find(std::begin(kBundleMediaTypes), std::end(kBundleMediaTypes),
                                        media.get<std::string>()) == std::end(kBundleMediaTypes)) {
      return Invalid("unsupported bundle mediaType");
    }
    auto dsse = doc->find("dsseEnvelope");
    if (dsse == doc->end() || !dsse->is_object()) {
      return Invalid("the bundle holds no dsseEnvelope (message signatures are not accepted)");
    }
    auto material = doc->find("verificationMaterial");
    if (material != doc->end() && material->is_object()) {
      auto pub = material->find("publicKey");
      if (pub != material->end() && pub->is_object()) {
        auto hint = pub->find("hint");
        if (hint != pub->end() && hint->is_string()) {
          bundle_hint = hint->get<std::string>();
          hints.push_back(bundle_hint);
        }
      }
    }
    envelope = signing::EnvelopeFromJson(*dsse);
    if (!envelope.ok()) return Invalid(envelope.status().message());
    if (envelope->signatures.size() != 1) {
      return Invalid("a bundle must carry exactly one signature, not " +
                     std::to_string(envelope->signatures.size()));
    }
  } else {
    out.format = kFormatDsse;
    envelope = signing::EnvelopeFromJson(*doc);
    if (!envelope.ok()) return Invalid(envelope.status().message());
  }
  if (envelope->signatures.empty()) return Invalid("the envelope has no signatures");
  for (const auto& sig : envelope->signatures) {
    if (!sig.keyid.empty()) hints.push_back(sig.keyid);
  }

  // Signatures first, against every key the server knows (revoked ones
  // too, so that their signatures are refused as revoked, not unknown).
  std::shared_ptr<const signing::TrustStore> trust = this->trust();
  const signing::PublicKey& server = server_public_key();
  std::vector<signing::PublicKey> candidates{server};
  for (const signing::TrustedKey& k : trust->keys()) candidates.push_back(k.key);
  auto verified = signing::VerifyEnvelope(*envelope, candidates, 1);
  if (!verified.ok()) {
    for (const std::string& hint : hints) {
      for (const signing::PublicKey& k : candidates) {
        if (k.key_id() == hint) {
          return core::InvalidArgument("the signature by key " + hint + " does not verify",
                                       "SIGNATURE_INVALID");
        }
      }
    }
    return core::PermissionDenied("no trusted key verifies the signature", "KEY_UNTRUSTED");
  }
  // As OpenSSF model signing verifies: a bundle's key hint, when present,
  // names the key that signed.
  if (!bundle_hint.empty() &&
      std::find(verified->key_ids.begin(), verified->key_ids.end(), bundle_hint) == verified->key_ids.end()) {
    return Invalid("publicKey.hint names key " + bundle_hint.substr(0, 200) +
                   ", but the signature verifies with key " + verified->key_ids[0]);
  }
  if (verified->payload_type != signing::kInTotoPayloadType) {
    return core::InvalidArgument("payload type '" + verified->payload_type.substr(0, 200) +
                                     "' is not supported (want " + std::string(signing::kInTotoPayloadType) +
                                     ")",
                                 "PAYLOAD_TYPE_UNSUPPORTED");
  }
  auto statement = attest::ParseStatement(verified->payload);
  if (!statement.ok()) return Invalid(statement.status().message());
  out.predicate_type = statement->predicate_type;

  signing::TrustQuery query{statement->predicate_type, repo, {}};
  int64_t now = options_.clock->NowMicros();
  core::Status refusal;
  for (const std::string& id : verified->key_ids) {
    if (id == server.key_id()) {
      if (IsServerPredicateType(statement->predicate_type)) {
        out.key_ids.push_back(id);
        out.server_issued = true;
      } else if (refusal.ok()) {
        refusal = core::PermissionDenied(
            "the server key may not attest predicate type " + statement->predicate_type, "KEY_NOT_ALLOWED");
      }
      continue;
    }
    core::Status allowed = trust->CheckAllowed(id, query, now);
    if (allowed.ok()) {
      out.key_ids.push_back(id);
    } else if (refusal.ok()) {
      refusal = allowed;
    }
  }
  if (out.key_ids.empty()) return refusal;

  // The subject: the manifest digest, or for a model signature also the
  // ROOT of the version's files.
  std::vector<core::Digest> accepted{version.info.digest};
  if (statement->predicate_type == attest::kModelSigningV1) {
    ASSIGN_OR_RETURN(core::Digest root,
                     ManifestModelRoot(version.manifest, attest::IgnorePathsOfPredicate(statement->predicate_json)));
    accepted.push_back(root);
  }
  bool matched = false;
  for (const attest::Subject& s : statement->subjects) {
    auto it = s.digest.find("sha256");
    if (it == s.digest.end()) continue;
    for (const core::Digest& d : accepted) matched = matched || it->second == d.Hex();
  }
  if (!matched) {
    return core::InvalidArgument(
        "no subject digest matches version " + version.info.digest.ToString() +
            (accepted.size() > 1 ? " or its files' ROOT " + accepted[1].ToString() : std::string()),
        "SUBJECT_MISMATCH");
  }
  return out;
}

core::Result<Attestations::Added> Attestations::Store(const std::string& repo, const ResolvedVersion& version,
                                                      std::string_view document, const Verified& verified) {
  core::Digest content = core::Sha256::Of(document);
  std::string key = VersionPrefix(repo, version.info.digest) + content.ToString();
  std::lock_guard<std::mutex> lock(add_mu_);
  auto existing = options_.meta->Get(kReferrersCf, key);
  if (existing.ok()) {
    ASSIGN_OR_RETURN(AttestationRecord record, ReadRecord(repo, version.info.digest, key, *existing));
    return Added{std::move(record), false};
  }
  if (existing.status().code() != core::Code::kNotFound) return existing.status();

  // The blob goes first: should the batch fail, an unreferenced blob is
  // garbage; a referrer without its blob would be damage.
  RETURN_IF_ERROR(options_.blobs->Put(content, document));

  AttestationRecord record;
  record.repository = repo;
  record.version_digest = version.info.digest;
  record.content_digest = content;
  record.format = verified.format;
  record.predicate_type = verified.predicate_type;
  record.key_ids = verified.key_ids;
  record.server_issued = verified.server_issued;
  record.created_micros = options_.clock->NowMicros();
  record.content = std::string(document);

  Json leaf = {{"type", kLeafType},
               {"repository", repo},
               {"version_digest", version.info.digest.ToString()},
               {"content_digest", content.ToString()},
               {"predicate_type", record.predicate_type},
               {"key_ids", record.key_ids},
               {"time", core::FormatRfc3339(record.created_micros)}};
  storage::WriteBatch batch;
  auto stage = [&](uint64_t index, storage::WriteBatch* b) {
    record.log_index = index;
    Json value = {{"format", record.format},   {"predicate_type", record.predicate_type},
                  {"key_ids", record.key_ids}, {"server_issued", record.server_issued},
                  {"log_index", index},        {"created", record.created_micros}};
    b->Put(kReferrersCf, key, core::DumpJson(value));
    return core::OkStatus();
  };
  ASSIGN_OR_RETURN(record.log_index, options_.log->AppendWith(std::move(batch), core::DumpJson(leaf), stage));
  record.status = "verified";
  return Added{std::move(record), true};
}

core::Result<Attestations::Added> Attestations::Add(std::string_view repo, std::string_view ref,
                                                    std::string_view document) {
  RETURN_IF_ERROR(RequireAccess(Action::kPush, repo));
  ASSIGN_OR_RETURN(ResolvedVersion version, options_.registry->Resolve(repo, ref));
  std::string name(repo);
  ASSIGN_OR_RETURN(Verified verified, Verify(name, version, document));
  return Store(name, version, document, verified);
}

core::Result<std::string> Attestations::Check(std::string_view repo, const ResolvedVersion& version,
                                               std::string_view document) const {
  ASSIGN_OR_RETURN(Verified verified, Verify(std::string(repo), version, document));
  return verified.predicate_type;
}

core::Result<Attestations::Added> Attestations::Sign(std::string_view repo, std::string_view ref) {
  RETURN_IF_ERROR(RequireAccess(Action::kPush, repo));
  ASSIGN_OR_RETURN(ResolvedVersion version, options_.registry->Resolve(repo, ref));
  std::string name(repo);
  // ECDSA signatures differ each time: without this check every call would
  // log another signature over the same files.
  ASSIGN_OR_RETURN(std::vector<AttestationRecord> existing,
                   List(name, version.info.digest.ToString(), attest::kModelSigningV1));
  for (AttestationRecord& r : existing) {
    if (r.server_issued && r.key_ids == std::vector<std::string>{server_public_key().key_id()}) {
      return Added{std::move(r), false};
    }
  }
  attest::ModelManifest model;
  model.model_name = name.substr(name.rfind('/') + 1);
  model.resources = ManifestResources(version.manifest, {});
  ASSIGN_OR_RETURN(model.root, attest::ResourcesRoot(model.resources));
  ASSIGN_OR_RETURN(std::string bundle, attest::SignModelManifest(model, *options_.server_key));
  // Verified like any submission: the same checks hold for the server's own.
  ASSIGN_OR_RETURN(Verified verified, Verify(name, version, bundle));
  return Store(name, version, bundle, verified);
}

core::Result<AttestationRecord> Attestations::ReadRecord(const std::string& repo, const core::Digest& version,
                                                         std::string_view key, std::string_view value) const {
  auto damaged = [&](const std::string& why) {
    return core::DataLoss("referrer record of " + repo + "@" + version.ToString() + ": " + why);
  };
  AttestationRecord r;
  r.repository = repo;
  r.version_digest = version;
  size_t sep = key.rfind('\0');
  auto content = core::Digest::Parse(key.substr(sep + 1));
  if (!content.ok()) return damaged("bad content digest");
  r.content_digest = *content;
  auto j = core::ParseJson(value);
  if (!j.ok() || !j->is_object()) return damaged("not a JSON object");
  try {
    r.format = j->at("format").get<std::string>();
    r.predicate_type = j->at("predicate_type").get<std::string>();
    r.key_ids = j->at("key_ids").get<std::vector<std::string>>();
    r.server_issued = j->at("server_issued").get<bool>();
    r.log_index = j->at("log_index").get<uint64_t>();
    r.created_micros = j->at("created").get<int64_t>();
  } catch (const Json::exception& e) {
    return damaged(e.what());
  }
  ASSIGN_OR_RETURN(r.content, ReadBlob(options_.blobs, r.content_digest));
  r.status = StatusNow(r);
  return r;
}

std::string Attestations::StatusNow(const AttestationRecord& record) const {
  if (record.server_issued) return "verified";
  std::shared_ptr<const signing::TrustStore> trust = this->trust();
  signing::TrustQuery query{record.predicate_type, record.repository, {}};
  std::string reason = "KEY_UNTRUSTED";
  for (const std::string& id : record.key_ids) {
    core::Status s = trust->CheckAllowed(id, query, options_.clock->NowMicros());
    if (s.ok()) return "verified";
    reason = s.reason();
  }
  return reason;
}

core::Result<std::vector<AttestationRecord>> Attestations::List(std::string_view repo, std::string_view ref,
                                                                std::string_view predicate_type) {
  ASSIGN_OR_RETURN(ResolvedVersion version, options_.registry->Resolve(repo, ref));
  std::string name(repo);
  std::vector<std::pair<std::string, std::string>> raw;
  RETURN_IF_ERROR(options_.meta->Scan(kReferrersCf, VersionPrefix(name, version.info.digest),
                                      [&](std::string_view key, std::string_view value) {
                                        raw.emplace_back(key, value);
                                        return true;
                                      }));
  std::vector<AttestationRecord> out;
  for (const auto& [key, value] : raw) {
    ASSIGN_OR_RETURN(AttestationRecord r, ReadRecord(name, version.info.digest, key, value));
    if (!predicate_type.empty() && r.predicate_type != predicate_type) continue;
    out.push_back(std::move(r));
  }
  std::sort(out.begin(), out.end(),
            [](const AttestationRecord& a, const AttestationRecord& b) { return a.log_index < b.log_index; });
  return out;
}

core::Result<Evidence> Attestations::GetEvidence(std::string_view repo, std::string_view ref) {
  Evidence ev;
  ASSIGN_OR_RETURN(ev.version, options_.registry->Resolve(repo, ref));
  ASSIGN_OR_RETURN(std::vector<AttestationRecord> records, List(repo, ev.version.info.digest.ToString(), {}));
  // Signed after the listing, so the checkpoint covers every listed entry.
  ASSIGN_OR_RETURN(ev.checkpoint, options_.log->Checkpoint());
  for (AttestationRecord& r : records) {
    EvidenceEntry e;
    ASSIGN_OR_RETURN(e.leaf, options_.log->Leaf(r.log_index));
    ASSIGN_OR_RETURN(e.inclusion,
                     attest::InclusionProof(*options_.log, r.log_index, ev.checkpoint.checkpoint.size));
    e.record = std::move(r);
    ev.entries.push_back(std::move(e));
  }
  return ev;
}

}  // namespace sigil::registry
