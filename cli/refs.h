// References to model versions, as typed on the command line:
//   REPO:VERSION, REPO:ALIAS (a tag either way), REPO@sha256:<hex>.
// A repository may contain '/' and '.'; the ':' that separates the tag is the
// one after the last '/', so "host.example/org/model:1.0" is repository
// "host.example/org/model" (as far as the grammar goes), tag "1.0".
#pragma once

#include <string>
#include <string_view>

#include "core/status.h"

namespace sigil::cli {

struct Reference {
  std::string repository;
  std::string tag;     // a version or an alias; empty when digest is set
  std::string digest;  // "sha256:<hex>"; empty when tag is set

  // What goes into /versions/{ref}: the tag or the digest.
  const std::string& ref() const { return digest.empty() ? tag : digest; }
  std::string ToString() const;
};

// Parses "repo:tag" or "repo@sha256:<64 hex>". The repository follows the
// OCI name grammar (registry::ValidateRepoName), the tag the OCI tag grammar.
// kInvalidArgument, reason REFERENCE_INVALID, with a message saying what is
// wrong.
core::Result<Reference> ParseReference(std::string_view text);

// Parses "repo:tag" only (push, alias and rm name a tag, never a digest).
core::Result<Reference> ParseTagReference(std::string_view text);

// A bare repository name, for `sigil ls REPO`.
core::Status ValidateRepository(std::string_view name);

}  // namespace sigil::cli
