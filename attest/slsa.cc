#include "attest/slsa.h"

#include <nlohmann/json.hpp>

#include "attest/internal/json_fields.h"
#include "core/json.h"

namespace sigil::attest {

using core::Json;
using core::Result;
using core::Status;
using internal::DescriptorList;
using internal::DescriptorListToJson;
using internal::OptString;
using internal::OptStringMap;
using internal::ReqString;

namespace {

constexpr std::string_view kProv = "PROVENANCE_INVALID";
constexpr std::string_view kVsa = "VSA_INVALID";

Result<Json> ParseObject(std::string_view text, std::string_view what, std::string_view reason) {
  auto j = core::ParseJson(text);
  if (!j.ok()) return internal::Invalid(reason, what, j.status().message());
  if (!j->is_object()) return internal::Invalid(reason, what, "must be a JSON object");
  return j;
}

const Json& Member(const Json& obj, const char* field) {
  static const Json kNull;
  auto it = obj.find(field);
  return it == obj.end() ? kNull : *it;
}

Result<std::optional<int64_t>> OptTimestamp(const Json& obj, const char* field, std::string_view where,
                                            std::string_view reason) {
  ASSIGN_OR_RETURN(std::string text, OptString(obj, field, where, reason));
  if (text.empty()) return std::optional<int64_t>();
  auto t = ParseTimestamp(text);
  if (!t.ok()) return internal::Invalid(reason, where, t.status().message());
  return std::optional<int64_t>(*t);
}

Status ValidateDescriptors(const std::vector<ResourceDescriptor>& list, std::string_view where,
                           std::string_view reason) {
  for (const ResourceDescriptor& rd : list) {
    if (rd.uri.empty() && rd.digest.empty() && rd.content.empty()) {
      return internal::Invalid(reason, where, "resource descriptor needs one of uri, digest, content");
    }
    if (!rd.digest.empty()) {
      Status s = ValidateDigestSet(rd.digest, where);
      if (!s.ok()) return core::InvalidArgument(s.message(), std::string(reason));
    }
  }
  return core::OkStatus();
}

}  // namespace

Result<std::string> BuildProvenance(const Provenance& p) {
  if (p.build_type.empty()) return internal::Invalid(kProv, "provenance", "buildType is required");
  if (p.builder.id.empty()) return internal::Invalid(kProv, "provenance", "builder.id is required");
  if (p.external_parameters_json.empty()) {
    return internal::Invalid(kProv, "provenance", "externalParameters is required");
  }
  ASSIGN_OR_RETURN(Json external,
                   internal::ObjectFromText(p.external_parameters_json, "externalParameters", kProv));
  ASSIGN_OR_RETURN(Json internal_params,
                   internal::ObjectFromText(p.internal_parameters_json, "internalParameters", kProv));
  RETURN_IF_ERROR(ValidateDescriptors(p.resolved_dependencies, "resolvedDependencies", kProv));
  RETURN_IF_ERROR(ValidateDescriptors(p.builder.builder_dependencies, "builderDependencies", kProv));
  RETURN_IF_ERROR(ValidateDescriptors(p.byproducts, "byproducts", kProv));

  Json build_def = {{"buildType", p.build_type}, {"externalParameters", std::move(external)}};
  if (!internal_params.is_null()) build_def["internalParameters"] = std::move(internal_params);
  if (!p.resolved_dependencies.empty()) {
    build_def["resolvedDependencies"] = DescriptorListToJson(p.resolved_dependencies);
  }
  Json builder = {{"id", p.builder.id}};
  if (!p.builder.version.empty()) builder["version"] = p.builder.version;
  if (!p.builder.builder_dependencies.empty()) {
    builder["builderDependencies"] = DescriptorListToJson(p.builder.builder_dependencies);
  }
  Json run = {{"builder", std::move(builder)}};
  Json meta = Json::object();
  if (!p.metadata.invocation_id.empty()) meta["invocationId"] = p.metadata.invocation_id;
  if (p.metadata.started_on) meta["startedOn"] = FormatTimestamp(*p.metadata.started_on);
  if (p.metadata.finished_on) meta["finishedOn"] = FormatTimestamp(*p.metadata.finished_on);
  if (!meta.empty()) run["metadata"] = std::move(meta);
  if (!p.byproducts.empty()) run["byproducts"] = DescriptorListToJson(p.byproducts);
  return core::DumpJson(Json{{"buildDefinition", std::move(build_def)}, {"runDetails", std::move(run)}});
}

Result<Provenance> ParseProvenance(std::string_view predicate_json) {
  ASSIGN_OR_RETURN(Json doc, ParseObject(predicate_json, "provenance", kProv));
  const Json& def = Member(doc, "buildDefinition");
  const Json& run = Member(doc, "runDetails");
  if (!def.is_object()) return internal::Invalid(kProv, "provenance", "buildDefinition is required");
  if (!run.is_object()) return internal::Invalid(kProv, "provenance", "runDetails is required");
  Provenance p;
  ASSIGN_OR_RETURN(p.build_type, ReqString(def, "buildType", "buildDefinition", kProv));
  const Json& external = Member(def, "externalParameters");
  if (!external.is_object()) {
    return internal::Invalid(kProv, "buildDefinition", "externalParameters must be an object");
  }
  p.external_parameters_json = core::DumpJson(external);
  const Json& internal_params = Member(def, "internalParameters");
  if (!internal_params.is_null()) {
    if (!internal_params.is_object()) {
      return internal::Invalid(kProv, "buildDefinition", "internalParameters must be an object");
    }
    p.internal_parameters_json = core::DumpJson(internal_params);
  }
  ASSIGN_OR_RETURN(p.resolved_dependencies,
                   DescriptorList(def, "resolvedDependencies", "buildDefinition", kProv));
  const Json& builder = Member(run, "builder");
  if (!builder.is_object()) return internal::Invalid(kProv, "runDetails", "builder is required");
  ASSIGN_OR_RETURN(p.builder.id, ReqString(builder, "id", "runDetails.builder", kProv));
  ASSIGN_OR_RETURN(p.builder.version, OptStringMap(builder, "version", "runDetails.builder", kProv));
  ASSIGN_OR_RETURN(p.builder.builder_dependencies,
                   DescriptorList(builder, "builderDependencies", "runDetails.builder", kProv));
  const Json& meta = Member(run, "metadata");
  if (!meta.is_null()) {
    if (!meta.is_object()) return internal::Invalid(kProv, "runDetails", "metadata must be an object");
    ASSIGN_OR_RETURN(p.metadata.invocation_id, OptString(meta, "invocationId", "metadata", kProv));
    ASSIGN_OR_RETURN(p.metadata.started_on, OptTimestamp(meta, "startedOn", "metadata", kProv));
    ASSIGN_OR_RETURN(p.metadata.finished_on, OptTimestamp(meta, "finishedOn", "metadata", kProv));
  }
  ASSIGN_OR_RETURN(p.byproducts, DescriptorList(run, "byproducts", "runDetails", kProv));
  return p;
}

Result<std::string> BuildVsa(const Vsa& v) {
  if (v.verifier_id.empty()) return internal::Invalid(kVsa, "vsa", "verifier.id is required");
  if (v.resource_uri.empty()) return internal::Invalid(kVsa, "vsa", "resourceUri is required");
  if (v.verification_result != kVsaPassed && v.verification_result != kVsaFailed) {
    return internal::Invalid(kVsa, "vsa", "verificationResult must be PASSED or FAILED");
  }
  if (v.policy.uri.empty() && v.policy.digest.empty()) {
    return internal::Invalid(kVsa, "vsa", "policy needs a uri or a digest");
  }
  RETURN_IF_ERROR(ValidateDescriptors({v.policy}, "policy", kVsa));
  RETURN_IF_ERROR(ValidateDescriptors(v.input_attestations, "inputAttestations", kVsa));
  Json verifier = {{"id", v.verifier_id}};
  if (!v.verifier_version.empty()) verifier["version"] = v.verifier_version;
  Json doc = {{"verifier", std::move(verifier)},
              {"timeVerified", FormatTimestamp(v.time_verified)},
              {"resourceUri", v.resource_uri},
              {"policy", internal::DescriptorToJson(v.policy)},
              {"verificationResult", v.verification_result},
              {"verifiedLevels", v.verified_levels}};
  if (!v.input_attestations.empty()) doc["inputAttestations"] = DescriptorListToJson(v.input_attestations);
  if (!v.dependency_levels.empty()) doc["dependencyLevels"] = v.dependency_levels;
  if (!v.slsa_version.empty()) doc["slsaVersion"] = v.slsa_version;
  return core::DumpJson(doc);
}

Result<Vsa> ParseVsa(std::string_view predicate_json) {
  ASSIGN_OR_RETURN(Json doc, ParseObject(predicate_json, "vsa", kVsa));
  Vsa v;
  const Json& verifier = Member(doc, "verifier");
  if (!verifier.is_object()) return internal::Invalid(kVsa, "vsa", "verifier is required");
  ASSIGN_OR_RETURN(v.verifier_id, ReqString(verifier, "id", "vsa.verifier", kVsa));
  ASSIGN_OR_RETURN(v.verifier_version, OptStringMap(verifier, "version", "vsa.verifier", kVsa));
  ASSIGN_OR_RETURN(std::string time, ReqString(doc, "timeVerified", "vsa", kVsa));
  auto t = ParseTimestamp(time);
  if (!t.ok()) return internal::Invalid(kVsa, "vsa.timeVerified", t.status().message());
  v.time_verified = *t;
  ASSIGN_OR_RETURN(v.resource_uri, ReqString(doc, "resourceUri", "vsa", kVsa));
  const Json& policy = Member(doc, "policy");
  if (policy.is_null()) return internal::Invalid(kVsa, "vsa", "policy is required");
  ASSIGN_OR_RETURN(v.policy, internal::DescriptorFromJson(policy, "vsa.policy", kVsa));
  ASSIGN_OR_RETURN(v.input_attestations, DescriptorList(doc, "inputAttestations", "vsa", kVsa));
  ASSIGN_OR_RETURN(v.verification_result, ReqString(doc, "verificationResult", "vsa", kVsa));
  if (v.verification_result != kVsaPassed && v.verification_result != kVsaFailed) {
    return internal::Invalid(kVsa, "vsa", "verificationResult must be PASSED or FAILED");
  }
  const Json& levels = Member(doc, "verifiedLevels");
  if (!levels.is_array()) return internal::Invalid(kVsa, "vsa", "verifiedLevels must be an array");
  for (const Json& l : levels) {
    if (!l.is_string()) return internal::Invalid(kVsa, "vsa", "verifiedLevels must hold strings");
    v.verified_levels.push_back(l.get<std::string>());
  }
  const Json& deps = Member(doc, "dependencyLevels");
  if (!deps.is_null()) {
    if (!deps.is_object()) return internal::Invalid(kVsa, "vsa", "dependencyLevels must be an object");
    for (const auto& [level, count] : deps.items()) {
      if (!count.is_number_unsigned() && !(count.is_number_integer() && count.get<int64_t>() >= 0)) {
        return internal::Invalid(kVsa, "vsa", "dependencyLevels values must be counts");
      }
      v.dependency_levels[level] = count.get<uint64_t>();
    }
  }
  ASSIGN_OR_RETURN(v.slsa_version, OptString(doc, "slsaVersion", "vsa", kVsa));
  return v;
}

}  // namespace sigil::attest
