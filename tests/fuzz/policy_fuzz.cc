// Fuzzes the policy document parser (policies/policy.h): policies are
// uploaded by admins and read back from the store at every decision.
// Invariants: errors are POLICY_INVALID; a policy that parses has a canonical
// JSON form that parses to a policy with the same canonical form, and its
// digest is the SHA-256 of the bytes it was parsed from.
#include <string>

#include <nlohmann/json.hpp>

#include "core/digest.h"
#include "policies/policy.h"
#include "tests/fuzz/check.h"

using sigil::fuzz::Check;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text = sigil::fuzz::AsText(data, size);
  auto policy = sigil::policies::ParsePolicy(text);
  if (!policy.ok()) {
    Check(policy.status().code() == sigil::core::Code::kInvalidArgument);
    Check(policy.status().reason() == "POLICY_INVALID");
    return 0;
  }
  Check(policy->digest == sigil::core::Sha256::Of(text));
  std::string canonical = sigil::policies::PolicyToJson(*policy).dump();
  auto again = sigil::policies::ParsePolicy(canonical);
  Check(again.ok());
  Check(sigil::policies::PolicyToJson(*again).dump() == canonical);
  Check(again->digest == sigil::core::Sha256::Of(canonical));
  return 0;
}
