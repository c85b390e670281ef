// The bundle plan (registry/bundles.h), parsed strictly. Internal to
// registry; a header of its own so the parser can be fuzzed without the
// registry's stores.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/digest.h"
#include "core/status.h"

namespace sigil::registry::internal {

struct PlanVersion {
  std::string repository;
  std::string version;
  core::Digest digest;
  std::map<std::string, std::string> labels;
  std::vector<core::Digest> blobs;
};

struct PlanAttestation {
  std::string repository;
  core::Digest version_digest;
  core::Digest content_digest;
  std::string predicate_type;
  uint64_t log_index = 0;
  std::string leaf;
  std::vector<std::string> inclusion;  // raw 32-byte nodes
};

struct PlanAlias {
  std::string repository;
  std::string alias;
  std::string version;
  core::Digest digest;
  core::Digest vsa;
};

struct Plan {
  std::string origin;
  std::string checkpoint;
  std::vector<PlanVersion> versions;
  std::vector<PlanAttestation> attestations;
  std::vector<PlanAlias> aliases;
  std::map<core::Digest, uint64_t> blobs;  // carried: digest -> size
  std::set<core::Digest> omitted;
};

// Structure only: types, digests, proof node sizes, at most
// kMaxBundlePlanBytes. Names and cross-references are Import's to check.
// Errors: kInvalidArgument BUNDLE_INVALID naming the part at fault.
core::Result<Plan> ParsePlan(std::string_view text);

// kInvalidArgument BUNDLE_INVALID with "bundle: " before the message.
core::Status BundleInvalid(std::string message);

}  // namespace sigil::registry::internal
