// Fuzzes the bundle plan parser (registry/internal/bundle_plan.h): the plan
// is a blob of an air-gap bundle, submitted to the importing server, and the
// names it holds are checked with registry/names.h as Import checks them.
// Invariants: errors are BUNDLE_INVALID; every digest read is a sha256 that
// prints and parses back to itself; inclusion nodes are 32 bytes and at most
// 64 of them; the name validators agree with the grammars in names.h
// (checked here by small reference readers).
#include <string>

#include "registry/bundles.h"
#include "registry/internal/bundle_plan.h"
#include "registry/names.h"
#include "tests/fuzz/check.h"

using sigil::fuzz::Check;

namespace {

void CheckDigest(const sigil::core::Digest& d) {
  auto again = sigil::core::Digest::Parse(d.ToString());
  Check(again.ok() && *again == d);
}

bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}
bool TagGrammar(std::string_view t) {
  if (t.empty() || t.size() > 128) return false;
  for (size_t i = 0; i < t.size(); ++i) {
    char c = t[i];
    bool ok = IsLowerAlnum(c) || (c >= 'A' && c <= 'Z') || c == '_' || (i > 0 && (c == '.' || c == '-'));
    if (!ok) return false;
  }
  return true;
}

// Necessary for the repository grammar: lower-case alphanumeric components
// joined by '/', separators inside components only, at most 255 bytes.
bool RepoShape(std::string_view r) {
  if (r.empty() || r.size() > 255) return false;
  size_t start = 0;
  while (true) {
    size_t slash = r.find('/', start);
    std::string_view comp = r.substr(start, slash == std::string_view::npos ? slash : slash - start);
    if (comp.empty() || !IsLowerAlnum(comp.front()) || !IsLowerAlnum(comp.back())) return false;
    for (char c : comp) {
      if (!IsLowerAlnum(c) && c != '.' && c != '_' && c != '-') return false;
    }
    if (slash == std::string_view::npos) return true;
    start = slash + 1;
  }
}

void CheckNames(std::string_view repository, std::string_view tag) {
  if (sigil::registry::ValidateRepoName(repository).ok()) Check(RepoShape(repository));
  Check(sigil::registry::ValidateTag(tag).ok() == TagGrammar(tag));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto plan = sigil::registry::internal::ParsePlan(sigil::fuzz::AsText(data, size));
  if (!plan.ok()) {
    Check(plan.status().reason() == "BUNDLE_INVALID");
    return 0;
  }
  for (const auto& [digest, blob_size] : plan->blobs) CheckDigest(digest);
  for (const auto& d : plan->omitted) CheckDigest(d);
  for (const auto& v : plan->versions) {
    CheckDigest(v.digest);
    for (const auto& b : v.blobs) CheckDigest(b);
    CheckNames(v.repository, v.version);
    for (const auto& [key, value] : v.labels) (void)sigil::registry::ValidateLabel(key, value);
  }
  for (const auto& a : plan->attestations) {
    CheckDigest(a.version_digest);
    CheckDigest(a.content_digest);
    CheckNames(a.repository, a.predicate_type);
    Check(a.inclusion.size() <= 64);
    for (const auto& node : a.inclusion) Check(node.size() == 32);
  }
  for (const auto& al : plan->aliases) {
    CheckDigest(al.digest);
    CheckDigest(al.vsa);
    CheckNames(al.repository, al.alias);
  }
  return 0;
}
