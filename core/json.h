// JSON helpers over nlohmann_json. nlohmann throws; these catch at the edge
// and return a Status, so no exception crosses a module boundary.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "core/status.h"

namespace sigil::core {

using Json = nlohmann::json;

struct JsonLimits {
  size_t max_bytes = 4 << 20;
  int max_depth = 64;
};

// Parses text; rejects invalid UTF-8, depth beyond the limit, duplicate
// keys are resolved by nlohmann (last wins) -- callers that care check
// separately. Errors are kInvalidArgument with reason "JSON_INVALID".
Result<Json> ParseJson(std::string_view text, const JsonLimits& limits = {});

// Serializes compactly; invalid UTF-8 in strings is replaced, never thrown.
std::string DumpJson(const Json& value);

// Typed field access with clear errors ("field 'size' must be an integer").
Result<std::string> GetString(const Json& object, std::string_view field);
Result<int64_t> GetInt(const Json& object, std::string_view field);
Result<uint64_t> GetUint(const Json& object, std::string_view field);

// {"error":{"code":reason,"message":message,"detail":detail}} for a Status.
std::string ErrorJson(const Status& status);

}  // namespace sigil::core
