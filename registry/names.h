// Name grammars (OCI distribution-spec): repositories, versions/aliases
// (tags) and file paths inside a model.
#pragma once

#include <string_view>

#include "core/status.h"

namespace sigil::registry {

// [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*,
// at most 255 characters. Components that are route words of the API
// ("versions", "aliases", "labels", "files", "attestations", ...) are refused
// so that /api/v1/models/{repo}/versions/... is never ambiguous.
// kInvalidArgument, reason NAME_INVALID.
core::Status ValidateRepoName(std::string_view name);
// [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}; kInvalidArgument, reason TAG_INVALID.
core::Status ValidateTag(std::string_view tag);
// A relative path with '/' separators: no empty, "." or ".." components, no
// leading '/', no backslash, no control characters, at most 4096 bytes.
// kInvalidArgument, reason PATH_INVALID.
core::Status ValidateFilePath(std::string_view path);
// key: [a-z0-9][a-z0-9._/-]{0,127}; value: printable, at most 1024 bytes.
// kInvalidArgument, reason LABEL_INVALID.
core::Status ValidateLabel(std::string_view key, std::string_view value);

}  // namespace sigil::registry
