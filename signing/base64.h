// Base64 as DSSE, Sigstore bundles and signed notes use it.
#pragma once

#include <string>
#include <string_view>

#include "core/status.h"

namespace sigil::signing {

// Standard alphabet (RFC 4648 section 4), padded.
std::string Base64Encode(std::string_view bytes);

// Accepts the standard and the URL-safe alphabet (RFC 4648 sections 4 and 5),
// with or without '=' padding. Rejects anything else: whitespace, characters
// outside the alphabets, wrong padding, a length that no encoding produces,
// and non-zero unused bits in the last character.
// Errors: kInvalidArgument, reason "BASE64_INVALID".
core::Result<std::string> Base64Decode(std::string_view text);

}  // namespace sigil::signing
