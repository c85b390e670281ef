// JSON field helpers shared by the attest/ parsers. Internal to attest/.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "attest/statement.h"
#include "core/json.h"
#include "core/status.h"

namespace sigil::attest::internal {

// kInvalidArgument with the given reason and "where: message".
core::Status Invalid(std::string_view reason, std::string_view where, std::string_view message);

// An optional string field: "" when absent; error when present and not a string.
core::Result<std::string> OptString(const core::Json& obj, const char* field, std::string_view where,
                                    std::string_view reason);
// A required non-empty string field.
core::Result<std::string> ReqString(const core::Json& obj, const char* field, std::string_view where,
                                    std::string_view reason);
// An optional object of strings.
core::Result<std::map<std::string, std::string>> OptStringMap(const core::Json& obj, const char* field,
                                                              std::string_view where,
                                                              std::string_view reason);

core::Json DescriptorToJson(const ResourceDescriptor& rd);
core::Result<ResourceDescriptor> DescriptorFromJson(const core::Json& j, std::string_view where,
                                                    std::string_view reason);
core::Result<std::vector<ResourceDescriptor>> DescriptorList(const core::Json& obj, const char* field,
                                                             std::string_view where,
                                                             std::string_view reason);
core::Json DescriptorListToJson(const std::vector<ResourceDescriptor>& list);

// Parses JSON text that must be an object ("" reads as absent -> null).
core::Result<core::Json> ObjectFromText(std::string_view text, std::string_view where,
                                        std::string_view reason);

}  // namespace sigil::attest::internal
