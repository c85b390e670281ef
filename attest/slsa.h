// SLSA Provenance v1 and Verification Summary (VSA) v1 predicates.
//
// Build* functions validate and return the predicate as compact JSON text
// (the Statement's predicate_json); Parse* read it back, ignoring unknown
// fields. Errors: kInvalidArgument with reason "PROVENANCE_INVALID" or
// "VSA_INVALID", naming the field.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "attest/statement.h"
#include "core/status.h"

namespace sigil::attest {

// ---- https://slsa.dev/provenance/v1

struct ProvenanceBuilder {
  std::string id;  // required
  std::map<std::string, std::string> version;
  std::vector<ResourceDescriptor> builder_dependencies;
};

struct ProvenanceMetadata {
  std::string invocation_id;
  std::optional<int64_t> started_on;   // micros, RFC 3339 Z in JSON
  std::optional<int64_t> finished_on;
};

struct Provenance {
  // buildDefinition
  std::string build_type;                // required
  std::string external_parameters_json;  // required JSON object
  std::string internal_parameters_json;  // optional JSON object ("" = absent)
  std::vector<ResourceDescriptor> resolved_dependencies;
  // runDetails
  ProvenanceBuilder builder;
  ProvenanceMetadata metadata;
  std::vector<ResourceDescriptor> byproducts;
};

core::Result<std::string> BuildProvenance(const Provenance& provenance);
core::Result<Provenance> ParseProvenance(std::string_view predicate_json);

// ---- https://slsa.dev/verification_summary/v1

inline constexpr std::string_view kVsaPassed = "PASSED";
inline constexpr std::string_view kVsaFailed = "FAILED";

struct Vsa {
  std::string verifier_id;  // required
  std::map<std::string, std::string> verifier_version;
  int64_t time_verified = 0;  // required; micros
  std::string resource_uri;   // required
  ResourceDescriptor policy;  // required: uri or digest
  std::vector<ResourceDescriptor> input_attestations;
  std::string verification_result;        // "PASSED" or "FAILED"
  std::vector<std::string> verified_levels;  // e.g. "SLSA_BUILD_LEVEL_2"
  std::map<std::string, uint64_t> dependency_levels;
  std::string slsa_version;  // optional, e.g. "1.0"
};

core::Result<std::string> BuildVsa(const Vsa& vsa);
core::Result<Vsa> ParseVsa(std::string_view predicate_json);

}  // namespace sigil::attest
