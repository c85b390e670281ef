#include "registry/bundles.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <set>
#include <utility>

#include <nlohmann/json.hpp>

#include "attest/merkle.h"
#include "attest/slsa.h"
#include "attest/statement.h"
#include "core/json.h"
#include "core/log.h"
#include "registry/access.h"
#include "registry/internal/bundle_plan.h"
#include "registry/manifest.h"
#include "registry/names.h"
#include "signing/dsse.h"

namespace sigil::registry {
namespace {

constexpr std::string_view kMetaCf = "meta";
// import\0<plan digest> -> the plan, while its writes are under way.
constexpr std::string_view kImportRecordPrefix{"import\0", 7};

using core::Json;

using internal::Plan;
using internal::PlanAlias;
using internal::PlanAttestation;
using internal::PlanVersion;
using internal::ParsePlan;

core::Status Invalid(std::string message) { return internal::BundleInvalid(std::move(message)); }

// "repo:ref": the repository name holds no ':', so the first one splits
// (a ref may be "sha256:...").
core::Status SplitRef(std::string_view text, std::string* repo, std::string* ref) {
  size_t colon = text.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == text.size()) {
    return Invalid("ref '" + std::string(text.substr(0, 200)) + "' is not repo:ref");
  }
  *repo = std::string(text.substr(0, colon));
  *ref = std::string(text.substr(colon + 1));
  return core::OkStatus();
}

core::Result<std::string> ReadBlob(storage::BlobStore* blobs, const core::Digest& digest, size_t max) {
  ASSIGN_OR_RETURN(auto reader, blobs->Open(digest));
  if (reader->size() > max) {
    return Invalid("blob " + digest.ToString() + " is larger than " + std::to_string(max) + " bytes");
  }
  std::string out(reader->size(), '\0');
  size_t got = 0;
  while (got < out.size()) {
    ASSIGN_OR_RETURN(size_t n, reader->ReadAt(got, out.data() + got, out.size() - got));
    if (n == 0) return core::DataLoss("blob " + digest.ToString() + " is shorter than its size");
    got += n;
  }
  return out;
}

std::string Hex(const attest::MerkleHash& h) { return core::HexEncode(h.data(), h.size()); }

// The in-toto statement inside a stored attestation document (a DSSE
// envelope, or a Sigstore bundle's dsseEnvelope). Only called on documents
// Attestations::Check accepted.
core::Result<attest::Statement> DocumentStatement(std::string_view document) {
  auto j = core::ParseJson(document);
  if (!j.ok() || !j->is_object()) return Invalid("attestation document is not a JSON object");
  const Json* env = &*j;
  auto dsse = j->find("dsseEnvelope");
  if (dsse != j->end()) env = &*dsse;
  ASSIGN_OR_RETURN(signing::Envelope envelope, signing::EnvelopeFromJson(*env));
  return attest::ParseStatement(envelope.payload);
}

std::string VersionName(const std::string& repo, const core::Digest& digest) {
  return repo + "@" + digest.ToString().substr(0, 19) + "..";
}

}  // namespace

