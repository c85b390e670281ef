#include "registry/internal/bundle_plan.h"

#include <nlohmann/json.hpp>

#include "core/json.h"
#include "registry/bundles.h"

namespace sigil::registry::internal {

core::Status BundleInvalid(std::string message) {
  return core::InvalidArgument("bundle: " + std::move(message), "BUNDLE_INVALID");
}

namespace {

using core::Json;

core::Status Invalid(std::string message) { return BundleInvalid(std::move(message)); }

core::Result<std::string> Str(const Json& obj, const char* key, const std::string& where) {
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_string()) return Invalid(where + ": \"" + key + "\" must be a string");
  return it->get<std::string>();
}

core::Result<core::Digest> Dig(const Json& obj, const char* key, const std::string& where) {
  ASSIGN_OR_RETURN(std::string text, Str(obj, key, where));
  auto d = core::Digest::Parse(text);
  if (!d.ok()) return Invalid(where + ": \"" + key + "\" is not a sha256 digest");
  return *d;
}

core::Result<const Json*> Arr(const Json& obj, const char* key, const std::string& where) {
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_array()) return Invalid(where + ": \"" + key + "\" must be an array");
  return &*it;
}

}  // namespace

core::Result<Plan> ParsePlan(std::string_view text) {
  if (text.size() > kMaxBundlePlanBytes) {
    return Invalid("the plan is larger than " + std::to_string(kMaxBundlePlanBytes) + " bytes");
  }
  core::JsonLimits limits;
  limits.max_bytes = kMaxBundlePlanBytes;
  limits.max_depth = 16;
  auto parsed = core::ParseJson(text, limits);
  if (!parsed.ok()) return Invalid("the plan is not JSON: " + parsed.status().message());
  const Json& j = *parsed;
  if (!j.is_object()) return Invalid("the plan is not a JSON object");
  auto schema = j.find("schema");
  if (schema == j.end() || !schema->is_number_integer() || schema->get<int64_t>() != 1) {
    return Invalid("the plan's schema must be 1");
  }
  Plan plan;
  ASSIGN_OR_RETURN(plan.origin, Str(j, "origin", "plan"));
  ASSIGN_OR_RETURN(plan.checkpoint, Str(j, "checkpoint", "plan"));

  ASSIGN_OR_RETURN(const Json* blobs, Arr(j, "blobs", "plan"));
  for (size_t i = 0; i < blobs->size(); ++i) {
    const Json& b = (*blobs)[i];
    std::string where = "blob " + std::to_string(i);
    if (!b.is_object()) return Invalid(where + " is not an object");
    ASSIGN_OR_RETURN(core::Digest d, Dig(b, "digest", where));
    auto size = b.find("size");
    if (size == b.end() || !size->is_number_unsigned()) return Invalid(where + ": \"size\" must be a count");
    if (!plan.blobs.emplace(d, size->get<uint64_t>()).second) return Invalid(where + " is named twice");
  }
  auto omitted = j.find("omitted");
  if (omitted != j.end()) {
    if (!omitted->is_array()) return Invalid("plan: \"omitted\" must be an array");
    for (const Json& o : *omitted) {
      if (!o.is_string()) return Invalid("plan: \"omitted\" holds a non-string");
      auto d = core::Digest::Parse(o.get<std::string>());
      if (!d.ok()) return Invalid("plan: \"omitted\" holds a bad digest");
      plan.omitted.insert(*d);
    }
  }

  ASSIGN_OR_RETURN(const Json* versions, Arr(j, "versions", "plan"));
  for (size_t i = 0; i < versions->size(); ++i) {
    const Json& v = (*versions)[i];
    std::string where = "version " + std::to_string(i);
    if (!v.is_object()) return Invalid(where + " is not an object");
    PlanVersion pv;
    ASSIGN_OR_RETURN(pv.repository, Str(v, "repository", where));
    ASSIGN_OR_RETURN(pv.version, Str(v, "version", where));
    ASSIGN_OR_RETURN(pv.digest, Dig(v, "digest", where));
    auto labels = v.find("labels");
    if (labels != v.end()) {
      if (!labels->is_object()) return Invalid(where + ": \"labels\" must be an object");
      for (auto it = labels->begin(); it != labels->end(); ++it) {
        if (!it.value().is_string()) return Invalid(where + ": label values must be strings");
        pv.labels[it.key()] = it.value().get<std::string>();
      }
    }
    ASSIGN_OR_RETURN(const Json* vb, Arr(v, "blobs", where));
    for (const Json& b : *vb) {
      if (!b.is_string()) return Invalid(where + ": \"blobs\" holds a non-string");
      auto d = core::Digest::Parse(b.get<std::string>());
      if (!d.ok()) return Invalid(where + ": \"blobs\" holds a bad digest");
      pv.blobs.push_back(*d);
    }
    plan.versions.push_back(std::move(pv));
  }

  ASSIGN_OR_RETURN(const Json* atts, Arr(j, "attestations", "plan"));
  for (size_t i = 0; i < atts->size(); ++i) {
    const Json& a = (*atts)[i];
    std::string where = "attestation " + std::to_string(i);
    if (!a.is_object()) return Invalid(where + " is not an object");
    PlanAttestation pa;
    ASSIGN_OR_RETURN(pa.repository, Str(a, "repository", where));
    ASSIGN_OR_RETURN(pa.version_digest, Dig(a, "version_digest", where));
    ASSIGN_OR_RETURN(pa.content_digest, Dig(a, "content_digest", where));
    ASSIGN_OR_RETURN(pa.predicate_type, Str(a, "predicate_type", where));
    ASSIGN_OR_RETURN(pa.leaf, Str(a, "leaf", where));
    auto index = a.find("log_index");
    if (index == a.end() || !index->is_number_unsigned()) {
      return Invalid(where + ": \"log_index\" must be a count");
    }
    pa.log_index = index->get<uint64_t>();
    ASSIGN_OR_RETURN(const Json* proof, Arr(a, "inclusion", where));
    if (proof->size() > 64) return Invalid(where + ": the inclusion proof is too long");
    for (const Json& node : *proof) {
      if (!node.is_string()) return Invalid(where + ": \"inclusion\" holds a non-string");
      auto raw = core::HexDecode(node.get<std::string>());
      if (!raw.ok() || raw->size() != 32) return Invalid(where + ": an inclusion node is not 32 hex bytes");
      pa.inclusion.push_back(std::move(*raw));
    }
    plan.attestations.push_back(std::move(pa));
  }

  ASSIGN_OR_RETURN(const Json* aliases, Arr(j, "aliases", "plan"));
  for (size_t i = 0; i < aliases->size(); ++i) {
    const Json& a = (*aliases)[i];
    std::string where = "alias " + std::to_string(i);
    if (!a.is_object()) return Invalid(where + " is not an object");
    PlanAlias pa;
    ASSIGN_OR_RETURN(pa.repository, Str(a, "repository", where));
    ASSIGN_OR_RETURN(pa.alias, Str(a, "alias", where));
    ASSIGN_OR_RETURN(pa.version, Str(a, "version", where));
    ASSIGN_OR_RETURN(pa.digest, Dig(a, "digest", where));
    ASSIGN_OR_RETURN(pa.vsa, Dig(a, "vsa", where));
    plan.aliases.push_back(std::move(pa));
  }
  return plan;
}

}  // namespace sigil::registry::internal
