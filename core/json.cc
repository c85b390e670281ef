#include "core/json.h"

#include <nlohmann/json.hpp>

namespace sigil::core {

Result<Json> ParseJson(std::string_view text, const JsonLimits& limits) {
  if (text.size() > limits.max_bytes) {
    return InvalidArgument("JSON document larger than " + std::to_string(limits.max_bytes) +
                               " bytes",
                           "JSON_INVALID");
  }
  // A depth check during parsing: the callback sees each nesting step, so a
  // hostile document of a million '[' is refused before it is built.
  int depth = 0;
  bool too_deep = false;
  auto callback = [&](int d, Json::parse_event_t event, Json&) {
    if (event == Json::parse_event_t::object_start || event == Json::parse_event_t::array_start) {
      depth = d;
      if (d >= limits.max_depth) too_deep = true;
    }
    return !too_deep;
  };
  try {
    Json v = Json::parse(text.begin(), text.end(), callback, /*allow_exceptions=*/true);
    if (too_deep) {
      return InvalidArgument("JSON nested deeper than " + std::to_string(limits.max_depth),
                             "JSON_INVALID");
    }
    return v;
  } catch (const Json::exception& e) {
    if (too_deep) {
      return InvalidArgument("JSON nested deeper than " + std::to_string(limits.max_depth),
                             "JSON_INVALID");
    }
    return InvalidArgument(std::string("invalid JSON: ") + e.what(), "JSON_INVALID");
  }
  (void)depth;
}

std::string DumpJson(const Json& value) {
  return value.dump(-1, ' ', false, Json::error_handler_t::replace);
}

Result<std::string> GetString(const Json& object, std::string_view field) {
  std::string name(field);
  if (!object.is_object() || !object.contains(name)) {
    return InvalidArgument("missing field '" + name + "'");
  }
  const Json& v = object[name];
  if (!v.is_string()) return InvalidArgument("field '" + name + "' must be a string");
  return v.get<std::string>();
}

Result<int64_t> GetInt(const Json& object, std::string_view field) {
  std::string name(field);
  if (!object.is_object() || !object.contains(name)) {
    return InvalidArgument("missing field '" + name + "'");
  }
  const Json& v = object[name];
  if (!v.is_number_integer()) return InvalidArgument("field '" + name + "' must be an integer");
  return v.get<int64_t>();
}

Result<uint64_t> GetUint(const Json& object, std::string_view field) {
  std::string name(field);
  if (!object.is_object() || !object.contains(name)) {
    return InvalidArgument("missing field '" + name + "'");
  }
  const Json& v = object[name];
  if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<int64_t>() >= 0)) {
    return InvalidArgument("field '" + name + "' must be a non-negative integer");
  }
  return v.get<uint64_t>();
}

std::string ErrorJson(const Status& status) {
  Json err = {{"code", status.reason()}, {"message", status.message()}};
  if (!status.detail().empty()) {
    auto detail = ParseJson(status.detail());
    err["detail"] = detail.ok() ? *detail : Json::object();
  } else {
    err["detail"] = Json::object();
  }
  return DumpJson(Json{{"error", err}});
}

}  // namespace sigil::core