core::Result<Json> Bundles::Export(const ExportRequest& request) {
  if (request.refs.empty()) return Invalid("no refs to export");
  if (request.to_region.empty()) return Invalid("no destination region (\"to\")");
  if (options_.registry == nullptr || options_.attestations == nullptr || options_.log == nullptr) {
    return core::FailedPrecondition("bundles need a registry, attestations and a log");
  }
  std::set<core::Digest> since(request.since.begin(), request.since.end());

  struct Item {
    std::string repo;
    ResolvedVersion version;
    std::vector<AttestationRecord> records;
  };
  std::vector<Item> items;
  Json aliases = Json::array();
  Json notes = Json::array();
  std::set<std::string> residency_checked;
  for (const std::string& text : request.refs) {
    std::string repo, ref;
    RETURN_IF_ERROR(SplitRef(text, &repo, &ref));
    RETURN_IF_ERROR(RequireAccess(Action::kPull, repo));
    ASSIGN_OR_RETURN(ResolvedVersion version, options_.registry->Resolve(repo, ref));
    if (options_.policies != nullptr && residency_checked.insert(repo).second) {
      policies::Context context;
      if (const Principal* p = PrincipalScope::Current()) {
        context.token_name = p->name;
        context.role = std::string(RoleName(p->role));
      }
      context.site = options_.site;
      context.region = options_.region;
      context.action = policies::Action::kExport;
      context.export_region = request.to_region;
      RETURN_IF_ERROR(options_.policies->CheckResidency(repo, context));
    }
    // An alias ref carries the alias with the VSA that moved it there.
    auto alias = options_.registry->GetAlias(repo, ref);
    if (alias.ok()) {
      ASSIGN_OR_RETURN(std::vector<AliasEvent> history, options_.registry->AliasHistory(repo, ref, 1));
      if (!history.empty() && history[0].vsa.has_value() && history[0].digest == alias->digest) {
        aliases.push_back({{"repository", repo},
                           {"alias", ref},
                           {"version", alias->version},
                           {"digest", alias->digest.ToString()},
                           {"vsa", history[0].vsa->ToString()}});
      } else {
        notes.push_back("alias " + repo + ":" + ref +
                        " was not moved by a verification summary; exported as version " +
                        alias->version + " only");
      }
    }
    bool seen = false;
    for (const Item& i : items) seen = seen || (i.repo == repo && i.version.info.digest == version.info.digest);
    if (seen) continue;
    Item item{repo, std::move(version), {}};
    ASSIGN_OR_RETURN(item.records, options_.attestations->List(repo, item.version.info.digest.ToString(), {}));
    items.push_back(std::move(item));
  }

  // One checkpoint, signed after every listing, covers every entry.
  ASSIGN_OR_RETURN(attest::SignedCheckpoint checkpoint, options_.log->Checkpoint());

  std::map<core::Digest, uint64_t> carried;
  std::set<core::Digest> omitted;
  auto carry = [&](const core::Digest& d, uint64_t size) {
    if (since.count(d) != 0) {
      omitted.insert(d);
    } else {
      carried.emplace(d, size);
    }
  };
  Json versions = Json::array();
  Json attestations = Json::array();
  for (const Item& item : items) {
    const VersionInfo& info = item.version.info;
    Json blobs = Json::array();
    blobs.push_back(info.digest.ToString());
    carry(info.digest, item.version.manifest_bytes.size());
    blobs.push_back(item.version.manifest.config.digest.ToString());
    carry(item.version.manifest.config.digest, item.version.manifest.config.size);
    for (const Descriptor& layer : item.version.manifest.layers) {
      blobs.push_back(layer.digest.ToString());
      carry(layer.digest, layer.size);
    }
    versions.push_back({{"repository", item.repo},
                        {"version", info.version},
                        {"digest", info.digest.ToString()},
                        {"labels", info.labels},
                        {"blobs", std::move(blobs)}});
    for (const AttestationRecord& r : item.records) {
      ASSIGN_OR_RETURN(std::string leaf, options_.log->Leaf(r.log_index));
      ASSIGN_OR_RETURN(std::vector<attest::MerkleHash> proof,
                       attest::InclusionProof(*options_.log, r.log_index, checkpoint.checkpoint.size));
      Json nodes = Json::array();
      for (const attest::MerkleHash& h : proof) nodes.push_back(Hex(h));
      carry(r.content_digest, r.content.size());
      attestations.push_back({{"repository", item.repo},
                              {"version_digest", info.digest.ToString()},
                              {"content_digest", r.content_digest.ToString()},
                              {"predicate_type", r.predicate_type},
                              {"log_index", r.log_index},
                              {"leaf", leaf},
                              {"inclusion", std::move(nodes)}});
    }
  }
  Json blobs = Json::array();
  for (const auto& [d, size] : carried) blobs.push_back({{"digest", d.ToString()}, {"size", size}});
  Json omitted_json = Json::array();
  for (const core::Digest& d : omitted) omitted_json.push_back(d.ToString());
  Json plan = {{"schema", 1},
               {"origin", options_.log->origin()},
               {"site", options_.site},
               {"region", options_.region},
               {"to_region", request.to_region},
               {"created", core::FormatRfc3339(options_.clock->NowMicros())},
               {"checkpoint", checkpoint.note},
               {"versions", std::move(versions)},
               {"attestations", std::move(attestations)},
               {"aliases", std::move(aliases)},
               {"blobs", std::move(blobs)},
               {"omitted", std::move(omitted_json)}};
  if (!notes.empty()) plan["notes"] = std::move(notes);
  return plan;
}

