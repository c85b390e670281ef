#include "attest/internal/json_fields.h"

#include "signing/base64.h"

namespace sigil::attest::internal {

using core::Json;
using core::Result;

core::Status Invalid(std::string_view reason, std::string_view where, std::string_view message) {
  return core::InvalidArgument(std::string(where) + ": " + std::string(message), std::string(reason));
}

Result<std::string> OptString(const Json& obj, const char* field, std::string_view where,
                              std::string_view reason) {
  auto it = obj.find(field);
  if (it == obj.end() || it->is_null()) return std::string();
  if (!it->is_string()) return Invalid(reason, where, std::string("'") + field + "' must be a string");
  return it->get<std::string>();
}

Result<std::string> ReqString(const Json& obj, const char* field, std::string_view where,
                              std::string_view reason) {
  ASSIGN_OR_RETURN(std::string v, OptString(obj, field, where, reason));
  if (v.empty()) return Invalid(reason, where, std::string("'") + field + "' is required");
  return v;
}

Result<std::map<std::string, std::string>> OptStringMap(const Json& obj, const char* field,
                                                        std::string_view where,
                                                        std::string_view reason) {
  std::map<std::string, std::string> out;
  auto it = obj.find(field);
  if (it == obj.end() || it->is_null()) return out;
  if (!it->is_object()) return Invalid(reason, where, std::string("'") + field + "' must be an object");
  for (const auto& [k, v] : it->items()) {
    if (!v.is_string()) {
      return Invalid(reason, where, std::string("'") + field + "." + k + "' must be a string");
    }
    out[k] = v.get<std::string>();
  }
  return out;
}

Json DescriptorToJson(const ResourceDescriptor& rd) {
  Json j = Json::object();
  if (!rd.name.empty()) j["name"] = rd.name;
  if (!rd.uri.empty()) j["uri"] = rd.uri;
  if (!rd.digest.empty()) j["digest"] = rd.digest;
  if (!rd.content.empty()) j["content"] = signing::Base64Encode(rd.content);
  if (!rd.download_location.empty()) j["downloadLocation"] = rd.download_location;
  if (!rd.media_type.empty()) j["mediaType"] = rd.media_type;
  if (!rd.annotations_json.empty()) {
    auto ann = core::ParseJson(rd.annotations_json);
    if (ann.ok()) j["annotations"] = *ann;
  }
  return j;
}

Result<ResourceDescriptor> DescriptorFromJson(const Json& j, std::string_view where,
                                              std::string_view reason) {
  if (!j.is_object()) return Invalid(reason, where, "resource descriptor must be an object");
  ResourceDescriptor rd;
  ASSIGN_OR_RETURN(rd.name, OptString(j, "name", where, reason));
  ASSIGN_OR_RETURN(rd.uri, OptString(j, "uri", where, reason));
  ASSIGN_OR_RETURN(rd.digest, OptStringMap(j, "digest", where, reason));
  ASSIGN_OR_RETURN(std::string content, OptString(j, "content", where, reason));
  if (!content.empty()) {
    auto bytes = signing::Base64Decode(content);
    if (!bytes.ok()) return Invalid(reason, where, "'content' is not base64");
    rd.content = *bytes;
  }
  ASSIGN_OR_RETURN(rd.download_location, OptString(j, "downloadLocation", where, reason));
  ASSIGN_OR_RETURN(rd.media_type, OptString(j, "mediaType", where, reason));
  auto ann = j.find("annotations");
  if (ann != j.end() && !ann->is_null()) {
    if (!ann->is_object()) return Invalid(reason, where, "'annotations' must be an object");
    rd.annotations_json = core::DumpJson(*ann);
  }
  if (rd.uri.empty() && rd.digest.empty() && rd.content.empty()) {
    return Invalid(reason, where, "resource descriptor needs one of uri, digest, content");
  }
  if (!rd.digest.empty()) {
    core::Status s = ValidateDigestSet(rd.digest, where);
    if (!s.ok()) return core::InvalidArgument(s.message(), std::string(reason));
  }
  return rd;
}

Result<std::vector<ResourceDescriptor>> DescriptorList(const Json& obj, const char* field,
                                                       std::string_view where,
                                                       std::string_view reason) {
  std::vector<ResourceDescriptor> out;
  auto it = obj.find(field);
  if (it == obj.end() || it->is_null()) return out;
  if (!it->is_array()) return Invalid(reason, where, std::string("'") + field + "' must be an array");
  size_t i = 0;
  for (const Json& e : *it) {
    ASSIGN_OR_RETURN(ResourceDescriptor rd,
                     DescriptorFromJson(e, std::string(where) + "." + field + "[" +
                                               std::to_string(i++) + "]",
                                        reason));
    out.push_back(std::move(rd));
  }
  return out;
}

Json DescriptorListToJson(const std::vector<ResourceDescriptor>& list) {
  Json out = Json::array();
  for (const ResourceDescriptor& rd : list) out.push_back(DescriptorToJson(rd));
  return out;
}

Result<Json> ObjectFromText(std::string_view text, std::string_view where, std::string_view reason) {
  if (text.empty()) return Json();
  auto j = core::ParseJson(text);
  if (!j.ok()) return Invalid(reason, where, j.status().message());
  if (!j->is_object()) return Invalid(reason, where, "must be a JSON object");
  return j;
}

}  // namespace sigil::attest::internal
