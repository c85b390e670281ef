#include "cli/refs.h"

#include "core/digest.h"
#include "registry/names.h"

namespace sigil::cli {
namespace {

constexpr std::string_view kReason = "REFERENCE_INVALID";

core::Status Invalid(std::string_view text, const std::string& why) {
  return core::InvalidArgument("reference '" + std::string(text.substr(0, 300)) + "': " + why,
                               std::string(kReason));
}

}  // namespace

std::string Reference::ToString() const {
  return digest.empty() ? repository + ":" + tag : repository + "@" + digest;
}

core::Status ValidateRepository(std::string_view name) {
  core::Status s = registry::ValidateRepoName(name);
  if (!s.ok()) return Invalid(name, s.message());
  return core::OkStatus();
}

core::Result<Reference> ParseReference(std::string_view text) {
  Reference ref;
  size_t at = text.find('@');
  if (at != std::string_view::npos) {
    std::string_view repo = text.substr(0, at);
    std::string_view digest = text.substr(at + 1);
    size_t slash = repo.rfind('/');
    size_t colon = repo.find(':', slash == std::string_view::npos ? 0 : slash + 1);
    if (colon != std::string_view::npos) {
      return Invalid(text, "give either :TAG or @DIGEST, not both");
    }
    auto parsed = core::Digest::Parse(digest);
    if (!parsed.ok()) return Invalid(text, "digest must be sha256:<64 lowercase hex>");
    ref.repository = std::string(repo);
    ref.digest = parsed->ToString();
  } else {
    size_t slash = text.rfind('/');
    size_t colon = text.find(':', slash == std::string_view::npos ? 0 : slash + 1);
    if (colon == std::string_view::npos) {
      return Invalid(text, "expected REPO:VERSION, REPO:ALIAS or REPO@sha256:<hex>");
    }
    ref.repository = std::string(text.substr(0, colon));
    ref.tag = std::string(text.substr(colon + 1));
    core::Status s = registry::ValidateTag(ref.tag);
    if (!s.ok()) return Invalid(text, s.message());
  }
  if (ref.repository.empty()) return Invalid(text, "repository name is empty");
  core::Status s = registry::ValidateRepoName(ref.repository);
  if (!s.ok()) return Invalid(text, s.message());
  return ref;
}

core::Result<Reference> ParseTagReference(std::string_view text) {
  ASSIGN_OR_RETURN(Reference ref, ParseReference(text));
  if (!ref.digest.empty()) return Invalid(text, "expected REPO:TAG, not a digest");
  return ref;
}

}  // namespace sigil::cli