core::Result<ImportSummary> Bundles::Import(std::string_view plan_json) {
  if (options_.registry == nullptr || options_.attestations == nullptr || options_.blobs == nullptr ||
      options_.meta == nullptr) {
    return core::FailedPrecondition("bundles need a registry, attestations, a blob store and a metadata store");
  }
  ASSIGN_OR_RETURN(Plan plan, ParsePlan(plan_json));
  for (const PlanVersion& v : plan.versions) RETURN_IF_ERROR(RequireAccess(Action::kPush, v.repository));

  // 1. The checkpoint: signed by a peer log this server accepts.
  auto checkpoint = attest::VerifyCheckpoint(plan.checkpoint, plan.origin, options_.peer_logs);
  if (!checkpoint.ok()) {
    return core::PermissionDenied("bundle checkpoint of " + plan.origin.substr(0, 200) +
                                      " does not verify: " + checkpoint.status().message(),
                                  "CHECKPOINT_UNTRUSTED");
  }

  // 2. Blobs: every carried or omitted blob is here with its size.
  std::vector<std::string> missing;
  for (const auto& [d, size] : plan.blobs) {
    auto info = options_.blobs->Stat(d);
    if (!info.ok()) {
      if (info.status().code() != core::Code::kNotFound) return info.status();
      missing.push_back(d.ToString());
    } else if (info->size != size) {
      return core::InvalidArgument("blob " + d.ToString() + " has " + std::to_string(info->size) +
                                       " bytes here, the plan says " + std::to_string(size),
                                   "DIGEST_MISMATCH");
    }
  }
  for (const core::Digest& d : plan.omitted) {
    auto info = options_.blobs->Stat(d);
    if (!info.ok()) {
      if (info.status().code() != core::Code::kNotFound) return info.status();
      missing.push_back(d.ToString());
    }
  }
  if (!missing.empty()) {
    return core::Status(core::InvalidArgument(std::to_string(missing.size()) +
                                                  " blob(s) the bundle names are not on this server",
                                              "BLOB_UNKNOWN"))
        .WithDetail(core::DumpJson(Json{{"missing", missing}}));
  }
  auto named = [&](const core::Digest& d) { return plan.blobs.count(d) != 0 || plan.omitted.count(d) != 0; };

  // 3. Versions: manifests hash to their digest, parse, and reference only
  // blobs the bundle names; a version name here must not be another manifest.
  std::map<std::pair<std::string, core::Digest>, ResolvedVersion> resolved;
  std::set<std::string> repositories;
  for (const PlanVersion& v : plan.versions) {
    std::string where = "version " + v.repository + ":" + v.version.substr(0, 200);
    if (auto s = ValidateRepoName(v.repository); !s.ok()) return Invalid(where + ": " + s.message());
    if (auto s = ValidateTag(v.version); !s.ok()) return Invalid(where + ": " + s.message());
    for (const auto& [k, val] : v.labels) {
      if (auto s = ValidateLabel(k, val); !s.ok()) return Invalid(where + ": " + s.message());
    }
    if (!named(v.digest)) return Invalid(where + ": its manifest is not among the bundle's blobs");
    ASSIGN_OR_RETURN(std::string bytes, ReadBlob(options_.blobs, v.digest, kMaxManifestBytes));
    if (core::Sha256::Of(bytes) != v.digest) {
      return core::InvalidArgument(where + ": the manifest's bytes do not hash to " + v.digest.ToString(),
                                   "DIGEST_MISMATCH");
    }
    auto manifest = ParseManifest(bytes);
    if (!manifest.ok()) return Invalid(where + ": " + manifest.status().message());
    std::vector<const Descriptor*> refs{&manifest->config};
    for (const Descriptor& l : manifest->layers) refs.push_back(&l);
    for (const Descriptor* d : refs) {
      if (!named(d->digest) ||
          std::find(v.blobs.begin(), v.blobs.end(), d->digest) == v.blobs.end()) {
        return Invalid(where + ": the manifest references " + d->digest.ToString() +
                       ", which the bundle does not name for it");
      }
      auto info = options_.blobs->Stat(d->digest);
      if (!info.ok()) return info.status();
      if (info->size != d->size) {
        return core::InvalidArgument(where + ": blob " + d->digest.ToString() + " has " +
                                         std::to_string(info->size) + " bytes, the manifest says " +
                                         std::to_string(d->size),
                                     "DIGEST_MISMATCH");
      }
    }
    auto existing = options_.registry->Resolve(v.repository, v.version);
    if (existing.ok() && existing->info.version != v.version) {
      return core::AlreadyExists(where + " is an alias name here", "NAME_TAKEN");
    }
    if (existing.ok() && existing->info.digest != v.digest) {
      return core::AlreadyExists(where + " exists here with another manifest " +
                                     existing->info.digest.ToString(),
                                 "TAG_IMMUTABLE");
    }
    ResolvedVersion rv;
    rv.info.repo = v.repository;
    rv.info.version = v.version;
    rv.info.digest = v.digest;
    rv.info.labels = v.labels;
    rv.manifest_bytes = std::move(bytes);
    rv.manifest = std::move(*manifest);
    resolved[{v.repository, v.digest}] = std::move(rv);
    repositories.insert(v.repository);
  }

  // 4. Attestations: each leaf is in the checkpoint's tree and describes
  // it; each document verifies here as Attestations::Add verifies it.
  std::vector<std::string> documents(plan.attestations.size());
  for (size_t i = 0; i < plan.attestations.size(); ++i) {
    const PlanAttestation& a = plan.attestations[i];
    std::string where = "attestation " + std::to_string(i) + " of " + VersionName(a.repository, a.version_digest);
    auto version = resolved.find({a.repository, a.version_digest});
    if (version == resolved.end()) return Invalid(where + ": its version is not in the bundle");
    if (a.log_index >= checkpoint->size) {
      return core::PermissionDenied(where + ": log index " + std::to_string(a.log_index) +
                                        " is beyond the checkpoint's size " + std::to_string(checkpoint->size),
                                    "PROOF_INVALID");
    }
    attest::MerkleHash leaf_hash = attest::MerkleLeafHash(a.leaf);
    core::Status included = attest::VerifyInclusion(a.log_index, checkpoint->size, attest::HashBytes(leaf_hash),
                                                    a.inclusion, attest::HashBytes(checkpoint->root));
    if (!included.ok()) {
      return core::PermissionDenied(where + ": its log leaf is not in the checkpoint: " + included.message(),
                                    "PROOF_INVALID");
    }
    auto leaf = core::ParseJson(a.leaf);
    bool describes = leaf.ok() && leaf->is_object() && leaf->value("type", "") == "sigil.attestation/v1" &&
                     leaf->value("repository", "") == a.repository &&
                     leaf->value("version_digest", "") == a.version_digest.ToString() &&
                     leaf->value("content_digest", "") == a.content_digest.ToString() &&
                     leaf->value("predicate_type", "") == a.predicate_type;
    if (!describes) {
      return core::PermissionDenied(where + ": its log leaf describes another attestation", "PROOF_INVALID");
    }
    if (!named(a.content_digest)) return Invalid(where + ": its document is not among the bundle's blobs");
    ASSIGN_OR_RETURN(documents[i], ReadBlob(options_.blobs, a.content_digest, kMaxAttestationBytes));
    if (core::Sha256::Of(documents[i]) != a.content_digest) {
      return core::InvalidArgument(where + ": the document's bytes do not hash to " + a.content_digest.ToString(),
                                   "DIGEST_MISMATCH");
    }
    auto type = options_.attestations->Check(a.repository, version->second, documents[i]);
    if (!type.ok()) return type.status().Annotate(where);
    if (*type != a.predicate_type) {
      return Invalid(where + ": the document's predicate type is " + type->substr(0, 200) + ", not " +
                     a.predicate_type.substr(0, 200));
    }
  }

  // 5. Aliases: each needs a verification summary in the bundle that PASSED
  // for its digest and stage.
  for (const PlanAlias& al : plan.aliases) {
    std::string where = "alias " + al.repository + ":" + al.alias.substr(0, 200);
    if (auto s = ValidateTag(al.alias); !s.ok()) return Invalid(where + ": " + s.message());
    bool version_in_plan = false;
    for (const PlanVersion& v : plan.versions) {
      version_in_plan = version_in_plan ||
                        (v.repository == al.repository && v.digest == al.digest && v.version == al.version);
    }
    if (!version_in_plan) return Invalid(where + ": its version is not in the bundle");
    for (const PlanVersion& v : plan.versions) {
      if (v.repository == al.repository && v.version == al.alias) {
        return core::AlreadyExists(where + " is also a version name in the bundle", "NAME_TAKEN");
      }
    }
    const std::string* vsa_doc = nullptr;
    for (size_t i = 0; i < plan.attestations.size(); ++i) {
      const PlanAttestation& a = plan.attestations[i];
      if (a.repository == al.repository && a.version_digest == al.digest && a.content_digest == al.vsa &&
          a.predicate_type == attest::kSlsaVsaV1) {
        vsa_doc = &documents[i];
      }
    }
    if (vsa_doc == nullptr) {
      return core::PermissionDenied(where + ": the bundle holds no verification summary " + al.vsa.ToString() +
                                        " of " + al.digest.ToString(),
                                    "VSA_MISSING");
    }
    ASSIGN_OR_RETURN(attest::Statement statement, DocumentStatement(*vsa_doc));
    auto vsa = attest::ParseVsa(statement.predicate_json);
    // As Promotions names the stage: upper case, other than [A-Z0-9] as '_'.
    std::string stage_level = "SIGIL_STAGE_";
    for (unsigned char c : al.alias) stage_level.push_back(std::isalnum(c) ? static_cast<char>(std::toupper(c)) : '_');
    if (!vsa.ok() || vsa->verification_result != attest::kVsaPassed ||
        std::find(vsa->verified_levels.begin(), vsa->verified_levels.end(), stage_level) ==
            vsa->verified_levels.end()) {
      return core::PermissionDenied(where + ": its verification summary did not pass for stage " + al.alias,
                                    "VSA_MISSING");
    }
    auto local = options_.registry->GetAlias(al.repository, al.alias);
    if (!local.ok()) {
      auto version = options_.registry->Resolve(al.repository, al.alias);
      if (version.ok()) {
        return core::AlreadyExists(where + " is a version name here", "NAME_TAKEN");
      }
    }
  }

  // 6. Residency: the repositories may be stored at this site.
  if (options_.policies != nullptr) {
    for (const std::string& repo : repositories) {
      policies::Context context;
      if (const Principal* p = PrincipalScope::Current()) {
        context.token_name = p->name;
        context.role = std::string(RoleName(p->role));
      }
      context.site = options_.site;
      context.region = options_.region;
      context.action = policies::Action::kStore;
      RETURN_IF_ERROR(options_.policies->CheckResidency(repo, context));
    }
  }

  // Everything verified: write, in an order a re-import completes after a
  // crash (each step is idempotent): versions, then attestations (each one
  // batch with its log leaf), then aliases.
  std::lock_guard<std::mutex> lock(import_mu_);
  const std::string record = std::string(kImportRecordPrefix) + core::Sha256::Of(plan_json).ToString();
  RETURN_IF_ERROR(options_.meta->Put(kMetaCf, record, plan_json));
  ImportSummary summary;
  for (const PlanVersion& v : plan.versions) {
    auto before = options_.registry->Resolve(v.repository, v.version);
    if (before.ok() && before->info.digest == v.digest && before->info.version == v.version) continue;
    const ResolvedVersion& rv = resolved[{v.repository, v.digest}];
    ASSIGN_OR_RETURN(VersionInfo info,
                     options_.registry->PutVersion(v.repository, v.version, rv.manifest_bytes, v.labels));
    summary.versions_added++;
    summary.added.push_back(std::move(info));
  }
  for (size_t i = 0; i < plan.attestations.size(); ++i) {
    const PlanAttestation& a = plan.attestations[i];
    ASSIGN_OR_RETURN(Attestations::Added added,
                     options_.attestations->Add(a.repository, a.version_digest.ToString(), documents[i]));
    if (added.created) summary.attestations_added++;
  }
  std::string by = "import";
  if (const Principal* p = PrincipalScope::Current()) by = p->name;
  for (const PlanAlias& al : plan.aliases) {
    auto local = options_.registry->GetAlias(al.repository, al.alias);
    if (local.ok() && local->digest == al.digest) continue;
    AliasMove move;
    move.by = by;
    move.via = "import";
    move.vsa = al.vsa;
    ASSIGN_OR_RETURN(AliasInfo moved,
                     options_.registry->MoveAlias(al.repository, al.alias, al.version, move));
    (void)moved;
    summary.aliases_moved++;
  }
  summary.changed = summary.versions_added + summary.attestations_added + summary.aliases_moved > 0;
  RETURN_IF_ERROR(options_.meta->Delete(kMetaCf, record));
  return summary;
}

core::Result<ImportSummary> Bundles::Recover() {
  if (options_.meta == nullptr) return core::FailedPrecondition("bundles need a metadata store");
  std::vector<std::pair<std::string, std::string>> records;
  RETURN_IF_ERROR(options_.meta->Scan(kMetaCf, kImportRecordPrefix, [&](std::string_view key, std::string_view value) {
    records.emplace_back(std::string(key), std::string(value));
    return true;
  }));
  ImportSummary total;
  for (const auto& [key, plan] : records) {
    auto done = Import(plan);
    if (!done.ok()) {
      SIGIL_LOG(kError) << "an interrupted bundle import does not verify any more and stays incomplete ("
                        << key.substr(kImportRecordPrefix.size()) << "): " << done.status().ToString();
      continue;
    }
    SIGIL_LOG(kInfo) << "completed an interrupted bundle import: " << done->versions_added << " version(s), "
                     << done->attestations_added << " attestation(s), " << done->aliases_moved << " alias(es)";
    total.versions_added += done->versions_added;
    total.attestations_added += done->attestations_added;
    total.aliases_moved += done->aliases_moved;
    total.changed = total.changed || done->changed;
    for (VersionInfo& v : done->added) total.added.push_back(std::move(v));
  }
  return total;
}

}  // namespace sigil::registry
